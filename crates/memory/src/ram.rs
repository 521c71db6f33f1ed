//! The RAM frame allocator.
//!
//! RAM is cut into 1 GiB *regions*. A region is free, a 1 GiB folio, or split into (up to) 512
//! 2 MiB *chunks*; a chunk is free, a 2 MiB folio, or split into 512 4 KiB *frames* ([`Frames`]).
//! Free regions and free chunks of split regions sit in ordered sets (lowest address first); split
//! chunks with free frames sit on a stack, so handing out a 4 KiB frame is O(1) and allocation-free
//! once a chunk is split. Splits are undone lazily: a 2 MiB or 1 GiB request that finds nothing
//! free first gathers chunks whose frames are all free, then regions whose chunks are all free.
//!
//! Invariants: free regions and free chunks read as zero (pristine, zeroed when freed, or given
//! back to the OS by a trim); a frame of a split chunk is zeroed when handed out again. `Reserved`
//! marks a folio between its selection and the end of its (slow, unlocked) population or zeroing.

use crate::MemoryError;
use crate::backing::RamBacking;
use crate::pins::FolioPins;
use std::collections::BTreeSet;
use uvfio_types::{Hpa, PageSize};

/// Bytes in a 4 KiB frame.
pub(crate) const FRAME: u64 = 1 << 12;
/// Bytes in a chunk.
pub(crate) const CHUNK: u64 = 1 << 21;
/// Bytes in a region.
pub(crate) const REGION: u64 = 1 << 30;
/// Frames in a chunk.
pub(crate) const FRAMES_PER_CHUNK: usize = 512;
/// Chunks in a (whole) region.
pub(crate) const CHUNKS_PER_REGION: usize = 512;
const WORDS: usize = FRAMES_PER_CHUNK / 64;

/// What a region holds.
#[derive(Debug)]
pub(crate) enum RegionState {
    /// Nothing; all of it reads as zero.
    Free,
    /// Being populated or zeroed by an operation that dropped the lock.
    Reserved,
    /// A 1 GiB folio.
    Folio(FolioPins),
    /// Managed chunk by chunk; `used` chunks are not free.
    Split {
        /// Chunks that are not `Free`.
        used: u32,
    },
}

/// A 1 GiB slice of RAM (the last one may be shorter).
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) state: RegionState,
    pub(crate) nchunks: u32,
    /// Whether all of the region's memory is known to be resident (populated, not trimmed since).
    resident: bool,
}

/// What a chunk of a split region holds (chunks of other regions are `Free` and unused).
#[derive(Debug)]
pub(crate) enum ChunkState {
    /// Nothing; all of it reads as zero.
    Free,
    /// Being populated or zeroed by an operation that dropped the lock.
    Reserved,
    /// A 2 MiB folio.
    Folio(FolioPins),
    /// Split into 4 KiB frames.
    Split(Box<Frames>),
}

/// A chunk split into 512 frames: which are free, which were ever handed out (must be zeroed
/// before reuse), which are page-table frames, and each frame's pin count.
#[derive(Debug)]
pub(crate) struct Frames {
    free: [u64; WORDS],
    dirty: [u64; WORDS],
    table: [u64; WORDS],
    nfree: u32,
    pub(crate) pins: [u32; FRAMES_PER_CHUNK],
}

fn bit(bits: &[u64; WORDS], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 != 0
}
fn set(bits: &mut [u64; WORDS], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}
fn clear(bits: &mut [u64; WORDS], i: usize) {
    bits[i / 64] &= !(1 << (i % 64));
}

impl Frames {
    fn new() -> Box<Frames> {
        Box::new(Frames {
            free: [u64::MAX; WORDS],
            dirty: [0; WORDS],
            table: [0; WORDS],
            nfree: FRAMES_PER_CHUNK as u32,
            pins: [0; FRAMES_PER_CHUNK],
        })
    }

    /// Whether frame `i` is free.
    pub(crate) fn is_free(&self, i: usize) -> bool {
        bit(&self.free, i)
    }

    /// The first free frame in `[first, end)`, if any.
    pub(crate) fn first_free_in(&self, first: usize, end: usize) -> Option<usize> {
        let mut i = first;
        while i < end {
            let w = i / 64;
            let lo = i % 64;
            let hi = (end - w * 64).min(64);
            let mask = if hi == 64 {
                u64::MAX << lo
            } else {
                (u64::MAX << lo) & ((1u64 << hi) - 1)
            };
            let hits = self.free[w] & mask;
            if hits != 0 {
                return Some(w * 64 + hits.trailing_zeros() as usize);
            }
            i = (w + 1) * 64;
        }
        None
    }

    /// Hand out frame `i` (free); whether it must be zeroed.
    fn take(&mut self, i: usize, table: bool) -> bool {
        clear(&mut self.free, i);
        self.nfree -= 1;
        let dirty = bit(&self.dirty, i);
        set(&mut self.dirty, i);
        if table {
            set(&mut self.table, i);
        }
        dirty
    }

    /// Take frame `i` back; whether it was a table frame.
    fn give(&mut self, i: usize) -> bool {
        set(&mut self.free, i);
        self.nfree += 1;
        let table = bit(&self.table, i);
        clear(&mut self.table, i);
        table
    }
}

/// An allocated folio, as found by [`Ram::folio_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FolioAt {
    /// Frame `.1` of chunk `.0`.
    Frame(usize, usize),
    /// The 2 MiB folio of chunk `.0`.
    Chunk(usize),
    /// The 1 GiB folio of region `.0`.
    Region(usize),
}

impl FolioAt {
    /// The folio's size in bytes.
    pub(crate) fn bytes(self) -> u64 {
        match self {
            FolioAt::Frame(..) => FRAME,
            FolioAt::Chunk(_) => CHUNK,
            FolioAt::Region(_) => REGION,
        }
    }
}

/// Allocator counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RamCounters {
    pub(crate) frames: u64,
    pub(crate) table_frames: u64,
    pub(crate) chunks: u64,
    pub(crate) regions: u64,
    pub(crate) split_chunks: u64,
    pub(crate) bad_table_frees: u64,
}

/// The allocator's state (lives under the `HostMemory` lock).
#[derive(Debug)]
pub(crate) struct Ram {
    pub(crate) base: Hpa,
    pub(crate) regions: Vec<Region>,
    pub(crate) chunks: Vec<ChunkState>,
    free_regions: BTreeSet<usize>,
    free_chunks: BTreeSet<usize>,
    /// Split chunks that may have free frames (stale entries are dropped when met).
    partial: Vec<usize>,
    in_partial: Vec<bool>,
    /// Whether each chunk's memory is known to be resident (populated, not trimmed since).
    chunk_resident: Vec<bool>,
    pub(crate) counters: RamCounters,
}

impl Ram {
    /// RAM of `len` bytes (a non-zero multiple of 2 MiB) at `base` (1 GiB aligned).
    pub(crate) fn new(base: Hpa, len: u64) -> Ram {
        let nchunks = (len / CHUNK) as usize;
        let nregions = nchunks.div_ceil(CHUNKS_PER_REGION);
        let mut ram = Ram {
            base,
            regions: Vec::with_capacity(nregions),
            chunks: (0..nchunks).map(|_| ChunkState::Free).collect(),
            free_regions: BTreeSet::new(),
            free_chunks: BTreeSet::new(),
            partial: Vec::with_capacity(nchunks),
            in_partial: vec![false; nchunks],
            chunk_resident: vec![false; nchunks],
            counters: RamCounters::default(),
        };
        for r in 0..nregions {
            let n = (nchunks - r * CHUNKS_PER_REGION).min(CHUNKS_PER_REGION);
            if n == CHUNKS_PER_REGION {
                ram.regions.push(Region {
                    state: RegionState::Free,
                    nchunks: n as u32,
                    resident: false,
                });
                ram.free_regions.insert(r);
            } else {
                // A short tail region can never be a 1 GiB folio: it starts (and stays) split.
                ram.regions.push(Region {
                    state: RegionState::Split { used: 0 },
                    nchunks: n as u32,
                    resident: false,
                });
                ram.free_chunks
                    .extend(r * CHUNKS_PER_REGION..r * CHUNKS_PER_REGION + n);
            }
        }
        ram
    }

    /// The HPA of byte `off` of RAM.
    pub(crate) fn hpa(&self, off: u64) -> Hpa {
        Hpa::new(self.base.raw() + off)
    }

    /// Free regions and free chunks of split regions.
    pub(crate) fn free_counts(&self) -> (usize, usize) {
        (self.free_regions.len(), self.free_chunks.len())
    }

    fn out_of(folio: PageSize, n: u64) -> MemoryError {
        MemoryError::OutOfFrames {
            folio,
            bytes: n.saturating_mul(folio.bytes()),
        }
    }

    fn chunk_available(&self, c: usize) -> bool {
        match self.regions[c / CHUNKS_PER_REGION].state {
            RegionState::Free => true,
            RegionState::Split { .. } => matches!(self.chunks[c], ChunkState::Free),
            RegionState::Reserved | RegionState::Folio(_) => false,
        }
    }

    fn split_region(&mut self, r: usize) {
        self.free_regions.remove(&r);
        self.regions[r].state = RegionState::Split { used: 0 };
        let chunks = r * CHUNKS_PER_REGION..r * CHUNKS_PER_REGION + self.regions[r].nchunks as usize;
        if self.regions[r].resident {
            self.chunk_resident[chunks.clone()].fill(true);
        }
        self.free_chunks.extend(chunks);
    }

    fn region_used(&mut self, c: usize, delta: i32) {
        if let RegionState::Split { used } = &mut self.regions[c / CHUNKS_PER_REGION].state {
            *used = used.wrapping_add_signed(delta);
        }
    }

    /// Take free chunk `c` (of a free or split region) as `Reserved`.
    fn claim_chunk(&mut self, c: usize) {
        let r = c / CHUNKS_PER_REGION;
        if matches!(self.regions[r].state, RegionState::Free) {
            self.split_region(r);
        }
        self.free_chunks.remove(&c);
        self.chunks[c] = ChunkState::Reserved;
        self.region_used(c, 1);
    }

    /// Turn split chunks whose frames are all free back into free chunks; whether any was.
    fn reclaim_chunks(&mut self, backing: &RamBacking) -> bool {
        let mut any = false;
        for c in 0..self.chunks.len() {
            let all_free =
                matches!(&self.chunks[c], ChunkState::Split(f) if f.nfree == FRAMES_PER_CHUNK as u32);
            if all_free {
                backing.zero(c as u64 * CHUNK, CHUNK);
                self.chunks[c] = ChunkState::Free;
                self.free_chunks.insert(c);
                self.region_used(c, -1);
                self.counters.split_chunks -= 1;
                any = true;
            }
        }
        any
    }

    /// Turn whole split regions whose chunks are all free back into free regions; whether any was.
    fn reclaim_regions(&mut self) -> bool {
        let mut any = false;
        for r in 0..self.regions.len() {
            let region = &self.regions[r];
            if matches!(region.state, RegionState::Split { used: 0 })
                && region.nchunks as usize == CHUNKS_PER_REGION
            {
                let first = r * CHUNKS_PER_REGION;
                for c in first..first + CHUNKS_PER_REGION {
                    self.free_chunks.remove(&c);
                }
                self.regions[r].state = RegionState::Free;
                let resident = self.chunk_resident[first..first + CHUNKS_PER_REGION]
                    .iter()
                    .all(|&x| x);
                self.regions[r].resident = resident;
                self.free_regions.insert(r);
                any = true;
            }
        }
        any
    }

    fn find_chunk_run(&self, n: usize) -> Option<usize> {
        if n == 1 {
            if let Some(&c) = self.free_chunks.first() {
                return Some(c);
            }
        }
        let mut run = 0;
        for c in 0..self.chunks.len() {
            run = if self.chunk_available(c) { run + 1 } else { 0 };
            if run == n {
                return Some(c + 1 - n);
            }
        }
        None
    }

    /// Reserve `n` physically contiguous free chunks; the first chunk's index.
    pub(crate) fn reserve_chunks(&mut self, backing: &RamBacking, n: usize) -> Result<usize, MemoryError> {
        let first = match self.find_chunk_run(n) {
            Some(c) => c,
            None if self.reclaim_chunks(backing) => self
                .find_chunk_run(n)
                .ok_or(Self::out_of(PageSize::Size2M, n as u64))?,
            None => return Err(Self::out_of(PageSize::Size2M, n as u64)),
        };
        for c in first..first + n {
            self.claim_chunk(c);
        }
        Ok(first)
    }

    /// Merge every split chunk and region that is wholly free.
    pub(crate) fn reclaim_all(&mut self, backing: &RamBacking) {
        self.reclaim_chunks(backing);
        self.reclaim_regions();
    }

    /// The RAM offsets and lengths of every free region and every free chunk of a split region,
    /// forgotten as resident: the caller gives their memory back to the OS.
    pub(crate) fn take_free_spans(&mut self) -> Vec<(u64, u64)> {
        let mut spans = Vec::with_capacity(self.free_regions.len() + self.free_chunks.len());
        for &r in &self.free_regions {
            self.regions[r].resident = false;
            let first = r * CHUNKS_PER_REGION;
            self.chunk_resident[first..first + self.regions[r].nchunks as usize].fill(false);
            spans.push((r as u64 * REGION, REGION));
        }
        for &c in &self.free_chunks {
            self.chunk_resident[c] = false;
            spans.push((c as u64 * CHUNK, CHUNK));
        }
        spans
    }

    /// Whether chunks `[first, first + n)` are resident already (no population needed).
    pub(crate) fn chunks_resident(&self, first: usize, n: usize) -> bool {
        self.chunk_resident[first..first + n].iter().all(|&x| x)
    }

    /// Whether regions `[first, first + n)` are resident already (no population needed).
    pub(crate) fn regions_resident(&self, first: usize, n: usize) -> bool {
        self.regions[first..first + n].iter().all(|r| r.resident)
    }

    /// Make reserved chunks 2 MiB folios.
    pub(crate) fn commit_chunks(&mut self, first: usize, n: usize) {
        for c in first..first + n {
            self.chunks[c] = ChunkState::Folio(FolioPins::new(FRAMES_PER_CHUNK as u32));
            self.chunk_resident[c] = true;
        }
        self.counters.chunks += n as u64;
    }

    /// Return reserved chunks (reading as zero) to the free set.
    pub(crate) fn release_chunks(&mut self, first: usize, n: usize) {
        for c in first..first + n {
            self.chunks[c] = ChunkState::Free;
            self.free_chunks.insert(c);
            self.region_used(c, -1);
        }
    }

    fn find_region_run(&self, n: usize) -> Option<usize> {
        let mut run = 0;
        let mut prev = None;
        for &r in &self.free_regions {
            run = if prev.is_some_and(|p: usize| p + 1 == r) {
                run + 1
            } else {
                1
            };
            prev = Some(r);
            if run == n {
                return Some(r + 1 - n);
            }
        }
        None
    }

    /// Reserve `n` physically contiguous free regions; the first region's index.
    pub(crate) fn reserve_regions(&mut self, backing: &RamBacking, n: usize) -> Result<usize, MemoryError> {
        let first = match self.find_region_run(n) {
            Some(r) => r,
            None => {
                self.reclaim_chunks(backing);
                self.reclaim_regions();
                self.find_region_run(n)
                    .ok_or(Self::out_of(PageSize::Size1G, n as u64))?
            }
        };
        for r in first..first + n {
            self.free_regions.remove(&r);
            self.regions[r].state = RegionState::Reserved;
        }
        Ok(first)
    }

    /// Make reserved regions 1 GiB folios.
    pub(crate) fn commit_regions(&mut self, first: usize, n: usize) {
        for r in first..first + n {
            self.regions[r].state = RegionState::Folio(FolioPins::new((REGION / FRAME) as u32));
            self.regions[r].resident = true;
        }
        self.counters.regions += n as u64;
    }

    /// Return reserved regions (reading as zero) to the free set.
    pub(crate) fn release_regions(&mut self, first: usize, n: usize) {
        for r in first..first + n {
            self.regions[r].state = RegionState::Free;
            self.free_regions.insert(r);
        }
    }

    /// Split free chunk `c` into frames, populating it; on failure `c` stays free.
    fn split_chunk(&mut self, backing: &RamBacking, c: usize) -> Result<(), MemoryError> {
        self.claim_chunk(c);
        if !self.chunk_resident[c] {
            if let Err(e) = backing.populate(c as u64 * CHUNK, CHUNK) {
                self.release_chunks(c, 1);
                return Err(e);
            }
            self.chunk_resident[c] = true;
        }
        self.chunks[c] = ChunkState::Split(Frames::new());
        self.counters.split_chunks += 1;
        if !self.in_partial[c] {
            self.in_partial[c] = true;
            self.partial.push(c);
        }
        Ok(())
    }

    fn take_frame(&mut self, backing: &RamBacking, c: usize, i: usize, table: bool) {
        let ChunkState::Split(frames) = &mut self.chunks[c] else {
            return;
        };
        if frames.take(i, table) {
            backing.zero(c as u64 * CHUNK + i as u64 * FRAME, FRAME);
        }
        self.counters.frames += 1;
        self.counters.table_frames += u64::from(table);
    }

    /// Hand out one zeroed, resident 4 KiB frame; its offset in RAM.
    pub(crate) fn alloc_frame(&mut self, backing: &RamBacking, table: bool) -> Result<u64, MemoryError> {
        while let Some(&c) = self.partial.last() {
            let free = match &self.chunks[c] {
                ChunkState::Split(f) if f.nfree > 0 => f.first_free_in(0, FRAMES_PER_CHUNK),
                _ => None,
            };
            match free {
                Some(i) => {
                    self.take_frame(backing, c, i, table);
                    return Ok(c as u64 * CHUNK + i as u64 * FRAME);
                }
                None => {
                    self.partial.pop();
                    self.in_partial[c] = false;
                }
            }
        }
        let c = self.find_chunk_run(1).ok_or(Self::out_of(PageSize::Size4K, 1))?;
        self.split_chunk(backing, c)?;
        self.take_frame(backing, c, 0, table);
        Ok(c as u64 * CHUNK)
    }

    fn find_frame_run(&self, n: usize) -> Option<usize> {
        let mut start = 0;
        let mut run = 0;
        for c in 0..self.chunks.len() {
            let base = c * FRAMES_PER_CHUNK;
            if self.chunk_available(c) {
                if run == 0 {
                    start = base;
                }
                run += FRAMES_PER_CHUNK;
            } else if let (ChunkState::Split(f), RegionState::Split { .. }) =
                (&self.chunks[c], &self.regions[c / CHUNKS_PER_REGION].state)
            {
                for i in 0..FRAMES_PER_CHUNK {
                    if f.is_free(i) {
                        if run == 0 {
                            start = base + i;
                        }
                        run += 1;
                        if run >= n {
                            return Some(start);
                        }
                    } else {
                        run = 0;
                    }
                }
            } else {
                run = 0;
            }
            if run >= n {
                return Some(start);
            }
        }
        None
    }

    /// Hand out `n` physically contiguous zeroed, resident 4 KiB frames; the first one's offset.
    pub(crate) fn alloc_frames(&mut self, backing: &RamBacking, n: usize) -> Result<u64, MemoryError> {
        let start = self
            .find_frame_run(n)
            .ok_or(Self::out_of(PageSize::Size4K, n as u64))?;
        let end = start + n;
        // First split the free chunks the run crosses; a failure leaves them split and all free,
        // which is a valid state, and hands out nothing.
        for c in start / FRAMES_PER_CHUNK..end.div_ceil(FRAMES_PER_CHUNK) {
            if self.chunk_available(c) {
                self.split_chunk(backing, c)?;
            }
        }
        for f in start..end {
            self.take_frame(backing, f / FRAMES_PER_CHUNK, f % FRAMES_PER_CHUNK, false);
        }
        Ok(start as u64 * FRAME)
    }

    /// The allocated folio that holds byte `off`, with an error naming what is wrong otherwise.
    pub(crate) fn folio_at(&self, off: u64) -> Result<FolioAt, MemoryError> {
        let not_allocated = MemoryError::NotAllocated { hpa: self.hpa(off) };
        let r = (off / REGION) as usize;
        let region = self
            .regions
            .get(r)
            .ok_or(MemoryError::BadAddress { hpa: self.hpa(off) })?;
        match &region.state {
            RegionState::Free | RegionState::Reserved => Err(not_allocated),
            RegionState::Folio(_) => Ok(FolioAt::Region(r)),
            RegionState::Split { .. } => {
                let c = (off / CHUNK) as usize;
                match self.chunks.get(c) {
                    Some(ChunkState::Folio(_)) => Ok(FolioAt::Chunk(c)),
                    Some(ChunkState::Split(f)) => {
                        let i = (off % CHUNK / FRAME) as usize;
                        if f.is_free(i) {
                            Err(not_allocated)
                        } else {
                            Ok(FolioAt::Frame(c, i))
                        }
                    }
                    Some(ChunkState::Free | ChunkState::Reserved) => Err(not_allocated),
                    None => Err(MemoryError::BadAddress { hpa: self.hpa(off) }),
                }
            }
        }
    }

    /// The offset of a folio's first byte.
    pub(crate) fn folio_offset(folio: FolioAt) -> u64 {
        match folio {
            FolioAt::Frame(c, i) => c as u64 * CHUNK + i as u64 * FRAME,
            FolioAt::Chunk(c) => c as u64 * CHUNK,
            FolioAt::Region(r) => r as u64 * REGION,
        }
    }

    /// The first pinned page of a folio (as a RAM offset), if any.
    pub(crate) fn first_pinned(&self, folio: FolioAt) -> Option<u64> {
        let base = Self::folio_offset(folio);
        let page = match folio {
            FolioAt::Frame(c, i) => match &self.chunks[c] {
                ChunkState::Split(f) => (f.pins[i] > 0).then_some(0),
                _ => None,
            },
            FolioAt::Chunk(c) => match &self.chunks[c] {
                ChunkState::Folio(p) => p.first_pinned(),
                _ => None,
            },
            FolioAt::Region(r) => match &self.regions[r].state {
                RegionState::Folio(p) => p.first_pinned(),
                _ => None,
            },
        };
        page.map(|p| base + p as u64 * FRAME)
    }

    /// Whether frame `i` of chunk `c` is a page-table frame.
    pub(crate) fn is_table_frame(&self, c: usize, i: usize) -> bool {
        matches!(&self.chunks[c], ChunkState::Split(f) if bit(&f.table, i))
    }

    /// Free an allocated, unpinned 4 KiB frame.
    pub(crate) fn free_frame(&mut self, c: usize, i: usize) {
        let ChunkState::Split(frames) = &mut self.chunks[c] else {
            return;
        };
        let table = frames.give(i);
        self.counters.frames -= 1;
        self.counters.table_frames -= u64::from(table);
        if !self.in_partial[c] {
            self.in_partial[c] = true;
            self.partial.push(c);
        }
    }

    /// Start freeing an allocated, unpinned big folio: it becomes `Reserved` until
    /// [`Ram::finish_free`] after the caller zeroed its memory.
    pub(crate) fn begin_free(&mut self, folio: FolioAt) {
        match folio {
            FolioAt::Frame(c, i) => self.free_frame(c, i),
            FolioAt::Chunk(c) => {
                self.chunks[c] = ChunkState::Reserved;
                self.counters.chunks -= 1;
            }
            FolioAt::Region(r) => {
                self.regions[r].state = RegionState::Reserved;
                self.counters.regions -= 1;
            }
        }
    }

    /// Finish freeing a big folio whose memory reads as zero again.
    pub(crate) fn finish_free(&mut self, folio: FolioAt) {
        match folio {
            FolioAt::Frame(..) => {}
            FolioAt::Chunk(c) => self.release_chunks(c, 1),
            FolioAt::Region(r) => self.release_regions(r, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HugePages;

    fn ram(len: u64) -> (RamBacking, Ram) {
        let backing = RamBacking::create(len, HugePages::Never).unwrap();
        (backing, Ram::new(Hpa::new(0x4000_0000), len))
    }

    #[test]
    fn short_tail_region_starts_split() {
        let (_, r) = ram(4 * CHUNK);
        assert_eq!(r.regions.len(), 1);
        assert!(matches!(r.regions[0].state, RegionState::Split { used: 0 }));
        assert_eq!(r.free_counts(), (0, 4));
        let (_, r) = ram(REGION + CHUNK);
        assert_eq!(r.free_counts(), (1, 1));
    }

    #[test]
    fn frames_come_from_one_chunk_until_it_is_full() {
        let (b, mut r) = ram(4 * CHUNK);
        let offs: Vec<u64> = (0..FRAMES_PER_CHUNK)
            .map(|_| r.alloc_frame(&b, true).unwrap())
            .collect();
        assert!(offs.iter().all(|&o| o < CHUNK));
        assert_eq!(r.counters.split_chunks, 1);
        assert_eq!(r.counters.table_frames, FRAMES_PER_CHUNK as u64);
        assert_eq!(r.alloc_frame(&b, false).unwrap(), CHUNK);
        assert_eq!(r.counters.split_chunks, 2);
        // A freed frame is reused first (it sits on the partial stack).
        r.free_frame(0, 7);
        assert_eq!(r.alloc_frame(&b, false).unwrap(), 7 * FRAME);
    }

    #[test]
    fn big_requests_reclaim_free_split_chunks_and_regions() {
        let (b, mut r) = ram(REGION);
        let f = r.alloc_frame(&b, false).unwrap();
        let c = r.reserve_chunks(&b, 511).unwrap();
        assert_eq!(c, 1);
        assert!(r.reserve_chunks(&b, 1).is_err());
        r.release_chunks(1, 511);
        assert!(r.reserve_regions(&b, 1).is_err(), "the frame still holds chunk 0");
        let folio = r.folio_at(f).unwrap();
        r.begin_free(folio);
        assert_eq!(r.reserve_regions(&b, 1).unwrap(), 0);
        assert_eq!(r.counters.split_chunks, 0);
        r.commit_regions(0, 1);
        assert_eq!(r.folio_at(REGION - 1), Ok(FolioAt::Region(0)));
        assert!(matches!(r.folio_at(REGION), Err(MemoryError::BadAddress { .. })));
    }

    #[test]
    fn frame_runs_span_chunks() {
        let (b, mut r) = ram(4 * CHUNK);
        let a = r.alloc_frame(&b, false).unwrap();
        assert_eq!(a, 0);
        let run = r.alloc_frames(&b, FRAMES_PER_CHUNK + 10).unwrap();
        assert_eq!(run, FRAME);
        assert_eq!(r.counters.frames, FRAMES_PER_CHUNK as u64 + 11);
        assert_eq!(r.counters.split_chunks, 2);
        assert!(r.alloc_frames(&b, 3 * FRAMES_PER_CHUNK).is_err());
        assert_eq!(
            r.alloc_frames(&b, 2 * FRAMES_PER_CHUNK).unwrap(),
            (FRAMES_PER_CHUNK as u64 + 11) * FRAME
        );
        assert_eq!(r.counters.split_chunks, 4);
    }

    #[test]
    fn first_free_in_masks_words() {
        let mut f = Frames::new();
        for i in 0..FRAMES_PER_CHUNK {
            f.take(i, false);
        }
        assert_eq!(f.first_free_in(0, FRAMES_PER_CHUNK), None);
        f.give(130);
        assert_eq!(f.first_free_in(0, 130), None);
        assert_eq!(f.first_free_in(0, 131), Some(130));
        assert_eq!(f.first_free_in(130, 131), Some(130));
        assert_eq!(f.first_free_in(131, FRAMES_PER_CHUNK), None);
        f.give(511);
        assert_eq!(f.first_free_in(131, FRAMES_PER_CHUNK), Some(511));
    }
}
