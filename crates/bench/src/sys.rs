//! Every `unsafe` operation of the crate: an anonymous mapping with `mlock` / `munlock` /
//! `MADV_POPULATE_WRITE` (the pinning limit), and a chain of dependent loads (the page-walk limit).

use crate::BenchError;
use rustix::mm::{Advice, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::NonNull;

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
