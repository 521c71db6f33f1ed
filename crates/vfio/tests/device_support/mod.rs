//! Shared by the device tests of the vfio crate and of the host (which includes this directory
//! with `#[path]`): the test double [`model::TestDevice`], a device fd driven with raw uAPI bytes
//! ([`DeviceFd`]: each crate implements it over its own kind of device file), the uAPI helpers,
//! eventfds, mappings, and [`suite`], the scenarios both crates run through every kind of device
//! file.
#![allow(dead_code)]

pub mod model;
pub mod suite;

use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use uvfio_abi::vfio::{
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET,
    VFIO_DEVICE_SET_IRQS, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VfioDeviceInfo, VfioIrqInfo, VfioIrqSet, VfioRegionInfo,
};
use uvfio_iommufd::ctx::{BadFd, UserFault, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::UserBuffer;
use uvfio_types::HostVa;
use uvfio_vfio::device::RegionMap;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

pub const PAGE: u64 = 4096;

/// A device file driven as a C driver drives one: raw ioctl bytes, `pread` / `pwrite` at file
/// offsets, `mmap`.
pub trait DeviceFd {
    /// `ioctl(fd, request, arg)` with `arg` pointing at `arg`.
    fn ioctl_buf(&self, request: u32, arg: &mut [u8]) -> Result<u32, Errno>;
    /// `ioctl(fd, request, value)`.
    fn ioctl_value(&self, request: u32, value: u64) -> Result<u32, Errno>;
    /// `pread(fd, buf, offset)`.
    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// `pwrite(fd, data, offset)`.
    fn pwrite(&self, offset: u64, data: &[u8]) -> Result<usize, Errno>;
    /// `mmap(fd, offset, len)`: the file to map.
    fn mmap(&self, offset: u64, len: u64) -> Result<RegionMap, Errno>;
}

/// `VFIO_PCI_INDEX_TO_OFFSET(index)`.
pub fn region_offset(index: u32) -> u64 {
    u64::from(index) << 40
}

pub fn device_info(dev: &dyn DeviceFd) -> Result<VfioDeviceInfo, Errno> {
    let mut info = VfioDeviceInfo {
        argsz: size_of::<VfioDeviceInfo>() as u32,
        ..FromZeros::new_zeroed()
    };
    dev.ioctl_buf(VFIO_DEVICE_GET_INFO, info.as_mut_bytes())?;
    Ok(info)
}

/// `GET_REGION_INFO` of `index` declaring `argsz`, in a buffer of `len` bytes filled with 0xee
/// past the struct: the whole buffer after the call.
pub fn region_info_raw(dev: &dyn DeviceFd, index: u32, argsz: u32, len: usize) -> Result<Vec<u8>, Errno> {
    let head = VfioRegionInfo {
        argsz,
        index,
        ..FromZeros::new_zeroed()
    };
    let mut buf = vec![0xeeu8; len.max(size_of::<VfioRegionInfo>())];
    buf[..size_of::<VfioRegionInfo>()].copy_from_slice(head.as_bytes());
    buf.truncate(len);
    dev.ioctl_buf(VFIO_DEVICE_GET_REGION_INFO, &mut buf)?;
    Ok(buf)
}

/// `GET_REGION_INFO` of `index` with room for a chain: the struct and the whole buffer.
pub fn region_info(dev: &dyn DeviceFd, index: u32) -> Result<(VfioRegionInfo, Vec<u8>), Errno> {
    let buf = region_info_raw(dev, index, 256, 256)?;
    let info = VfioRegionInfo::read_from_prefix(&buf).unwrap().0;
    Ok((info, buf))
}

pub fn irq_info(dev: &dyn DeviceFd, index: u32) -> Result<VfioIrqInfo, Errno> {
    let mut info = VfioIrqInfo {
        argsz: size_of::<VfioIrqInfo>() as u32,
        index,
        ..FromZeros::new_zeroed()
    };
    dev.ioctl_buf(VFIO_DEVICE_GET_IRQ_INFO, info.as_mut_bytes())?;
    Ok(info)
}

/// The `data[]` of a `SET_IRQS`.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// `DATA_NONE`.
    None,
    /// `DATA_BOOL`.
    Bool(&'a [u8]),
    /// `DATA_EVENTFD`.
    Fds(&'a [i32]),
}

/// `SET_IRQS` with `action` (one `VFIO_IRQ_SET_ACTION_*`), the data's type flag, `argsz` exactly
/// the header and the data.
pub fn set_irqs(
    dev: &dyn DeviceFd,
    action: u32,
    index: u32,
    start: u32,
    count: u32,
    data: Data<'_>,
) -> Result<u32, Errno> {
    let (flag, bytes) = match data {
        Data::None => (VFIO_IRQ_SET_DATA_NONE, Vec::new()),
        Data::Bool(b) => (VFIO_IRQ_SET_DATA_BOOL, b.to_vec()),
        Data::Fds(fds) => (
            VFIO_IRQ_SET_DATA_EVENTFD,
            fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect(),
        ),
    };
    let hdr = VfioIrqSet {
        argsz: (size_of::<VfioIrqSet>() + bytes.len()) as u32,
        flags: flag | action,
        index,
        start,
        count,
    };
    set_irqs_raw(dev, &hdr, &bytes)
}

/// `SET_IRQS` with a header as given and `data` after it.
pub fn set_irqs_raw(dev: &dyn DeviceFd, hdr: &VfioIrqSet, data: &[u8]) -> Result<u32, Errno> {
    let mut buf = hdr.as_bytes().to_vec();
    buf.extend_from_slice(data);
    dev.ioctl_buf(VFIO_DEVICE_SET_IRQS, &mut buf)
}

pub fn reset(dev: &dyn DeviceFd) -> Result<u32, Errno> {
    dev.ioctl_value(VFIO_DEVICE_RESET, 0)
}

pub fn read_u32(dev: &dyn DeviceFd, offset: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(offset, &mut b)?, 4);
    Ok(u32::from_le_bytes(b))
}

pub fn write_u32(dev: &dyn DeviceFd, offset: u64, value: u32) -> Result<(), Errno> {
    assert_eq!(dev.pwrite(offset, &value.to_le_bytes())?, 4);
    Ok(())
}

/// A non-blocking eventfd, as a driver makes one for `SET_IRQS`.
pub fn eventfd() -> EventFd {
    EventFd::new(EFD_NONBLOCK).unwrap()
}

/// How many times `e` was signalled since the last look (its counter, read and reset).
pub fn fired(e: &EventFd) -> u64 {
    match e.read() {
        Ok(n) => n,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(err) => panic!("reading an eventfd: {err}"),
    }
}

pub fn raw(e: &EventFd) -> i32 {
    e.as_raw_fd()
}

/// A descriptor number no file of this process has.
pub const CLOSED_FD: i32 = 999_999;

/// How many descriptors of this process refer to one of `fds`' eventfds, `fds` included: each
/// fd's `eventfd-id` (from `/proc/self/fdinfo`) matched against every open descriptor's. Exact
/// even while other tests of the same process open and close files in other threads.
pub fn eventfd_copies(fds: &[&EventFd]) -> usize {
    fn id(fdinfo: &str) -> Option<String> {
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("eventfd-id:"))
            .map(|v| v.trim().to_owned())
    }
    let ids: Vec<String> = fds
        .iter()
        .map(|e| {
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", e.as_raw_fd())).unwrap();
            id(&info).expect("an eventfd's fdinfo has its eventfd-id")
        })
        .collect();
    std::fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .filter(|info| id(info).is_some_and(|i| ids.contains(&i)))
        .count()
}

/// A shared mapping of what `mmap` returned, unmapped on drop.
pub struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

impl Mapping {
    pub fn new(map: &RegionMap) -> Self {
        let len = map.len as usize;
        // SAFETY: a new shared mapping at an address the kernel chooses, of a file this test
        // holds; no Rust reference points into it, and it is unmapped only by `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &map.fd,
                map.file_offset,
            )
        }
        .unwrap();
        Mapping { ptr, len }
    }

    pub fn read(&self, at: usize, len: usize) -> Vec<u8> {
        assert!(at + len <= self.len);
        let base = self.ptr.cast::<u8>();
        (at..at + len)
            .map(|i| {
                // SAFETY: `i` lies within the live mapping (checked above); a volatile byte read
                // of shared memory the device side may write.
                unsafe { base.wrapping_add(i).read_volatile() }
            })
            .collect()
    }

    pub fn write(&self, at: usize, data: &[u8]) {
        assert!(at + data.len() <= self.len);
        let base = self.ptr.cast::<u8>();
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: within the live, writable mapping (checked above).
            unsafe { base.wrapping_add(at + i).write_volatile(b) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made by `new`, unmapped once; nothing refers into it any more.
        unsafe { rustix::mm::munmap(self.ptr, self.len) }.unwrap();
    }
}

/// This process's file descriptors as the emulated kernel reaches them (`fget()`): a duplicate of
/// the caller's `fd`. (The device tests pass no user memory.)
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFds;

impl UserMemory for ProcessFds {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault> {
        Err(UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }

    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault> {
        Err(UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }

    fn file(&self, fd: i32) -> Result<OwnedFd, BadFd> {
        if fd < 0 {
            return Err(BadFd(fd));
        }
        // SAFETY: only used by the two fcntl calls below; a number that is not open fails
        // `F_GETFD` with EBADF before anything else touches it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_getfd(borrowed).map_err(|_| BadFd(fd))?;
        rustix::io::fcntl_dupfd_cloexec(borrowed, 0).map_err(|_| BadFd(fd))
    }

    fn buffer(&self, _va: HostVa, _len: u64) -> UserBuffer {
        unreachable!("the device side maps no user memory")
    }
}
