//! The device fd: dispatch, `VFIO_DEVICE_GET_INFO`, `VFIO_DEVICE_GET_REGION_INFO` (with
//! capability chains), `VFIO_DEVICE_GET_IRQ_INFO`, `VFIO_DEVICE_RESET`, as `vfio_main.c` and
//! vfio-pci (`vfio_pci_core.c`) read and write them.

mod common;

use common::{bytes_of, expect_errno, u32_at, u64_at, with_room};
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT,
    VFIO_DEVICE_FEATURE, VFIO_DEVICE_FLAGS_CAPS, VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET,
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET, VFIO_DEVICE_SET_IRQS, VFIO_GROUP_GET_STATUS,
    VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_FLAG_CAPS,
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
    VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd, VfioDeviceInfo, VfioIrqInfo, VfioIrqSet,
    VfioRegionInfo, VfioRegionSparseMmapArea,
};
use uvfio_vfio::uapi::device::{DeviceInfo, GetDeviceInfo, GetIrqInfo, GetRegionInfo, RegionInfo};
use uvfio_vfio::uapi::{
    ArgKind, CapChain, DeviceCmd, DeviceLimits, DeviceRequest, IoctlArg, cap_headers, decode_device,
    device_command,
};
use zerocopy::IntoBytes;

/// A vfio-pci device with INTx and 4 MSI vectors, no MSI-X, no PASID.
struct Pci;

impl DeviceLimits for Pci {
    fn num_irq_indexes(&self) -> u32 {
        VFIO_PCI_NUM_IRQS
    }
    fn irq_count(&self, index: u32) -> u32 {
        match index {
            0 => 1,
            1 => 4,
            _ => 0,
        }
    }
    fn pasid_capable(&self) -> bool {
        false
    }
}

#[test]
fn dispatch_round_trips_every_request() {
    let all = [
        (VFIO_DEVICE_BIND_IOMMUFD, DeviceRequest::BindIommufd),
        (VFIO_DEVICE_ATTACH_IOMMUFD_PT, DeviceRequest::AttachIommufdPt),
        (VFIO_DEVICE_DETACH_IOMMUFD_PT, DeviceRequest::DetachIommufdPt),
        (VFIO_DEVICE_GET_INFO, DeviceRequest::GetInfo),
        (VFIO_DEVICE_GET_REGION_INFO, DeviceRequest::GetRegionInfo),
        (VFIO_DEVICE_GET_IRQ_INFO, DeviceRequest::GetIrqInfo),
        (VFIO_DEVICE_SET_IRQS, DeviceRequest::SetIrqs),
        (VFIO_DEVICE_RESET, DeviceRequest::Reset),
    ];
    for (request, req) in all {
        assert_eq!(device_command(request), Some(req));
        assert_eq!(req.request(), request);
        assert_eq!(req.arg_kind() == ArgKind::None, req == DeviceRequest::Reset);
        assert_eq!(req.before_access(), req == DeviceRequest::BindIommufd);
    }
    assert!(DeviceRequest::AttachIommufdPt.cdev_only());
    assert!(!DeviceRequest::GetInfo.cdev_only());
    // vfio_pci_core_ioctl(): default → -ENOTTY (FEATURE and hot reset are not served here yet).
    for request in [
        VFIO_DEVICE_FEATURE,
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
        VFIO_GROUP_GET_STATUS,
        0,
    ] {
        assert_eq!(device_command(request), None);
        expect_errno(
            "unknown_request_enotty",
            decode_device(request, &IoctlArg::Value(0), &Pci),
            Errno::NOTTY,
        );
    }
}

#[test]
fn decode_device_routes_every_request() {
    let mut bind = bytes_of(&VfioDeviceBindIommufd {
        argsz: 24,
        iommufd: 3,
        ..Default::default()
    });
    let mut attach = bytes_of(&VfioDeviceAttachIommufdPt {
        argsz: 16,
        pt_id: 2,
        ..Default::default()
    });
    let mut detach = vec![8, 0, 0, 0, 0, 0, 0, 0];
    let mut info = bytes_of(&VfioDeviceInfo {
        argsz: 24,
        ..Default::default()
    });
    let mut region = bytes_of(&VfioRegionInfo {
        argsz: 32,
        index: 7,
        ..Default::default()
    });
    let mut irq = bytes_of(&VfioIrqInfo {
        argsz: 16,
        index: 1,
        ..Default::default()
    });
    let mut set = bytes_of(&VfioIrqSet {
        argsz: 20,
        flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: 1,
        start: 0,
        count: 0,
    });
    let mut cases: Vec<(u32, &mut Vec<u8>)> = vec![
        (VFIO_DEVICE_BIND_IOMMUFD, &mut bind),
        (VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut attach),
        (VFIO_DEVICE_DETACH_IOMMUFD_PT, &mut detach),
        (VFIO_DEVICE_GET_INFO, &mut info),
        (VFIO_DEVICE_GET_REGION_INFO, &mut region),
        (VFIO_DEVICE_GET_IRQ_INFO, &mut irq),
        (VFIO_DEVICE_SET_IRQS, &mut set),
    ];
    for (request, bytes) in &mut cases {
        let cmd = decode_device(*request, &IoctlArg::Buffer(bytes), &Pci).unwrap();
        let matched = match cmd {
            DeviceCmd::BindIommufd(_) => VFIO_DEVICE_BIND_IOMMUFD,
            DeviceCmd::AttachIommufdPt(_) => VFIO_DEVICE_ATTACH_IOMMUFD_PT,
            DeviceCmd::DetachIommufdPt(_) => VFIO_DEVICE_DETACH_IOMMUFD_PT,
            DeviceCmd::GetInfo(_) => VFIO_DEVICE_GET_INFO,
            DeviceCmd::GetRegionInfo(r) => {
                assert_eq!(r.index, 7);
                VFIO_DEVICE_GET_REGION_INFO
            }
            DeviceCmd::GetIrqInfo(i) => {
                assert_eq!(i.index, 1);
                VFIO_DEVICE_GET_IRQ_INFO
            }
            DeviceCmd::SetIrqs(_) => VFIO_DEVICE_SET_IRQS,
            DeviceCmd::Reset => VFIO_DEVICE_RESET,
        };
        assert_eq!(matched, *request);
        // A number where a pointer is expected → -EFAULT.
        expect_errno(
            "value_for_pointer",
            decode_device(*request, &IoctlArg::Value(0), &Pci),
            Errno::FAULT,
        );
    }
    // VFIO_DEVICE_RESET takes no argument.
    assert_eq!(
        decode_device(VFIO_DEVICE_RESET, &IoctlArg::Value(0), &Pci).unwrap(),
        DeviceCmd::Reset
    );
}

fn device_info(argsz: u32) -> VfioDeviceInfo {
    VfioDeviceInfo {
        argsz,
        flags: 0xffff,
        num_regions: 0xffff,
        num_irqs: 0xffff,
        cap_offset: 0xffff,
        pad: 0xffff,
    }
}

const PCI_INFO: DeviceInfo = DeviceInfo {
    flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
    num_regions: VFIO_PCI_NUM_REGIONS,
    num_irqs: VFIO_PCI_NUM_IRQS,
};

#[test]
fn get_info_round_trip() {
    // The selftest's vfio_device_get_info_ioctl(): argsz = sizeof(info_args).
    let mut user = bytes_of(&device_info(24));
    let cmd = GetDeviceInfo::decode(&user).unwrap();
    cmd.encode_reply(&PCI_INFO, &CapChain::new(), &mut user).unwrap();
    let want = VfioDeviceInfo {
        argsz: 24,
        flags: PCI_INFO.flags,
        num_regions: 9,
        num_irqs: 5,
        cap_offset: 0,
        pad: 0,
    };
    assert_eq!(
        user,
        bytes_of(&want),
        "info = {{}}: cap_offset and pad are zeroed"
    );
    // argsz 16 (the pre-cap_offset struct): minsz = min(argsz, sizeof(info)) = 16 bytes written.
    let mut old = bytes_of(&device_info(16));
    GetDeviceInfo::decode(&old)
        .unwrap()
        .encode_reply(&PCI_INFO, &CapChain::new(), &mut old)
        .unwrap();
    let want16 = VfioDeviceInfo { argsz: 16, ..want };
    assert_eq!(&old[..16], &want16.as_bytes()[..16]);
    assert_eq!(u32_at(&old, 16), 0xffff, "past minsz: untouched");
}

#[test]
fn get_info_with_caps_fits_and_does_not() {
    let mut caps = CapChain::new();
    caps.add(16, 5, 1); // VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP-sized
    let mut user = with_room(&device_info(40), 16);
    let cmd = GetDeviceInfo::decode(&user).unwrap();
    cmd.encode_reply(&PCI_INFO, &caps, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), 40);
    assert_eq!(u32_at(&user, 4), PCI_INFO.flags | VFIO_DEVICE_FLAGS_CAPS);
    assert_eq!(u32_at(&user, 16), 24, "cap_offset");
    assert_eq!(cap_headers(&user, 24).len(), 1);

    // Does not fit: argsz = sizeof(info) + caps.size, CAPS set (as Linux does), cap_offset 0.
    let mut user = with_room(&device_info(24), 16);
    user[24..].fill(0xaa);
    let cmd = GetDeviceInfo::decode(&user).unwrap();
    cmd.encode_reply(&PCI_INFO, &caps, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), 40);
    assert_eq!(u32_at(&user, 4), PCI_INFO.flags | VFIO_DEVICE_FLAGS_CAPS);
    assert_eq!(u32_at(&user, 16), 0);
    assert!(user[24..].iter().all(|&b| b == 0xaa));
}

#[test]
fn get_info_errno_table() {
    // copy_from_user(&info, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        GetDeviceInfo::decode(&bytes_of(&device_info(24))[..15]),
        Errno::FAULT,
    );
    // if (info.argsz < minsz) return -EINVAL;
    expect_errno(
        "argsz_below_minsz",
        GetDeviceInfo::decode(&bytes_of(&device_info(15))),
        Errno::INVAL,
    );
    // minsz is offsetofend(num_irqs): 16 bytes are enough to decode.
    assert_eq!(
        GetDeviceInfo::decode(&bytes_of(&device_info(24))[..16])
            .unwrap()
            .argsz,
        24
    );
    // copy_to_user(arg, &info, minsz) → -EFAULT
    let cmd = GetDeviceInfo::decode(&bytes_of(&device_info(24))).unwrap();
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(&PCI_INFO, &CapChain::new(), &mut [0u8; 20]),
        Errno::FAULT,
    );
}

fn region(argsz: u32, index: u32) -> VfioRegionInfo {
    VfioRegionInfo {
        argsz,
        flags: 0xffff,
        index,
        cap_offset: 0x77,
        size: 0xffff,
        offset: 0xffff,
    }
}

const BAR0: RegionInfo = RegionInfo {
    flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
    size: 0x1000,
    offset: 0,
};

fn msix_mappable() -> CapChain {
    let mut caps = CapChain::new();
    // msix_mappable_cap(): a header-only capability.
    caps.add(8, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
    caps
}

#[test]
fn region_info_round_trip_without_caps_keeps_the_callers_cap_offset() {
    let mut user = bytes_of(&region(32, 0));
    let cmd = GetRegionInfo::decode(&user).unwrap();
    assert_eq!((cmd.index, cmd.argsz), (0, 32));
    cmd.check_index(VFIO_PCI_NUM_REGIONS).unwrap();
    cmd.encode_reply(&BAR0, &CapChain::new(), &mut user).unwrap();
    let want = VfioRegionInfo {
        argsz: 32,
        flags: BAR0.flags,
        index: 0,
        cap_offset: 0x77,
        size: 0x1000,
        offset: 0,
    };
    assert_eq!(user, bytes_of(&want));
}

#[test]
fn region_info_caps_fit() {
    // A sparse-mmap capability (two areas) and the MSI-X one, as vfio-pci reports a BAR.
    let mut caps = CapChain::new();
    let sparse = caps.add(16 + 2 * 16, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1);
    sparse[8..12].copy_from_slice(&2u32.to_ne_bytes());
    let areas = [
        VfioRegionSparseMmapArea {
            offset: 0,
            size: 0x1000,
        },
        VfioRegionSparseMmapArea {
            offset: 0x3000,
            size: 0x1000,
        },
    ];
    sparse[16..48].copy_from_slice(areas.as_bytes());
    caps.add(8, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
    let argsz = 32 + 48 + 8;
    let mut user = with_room(&region(argsz, 0), 56);
    let cmd = GetRegionInfo::decode(&user).unwrap();
    cmd.encode_reply(&BAR0, &caps, &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), argsz);
    assert_eq!(u32_at(&user, 4), BAR0.flags | VFIO_REGION_INFO_FLAG_CAPS);
    assert_eq!(u32_at(&user, 12), 32, "cap_offset = sizeof(info)");
    let headers = cap_headers(&user, 32);
    assert_eq!(
        headers
            .iter()
            .map(|(o, h)| (*o, h.id, h.next))
            .collect::<Vec<_>>(),
        [
            (32, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 80),
            (80, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 0)
        ]
    );
    assert_eq!(u32_at(&user, 40), 2, "nr_areas");
    assert_eq!((u64_at(&user, 64), u64_at(&user, 72)), (0x3000, 0x1000));
}

#[test]
fn region_info_caps_do_not_fit() {
    // argsz = sizeof(info): argsz reports the size needed, CAPS is set (Linux sets it whenever
    // caps.size != 0), cap_offset is 0, and nothing is written past the struct.
    let mut user = with_room(&region(32, 0), 8);
    user[32..].fill(0xaa);
    let cmd = GetRegionInfo::decode(&user).unwrap();
    cmd.encode_reply(&BAR0, &msix_mappable(), &mut user).unwrap();
    assert_eq!(u32_at(&user, 0), 40);
    assert_eq!(u32_at(&user, 4), BAR0.flags | VFIO_REGION_INFO_FLAG_CAPS);
    assert_eq!(u32_at(&user, 12), 0, "cap_offset");
    assert!(user[32..].iter().all(|&b| b == 0xaa));
    // The driver's retry with the reported argsz gets the chain.
    let mut retry = with_room(&region(40, 0), 8);
    GetRegionInfo::decode(&retry)
        .unwrap()
        .encode_reply(&BAR0, &msix_mappable(), &mut retry)
        .unwrap();
    assert_eq!(u32_at(&retry, 12), 32);
    assert_eq!(
        cap_headers(&retry, 32)[0].1.id,
        VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
    );
}

#[test]
fn region_info_errno_table() {
    // copy_from_user(&info, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        GetRegionInfo::decode(&bytes_of(&region(32, 0))[..31]),
        Errno::FAULT,
    );
    // if (info.argsz < minsz) return -EINVAL;
    expect_errno(
        "argsz_below_minsz",
        GetRegionInfo::decode(&bytes_of(&region(31, 0))),
        Errno::INVAL,
    );
    // if (info.index >= VFIO_PCI_NUM_REGIONS + vdev->num_regions) return -EINVAL;  (index == count)
    let cmd = GetRegionInfo::decode(&bytes_of(&region(32, VFIO_PCI_NUM_REGIONS))).unwrap();
    expect_errno(
        "index_eq_num_regions",
        cmd.check_index(VFIO_PCI_NUM_REGIONS),
        Errno::INVAL,
    );
    let cmd = GetRegionInfo::decode(&bytes_of(&region(32, u32::MAX))).unwrap();
    expect_errno("index_max", cmd.check_index(VFIO_PCI_NUM_REGIONS), Errno::INVAL);
    // copy_to_user(arg + 1, caps.buf, caps.size) → -EFAULT (argsz promises room the buffer lacks)
    let mut short = bytes_of(&region(40, 0));
    let cmd = GetRegionInfo::decode(&short).unwrap();
    expect_errno(
        "caps_copy_to_user",
        cmd.encode_reply(&BAR0, &msix_mappable(), &mut short),
        Errno::FAULT,
    );
}

fn irq_info(argsz: u32, index: u32) -> VfioIrqInfo {
    VfioIrqInfo {
        argsz,
        flags: 0xffff,
        index,
        count: 0xffff,
    }
}

#[test]
fn irq_info_round_trip() {
    let mut user = bytes_of(&irq_info(16, VFIO_PCI_INTX_IRQ_INDEX));
    let cmd = GetIrqInfo::decode(&user, VFIO_PCI_NUM_IRQS).unwrap();
    let flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    cmd.encode_reply(flags, 1, &mut user).unwrap();
    let want = VfioIrqInfo {
        argsz: 16,
        flags,
        index: 0,
        count: 1,
    };
    assert_eq!(user, bytes_of(&want));
}

#[test]
fn irq_info_errno_table() {
    // copy_from_user(&info, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        GetIrqInfo::decode(&bytes_of(&irq_info(16, 0))[..15], VFIO_PCI_NUM_IRQS),
        Errno::FAULT,
    );
    // if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) return -EINVAL;
    expect_errno(
        "argsz_below_minsz",
        GetIrqInfo::decode(&bytes_of(&irq_info(15, 0)), VFIO_PCI_NUM_IRQS),
        Errno::INVAL,
    );
    expect_errno(
        "index_eq_num_irqs",
        GetIrqInfo::decode(&bytes_of(&irq_info(16, VFIO_PCI_NUM_IRQS)), VFIO_PCI_NUM_IRQS),
        Errno::INVAL,
    );
    // copy_to_user(arg, &info, minsz) → -EFAULT
    let cmd = GetIrqInfo::decode(&bytes_of(&irq_info(16, 0)), VFIO_PCI_NUM_IRQS).unwrap();
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(0, 0, &mut [0u8; 12]),
        Errno::FAULT,
    );
}
