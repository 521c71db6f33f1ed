//! The IOTLB: a cache of translations that keeps every entry until software invalidates it.
//!
//! Like a hardware IOTLB it is *not* kept coherent with the page table: a driver that unmaps without
//! invalidating can still DMA through a stale entry, which is exactly the bug the model must expose.
//! Entries are 4 KiB windows (a super-page is cached one 4 KiB window at a time, tagged with its
//! size), in a direct-mapped array indexed by the IOVA page number. Each entry is a small seqlock:
//! readers load it without writing anything shared; fills and invalidations lock it with a CAS.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};
use uvfio_types::{Access, Hpa, IovaRange, PageSize};

const VALID: u64 = 1 << 63;
/// A fill not yet confirmed: invisible to lookups (see [`Iotlb::fill`]).
const PENDING: u64 = 1 << 62;
const PFN_MASK: u64 = PENDING - 1;
const PROT_MASK: u64 = 0xf;
const SIZE_SHIFT: u32 = 4;

/// One cached 4 KiB window.
#[derive(Debug, Default)]
#[repr(C, align(32))]
struct Entry {
    /// Seqlock: odd while a writer changes the entry.
    seq: AtomicU64,
    /// `VALID | iova page number`, `PENDING | iova page number`, or 0.
    tag: AtomicU64,
    /// Host pointer of the 4 KiB page.
    ptr: AtomicPtr<u8>,
    /// HPA of the 4 KiB page | prot bits | page-size code << 4.
    meta: AtomicU64,
}

/// A translation found in, or put into, the IOTLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlbEntry {
    /// Host pointer of the 4 KiB page.
    pub ptr: NonNull<u8>,
    /// HPA of the 4 KiB page.
    pub hpa: Hpa,
    /// Permissions of the mapping.
    pub prot: Access,
    /// Size of the page-table leaf this window belongs to.
    pub size: PageSize,
}

/// Where a fill went, so a filler that raced an invalidation can take exactly its own entry back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillTicket {
    index: usize,
    seq: u64,
}

/// A direct-mapped IOTLB.
#[derive(Debug)]
pub(crate) struct Iotlb {
    entries: Box<[Entry]>,
    mask: u64,
}

fn size_code(size: PageSize) -> u64 {
    match size {
        PageSize::Size4K => 0,
        PageSize::Size2M => 1,
        PageSize::Size1G => 2,
    }
}

fn size_from_code(code: u64) -> PageSize {
    match code {
        1 => PageSize::Size2M,
        2 => PageSize::Size1G,
        _ => PageSize::Size4K,
    }
}

impl Iotlb {
    /// An IOTLB of `entries` entries, rounded up to a power of two (at least 1).
    pub(crate) fn new(entries: usize) -> Self {
        let n = entries.max(1).next_power_of_two();
        let entries: Box<[Entry]> = (0..n).map(|_| Entry::default()).collect();
        Iotlb {
            mask: (n - 1) as u64,
            entries,
        }
    }

    /// Number of entries.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    #[inline(always)]
    fn slot(&self, pfn: u64) -> &Entry {
        // `mask < entries.len()`, so the index is in bounds.
        let index = (pfn & self.mask) as usize;
        &self.entries[index]
    }

    /// The cached translation of IOVA page `pfn`, if any. Writes nothing.
    #[inline(always)]
    pub(crate) fn lookup(&self, pfn: u64) -> Option<TlbEntry> {
        let e = self.slot(pfn);
        let s1 = e.seq.load(Ordering::Acquire);
        let tag = e.tag.load(Ordering::Relaxed);
        let ptr = e.ptr.load(Ordering::Relaxed);
        let meta = e.meta.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let s2 = e.seq.load(Ordering::Relaxed);
        if s1 != s2 || s1 & 1 == 1 || tag != (VALID | pfn) {
            return None;
        }
        Some(TlbEntry {
            ptr: NonNull::new(ptr)?,
            hpa: Hpa::new(meta & !PageSize::Size4K.offset_mask()),
            prot: Access::from_bits_truncate((meta & PROT_MASK) as u8),
            size: size_from_code((meta >> SIZE_SHIFT) & 0x3),
        })
    }

    /// Tries to lock entry `e`; `None` if another writer holds it.
    fn try_lock(e: &Entry) -> Option<u64> {
        let s = e.seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            return None;
        }
        e.seq
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(s)
    }

    fn lock(e: &Entry) -> u64 {
        loop {
            if let Some(s) = Self::try_lock(e) {
                return s;
            }
            std::hint::spin_loop();
        }
    }

    /// Starts caching `entry` for IOVA page `pfn`: the entry is written *pending*, invisible to
    /// lookups, until the filler has checked that no invalidation raced its page walk and calls
    /// [`confirm`](Self::confirm) (or [`unfill`](Self::unfill) if one did). Without this step another
    /// reader could use a stale translation in the window between a racing fill and its removal.
    /// Returns `None` when the slot was busy (nothing cached).
    pub(crate) fn fill(&self, pfn: u64, entry: TlbEntry) -> Option<FillTicket> {
        let index = (pfn & self.mask) as usize;
        let e = &self.entries[index];
        let s = Self::try_lock(e)?;
        e.tag.store(PENDING | pfn, Ordering::Relaxed);
        e.ptr.store(entry.ptr.as_ptr(), Ordering::Relaxed);
        let meta =
            entry.hpa.raw() | u64::from(entry.prot.bits()) & PROT_MASK | size_code(entry.size) << SIZE_SHIFT;
        e.meta.store(meta, Ordering::Relaxed);
        e.seq.store(s + 2, Ordering::Release);
        Some(FillTicket { index, seq: s + 2 })
    }

    /// Makes a pending fill visible, unless an invalidation (or another fill) changed the entry since.
    pub(crate) fn confirm(&self, ticket: FillTicket) {
        let e = &self.entries[ticket.index];
        if e.seq
            .compare_exchange(ticket.seq, ticket.seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let tag = e.tag.load(Ordering::Relaxed);
            e.tag.store(VALID | (tag & PFN_MASK), Ordering::Relaxed);
            e.seq.store(ticket.seq + 2, Ordering::Release);
        }
    }

    /// Takes back the entry a fill made, unless something replaced it since.
    pub(crate) fn unfill(&self, ticket: FillTicket) {
        let e = &self.entries[ticket.index];
        if e.seq
            .compare_exchange(ticket.seq, ticket.seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            e.tag.store(0, Ordering::Relaxed);
            e.seq.store(ticket.seq + 2, Ordering::Release);
        }
    }

    fn clear_if(&self, e: &Entry, pred: impl Fn(u64) -> bool) -> bool {
        let occupied = |tag: u64| tag & (VALID | PENDING) != 0 && pred(tag & PFN_MASK);
        if !occupied(e.tag.load(Ordering::Relaxed)) {
            // Re-check under the lock only if a writer is active (it may be filling this tag).
            if e.seq.load(Ordering::Relaxed) & 1 == 0 {
                return false;
            }
        }
        let s = Self::lock(e);
        let hit = occupied(e.tag.load(Ordering::Relaxed));
        if hit {
            e.tag.store(0, Ordering::Relaxed);
        }
        e.seq.store(s + 2, Ordering::Release);
        hit
    }

    /// Page-selective invalidation of every IOVA page in `range`. Returns the entries dropped.
    pub(crate) fn invalidate_range(&self, range: IovaRange) -> usize {
        let first = range.start().raw() >> PageSize::Size4K.shift();
        let last = range.last().raw() >> PageSize::Size4K.shift();
        let in_range = |pfn: u64| first <= pfn && pfn <= last;
        if last - first < self.mask {
            (first..=last)
                .filter(|&pfn| self.clear_if(self.slot(pfn), |t| t == pfn))
                .count()
        } else {
            self.entries.iter().filter(|e| self.clear_if(e, in_range)).count()
        }
    }

    /// Domain-selective invalidation: drops every entry. Returns the entries dropped.
    pub(crate) fn invalidate_all(&self) -> usize {
        self.entries.iter().filter(|e| self.clear_if(e, |_| true)).count()
    }

    /// Number of valid entries (for statistics and tests; racy under concurrent use).
    pub(crate) fn occupancy(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.tag.load(Ordering::Relaxed) & (VALID | PENDING) != 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hpa: u64, prot: Access, size: PageSize) -> TlbEntry {
        TlbEntry {
            ptr: NonNull::dangling(),
            hpa: Hpa::new(hpa),
            prot,
            size,
        }
    }

    #[test]
    fn fill_lookup_roundtrip_keeps_every_field() {
        let tlb = Iotlb::new(16);
        let e = entry(0x1234_5000, Access::READ, PageSize::Size2M);
        let ticket = tlb.fill(7, e).unwrap();
        assert_eq!(tlb.lookup(7), None, "a pending fill is invisible");
        tlb.confirm(ticket);
        assert_eq!(tlb.lookup(7), Some(e));
        assert_eq!(tlb.lookup(7 + 16), None, "same slot, other tag");
        assert_eq!(tlb.lookup(8), None);
    }

    #[test]
    fn entries_stay_until_invalidated() {
        let tlb = Iotlb::new(64);
        for pfn in 0..32 {
            tlb.confirm(
                tlb.fill(pfn, entry(pfn << 12, Access::RW, PageSize::Size4K))
                    .unwrap(),
            );
        }
        let r = IovaRange::new(uvfio_types::Iova::new(0x4000), uvfio_types::Iova::new(0x7fff)).unwrap();
        assert_eq!(tlb.invalidate_range(r), 4);
        assert!(tlb.lookup(4).is_none() && tlb.lookup(7).is_none());
        assert!(tlb.lookup(3).is_some() && tlb.lookup(8).is_some());
        let big = IovaRange::new(uvfio_types::Iova::new(0), uvfio_types::Iova::new(0xffff_ffff)).unwrap();
        assert_eq!(tlb.invalidate_range(big), 28);
        assert_eq!(tlb.occupancy(), 0);
    }

    #[test]
    fn invalidation_removes_pending_fills_and_defeats_their_confirmation() {
        let tlb = Iotlb::new(8);
        let t = tlb.fill(3, entry(0x3000, Access::RW, PageSize::Size4K)).unwrap();
        assert_eq!(tlb.invalidate_all(), 1);
        tlb.confirm(t);
        assert!(tlb.lookup(3).is_none());
    }

    #[test]
    fn unfill_takes_back_only_its_own_entry() {
        let tlb = Iotlb::new(4);
        let t = tlb.fill(1, entry(0x1000, Access::RW, PageSize::Size4K)).unwrap();
        let newer = tlb.fill(5, entry(0x5000, Access::RW, PageSize::Size4K)).unwrap();
        tlb.unfill(t);
        tlb.confirm(t);
        tlb.confirm(newer);
        assert!(tlb.lookup(5).is_some(), "a newer fill of the slot survives");
        assert!(tlb.lookup(1).is_none(), "a stale ticket confirms nothing");
        let t = tlb.fill(1, entry(0x1000, Access::RW, PageSize::Size4K)).unwrap();
        tlb.unfill(t);
        assert!(tlb.lookup(1).is_none());
        assert_eq!(tlb.invalidate_all(), 0);
    }
}
