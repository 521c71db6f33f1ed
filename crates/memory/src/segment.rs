//! Segments other than RAM: adopted caller memory and mapped fds, each at a fresh HPA range above
//! RAM (never reused, with a guard gap between neighbours).
//!
//! Two halves, under two locks: the [`SegmentTable`] (address → mapping, read-locked by every
//! access) and the [`SegmentPins`] (pin counts as runs of 4 KiB pages, under the `HostMemory` state lock
//! with the account). Lock order: state, then table.

use crate::MemoryError;
use crate::pins::{Account, PIN_MAX};
use crate::runs::{PinRuns, RunsError};
use crate::sys::{Mapping, PAGE};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use uvfio_types::{Hpa, HpaRange};

/// HPA alignment of a segment's start (so 1 GiB mappings of a segment stay possible).
pub(crate) const SEGMENT_ALIGN: u64 = 1 << 30;
/// Unused HPA space left after each segment (and after RAM) before the next one.
pub(crate) const GUARD_GAP: u64 = 1 << 30;

/// Where a segment's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// The RAM memfd.
    Ram,
    /// Caller memory joined with `HostMemory::adopt`.
    Adopted,
    /// An fd mapped with `HostMemory::add_fd_segment`.
    Fd,
}

/// One segment.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) start: Hpa,
    pub(crate) map: SegMap,
    pub(crate) kind: SegmentKind,
    /// The fd behind an fd segment, closed when the segment goes (after the unmap).
    pub(crate) _fd: Option<OwnedFd>,
}

/// A segment's memory in this process: mapped when it was made, or — an fd segment — on its first
/// access. Making and dropping an fd segment that nothing reads or writes then costs no `mmap` /
/// `munmap` (a vfio-user client's `DMA_MAP` + `DMA_UNMAP` with no DMA in between, say).
#[derive(Debug)]
pub(crate) enum SegMap {
    /// Mapped.
    Mapped(Mapping),
    /// `len` bytes of `fd` from `offset`, `MAP_SHARED` (writable or not) when first needed; a
    /// mapping that fails then leaves the segment unreachable (accesses fail, as at a bad address).
    Lazy {
        fd: Arc<OwnedFd>,
        offset: u64,
        len: u64,
        writable: bool,
        map: OnceLock<Option<Mapping>>,
    },
}

impl SegMap {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            SegMap::Mapped(m) => m.len(),
            SegMap::Lazy { len, .. } => *len,
        }
    }

    /// Whether it may be written.
    pub(crate) fn writable(&self) -> bool {
        match self {
            SegMap::Mapped(m) => m.writable(),
            SegMap::Lazy { writable, .. } => *writable,
        }
    }

    /// The mapping, made now if it is lazy and not made yet; `None` if that `mmap` failed.
    pub(crate) fn get(&self) -> Option<&Mapping> {
        match self {
            SegMap::Mapped(m) => Some(m),
            SegMap::Lazy {
                fd,
                offset,
                len,
                writable,
                map,
            } => map
                .get_or_init(|| Mapping::map_shared(&**fd, *offset, *len, *writable, false).ok())
                .as_ref(),
        }
    }

    /// The mapping if it exists, without making one.
    pub(crate) fn existing(&self) -> Option<&Mapping> {
        match self {
            SegMap::Mapped(m) => Some(m),
            SegMap::Lazy { map, .. } => map.get().and_then(Option::as_ref),
        }
    }
}

impl Segment {
    /// The HPA range the segment covers.
    pub(crate) fn range(&self) -> Option<HpaRange> {
        HpaRange::from_start_len(self.start, self.map.len()).ok()
    }

    /// The offset of `[hpa, hpa + len)` inside the segment, or the first HPA outside it.
    pub(crate) fn offset_of(&self, hpa: Hpa, len: u64) -> Result<u64, MemoryError> {
        let off = hpa
            .offset_from(self.start)
            .ok_or(MemoryError::BadAddress { hpa })?;
        let seg_len = self.map.len();
        if off > seg_len || (off == seg_len && len > 0) {
            return Err(MemoryError::BadAddress { hpa });
        }
        if len > seg_len - off {
            let end = Hpa::new(self.start.raw() + seg_len);
            return Err(MemoryError::BadAddress { hpa: end });
        }
        Ok(off)
    }
}

/// Non-RAM segments by start address.
#[derive(Debug, Default)]
pub(crate) struct SegmentTable {
    segs: Vec<Segment>,
}

impl SegmentTable {
    /// The segment that holds `hpa`.
    pub(crate) fn find(&self, hpa: Hpa) -> Result<&Segment, MemoryError> {
        let i = self.segs.partition_point(|s| s.start <= hpa);
        let seg = i
            .checked_sub(1)
            .and_then(|i| self.segs.get(i))
            .ok_or(MemoryError::BadAddress { hpa })?;
        seg.offset_of(hpa, 0)?;
        Ok(seg)
    }

    /// Add a segment (its start is above every other's).
    pub(crate) fn insert(&mut self, seg: Segment) {
        let i = self.segs.partition_point(|s| s.start < seg.start);
        self.segs.insert(i, seg);
    }

    /// Take out the segment starting at `start`.
    pub(crate) fn remove(&mut self, start: Hpa) -> Option<Segment> {
        let i = self.segs.binary_search_by_key(&start, |s| s.start).ok()?;
        Some(self.segs.remove(i))
    }

    /// The HPAs at which this process's address `va` appears through adopted segments (one per
    /// adopted segment that holds it: a buffer mapped twice is adopted twice).
    pub(crate) fn adopted_hpas(&self, va: u64) -> Vec<Hpa> {
        self.segs
            .iter()
            .filter(|s| s.kind == SegmentKind::Adopted)
            .filter_map(|s| {
                let base = s.map.existing()?.ptr().as_ptr().addr() as u64;
                let off = va.checked_sub(base).filter(|&off| off < s.map.len())?;
                s.start.checked_add(off)
            })
            .collect()
    }

    /// How many segments there are of `kind`, and their total bytes.
    pub(crate) fn count(&self, kind: SegmentKind) -> (usize, u64) {
        self.segs
            .iter()
            .filter(|s| s.kind == kind)
            .fold((0, 0), |(n, b), s| (n + 1, b + s.map.len()))
    }
}

/// Pin counts of one non-RAM segment, as runs of pages of equal count.
#[derive(Debug)]
struct SegPins {
    pages: u64,
    runs: PinRuns,
}

/// Pin counts of every non-RAM segment, and the next free HPA for a segment.
#[derive(Debug)]
pub(crate) struct SegmentPins {
    by_start: BTreeMap<Hpa, SegPins>,
    next: Option<Hpa>,
}

impl SegmentPins {
    /// No segments yet; the first one goes at `first`.
    pub(crate) fn new(first: Option<Hpa>) -> Self {
        SegmentPins {
            by_start: BTreeMap::new(),
            next: first,
        }
    }

    /// Claim a fresh HPA range for a segment of `len` bytes (a multiple of 4 KiB) with no pins.
    pub(crate) fn add(&mut self, len: u64) -> Result<HpaRange, MemoryError> {
        let no_room = MemoryError::OutOfAddressSpace { len };
        let start = self.next.ok_or(no_room.clone())?;
        let range = HpaRange::from_start_len(start, len).map_err(|_| no_room.clone())?;
        let pages = len / PAGE;
        // The next segment starts a guard gap past this one's aligned end; `None` when that is past
        // the end of the address space, which makes later `add`s fail cleanly.
        self.next = range
            .last()
            .align_up(uvfio_types::Alignment::new(SEGMENT_ALIGN).map_err(|_| no_room)?)
            .and_then(|end| end.checked_add(GUARD_GAP));
        self.by_start.insert(
            start,
            SegPins {
                pages,
                runs: PinRuns::new(),
            },
        );
        Ok(range)
    }

    /// Forget the segment that is exactly `range`, if nothing in it is pinned.
    pub(crate) fn remove(&mut self, range: HpaRange) -> Result<(), MemoryError> {
        let start = range.start();
        let seg = self
            .by_start
            .get(&start)
            .ok_or(MemoryError::NotReleasable { hpa: start })?;
        if range.len() != Some(seg.pages * PAGE) {
            return Err(MemoryError::NotReleasable { hpa: start });
        }
        if let Some(i) = seg.runs.first_pinned() {
            return Err(MemoryError::Busy {
                hpa: Hpa::new(start.raw() + i * PAGE),
            });
        }
        self.by_start.remove(&start);
        Ok(())
    }

    /// The pin runs of the segment holding `range` (4 KiB aligned), which must lie in it, the
    /// segment's start and the range's first and last page in it.
    fn pages_of(&mut self, range: HpaRange) -> Result<(Hpa, &mut PinRuns, u64, u64), MemoryError> {
        let hpa = range.start();
        let (&start, seg) = self
            .by_start
            .range_mut(..=hpa)
            .next_back()
            .ok_or(MemoryError::BadAddress { hpa })?;
        let first = (hpa.raw() - start.raw()) / PAGE;
        let n = range.len_minus_one() / PAGE + 1;
        let total = seg.pages;
        if first >= total {
            return Err(MemoryError::BadAddress { hpa });
        }
        if n > total - first {
            return Err(MemoryError::BadAddress {
                hpa: Hpa::new(start.raw() + total * PAGE),
            });
        }
        Ok((start, &mut seg.runs, first, first + n - 1))
    }

    /// Pin `range`, all or nothing.
    pub(crate) fn pin(&mut self, range: HpaRange, account: &mut Account) -> Result<(), MemoryError> {
        let (start, runs, first, last) = self.pages_of(range)?;
        let fresh = runs
            .pin_check(first, last, PIN_MAX)
            .map_err(|e| MemoryError::PinOverflow {
                hpa: page_hpa(start, e),
            })?;
        account.check(fresh)?;
        runs.pin(first, last);
        account.charge(fresh);
        Ok(())
    }

    /// Unpin `range`, all or nothing.
    pub(crate) fn unpin(&mut self, range: HpaRange, account: &mut Account) -> Result<(), MemoryError> {
        let (start, runs, first, last) = self.pages_of(range)?;
        runs.unpin_check(first, last)
            .map_err(|e| MemoryError::NotPinned {
                hpa: page_hpa(start, e),
            })?;
        account.uncharge(runs.unpin(first, last));
        Ok(())
    }

    /// The pin count of the page holding `hpa`.
    pub(crate) fn pin_count(&mut self, hpa: Hpa) -> Result<u32, MemoryError> {
        let page = hpa.align_down(uvfio_types::PageSize::Size4K);
        let range = HpaRange::from_start_len(page, PAGE).map_err(|_| MemoryError::BadAddress { hpa })?;
        let (_, runs, first, _) = self
            .pages_of(range)
            .map_err(|_| MemoryError::BadAddress { hpa })?;
        Ok(runs.count(first))
    }
}

/// The HPA of the page a [`RunsError`] names in the segment at `start`.
fn page_hpa(start: Hpa, e: RunsError) -> Hpa {
    let (RunsError::Saturated(page) | RunsError::NotPinned(page)) = e;
    Hpa::new(start.raw() + page * PAGE)
}
