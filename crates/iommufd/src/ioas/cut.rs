//! Cutting areas in two and the IOAS's large-page switch (Linux `iopt_cut_iova`,
//! `iopt_area_split`, `iopt_disable_large_pages`, `iopt_enable_large_pages` in io_pagetable.c).
//!
//! VFIO type1 (v1) lets an unmap take part of a mapping; the compat layer does it by cutting the
//! areas at the range's ends and then unmapping the whole areas inside. A cut changes only the
//! bookkeeping: both halves keep the same `Pages` (pins are per page, so nothing moves), nothing
//! is unmapped from any domain and nothing is invalidated. Linux allows it only when the domains
//! cannot hold a large page across the cut, which is what "large pages disabled" guarantees
//! (`IOMMU_OPTION_HUGE_PAGES` = 0, or `VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)`): the IOVA alignment is
//! then `PAGE_SIZE` and domains must map 4 KiB pages only.
//!
//! uvfio's domains pick their page sizes from their own configuration, so a domain made with
//! super-pages allowed could still hold one across a cut point; such a cut is refused (`EINVAL`,
//! as Linux refuses a cut in a domain that may use large pages) rather than leaving a later
//! unmap to split a super-page.

use super::{AreaData, Inner, IoPageTable, IoasError};
use crate::iova_space::{IovaSpaceError, Misalignment};
use rustix::io::Errno;
use uvfio_types::{Iova, IovaRange, PageSize};

/// Why a cut or a large-page switch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CutError {
    /// The area is being unmapped while its accesses are notified (`area->prevent_access` →
    /// `EBUSY`).
    #[error("the area {area} is being unmapped")]
    Busy {
        /// The area.
        area: IovaRange,
    },
    /// Accesses pin pages of the area ("Splitting is not permitted if an access exists, we don't
    /// track enough information to split existing accesses": `EINVAL`).
    #[error("accesses pin pages of the area {area}")]
    AccessPinned {
        /// The area.
        area: IovaRange,
    },
    /// Domains map the area and large pages are enabled ("Splitting is not permitted if a domain
    /// could have been mapped with huge pages": `EINVAL`).
    #[error("the area {area} is mapped in domains that may use large pages")]
    LargePages {
        /// The area.
        area: IovaRange,
    },
    /// A domain holds a super-page across the cut (a domain made with super-pages allowed
    /// although large pages are disabled): refused with Linux's errno for the case above.
    #[error("a domain maps a {size:?} page across the cut after {iova}")]
    SuperPage {
        /// The cut point (last byte of the left half).
        iova: Iova,
        /// The leaf's size.
        size: PageSize,
    },
    /// `iopt_disable_large_pages`: "Won't do it if domains already have pages mapped in them"
    /// (`EINVAL`).
    #[error("domains already map pages of this IOAS")]
    DomainsMapped,
}

impl CutError {
    /// The errno Linux returns.
    pub fn errno(&self) -> Errno {
        match self {
            CutError::Busy { .. } => Errno::BUSY,
            CutError::AccessPinned { .. }
            | CutError::LargePages { .. }
            | CutError::SuperPage { .. }
            | CutError::DomainsMapped => Errno::INVAL,
        }
    }
}

impl IoPageTable {
    /// `iopt_cut_iova`: for each IOVA in `iovas`, split the area holding it so that the IOVA
    /// becomes the last byte of the left part. An IOVA in no area, or at the first or last byte
    /// of its area (also one made so by an earlier cut of the list), is skipped.
    ///
    /// Refusals, in `iopt_area_split`'s order: `EBUSY` while an unmap waits for the area's
    /// accesses; `EINVAL` when the right part's first IOVA or its byte offset in the pages is not
    /// a multiple of the IOVA alignment; `EINVAL` when accesses pin pages of the area; `EINVAL`
    /// when domains map the area and large pages are enabled. Linux stops at the first refusal
    /// and keeps the cuts it made before; uvfio checks every cut first and makes none on a
    /// refusal (the errno is the same).
    pub fn cut_iova(&self, iovas: &[Iova]) -> Result<(), IoasError> {
        let mut inner = self.inner.lock();
        let mut planned: Vec<Iova> = Vec::with_capacity(iovas.len());
        for &iova in iovas {
            let Some((_, area, data)) = inner.space.area_at(iova) else {
                continue;
            };
            if iova == area.start() || iova == area.last() {
                continue;
            }
            // An earlier cut at `iova` made it a last byte, one at `iova - 1` a first byte.
            if planned
                .iter()
                .any(|&p| p == iova || p.checked_add(1) == Some(iova))
            {
                continue;
            }
            check_split(&inner, area, data, iova)?;
            planned.push(iova);
        }
        for iova in planned {
            inner.space.cut(iova, split_payload)?;
        }
        Ok(())
    }

    /// `iopt_disable_large_pages`: from now on domains must map `PAGE_SIZE` pages only and the
    /// IOVA alignment is at least `PAGE_SIZE` even without a domain. `EINVAL` if domains and areas
    /// exist together; `EADDRINUSE` if an area does not meet the new alignment. Nothing changes
    /// on a refusal; disabling twice is fine.
    pub fn disable_large_pages(&self) -> Result<(), IoasError> {
        let mut inner = self.inner.lock();
        if inner.large_pages_disabled {
            return Ok(());
        }
        if !inner.domains.is_empty() && inner.space.area_count() > 0 {
            return Err(CutError::DomainsMapped.into());
        }
        inner.large_pages_disabled = true;
        if let Err(e) = inner.recalc_alignment() {
            inner.large_pages_disabled = false;
            return Err(e.into());
        }
        Ok(())
    }

    /// `iopt_enable_large_pages`: lets domains use large pages again and the IOVA alignment fall
    /// back to what the domains and accesses need. Cannot fail.
    pub fn enable_large_pages(&self) {
        let mut inner = self.inner.lock();
        inner.large_pages_disabled = false;
        // A lowering: it cannot fail.
        let _ = inner.recalc_alignment();
    }

    /// Whether large pages are disabled (`iopt->disable_large_pages`). A domain made for this IOAS
    /// while it is set must map 4 KiB pages only (`DomainConfig::page_sizes` = `SZ_4K`), or cuts
    /// inside its super-pages are refused.
    pub fn large_pages_disabled(&self) -> bool {
        self.inner.lock().large_pages_disabled
    }
}

/// `iopt_area_split`'s refusals for cutting `area` (with payload `data`) after `iova`, which lies
/// strictly inside it.
fn check_split(inner: &Inner, area: IovaRange, data: &AreaData, iova: Iova) -> Result<(), IoasError> {
    // if (!pages || area->prevent_access) return -EBUSY;
    if data.prevent_access {
        return Err(CutError::Busy { area }.into());
    }
    let Some(new_start) = iova.checked_add(1) else {
        return Ok(());
    };
    let left_len = new_start.offset_from(area.start()).unwrap_or(0);
    // if (new_start & (alignment - 1) ||
    //     iopt_area_start_byte(area, new_start) & (alignment - 1)) return -EINVAL;
    let alignment = inner.space.iova_alignment();
    for (what, value) in [
        (Misalignment::CutPoint, new_start.raw()),
        (Misalignment::PageOffset, data.start_byte + left_len),
    ] {
        if value & alignment.mask() != 0 {
            return Err(IovaSpaceError::Misaligned {
                what,
                value,
                alignment: alignment.bytes(),
            }
            .into());
        }
    }
    // if (area->num_accesses) { rc = -EINVAL; goto err_unlock; }
    if data.accesses > 0 {
        return Err(CutError::AccessPinned { area }.into());
    }
    // if (area->storage_domain && !iopt->disable_large_pages) { rc = -EINVAL; ... }
    if !inner.domains.is_empty() && !inner.large_pages_disabled {
        return Err(CutError::LargePages { area }.into());
    }
    // uvfio's own: no domain may hold a leaf across the cut.
    for domain in &inner.domains {
        if let Some(leaf) = domain.lookup(iova)
            && leaf.size != PageSize::Size4K
            && leaf.hpa(new_start).is_some()
        {
            return Err(CutError::SuperPage {
                iova,
                size: leaf.size,
            }
            .into());
        }
    }
    Ok(())
}

/// The payloads of the two halves: the same pages, the right one starting `left_len` bytes later.
/// Neither half has access pins (a cut with accesses is refused) nor is being unmapped.
fn split_payload(data: AreaData, left_len: u64) -> (AreaData, AreaData) {
    let right = AreaData {
        start_byte: data.start_byte + left_len,
        ..data.clone()
    };
    (data, right)
}
