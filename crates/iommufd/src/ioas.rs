//! The IOAS's page table (Linux `struct io_pagetable`): the IOVA space of an IOAS, the `Pages`
//! behind each area, the domains that carry its mappings, and the accesses that reach its pages
//! without a domain.
//!
//! Every domain attached to an IOAS maps every area of it (seed 004's domain sharing: one address
//! space, many devices and domains). While at least one domain is attached, each area holds one
//! pin on its pages; attaching the first domain pins everything, detaching the last unpins. An
//! unmap removes the areas, unmaps them from every domain, invalidates each domain's IOTLB (so no
//! DMA can reach the pages any more), and only then unpins — the order the unmap guarantee needs.
//! Every operation is all or nothing: a failure at any step (including an injected one) undoes
//! the steps before it.
//!
//! Two more ways in, both Linux's:
//!
//! - [`IoPageTable::copy_from`] (`IOMMU_IOAS_COPY`): new areas over the very `Pages` of existing
//!   ones (`iopt_get_pages` + `iopt_map_pages`), so a copy costs no new locked memory;
//! - accesses (`iommufd_access_*`: [`IoPageTable::add_access`], [`IoPageTable::pin_for_access`],
//!   [`IoPageTable::access_rw`]): an emulated device without a domain of its own pins pages of
//!   the IOAS, or reads and writes them; an unmap of a range an access still pins first tells it
//!   to let go ([`AccessNotify::unmap`], outside the IOAS lock) and then retries.

mod access;
mod copy;
mod cut;
mod domains;
mod error;
mod reserved;

pub use access::{AccessId, AccessNotify};
pub use cut::CutError;
pub use error::IoasError;

use crate::fail::{FailPoints, Site};
use crate::iova_space::{AreaId, IovaSpace, IovaSpaceError, Piece, Placement, SourceAddr};
use crate::pages::{Account, Pages};
use access::AccessEntry;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use uvfio_iommu::{Domain, Invalidation};
use uvfio_memory::{HostMemory, UserBuffer};
use uvfio_types::{Access, Alignment, Iova, IovaRange, PageSize};

const PAGE: u64 = PageSize::Size4K.bytes();

/// What an area maps: a slice of a `Pages`.
#[derive(Debug, Clone)]
pub struct AreaData {
    /// The pages (shared with copies of the area).
    pub pages: Arc<Pages>,
    /// Offset of the area's first byte from the first byte of `pages`' first page.
    pub start_byte: u64,
    /// The source address of `pages`' first page (the user VA of the map, page aligned, or the
    /// file offset of its first page): a copy's pieces start at `source_base + start_byte`.
    source_base: u64,
    /// What devices may do.
    pub prot: Access,
    /// Access pins on this area (`area->num_accesses`): while non-zero an unmap must notify.
    accesses: u32,
    /// Set while an unmap waits for accesses to let go (`area->prevent_access`): new access pins
    /// and reads/writes are refused.
    prevent_access: bool,
}

impl AreaData {
    fn new(pages: Arc<Pages>, source_base: u64, start_byte: u64, prot: Access) -> Self {
        AreaData {
            pages,
            start_byte,
            source_base,
            prot,
            accesses: 0,
            prevent_access: false,
        }
    }

    /// The pages `first..=last` of `pages` that an area of `len` bytes covers.
    fn page_span(&self, len: u64) -> (u64, u64) {
        let first = self.start_byte / PAGE;
        let last = (self.start_byte + len - 1) / PAGE;
        (first, last)
    }
}

/// The part of one area that a contiguous walk covers (Linux `iopt_area_contig_iter`).
#[derive(Debug, Clone)]
struct Slice {
    area_id: AreaId,
    /// The whole area.
    area: IovaRange,
    /// The part of the walked range inside it.
    range: IovaRange,
    data: AreaData,
}

impl Slice {
    /// `iopt_area_start_byte(area, iova)`: the byte of `pages` that `iova` maps.
    fn start_byte_at(&self, iova: Iova) -> u64 {
        self.data.start_byte + iova.offset_from(self.area.start()).unwrap_or(0)
    }

    fn len(&self) -> u64 {
        self.range.len_minus_one() + 1
    }

    /// The pages of `pages` the slice touches.
    fn page_span(&self) -> (u64, u64) {
        let first = self.start_byte_at(self.range.start()) / PAGE;
        (first, self.start_byte_at(self.range.last()) / PAGE)
    }
}

#[derive(Debug, Default)]
struct Inner {
    space: IovaSpace<AreaData>,
    domains: Vec<Arc<Domain>>,
    accesses: BTreeMap<AccessId, AccessEntry>,
    /// `iopt->disable_large_pages`: see [`IoPageTable::disable_large_pages`].
    large_pages_disabled: bool,
}

impl Inner {
    /// The areas covering `range` from its first byte on, as long as each starts where the one
    /// before ended; `true` if they reach `range.last()` (`iopt_for_each_contig_area` and
    /// `iopt_area_contig_done`).
    fn contiguous(&self, range: IovaRange) -> (Vec<Slice>, bool) {
        let mut out = Vec::new();
        let mut cursor = range.start();
        loop {
            let Some((area_id, area, data)) = self.space.area_at(cursor) else {
                return (out, false);
            };
            let last = area.last().min(range.last());
            let Ok(part) = IovaRange::new(cursor, last) else {
                return (out, false);
            };
            out.push(Slice {
                area_id,
                area,
                range: part,
                data: data.clone(),
            });
            if last == range.last() {
                return (out, true);
            }
            match last.checked_add(1) {
                Some(next) => cursor = next,
                None => return (out, false),
            }
        }
    }

    /// Unmaps `areas` from every domain, invalidates, and unpins: after this no DMA reaches them.
    fn retire(&self, areas: impl Iterator<Item = (IovaRange, AreaData)>) -> u64 {
        let mut bytes = 0;
        for (range, data) in areas {
            for domain in &self.domains {
                // Areas were mapped whole into every domain; unmapping cannot fail for a range
                // below the domain's width, and invalidation of a paging domain cannot either.
                let _ = domain.unmap(range);
                let _ = domain.invalidate(Invalidation::Range(range));
            }
            if !self.domains.is_empty() {
                let (first, last) = data.page_span(range.len_minus_one() + 1);
                let _ = data.pages.unpin(first, last);
            }
            bytes += range.len_minus_one() + 1;
        }
        bytes
    }

    /// The IOVA alignment the domains and accesses need (Linux `iopt_calculate_iova_alignment`):
    /// `PAGE_SIZE` with large pages disabled, any domain or any access that pins pages, else 1. A
    /// raise is checked against the areas (`EADDRINUSE`); a lowering always succeeds.
    fn recalc_alignment(&mut self) -> Result<(), IovaSpaceError> {
        let needs_page = self.large_pages_disabled
            || !self.domains.is_empty()
            || self.accesses.values().any(|a| a.needs_pin_pages);
        let bytes = if needs_page { PAGE } else { 1 };
        match Alignment::new(bytes) {
            Ok(alignment) => self.space.set_iova_alignment(alignment),
            Err(_) => Ok(()),
        }
    }
}

/// One IOAS's mappings, the domains that carry them and the accesses that use them.
#[derive(Debug)]
pub struct IoPageTable {
    mem: Arc<HostMemory>,
    account: Arc<Account>,
    fail: Arc<FailPoints>,
    inner: Mutex<Inner>,
}

/// Which areas an unmap takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnmapScope {
    /// Those inside the range; an area it cuts or an empty range is `ENOENT`.
    Range(IovaRange),
    /// Every area; an empty IOAS is fine.
    All,
}

impl IoPageTable {
    /// An empty IOAS over `mem`, charging pins to `account`.
    pub fn new(mem: Arc<HostMemory>, account: Arc<Account>, fail: Arc<FailPoints>) -> Self {
        IoPageTable {
            mem,
            account,
            fail,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// `IOMMU_IOAS_MAP`: maps `buf` at `placement` with `prot`; returns where it went.
    pub fn map(&self, buf: UserBuffer, placement: Placement, prot: Access) -> Result<IovaRange, IoasError> {
        if !prot.intersects(Access::RW) {
            return Err(IoasError::NoAccess);
        }
        let pages = Pages::new(
            Arc::clone(&self.mem),
            Arc::clone(&self.account),
            buf,
            prot.contains(Access::WRITE),
        )?;
        self.map_one(pages, buf.va().raw(), buf.len(), placement, prot)
    }

    /// `IOMMU_IOAS_MAP_FILE`: maps `len` bytes at `offset` of the memfd `fd` ("All other arguments
    /// and semantics match those of IOMMU_IOAS_MAP").
    pub fn map_file(
        &self,
        fd: std::os::fd::OwnedFd,
        offset: u64,
        len: u64,
        placement: Placement,
        prot: Access,
    ) -> Result<IovaRange, IoasError> {
        if !prot.intersects(Access::RW) {
            return Err(IoasError::NoAccess);
        }
        let writable = prot.contains(Access::WRITE);
        let pages = Pages::from_file(
            Arc::clone(&self.mem),
            Arc::clone(&self.account),
            fd,
            offset,
            len,
            writable,
        )?;
        self.map_one(pages, offset, len, placement, prot)
    }

    /// Records one area of `len` bytes over `pages`, whose mapped bytes start at `source` (a user
    /// address or a file offset: it steers the IOVA alignment as `iopt_alloc_iova` does), and
    /// fills it into every domain.
    fn map_one(
        &self,
        pages: Arc<Pages>,
        source: u64,
        len: u64,
        placement: Placement,
        prot: Access,
    ) -> Result<IovaRange, IoasError> {
        let start_byte = source & (PAGE - 1);
        let data = AreaData::new(pages, source & !(PAGE - 1), start_byte, prot);
        let mut inner = self.inner.lock();
        self.fail.step(Site::IovaAlloc).map_err(IoasError::Injected)?;
        let piece = Piece {
            length: len,
            source: SourceAddr::new(source),
            payload: data,
        };
        let placed = inner.space.insert(placement, vec![piece])?;
        let Some(&(id, range)) = placed.first() else {
            return Err(IoasError::Iova(IovaSpaceError::ZeroLength));
        };
        if let Err(e) = self.fill_area(&inner, id, range) {
            inner.space.remove_area(id);
            return Err(e);
        }
        Ok(range)
    }

    /// `IOMMU_IOAS_UNMAP`: removes every area inside `range` (an area the range cuts: `ENOENT`,
    /// nothing removed). Accesses pinning any of those areas are told to let go first; one that
    /// does not makes the unmap fail with `EDEADLK`, nothing removed. Returns the bytes unmapped.
    pub fn unmap(&self, range: IovaRange) -> Result<u64, IoasError> {
        self.unmap_scope(UnmapScope::Range(range))
    }

    /// `IOMMU_IOAS_UNMAP` of `0..=u64::MAX` (`iopt_unmap_all`): removes everything (an empty IOAS
    /// is fine), `EDEADLK` (nothing removed) if an access keeps an area pinned after being told to
    /// let go.
    pub fn try_unmap_all(&self) -> Result<u64, IoasError> {
        self.unmap_scope(UnmapScope::All)
    }

    /// [`try_unmap_all`](Self::try_unmap_all) for callers that cannot fail: an area an access
    /// still pins after its notification stays mapped and is not counted; every other area goes.
    pub fn unmap_all(&self) -> u64 {
        let mut inner = match self.notify_until_released(UnmapScope::All) {
            Ok(inner) => inner,
            // The stuck areas' marks are cleared; they stay, the rest goes.
            Err((inner, _stuck)) => inner,
        };
        let free: Vec<AreaId> = inner
            .space
            .areas()
            .filter(|(_, _, d)| d.accesses == 0)
            .map(|(id, _, _)| id)
            .collect();
        let removed: Vec<(IovaRange, AreaData)> = free
            .into_iter()
            .filter_map(|id| inner.space.remove_area(id))
            .collect();
        inner.retire(removed.into_iter())
    }

    fn unmap_scope(&self, scope: UnmapScope) -> Result<u64, IoasError> {
        let mut inner = self.notify_until_released(scope).map_err(|(_, e)| e)?;
        let removed = match scope {
            UnmapScope::Range(range) => inner.space.remove_range(range)?,
            UnmapScope::All => inner.space.remove_all(),
        };
        Ok(inner.retire(removed.into_iter().map(|(_, r, d)| (r, d))))
    }

    /// Linux `iopt_unmap_iova_range`'s loop: while an area of `scope` has access pins, mark it
    /// (`prevent_access`), drop the lock, notify every access of the IOAS
    /// (`iommufd_access_notify_unmap`), and look again. Answers the lock once no area of `scope`
    /// is pinned by an access; an area still pinned after its notification is `EDEADLK` (the
    /// marks are cleared again, the lock handed back with the error). A range that cuts an area
    /// or holds none is refused before anyone is notified.
    fn notify_until_released(
        &self,
        scope: UnmapScope,
    ) -> Result<parking_lot::MutexGuard<'_, Inner>, (parking_lot::MutexGuard<'_, Inner>, IoasError)> {
        let range = match scope {
            UnmapScope::Range(range) => range,
            UnmapScope::All => IovaRange::full(),
        };
        let mut notified: HashSet<AreaId> = HashSet::new();
        loop {
            let mut inner = self.inner.lock();
            let checked = match scope {
                UnmapScope::Range(range) => check_unmap_range(&inner.space, range),
                UnmapScope::All => Ok(()),
            };
            if let Err(e) = checked {
                clear_prevent_access(&mut inner, &notified);
                return Err((inner, e.into()));
            }
            let busy: Vec<(AreaId, IovaRange)> = inner
                .space
                .areas_in(range)
                .filter(|(_, _, d)| d.accesses > 0)
                .map(|(id, r, _)| (id, r))
                .collect();
            if busy.is_empty() {
                return Ok(inner);
            }
            if let Some(&(_, stuck)) = busy.iter().find(|(id, _)| notified.contains(id)) {
                clear_prevent_access(&mut inner, &notified);
                return Err((inner, IoasError::AccessStillPinned { range: stuck }));
            }
            for &(id, _) in &busy {
                if let Some((_, data)) = inner.space.area_mut(id) {
                    data.prevent_access = true;
                }
                notified.insert(id);
            }
            let notifiers: Vec<Arc<dyn AccessNotify>> =
                inner.accesses.values().map(|a| Arc::clone(&a.notify)).collect();
            drop(inner);
            for &(_, area) in &busy {
                for notify in &notifiers {
                    notify.unmap(area);
                }
            }
        }
    }

    /// Pins area `id` and maps it into every domain, undoing everything on failure.
    fn fill_area(&self, inner: &Inner, id: AreaId, range: IovaRange) -> Result<(), IoasError> {
        if inner.domains.is_empty() {
            return Ok(());
        }
        let Some((_, data)) = inner.space.area(id) else {
            return Ok(());
        };
        let (first, last) = data.page_span(range.len_minus_one() + 1);
        self.fail.step(Site::Pin).map_err(IoasError::Injected)?;
        let hpa = data.pages.pin(first, last)?;
        for (done, domain) in inner.domains.iter().enumerate() {
            let mapped = self
                .fail
                .step(Site::FrameAlloc)
                .map_err(IoasError::Injected)
                .and_then(|()| map_into(domain, range, hpa, data.prot, inner.large_pages_disabled));
            if let Err(e) = mapped {
                for undo in &inner.domains[..done] {
                    let _ = undo.unmap(range);
                    let _ = undo.invalidate(Invalidation::Range(range));
                }
                let _ = data.pages.unpin(first, last);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Number of areas.
    pub fn area_count(&self) -> usize {
        self.inner.lock().space.area_count()
    }

    /// Number of attached domains.
    pub fn domain_count(&self) -> usize {
        self.inner.lock().domains.len()
    }

    /// The areas, in IOVA order, with the `Pages` behind each (for inspection and tests).
    pub fn areas(&self) -> Vec<(IovaRange, Arc<Pages>)> {
        let inner = self.inner.lock();
        inner
            .space
            .areas()
            .map(|(_, r, d)| (r, Arc::clone(&d.pages)))
            .collect()
    }

    /// `IOMMU_IOAS_IOVA_RANGES`: the usable IOVA ranges and the IOVA alignment.
    pub fn iova_ranges(&self) -> (Vec<IovaRange>, Alignment) {
        let inner = self.inner.lock();
        (inner.space.usable_ranges(), inner.space.iova_alignment())
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS`: replaces the allowed list.
    pub fn set_allowed(&self, ranges: &[IovaRange]) -> Result<(), IoasError> {
        Ok(self.inner.lock().space.set_allowed(ranges)?)
    }
}

impl Drop for IoPageTable {
    /// Linux destroys an IOAS only after `iopt_unmap_all` and WARNs in `iopt_destroy_table` about
    /// anything left; the object layer does the same here. Should an IOAS go with areas left
    /// anyway, they are retired in the unmap guarantee's order (out of every domain, invalidated,
    /// then unpinned), and then the access pins are dropped, so no `Pages` goes away pinned.
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        let areas = inner.space.remove_all();
        inner.retire(areas.into_iter().map(|(_, r, d)| (r, d)));
        for entry in inner.accesses.values_mut() {
            entry.release_all();
        }
    }
}

/// The checks of [`IovaSpace::remove_range`], without removing: an area `range` cuts → `ENOENT`,
/// no area in `range` → `ENOENT`.
fn check_unmap_range(space: &IovaSpace<AreaData>, range: IovaRange) -> Result<(), IovaSpaceError> {
    let mut any = false;
    for (_, area, _) in space.areas_in(range) {
        if !range.contains_range(&area) {
            return Err(IovaSpaceError::SplitsArea { range, area });
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(IovaSpaceError::NotMapped { range })
    }
}

fn clear_prevent_access(inner: &mut Inner, areas: &HashSet<AreaId>) {
    for &id in areas {
        if let Some((_, data)) = inner.space.area_mut(id) {
            data.prevent_access = false;
        }
    }
}

/// Maps `range` at `hpa` into `domain`; with large pages disabled, one 4 KiB page at a time, as
/// Linux's `batch_iommu_map_small()` does, so that no super-page leaf can stop a later cut.
/// On failure the part already mapped is unmapped again.
pub(crate) fn map_into(
    domain: &uvfio_iommu::Domain,
    range: IovaRange,
    hpa: uvfio_types::Hpa,
    prot: Access,
    small: bool,
) -> Result<(), IoasError> {
    let len = range.len_minus_one() + 1;
    if !small {
        return Ok(domain.map(range.start(), hpa, len, prot)?);
    }
    let mut done = 0;
    while done < len {
        let step = (|| Some((range.start().checked_add(done)?, hpa.checked_add(done)?)))();
        let mapped = match step {
            Some((iova, at)) => domain
                .map(iova, at, PAGE.min(len - done), prot)
                .map_err(IoasError::from),
            None => Err(IoasError::Iova(IovaSpaceError::ZeroLength)),
        };
        if let Err(e) = mapped {
            if done > 0
                && let Ok(part) = IovaRange::from_start_len(range.start(), done)
            {
                let _ = domain.unmap(part);
                let _ = domain.invalidate(uvfio_iommu::Invalidation::Range(part));
            }
            return Err(e);
        }
        done += PAGE;
    }
    Ok(())
}
