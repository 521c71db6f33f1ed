//! The crate's only `unsafe`: DMA memory, a shared mapping of a memfd that the driver and the
//! device both reach.
//!
//! A [`DmaMemory`] is page-aligned memory the driver allocates for DMA: a memfd (so that a backend
//! that needs a file — vfio-user sends it to the server — has one) mapped `MAP_SHARED` once. The
//! driver reads and writes it only through volatile copies: a device may write it at any time, so
//! no Rust reference to it is ever formed.

use rustix::fs::MemfdFlags;
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

const PAGE: usize = 4096;

/// Page-aligned DMA memory of this process, backed by a memfd.
#[derive(Debug)]
pub struct DmaMemory {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory, valid from any thread for as long as the value
// lives; the value holds no thread-bound state, and every access is a bounds-checked volatile
// copy.
unsafe impl Send for DmaMemory {}
// SAFETY: as for `Send`: concurrent volatile copies to shared memory are the modelled behaviour
// (a device and its driver both access DMA memory), never a data race on Rust-visible data.
unsafe impl Sync for DmaMemory {}

impl DmaMemory {
    /// `len` bytes (rounded up to whole pages) of zeroed memory.
    pub fn new(len: usize) -> Result<Self, Errno> {
        let len = len.checked_next_multiple_of(PAGE).ok_or(Errno::INVAL)?;
        if len == 0 {
            return Err(Errno::INVAL);
        }
        let fd = rustix::fs::memfd_create("uvfio-dma", MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        // SAFETY: a fresh shared mapping of our own memfd at an address the kernel chooses; it
        // aliases no Rust object and lives until `drop` unmaps it.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(DmaMemory { ptr, len, fd })
    }

    /// Its first byte's address in this process (what a driver passes as `vaddr` / `user_va`).
    pub fn va(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Its length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd behind it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Copies `buf.len()` bytes at `offset` out; `EINVAL` past the end.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Errno> {
        self.check(offset, buf.len())?;
        let src = self.ptr.as_ptr().wrapping_add(offset);
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `check` keeps `offset + i` inside the live mapping; volatile because a
            // device may write the memory concurrently.
            *b = unsafe { src.wrapping_add(i).read_volatile() };
        }
        Ok(())
    }

    /// Copies `data` in at `offset`; `EINVAL` past the end.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        self.check(offset, data.len())?;
        let dst = self.ptr.as_ptr().wrapping_add(offset);
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as for `read`.
            unsafe { dst.wrapping_add(i).write_volatile(b) };
        }
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), Errno> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Errno::INVAL),
        }
    }
}

impl Drop for DmaMemory {
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr().cast::<c_void>();
        // SAFETY: the mapping made in `new`, with its length; nothing refers to it any more (the
        // value is being dropped and no reference into it was ever handed out).
        let _ = unsafe { rustix::mm::munmap(ptr, self.len) };
    }
}
