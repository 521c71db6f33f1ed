//! Shared harness of the `/dev/iommu` uAPI tests: a `TestUser` over buffers the test owns, an
//! open context, raw ioctl helpers and the end-of-test leak check.
#![allow(dead_code)]

use std::cell::RefCell;
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IommuDestroy, IommuIoasAlloc, IommuIoasMap, IommuIoasUnmap,
};
use uvfio_iommufd::ctx::{Accounts, BadFd, Credentials, Iommufd, UserFault, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::HostVa;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// The test's side of the uAPI: page-aligned buffers it owns, and copies in and out of them.
pub struct TestUser {
    bufs: RefCell<Vec<(u64, Vec<u8>)>>,
    files: RefCell<Vec<(i32, std::os::fd::OwnedFd)>>,
}

impl TestUser {
    pub fn new() -> Self {
        TestUser {
            bufs: RefCell::new(Vec::new()),
            files: RefCell::new(Vec::new()),
        }
    }

    /// A new memfd of `len` bytes, known to the context under the returned number.
    pub fn memfd(&self, len: u64) -> i32 {
        use std::os::fd::AsRawFd;
        let fd = rustix::fs::memfd_create("uapi-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        let n = fd.as_raw_fd();
        self.files.borrow_mut().push((n, fd));
        n
    }

    /// A new zeroed buffer of `len` bytes; its address. It lives as long as `self`.
    pub fn alloc(&self, len: usize) -> u64 {
        let mut v = vec![0u8; len + 4096];
        let addr = v.as_mut_ptr() as u64;
        let aligned = (addr + 4095) & !4095;
        self.bufs.borrow_mut().push((aligned, v));
        aligned
    }

    pub fn with<R>(&self, ptr: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, UserFault> {
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

    fn file(&self, fd: i32) -> Result<std::os::fd::OwnedFd, BadFd> {
        self.files
            .borrow()
            .iter()
            .find(|(n, _)| *n == fd)
            .and_then(|(_, f)| f.try_clone().ok())
            .ok_or(BadFd(fd))
    }

    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer {
        // SAFETY: the test's buffers live as long as the `TestUser`, which outlives the context
        // (it is declared first in each test); addresses outside them are never mapped by the
        // tests, so nothing is adopted from them (the pin fails first).
        unsafe { UserBuffer::new(va, len) }
    }
}

pub struct Fd {
    pub ctx: Iommufd,
    pub mem: Arc<HostMemory>,
}

pub fn open_with(creds: Credentials) -> Fd {
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
    let accounts = Accounts::unlimited();
    Fd {
        ctx: Iommufd::new(Arc::clone(&mem), accounts, creds),
        mem,
    }
}

pub fn open() -> Fd {
    open_with(Credentials::default())
}

pub fn ioctl<T: IntoBytes + FromBytes + zerocopy::Immutable>(
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

pub fn ioas_alloc(fd: &Fd, user: &TestUser) -> u32 {
    let mut cmd = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_ALLOC, &mut cmd).unwrap();
    assert_ne!(cmd.out_ioas_id, 0);
    cmd.out_ioas_id
}

pub fn map(
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

pub fn unmap(fd: &Fd, user: &TestUser, ioas: u32, iova: u64, len: u64) -> Result<u64, rustix::io::Errno> {
    let mut cmd = IommuIoasUnmap {
        size: size_of::<IommuIoasUnmap>() as u32,
        ioas_id: ioas,
        iova,
        length: len,
    };
    ioctl(fd, user, IOMMU_IOAS_UNMAP, &mut cmd).map(|()| cmd.length)
}

pub fn destroy(fd: &Fd, user: &TestUser, id: u32) -> Result<(), rustix::io::Errno> {
    let mut cmd = IommuDestroy {
        size: size_of::<IommuDestroy>() as u32,
        id,
    };
    ioctl(fd, user, IOMMU_DESTROY, &mut cmd)
}

pub fn closed_clean(fd: &Fd) {
    assert!(fd.ctx.close().is_empty(), "objects left after close");
    assert!(fd.ctx.objects().is_empty());
    assert!(fd.ctx.objects().reserved().is_empty());
    assert_eq!(fd.ctx.account().locked_pages(), 0);
    assert_eq!(fd.mem.account().locked_pages, 0);
    assert_eq!(fd.mem.stats().adopted_segments, 0);
}
