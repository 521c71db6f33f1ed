//! `DmaPort`: one device's view of its domain. Every access is translated and checked page by page.
//!
//! Lookup order: the port's *micro-TLB* (8 entries, private to the port, valid for one invalidation
//! generation of the domain, like a device's small address-translation cache), then the domain's
//! IOTLB, then a page walk that fills both. All of it runs inside a reader section (see
//! [`quiesce`](crate::quiesce)), which is what makes the unmap guarantee hold.

use crate::domain::{Domain, Kind};
use crate::fault::{DmaFault, FaultReason, FaultRecord, FaultResponse};
use crate::iotlb::Cached;
use crate::pgtable::WalkError;
use crate::quiesce::ReaderSlot;
use crate::sys;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize};

const PAGE_SHIFT: u32 = PageSize::Size4K.shift();
const PAGE_MASK: u64 = PageSize::Size4K.offset_mask();
/// Micro-TLB entries per port: 16 keeps the pages of a 64 KiB transfer (a common DMA size, and
/// the vfio-user device-DMA benchmark's) in it from one transfer to the next.
const UTLB_ENTRIES: usize = 16;
/// How often an access is retried on the same page after a fault handler answered `Retry`.
pub const MAX_FAULT_RETRIES: u32 = 4;

/// A piece of a translated range: `len` bytes at `iova` are host memory at `hpa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// First IOVA of the piece.
    pub iova: Iova,
    /// Where it lands in host memory.
    pub hpa: Hpa,
    /// Length in bytes.
    pub len: u64,
}

/// A translation of one 4 KiB page as the micro-TLB holds it: the IOTLB's word plus the host
/// pointer of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TlbEntry {
    ptr: NonNull<u8>,
    hpa: Hpa,
    prot: Access,
    size: PageSize,
}

impl TlbEntry {
    fn cached(&self) -> Cached {
        Cached {
            hpa: self.hpa,
            prot: self.prot,
            size: self.size,
        }
    }
}

/// Handler retries of one access, counted per faulting page.
#[derive(Default)]
struct Retries {
    page: Option<Iova>,
    count: u32,
}

/// A device's DMA view of a domain. `Send` but not `Sync`: clone it for another thread.
///
/// Aligned to 128 bytes (two cache lines, the unit adjacent-line prefetchers move) because every
/// access may write its micro-TLB: two ports side by side in a `Vec` must not share a line.
#[repr(align(128))]
pub struct DmaPort {
    domain: Arc<Domain>,
    slot: Arc<ReaderSlot>,
    rid: u16,
    utlb: [Cell<Option<(u64, TlbEntry)>>; UTLB_ENTRIES],
    utlb_gen: Cell<u64>,
}

impl std::fmt::Debug for DmaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaPort")
            .field("domain", &self.domain.id())
            .field("rid", &self.rid)
            .finish()
    }
}

impl Clone for DmaPort {
    fn clone(&self) -> Self {
        DmaPort::new(Arc::clone(&self.domain), self.rid)
    }
}

impl Drop for DmaPort {
    fn drop(&mut self) {
        self.domain.readers.unregister(&self.slot);
    }
}

impl DmaPort {
    pub(crate) fn new(domain: Arc<Domain>, rid: u16) -> Self {
        let slot = domain.readers.register();
        DmaPort {
            domain,
            slot,
            rid,
            utlb: Default::default(),
            utlb_gen: Cell::new(u64::MAX), // odd: matches no generation
        }
    }

    /// The domain this port translates through.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// The requester id faults are recorded with.
    pub fn requester(&self) -> u16 {
        self.rid
    }

    /// Reads `buf.len()` bytes at `iova`. On a fault nothing is read and the fault is logged.
    #[inline]
    pub fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), DmaFault> {
        {
            let _section = self.domain.readers.enter(&self.slot);
            if let Some(ptr) = self.one_page(iova, buf.len(), Access::READ) {
                sys::copy_from_host(ptr, buf);
                return Ok(());
            }
        }
        self.slow(iova, buf.len(), Access::READ, &mut |off, ptr, n| {
            sys::copy_from_host(ptr, &mut buf[off..off + n]);
        })
    }

    /// Writes `buf` at `iova`. On a fault nothing is written and the fault is logged.
    #[inline]
    pub fn write(&self, iova: Iova, buf: &[u8]) -> Result<(), DmaFault> {
        {
            let _section = self.domain.readers.enter(&self.slot);
            if let Some(ptr) = self.one_page(iova, buf.len(), Access::WRITE) {
                sys::copy_to_host(ptr, buf);
                return Ok(());
            }
        }
        self.slow(iova, buf.len(), Access::WRITE, &mut |off, ptr, n| {
            sys::copy_to_host(ptr, &buf[off..off + n]);
        })
    }

    /// Translates `range` for `access` into host fragments (adjacent pages merged), appended to
    /// `out`. The fragments describe the mapping at the time of the call; like a device's ATS
    /// answer they go stale at the next unmap + invalidation.
    pub fn translate(
        &self,
        range: IovaRange,
        access: Access,
        out: &mut Vec<Fragment>,
    ) -> Result<(), DmaFault> {
        let first = out.len();
        let mut retries = Retries::default();
        loop {
            let attempt = {
                let _section = self.domain.readers.enter(&self.slot);
                let generation = self.sync_utlb();
                self.walk_pages(range, access, generation, &mut |iova, e, n| {
                    let hpa = Hpa::new(e.hpa.raw() | (iova.raw() & PAGE_MASK));
                    push_fragment(out, first, Fragment { iova, hpa, len: n });
                })
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(fault) => {
                    // A failed attempt leaves nothing behind, whether it is retried or returned.
                    out.truncate(first);
                    self.after_fault(fault, &mut retries)?;
                }
            }
        }
    }

    /// One full page walk for `iova`, bypassing and not filling any cache (an IOTLB miss every
    /// time): for inspection and the walk benchmark. Faults are returned, not logged.
    #[inline]
    pub fn translate_uncached(&self, iova: Iova, access: Access) -> Result<Fragment, DmaFault> {
        let _section = self.domain.readers.enter(&self.slot);
        let e = self.uncached_entry(iova).and_then(|e| check(e, access));
        let e = e.map_err(|reason| DmaFault { iova, access, reason })?;
        let offset = iova.raw() & PAGE_MASK;
        Ok(Fragment {
            iova,
            hpa: Hpa::new(e.hpa.raw() | offset),
            len: PAGE_MASK + 1 - offset,
        })
    }

    /// An access within one page, translated inside the caller's reader section: a micro-TLB hit
    /// (no walk, no shared write), else one IOTLB lookup or walk. `None` sends the access down the
    /// general path (several pages, or a fault to report or hand to the fault handler).
    #[inline(always)]
    fn one_page(&self, iova: Iova, len: usize, access: Access) -> Option<NonNull<u8>> {
        let offset = iova.raw() & PAGE_MASK;
        if len == 0 || offset + len as u64 > PAGE_MASK + 1 {
            return None;
        }
        let pfn = iova.raw() >> PAGE_SHIFT;
        if self.domain.inv_gen.load(Ordering::Relaxed) == self.utlb_gen.get()
            && let Some((tag, e)) = self.utlb[pfn as usize % UTLB_ENTRIES].get()
            && tag == pfn
            && e.prot.contains(access)
        {
            ReaderSlot::bump(&self.slot.utlb_hits);
            return NonNull::new(e.ptr.as_ptr().wrapping_add(offset as usize));
        }
        let generation = self.sync_utlb();
        let e = self.translate_page(pfn, access, generation).ok()?;
        NonNull::new(e.ptr.as_ptr().wrapping_add(offset as usize))
    }

    /// Brings the micro-TLB up to the domain's invalidation generation; returns that generation.
    fn sync_utlb(&self) -> u64 {
        let generation = self.domain.inv_gen.load(Ordering::Acquire);
        if generation != self.utlb_gen.get() {
            for e in &self.utlb {
                e.set(None);
            }
            // An odd generation (invalidation running) is never recorded, so the fast path, which
            // compares generations, misses until the invalidation has finished.
            self.utlb_gen
                .set(if generation & 1 == 0 { generation } else { u64::MAX });
        }
        generation
    }

    /// The general access: validate every page, then copy page by page.
    fn slow(
        &self,
        iova: Iova,
        len: usize,
        access: Access,
        copy: &mut dyn FnMut(usize, NonNull<u8>, usize),
    ) -> Result<(), DmaFault> {
        if len == 0 {
            return Ok(());
        }
        let range = IovaRange::from_start_len(iova, len as u64).map_err(|_| {
            let fault = DmaFault {
                iova,
                access,
                reason: FaultReason::Wraps,
            };
            self.log(fault);
            fault
        })?;
        let single_page = (iova.raw() ^ range.last().raw()) >> PAGE_SHIFT == 0;
        let mut retries = Retries::default();
        loop {
            let attempt = {
                let _section = self.domain.readers.enter(&self.slot);
                let generation = self.sync_utlb();
                if single_page {
                    // One page: one translation, then the copy.
                    let pfn = iova.raw() >> PAGE_SHIFT;
                    self.translate_page(pfn, access, generation).map(|e| {
                        let at = (iova.raw() & PAGE_MASK) as usize;
                        if let Some(ptr) = NonNull::new(e.ptr.as_ptr().wrapping_add(at)) {
                            copy(0, ptr, len);
                        }
                    })
                } else {
                    // Every page is translated before any byte moves, so a fault moves nothing.
                    // Pages whose host addresses follow each other (a segment mapped in one piece,
                    // as a client's memfd is) become one run: one translation pass, and one large
                    // copy, which moves bytes faster than page-sized ones. A transfer scattered
                    // over more runs than fit here is translated a second time and copied page by
                    // page.
                    let mut runs = Runs::default();
                    self.walk_pages(range, access, generation, &mut |page_iova, e, n| {
                        runs.push(piece(iova, page_iova, e, n));
                    })
                    .and_then(|()| {
                        if let Some(runs) = runs.all() {
                            for &(off, ptr, n) in runs {
                                copy(off, ptr, n);
                            }
                            return Ok(());
                        }
                        self.walk_pages(range, access, generation, &mut |page_iova, e, n| {
                            if let Some((off, ptr, n)) = piece(iova, page_iova, e, n) {
                                copy(off, ptr, n);
                            }
                        })
                    })
                }
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(fault) => self.after_fault(fault, &mut retries)?,
            }
        }
    }

    /// Decides what follows a faulting attempt: retry (the fault handler fixed the mapping) or fail.
    fn after_fault(&self, fault: DmaFault, retries: &mut Retries) -> Result<(), DmaFault> {
        let record = FaultRecord {
            iova: fault.iova,
            access: fault.access,
            reason: fault.reason,
            requester: self.rid,
        };
        if retries.page != Some(fault.iova) {
            *retries = Retries {
                page: Some(fault.iova),
                count: 0,
            };
        }
        if fault.reason.is_recoverable() && retries.count < MAX_FAULT_RETRIES {
            let handler = self.domain.handler.read().clone();
            if let Some(handler) = handler
                && handler.handle(&record) == FaultResponse::Retry
            {
                retries.count += 1;
                return Ok(());
            }
        }
        self.domain.faults.record(record);
        Err(fault)
    }

    fn log(&self, fault: DmaFault) {
        self.domain.faults.record(FaultRecord {
            iova: fault.iova,
            access: fault.access,
            reason: fault.reason,
            requester: self.rid,
        });
    }

    /// Calls `f(iova, entry, bytes)` for each page piece of `range`, translated for `access`.
    fn walk_pages(
        &self,
        range: IovaRange,
        access: Access,
        generation: u64,
        f: &mut dyn FnMut(Iova, TlbEntry, u64),
    ) -> Result<(), DmaFault> {
        let mut iova = range.start();
        loop {
            let pfn = iova.raw() >> PAGE_SHIFT;
            let e = self.translate_page(pfn, access, generation)?;
            let page_last = iova.raw() | PAGE_MASK;
            let piece_last = page_last.min(range.last().raw());
            f(iova, e, piece_last - iova.raw() + 1);
            match piece_last.checked_add(1) {
                Some(next) if piece_last < range.last().raw() => iova = Iova::new(next),
                _ => return Ok(()),
            }
        }
    }

    /// The translation of IOVA page `pfn`, checked for `access`.
    fn translate_page(&self, pfn: u64, access: Access, generation: u64) -> Result<TlbEntry, DmaFault> {
        let iova = Iova::new(pfn << PAGE_SHIFT);
        let fault = |reason| DmaFault { iova, access, reason };
        // While an invalidation runs (odd generation) the micro-TLB is neither used nor filled: an
        // IOTLB hit may be an entry the invalidation is about to clear.
        let cell = (generation & 1 == 0).then(|| &self.utlb[pfn as usize % UTLB_ENTRIES]);
        if let Some((tag, e)) = cell.and_then(Cell::get)
            && tag == pfn
        {
            ReaderSlot::bump(&self.slot.utlb_hits);
            return check(e, access).map_err(fault);
        }
        let e = match &self.domain.kind {
            Kind::Paging(p) => {
                // While an invalidation runs (odd generation) IOTLB hits are not trusted: a page
                // walk that raced it may have left an entry it has yet to take back.
                let even = generation & 1 == 0;
                if let Some(c) = p.iotlb.lookup(pfn).filter(|_| even) {
                    ReaderSlot::bump(&self.slot.iotlb_hits);
                    let ptr = self
                        .domain
                        .host_page_ptr(c.hpa)
                        .ok_or_else(|| fault(FaultReason::BadHostAddress))?;
                    TlbEntry {
                        ptr,
                        hpa: c.hpa,
                        prot: c.prot,
                        size: c.size,
                    }
                } else {
                    ReaderSlot::bump(&self.slot.misses);
                    let e = self.uncached_entry(iova).map_err(fault)?;
                    if even && let Some(word) = p.iotlb.fill(pfn, e.cached()) {
                        // Pairs with the writer fence in `Domain::invalidate`: either that
                        // invalidation's IOTLB clear sees our entry, or we see its generation
                        // and take the entry back before our section ends.
                        self.domain.readers.reader_fence();
                        if self.domain.inv_gen.load(Ordering::Relaxed) != generation {
                            p.iotlb.unfill(pfn, word);
                        }
                    }
                    e
                }
            }
            _ => self.uncached_entry(iova).map_err(fault)?,
        };
        if let Some(cell) = cell {
            cell.set(Some((pfn, e)));
        }
        check(e, access).map_err(fault)
    }

    /// The translation of the 4 KiB page holding `iova`, from the domain itself (no cache).
    #[inline]
    fn uncached_entry(&self, iova: Iova) -> Result<TlbEntry, FaultReason> {
        let page_iova = iova.align_down(PageSize::Size4K);
        let (hpa, prot, size) = match &self.domain.kind {
            Kind::Blocked => return Err(FaultReason::Blocked),
            Kind::Identity => (Hpa::new(page_iova.raw()), Access::RW, PageSize::Size4K),
            Kind::Paging(p) => {
                let t = p.table.walk(page_iova).map_err(|e| match e {
                    WalkError::NotPresent { .. } => FaultReason::NotPresent,
                    WalkError::BeyondAddressWidth => FaultReason::BeyondAddressWidth,
                    WalkError::BadTable { .. } => FaultReason::BadHostAddress,
                })?;
                let into_leaf = page_iova
                    .offset_from(t.iova_page)
                    .ok_or(FaultReason::BadHostAddress)?;
                (
                    t.page.checked_add(into_leaf).ok_or(FaultReason::BadHostAddress)?,
                    t.prot,
                    t.size,
                )
            }
        };
        let ptr = self
            .domain
            .host_page_ptr(hpa)
            .ok_or(FaultReason::BadHostAddress)?;
        Ok(TlbEntry { ptr, hpa, prot, size })
    }
}

/// Appends `f` to `out`, merged into the last fragment (if it is one of this call's, from index
/// `first` on) when it continues it in host memory.
fn push_fragment(out: &mut Vec<Fragment>, first: usize, f: Fragment) {
    if out.len() > first
        && let Some(prev) = out.last_mut()
        && prev.hpa.checked_add(prev.len) == Some(f.hpa)
    {
        prev.len += f.len;
    } else {
        out.push(f);
    }
}

fn check(e: TlbEntry, access: Access) -> Result<TlbEntry, FaultReason> {
    if e.prot.contains(access & Access::RW) {
        Ok(e)
    } else {
        Err(FaultReason::Permission { granted: e.prot })
    }
}

/// The two steps of the fill/invalidate protocol, driven deterministically: a stress test cannot
/// reliably land in windows a few nanoseconds wide, so these set the generation by hand.
/// A piece of a transfer: its offset in the caller's buffer, its host address, its length.
type Piece = (usize, NonNull<u8>, usize);

/// The piece of a transfer starting at `iova` that page `page_iova`'s entry `e` holds (`n` bytes).
#[inline(always)]
fn piece(iova: Iova, page_iova: Iova, e: TlbEntry, n: u64) -> Option<Piece> {
    let off = page_iova.offset_from(iova).unwrap_or(0) as usize;
    let at = (page_iova.raw() & PAGE_MASK) as usize;
    NonNull::new(e.ptr.as_ptr().wrapping_add(at)).map(|ptr| (off, ptr, n as usize))
}

/// How many runs a transfer may be copied in after one translation pass.
const INLINE_RUNS: usize = 8;

/// The runs of a transfer: pieces whose buffer offsets and host addresses both follow each other,
/// merged. Only the first `len` slots are runs (the others hold a dangling pointer, never used).
struct Runs {
    runs: [Piece; INLINE_RUNS],
    len: usize,
    overflow: bool,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            runs: [(0, NonNull::dangling(), 0); INLINE_RUNS],
            len: 0,
            overflow: false,
        }
    }
}

impl Runs {
    /// Appends `p`, merged into the last run when it continues it (in the buffer and in host
    /// memory).
    fn push(&mut self, p: Option<Piece>) {
        let Some(p) = p else { return };
        let extends =
            |last: &Piece| last.0 + last.2 == p.0 && last.1.as_ptr().wrapping_add(last.2) == p.1.as_ptr();
        match self.len.checked_sub(1) {
            Some(i) if extends(&self.runs[i]) => self.runs[i].2 += p.2,
            _ if self.len < INLINE_RUNS => {
                self.runs[self.len] = p;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }

    /// All the runs, if they fit.
    fn all(&self) -> Option<&[Piece]> {
        (!self.overflow).then_some(&self.runs[..self.len])
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use crate::domain::{Domain, DomainConfig};
    use uvfio_memory::{HostMemory, MemoryConfig};

    fn rig() -> (Arc<Domain>, DmaPort, Hpa) {
        let mem = Arc::new(
            HostMemory::new(MemoryConfig {
                ram_bytes: 16 << 20,
                ..MemoryConfig::default()
            })
            .unwrap(),
        );
        let page = mem.alloc(PageSize::Size4K).unwrap();
        let domain = Domain::new_paging(mem, DomainConfig::default()).unwrap();
        domain.map(Iova::new(0x5000), page, 0x1000, Access::RW).unwrap();
        let port = domain.port(0);
        (domain, port, page)
    }

    /// A domain over 12 frames mapped at IOVA 0x10000.. in `order` (an index into the frames per
    /// IOVA page), the page after them unmapped.
    fn scattered(order: impl Fn(usize) -> usize) -> (Arc<Domain>, DmaPort) {
        let mem = Arc::new(
            HostMemory::new(MemoryConfig {
                ram_bytes: 16 << 20,
                ..MemoryConfig::default()
            })
            .unwrap(),
        );
        let frames: Vec<Hpa> = (0..12).map(|_| mem.alloc(PageSize::Size4K).unwrap()).collect();
        let domain = Domain::new_paging(mem, DomainConfig::default()).unwrap();
        for i in 0..12 {
            let iova = Iova::new(0x10000 + 0x1000 * i as u64);
            domain.map(iova, frames[order(i)], 0x1000, Access::RW).unwrap();
        }
        let port = domain.port(0);
        (domain, port)
    }

    #[test]
    fn a_transfer_over_more_runs_than_fit_inline_is_copied_page_by_page() {
        // Frames in reverse: no two IOVA neighbours are host neighbours, so 12 runs (> 8).
        for (name, order) in [
            (
                "reversed",
                Box::new(|i: usize| 11 - i) as Box<dyn Fn(usize) -> usize>,
            ),
            ("in order", Box::new(|i: usize| i)),
        ] {
            let (_domain, port) = scattered(order);
            // From the middle of the first page to the middle of the last.
            let data: Vec<u8> = (0..11 * 0x1000).map(|i| (i * 13 + 1) as u8).collect();
            port.write(Iova::new(0x10800), &data).unwrap();
            let mut back = vec![0u8; data.len()];
            port.read(Iova::new(0x10800), &mut back).unwrap();
            assert_eq!(back, data, "{name}");
            // Page by page, each piece landed where its IOVA says.
            for page in 0..12u64 {
                let mut b = [0u8; 0x1000];
                port.read(Iova::new(0x10000 + page * 0x1000), &mut b).unwrap();
                for (j, byte) in b.iter().enumerate() {
                    let at = (page * 0x1000 + j as u64).checked_sub(0x800);
                    let want = at
                        .filter(|&a| (a as usize) < data.len())
                        .map_or(0, |a| data[a as usize]);
                    assert_eq!(*byte, want, "{name}: page {page} byte {j}");
                }
            }
            // A transfer running into the unmapped page after them writes nothing at all.
            let before = back.clone();
            let fault = port
                .write(Iova::new(0x10800), &vec![0xff; 12 * 0x1000])
                .unwrap_err();
            assert_eq!(fault.iova, Iova::new(0x1c000), "{name}");
            port.read(Iova::new(0x10800), &mut back).unwrap();
            assert_eq!(back, before, "{name}");
        }
    }

    #[test]
    fn iotlb_hits_are_not_trusted_while_an_invalidation_runs() {
        let (domain, port, _) = rig();
        let other = domain.port(1);
        let mut b = [0u8; 8];
        port.read(Iova::new(0x5000), &mut b).unwrap(); // fills the IOTLB
        let range = IovaRange::from_start_len(Iova::new(0x5000), 0x1000).unwrap();
        domain.unmap(range).unwrap(); // no invalidation: the IOTLB entry is stale
        let paging = domain.paging().unwrap();
        assert!(paging.iotlb.lookup(5).is_some());
        // An even generation trusts the (stale, not yet invalidated) entry, as hardware would...
        assert!(other.read(Iova::new(0x5000), &mut b).is_ok());
        // ...but while an invalidation runs (odd), a reader must walk, and the walk faults.
        let generation = domain.inv_gen.fetch_add(1, Ordering::SeqCst) + 1;
        let fresh = domain.port(2);
        let fault = fresh.translate_page(5, Access::READ, generation).unwrap_err();
        assert_eq!(fault.reason, FaultReason::NotPresent);
        domain.inv_gen.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_taken_back() {
        let (domain, port, _) = rig();
        // The walker read generation 0, then an invalidation began (generation 1) before its fill.
        domain.inv_gen.store(1, Ordering::SeqCst);
        let e = port.translate_page(5, Access::READ, 0).unwrap();
        assert_eq!(
            e.size,
            PageSize::Size4K,
            "the walker itself may use what it walked"
        );
        let paging = domain.paging().unwrap();
        assert!(
            paging.iotlb.lookup(5).is_none(),
            "but no other reader may find it in the IOTLB"
        );
        // Without a race the fill stays (a fresh port: the first one cached the page privately).
        domain.inv_gen.store(2, Ordering::SeqCst);
        domain.port(1).translate_page(5, Access::READ, 2).unwrap();
        assert!(paging.iotlb.lookup(5).is_some());
    }
}
