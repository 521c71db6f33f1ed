//! Attaching and detaching domains (Linux `iopt_table_add_domain`, `iopt_table_remove_domain`).

use super::{AreaData, IoPageTable, IoasError};
use crate::fail::Site;
use crate::iova_space::ReserveOwner;
use crate::pages::PagesError;
use std::sync::Arc;
use uvfio_iommu::{Domain, Invalidation};
use uvfio_types::{Alignment, Iova, IovaRange, PageSize};

/// Reservation owner for the part of the IOVA space outside a domain's aperture.
fn aperture_owner(domain: &Domain) -> ReserveOwner {
    ReserveOwner(u64::from(domain.id().0) | 1 << 63)
}

impl IoPageTable {
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
                super::map_into(&domain, range, hpa, data.prot, inner.large_pages_disabled)
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
    /// unpins every area (access pins stay) and lets the IOVA alignment fall back to what the
    /// accesses need (1 without any that pins pages).
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
        }
        // A lowering: it cannot fail.
        let _ = inner.recalc_alignment();
        inner.space.unreserve_owner(aperture_owner(&domain));
        Ok(())
    }
}
