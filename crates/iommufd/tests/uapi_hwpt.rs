//! Decoding `IOMMU_HWPT_ALLOC` and `IOMMU_GET_HW_INFO`: happy round trips, errno tables named
//! after the kernel check each case trips, and the replies.

mod uapi_support;

use rustix::io::Errno;
use std::num::NonZeroU32;
use uapi_support::*;
use uvfio_abi::iommufd::*;
use uvfio_abi::selftest::{IOMMU_HW_INFO_TYPE_SELFTEST, IOMMU_HWPT_DATA_SELFTEST};
use uvfio_iommufd::uapi::hwpt::{GetHwInfo, HwInfoFlags, HwInfoReply, HwptAlloc, HwptAllocFlags, HwptData};
use uvfio_iommufd::uapi::{IommufdCmd, UserPtr, decode};

// ---- IOMMU_HWPT_ALLOC ----------------------------------------------------------------------------

fn hwpt(flags: u32, data_type: u32, data_len: u32) -> IommuHwptAlloc {
    IommuHwptAlloc {
        size: 48,
        flags,
        dev_id: 2,
        pt_id: 3,
        data_type,
        data_len,
        data_uptr: if data_len == 0 { 0 } else { 0x9000 },
        fault_id: 11,
        ..Default::default()
    }
}

#[test]
fn hwpt_alloc_round_trips() {
    let paging = decode(
        IOMMU_HWPT_ALLOC,
        &bytes(&hwpt(IOMMU_HWPT_ALLOC_NEST_PARENT, 0, 0)),
    );
    let want = HwptAlloc {
        flags: HwptAllocFlags::NEST_PARENT,
        dev_id: 2,
        pt_id: 3,
        data: None,
        fault_id: None,
    };
    assert_eq!(paging, Ok(IommufdCmd::HwptAlloc(want)));
    let nested = HwptAlloc::decode(&bytes(&hwpt(
        IOMMU_HWPT_FAULT_ID_VALID,
        IOMMU_HWPT_DATA_SELFTEST,
        4,
    )));
    let data = HwptData {
        data_type: IOMMU_HWPT_DATA_SELFTEST,
        uptr: UserPtr(0x9000),
        len: NonZeroU32::new(4).expect("non-zero"),
    };
    let want = HwptAlloc {
        flags: HwptAllocFlags::FAULT_ID_VALID,
        dev_id: 2,
        pt_id: 3,
        data: Some(data),
        fault_id: Some(11),
    };
    assert_eq!(nested, Ok(want));
    // A caller whose struct ends before fault_id (size 40) reads it as zero, as
    // copy_struct_from_user() zero-extends.
    let short = HwptAlloc::decode(&bytes(&IommuHwptAlloc {
        size: 40,
        ..hwpt(IOMMU_HWPT_FAULT_ID_VALID, 0, 0)
    }));
    assert_eq!(short.map(|h| h.fault_id), Ok(Some(0)));
    // Linux does not look at __reserved2.
    assert!(
        HwptAlloc::decode(&bytes(&IommuHwptAlloc {
            reserved2: 5,
            ..hwpt(0, 0, 0)
        }))
        .is_ok()
    );
}

#[test]
fn hwpt_alloc_reply() {
    let raw = hwpt(0, 0, 0);
    let mut cmd = bytes(&raw);
    HwptAlloc::encode_reply(&mut cmd, id(21)).expect("reply");
    assert_eq!(
        cmd,
        bytes(&IommuHwptAlloc {
            out_hwpt_id: 21,
            ..raw
        })
    );
    // An old caller (size 24, the minimum) gets out_hwpt_id too: it is inside the minimum.
    let mut old = bytes(&IommuHwptAlloc { size: 24, ..raw });
    old.truncate(24);
    HwptAlloc::encode_reply(&mut old, id(22)).expect("reply");
    assert_eq!(old[16..20], 22u32.to_ne_bytes());
}

#[test]
fn hwpt_alloc_errno_table() {
    let cases = [
        (
            "iommufd_hwpt_alloc(): cmd->__reserved",
            IommuHwptAlloc {
                reserved: 1,
                ..hwpt(0, 0, 0)
            },
            Errno::OPNOTSUPP,
        ),
        (
            "data_type == IOMMU_HWPT_DATA_NONE && cmd->data_len",
            hwpt(0, IOMMU_HWPT_DATA_NONE, 8),
            Errno::INVAL,
        ),
        (
            "data_type != IOMMU_HWPT_DATA_NONE && !cmd->data_len",
            hwpt(0, IOMMU_HWPT_DATA_VTD_S1, 0),
            Errno::INVAL,
        ),
        (
            "__reserved before the data check",
            IommuHwptAlloc {
                reserved: 1,
                ..hwpt(0, 1, 0)
            },
            Errno::OPNOTSUPP,
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(errno(HwptAlloc::decode(&bytes(&raw))), want, "{name}");
    }
    // Unknown flags are refused only after the device and parent lookups: they decode.
    let unknown = HwptAlloc::decode(&bytes(&hwpt(1 << 9, 0, 0))).expect("decodes");
    assert_eq!(unknown.flags.bits(), 1 << 9);
}

#[test]
fn hwpt_alloc_flag_checks_after_the_lookups() {
    let check = |flags: u32, data_len: u32| {
        let data_type = if data_len == 0 {
            IOMMU_HWPT_DATA_NONE
        } else {
            IOMMU_HWPT_DATA_SELFTEST
        };
        HwptAlloc::decode(&bytes(&hwpt(flags, data_type, data_len))).expect("decodes")
    };
    // iommufd_hwpt_paging_alloc(): `if (flags & ~valid_flags) return ERR_PTR(-EOPNOTSUPP);`
    for bit in 4..32 {
        assert_eq!(
            errno(check(1 << bit, 0).check_paging_flags()),
            Errno::OPNOTSUPP,
            "bit {bit}"
        );
    }
    for flags in [
        0,
        IOMMU_HWPT_ALLOC_NEST_PARENT,
        IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
        IOMMU_HWPT_FAULT_ID_VALID,
        IOMMU_HWPT_ALLOC_PASID,
        IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
    ] {
        assert_eq!(check(flags, 0).check_paging_flags(), Ok(()), "flags {flags:#x}");
    }
    // `if ((flags & IOMMU_HWPT_FAULT_ID_VALID) && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT))`
    let both = check(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_NEST_PARENT, 0);
    assert_eq!(errno(both.check_paging_flags()), Errno::OPNOTSUPP);
    // iommufd_hwpt_nested_alloc(): `(flags & ~(FAULT_ID_VALID | PASID)) || !user_data->len`
    assert_eq!(
        check(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID, 4).check_nested_flags(),
        Ok(())
    );
    assert_eq!(
        errno(check(IOMMU_HWPT_ALLOC_NEST_PARENT, 4).check_nested_flags()),
        Errno::OPNOTSUPP
    );
    assert_eq!(
        errno(check(IOMMU_HWPT_ALLOC_DIRTY_TRACKING, 4).check_nested_flags()),
        Errno::OPNOTSUPP
    );
    assert_eq!(errno(check(0, 0).check_nested_flags()), Errno::OPNOTSUPP);
}

// ---- IOMMU_GET_HW_INFO ---------------------------------------------------------------------------

fn hw_info(flags: u32, data_type: u32) -> IommuHwInfo {
    IommuHwInfo {
        size: 40,
        flags,
        dev_id: 6,
        data_len: 8,
        data_uptr: 0x4000,
        data_type,
        ..Default::default()
    }
}

#[test]
fn get_hw_info_round_trips() {
    // Without IOMMU_HW_INFO_FLAG_INPUT_TYPE the type field is cleared ("drivers don't support a
    // random input").
    let plain = decode(IOMMU_GET_HW_INFO, &bytes(&hw_info(0, 0x1234)));
    let want = GetHwInfo {
        flags: HwInfoFlags::empty(),
        dev_id: 6,
        data_len: 8,
        data_uptr: UserPtr(0x4000),
        in_data_type: IOMMU_HW_INFO_TYPE_DEFAULT,
    };
    assert_eq!(plain, Ok(IommufdCmd::GetHwInfo(want)));
    let typed = GetHwInfo::decode(&bytes(&hw_info(
        IOMMU_HW_INFO_FLAG_INPUT_TYPE,
        IOMMU_HW_INFO_TYPE_SELFTEST,
    )));
    assert_eq!(
        typed.map(|c| (c.flags, c.in_data_type)),
        Ok((HwInfoFlags::INPUT_TYPE, IOMMU_HW_INFO_TYPE_SELFTEST))
    );
}

#[test]
fn get_hw_info_errno_table() {
    let cases = [
        (
            "cmd->flags & ~SUPPORTED_FLAGS: bit 1",
            hw_info(1 << 1, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->flags & ~SUPPORTED_FLAGS: bit 31",
            hw_info(1 << 31, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->__reserved[0]",
            IommuHwInfo {
                reserved: [1, 0, 0],
                ..hw_info(0, 0)
            },
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->__reserved[1]",
            IommuHwInfo {
                reserved: [0, 1, 0],
                ..hw_info(0, 0)
            },
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->__reserved[2]",
            IommuHwInfo {
                reserved: [0, 0, 0x80],
                ..hw_info(0, 0)
            },
            Errno::OPNOTSUPP,
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(errno(GetHwInfo::decode(&bytes(&raw))), want, "{name}");
    }
}

#[test]
fn get_hw_info_reply_respects_the_callers_size() {
    let reply = HwInfoReply {
        data_len: 8,
        out_data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
        out_max_pasid_log2: 20,
        out_capabilities: IOMMU_HW_CAP_DIRTY_TRACKING,
    };
    let raw = hw_info(0, 0);
    let mut cmd = bytes(&raw);
    GetHwInfo::encode_reply(&mut cmd, reply).expect("reply");
    let want = IommuHwInfo {
        data_type: IOMMU_HW_INFO_TYPE_SELFTEST,
        out_max_pasid_log2: 20,
        out_capabilities: IOMMU_HW_CAP_DIRTY_TRACKING,
        ..raw
    };
    assert_eq!(cmd, bytes(&want));
    // An older caller (size 32) does not get out_capabilities: its buffer ends before it.
    let mut old = bytes(&IommuHwInfo { size: 32, ..raw });
    old[32..].fill(0xee);
    GetHwInfo::encode_reply(&mut old, reply).expect("reply");
    assert_eq!(old[32..], [0xee; 8]);
    assert_eq!(old[28], 20);
}
