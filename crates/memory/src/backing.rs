//! RAM's backing: creation (hugetlb, shmem or anonymous THP), population, zeroing, giving pages back.

use crate::sys::{self, Hint, Mapping};
use crate::{Backing, HugePages, MemoryError};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// The 2 MiB size of a hugetlb page (and of the allocator's chunks).
pub(crate) const HUGE_2M: u64 = 2 << 20;

/// What backs RAM (a memfd, or private anonymous memory) and its one mapping.
#[derive(Debug)]
pub(crate) struct RamBacking {
    map: Mapping,
    /// The memfd; `None` for anonymous memory.
    fd: Option<OwnedFd>,
    backing: Backing,
    /// Whether `MADV_HUGEPAGE` was accepted.
    thp_hint: bool,
    /// Cleared the first time the kernel rejects `MADV_POPULATE_WRITE` as unknown (before 5.14).
    populate_write: AtomicBool,
}

/// Whether the kernel backs `MADV_HUGEPAGE` memory of a kind with transparent huge pages, read from
/// its sysfs switch (`/sys/kernel/mm/transparent_hugepage/{enabled,shmem_enabled}`): the selected
/// mode is the bracketed word.
fn thp_mode_allows_madvise(switch: &str) -> bool {
    let path = format!("/sys/kernel/mm/transparent_hugepage/{switch}");
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let selected = text.split_whitespace().find(|w| w.starts_with('[')).unwrap_or("");
    matches!(
        selected,
        "[always]" | "[madvise]" | "[advise]" | "[within_size]" | "[force]"
    )
}

impl RamBacking {
    /// RAM of `len` bytes (a multiple of 2 MiB). Under `Auto` the first that the machine offers of:
    /// a hugetlb memfd; a shmem memfd where shmem transparent huge pages honour `MADV_HUGEPAGE`;
    /// private anonymous memory where anonymous THP do (no fd: nothing needs RAM's fd yet, and
    /// huge pages cut the TLB misses of random DMA by several times); a plain shmem memfd.
    /// `Require` accepts only hugetlb; `Never` is a plain shmem memfd.
    pub(crate) fn create(len: u64, huge: HugePages) -> Result<RamBacking, MemoryError> {
        if huge != HugePages::Never {
            match Self::hugetlb(len) {
                Ok(b) => return Ok(b),
                Err(source) if huge == HugePages::Require => {
                    return Err(MemoryError::HugePagesUnavailable { source });
                }
                // `Auto`: no usable hugetlb pages; transparent huge pages below.
                Err(_) => {}
            }
            if !thp_mode_allows_madvise("shmem_enabled") && thp_mode_allows_madvise("enabled") {
                let map = Mapping::map_anon(len).map_err(MemoryError::os("mmap"))?;
                let thp_hint = map.advise(0, len, Hint::HugePage).is_ok();
                return Ok(RamBacking {
                    map,
                    fd: None,
                    backing: Backing::AnonThp,
                    thp_hint,
                    populate_write: AtomicBool::new(true),
                });
            }
        }
        let fd = sys::memfd("uvfio-ram", false).map_err(MemoryError::os("memfd_create"))?;
        sys::set_len(&fd, len).map_err(MemoryError::os("ftruncate"))?;
        let map = Mapping::map_shared(&fd, 0, len, true, true).map_err(MemoryError::os("mmap"))?;
        let thp_hint = huge != HugePages::Never && map.advise(0, len, Hint::HugePage).is_ok();
        Ok(RamBacking {
            map,
            fd: Some(fd),
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
            fd: Some(fd),
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
        if let (Backing::HugeTlb, Some(fd)) = (self.backing, &self.fd) {
            // fallocate reports a pool shortage as an error; touching would raise SIGBUS instead.
            return sys::allocate(fd, off, len)
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
        match &self.fd {
            Some(fd) => sys::punch_hole(fd, off, len).map_err(MemoryError::os("fallocate(PUNCH_HOLE)")),
            None => self
                .map
                .discard(off, len)
                .map_err(MemoryError::os("madvise(MADV_DONTNEED)")),
        }
    }
}
