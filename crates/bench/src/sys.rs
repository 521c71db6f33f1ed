//! Every `unsafe` operation of the crate: an anonymous mapping with `mlock` / `munlock` /
//! `MADV_POPULATE_WRITE` (the pinning limit), a chain of dependent loads (the page-walk limit), and
//! [`UserRegion`], the driver's buffer the uAPI rows hand to `/dev/iommu` and the VFIO container
//! (their [`UserMemory`]).

use crate::BenchError;
use rustix::mm::{Advice, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::NonNull;
use uvfio_iommufd::ctx::{BadFd, UserFault, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use uvfio_memory::{HostMemory, UserBuffer};
use uvfio_types::HostVa;

/// A private anonymous mapping of this process, unmapped on drop.
///
/// Invariant: `ptr .. ptr + len` is a live mapping created by [`AnonRegion::new`], owned by this
/// value alone; no Rust reference into it is ever handed out, so the kernel calls below cannot
/// invalidate a borrow.
#[derive(Debug)]
pub(crate) struct AnonRegion {
    ptr: NonNull<c_void>,
    len: usize,
}

/// How the kernel may back an [`AnonRegion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// `MADV_NOHUGEPAGE`: base pages only.
    BasePages,
    /// `MADV_HUGEPAGE`: transparent huge pages where the kernel can.
    HugePages,
}

impl AnonRegion {
    /// Maps `len` bytes of zeroed anonymous memory (not yet resident).
    pub(crate) fn new(len: usize, backing: Backing) -> Result<Self, BenchError> {
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases nothing.
        let raw = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|errno| BenchError::Sys { call: "mmap", errno })?;
        let ptr = NonNull::new(raw).ok_or(BenchError::Sys {
            call: "mmap",
            errno: rustix::io::Errno::NOMEM,
        })?;
        let region = AnonRegion { ptr, len };
        let advice = match backing {
            Backing::BasePages => Advice::LinuxNoHugepage,
            Backing::HugePages => Advice::LinuxHugepage,
        };
        region.advise(advice, "madvise(MADV_[NO]HUGEPAGE)")?;
        Ok(region)
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn advise(&self, advice: Advice, call: &'static str) -> Result<(), BenchError> {
        // SAFETY: the range is this value's own mapping (type invariant); the advice values used
        // here (huge-page hints, populate) never change the contents a reader could observe.
        unsafe { rustix::mm::madvise(self.ptr.as_ptr(), self.len, advice) }
            .map_err(|errno| BenchError::Sys { call, errno })
    }

    /// `MADV_POPULATE_WRITE` over the whole region: faults every page in writable, as
    /// `pin_user_pages(FOLL_WRITE)` would.
    pub(crate) fn populate_write(&self) -> Result<(), BenchError> {
        self.advise(Advice::LinuxPopulateWrite, "madvise(MADV_POPULATE_WRITE)")
    }

    /// `mlock` over the whole region.
    pub(crate) fn mlock(&self) -> Result<(), BenchError> {
        // SAFETY: the range is this value's own mapping (type invariant); locking changes residency,
        // not contents.
        unsafe { rustix::mm::mlock(self.ptr.as_ptr(), self.len) }
            .map_err(|errno| BenchError::Sys { call: "mlock", errno })
    }

    /// `munlock` over the whole region.
    pub(crate) fn munlock(&self) -> Result<(), BenchError> {
        // SAFETY: the range is this value's own mapping (type invariant).
        unsafe { rustix::mm::munlock(self.ptr.as_ptr(), self.len) }.map_err(|errno| BenchError::Sys {
            call: "munlock",
            errno,
        })
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours alone and no reference into it exists (type invariant); it is
        // never used after this.
        let _unmapped: rustix::io::Result<()> = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
        // munmap of a whole mapping we own fails only on a kernel bug; a destructor cannot report it,
        // and the only consequence would be a leaked mapping.
    }
}

/// A driver's buffer in this process, as the uAPI rows pass it to `IOMMU_IOAS_MAP` and
/// `VFIO_IOMMU_MAP_DMA`: `len` bytes of an anonymous mapping, starting at an address aligned to
/// `align` (so transparent huge pages can back it in whole 2 MiB folios), resident before any
/// timing. It is the [`UserMemory`] of the contexts it is handed to: copies and buffers are served
/// from inside it only; anything else is a fault.
///
/// Invariant: `start .. start + len` lies inside `region`, which lives as long as `self`; it is
/// only ever reached through raw pointers (never a Rust reference), so a device writing it
/// through an adopted segment aliases nothing. On drop, the mapping is leaked rather than unmapped
/// if `mem` (the host memory of the contexts it was handed to) still holds an adopted segment,
/// which keeps [`UserBuffer::new`]'s promise even if a context leaks a mapping.
#[derive(Debug)]
pub(crate) struct UserRegion {
    region: Option<AnonRegion>,
    start: usize,
    len: usize,
    mem: std::sync::Arc<HostMemory>,
}

impl UserRegion {
    /// `len` bytes at an `align`-aligned address (a power of two, at least 4 KiB), backed as
    /// asked and made resident, for contexts over `mem`.
    pub(crate) fn new(
        len: usize,
        align: usize,
        backing: Backing,
        mem: std::sync::Arc<HostMemory>,
    ) -> Result<Self, BenchError> {
        if !align.is_power_of_two() || align < 4096 || len == 0 || len % 4096 != 0 {
            return Err(BenchError::Setup("user region: bad length or alignment"));
        }
        let total = len
            .checked_add(align)
            .ok_or(BenchError::Setup("user region: too long"))?;
        let region = AnonRegion::new(total, backing)?;
        let base = region.ptr.as_ptr().addr();
        let start = base.next_multiple_of(align);
        let user = UserRegion {
            region: Some(region),
            start,
            len,
            mem,
        };
        user.populate_write()?;
        Ok(user)
    }

    /// The first byte, as a driver passes it in `user_va` / `vaddr`.
    pub(crate) fn va(&self) -> u64 {
        self.start as u64
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    fn populate_write(&self) -> Result<(), BenchError> {
        let ptr = std::ptr::without_provenance_mut::<c_void>(self.start);
        // SAFETY: the range lies inside this value's own mapping (type invariant); populating only
        // faults pages in and never changes what any address reads.
        unsafe { rustix::mm::madvise(ptr, self.len, Advice::LinuxPopulateWrite) }.map_err(|errno| {
            BenchError::Sys {
                call: "madvise(MADV_POPULATE_WRITE)",
                errno,
            }
        })
    }

    /// The offset of `[ptr, ptr + len)` in the region, if it lies wholly inside it.
    fn offset_of(&self, ptr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(ptr.checked_sub(self.start as u64)?).ok()?;
        (off.checked_add(len)? <= self.len).then_some(off)
    }

    fn base(&self) -> *mut u8 {
        match &self.region {
            Some(r) => r
                .ptr
                .as_ptr()
                .cast::<u8>()
                .wrapping_add(self.start - r.ptr.as_ptr().addr()),
            None => std::ptr::null_mut(),
        }
    }
}

impl UserMemory for UserRegion {
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault> {
        let fault = UserFault {
            ptr: ptr.0,
            len: buf.len(),
        };
        let off = self.offset_of(ptr.0, buf.len()).ok_or(fault)?;
        let src = self.base().wrapping_add(off);
        // SAFETY: `src .. src + buf.len()` lies inside the live region (checked above, type
        // invariant), which no Rust reference covers, so it cannot overlap `buf`.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault> {
        let fault = UserFault {
            ptr: ptr.0,
            len: buf.len(),
        };
        let off = self.offset_of(ptr.0, buf.len()).ok_or(fault)?;
        let dst = self.base().wrapping_add(off);
        // SAFETY: as in `read`: a live, writable range of the region that no reference covers.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    fn file(&self, fd: i32) -> Result<std::os::fd::OwnedFd, BadFd> {
        Err(BadFd(fd))
    }

    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer {
        let inside = usize::try_from(len)
            .ok()
            .is_some_and(|l| self.offset_of(va.raw(), l).is_some());
        let va = if inside { va } else { HostVa::new(0) };
        // SAFETY: a buffer inside the region stays mapped as long as any segment adopted from it
        // can live: the region is unmapped only once `mem` holds no adopted segment, else leaked
        // (type invariant, `Drop`). Anything else becomes a buffer at address 0, which is never
        // mapped (`vm.mmap_min_addr`), so its pin fails with EFAULT before anything is adopted.
        unsafe { UserBuffer::new(va, len) }
    }
}

impl Drop for UserRegion {
    fn drop(&mut self) {
        if self.mem.stats().adopted_segments != 0 {
            // A segment adopted from this buffer may still be reachable: keep the pages mapped.
            std::mem::forget(self.region.take());
        }
    }
}

/// One cell of [`DepChain`], alone in its cache line as a page-table entry is alone in its frame.
#[repr(C, align(64))]
#[derive(Debug)]
struct Cell {
    next: *const Cell,
}

/// A ring of [`DepChain::LEN`] cells, each pointing at the next: following it is a chain of
/// dependent loads, the physical lower bound of a page walk with the same number of levels whose
/// tables sit in cache.
///
/// Invariant: every `next` points at a cell of `cells`, which is heap-allocated, never moved or
/// written after `new`, and lives as long as `self`.
#[derive(Debug)]
pub(crate) struct DepChain {
    cells: Box<[Cell; DepChain::LEN]>,
}

impl DepChain {
    /// Loads per hop through the chain: the levels of a 4-level walk.
    pub(crate) const LEN: usize = 4;

    /// A ring of four cells.
    pub(crate) fn new() -> Self {
        let mut cells = Box::new(
            [const {
                Cell {
                    next: std::ptr::null(),
                }
            }; DepChain::LEN],
        );
        let base: *const Cell = cells.as_ptr();
        for (i, cell) in cells.iter_mut().enumerate() {
            cell.next = base.wrapping_add((i + 1) % DepChain::LEN);
        }
        DepChain { cells }
    }

    /// Follows the ring `iters` times, [`DepChain::LEN`] dependent loads each, every hop starting
    /// where the previous one ended (so hops cannot overlap). Returns where it stopped, as an
    /// index into the ring, so the caller can `black_box` it.
    pub(crate) fn chase(&self, iters: u64) -> usize {
        let base: *const Cell = self.cells.as_ptr();
        let mut p: *const Cell = std::hint::black_box(base);
        for _ in 0..iters {
            // `p` starts at a cell of the ring and each load yields another cell of it (type
            // invariant), so each of the four reads below is of a live, aligned, initialised `Cell`.
            // SAFETY: `p` points at a cell of the ring (see above).
            p = unsafe { std::ptr::read_volatile(p) }.next;
            // SAFETY: as above.
            p = unsafe { std::ptr::read_volatile(p) }.next;
            // SAFETY: as above.
            p = unsafe { std::ptr::read_volatile(p) }.next;
            // SAFETY: as above.
            p = unsafe { std::ptr::read_volatile(p) }.next;
        }
        p.addr().wrapping_sub(base.addr()) / std::mem::size_of::<Cell>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_a_ring_of_four() {
        let chain = DepChain::new();
        assert_eq!(chain.chase(0), 0);
        assert_eq!(chain.chase(1), 0);
        assert_eq!(chain.chase(1000), 0);
    }

    #[test]
    fn region_locks_and_unlocks() {
        let region = AnonRegion::new(2 << 20, Backing::BasePages).unwrap();
        assert_eq!(region.len(), 2 << 20);
        region.populate_write().unwrap();
        // Root or a large enough RLIMIT_MEMLOCK is needed for mlock; a 2 MiB lock fits the usual 8 MiB.
        region.mlock().unwrap();
        region.populate_write().unwrap();
        region.munlock().unwrap();
    }
}

/// A shared mapping of a file (a vfio-user client's memfd), written with plain copies: the limit
/// for writing that very memory.
///
/// Invariant: `ptr .. ptr + len` is a live shared mapping made by [`FileMap::new`], owned by this
/// value alone; no Rust reference into it is ever handed out.
#[derive(Debug)]
pub(crate) struct FileMap {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, valid from any thread for the value's life.
unsafe impl Send for FileMap {}

impl FileMap {
    /// Maps the first `len` bytes of `fd`, shared, read-write.
    pub(crate) fn new(fd: std::os::fd::BorrowedFd<'_>, len: usize) -> Result<Self, BenchError> {
        // SAFETY: a fresh shared mapping of a file at an address of the kernel's choosing aliases
        // no Rust object.
        let raw = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|errno| BenchError::Sys { call: "mmap", errno })?;
        let ptr = NonNull::new(raw).ok_or(BenchError::Sys {
            call: "mmap",
            errno: rustix::io::Errno::NOMEM,
        })?;
        Ok(FileMap { ptr, len })
    }

    /// Copies `data` to the start of the mapping (at most its length).
    pub(crate) fn copy_in(&self, data: &[u8]) {
        let n = data.len().min(self.len);
        // SAFETY: `n` bytes fit in the live mapping (type invariant and the `min`); the source is a
        // distinct Rust slice, so the two do not overlap; byte copies need no alignment.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().cast::<u8>(), n) };
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours alone and no reference into it exists (type invariant).
        let _unmapped: rustix::io::Result<()> = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}
