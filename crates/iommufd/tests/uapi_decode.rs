//! Decoding the IOAS commands, `IOMMU_DESTROY`, `IOMMU_OPTION` and `IOMMU_VFIO_IOAS`: happy
//! round trips, errno tables named after the kernel check each case trips, and the replies
//! written back. The dispatch table and the shared size rules are in `uapi_dispatch.rs`.

mod uapi_support;

use rustix::io::Errno;
use uapi_support::*;
use uvfio_abi::iommufd::*;
use uvfio_iommufd::uapi::ioas::{
    IoasAlloc, IoasAllowIovas, IoasCopy, IoasIovaRanges, IoasMap, IoasMapFile, IoasUnmap, MapFlags,
    UnmapTarget,
};
use uvfio_iommufd::uapi::misc::{Destroy, IommuOptionCmd, OptionOp, VfioIoasCmd, option_bool};
use uvfio_iommufd::uapi::{IommufdCmd, UapiError, UserPtr, decode};
use uvfio_types::{Access, HostVa, Iova, IovaRange};

// ---- IOMMU_DESTROY, IOMMU_IOAS_ALLOC --------------------------------------------------------

#[test]
fn destroy_round_trip() {
    let cmd = bytes(&IommuDestroy { size: 8, id: 7 });
    assert_eq!(Destroy::decode(&cmd), Ok(Destroy { id: 7 }));
    assert_eq!(
        decode(IOMMU_DESTROY, &cmd),
        Ok(IommufdCmd::Destroy(Destroy { id: 7 }))
    );
}

#[test]
fn ioas_alloc_round_trip_and_reply() {
    let mut cmd = bytes(&IommuIoasAlloc {
        size: 12,
        flags: 0,
        out_ioas_id: 0,
    });
    assert_eq!(IoasAlloc::decode(&cmd), Ok(IoasAlloc));
    IoasAlloc::encode_reply(&mut cmd, id(5)).expect("reply");
    assert_eq!(
        cmd,
        bytes(&IommuIoasAlloc {
            size: 12,
            flags: 0,
            out_ioas_id: 5
        })
    );
}

#[test]
fn ioas_alloc_flags_are_eopnotsupp() {
    // iommufd_ioas_alloc_ioctl(): `if (cmd->flags) return -EOPNOTSUPP;`, every bit.
    for bit in 0..32 {
        let cmd = bytes(&IommuIoasAlloc {
            size: 12,
            flags: 1 << bit,
            out_ioas_id: 0,
        });
        assert_eq!(errno(IoasAlloc::decode(&cmd)), Errno::OPNOTSUPP, "bit {bit}");
    }
}

// ---- IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS ------------------------------------------

#[test]
fn iova_ranges_round_trip_reply_and_emsgsize() {
    let raw = IommuIoasIovaRanges {
        size: 32,
        ioas_id: 3,
        num_iovas: 2,
        allowed_iovas: 0x1000,
        ..Default::default()
    };
    let mut cmd = bytes(&raw);
    let ranges = IoasIovaRanges::decode(&cmd).expect("decodes");
    assert_eq!(
        ranges,
        IoasIovaRanges {
            ioas_id: 3,
            capacity: 2,
            allowed_iovas: UserPtr(0x1000)
        }
    );
    IoasIovaRanges::encode_reply(&mut cmd, 3, 4096).expect("reply");
    assert_eq!(
        cmd,
        bytes(&IommuIoasIovaRanges {
            num_iovas: 3,
            out_iova_alignment: 4096,
            ..raw
        })
    );
    // `if (cmd->num_iovas > max_iovas) rc = -EMSGSIZE;`
    assert_eq!(ranges.check_fits(2), Ok(()));
    assert_eq!(errno(ranges.check_fits(3)), Errno::MSGSIZE);
}

#[test]
fn iova_ranges_reserved_is_eopnotsupp() {
    // `if (cmd->__reserved) return -EOPNOTSUPP;`
    let cmd = bytes(&IommuIoasIovaRanges {
        size: 32,
        reserved: 1,
        ..Default::default()
    });
    assert_eq!(errno(IoasIovaRanges::decode(&cmd)), Errno::OPNOTSUPP);
}

#[test]
fn allow_iovas_round_trip_and_reserved() {
    let raw = IommuIoasAllowIovas {
        size: 24,
        ioas_id: 9,
        num_iovas: 1,
        reserved: 0,
        allowed_iovas: 0x2000,
    };
    let cmd = decode(IOMMU_IOAS_ALLOW_IOVAS, &bytes(&raw)).expect("decodes");
    let want = IoasAllowIovas {
        ioas_id: 9,
        num_iovas: 1,
        allowed_iovas: UserPtr(0x2000),
    };
    assert_eq!(cmd, IommufdCmd::IoasAllowIovas(want));
    assert!(!want.allowed_iovas.is_null());
    // `if (cmd->__reserved) return -EOPNOTSUPP;`
    let bad = bytes(&IommuIoasAllowIovas {
        reserved: 0x8000_0000,
        ..raw
    });
    assert_eq!(errno(IoasAllowIovas::decode(&bad)), Errno::OPNOTSUPP);
}

#[test]
fn allow_iovas_load_iovas() {
    let r = |start, last| IommuIovaRange { start, last };
    let range = |start, last| IovaRange::new(Iova::new(start), Iova::new(last)).expect("range");
    let ok = IoasAllowIovas::load_iovas(&[r(0x1000, 0x1fff), r(0x3000, u64::MAX)]).expect("loads");
    assert_eq!(ok, vec![range(0x1000, 0x1fff), range(0x3000, u64::MAX)]);
    assert_eq!(IoasAllowIovas::load_iovas(&[]), Ok(vec![]));
    // `if (range.start >= range.last) return -EINVAL;`: inverted, and even a single byte.
    assert_eq!(
        errno(IoasAllowIovas::load_iovas(&[r(0x2000, 0x1000)])),
        Errno::INVAL
    );
    assert_eq!(
        errno(IoasAllowIovas::load_iovas(&[r(0x2000, 0x2000)])),
        Errno::INVAL
    );
    // `if (interval_tree_iter_first(itree, range.start, range.last)) return -EINVAL;`
    let overlapping = [r(0x1000, 0x2fff), r(0x2fff, 0x4000)];
    assert_eq!(
        IoasAllowIovas::load_iovas(&overlapping),
        Err(UapiError::OverlappingIovaRange {
            start: 0x2fff,
            last: 0x4000
        })
    );
}

// ---- IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_COPY ------------------------------------

fn map(flags: u32, iova: u64, length: u64) -> IommuIoasMap {
    IommuIoasMap {
        size: 40,
        flags,
        ioas_id: 2,
        reserved: 0,
        user_va: 0x7f00_0000_0000,
        length,
        iova,
    }
}

const RW: u32 = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

#[test]
fn ioas_map_round_trip_fixed_and_allocated() {
    let fixed = bytes(&map(RW | IOMMU_IOAS_MAP_FIXED_IOVA, 0x10_0000, 0x2000));
    let want = IoasMap {
        ioas_id: 2,
        flags: MapFlags::READABLE | MapFlags::WRITEABLE | MapFlags::FIXED_IOVA,
        user_va: HostVa::new(0x7f00_0000_0000),
        length: 0x2000,
        iova: Some(Iova::new(0x10_0000)),
    };
    assert_eq!(decode(IOMMU_IOAS_MAP, &fixed), Ok(IommufdCmd::IoasMap(want)));
    assert_eq!(want.flags.access(), Access::READ | Access::WRITE);
    // Without FIXED_IOVA the input iova is ignored.
    let mut alloc = bytes(&map(IOMMU_IOAS_MAP_READABLE, 0xdead_0000, 0x1000));
    let got = IoasMap::decode(&alloc).expect("decodes");
    assert_eq!(got.iova, None);
    assert_eq!(got.flags, MapFlags::READABLE);
    assert_eq!(got.flags.access(), Access::READ);
    // A zero length passes the handler's own checks (iopt_alloc_pages() refuses it later).
    assert_eq!(IoasMap::decode(&bytes(&map(RW, 0, 0))).map(|m| m.length), Ok(0));
    // `cmd->iova = iova; iommufd_ucmd_respond()`
    IoasMap::encode_reply(&mut alloc, Iova::new(0x40_0000)).expect("reply");
    assert_eq!(alloc, bytes(&map(IOMMU_IOAS_MAP_READABLE, 0x40_0000, 0x1000)));
}

#[test]
fn ioas_map_errno_table() {
    let cases: Vec<(&str, IommuIoasMap, Errno)> = vec![
        (
            "flags & ~(FIXED_IOVA | WRITEABLE | READABLE): bit 3",
            map(RW | 1 << 3, 0, 1),
            Errno::OPNOTSUPP,
        ),
        (
            "flags & ~(...): bit 31",
            map(RW | 1 << 31, 0, 1),
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->__reserved",
            IommuIoasMap {
                reserved: 1,
                ..map(RW, 0, 1)
            },
            Errno::OPNOTSUPP,
        ),
        ("cmd->iova >= ULONG_MAX", map(RW, u64::MAX, 1), Errno::OVERFLOW),
        (
            "cmd->iova >= ULONG_MAX, even without FIXED_IOVA",
            map(IOMMU_IOAS_MAP_READABLE, u64::MAX, 1),
            Errno::OVERFLOW,
        ),
        ("cmd->length >= ULONG_MAX", map(RW, 0, u64::MAX), Errno::OVERFLOW),
        (
            "!(flags & (WRITEABLE | READABLE))",
            map(IOMMU_IOAS_MAP_FIXED_IOVA, 0, 1),
            Errno::INVAL,
        ),
        (
            "!(flags & (WRITEABLE | READABLE)), no flags",
            map(0, 0, 1),
            Errno::INVAL,
        ),
        // Linux's order: flags before overflow before access.
        (
            "unknown flag wins over overflow",
            map(1 << 5, u64::MAX, u64::MAX),
            Errno::OPNOTSUPP,
        ),
        (
            "overflow wins over no access",
            map(0, u64::MAX, 1),
            Errno::OVERFLOW,
        ),
    ];
    for (name, cmd, want) in cases {
        assert_eq!(errno(IoasMap::decode(&bytes(&cmd))), want, "{name}");
        assert_eq!(
            errno(decode(IOMMU_IOAS_MAP, &bytes(&cmd))),
            want,
            "{name} (dispatch)"
        );
    }
    let bit5 = IoasMap::decode(&bytes(&map(RW | 1 << 5, 0, 1)));
    assert_eq!(
        bit5,
        Err(UapiError::UnsupportedFlags {
            cmd: "ioas_map",
            flags: 1 << 5
        })
    );
}

fn map_file(flags: u32, iova: u64, length: u64) -> IommuIoasMapFile {
    IommuIoasMapFile {
        size: 40,
        flags,
        ioas_id: 4,
        fd: 17,
        start: 0x3000,
        length,
        iova,
    }
}

#[test]
fn ioas_map_file_round_trip_and_errnos() {
    let mut cmd = bytes(&map_file(
        IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
        0x8000,
        0x1000,
    ));
    let want = IoasMapFile {
        ioas_id: 4,
        flags: MapFlags::WRITEABLE | MapFlags::FIXED_IOVA,
        fd: 17,
        start: 0x3000,
        length: 0x1000,
        iova: Some(Iova::new(0x8000)),
    };
    assert_eq!(
        decode(IOMMU_IOAS_MAP_FILE, &cmd),
        Ok(IommufdCmd::IoasMapFile(want))
    );
    assert_eq!(want.flags.access(), Access::WRITE);
    IoasMapFile::encode_reply(&mut cmd, Iova::new(0x9000)).expect("reply");
    assert_eq!(
        cmd,
        bytes(&map_file(
            IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
            0x9000,
            0x1000
        ))
    );
    // A negative fd is the host's EBADF, after the lookup: it decodes.
    assert_eq!(
        IoasMapFile::decode(&bytes(&IommuIoasMapFile {
            fd: -1,
            ..map_file(RW, 0, 1)
        }))
        .map(|m| m.fd),
        Ok(-1)
    );
    let cases = [
        (
            "flags & ~(FIXED_IOVA | WRITEABLE | READABLE)",
            map_file(RW | 1 << 3, 0, 1),
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->iova >= ULONG_MAX",
            map_file(RW, u64::MAX, 1),
            Errno::OVERFLOW,
        ),
        (
            "cmd->length >= ULONG_MAX",
            map_file(RW, 0, u64::MAX),
            Errno::OVERFLOW,
        ),
        (
            "!(flags & (WRITEABLE | READABLE))",
            map_file(IOMMU_IOAS_MAP_FIXED_IOVA, 0, 1),
            Errno::INVAL,
        ),
    ];
    for (name, cmd, want) in cases {
        assert_eq!(errno(IoasMapFile::decode(&bytes(&cmd))), want, "{name}");
    }
}

fn copy(flags: u32, length: u64, dst_iova: u64, src_iova: u64) -> IommuIoasCopy {
    IommuIoasCopy {
        size: 40,
        flags,
        dst_ioas_id: 5,
        src_ioas_id: 6,
        length,
        dst_iova,
        src_iova,
    }
}

#[test]
fn ioas_copy_round_trip_and_errnos() {
    let mut cmd = bytes(&copy(IOMMU_IOAS_MAP_READABLE, 0x1000, 0xabc, 0x2000));
    let want = IoasCopy {
        dst_ioas_id: 5,
        src_ioas_id: 6,
        flags: MapFlags::READABLE,
        length: 0x1000,
        dst_iova: None,
        src_iova: Iova::new(0x2000),
    };
    assert_eq!(decode(IOMMU_IOAS_COPY, &cmd), Ok(IommufdCmd::IoasCopy(want)));
    let fixed = IoasCopy::decode(&bytes(&copy(RW | IOMMU_IOAS_MAP_FIXED_IOVA, 1, 0xabc, 0)));
    assert_eq!(fixed.map(|c| c.dst_iova), Ok(Some(Iova::new(0xabc))));
    IoasCopy::encode_reply(&mut cmd, Iova::new(0x5000)).expect("reply");
    assert_eq!(cmd, bytes(&copy(IOMMU_IOAS_MAP_READABLE, 0x1000, 0x5000, 0x2000)));
    let cases = [
        (
            "flags & ~(FIXED_IOVA | WRITEABLE | READABLE)",
            copy(RW | 1 << 4, 1, 0, 0),
            Errno::OPNOTSUPP,
        ),
        // MOCK_FLAGS_ACCESS_SYZ is stripped only by a selftest kernel's syz conversion.
        (
            "flags & ~(...): MOCK_FLAGS_ACCESS_SYZ",
            copy(RW | 1 << 16, 1, 0, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "cmd->length >= ULONG_MAX",
            copy(RW, u64::MAX, 0, 0),
            Errno::OVERFLOW,
        ),
        (
            "cmd->src_iova >= ULONG_MAX",
            copy(RW, 1, 0, u64::MAX),
            Errno::OVERFLOW,
        ),
        (
            "cmd->dst_iova >= ULONG_MAX",
            copy(RW, 1, u64::MAX, 0),
            Errno::OVERFLOW,
        ),
        (
            "!(flags & (WRITEABLE | READABLE))",
            copy(IOMMU_IOAS_MAP_FIXED_IOVA, 1, 0, 0),
            Errno::INVAL,
        ),
    ];
    for (name, cmd, want) in cases {
        assert_eq!(errno(IoasCopy::decode(&bytes(&cmd))), want, "{name}");
    }
}

// ---- IOMMU_IOAS_UNMAP --------------------------------------------------------------------------

fn unmap(iova: u64, length: u64) -> IommuIoasUnmap {
    IommuIoasUnmap {
        size: 24,
        ioas_id: 8,
        iova,
        length,
    }
}

#[test]
fn ioas_unmap_round_trip_target_and_reply() {
    let mut cmd = bytes(&unmap(0x1000, 0x2000));
    let got = IoasUnmap::decode(&cmd).expect("decodes");
    assert_eq!(
        got,
        IoasUnmap {
            ioas_id: 8,
            iova: Iova::new(0x1000),
            length: 0x2000
        }
    );
    let range = IovaRange::from_start_len(Iova::new(0x1000), 0x2000).expect("range");
    assert_eq!(got.target(), Ok(UnmapTarget::Range(range)));
    // `if (cmd->iova == 0 && cmd->length == U64_MAX)`: unmap everything.
    assert_eq!(
        IoasUnmap::decode(&bytes(&unmap(0, u64::MAX))).and_then(|u| u.target()),
        Ok(UnmapTarget::All)
    );
    // `cmd->length = unmapped; iommufd_ucmd_respond()`
    IoasUnmap::encode_reply(&mut cmd, 0x4000).expect("reply");
    assert_eq!(cmd, bytes(&unmap(0x1000, 0x4000)));
}

#[test]
fn ioas_unmap_checks_come_after_the_lookup() {
    // iommufd_ioas_unmap() checks nothing before iommufd_get_ioas(): every value decodes, and a
    // missing IOAS (ENOENT) wins over the range errors below.
    let cases = [
        ("cmd->iova >= ULONG_MAX", unmap(u64::MAX, 1), Errno::OVERFLOW),
        (
            "cmd->length >= ULONG_MAX (iova != 0)",
            unmap(1, u64::MAX),
            Errno::OVERFLOW,
        ),
        ("iopt_unmap_iova(): !length", unmap(0x1000, 0), Errno::INVAL),
        (
            "iopt_unmap_iova(): check_add_overflow(iova, length - 1)",
            unmap(u64::MAX - 1, 3),
            Errno::OVERFLOW,
        ),
    ];
    for (name, raw, want) in cases {
        let cmd = IoasUnmap::decode(&bytes(&raw)).expect(name);
        assert_eq!(errno(cmd.target()), want, "{name}");
    }
    // The last byte of the space is reachable.
    let last = IoasUnmap::decode(&bytes(&unmap(u64::MAX - 1, 2))).and_then(|u| u.target());
    assert!(matches!(last, Ok(UnmapTarget::Range(r)) if r.last() == Iova::MAX));
}

// ---- IOMMU_OPTION --------------------------------------------------------------------------------

fn option(option_id: u32, op: u16, object_id: u32, val64: u64) -> IommuOption {
    IommuOption {
        size: 24,
        option_id,
        op,
        reserved: 0,
        object_id,
        val64,
    }
}

#[test]
fn option_round_trips() {
    let get = bytes(&option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 77));
    assert_eq!(
        decode(IOMMU_OPTION, &get),
        Ok(IommufdCmd::Option(IommuOptionCmd::RlimitMode(OptionOp::Get)))
    );
    let set = bytes(&option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1));
    assert_eq!(
        IommuOptionCmd::decode(&set),
        Ok(IommuOptionCmd::RlimitMode(OptionOp::Set(1)))
    );
    let huge = IommuOptionCmd::decode(&bytes(&option(
        IOMMU_OPTION_HUGE_PAGES,
        IOMMU_OPTION_OP_SET,
        3,
        0,
    )));
    assert_eq!(
        huge,
        Ok(IommuOptionCmd::HugePages {
            ioas_id: 3,
            op: IOMMU_OPTION_OP_SET,
            val64: 0
        })
    );
    assert_eq!(huge.and_then(|h| h.huge_pages_op()), Ok(OptionOp::Set(0)));
}

#[test]
fn option_errno_table() {
    let cases = [
        (
            "iommufd_option(): cmd->__reserved",
            IommuOption {
                reserved: 1,
                ..option(0, 0, 0, 0)
            },
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_option(): default: unknown option_id",
            option(2, IOMMU_OPTION_OP_GET, 0, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_option_rlimit_mode(): cmd->object_id",
            option(IOMMU_OPTION_RLIMIT_MODE, 1, 4, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_option_rlimit_mode(): unknown op",
            option(IOMMU_OPTION_RLIMIT_MODE, 2, 0, 0),
            Errno::OPNOTSUPP,
        ),
        (
            "reserved before option_id",
            IommuOption {
                reserved: 1,
                ..option(9, 9, 9, 9)
            },
            Errno::OPNOTSUPP,
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(errno(IommuOptionCmd::decode(&bytes(&raw))), want, "{name}");
    }
    // HUGE_PAGES: the IOAS is looked up before the op, so an unknown op decodes ...
    let huge = IommuOptionCmd::decode(&bytes(&option(IOMMU_OPTION_HUGE_PAGES, 7, 3, 0))).expect("decodes");
    // ... and iommufd_ioas_option_huge_pages() refuses it after the lookup.
    assert_eq!(errno(huge.huge_pages_op()), Errno::OPNOTSUPP);
    // The value is checked last: `else rc = -EINVAL;`
    assert_eq!(option_bool(0), Ok(false));
    assert_eq!(option_bool(1), Ok(true));
    assert_eq!(errno(option_bool(2)), Errno::INVAL);
}

#[test]
fn option_reply_writes_only_val64() {
    // `copy_to_user(&((struct iommu_option __user *)ucmd->ubuffer)->val64, &cmd->val64, 8)`
    let mut cmd = bytes(&option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 0));
    cmd.extend_from_slice(&[0xaa; 8]);
    cmd[..4].copy_from_slice(&32u32.to_ne_bytes());
    IommuOptionCmd::encode_reply(&mut cmd, 1).expect("reply");
    let mut want = bytes(&IommuOption {
        size: 32,
        ..option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 1)
    });
    want.extend_from_slice(&[0xaa; 8]);
    assert_eq!(cmd, want);
}

// ---- IOMMU_VFIO_IOAS -----------------------------------------------------------------------------

fn vfio_ioas(ioas_id: u32, op: u16) -> IommuVfioIoas {
    IommuVfioIoas {
        size: 12,
        ioas_id,
        op,
        reserved: 0,
    }
}

#[test]
fn vfio_ioas_round_trips_reply_and_errnos() {
    assert_eq!(
        VfioIoasCmd::decode(&bytes(&vfio_ioas(9, IOMMU_VFIO_IOAS_GET))),
        Ok(VfioIoasCmd::Get)
    );
    assert_eq!(
        decode(IOMMU_VFIO_IOAS, &bytes(&vfio_ioas(9, IOMMU_VFIO_IOAS_SET))),
        Ok(IommufdCmd::VfioIoas(VfioIoasCmd::Set { ioas_id: 9 }))
    );
    assert_eq!(
        VfioIoasCmd::decode(&bytes(&vfio_ioas(9, IOMMU_VFIO_IOAS_CLEAR))),
        Ok(VfioIoasCmd::Clear)
    );
    let mut get = bytes(&vfio_ioas(0, IOMMU_VFIO_IOAS_GET));
    VfioIoasCmd::encode_reply(&mut get, id(12)).expect("reply");
    assert_eq!(get, bytes(&vfio_ioas(12, IOMMU_VFIO_IOAS_GET)));
    // iommufd_vfio_ioas(): `if (cmd->__reserved) return -EOPNOTSUPP;` and `default: return -EOPNOTSUPP;`
    let reserved = IommuVfioIoas {
        reserved: 1,
        ..vfio_ioas(1, IOMMU_VFIO_IOAS_GET)
    };
    assert_eq!(errno(VfioIoasCmd::decode(&bytes(&reserved))), Errno::OPNOTSUPP);
    assert_eq!(
        errno(VfioIoasCmd::decode(&bytes(&vfio_ioas(1, 3)))),
        Errno::OPNOTSUPP
    );
}

// ---- replies and the caller's declared size -----------------------------------------------------

#[test]
fn replies_stop_at_the_declared_size() {
    // iommufd_ucmd_respond() copies min(user_size, sizeof(*cmd)): bytes of the caller's buffer past
    // the declared size are left alone, and so are bytes past the struct.
    let mut cmd = bytes(&map(RW, 0, 0x1000));
    cmd.extend_from_slice(&[0u8; 8]);
    cmd[..4].copy_from_slice(&48u32.to_ne_bytes());
    cmd.extend_from_slice(&[0x55; 4]);
    IoasMap::encode_reply(&mut cmd, Iova::new(0x7000)).expect("reply");
    let mut want = bytes(&IommuIoasMap {
        size: 48,
        ..map(RW, 0x7000, 0x1000)
    });
    want.extend_from_slice(&[0u8; 8]);
    want.extend_from_slice(&[0x55; 4]);
    assert_eq!(cmd, want);
    // A buffer without its size word cannot be answered.
    assert_eq!(errno(IoasAlloc::encode_reply(&mut [0u8; 2], id(1))), Errno::FAULT);
}
