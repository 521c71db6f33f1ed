//! `/dev/iommu` through the raw uAPI bytes: the IOAS commands, named after the Linux selftests
//! they follow (tools/testing/selftests/iommu/iommufd.c), each asserting the exact errno and that
//! objects, pins and the account are back to baseline at the end.

use std::cell::RefCell;
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP,
    IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP,
    IOMMU_OPTION, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE, IommuDestroy,
    IommuIoasAlloc, IommuIoasAllowIovas, IommuIoasIovaRanges, IommuIoasMap, IommuIoasUnmap, IommuIovaRange,
    IommuOption,
};
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd, UserFault, UserMemory};
use uvfio_iommufd::pages::Account;
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::HostVa;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// The test's side of the uAPI: page-aligned buffers it owns, and copies in and out of them.
struct TestUser {
    bufs: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl TestUser {
    fn new() -> Self {
        TestUser {
            bufs: RefCell::new(Vec::new()),
        }
    }

    /// A new zeroed buffer of `len` bytes; its address. It lives as long as `self`.
    fn alloc(&self, len: usize) -> u64 {
        let mut v = vec![0u8; len + 4096];
        let addr = v.as_mut_ptr() as u64;
        let aligned = (addr + 4095) & !4095;
        self.bufs.borrow_mut().push((aligned, v));
        aligned
    }

    fn with<R>(&self, ptr: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, UserFault> {
        let mut bufs = self.bufs.borrow_mut();
        for (aligned, v) in bufs.iter_mut() {
            let base = v.as_ptr() as u64;
            let off = (ptr.wrapping_sub(base)) as usize;
            if ptr >= *aligned && off.checked_add(len).is_some_and(|end| end <= v.len()) {
                return Ok(f(&mut v[off..off + len]));
            }
        }
        Err(UserFault { ptr, len })
    }
}

impl UserMemory for TestUser {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault> {
        self.with(ptr.0, buf.len(), |src| buf.copy_from_slice(src))
    }

    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault> {
        self.with(ptr.0, buf.len(), |dst| dst.copy_from_slice(buf))
    }

    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer {
        // SAFETY: the test's buffers live as long as the `TestUser`, which outlives the context
        // (it is declared first in each test); addresses outside them are never mapped by the
        // tests, so nothing is adopted from them (the pin fails first).
        unsafe { UserBuffer::new(va, len) }
    }
}

struct Fd {
    ctx: Iommufd,
    mem: Arc<HostMemory>,
}

fn open_with(creds: Credentials) -> Fd {
    let mem = Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: 64 << 20,
            ..MemoryConfig::default()
        })
        .unwrap(),
    );
    let accounts = Accounts {
        user: Arc::new(Account::new(None)),
        mm: Arc::new(Account::new(None)),
    };
    Fd {
        ctx: Iommufd::new(Arc::clone(&mem), accounts, creds),
        mem,
    }
}

fn open() -> Fd {
    open_with(Credentials::default())
}

fn ioctl<T: IntoBytes + FromBytes + zerocopy::Immutable>(
    fd: &Fd,
    user: &TestUser,
    request: u32,
    cmd: &mut T,
) -> Result<(), rustix::io::Errno> {
    let mut bytes = cmd.as_bytes().to_vec();
    let result = fd.ctx.ioctl(request, &mut bytes, user).map_err(|e| e.errno());
    *cmd = T::read_from_bytes(&bytes).unwrap();
    result
}

fn ioas_alloc(fd: &Fd, user: &TestUser) -> u32 {
    let mut cmd = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_ALLOC, &mut cmd).unwrap();
    assert_ne!(cmd.out_ioas_id, 0);
    cmd.out_ioas_id
}

fn map(
    fd: &Fd,
    user: &TestUser,
    ioas: u32,
    va: u64,
    len: u64,
    iova: Option<u64>,
) -> Result<u64, rustix::io::Errno> {
    let mut flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    if iova.is_some() {
        flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
    }
    let mut cmd = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags,
        ioas_id: ioas,
        user_va: va,
        length: len,
        iova: iova.unwrap_or(0),
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_MAP, &mut cmd).map(|()| cmd.iova)
}

fn unmap(fd: &Fd, user: &TestUser, ioas: u32, iova: u64, len: u64) -> Result<u64, rustix::io::Errno> {
    let mut cmd = IommuIoasUnmap {
        size: size_of::<IommuIoasUnmap>() as u32,
        ioas_id: ioas,
        iova,
        length: len,
    };
    ioctl(fd, user, IOMMU_IOAS_UNMAP, &mut cmd).map(|()| cmd.length)
}

fn destroy(fd: &Fd, user: &TestUser, id: u32) -> Result<(), rustix::io::Errno> {
    let mut cmd = IommuDestroy {
        size: size_of::<IommuDestroy>() as u32,
        id,
    };
    ioctl(fd, user, IOMMU_DESTROY, &mut cmd)
}

fn closed_clean(fd: &Fd) {
    assert!(fd.ctx.close().is_empty(), "objects left after close");
    assert!(fd.ctx.objects().is_empty());
    assert!(fd.ctx.objects().reserved().is_empty());
    assert_eq!(fd.ctx.account().locked_pages(), 0);
    assert_eq!(fd.mem.account().locked_pages, 0);
    assert_eq!(fd.mem.stats().adopted_segments, 0);
}

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
    let fd = open_with(Credentials { sys_resource: true });
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
