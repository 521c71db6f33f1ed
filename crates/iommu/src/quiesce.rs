//! The unmap guarantee: once an unmap and the invalidation it requires return, no device access can
//! touch the unmapped pages, not even one that translated before.
//!
//! # The scheme
//!
//! Every [`DmaPort`](crate::DmaPort) owns a [`ReaderSlot`]. An access runs inside a *reader
//! section*: it makes its slot's sequence number odd, translates (micro-TLB, IOTLB or page walk)
//! and copies, then makes the number even again. Readers take no lock and write only their own
//! cache line, so translation hits scale across threads.
//!
//! An invalidation (the writer) first makes translations unreachable (the page table was already
//! changed by the unmap; it bumps the domain's invalidation generation, which empties every port's
//! micro-TLB, and clears the IOTLB entries), then calls [`Readers::synchronize`]: a process-wide
//! memory barrier (`membarrier(2)`, so readers need only a compiler fence) and, for every slot found
//! odd, a wait until that section ends. A section that began before the barrier may still hold a
//! stale translation, and is waited for; one that begins after it sees the cleared state. Only then
//! are page-table frames freed and may the caller drop pins.
//!
//! This is the classic Dekker pattern (reader: store slot, load translation; writer: clear
//! translation, load slot) with `membarrier` as the writer-side fence for both parties, as in
//! liburcu's memb flavour. Without `membarrier` readers fall back to a full fence. A domain with no
//! registered port skips the barrier: registering takes the slot lock the writer has just released,
//! which orders the writer's changes before anything the new port reads.

use crate::sys;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, compiler_fence, fence};

/// One DMA reader's published state, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ReaderSlot {
    /// Odd while a section is open.
    seq: AtomicU64,
    /// Hits in the port's micro-TLB (written by the owning port only).
    pub(crate) utlb_hits: AtomicU64,
    /// Hits in the shared IOTLB (written by the owning port only).
    pub(crate) iotlb_hits: AtomicU64,
    /// IOTLB misses, i.e. page walks (written by the owning port only).
    pub(crate) misses: AtomicU64,
}

impl ReaderSlot {
    /// Adds one to a counter only the owning port writes; a plain load + store, no RMW.
    #[inline(always)]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// The set of reader slots of one domain.
#[derive(Debug)]
pub(crate) struct Readers {
    slots: Mutex<Vec<Arc<ReaderSlot>>>,
    /// Counters of slots whose ports were dropped, so statistics survive them.
    retired: Mutex<[u64; 3]>,
    light: bool,
}

/// An open reader section; closes on drop.
pub(crate) struct Section<'a> {
    slot: &'a ReaderSlot,
    seq: u64,
}

impl Drop for Section<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.slot.seq.store(self.seq.wrapping_add(1), Ordering::Release);
    }
}

impl Readers {
    pub(crate) fn new() -> Self {
        Readers {
            slots: Mutex::new(Vec::new()),
            retired: Mutex::new([0; 3]),
            light: sys::membarrier_available(),
        }
    }

    /// A new slot for a new port.
    pub(crate) fn register(&self) -> Arc<ReaderSlot> {
        let slot = Arc::new(ReaderSlot::default());
        self.slots.lock().push(Arc::clone(&slot));
        slot
    }

    /// Removes a dropped port's slot, keeping its counters.
    pub(crate) fn unregister(&self, slot: &Arc<ReaderSlot>) {
        let mut slots = self.slots.lock();
        if let Some(pos) = slots.iter().position(|s| Arc::ptr_eq(s, slot)) {
            slots.swap_remove(pos);
            let mut retired = self.retired.lock();
            retired[0] += slot.utlb_hits.load(Ordering::Relaxed);
            retired[1] += slot.iotlb_hits.load(Ordering::Relaxed);
            retired[2] += slot.misses.load(Ordering::Relaxed);
        }
    }

    /// Opens a reader section on `slot`.
    #[inline(always)]
    pub(crate) fn enter<'a>(&self, slot: &'a ReaderSlot) -> Section<'a> {
        let seq = slot.seq.load(Ordering::Relaxed).wrapping_add(1);
        slot.seq.store(seq, Ordering::Relaxed);
        self.reader_fence();
        Section { slot, seq }
    }

    /// The writer side of an asymmetric fence: a full barrier on every running thread of the
    /// process (`membarrier`), so that readers' [`reader_fence`](Self::reader_fence) can be a
    /// compiler fence.
    pub(crate) fn writer_fence(&self) {
        // With no port registered there is no reader to fence: the slot lock orders this writer's
        // earlier stores before any later registration (unlock here, lock there), so a port that
        // registers afterwards sees them without a barrier. This spares a process-wide IPI per
        // invalidation when no device is mid-transfer (a vfio-user client's DMA_MAP / DMA_UNMAP).
        if self.slots.lock().is_empty() {
            return;
        }
        if !(self.light && sys::membarrier_all_threads()) {
            fence(Ordering::SeqCst);
        }
    }

    /// The reader side of the asymmetric fence: a compiler fence when the writer uses `membarrier`,
    /// a full fence otherwise.
    #[inline(always)]
    pub(crate) fn reader_fence(&self) {
        if self.light {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// Waits until every section open at the time of the call has ended (see the module doc).
    pub(crate) fn synchronize(&self) {
        self.writer_fence();
        let slots = self.slots.lock();
        for slot in slots.iter() {
            let seen = slot.seq.load(Ordering::Acquire);
            if seen & 1 == 1 {
                let mut spins = 0u32;
                while slot.seq.load(Ordering::Acquire) == seen {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// Totals over live and retired slots: (micro-TLB hits, IOTLB hits, misses).
    pub(crate) fn counters(&self) -> [u64; 3] {
        let mut total = *self.retired.lock();
        for slot in self.slots.lock().iter() {
            total[0] += slot.utlb_hits.load(Ordering::Relaxed);
            total[1] += slot.iotlb_hits.load(Ordering::Relaxed);
            total[2] += slot.misses.load(Ordering::Relaxed);
        }
        total
    }
}
