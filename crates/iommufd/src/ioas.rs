//! The IOAS's page table (Linux `struct io_pagetable`): the IOVA space of an IOAS, the `Pages`
//! behind each area, and the domains that carry its mappings.
//!
//! Every domain attached to an IOAS maps every area of it (seed 004's domain sharing: one address
//! space, many devices and domains). While at least one domain is attached, each area holds one
//! pin on its pages; attaching the first domain pins everything, detaching the last unpins. An
//! unmap removes the areas, unmaps them from every domain, invalidates each domain's IOTLB (so no
//! DMA can reach the pages any more), and only then unpins — the order the unmap guarantee needs.
//! Every operation is all or nothing: a failure at any step (including an injected one) undoes
//! the steps before it.

use crate::fail::{FailPoints, Site};
use crate::iova_space::{AreaId, IovaSpace, IovaSpaceError, Piece, Placement, ReserveOwner, SourceAddr};
use crate::pages::{Account, Pages, PagesError};
use parking_lot::Mutex;
use std::sync::Arc;
use uvfio_iommu::{Domain, Invalidation, IommuError};
use uvfio_memory::{HostMemory, UserBuffer};
use uvfio_types::{Access, Alignment, Iova, IovaRange, PageSize};

const PAGE: u64 = PageSize::Size4K.bytes();

/// Errors of IOAS operations.
#[derive(Debug, thiserror::Error)]
pub enum IoasError {
    /// The IOVA bookkeeping refused.
    #[error("IOVA space")]
    Iova(#[from] IovaSpaceError),
    /// Pinning or accounting failed.
    #[error("pinning")]
    Pages(#[from] PagesError),
    /// A domain refused a map or an unmap.
    #[error("domain")]
    Domain(#[from] IommuError),
    /// A fault-injection point failed this step.
    #[error("injected failure at {0:?}")]
    Injected(Site),
    /// The mapping asks for neither read nor write.
    #[error("a mapping must allow reads or writes")]
    NoAccess,
    /// The domain is attached already.
    #[error("domain already attached")]
    AlreadyAttached,
    /// The domain is not attached.
    #[error("domain not attached")]
    NotAttached,
}

impl IoasError {
    /// The errno Linux returns.
    pub fn errno(&self) -> rustix::io::Errno {
        use rustix::io::Errno;
        match self {
            IoasError::Iova(e) => e.errno(),
            IoasError::Pages(e) => e.errno(),
            IoasError::Domain(e) => e.errno(),
            IoasError::Injected(_) => Errno::NOMEM,
            IoasError::NoAccess | IoasError::NotAttached => Errno::INVAL,
            IoasError::AlreadyAttached => Errno::EXIST,
        }
    }
}

/// What an area maps: a slice of a `Pages`.
#[derive(Debug, Clone)]
pub struct AreaData {
    /// The pages (shared with copies of the area).
    pub pages: Arc<Pages>,
    /// Offset of the area's first byte from the first byte of `pages`' first page.
    pub start_byte: u64,
    /// What devices may do.
    pub prot: Access,
}

impl AreaData {
    /// The pages `first..=last` of `pages` that an area of `len` bytes covers.
    fn page_span(&self, len: u64) -> (u64, u64) {
        let first = self.start_byte / PAGE;
        let last = (self.start_byte + len - 1) / PAGE;
        (first, last)
    }
}

#[derive(Debug, Default)]
struct Inner {
    space: IovaSpace<AreaData>,
    domains: Vec<Arc<Domain>>,
}

/// One IOAS's mappings and the domains that carry them.
#[derive(Debug)]
pub struct IoPageTable {
    mem: Arc<HostMemory>,
    account: Arc<Account>,
    fail: Arc<FailPoints>,
    inner: Mutex<Inner>,
}

/// Reservation owner for the part of the IOVA space outside a domain's aperture.
fn aperture_owner(domain: &Domain) -> ReserveOwner {
    ReserveOwner(u64::from(domain.id().0) | 1 << 63)
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
        let start_byte = buf.va().page_offset(PageSize::Size4K);
        let data = AreaData {
            pages,
            start_byte,
            prot,
        };
        let mut inner = self.inner.lock();
        self.fail.step(Site::IovaAlloc).map_err(IoasError::Injected)?;
        let piece = Piece {
            length: buf.len(),
            source: SourceAddr::from_host_va(buf.va()),
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
    /// nothing removed). Returns the bytes unmapped.
    pub fn unmap(&self, range: IovaRange) -> Result<u64, IoasError> {
        let mut inner = self.inner.lock();
        let removed = inner.space.remove_range(range)?;
        Ok(self.retire(&inner, removed.into_iter().map(|(_, r, d)| (r, d))))
    }

    /// `IOMMU_IOAS_UNMAP` of `0..=u64::MAX`: removes everything (an empty IOAS is fine).
    pub fn unmap_all(&self) -> u64 {
        let mut inner = self.inner.lock();
        let removed = inner.space.remove_all();
        self.retire(&inner, removed.into_iter().map(|(_, r, d)| (r, d)))
    }

    /// Unmaps `areas` from every domain, invalidates, and unpins: after this no DMA reaches them.
    fn retire(&self, inner: &Inner, areas: impl Iterator<Item = (IovaRange, AreaData)>) -> u64 {
        let mut bytes = 0;
        for (range, data) in areas {
            for domain in &inner.domains {
                // Areas were mapped whole into every domain; unmapping cannot fail for a range
                // below the domain's width, and invalidation of a paging domain cannot either.
                let _ = domain.unmap(range);
                let _ = domain.invalidate(Invalidation::Range(range));
            }
            if !inner.domains.is_empty() {
                let (first, last) = data.page_span(range.len_minus_one() + 1);
                let _ = data.pages.unpin(first, last);
            }
            bytes += range.len_minus_one() + 1;
        }
        bytes
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
                .and_then(|()| Ok(domain.map(range.start(), hpa, range.len_minus_one() + 1, data.prot)?));
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

    /// Attaches `domain`: it gets every area (pinned first if it is the first domain). Linux
    /// `iopt_table_add_domain`: the IOVA alignment becomes the page size (`EADDRINUSE` if an area
    /// is not aligned to it) and the space beyond the domain's address width is reserved.
    pub fn attach_domain(&self, domain: Arc<Domain>) -> Result<(), IoasError> {
        let mut inner = self.inner.lock();
        if inner.domains.iter().any(|d| Arc::ptr_eq(d, &domain)) {
            return Err(IoasError::AlreadyAttached);
        }
        let page = Alignment::from(PageSize::Size4K);
        let old_alignment = inner.space.iova_alignment();
        inner.space.set_iova_alignment(page.max(old_alignment))?;
        let owner = aperture_owner(&domain);
        let width = domain.address_width();
        if let Some(beyond) = 1u64
            .checked_shl(width)
            .and_then(|top| IovaRange::new(Iova::new(top), Iova::MAX).ok())
            && let Err(e) = inner.space.reserve(beyond, owner)
        {
            let _ = inner.space.set_iova_alignment(old_alignment);
            return Err(e.into());
        }
        let first_domain = inner.domains.is_empty();
        let areas: Vec<(IovaRange, AreaData)> = inner.space.areas().map(|(_, r, d)| (r, d.clone())).collect();
        let mut done = Vec::new();
        let mut failed = None;
        for (range, data) in areas {
            let (first, last) = data.page_span(range.len_minus_one() + 1);
            // The first domain makes each area take its pin; later ones find the pages pinned.
            let mut pinned_now = false;
            let hpa = if first_domain {
                self.fail
                    .step(Site::Pin)
                    .map_err(IoasError::Injected)
                    .and_then(|()| {
                        let hpa = data.pages.pin(first, last)?;
                        pinned_now = true;
                        Ok(hpa)
                    })
            } else {
                data.pages
                    .pinned_hpa(first)
                    .ok_or(IoasError::Pages(PagesError::OutOfRange {
                        first,
                        last,
                        npages: data.pages.npages(),
                    }))
            };
            let mapped = hpa.and_then(|hpa| {
                self.fail.step(Site::FrameAlloc).map_err(IoasError::Injected)?;
                Ok(domain.map(range.start(), hpa, range.len_minus_one() + 1, data.prot)?)
            });
            match mapped {
                Ok(()) => done.push((range, data)),
                Err(e) => {
                    if pinned_now {
                        let _ = data.pages.unpin(first, last);
                    }
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            for (range, _) in &done {
                let _ = domain.unmap(*range);
            }
            let _ = domain.invalidate(Invalidation::Domain);
            if first_domain {
                for (range, data) in &done {
                    let (first, last) = data.page_span(range.len_minus_one() + 1);
                    let _ = data.pages.unpin(first, last);
                }
            }
            inner.space.unreserve_owner(owner);
            let _ = inner.space.set_iova_alignment(old_alignment);
            return Err(e);
        }
        inner.domains.push(domain);
        Ok(())
    }

    /// Detaches `domain`: its mappings go (and its IOTLB is flushed); the last domain's detach
    /// unpins every area and lets the IOVA alignment fall back to 1.
    pub fn detach_domain(&self, domain: &Arc<Domain>) -> Result<(), IoasError> {
        let mut inner = self.inner.lock();
        let pos = inner
            .domains
            .iter()
            .position(|d| Arc::ptr_eq(d, domain))
            .ok_or(IoasError::NotAttached)?;
        let domain = inner.domains.swap_remove(pos);
        let last_domain = inner.domains.is_empty();
        for (_, range, _) in inner.space.areas() {
            let _ = domain.unmap(range);
        }
        let _ = domain.invalidate(Invalidation::Domain);
        // Only now, with no domain left that could reach them, may the pages go.
        if last_domain {
            for (_, range, data) in inner.space.areas() {
                let (first, last) = data.page_span(range.len_minus_one() + 1);
                let _ = data.pages.unpin(first, last);
            }
            if let Ok(any) = Alignment::new(1) {
                let _ = inner.space.set_iova_alignment(any);
            }
        }
        inner.space.unreserve_owner(aperture_owner(&domain));
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
