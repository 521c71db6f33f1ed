//! The container, `/dev/vfio/vfio`: dispatch, the number arguments of `VFIO_CHECK_EXTENSION` and
//! `VFIO_SET_IOMMU`, and `VFIO_IOMMU_GET_INFO` with its capability chain, as iommufd's compat layer
//! (`iommufd_vfio_iommu_get_info()`) and type1 (`vfio_iommu_type1_get_info()`) write it.

mod common;

use common::{bytes_of, expect_errno, u32_at, u64_at, with_room};
use proptest::prelude::*;
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_CHECK_EXTENSION, VFIO_DMA_MAP_FLAG_READ, VFIO_GET_API_VERSION, VFIO_GROUP_GET_STATUS,
    VFIO_IOMMU_DIRTY_PAGES, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_PGSIZES,
    VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_IOMMU_UNMAP_DMA, VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU,
    VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VfioIommuType1DmaMap, VfioIommuType1DmaUnmap, VfioIommuType1Info,
};
use uvfio_types::{Iova, IovaRange};
use uvfio_vfio::uapi::container::{IommuGetInfo, IommuInfo};
use uvfio_vfio::uapi::type1::Type1Backend;
use uvfio_vfio::uapi::{
    ArgKind, ContainerCmd, ContainerRequest, Extension, IoctlArg, cap_headers, container_command,
    decode_container,
};

const T1: Type1Backend = Type1Backend::Type1;

fn info_bytes(argsz: u32, len: usize) -> Vec<u8> {
    let mut v = bytes_of(&VfioIommuType1Info {
        argsz,
        ..Default::default()
    });
    v.resize(len, 0);
    v
}

fn range(start: u64, last: u64) -> IovaRange {
    IovaRange::new(Iova::new(start), Iova::new(last)).unwrap()
}

/// The usual x86 answer: everything but the MSI window.
fn info() -> IommuInfo {
    IommuInfo {
        iova_pgsizes: 0x4020_1000,
        dma_avail: u32::MAX,
        iova_ranges: vec![range(0, 0xfedf_ffff), range(0xfef0_0000, u64::MAX)],
    }
}

#[test]
fn dispatch_round_trips_every_request() {
    let all = [
        (
            VFIO_GET_API_VERSION,
            ContainerRequest::GetApiVersion,
            ArgKind::None,
        ),
        (
            VFIO_CHECK_EXTENSION,
            ContainerRequest::CheckExtension,
            ArgKind::Value,
        ),
        (VFIO_SET_IOMMU, ContainerRequest::SetIommu, ArgKind::Value),
        (
            VFIO_IOMMU_GET_INFO,
            ContainerRequest::IommuGetInfo,
            ArgKind::Pointer,
        ),
        (
            VFIO_IOMMU_MAP_DMA,
            ContainerRequest::IommuMapDma,
            ArgKind::Pointer,
        ),
        (
            VFIO_IOMMU_UNMAP_DMA,
            ContainerRequest::IommuUnmapDma,
            ArgKind::Pointer,
        ),
    ];
    for (request, req, kind) in all {
        assert_eq!(container_command(request), Some(req));
        assert_eq!(req.request(), request);
        assert_eq!(req.arg_kind(), kind);
    }
    // iommufd_vfio_ioctl(): VFIO_IOMMU_DIRTY_PAGES and default → -ENOIOCTLCMD (ENOTTY).
    for request in [VFIO_IOMMU_DIRTY_PAGES, VFIO_GROUP_GET_STATUS, 0, 0x3b00, u32::MAX] {
        assert_eq!(container_command(request), None);
        expect_errno(
            "unknown_request_enotty",
            decode_container(request, &IoctlArg::Value(0), T1),
            Errno::NOTTY,
        );
    }
}

#[test]
fn get_api_version_takes_no_argument() {
    assert_eq!(
        decode_container(VFIO_GET_API_VERSION, &IoctlArg::Value(0xdead), T1).unwrap(),
        ContainerCmd::GetApiVersion
    );
}

#[test]
fn check_extension_and_set_iommu_take_a_number() {
    let cases = [
        (u64::from(VFIO_TYPE1_IOMMU), Extension::Type1),
        (u64::from(VFIO_TYPE1v2_IOMMU), Extension::Type1v2),
        (u64::from(VFIO_NOIOMMU_IOMMU), Extension::NoIommu),
        (9, Extension::UnmapAll),
        (10, Extension::UpdateVaddr),
        (6, Extension::Type1Nesting),
        (11, Extension::Unknown(11)),
        // switch on the full unsigned long: the high half matters.
        ((1 << 32) | 1, Extension::Unknown((1 << 32) | 1)),
    ];
    for (arg, ext) in cases {
        assert_eq!(Extension::from_arg(arg), ext);
        assert_eq!(ext.to_arg(), arg);
        assert_eq!(
            decode_container(VFIO_CHECK_EXTENSION, &IoctlArg::Value(arg), T1).unwrap(),
            ContainerCmd::CheckExtension(ext)
        );
        assert_eq!(
            decode_container(VFIO_SET_IOMMU, &IoctlArg::Value(arg), T1).unwrap(),
            ContainerCmd::SetIommu(ext)
        );
    }
    for value in 0..=10u64 {
        assert_eq!(Extension::from_arg(value).to_arg(), value);
    }
    // A pointer given where a number is expected is the number (its address), as in C.
    let mut buf = [0u8; 8];
    let arg = IoctlArg::Buffer(&mut buf);
    let addr = arg.value();
    assert_eq!(
        decode_container(VFIO_CHECK_EXTENSION, &arg, T1).unwrap(),
        ContainerCmd::CheckExtension(Extension::from_arg(addr))
    );
}

#[test]
fn pointer_requests_through_the_dispatcher() {
    let mut get_info = info_bytes(24, 24);
    let cmd = decode_container(VFIO_IOMMU_GET_INFO, &IoctlArg::Buffer(&mut get_info), T1).unwrap();
    assert_eq!(cmd, ContainerCmd::IommuGetInfo(IommuGetInfo { argsz: 24 }));
    let mut map = bytes_of(&VfioIommuType1DmaMap {
        argsz: 32,
        flags: VFIO_DMA_MAP_FLAG_READ,
        vaddr: 0x1000,
        iova: 0x2000,
        size: 0x1000,
    });
    assert!(matches!(
        decode_container(VFIO_IOMMU_MAP_DMA, &IoctlArg::Buffer(&mut map), T1),
        Ok(ContainerCmd::MapDma(_))
    ));
    let mut unmap = bytes_of(&VfioIommuType1DmaUnmap {
        argsz: 24,
        flags: 0,
        iova: 0x2000,
        size: 0x1000,
    });
    assert!(matches!(
        decode_container(VFIO_IOMMU_UNMAP_DMA, &IoctlArg::Buffer(&mut unmap), T1),
        Ok(ContainerCmd::UnmapDma(_))
    ));
    // A number given to a pointer request: copy_from_user() from that address → -EFAULT.
    for request in [VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA] {
        expect_errno(
            "value_for_pointer_efault",
            decode_container(request, &IoctlArg::Value(0), T1),
            Errno::FAULT,
        );
    }
}

#[test]
fn get_info_errno_table() {
    // copy_from_user(&info, arg, minsz) → -EFAULT (before argsz is looked at)
    expect_errno(
        "copy_from_user_minsz",
        IommuGetInfo::decode(&info_bytes(24, 15)),
        Errno::FAULT,
    );
    expect_errno(
        "copy_from_user_minsz_before_argsz",
        IommuGetInfo::decode(&info_bytes(0, 15)),
        Errno::FAULT,
    );
    // if (info.argsz < minsz) return -EINVAL;
    expect_errno(
        "argsz_below_minsz",
        IommuGetInfo::decode(&info_bytes(15, 24)),
        Errno::INVAL,
    );
    // minsz is offsetofend(iova_pgsizes) = 16, not sizeof = 24.
    assert_eq!(IommuGetInfo::decode(&info_bytes(16, 16)).unwrap().argsz, 16);
    // A longer argsz is room for the chain, not E2BIG.
    assert_eq!(IommuGetInfo::decode(&info_bytes(4096, 24)).unwrap().argsz, 4096);
}

/// Size of the compat chain for `info()`: DMA_AVAIL (12 → 16) + IOVA_RANGE (16 + 2 × 16).
const COMPAT_TOTAL: u32 = 24 + 16 + 16 + 32;

#[test]
fn compat_get_info_chain_fits() {
    let argsz = COMPAT_TOTAL;
    let mut user = info_bytes(argsz, argsz as usize);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    info().encode_compat(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), COMPAT_TOTAL, "argsz");
    assert_eq!(u32_at(&user, 4), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    assert_eq!(u64_at(&user, 8), 0x4020_1000);
    assert_eq!(u32_at(&user, 16), 24, "cap_offset");
    let caps = cap_headers(&user, 24);
    assert_eq!(
        caps.iter()
            .map(|(o, h)| (*o, h.id, h.version, h.next))
            .collect::<Vec<_>>(),
        [
            (24, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 40),
            (40, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0)
        ]
    );
    assert_eq!(u32_at(&user, 32), u32::MAX, "avail");
    assert_eq!(u32_at(&user, 48), 2, "nr_iovas");
    assert_eq!((u64_at(&user, 56), u64_at(&user, 64)), (0, 0xfedf_ffff));
    assert_eq!((u64_at(&user, 72), u64_at(&user, 80)), (0xfef0_0000, u64::MAX));
}

#[test]
fn compat_get_info_chain_does_not_fit() {
    // The caller asks with the bare struct: argsz reports the whole chain, CAPS is set anyway,
    // cap_offset stays 0 and nothing is written past the struct.
    let mut user = info_bytes(24, 128);
    user[24..].fill(0xaa);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    info().encode_compat(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), COMPAT_TOTAL);
    assert_eq!(u32_at(&user, 4), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    assert_eq!(u32_at(&user, 16), 0, "cap_offset");
    assert!(user[24..].iter().all(|&b| b == 0xaa));
}

#[test]
fn compat_get_info_partial_chain() {
    // Room for DMA_AVAIL (written, next still 0) but not for the IOVA ranges.
    let argsz = 24 + 16 + 16;
    let mut user = info_bytes(argsz, argsz as usize);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    info().encode_compat(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), COMPAT_TOTAL);
    assert_eq!(u32_at(&user, 16), 0, "cap_offset");
    assert_eq!(
        u32_at(&user, 24) & 0xffff,
        u32::from(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
    );
    // last_cap->next is written once argsz covers the next cap's start (40 <= 56).
    assert_eq!(u32_at(&user, 28), 40);
    assert_eq!(u32_at(&user, 32), u32::MAX);
    // The IOVA cap gets avail = 16 bytes: not even its header with one range (32) fits.
    assert!(user[40..].iter().all(|&b| b == 0));
}

#[test]
fn compat_get_info_argsz_minsz_copies_minsz() {
    // argsz 16: only min(argsz, sizeof(info)) = 16 bytes of the struct are written back.
    let mut user = info_bytes(16, 32);
    user[16..].fill(0xaa);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    info().encode_compat(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), COMPAT_TOTAL);
    assert!(user[16..].iter().all(|&b| b == 0xaa));
}

#[test]
fn compat_get_info_copy_to_user_efault() {
    // argsz promises room the buffer does not have: copy_to_user() of the cap → -EFAULT.
    let mut user = info_bytes(COMPAT_TOTAL, 30);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    expect_errno(
        "fill_cap_copy_to_user",
        info().encode_compat(&cmd, &mut user),
        Errno::FAULT,
    );
}

#[test]
fn type1_get_info_chain_fits_and_does_not() {
    let want = 24 + 32 + 16 + (16 + 32);
    let mut user = info_bytes(4096, 4096);
    let cmd = IommuGetInfo::decode(&user).unwrap();
    let mut type1 = info();
    type1.dma_avail = 65535;
    type1.encode_type1(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), 4096, "argsz unchanged when the chain fits");
    assert_eq!(u32_at(&user, 4), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    assert_eq!(u32_at(&user, 16), 24);
    let caps = cap_headers(&user, 24);
    assert_eq!(
        caps.iter().map(|(o, h)| (*o, h.id)).collect::<Vec<_>>(),
        [
            (24, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION),
            (56, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL),
            (72, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
        ]
    );
    assert_eq!(
        u64_at(&user, 24 + 16),
        0x1000,
        "migration pgsize_bitmap: the smallest page"
    );
    assert_eq!(u32_at(&user, 56 + 8), 65535);
    assert_eq!(u32_at(&user, 72 + 8), 2);

    let mut user = with_room(
        &VfioIommuType1Info {
            argsz: 24,
            ..Default::default()
        },
        64,
    );
    let cmd = IommuGetInfo::decode(&user).unwrap();
    type1.encode_type1(&cmd, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), want);
    assert_eq!(u32_at(&user, 4), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    assert_eq!(u32_at(&user, 16), 0);
    assert!(user[24..].iter().all(|&b| b == 0));
}

proptest! {
    /// For every argsz, the compat writer reports the full chain size, sets cap_offset only when
    /// the chain fits, and never writes at or past argsz.
    #[test]
    fn compat_get_info_respects_argsz(argsz in 16u32..160, nranges in 0usize..4) {
        let info = IommuInfo {
            iova_pgsizes: 0x1000,
            dma_avail: 7,
            iova_ranges: (0..nranges as u64).map(|i| range(i << 32, (i << 32) | 0xffff)).collect(),
        };
        let total = 24 + 16 + 16 + 16 * nranges as u32;
        let mut user = info_bytes(argsz, 256);
        user[argsz as usize..].fill(0xaa);
        let cmd = IommuGetInfo::decode(&user).unwrap();
        info.encode_compat(&cmd, &mut user).unwrap();
        prop_assert_eq!(u32_at(&user, 0), total);
        prop_assert!(user[argsz as usize..].iter().all(|&b| b == 0xaa));
        if argsz >= 24 {
            prop_assert_eq!(u32_at(&user, 16), if argsz >= total { 24 } else { 0 });
        }
        if argsz >= total {
            let ids: Vec<u16> = cap_headers(&user, 24).iter().map(|(_, h)| h.id).collect();
            prop_assert_eq!(ids, vec![VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]);
        }
    }
}
