//! The IOTLB: a cache of translations that keeps every entry until software invalidates it.
//!
//! Like a hardware IOTLB it is *not* kept coherent with the page table: a driver that unmaps without
//! invalidating can still DMA through a stale entry, which is exactly the bug the model must expose.
//!
//! Entries are 4 KiB windows (a super-page is cached one 4 KiB window at a time, tagged with its
//! size) in a direct-mapped array indexed by the IOVA page number. Each entry is **one 64-bit word**
//! (tag, HPA, permissions, size), so a lookup is one load and a fill one store: no lock and no
//! read-modify-write on the hit or miss path, which keeps the CPU free to overlap the memory misses
//! of consecutive DMAs. Only invalidations (and a fill that lost a race with one) use compare-and-swap.
//! A translation whose tag or HPA does not fit the word (IOVAs beyond 2^(12 + index bits + 25),
//! HPAs beyond 2^46) is simply not cached: every access to it walks.
//!
//! Fills race with invalidations; `DmaPort` and `Domain::invalidate` resolve it with the domain's
//! invalidation generation (see `quiesce` and `Domain::invalidate`).

use std::sync::atomic::{AtomicU64, Ordering};
use uvfio_types::{Access, Hpa, IovaRange, PageSize};

const VALID: u64 = 1 << 63;
const PROT_BITS: u64 = 0x3; // Access::READ | Access::WRITE
const SIZE_SHIFT: u32 = 2;
const HPA_SHIFT: u32 = 4;
/// HPA page-number bits: HPAs below 2^46.
const HPA_PAGE_BITS: u32 = 34;
const TAG_SHIFT: u32 = HPA_SHIFT + HPA_PAGE_BITS;
/// Tag bits: the IOVA page number above the index bits.
const TAG_BITS: u32 = 63 - TAG_SHIFT;

/// A translation as the IOTLB holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cached {
    /// HPA of the 4 KiB page.
    pub hpa: Hpa,
    /// Permissions of the mapping.
    pub prot: Access,
    /// Size of the page-table leaf this window belongs to.
    pub size: PageSize,
}

/// A direct-mapped IOTLB of one-word entries.
#[derive(Debug)]
pub(crate) struct Iotlb {
    entries: Box<[AtomicU64]>,
    index_bits: u32,
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
        Iotlb {
            entries: (0..n).map(|_| AtomicU64::new(0)).collect(),
            index_bits: n.trailing_zeros(),
        }
    }

    /// Number of entries.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    #[inline(always)]
    fn slot(&self, pfn: u64) -> &AtomicU64 {
        // The mask keeps the index below `entries.len()`.
        &self.entries[(pfn & (self.entries.len() as u64 - 1)) as usize]
    }

    #[inline(always)]
    fn tag(&self, pfn: u64) -> u64 {
        pfn >> self.index_bits
    }

    /// The word that caches `c` for IOVA page `pfn`, if it fits.
    fn encode(&self, pfn: u64, c: Cached) -> Option<u64> {
        let tag = self.tag(pfn);
        let page = c.hpa.raw() >> PageSize::Size4K.shift();
        if tag >> TAG_BITS != 0 || page >> HPA_PAGE_BITS != 0 {
            return None;
        }
        Some(
            VALID
                | tag << TAG_SHIFT
                | page << HPA_SHIFT
                | size_code(c.size) << SIZE_SHIFT
                | u64::from(c.prot.bits()) & PROT_BITS,
        )
    }

    #[inline(always)]
    fn matches(&self, word: u64, pfn: u64) -> bool {
        word & VALID != 0 && (word & !VALID) >> TAG_SHIFT == self.tag(pfn)
    }

    /// The cached translation of IOVA page `pfn`, if any. One load; writes nothing.
    #[inline(always)]
    pub(crate) fn lookup(&self, pfn: u64) -> Option<Cached> {
        let word = self.slot(pfn).load(Ordering::Acquire);
        if !self.matches(word, pfn) {
            return None;
        }
        Some(Cached {
            hpa: Hpa::new(((word >> HPA_SHIFT) & ((1 << HPA_PAGE_BITS) - 1)) << PageSize::Size4K.shift()),
            prot: Access::from_bits_truncate((word & PROT_BITS) as u8),
            size: size_from_code((word >> SIZE_SHIFT) & 0x3),
        })
    }

    /// Caches `c` for IOVA page `pfn` (one store, replacing whatever the slot held). Returns the
    /// word written, for [`unfill`](Self::unfill), or `None` if the translation does not fit.
    #[inline]
    pub(crate) fn fill(&self, pfn: u64, c: Cached) -> Option<u64> {
        let word = self.encode(pfn, c)?;
        self.slot(pfn).store(word, Ordering::Release);
        Some(word)
    }

    /// Takes back the word a fill wrote, unless the slot changed since.
    pub(crate) fn unfill(&self, pfn: u64, word: u64) {
        // A failure means another fill or an invalidation replaced it: nothing of ours is left.
        let _ = self
            .slot(pfn)
            .compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Clears `slot` while it caches a page `pred` accepts. Returns whether it dropped an entry.
    fn clear_if(&self, slot: &AtomicU64, pred: impl Fn(u64) -> bool) -> bool {
        let mut word = slot.load(Ordering::Acquire);
        loop {
            if word & VALID == 0 || !pred(word) {
                return false;
            }
            match slot.compare_exchange(word, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// Page-selective invalidation of every IOVA page in `range`. Returns the entries dropped.
    pub(crate) fn invalidate_range(&self, range: IovaRange) -> usize {
        let first = range.start().raw() >> PageSize::Size4K.shift();
        let last = range.last().raw() >> PageSize::Size4K.shift();
        if last - first < self.entries.len() as u64 {
            (first..=last)
                .filter(|&pfn| self.clear_if(self.slot(pfn), |w| self.matches(w, pfn)))
                .count()
        } else {
            // More pages than entries: scan the array once; an entry's IOVA page is its tag and
            // its index.
            (0..self.entries.len() as u64)
                .filter(|&index| {
                    self.clear_if(&self.entries[index as usize], |w| {
                        let pfn = ((w & !VALID) >> TAG_SHIFT) << self.index_bits | index;
                        first <= pfn && pfn <= last
                    })
                })
                .count()
        }
    }

    /// Domain-selective invalidation: drops every entry. Returns the entries dropped.
    pub(crate) fn invalidate_all(&self) -> usize {
        self.entries
            .iter()
            .filter(|slot| self.clear_if(slot, |_| true))
            .count()
    }

    /// Number of valid entries (for statistics and tests; racy under concurrent use).
    pub(crate) fn occupancy(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.load(Ordering::Relaxed) & VALID != 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvfio_types::Iova;

    fn cached(hpa: u64, prot: Access, size: PageSize) -> Cached {
        Cached {
            hpa: Hpa::new(hpa),
            prot,
            size,
        }
    }

    #[test]
    fn fill_lookup_roundtrip_keeps_every_field() {
        let tlb = Iotlb::new(16);
        let c = cached(0x3fff_ffff_f000, Access::READ, PageSize::Size2M);
        tlb.fill(7, c).unwrap();
        assert_eq!(tlb.lookup(7), Some(c));
        assert_eq!(tlb.lookup(7 + 16), None, "same slot, other tag");
        assert_eq!(tlb.lookup(8), None);
        let top_pfn = ((1u64 << TAG_BITS) << 4) - 1; // the largest page number that fits
        let w = cached(0x1000, Access::WRITE, PageSize::Size1G);
        tlb.fill(top_pfn, w).unwrap();
        assert_eq!(tlb.lookup(top_pfn), Some(w));
    }

    #[test]
    fn translations_that_do_not_fit_are_not_cached() {
        let tlb = Iotlb::new(16);
        assert_eq!(tlb.fill(1, cached(1 << 46, Access::RW, PageSize::Size4K)), None);
        assert_eq!(
            tlb.fill((1 << TAG_BITS) << 4, cached(0x1000, Access::RW, PageSize::Size4K)),
            None
        );
        assert_eq!(tlb.occupancy(), 0);
        // The 4-level IOVA space fits entirely with the default 4096 entries.
        let tlb = Iotlb::new(4096);
        let last_48 = (1u64 << 36) - 1;
        assert!(
            tlb.fill(last_48, cached(0x1000, Access::RW, PageSize::Size4K))
                .is_some()
        );
    }

    #[test]
    fn entries_stay_until_invalidated() {
        let tlb = Iotlb::new(64);
        for pfn in 0..32 {
            tlb.fill(pfn, cached(pfn << 12, Access::RW, PageSize::Size4K));
        }
        let r = IovaRange::new(Iova::new(0x4000), Iova::new(0x7fff)).unwrap();
        assert_eq!(tlb.invalidate_range(r), 4);
        assert!(tlb.lookup(4).is_none() && tlb.lookup(7).is_none());
        assert!(tlb.lookup(3).is_some() && tlb.lookup(8).is_some());
        // A range larger than the IOTLB scans it, matching tag and index.
        tlb.fill(64 + 3, cached(0x9000, Access::RW, PageSize::Size4K));
        let big = IovaRange::new(Iova::new(0x8000), Iova::new(0xffff_ffff)).unwrap();
        assert_eq!(tlb.invalidate_range(big), 25);
        assert!(tlb.lookup(3).is_none() && tlb.lookup(64 + 3).is_none());
        assert_eq!(tlb.occupancy(), 3);
        assert_eq!(tlb.invalidate_all(), 3);
    }

    #[test]
    fn unfill_takes_back_only_its_own_entry() {
        let tlb = Iotlb::new(4);
        let mine = tlb.fill(1, cached(0x1000, Access::RW, PageSize::Size4K)).unwrap();
        tlb.fill(5, cached(0x5000, Access::RW, PageSize::Size4K));
        tlb.unfill(1, mine);
        assert_eq!(
            tlb.lookup(5).map(|c| c.hpa),
            Some(Hpa::new(0x5000)),
            "a newer fill survives"
        );
        let mine = tlb.fill(1, cached(0x1000, Access::RW, PageSize::Size4K)).unwrap();
        tlb.unfill(1, mine);
        assert!(tlb.lookup(1).is_none());
    }
}
