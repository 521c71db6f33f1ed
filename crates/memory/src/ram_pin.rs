//! Pinning pages of RAM: one walk over the folios a page range crosses to check (computing the
//! exact charge), then one to commit, both under the caller's single lock acquisition.
//!
//! A whole 1 GiB or 2 MiB folio inside the range costs one count update; 4 KiB frames cost one
//! pass over a slice of their chunk's count array.

use crate::MemoryError;
use crate::pins::{self, Account, FolioPins};
use crate::ram::{ChunkState, FRAME, FRAMES_PER_CHUNK, Frames, Ram, RegionState};
use uvfio_types::Hpa;

const PAGES_PER_CHUNK: u64 = FRAMES_PER_CHUNK as u64;
const PAGES_PER_REGION: u64 = PAGES_PER_CHUNK * crate::ram::CHUNKS_PER_REGION as u64;

/// The pin counts of one folio (or a split chunk's frames), seen by a walk.
enum Piece<'a> {
    Folio(&'a FolioPins),
    Frames(&'a Frames),
}

enum PieceMut<'a> {
    Folio(&'a mut FolioPins),
    Frames(&'a mut Frames),
}

/// One piece of a walk: the counts, the absolute page number of the piece's page 0, and the
/// piece-local pages `[first, end)` the range covers.
struct Span<P> {
    piece: P,
    base: u64,
    first: usize,
    end: usize,
}

impl Ram {
    fn page_hpa(&self, page: u64) -> Hpa {
        self.hpa(page * FRAME)
    }

    /// Visit the pieces of pages `[first, end)`; fails on the first page that is not allocated.
    fn walk(
        &self,
        first: u64,
        end: u64,
        mut f: impl FnMut(Span<Piece<'_>>) -> Result<(), MemoryError>,
    ) -> Result<(), MemoryError> {
        let mut p = first;
        while p < end {
            let r = (p / PAGES_PER_REGION) as usize;
            let region = self.regions.get(r).ok_or(MemoryError::BadAddress {
                hpa: self.page_hpa(p),
            })?;
            let rbase = r as u64 * PAGES_PER_REGION;
            let rend = end.min(rbase + u64::from(region.nchunks) * PAGES_PER_CHUNK);
            match &region.state {
                RegionState::Folio(fp) => {
                    let (first, end) = ((p - rbase) as usize, (rend - rbase) as usize);
                    f(Span {
                        piece: Piece::Folio(fp),
                        base: rbase,
                        first,
                        end,
                    })?;
                    p = rend;
                }
                RegionState::Split { .. } => {
                    while p < rend {
                        let c = (p / PAGES_PER_CHUNK) as usize;
                        let cbase = c as u64 * PAGES_PER_CHUNK;
                        let cend = rend.min(cbase + PAGES_PER_CHUNK);
                        let piece = match &self.chunks[c] {
                            ChunkState::Folio(fp) => Piece::Folio(fp),
                            ChunkState::Split(fr) => Piece::Frames(fr),
                            ChunkState::Free | ChunkState::Reserved => {
                                return Err(MemoryError::NotAllocated {
                                    hpa: self.page_hpa(p),
                                });
                            }
                        };
                        f(Span {
                            piece,
                            base: cbase,
                            first: (p - cbase) as usize,
                            end: (cend - cbase) as usize,
                        })?;
                        p = cend;
                    }
                }
                RegionState::Free | RegionState::Reserved => {
                    return Err(MemoryError::NotAllocated {
                        hpa: self.page_hpa(p),
                    });
                }
            }
        }
        Ok(())
    }

    /// Visit the pieces of pages `[first, end)` for a commit (the range was walked by
    /// [`Ram::walk`] under the same lock, so every page is allocated).
    fn walk_mut(&mut self, first: u64, end: u64, mut f: impl FnMut(Span<PieceMut<'_>>)) {
        let mut p = first;
        while p < end {
            let r = (p / PAGES_PER_REGION) as usize;
            let Some(region) = self.regions.get_mut(r) else {
                return;
            };
            let rbase = r as u64 * PAGES_PER_REGION;
            let rend = end.min(rbase + u64::from(region.nchunks) * PAGES_PER_CHUNK);
            match &mut region.state {
                RegionState::Folio(fp) => {
                    let (first, end) = ((p - rbase) as usize, (rend - rbase) as usize);
                    f(Span {
                        piece: PieceMut::Folio(fp),
                        base: rbase,
                        first,
                        end,
                    });
                }
                RegionState::Split { .. } => {
                    while p < rend {
                        let c = (p / PAGES_PER_CHUNK) as usize;
                        let cbase = c as u64 * PAGES_PER_CHUNK;
                        let cend = rend.min(cbase + PAGES_PER_CHUNK);
                        let (first, end) = ((p - cbase) as usize, (cend - cbase) as usize);
                        match &mut self.chunks[c] {
                            ChunkState::Folio(fp) => f(Span {
                                piece: PieceMut::Folio(fp),
                                base: cbase,
                                first,
                                end,
                            }),
                            ChunkState::Split(fr) => f(Span {
                                piece: PieceMut::Frames(fr),
                                base: cbase,
                                first,
                                end,
                            }),
                            ChunkState::Free | ChunkState::Reserved => {}
                        }
                        p = cend;
                    }
                }
                RegionState::Free | RegionState::Reserved => {}
            }
            p = rend;
        }
    }

    /// Pin pages `[first, end)` of RAM, all or nothing, charging newly pinned pages to `account`.
    pub(crate) fn pin(&mut self, first: u64, end: u64, account: &mut Account) -> Result<(), MemoryError> {
        // An unallocated page anywhere in the range is reported before a saturated count.
        let mut charge = 0u64;
        let mut overflow = None;
        self.walk(first, end, |s| {
            let checked = match s.piece {
                Piece::Folio(fp) => fp.pin_check(s.first, s.end),
                Piece::Frames(fr) => {
                    if let Some(i) = fr.first_free_in(s.first, s.end) {
                        return Err(MemoryError::NotAllocated {
                            hpa: self.page_hpa(s.base + i as u64),
                        });
                    }
                    pins::slice_pin_check(&fr.pins[s.first..s.end]).map_err(|i| s.first + i)
                }
            };
            match checked {
                Ok(fresh) => charge += fresh,
                Err(i) => {
                    overflow.get_or_insert(MemoryError::PinOverflow {
                        hpa: self.page_hpa(s.base + i as u64),
                    });
                }
            }
            Ok(())
        })?;
        if let Some(e) = overflow {
            return Err(e);
        }
        account.check(charge)?;
        let mut charged = 0u64;
        self.walk_mut(first, end, |s| match s.piece {
            PieceMut::Folio(fp) => charged += fp.pin(s.first, s.end),
            PieceMut::Frames(fr) => {
                let counts = &mut fr.pins[s.first..s.end];
                charged += pins::slice_pin_check(counts).unwrap_or(0);
                pins::slice_pin(counts);
            }
        });
        debug_assert_eq!(charge, charged);
        account.charge(charged);
        Ok(())
    }

    /// Unpin pages `[first, end)` of RAM, all or nothing, uncharging pages that reach 0.
    pub(crate) fn unpin(&mut self, first: u64, end: u64, account: &mut Account) -> Result<(), MemoryError> {
        // An unallocated page anywhere in the range is reported before an unpinned one.
        let mut not_pinned = None;
        self.walk(first, end, |s| {
            let checked = match s.piece {
                Piece::Folio(fp) => fp.unpin_check(s.first, s.end),
                Piece::Frames(fr) => {
                    if let Some(i) = fr.first_free_in(s.first, s.end) {
                        return Err(MemoryError::NotAllocated {
                            hpa: self.page_hpa(s.base + i as u64),
                        });
                    }
                    pins::slice_unpin_check(&fr.pins[s.first..s.end]).map_err(|i| s.first + i)
                }
            };
            if let Err(i) = checked {
                not_pinned.get_or_insert(MemoryError::NotPinned {
                    hpa: self.page_hpa(s.base + i as u64),
                });
            }
            Ok(())
        })?;
        if let Some(e) = not_pinned {
            return Err(e);
        }
        let mut released = 0u64;
        self.walk_mut(first, end, |s| match s.piece {
            PieceMut::Folio(fp) => released += fp.unpin(s.first, s.end),
            PieceMut::Frames(fr) => released += pins::slice_unpin(&mut fr.pins[s.first..s.end]),
        });
        account.uncharge(released);
        Ok(())
    }

    /// The pin count of page `page` of RAM.
    pub(crate) fn pin_count(&self, page: u64) -> Result<u32, MemoryError> {
        let mut count = 0;
        self.walk(page, page + 1, |s| {
            count = match s.piece {
                Piece::Folio(fp) => fp.count(s.first),
                Piece::Frames(fr) => {
                    if fr.is_free(s.first) {
                        return Err(MemoryError::NotAllocated {
                            hpa: self.page_hpa(page),
                        });
                    }
                    fr.pins[s.first]
                }
            };
            Ok(())
        })?;
        Ok(count)
    }
}
