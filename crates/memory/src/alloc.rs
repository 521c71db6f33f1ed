//! Allocating and freeing folios of RAM.
//!
//! 4 KiB frames are handed out under the state lock (zeroing one is cheap). A 2 MiB or 1 GiB folio
//! is reserved under the lock, populated without it, then committed; freeing one marks it reserved,
//! zeroes it without the lock, then returns it to the free set.

use crate::backing::RamBacking;
use crate::ram::{CHUNK, FRAME, FolioAt, REGION, Ram};
use crate::{HostMemory, MemoryError};
use uvfio_types::{Hpa, HpaRange, PageSize};

/// The allocator operations of one tier of big folios.
struct BigTier {
    unit: u64,
    reserve: fn(&mut Ram, &RamBacking, usize) -> Result<usize, MemoryError>,
    resident: fn(&Ram, usize, usize) -> bool,
    commit: fn(&mut Ram, usize, usize),
    release: fn(&mut Ram, usize, usize),
}

/// 2 MiB chunks.
const CHUNKS: BigTier = BigTier {
    unit: CHUNK,
    reserve: Ram::reserve_chunks,
    resident: Ram::chunks_resident,
    commit: Ram::commit_chunks,
    release: Ram::release_chunks,
};

/// 1 GiB regions.
const REGIONS: BigTier = BigTier {
    unit: REGION,
    reserve: Ram::reserve_regions,
    resident: Ram::regions_resident,
    commit: Ram::commit_regions,
    release: Ram::release_regions,
};

impl HostMemory {
    /// The RAM offset of `hpa`, which must lie in RAM.
    pub(crate) fn ram_offset(&self, hpa: Hpa) -> Result<u64, MemoryError> {
        self.window
            .offset_of(hpa, 0)
            .ok_or(MemoryError::BadAddress { hpa })
    }

    /// The RAM offset of `range`, which must be 4 KiB aligned at both ends and lie wholly in RAM;
    /// `Ok(None)` if it starts outside RAM.
    pub(crate) fn ram_span(&self, range: HpaRange) -> Result<Option<(u64, u64)>, MemoryError> {
        check_page_aligned(range)?;
        let Some(off) = self.window.offset_of(range.start(), 0) else {
            return Ok(None);
        };
        let len = range.len_minus_one() / FRAME + 1;
        let end_off = off / FRAME + len;
        if end_off > self.window.len / FRAME {
            return Err(MemoryError::BadAddress {
                hpa: Hpa::new(self.window.base.raw() + self.window.len),
            });
        }
        Ok(Some((off / FRAME, end_off)))
    }

    fn ram_range(&self, off: u64, len: u64) -> Result<HpaRange, MemoryError> {
        HpaRange::from_start_len(Hpa::new(self.window.base.raw() + off), len)
            .map_err(|_| MemoryError::InvalidLength { len })
    }

    /// One folio of `folio` size, zeroed and resident.
    pub fn alloc(&self, folio: PageSize) -> Result<Hpa, MemoryError> {
        self.alloc_contiguous(folio.bytes(), folio).map(|r| r.start())
    }

    /// A physically contiguous run of `len / folio` folios of size `folio`, zeroed and resident.
    /// Each folio can be freed on its own with [`HostMemory::free`], or all with
    /// [`HostMemory::free_contiguous`].
    pub fn alloc_contiguous(&self, len: u64, folio: PageSize) -> Result<HpaRange, MemoryError> {
        if len == 0 {
            return Err(MemoryError::InvalidLength { len });
        }
        if len % folio.bytes() != 0 {
            return Err(MemoryError::Misaligned {
                value: len,
                align: folio.bytes(),
            });
        }
        let out_of = MemoryError::OutOfFrames { folio, bytes: len };
        if len > self.window.len {
            return Err(out_of);
        }
        let n = usize::try_from(len / folio.bytes()).map_err(|_| out_of)?;
        let off = match folio {
            PageSize::Size4K => {
                let mut st = self.state.lock();
                if n == 1 {
                    st.ram.alloc_frame(&self.ram, false)?
                } else {
                    st.ram.alloc_frames(&self.ram, n)?
                }
            }
            PageSize::Size2M => self.alloc_big(len, n, &CHUNKS)?,
            PageSize::Size1G => self.alloc_big(len, n, &REGIONS)?,
        };
        self.ram_range(off, len)
    }

    /// `n` contiguous 2 MiB chunks or 1 GiB regions (`tier`): reserved under the lock, populated
    /// outside it unless already resident (population is slow), then committed, or released if
    /// population failed. Returns their offset in RAM.
    fn alloc_big(&self, len: u64, n: usize, tier: &BigTier) -> Result<u64, MemoryError> {
        let (first, resident) = {
            let mut st = self.state.lock();
            let first = (tier.reserve)(&mut st.ram, &self.ram, n)?;
            (first, (tier.resident)(&st.ram, first, n))
        };
        let off = first as u64 * tier.unit;
        let populated = if resident {
            Ok(())
        } else {
            self.ram.populate(off, len)
        };
        let mut st = self.state.lock();
        match populated {
            Ok(()) => (tier.commit)(&mut st.ram, first, n),
            Err(e) => {
                (tier.release)(&mut st.ram, first, n);
                return Err(e);
            }
        }
        Ok(off)
    }

    /// Free the folio that starts at `hpa`. `Busy` (and nothing changes) if any page is pinned.
    pub fn free(&self, hpa: Hpa) -> Result<(), MemoryError> {
        let off = self.ram_offset(hpa)?;
        let folio = {
            let mut st = self.state.lock();
            let folio = checked_folio(&st.ram, off)?;
            st.ram.begin_free(folio);
            folio
        };
        self.finish_free(&[(off, folio)]);
        Ok(())
    }

    /// Free every folio of `range`, which must cover whole allocated folios; all or nothing.
    pub fn free_contiguous(&self, range: HpaRange) -> Result<(), MemoryError> {
        let (first, end) = self
            .ram_span(range)?
            .ok_or(MemoryError::BadAddress { hpa: range.start() })?;
        let (start, end) = (first * FRAME, end * FRAME);
        let mut big = Vec::new();
        {
            let mut st = self.state.lock();
            let mut off = start;
            while off < end {
                let folio = checked_folio(&st.ram, off)?;
                if folio.bytes() > end - off {
                    return Err(MemoryError::NotFolioStart { hpa: st.ram.hpa(off) });
                }
                off += folio.bytes();
            }
            let mut off = start;
            while off < end {
                let folio = checked_folio(&st.ram, off)?;
                st.ram.begin_free(folio);
                if !matches!(folio, FolioAt::Frame(..)) {
                    big.push((off, folio));
                }
                off += folio.bytes();
            }
        }
        self.finish_free(&big);
        Ok(())
    }

    /// Zero big folios `begin_free` reserved (they stay resident), then return them to the free
    /// sets. Zeroing in place costs ~20 ms per GiB; giving the memory back and faulting it in again
    /// costs ~1 s per GiB, so freed memory stays resident until [`HostMemory::trim`].
    fn finish_free(&self, folios: &[(u64, FolioAt)]) {
        let big = || folios.iter().filter(|(_, f)| !matches!(f, FolioAt::Frame(..)));
        if big().next().is_none() {
            return;
        }
        for &(off, folio) in big() {
            self.ram.zero(off, folio.bytes());
        }
        let mut st = self.state.lock();
        for &(_, folio) in big() {
            st.ram.finish_free(folio);
        }
    }

    /// Give the memory of every free 2 MiB chunk and 1 GiB region back to the OS (freed folios stay
    /// resident, zeroed, until this is called). Split chunks whose frames are all free are merged
    /// back first. Holds the state lock throughout.
    pub fn trim(&self) -> Result<(), MemoryError> {
        let mut st = self.state.lock();
        st.ram.reclaim_all(&self.ram);
        // Every span is forgotten as resident first, so a failed punch only leaves memory
        // resident that will be populated (harmlessly) again.
        let spans = st.ram.take_free_spans();
        spans
            .into_iter()
            .try_for_each(|(off, len)| self.ram.release(off, len))
    }

    /// A zeroed 4 KiB frame for an IO page table. O(1) and free of heap allocation once a chunk of
    /// frames is split (a split happens once per 512 frames).
    pub fn alloc_table_frame(&self) -> Result<Hpa, MemoryError> {
        let off = self.state.lock().ram.alloc_frame(&self.ram, true)?;
        Ok(Hpa::new(self.window.base.raw() + off))
    }

    /// Free a frame from [`HostMemory::alloc_table_frame`]; the caller guarantees no walker still
    /// uses it. A call naming anything else changes nothing and is counted in
    /// [`crate::MemoryStats::bad_table_frees`]; [`HostMemory::try_free_table_frame`] reports it.
    pub fn free_table_frame(&self, hpa: Hpa) {
        if self.try_free_table_frame(hpa).is_err() {
            self.state.lock().ram.counters.bad_table_frees += 1;
        }
    }

    /// [`HostMemory::free_table_frame`] that says why it did nothing.
    pub fn try_free_table_frame(&self, hpa: Hpa) -> Result<(), MemoryError> {
        let off = self.ram_offset(hpa)?;
        let mut st = self.state.lock();
        match checked_folio(&st.ram, off)? {
            FolioAt::Frame(c, i) if st.ram.is_table_frame(c, i) => {
                st.ram.free_frame(c, i);
                Ok(())
            }
            _ => Err(MemoryError::NotFolioStart { hpa }),
        }
    }
}

/// The folio that starts at `off`, if it is allocated and unpinned.
fn checked_folio(ram: &Ram, off: u64) -> Result<FolioAt, MemoryError> {
    let folio = ram.folio_at(off)?;
    if Ram::folio_offset(folio) != off {
        return Err(MemoryError::NotFolioStart { hpa: ram.hpa(off) });
    }
    if let Some(pinned) = ram.first_pinned(folio) {
        return Err(MemoryError::Busy { hpa: ram.hpa(pinned) });
    }
    Ok(folio)
}

/// `range` must start and end on 4 KiB boundaries.
pub(crate) fn check_page_aligned(range: HpaRange) -> Result<(), MemoryError> {
    if !range.start().is_aligned(PageSize::Size4K) {
        return Err(MemoryError::Misaligned {
            value: range.start().raw(),
            align: FRAME,
        });
    }
    if !range.is_aligned(PageSize::Size4K) {
        return Err(MemoryError::Misaligned {
            value: range.last().raw().wrapping_add(1),
            align: FRAME,
        });
    }
    Ok(())
}
