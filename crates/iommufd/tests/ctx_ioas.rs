//! `/dev/iommu` through the raw uAPI bytes: the IOAS commands, named after the Linux selftests
//! they follow (tools/testing/selftests/iommu/iommufd.c), each asserting the exact errno and that
//! objects, pins and the account are back to baseline at the end.

mod ctx_support;

use ctx_support::*;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_IOVA_RANGES, IOMMU_OPTION, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET,
    IOMMU_OPTION_RLIMIT_MODE, IommuIoasAllowIovas, IommuIoasIovaRanges, IommuIovaRange, IommuOption,
};
use uvfio_iommufd::ctx::{Credentials, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use zerocopy::{FromZeros, IntoBytes};

/// `TEST_F(iommufd, destroy)` and `TEST_F(iommufd_ioas, ioas_destroy)`.
#[test]
fn iommufd_destroy_and_ioas_destroy() {
    let user = TestUser::new();
    let fd = open();
    assert_eq!(destroy(&fd, &user, 0), Err(rustix::io::Errno::NOENT));
    let ioas = ioas_alloc(&fd, &user);
    destroy(&fd, &user, ioas).unwrap();
    assert_eq!(destroy(&fd, &user, ioas), Err(rustix::io::Errno::NOENT));
    closed_clean(&fd);
}

/// `TEST_F(iommufd_ioas, area)` / `area_auto_iova` without a domain, plus the unmap rules of
/// `unmap_fully_contained_areas`.
#[test]
fn iommufd_ioas_area() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let buf = user.alloc(16 * 4096);
    for i in 0..16u64 {
        assert_eq!(
            map(&fd, &user, ioas, buf, 4096, Some((1 << 20) + i * 4096)),
            Ok((1 << 20) + i * 4096)
        );
    }
    assert_eq!(
        map(&fd, &user, ioas, buf, 4096, Some(1 << 20)),
        Err(rustix::io::Errno::EXIST)
    );
    // Unmap a range that is only half of the 16 areas' span plus a bit beyond: ENOENT if it cuts.
    assert_eq!(
        unmap(&fd, &user, ioas, (1 << 20) + 0x800, 0x1000),
        Err(rustix::io::Errno::NOENT)
    );
    assert_eq!(unmap(&fd, &user, ioas, 1 << 20, 8 * 4096), Ok(8 * 4096));
    assert_eq!(
        unmap(&fd, &user, ioas, 1 << 20, 8 * 4096),
        Err(rustix::io::Errno::NOENT),
        "nothing left there"
    );
    assert_eq!(unmap(&fd, &user, ioas, 0, u64::MAX), Ok(8 * 4096), "unmap all");
    assert_eq!(
        unmap(&fd, &user, ioas, 0, u64::MAX),
        Ok(0),
        "unmap all of nothing succeeds"
    );
    assert_eq!(unmap(&fd, &user, ioas, 0, 0), Err(rustix::io::Errno::INVAL));
    assert_eq!(
        unmap(&fd, &user, ioas, u64::MAX - 10, 20),
        Err(rustix::io::Errno::OVERFLOW)
    );
    // Automatic IOVAs never overlap and never start at 0.
    let a = map(&fd, &user, ioas, buf, 4096, None).unwrap();
    let b = map(&fd, &user, ioas, buf, 2 * 4096, None).unwrap();
    assert!(a != 0 && b != 0 && (a + 4096 <= b || b + 2 * 4096 <= a));
    assert_eq!(map(&fd, &user, ioas, buf, 0, None), Err(rustix::io::Errno::INVAL));
    assert_eq!(
        map(&fd, &user, 99, buf, 4096, None),
        Err(rustix::io::Errno::NOENT)
    );
    closed_clean(&fd);
}

/// `TEST_F(iommufd_ioas, iova_ranges)` and `area_allowed`, without a domain.
#[test]
fn iommufd_ioas_iova_ranges_and_allowed() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let array = user.alloc(4096);
    let mut cmd = IommuIoasIovaRanges {
        size: size_of::<IommuIoasIovaRanges>() as u32,
        ioas_id: ioas,
        num_iovas: 1,
        allowed_iovas: array,
        ..FromZeros::new_zeroed()
    };
    ioctl(&fd, &user, IOMMU_IOAS_IOVA_RANGES, &mut cmd).unwrap();
    assert_eq!(cmd.num_iovas, 1);
    assert_eq!(cmd.out_iova_alignment, 1, "no domain: any IOVA");
    let mut got = IommuIovaRange::new_zeroed();
    user.read(UserPtr(array), got.as_mut_bytes()).unwrap();
    assert_eq!((got.start, got.last), (0, u64::MAX));
    // No room at all: EMSGSIZE, with num_iovas saying how many there are.
    cmd.num_iovas = 0;
    assert_eq!(
        ioctl(&fd, &user, IOMMU_IOAS_IOVA_RANGES, &mut cmd),
        Err(rustix::io::Errno::MSGSIZE)
    );
    assert_eq!(cmd.num_iovas, 1);
    // Allowed IOVAs steer automatic allocation.
    let ranges = [IommuIovaRange {
        start: 16 << 20,
        last: (32 << 20) - 1,
    }];
    let list = user.alloc(4096);
    user.write(UserPtr(list), ranges.as_bytes()).unwrap();
    let mut allow = IommuIoasAllowIovas {
        size: size_of::<IommuIoasAllowIovas>() as u32,
        ioas_id: ioas,
        num_iovas: 1,
        allowed_iovas: list,
        ..FromZeros::new_zeroed()
    };
    ioctl(&fd, &user, IOMMU_IOAS_ALLOW_IOVAS, &mut allow).unwrap();
    let buf = user.alloc(4096);
    let at = map(&fd, &user, ioas, buf, 4096, None).unwrap();
    assert!((16 << 20..32 << 20).contains(&at), "{at:#x}");
    // A bad list: start >= last, overlapping entries, an unreadable pointer.
    let bad = [IommuIovaRange { start: 5, last: 5 }];
    user.write(UserPtr(list), bad.as_bytes()).unwrap();
    assert_eq!(
        ioctl(&fd, &user, IOMMU_IOAS_ALLOW_IOVAS, &mut allow),
        Err(rustix::io::Errno::INVAL)
    );
    let overlap = [
        IommuIovaRange {
            start: 0,
            last: 0x1fff,
        },
        IommuIovaRange {
            start: 0x1000,
            last: 0x2fff,
        },
    ];
    user.write(UserPtr(list), overlap.as_bytes()).unwrap();
    allow.num_iovas = 2;
    assert_eq!(
        ioctl(&fd, &user, IOMMU_IOAS_ALLOW_IOVAS, &mut allow),
        Err(rustix::io::Errno::INVAL)
    );
    allow.allowed_iovas = 0x10;
    assert_eq!(
        ioctl(&fd, &user, IOMMU_IOAS_ALLOW_IOVAS, &mut allow),
        Err(rustix::io::Errno::FAULT)
    );
    // A hostile count does not make the host allocate for it: the first unreadable entry fails.
    allow.num_iovas = u32::MAX;
    assert_eq!(
        ioctl(&fd, &user, IOMMU_IOAS_ALLOW_IOVAS, &mut allow),
        Err(rustix::io::Errno::FAULT)
    );
    closed_clean(&fd);
}

/// Objects come back on close even when the caller leaves mappings behind.
#[test]
fn close_tears_everything_down() {
    let user = TestUser::new();
    let fd = open();
    let buf = user.alloc(8 * 4096);
    for _ in 0..3 {
        let ioas = ioas_alloc(&fd, &user);
        map(&fd, &user, ioas, buf, 8 * 4096, None).unwrap();
    }
    assert_eq!(fd.ctx.objects().len(), 3);
    closed_clean(&fd);
}

fn rlimit_mode(fd: &Fd, user: &TestUser, op: u16, val64: u64) -> Result<u64, rustix::io::Errno> {
    let mut cmd = IommuOption {
        size: size_of::<IommuOption>() as u32,
        option_id: IOMMU_OPTION_RLIMIT_MODE,
        op,
        val64,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_OPTION, &mut cmd).map(|()| cmd.val64)
}

/// `TEST_F(iommufd, global_options)`'s RLIMIT_MODE part: get, set, the capability and the
/// "no objects yet" rule.
#[test]
fn iommufd_rlimit_mode() {
    let user = TestUser::new();
    let fd = open();
    assert_eq!(rlimit_mode(&fd, &user, IOMMU_OPTION_OP_GET, 0), Ok(0));
    assert_eq!(
        rlimit_mode(&fd, &user, IOMMU_OPTION_OP_SET, 1),
        Err(rustix::io::Errno::PERM)
    );
    let fd = open_with(Credentials {
        sys_resource: true,
        ..Default::default()
    });
    assert_eq!(
        rlimit_mode(&fd, &user, IOMMU_OPTION_OP_SET, 2),
        Err(rustix::io::Errno::INVAL)
    );
    assert_eq!(rlimit_mode(&fd, &user, IOMMU_OPTION_OP_SET, 1), Ok(1));
    assert_eq!(rlimit_mode(&fd, &user, IOMMU_OPTION_OP_GET, 0), Ok(1));
    let ioas = ioas_alloc(&fd, &user);
    assert_eq!(
        rlimit_mode(&fd, &user, IOMMU_OPTION_OP_SET, 0),
        Err(rustix::io::Errno::BUSY)
    );
    destroy(&fd, &user, ioas).unwrap();
    assert_eq!(rlimit_mode(&fd, &user, IOMMU_OPTION_OP_SET, 0), Ok(0));
    assert_eq!(rlimit_mode(&fd, &user, 7, 0), Err(rustix::io::Errno::OPNOTSUPP));
    closed_clean(&fd);
}

fn vfio_ioas(fd: &Fd, user: &TestUser, op: u16, ioas_id: u32) -> Result<u32, rustix::io::Errno> {
    use uvfio_abi::iommufd::{IOMMU_VFIO_IOAS, IommuVfioIoas};
    let mut cmd = IommuVfioIoas {
        size: size_of::<IommuVfioIoas>() as u32,
        ioas_id,
        op,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_VFIO_IOAS, &mut cmd).map(|()| cmd.ioas_id)
}

/// `TEST_F(vfio_compat_nodev, ...)`'s `IOMMU_VFIO_IOAS` part: get with none set is `ENODEV`; set,
/// get, clear; a destroyed compat IOAS is no compat IOAS any more.
#[test]
fn vfio_compat_ioas_get_set_clear() {
    use uvfio_abi::iommufd::{IOMMU_VFIO_IOAS_CLEAR, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET};
    let user = TestUser::new();
    let fd = open();
    assert_eq!(
        vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_GET, 0),
        Err(rustix::io::Errno::NODEV)
    );
    let ioas = ioas_alloc(&fd, &user);
    assert_eq!(
        vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_SET, 999),
        Err(rustix::io::Errno::NOENT)
    );
    vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_SET, ioas).unwrap();
    assert_eq!(vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_GET, 0), Ok(ioas));
    vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_CLEAR, 0).unwrap();
    assert_eq!(
        vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_GET, 0),
        Err(rustix::io::Errno::NODEV)
    );
    vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_SET, ioas).unwrap();
    destroy(&fd, &user, ioas).unwrap();
    let reused = ioas_alloc(&fd, &user);
    assert_eq!(reused, ioas, "the id is reused...");
    assert_eq!(
        vfio_ioas(&fd, &user, IOMMU_VFIO_IOAS_GET, 0),
        Err(rustix::io::Errno::NODEV),
        "...but is no compat IOAS"
    );
    assert_eq!(vfio_ioas(&fd, &user, 9, 0), Err(rustix::io::Errno::OPNOTSUPP));
    closed_clean(&fd);
}
