//! Capability chains as `vfio_info_cap_add()` / `vfio_info_add_capability()` build them and the
//! INFO handlers place them: fits (shifted, linked, 8-byte aligned, `cap_offset` set) or does not
//! fit (`argsz` raised to the size needed, nothing written, `CAPS` still set as Linux does).

mod common;

use common::{u32_at, with_room};
use proptest::prelude::*;
use uvfio_abi::vfio::{
    VFIO_REGION_INFO_CAP_TYPE, VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_READ, VfioInfoCapHeader,
    VfioRegionInfo, VfioRegionInfoCapType,
};
use uvfio_vfio::uapi::caps::CAP_HEADER_SIZE;
use uvfio_vfio::uapi::device::{GetRegionInfo, RegionInfo};
use uvfio_vfio::uapi::{CapChain, CapPlacement, cap_headers};

#[test]
fn an_empty_chain_changes_nothing() {
    let mut user = vec![0xaau8; 64];
    let placed = CapChain::new().place(32, 64, &mut user).unwrap();
    assert_eq!(placed, CapPlacement::NoCaps);
    assert_eq!(placed.argsz(64), 64);
    assert!(!placed.has_caps());
    assert!(user.iter().all(|&b| b == 0xaa));
}

#[test]
fn a_device_specific_region_type_capability() {
    // vfio-pci's default case: VFIO_REGION_INFO_CAP_TYPE for a device-specific region.
    let mut caps = CapChain::new();
    caps.add_struct(&VfioRegionInfoCapType {
        header: VfioInfoCapHeader {
            id: VFIO_REGION_INFO_CAP_TYPE,
            version: 1,
            next: 0,
        },
        type_: 0x8086_0000 | 1,
        subtype: 3,
    });
    let region = VfioRegionInfo {
        argsz: 48,
        index: 9,
        ..Default::default()
    };
    let mut user = with_room(&region, 16);
    let cmd = GetRegionInfo::decode(&user).unwrap();
    let info = RegionInfo {
        flags: VFIO_REGION_INFO_FLAG_READ,
        size: 0x100,
        offset: 9 << 40,
    };
    cmd.encode_reply(&info, &caps, &mut user).unwrap();
    assert_eq!(
        u32_at(&user, 4),
        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_CAPS
    );
    assert_eq!(u32_at(&user, 12), 32);
    let headers = cap_headers(&user, 32);
    assert_eq!(headers.len(), 1);
    assert_eq!(
        (headers[0].1.id, headers[0].1.version, headers[0].1.next),
        (VFIO_REGION_INFO_CAP_TYPE, 1, 0)
    );
    assert_eq!((u32_at(&user, 40), u32_at(&user, 44)), (0x8086_0001, 3));
}

proptest! {
    /// Any list of capabilities, any argsz: either the chain is written after the info struct
    /// (walkable in order, each capability 8-byte aligned, within argsz) or argsz reports exactly
    /// the size needed and nothing past the struct is touched.
    #[test]
    fn chains_fit_or_report_the_size_needed(
        sizes in proptest::collection::vec(CAP_HEADER_SIZE..64usize, 1..6),
        argsz in 0u32..400,
    ) {
        let info_size = 32usize;
        let mut caps = CapChain::new();
        for (i, size) in sizes.iter().enumerate() {
            let body = caps.add(*size, i as u16 + 1, 1);
            body[CAP_HEADER_SIZE..].fill(0x5a);
        }
        let needed = info_size + sizes.iter().map(|s| s.next_multiple_of(8)).sum::<usize>();
        prop_assert_eq!(caps.len() + info_size, needed);
        let mut user = vec![0xaau8; 512];
        let placed = caps.place(info_size, argsz, &mut user).unwrap();
        prop_assert!(placed.has_caps());
        if (argsz as usize) < needed {
            prop_assert_eq!(placed, CapPlacement::DoesNotFit { needed: needed as u32 });
            prop_assert_eq!(placed.argsz(argsz), needed as u32);
            prop_assert!(user.iter().all(|&b| b == 0xaa));
        } else {
            prop_assert_eq!(placed, CapPlacement::Written { cap_offset: info_size as u32 });
            prop_assert_eq!(placed.argsz(argsz), argsz);
            let headers = cap_headers(&user, info_size as u32);
            prop_assert_eq!(headers.len(), sizes.len());
            for (i, (offset, header)) in headers.iter().enumerate() {
                prop_assert_eq!(offset % 8, 0);
                prop_assert_eq!(header.id as usize, i + 1);
                prop_assert!(offset + sizes[i] <= needed);
            }
            prop_assert!(user[needed..].iter().all(|&b| b == 0xaa));
        }
    }
}
