//! The only `unsafe` of the crate: [`ProcessMemory`], the [`UserMemory`] of this very process.
//!
//! A driver running in-process hands the host raw addresses, exactly as a Linux process hands the
//! kernel `__user` pointers. `copy_from_user` / `copy_to_user` become checked copies: the covering
//! pages are first probed with [`uvfio_memory::probe_user_range`] (readable, and writable for a
//! write), so an unmapped or read-only address fails with `EFAULT` instead of crashing.

use std::os::fd::{BorrowedFd, OwnedFd};
use uvfio_iommufd::ctx::{BadFd, UserFault, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::{UserBuffer, probe_user_range};
use uvfio_types::HostVa;

const PAGE: u64 = 4096;

/// This process's memory and file descriptors, as the caller of the host's files.
///
/// The driver's promise behind [`UserMemory::buffer`]: a buffer it maps into an IOAS stays mapped
/// (and is not remapped) until it is unmapped again or the file is closed — what a Linux driver
/// promises implicitly by keeping DMA-mapped memory mapped. The same holds for memory it locks
/// with `Host::mlock`, until `Host::munlock`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessMemory;

/// Checks that the pages covering `[ptr, ptr + len)` are mapped (and writable, for `writable`).
fn check(ptr: UserPtr, len: usize, writable: bool) -> Result<(), UserFault> {
    let fault = UserFault { ptr: ptr.0, len };
    if len == 0 {
        return Ok(());
    }
    let len64 = u64::try_from(len).map_err(|_| fault)?;
    let last = ptr.0.checked_add(len64 - 1).ok_or(fault)?;
    let first_page = ptr.0 - ptr.0 % PAGE;
    let last_page = last - last % PAGE;
    let span = (last_page - first_page).checked_add(PAGE).ok_or(fault)?;
    usize::try_from(ptr.0).map_err(|_| fault)?;
    probe_user_range(HostVa::new(first_page), span, writable).map_err(|_| fault)
}

impl UserMemory for ProcessMemory {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault> {
        check(ptr, buf.len(), false)?;
        if buf.is_empty() {
            return Ok(());
        }
        let src = std::ptr::with_exposed_provenance::<u8>(ptr.0 as usize);
        // SAFETY: `check` proved every page of `[src, src + len)` mapped and readable in this
        // process; `copy` tolerates a caller pointer that overlaps `buf`; a byte copy has no
        // alignment requirement.
        unsafe { std::ptr::copy(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault> {
        check(ptr, buf.len(), true)?;
        if buf.is_empty() {
            return Ok(());
        }
        let dst = std::ptr::with_exposed_provenance_mut::<u8>(ptr.0 as usize);
        // SAFETY: `check` proved every page of `[dst, dst + len)` mapped and writable; the caller
        // of the ioctl passed this address as its own output buffer (the uAPI contract), so no
        // live Rust reference assumes it unchanged; `copy` tolerates overlap with `buf`; a byte
        // copy has no alignment requirement.
        unsafe { std::ptr::copy(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    fn file(&self, fd: i32) -> Result<OwnedFd, BadFd> {
        if fd < 0 {
            return Err(BadFd(fd));
        }
        // SAFETY: `fd` is only used for the one fcntl call below, within this function; if it
        // is not open, `F_DUPFD_CLOEXEC` fails with EBADF and nothing else touches it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_dupfd_cloexec(borrowed, 0).map_err(|_| BadFd(fd))
    }

    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer {
        // SAFETY: the driver's promise documented on `ProcessMemory`: a buffer it maps stays
        // mapped, and is not remapped, while any segment adopted from it lives.
        unsafe { UserBuffer::new(va, len) }
    }
}
