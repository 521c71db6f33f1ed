//! `IOMMU_IOAS_COPY` (Linux `iommufd_ioas_copy`): `iopt_get_pages` takes a reference on the
//! `Pages` behind every source area the range spans, then `iopt_map_pages` maps them back to back
//! into the destination, one area per piece. The destination's areas share the source's `Pages`,
//! so pages the source's domains already pin are not charged again.

use super::{AreaData, IoPageTable, IoasError, PAGE};
use crate::fail::Site;
use crate::iova_space::{IovaSpaceError, Misalignment, Piece, Placement, SourceAddr};
use crate::pages::Pages;
use std::sync::Arc;
use uvfio_types::{Access, Iova, IovaRange};

/// One piece of a copy: a slice of one source area's pages (Linux `struct iopt_pages_list`).
#[derive(Debug)]
struct CopyPiece {
    pages: Arc<Pages>,
    /// The source address of `pages`' first page.
    source_base: u64,
    /// Offset of the first byte from the first byte of `pages`' first page.
    start_byte: u64,
    length: u64,
    /// Where the piece starts in the source IOAS.
    src_iova: Iova,
}

impl CopyPiece {
    /// `pages->uptr + start_byte` (or `pages->start + start_byte` for a file): what the
    /// destination's page offset and IOVA alignment follow.
    fn source(&self) -> SourceAddr {
        // `Pages::new` refused buffers that wrap, so this cannot overflow.
        SourceAddr::new(self.source_base.wrapping_add(self.start_byte))
    }
}

impl IoPageTable {
    /// `IOMMU_IOAS_COPY`: maps the pages behind `src_range` of `src` (which may be `self`) into
    /// this IOAS at `placement` with `prot`, one area per source area the range spans; returns
    /// where the copy went. All or nothing.
    ///
    /// Refused, in Linux's order: `prot` without read or write (`EINVAL`); a source range that
    /// areas do not cover without a gap (`iopt_get_pages` → `ENOENT`); the destination's checks of
    /// [`IovaSpace::insert`](crate::iova_space::IovaSpace::insert) (`EINVAL`, `EOVERFLOW`, `EEXIST`,
    /// `ENOSPC`); a writable copy of pages mapped read-only (`iopt_insert_area` → `EPERM`); then
    /// pinning and the domains' maps, as for [`map`](Self::map).
    pub fn copy_from(
        &self,
        src: &IoPageTable,
        src_range: IovaRange,
        placement: Placement,
        prot: Access,
    ) -> Result<IovaRange, IoasError> {
        if !prot.intersects(Access::RW) {
            return Err(IoasError::NoAccess);
        }
        // The source's lock is dropped before the destination's is taken, as Linux puts the
        // source IOAS before it gets the destination: a copy inside one IOAS locks it twice in
        // turn, never nested. The `Arc`s keep the pages alive in between.
        let pieces = src.get_pages(src_range)?;
        self.map_pages(&pieces, placement, prot)
    }

    /// Linux `iopt_get_pages`: a reference on the pages of every area slice of `range`.
    fn get_pages(&self, range: IovaRange) -> Result<Vec<CopyPiece>, IoasError> {
        let inner = self.inner.lock();
        let (slices, complete) = inner.contiguous(range);
        let mut pieces = Vec::with_capacity(slices.len());
        for slice in slices {
            // One `struct iopt_pages_list` allocation per piece.
            self.fail.step(Site::Alloc).map_err(IoasError::Injected)?;
            pieces.push(CopyPiece {
                start_byte: slice.start_byte_at(slice.range.start()),
                length: slice.len(),
                src_iova: slice.range.start(),
                source_base: slice.data.source_base,
                pages: slice.data.pages,
            });
        }
        if !complete {
            return Err(IoasError::NotContiguous { range });
        }
        Ok(pieces)
    }

    /// Linux `iopt_map_pages`: one area per piece, back to back, then every domain filled.
    fn map_pages(
        &self,
        pieces: &[CopyPiece],
        placement: Placement,
        prot: Access,
    ) -> Result<IovaRange, IoasError> {
        let want_write = prot.contains(Access::WRITE);
        let read_only = |p: &CopyPiece| want_write && !p.pages.writable();
        let mut inner = self.inner.lock();
        self.fail.step(Site::IovaAlloc).map_err(IoasError::Injected)?;
        let mask = inner.space.iova_alignment().mask();
        let payloads = pieces
            .iter()
            .map(|p| Piece {
                length: p.length,
                source: p.source(),
                payload: AreaData::new(Arc::clone(&p.pages), p.source_base, p.start_byte, prot),
            })
            .collect();
        let placed = match inner.space.insert(placement, payloads) {
            Ok(placed) => placed,
            Err(
                e @ IovaSpaceError::Misaligned {
                    what: Misalignment::PageOffset,
                    ..
                },
            ) => {
                // `iopt_insert_area` takes the pieces in turn, each checked for `EPERM` before its
                // page offset: a read-only piece before the first misaligned one wins.
                let misaligned = pieces.iter().position(|p| (p.start_byte % PAGE) & mask != 0);
                if let Some(ro) = pieces.iter().position(read_only)
                    && misaligned.is_none_or(|m| ro <= m)
                {
                    return Err(IoasError::ReadOnlyPages {
                        iova: pieces[ro].src_iova,
                    });
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(ro) = pieces.iter().position(read_only) {
            for &(id, _) in &placed {
                inner.space.remove_area(id);
            }
            return Err(IoasError::ReadOnlyPages {
                iova: pieces[ro].src_iova,
            });
        }
        // `iopt_fill_domains_pages`: on a failure, the areas filled so far are unfilled.
        for (k, &(id, range)) in placed.iter().enumerate() {
            if let Err(e) = self.fill_area(&inner, id, range) {
                let filled: Vec<(IovaRange, AreaData)> = placed[..k]
                    .iter()
                    .filter_map(|&(id, _)| inner.space.area(id).map(|(r, d)| (r, d.clone())))
                    .collect();
                inner.retire(filled.into_iter());
                for &(id, _) in &placed {
                    inner.space.remove_area(id);
                }
                return Err(e);
            }
        }
        match (placed.first(), placed.last()) {
            (Some(&(_, first)), Some(&(_, last))) => {
                Ok(IovaRange::new(first.start(), last.last()).map_err(|_| IovaSpaceError::ZeroLength)?)
            }
            _ => Err(IovaSpaceError::ZeroLength.into()),
        }
    }
}
