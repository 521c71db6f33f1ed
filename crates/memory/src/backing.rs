//! The RAM memfd: creation (hugetlb or shmem), population, zeroing and giving pages back.

use crate::sys::{self, Hint, Mapping};
use crate::{Backing, HugePages, MemoryError};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// The 2 MiB size of a hugetlb page (and of the allocator's chunks).
pub(crate) const HUGE_2M: u64 = 2 << 20;

/// The memfd that backs RAM and its one mapping.
#[derive(Debug)]
pub(crate) struct RamBacking {
    map: Mapping,
    fd: OwnedFd,
    backing: Backing,
    /// Whether `MADV_HUGEPAGE` was accepted on a shmem backing.
    thp_hint: bool,
    /// Cleared the first time the kernel rejects `MADV_POPULATE_WRITE` as unknown (before 5.14).
    populate_write: AtomicBool,
}

impl RamBacking {
    /// A memfd of `len` bytes (a multiple of 2 MiB), on hugetlb pages where `huge` allows.
    pub(crate) fn create(len: u64, huge: HugePages) -> Result<RamBacking, MemoryError> {
        if huge != HugePages::Never {
            match Self::hugetlb(len) {
                Ok(b) => return Ok(b),
                Err(source) if huge == HugePages::Require => {
                    return Err(MemoryError::HugePagesUnavailable { source });
                }
                // `Auto`: no usable hugetlb pages; plain shmem below is the documented fallback.
                Err(_) => {}
            }
        }
        let fd = sys::memfd("uvfio-ram", false).map_err(MemoryError::os("memfd_create"))?;
        sys::set_len(&fd, len).map_err(MemoryError::os("ftruncate"))?;
        let map = Mapping::map_shared(&fd, 0, len, true, true).map_err(MemoryError::os("mmap"))?;
        let thp_hint = map.advise(0, len, Hint::HugePage).is_ok();
        Ok(RamBacking {
            map,
            fd,
            backing: Backing::Shmem,
            thp_hint,
            populate_write: AtomicBool::new(true),
        })
    }

    /// A hugetlb memfd, proven usable by allocating its first huge page (a machine without free
    /// hugetlb pages fails here rather than with a SIGBUS at first touch).
    fn hugetlb(len: u64) -> Result<RamBacking, Errno> {
        let fd = sys::memfd("uvfio-ram", true)?;
        sys::set_len(&fd, len)?;
        sys::allocate(&fd, 0, HUGE_2M)?;
        let map = Mapping::map_shared(&fd, 0, len, true, true)?;
        Ok(RamBacking {
            map,
            fd,
            backing: Backing::HugeTlb,
            thp_hint: false,
            populate_write: AtomicBool::new(true),
        })
    }

    /// What RAM ended up on.
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }

    /// Whether transparent huge pages were requested for a shmem backing.
    pub(crate) fn thp_hint(&self) -> bool {
        self.thp_hint
    }

    /// The mapping.
    pub(crate) fn map(&self) -> &Mapping {
        &self.map
    }

    /// Make `[off, off + len)` resident for writing. Its contents are not changed.
    pub(crate) fn populate(&self, off: u64, len: u64) -> Result<(), MemoryError> {
        if self.backing == Backing::HugeTlb {
            // fallocate reports a pool shortage as an error; touching would raise SIGBUS instead.
            return sys::allocate(&self.fd, off, len)
                .map_err(|source| MemoryError::HugePagesUnavailable { source });
        }
        if self.populate_write.load(Ordering::Relaxed) {
            match self.map.advise(off, len, Hint::PopulateWrite) {
                Ok(()) => return Ok(()),
                Err(Errno::INVAL) if self.map.ptr_at(off, len).is_some() => {
                    // The range is fine, so the kernel does not know MADV_POPULATE_WRITE.
                    self.populate_write.store(false, Ordering::Relaxed);
                }
                Err(source) => {
                    return Err(MemoryError::Os {
                        call: "madvise(MADV_POPULATE_WRITE)",
                        source,
                    });
                }
            }
        }
        if self.map.touch(off, len) {
            Ok(())
        } else {
            Err(MemoryError::Os {
                call: "populate",
                source: Errno::FAULT,
            })
        }
    }

    /// Zero `[off, off + len)` in place (it stays resident).
    pub(crate) fn zero(&self, off: u64, len: u64) {
        let done = self.map.zero(off, len);
        debug_assert!(done, "zeroing outside RAM: {off:#x}+{len:#x}");
    }

    /// Give `[off, off + len)` (2 MiB aligned, free, reading as zero) back to the OS; it still
    /// reads as zero after. A failure changes nothing, so it is only reported.
    pub(crate) fn release(&self, off: u64, len: u64) -> Result<(), MemoryError> {
        sys::punch_hole(&self.fd, off, len).map_err(MemoryError::os("fallocate(PUNCH_HOLE)"))
    }
}
