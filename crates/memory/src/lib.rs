//! The emulated host's physical memory (DESIGN.md, "Memory model").
//!
//! Host memory is a set of *segments*, each mapped once into this process (the host's "direct
//! map"), placed in a synthetic host-physical address space (HPA). RAM is a hugetlb memfd where the
//! machine has hugetlb pages, else a shmem memfd where shmem transparent huge pages honour
//! `MADV_HUGEPAGE`, else private anonymous memory on transparent huge pages, else a plain shmem
//! memfd ([`Backing`]); adopted buffers and client fds (vfio-user) are further segments. `hpa → pointer` is a
//! table lookup with a fast path for the RAM segment. A frame allocator hands out folios of 4 KiB
//! (page tables), 2 MiB and 1 GiB (DMA buffers); each folio carries a pin count, and a
//! locked-memory account with a limit (RLIMIT_MEMLOCK semantics) charges every 4 KiB page once
//! however often it is pinned. A range of the caller's own memory can be *adopted* into the HPA
//! space, the way a driver's buffer becomes physical pages when `pin_user_pages()` pins it.
//!
//! Why hand-written: `vm-memory` models a guest's memory as seen by a VMM (GPA → host mapping), with
//! no frame allocator, no pin counts and no locked-memory account; those are the point here.
//!
//! Layout of the code: `ram` (the folio allocator: 1 GiB regions → 2 MiB chunks → 4 KiB frames),
//! `ram_pin` (pin walks over RAM), `pins` (pin-count representations and the account), `segment`
//! (adopted and fd segments), `alloc` / `pin` / `access` (the public operations), `backing` (what
//! backs RAM) and `sys` (every `unsafe` and OS call).
//!
//! Concurrency: one lock guards the allocator, every pin count and the account, so a pin of any
//! range is one acquisition; a read-write lock guards the table of non-RAM segments. Accesses to RAM
//! (`host_ptr`, `read`, `write`, [`RamWindow`]) take no lock. Populating or zeroing a 2 MiB or
//! 1 GiB folio happens outside the lock while the folio is reserved.
//!
//! Freed folios stay resident (zeroed) for reuse until [`HostMemory::trim`] gives them back.
//!
//! Caveat of a hugetlb backing: RAM is reserved sparse, so touching RAM that was never allocated
//! (or was trimmed) through a raw pointer faults in a huge page, and raises SIGBUS if the pool is
//! empty. Allocation itself never does; it reports a short pool as `ENOMEM`.
#![deny(missing_docs)]

mod access;
mod alloc;
mod backing;
mod error;
mod pin;
mod pins;
mod ram;
mod ram_pin;
mod runs;
mod segment;
mod sys;

pub use access::SegmentInfo;
pub use error::MemoryError;
pub use runs::{PinRuns, RunsError};
pub use segment::SegmentKind;
pub use sys::{UserBuffer, probe_user_range};

use backing::RamBacking;
use parking_lot::{Mutex, RwLock};
use pins::Account;
use ram::Ram;
use segment::{GUARD_GAP, SEGMENT_ALIGN, SegmentPins, SegmentTable};
use std::ptr::NonNull;
use uvfio_types::{Alignment, Hpa, PageSize};

/// The HPA of RAM's first byte: 1 GiB, so every 1 GiB folio is 1 GiB aligned in HPA space.
pub const RAM_BASE: Hpa = Hpa::new(0x4000_0000);

/// Whether RAM may, should or must live on hugetlb pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HugePages {
    /// Try 2 MiB hugetlb pages, fall back to a plain memfd (with a transparent-huge-page hint).
    #[default]
    Auto,
    /// A plain memfd only.
    Never,
    /// 2 MiB hugetlb pages or fail (`ENOMEM`).
    Require,
}

/// How to build the host's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Bytes of RAM, a non-zero multiple of 2 MiB. The memfd is sparse: untouched RAM costs nothing.
    pub ram_bytes: u64,
    /// What pages back RAM.
    pub huge_pages: HugePages,
    /// The locked-memory limit in bytes (`RLIMIT_MEMLOCK`); `None` is unlimited.
    pub lock_limit_bytes: Option<u64>,
}

impl MemoryConfig {
    /// The default configuration with `ram_bytes` of RAM.
    pub fn with_ram(ram_bytes: u64) -> Self {
        MemoryConfig {
            ram_bytes,
            ..MemoryConfig::default()
        }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            ram_bytes: 64 << 30,
            huge_pages: HugePages::Auto,
            lock_limit_bytes: None,
        }
    }
}

/// What RAM ended up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backing {
    /// A hugetlb memfd of 2 MiB pages.
    HugeTlb,
    /// A plain (shmem) memfd, with transparent huge pages where the kernel's shmem THP allow.
    Shmem,
    /// Private anonymous memory on transparent huge pages (no fd): what `Auto` picks when the
    /// machine has no hugetlb pages and its shmem THP are off but anonymous THP are on.
    AnonThp,
}

/// Where RAM lives in HPA space and in this process: the host pointer of an HPA inside RAM is
/// `ptr + (hpa - base)`. Valid as long as the `HostMemory` it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamWindow {
    /// HPA of the first byte of RAM.
    pub base: Hpa,
    /// Bytes of RAM.
    pub len: u64,
    /// The host address of `base`.
    pub ptr: NonNull<u8>,
}

impl RamWindow {
    /// The offset of `[hpa, hpa + len)` in RAM, if all of it lies in RAM (`len` may be 0).
    #[inline]
    pub fn offset_of(&self, hpa: Hpa, len: u64) -> Option<u64> {
        let off = hpa.raw().wrapping_sub(self.base.raw());
        (off < self.len && len <= self.len - off).then_some(off)
    }

    /// The host pointer of `hpa`, if `[hpa, hpa + len)` lies in RAM.
    #[inline]
    pub fn ptr_of(&self, hpa: Hpa, len: u64) -> Option<NonNull<u8>> {
        let off = usize::try_from(self.offset_of(hpa, len)?).ok()?;
        NonNull::new(self.ptr.as_ptr().wrapping_add(off))
    }
}

/// The locked-memory account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// 4 KiB pages pinned at least once (each charged once).
    pub locked_pages: u64,
    /// The limit in 4 KiB pages; `None` is unlimited.
    pub limit_pages: Option<u64>,
}

/// Counters describing the host's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryStats {
    /// What RAM is on.
    pub backing: Backing,
    /// Whether transparent huge pages were requested (and accepted by `madvise`) for a shmem
    /// backing; a hint only, the kernel's `shmem_enabled` setting decides.
    pub thp_hint: bool,
    /// Bytes of RAM.
    pub ram_bytes: u64,
    /// Segments, RAM included.
    pub segments: usize,
    /// Adopted segments.
    pub adopted_segments: usize,
    /// Bytes in adopted segments.
    pub adopted_bytes: u64,
    /// fd segments.
    pub fd_segments: usize,
    /// Bytes in fd segments.
    pub fd_bytes: u64,
    /// Bytes allocated as 4 KiB folios (page-table frames included).
    pub allocated_4k_bytes: u64,
    /// Bytes allocated as 2 MiB folios.
    pub allocated_2m_bytes: u64,
    /// Bytes allocated as 1 GiB folios.
    pub allocated_1g_bytes: u64,
    /// 4 KiB frames in use as IO page tables.
    pub table_frames: u64,
    /// 2 MiB chunks split into 4 KiB frames.
    pub split_chunks: u64,
    /// Whole 1 GiB regions free.
    pub free_regions: u64,
    /// Free 2 MiB chunks inside split regions (free regions not counted).
    pub free_chunks: u64,
    /// Distinct 4 KiB pages pinned (the locked-memory charge).
    pub pinned_pages: u64,
    /// The locked-memory limit in pages.
    pub limit_pages: Option<u64>,
    /// Calls of [`HostMemory::free_table_frame`] that named no page-table frame (and did nothing).
    pub bad_table_frees: u64,
}

/// What the state lock guards: the allocator, segment pin counts and the account.
#[derive(Debug)]
struct State {
    ram: Ram,
    segs: SegmentPins,
    account: Account,
}

/// The emulated host's physical memory. `Send + Sync`; callers share it in an `Arc`.
#[derive(Debug)]
pub struct HostMemory {
    ram: RamBacking,
    window: RamWindow,
    state: Mutex<State>,
    segments: RwLock<SegmentTable>,
}

impl HostMemory {
    /// Create RAM: one memfd of `config.ram_bytes`, mapped once, at [`RAM_BASE`].
    pub fn new(config: MemoryConfig) -> Result<Self, MemoryError> {
        let len = config.ram_bytes;
        if len == 0 {
            return Err(MemoryError::InvalidLength { len });
        }
        if len % ram::CHUNK != 0 {
            return Err(MemoryError::Misaligned {
                value: len,
                align: ram::CHUNK,
            });
        }
        let ram_last = RAM_BASE
            .checked_add(len - 1)
            .ok_or(MemoryError::InvalidLength { len })?;
        let first_segment = Alignment::new(SEGMENT_ALIGN)
            .ok()
            .and_then(|a| ram_last.align_up(a))
            .and_then(|end| end.checked_add(GUARD_GAP));
        let ram = RamBacking::create(len, config.huge_pages)?;
        let window = RamWindow {
            base: RAM_BASE,
            len,
            ptr: ram.map().ptr(),
        };
        let state = State {
            ram: Ram::new(RAM_BASE, len),
            segs: SegmentPins::new(first_segment),
            account: Account::new(config.lock_limit_bytes),
        };
        Ok(HostMemory {
            ram,
            window,
            state: Mutex::new(state),
            segments: RwLock::new(SegmentTable::default()),
        })
    }

    /// What RAM ended up on.
    pub fn backing(&self) -> Backing {
        self.ram.backing()
    }

    /// RAM's place in HPA space and in this process (the walkers' fast path).
    pub fn ram(&self) -> RamWindow {
        self.window
    }

    /// The locked-memory account.
    pub fn account(&self) -> AccountSnapshot {
        let st = self.state.lock();
        AccountSnapshot {
            locked_pages: st.account.locked(),
            limit_pages: st.account.limit(),
        }
    }

    /// Set the locked-memory limit (`None`: unlimited). Pages already locked stay locked.
    pub fn set_lock_limit(&self, bytes: Option<u64>) {
        self.state.lock().account.set_limit(bytes);
    }

    /// Counters describing the host's memory.
    pub fn stats(&self) -> MemoryStats {
        let (c, (free_regions, free_chunks), locked, limit) = {
            let st = self.state.lock();
            (
                st.ram.counters,
                st.ram.free_counts(),
                st.account.locked(),
                st.account.limit(),
            )
        };
        let (adopted, fd) = {
            let table = self.segments.read();
            (table.count(SegmentKind::Adopted), table.count(SegmentKind::Fd))
        };
        MemoryStats {
            backing: self.backing(),
            thp_hint: self.ram.thp_hint(),
            ram_bytes: self.window.len,
            segments: 1 + adopted.0 + fd.0,
            adopted_segments: adopted.0,
            adopted_bytes: adopted.1,
            fd_segments: fd.0,
            fd_bytes: fd.1,
            allocated_4k_bytes: c.frames * PageSize::Size4K.bytes(),
            allocated_2m_bytes: c.chunks * PageSize::Size2M.bytes(),
            allocated_1g_bytes: c.regions * PageSize::Size1G.bytes(),
            table_frames: c.table_frames,
            split_chunks: c.split_chunks,
            free_regions: free_regions as u64,
            free_chunks: free_chunks as u64,
            pinned_pages: locked,
            limit_pages: limit,
            bad_table_frees: c.bad_table_frees,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<HostMemory>();
        check::<RamWindow>();
        check::<MemoryError>();
    }
}
