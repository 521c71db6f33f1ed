//! Domains: what a device's DMA is translated by.
//!
//! A *blocked* domain fails every access (a detached device), an *identity* domain passes IOVAs
//! through as HPAs (VT-d pass-through), a *paging* domain owns a VT-d second-stage page table and an
//! IOTLB. Nested domains (stage 1 walked through a parent) and PASID-tagged translation slot in as
//! further variants of [`DomainType`] with their own translate step; dirty tracking uses the A/D bits
//! the page-table format already defines.

use crate::error::IommuError;
use crate::fault::{FaultCounts, FaultHandler, FaultLog};
use crate::iotlb::Iotlb;
use crate::pgtable::{Gather, Levels, PageTable, PageTableConfig};
use crate::port::DmaPort;
use crate::quiesce::Readers;
use crate::tables::HostTables;
use parking_lot::{Mutex, RwLock};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use uvfio_memory::{HostMemory, RamWindow};
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize, PageSizes};

/// The kind of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainType {
    /// Every DMA faults.
    Blocked,
    /// IOVA = HPA.
    Identity,
    /// Translated by a second-stage page table.
    Paging,
}

/// A domain's number, unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u32);

/// Options of a paging domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainConfig {
    /// 4-level (48-bit) or 5-level (57-bit) tables.
    pub levels: Levels,
    /// Page sizes the table may use (Linux's `pgsize_bitmap`).
    pub page_sizes: PageSizes,
    /// Invalidate the IOTLB on every unmap, for callers that do not manage invalidation.
    pub coherent: bool,
    /// IOTLB entries (rounded up to a power of two).
    pub iotlb_entries: usize,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig {
            levels: Levels::Four,
            page_sizes: PageSizes::all(),
            coherent: false,
            iotlb_entries: 16384,
        }
    }
}

/// An IOTLB invalidation request, after VT-d's granularities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Page-selective: every page of the range.
    Range(IovaRange),
    /// Domain-selective: every entry of the domain.
    Domain,
}

/// Translation-cache statistics of a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IotlbStats {
    /// Accesses served by a port's micro-TLB (the small per-port cache in front of the IOTLB).
    pub utlb_hits: u64,
    /// Accesses served by the shared IOTLB.
    pub hits: u64,
    /// Page walks.
    pub misses: u64,
    /// Invalidations performed.
    pub invalidations: u64,
    /// Valid IOTLB entries now.
    pub occupancy: usize,
    /// IOTLB capacity.
    pub capacity: usize,
}

pub(crate) struct Paging {
    pub(crate) table: PageTable<HostTables>,
    pub(crate) iotlb: Iotlb,
    /// Table frames unlinked by unmaps, freed after the next synchronisation.
    pending: Mutex<Gather>,
    /// The batch an invalidation frees; its lock serialises invalidations.
    spare: Mutex<Gather>,
}

pub(crate) enum Kind {
    Blocked,
    Identity,
    Paging(Box<Paging>),
}

/// A domain. Shared by the devices attached to it through [`DmaPort`]s.
pub struct Domain {
    id: DomainId,
    pub(crate) mem: Arc<HostMemory>,
    ram: RamWindow,
    pub(crate) kind: Kind,
    pub(crate) readers: Readers,
    /// Bumped at the start and at the end of every invalidation (odd while one runs); a port's
    /// micro-TLB is valid only for the even generation it was filled in.
    pub(crate) inv_gen: AtomicU64,
    pub(crate) faults: FaultLog,
    pub(crate) handler: RwLock<Option<Arc<dyn FaultHandler>>>,
    coherent: bool,
    invalidations: AtomicU64,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("id", &self.id)
            .field("type", &self.domain_type())
            .finish_non_exhaustive()
    }
}

fn next_id() -> DomainId {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    DomainId(NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Domain {
    fn with_kind(mem: Arc<HostMemory>, kind: Kind, coherent: bool) -> Arc<Self> {
        Arc::new(Domain {
            id: next_id(),
            ram: mem.ram(),
            mem,
            kind,
            readers: Readers::new(),
            inv_gen: AtomicU64::new(0),
            faults: FaultLog::default(),
            handler: RwLock::new(None),
            coherent,
            invalidations: AtomicU64::new(0),
        })
    }

    /// A domain that blocks every DMA.
    pub fn new_blocked(mem: Arc<HostMemory>) -> Arc<Self> {
        Self::with_kind(mem, Kind::Blocked, true)
    }

    /// A pass-through domain: IOVA = HPA.
    pub fn new_identity(mem: Arc<HostMemory>) -> Arc<Self> {
        Self::with_kind(mem, Kind::Identity, true)
    }

    /// A paging domain with an empty page table.
    pub fn new_paging(mem: Arc<HostMemory>, config: DomainConfig) -> Result<Arc<Self>, IommuError> {
        let tables = HostTables::new(Arc::clone(&mem));
        let table = PageTable::new(
            tables,
            PageTableConfig {
                levels: config.levels,
                page_sizes: config.page_sizes,
            },
        )?;
        let paging = Paging {
            table,
            iotlb: Iotlb::new(config.iotlb_entries),
            pending: Mutex::new(Gather::new()),
            spare: Mutex::new(Gather::new()),
        };
        Ok(Self::with_kind(
            mem,
            Kind::Paging(Box::new(paging)),
            config.coherent,
        ))
    }

    /// The domain's number.
    pub fn id(&self) -> DomainId {
        self.id
    }

    /// Its kind.
    pub fn domain_type(&self) -> DomainType {
        match self.kind {
            Kind::Blocked => DomainType::Blocked,
            Kind::Identity => DomainType::Identity,
            Kind::Paging(_) => DomainType::Paging,
        }
    }

    /// The host memory it translates into.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }

    /// Whether unmaps invalidate by themselves.
    pub fn is_coherent(&self) -> bool {
        self.coherent
    }

    /// The host pointer of the 4 KiB page at `hpa`: a compare and an add for RAM, a segment lookup
    /// otherwise.
    #[inline(always)]
    pub(crate) fn host_page_ptr(&self, hpa: Hpa) -> Option<NonNull<u8>> {
        match hpa.offset_from(self.ram.base) {
            Some(off) if off < self.ram.len => NonNull::new(self.ram.ptr.as_ptr().wrapping_add(off as usize)),
            _ => self.mem.host_ptr(hpa, PageSize::Size4K.bytes()).ok(),
        }
    }

    pub(crate) fn paging(&self) -> Result<&Paging, IommuError> {
        match &self.kind {
            Kind::Paging(p) => Ok(p),
            _ => Err(IommuError::NotPaging {
                domain: self.id,
                kind: self.domain_type(),
            }),
        }
    }

    /// The IOVA width of the page table (48 or 57 bits); 64 for identity and blocked domains.
    pub fn address_width(&self) -> u32 {
        match &self.kind {
            Kind::Paging(p) => p.table.address_width(),
            _ => 64,
        }
    }

    /// Maps `len` bytes at `iova` to `hpa` with `prot`. Super-pages are used where alignment allows.
    /// An overlap with an existing mapping fails with nothing changed. Pinning is the caller's job.
    pub fn map(&self, iova: Iova, hpa: Hpa, len: u64, prot: Access) -> Result<(), IommuError> {
        let paging = self.paging()?;
        paging.table.map(iova, hpa, len, prot)?;
        // Emptied tables a super-page replaced are freed with the next invalidation's batch.
        paging.table.take_retired(&mut paging.pending.lock());
        Ok(())
    }

    /// Unmaps every mapping in `range` (splitting a super-page the range cuts), returning the bytes
    /// unmapped; the part of `range` at or above the address width unmaps nothing. Unless the domain is coherent, the IOTLB may still hold the old translations: the
    /// caller must [`invalidate`](Self::invalidate) before it drops pins on those pages.
    pub fn unmap(&self, range: IovaRange) -> Result<u64, IommuError> {
        let paging = self.paging()?;
        // Nothing is mapped at or above the address width: that part of the range unmaps nothing.
        let width = paging.table.address_width();
        let top = Iova::new(
            u64::MAX
                .checked_shr(64u32.saturating_sub(width))
                .unwrap_or(u64::MAX),
        );
        let Some(range) = IovaRange::new(Iova::ZERO, top)
            .ok()
            .and_then(|space| range.intersection(&space))
        else {
            return Ok(0);
        };
        let bytes = paging.table.unmap(range, &mut paging.pending.lock())?;
        if self.coherent && bytes > 0 {
            self.invalidate(Invalidation::Range(range))?;
        }
        Ok(bytes)
    }

    /// Invalidates the IOTLB and waits until no access that might use a dropped translation is in
    /// flight. When this returns, pages unmapped before the call are unreachable by DMA, and the
    /// page-table frames unmaps released are freed.
    pub fn invalidate(&self, inv: Invalidation) -> Result<(), IommuError> {
        let paging = self.paging()?;
        // One invalidation at a time: the generation is odd exactly while one is in progress.
        let mut batch = paging.spare.lock();
        // Frames unlinked so far; those unlinked after this point wait for the next invalidation.
        std::mem::swap(&mut *batch, &mut *paging.pending.lock());
        // Odd: in progress. Ports neither use nor fill their micro-TLBs and do not trust IOTLB
        // hits; a page walk that filled the IOTLB before seeing this bump takes its entry back.
        self.inv_gen.fetch_add(1, Ordering::SeqCst);
        // Barrier A, paired with the reader fence a page walk issues after its IOTLB fill
        // (store-buffering: either the IOTLB clear below sees the fill, or the filler sees the
        // odd generation and unfills before its section ends).
        self.readers.writer_fence();
        match inv {
            Invalidation::Range(range) => paging.iotlb.invalidate_range(range),
            Invalidation::Domain => paging.iotlb.invalidate_all(),
        };
        // Barrier B and the wait for every section that may hold a stale translation.
        self.readers.synchronize();
        // Even again: micro-TLB entries cached from now on come from the cleaned IOTLB or from
        // walks of the changed page table; every older entry belongs to an older generation.
        self.inv_gen.fetch_add(1, Ordering::Release);
        batch.release(paging.table.memory());
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A new port: one device's (or one DMA engine's) view of this domain, for requester `rid`.
    pub fn port(self: &Arc<Self>, rid: u16) -> DmaPort {
        DmaPort::new(Arc::clone(self), rid)
    }

    /// Installs (or removes) the handler of recoverable faults.
    pub fn set_fault_handler(&self, handler: Option<Arc<dyn FaultHandler>>) {
        *self.handler.write() = handler;
    }

    /// Takes every fault record logged so far.
    pub fn drain_faults(&self) -> Vec<crate::fault::FaultRecord> {
        self.faults.drain()
    }

    /// Takes the fault records of requester `rid` (a device sharing the domain keeps its own).
    pub fn drain_faults_of(&self, rid: u16) -> Vec<crate::fault::FaultRecord> {
        self.faults.drain_requester(rid)
    }

    /// Counts of the fault log.
    pub fn fault_counts(&self) -> FaultCounts {
        self.faults.counts()
    }

    /// Translation-cache statistics.
    pub fn iotlb_stats(&self) -> IotlbStats {
        let [utlb_hits, hits, misses] = self.readers.counters();
        let (occupancy, capacity) = match &self.kind {
            Kind::Paging(p) => (p.iotlb.occupancy(), p.iotlb.capacity()),
            _ => (0, 0),
        };
        IotlbStats {
            utlb_hits,
            hits,
            misses,
            invalidations: self.invalidations.load(Ordering::Relaxed),
            occupancy,
            capacity,
        }
    }

    /// Page-table frames in use (root included); 0 for non-paging domains.
    pub fn table_frames(&self) -> usize {
        match &self.kind {
            Kind::Paging(p) => p.table.table_frames(),
            _ => 0,
        }
    }

    /// The page-table translation of `iova`, bypassing every cache (for inspection and tests).
    pub fn lookup(&self, iova: Iova) -> Option<crate::pgtable::Translation> {
        self.paging().ok()?.table.walk(iova).ok()
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        if let Kind::Paging(p) = &self.kind {
            // No port can exist any more (each holds an Arc of the domain): free what unmaps left.
            p.pending.lock().release(p.table.memory());
        }
    }
}
