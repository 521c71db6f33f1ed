//! The IOVA bookkeeping of an IOAS: Linux's `struct io_pagetable` (`drivers/iommu/iommufd/
//! io_pagetable.c`) without memory, pins or domains.
//!
//! An [`IovaSpace`] holds three sets of IOVA ranges and one number:
//!
//! - **areas**: the mappings (`struct iopt_area`), pairwise disjoint, each with a payload `T` (the
//!   IOAS stores its shared `Pages` handle and offsets there) and the page offset of its source;
//! - **allowed** ranges (`IOMMU_IOAS_ALLOW_IOVAS`): where automatic IOVA allocation may place a
//!   mapping; empty means "anywhere";
//! - **reserved** ranges (`iopt_reserve_iova`): what devices and domains cannot translate (MSI
//!   windows, the outside of a domain's aperture), each tagged with a [`ReserveOwner`];
//! - the **IOVA alignment** every mapping must respect (the largest minimum page size of the
//!   attached domains; 1 while there is none, exactly as Linux's `iopt_init_table`).
//!
//! The rules are Linux's, errno for errno (see [`IovaSpaceError::errno`]):
//!
//! - areas never overlap each other or a reserved range; reserved ranges never overlap an allowed
//!   range (both [`reserve`](IovaSpace::reserve) and [`set_allowed`](IovaSpace::set_allowed) refuse
//!   with `EADDRINUSE`); reserved ranges may overlap each other;
//! - allowed ranges constrain *allocation only*: Linux's `iopt_check_iova` does not look at them,
//!   so a fixed mapping may lie outside them, and setting allowed ranges does not look at areas;
//! - `IOMMU_IOAS_IOVA_RANGES` reports the complement of the reserved ranges
//!   ([`usable_ranges`](IovaSpace::usable_ranges)), not the allowed ranges;
//! - an unmap removes whole areas only; an empty unmap is `ENOENT` (`IOMMU_IOAS_UNMAP`; VFIO's type1
//!   compat layer turns that one into success).
//!
//! One deliberate difference: Linux's `iopt_unmap_iova_range` unmaps area by area and stops at the
//! first area the range would split, so areas below it are already gone when it returns `ENOENT`.
//! [`remove_range`](IovaSpace::remove_range) checks first and removes nothing on failure, keeping
//! the house rule that a failed operation changes nothing (the errno is the same).
//!
//! All arithmetic is checked: ranges are inclusive ([`IovaRange`]), so the last page of the 64-bit
//! space is an ordinary area.

mod alloc;
mod error;
#[cfg(test)]
mod tests;

pub use error::{IovaSpaceError, Misalignment};

use alloc::{Holes, merge_touching};
use std::collections::{BTreeMap, HashMap};
use uvfio_types::{Alignment, HostVa, Iova, IovaRange};

/// The kernel's `PAGE_SIZE` (x86-64): the unit of pinning, the largest IOVA alignment a domain may
/// ask for, and the guard left free at both ends of the space by automatic allocation.
pub const PAGE_SIZE: u64 = 4096;

/// The cap on the alignment of an allocated IOVA: `HPAGE_SIZE` on x86-64 with transparent huge
/// pages (`iopt_alloc_iova`: "Protect against ALIGN() overflow").
pub const MAX_ALLOC_ALIGNMENT: u64 = 2 << 20;

/// The identity of one area, unique over the life of its [`IovaSpace`]. A [`cut`](IovaSpace::cut)
/// replaces an area by two new ones, as `iopt_area_split` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AreaId(u64);

impl AreaId {
    /// The number behind the id (for logs and maps).
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// Who reserved a range (Linux passes the `struct device *` or `struct iommu_domain *` as `owner`);
/// [`unreserve_owner`](IovaSpace::unreserve_owner) drops all of an owner's ranges at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReserveOwner(pub u64);

/// The address of the first source byte of a mapping: the user VA of `IOMMU_IOAS_MAP`, the file
/// offset of `IOMMU_IOAS_MAP_FILE`, or `pages->uptr + start_byte` of an `IOMMU_IOAS_COPY` piece.
///
/// Linux derives two things from it: the page offset an area keeps (`start_byte % PAGE_SIZE`, which
/// must respect the IOVA alignment and is ORed into an allocated IOVA) and, for the first piece,
/// the alignment of an allocated IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceAddr(u64);

impl SourceAddr {
    /// The source address `raw`.
    pub const fn new(raw: u64) -> Self {
        SourceAddr(raw)
    }

    /// The source at a user virtual address.
    pub const fn from_host_va(va: HostVa) -> Self {
        SourceAddr(va.raw())
    }

    /// The number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The offset inside its page.
    pub const fn page_offset(self) -> u64 {
        self.0 % PAGE_SIZE
    }
}

/// Where a new mapping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// At this IOVA (`IOMMU_IOAS_MAP_FIXED_IOVA`): "the iova range must currently be unused,
    /// existing IOVA cannot be replaced".
    Fixed(Iova),
    /// Wherever automatic allocation finds room: "a suitable location based on the reserved and
    /// allowed lists will be automatically selected".
    Alloc,
}

/// One piece of a mapping: a single `IOMMU_IOAS_MAP` is one piece; an `IOMMU_IOAS_COPY` is one
/// piece per source area it spans, laid out back to back (Linux `struct iopt_pages_list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<T> {
    /// Bytes in this piece (not 0).
    pub length: u64,
    /// Where its bytes come from.
    pub source: SourceAddr,
    /// What the area stores.
    pub payload: T,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Area<T> {
    id: AreaId,
    range: IovaRange,
    /// `start_byte % PAGE_SIZE` of the source (`area->page_offset`).
    page_offset: u64,
    payload: T,
}

/// Alignment 1: what a space without domains requires.
const NO_ALIGNMENT: Alignment = match Alignment::new(1) {
    Ok(a) => a,
    Err(_) => panic!("1 is a power of two"),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reservation {
    range: IovaRange,
    owner: ReserveOwner,
}

/// The IOVA bookkeeping of one IOAS (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IovaSpace<T> {
    /// By start IOVA; pairwise disjoint.
    areas: BTreeMap<Iova, Area<T>>,
    /// Area id → start IOVA.
    ids: HashMap<AreaId, Iova>,
    /// Sorted by start; pairwise disjoint (they may touch).
    allowed: Vec<IovaRange>,
    /// Sorted by start; may overlap each other.
    reserved: Vec<Reservation>,
    iova_alignment: Alignment,
    next_id: u64,
}

impl<T> Default for IovaSpace<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The range `[iova, iova + length - 1]` as `iopt_unmap_iova` checks it: `length == 0` →
/// [`ZeroLength`](IovaSpaceError::ZeroLength) (`EINVAL`), wrapping → [`Overflow`]
/// (IovaSpaceError::Overflow) (`EOVERFLOW`).
pub fn range_from_user(iova: Iova, length: u64) -> Result<IovaRange, IovaSpaceError> {
    if length == 0 {
        return Err(IovaSpaceError::ZeroLength);
    }
    IovaRange::from_start_len(iova, length).map_err(|_| IovaSpaceError::Overflow {
        iova: iova.raw(),
        length,
    })
}

impl<T> IovaSpace<T> {
    /// An empty space: no area, no reservation, no allowed list (everything allowed), alignment 1
    /// (Linux `iopt_init_table`: "iopt's start as SW tables that can use the entire size_t IOVA
    /// space due to the use of size_t in the APIs. They have no alignment restriction.").
    pub fn new() -> Self {
        IovaSpace {
            areas: BTreeMap::new(),
            ids: HashMap::new(),
            allowed: Vec::new(),
            reserved: Vec::new(),
            iova_alignment: NO_ALIGNMENT,
            next_id: 1,
        }
    }

    // ----- areas --------------------------------------------------------------------------------

    /// Maps `length` bytes at `iova` (`IOMMU_IOAS_MAP` with `IOMMU_IOAS_MAP_FIXED_IOVA`). See
    /// [`insert`](Self::insert) for the checks.
    pub fn insert_fixed(
        &mut self,
        iova: Iova,
        length: u64,
        source: SourceAddr,
        payload: T,
    ) -> Result<(AreaId, IovaRange), IovaSpaceError> {
        let piece = Piece {
            length,
            source,
            payload,
        };
        self.insert(Placement::Fixed(iova), vec![piece]).map(first_of)
    }

    /// Maps `length` bytes wherever there is room (`IOMMU_IOAS_MAP` without `FIXED_IOVA`). See
    /// [`insert`](Self::insert) for where.
    pub fn insert_alloc(
        &mut self,
        length: u64,
        source: SourceAddr,
        payload: T,
    ) -> Result<(AreaId, IovaRange), IovaSpaceError> {
        let piece = Piece {
            length,
            source,
            payload,
        };
        self.insert(Placement::Alloc, vec![piece]).map(first_of)
    }

    /// Maps `pieces` back to back, one area each, all or nothing (Linux `iopt_alloc_area_pages`
    /// with `iopt_insert_area`). Checks, in the kernel's order:
    ///
    /// 1. the total length is not 0 and a multiple of the IOVA alignment (`EINVAL`);
    /// 2. [`Placement::Fixed`]: the IOVA is aligned (`EINVAL`), `iova + length - 1` fits (`EOVERFLOW`),
    ///    no reserved range intersects (`EINVAL`), no area intersects (`EEXIST`);
    ///    [`Placement::Alloc`]: `length < 2^63` (`EOVERFLOW`); the alignment derived from the first
    ///    piece's source and the length ([`MAX_ALLOC_ALIGNMENT`] at most) is at least the IOVA
    ///    alignment (`EINVAL`); the first fit walking upwards through the allowed ranges (or
    ///    everything), within `[PAGE_SIZE, 2^64 - 1 - PAGE_SIZE]`, outside reservations and areas
    ///    (`ENOSPC`);
    /// 3. every piece is non-empty and its source page offset is a multiple of the IOVA alignment
    ///    (`EINVAL`).
    ///
    /// Answers each new area with its range, in IOVA order. On failure nothing changes and the
    /// payloads are dropped.
    pub fn insert(
        &mut self,
        placement: Placement,
        pieces: Vec<Piece<T>>,
    ) -> Result<Vec<(AreaId, IovaRange)>, IovaSpaceError> {
        let mut total: u64 = 0;
        for piece in &pieces {
            total = total.checked_add(piece.length).ok_or(IovaSpaceError::Overflow {
                iova: match placement {
                    Placement::Fixed(iova) => iova.raw(),
                    Placement::Alloc => 0,
                },
                length: u64::MAX,
            })?;
        }
        if total == 0 {
            return Err(IovaSpaceError::ZeroLength);
        }
        self.check_aligned(Misalignment::Length, total)?;
        let start = match placement {
            Placement::Fixed(iova) => {
                self.check_fixed(iova, total)?;
                iova
            }
            Placement::Alloc => {
                let source = pieces.first().map(|p| p.source).unwrap_or_default();
                self.alloc_iova(source, total)?
            }
        };
        // Lay the pieces out; nothing is inserted before every piece passed.
        let mut ranges = Vec::with_capacity(pieces.len());
        let mut next = Some(start);
        for piece in &pieces {
            if piece.length == 0 {
                return Err(IovaSpaceError::ZeroLength);
            }
            self.check_aligned(Misalignment::PageOffset, piece.source.page_offset())?;
            let overflow = IovaSpaceError::Overflow {
                iova: start.raw(),
                length: total,
            };
            let at = next.ok_or(overflow)?;
            let range = IovaRange::from_start_len(at, piece.length).map_err(|_| overflow)?;
            next = range.end();
            ranges.push(range);
        }
        let mut out = Vec::with_capacity(pieces.len());
        for (piece, range) in pieces.into_iter().zip(ranges) {
            let id = self.add_area(range, piece.source.page_offset(), piece.payload);
            out.push((id, range));
        }
        Ok(out)
    }

    /// Removes every area inside `range` (`IOMMU_IOAS_UNMAP`): "The iova/length must be a superset
    /// of a previously mapped range used with IOMMU_IOAS_MAP or IOMMU_IOAS_COPY. Splitting or
    /// truncating ranges is not allowed."
    ///
    /// An area `range` only partly covers → [`SplitsArea`](IovaSpaceError::SplitsArea) (`ENOENT`);
    /// no area in `range` → [`NotMapped`](IovaSpaceError::NotMapped) (`ENOENT`). Either way nothing
    /// is removed. Answers the removed areas in IOVA order.
    pub fn remove_range(&mut self, range: IovaRange) -> Result<Vec<(AreaId, IovaRange, T)>, IovaSpaceError> {
        let mut starts = Vec::new();
        for (_, area, _) in self.areas_in(range) {
            if !range.contains_range(&area) {
                return Err(IovaSpaceError::SplitsArea { range, area });
            }
            starts.push(area.start());
        }
        if starts.is_empty() {
            return Err(IovaSpaceError::NotMapped { range });
        }
        Ok(starts.into_iter().filter_map(|s| self.take_area(s)).collect())
    }

    /// Removes every area ("The values 0 to U64_MAX will unmap everything"; succeeds on an empty
    /// space). Answers them in IOVA order.
    pub fn remove_all(&mut self) -> Vec<(AreaId, IovaRange, T)> {
        self.ids.clear();
        std::mem::take(&mut self.areas)
            .into_values()
            .map(|a| (a.id, a.range, a.payload))
            .collect()
    }

    /// Removes one area by id (Linux `iopt_abort_area`, for a mapping whose domain fill failed after
    /// its IOVA was claimed).
    pub fn remove_area(&mut self, id: AreaId) -> Option<(IovaRange, T)> {
        let start = *self.ids.get(&id)?;
        self.take_area(start).map(|(_, range, payload)| (range, payload))
    }

    /// Splits the area holding `iova` so that `iova` becomes the last byte of its left part (Linux
    /// `iopt_area_split`, used by VFIO type1 v1 unmaps through `iopt_cut_iova`).
    ///
    /// No area at `iova`, or `iova` is the first or last byte of its area → nothing to do, `None`.
    /// Otherwise the right part's first IOVA and its source offset must be multiples of the IOVA
    /// alignment (`EINVAL`). `split` gets the payload and the length of the left part, and answers
    /// the two payloads. Both parts get new ids; their page offsets follow the source.
    ///
    /// The callers' own refusals of `iopt_area_split` (`EBUSY` while the area is being
    /// populated, `EINVAL` with accesses or a huge-page-capable domain) belong before this call.
    pub fn cut(
        &mut self,
        iova: Iova,
        split: impl FnOnce(T, u64) -> (T, T),
    ) -> Result<Option<(AreaId, AreaId)>, IovaSpaceError> {
        let Some((_, range, _)) = self.area_at(iova) else {
            return Ok(None);
        };
        if iova == range.start() || iova == range.last() {
            return Ok(None);
        }
        let (Some(new_start), Some(old_offset)) = (
            iova.checked_add(1),
            self.areas.get(&range.start()).map(|a| a.page_offset),
        ) else {
            return Ok(None);
        };
        self.check_aligned(Misalignment::CutPoint, new_start.raw())?;
        let left_len = new_start.offset_from(range.start()).unwrap_or(0);
        let right_offset = (old_offset + left_len % PAGE_SIZE) % PAGE_SIZE;
        self.check_aligned(Misalignment::PageOffset, right_offset)?;
        let (Ok(left), Ok(right)) = (
            IovaRange::new(range.start(), iova),
            IovaRange::new(new_start, range.last()),
        ) else {
            return Ok(None);
        };
        let Some((_, _, payload)) = self.take_area(range.start()) else {
            return Ok(None);
        };
        let (left_payload, right_payload) = split(payload, left_len);
        let left_id = self.add_area(left, old_offset, left_payload);
        let right_id = self.add_area(right, right_offset, right_payload);
        Ok(Some((left_id, right_id)))
    }

    /// The area `id`.
    pub fn area(&self, id: AreaId) -> Option<(IovaRange, &T)> {
        let area = self.areas.get(self.ids.get(&id)?)?;
        Some((area.range, &area.payload))
    }

    /// The area `id`, with its payload writable.
    pub fn area_mut(&mut self, id: AreaId) -> Option<(IovaRange, &mut T)> {
        let area = self.areas.get_mut(self.ids.get(&id)?)?;
        Some((area.range, &mut area.payload))
    }

    /// The area holding `iova`.
    pub fn area_at(&self, iova: Iova) -> Option<(AreaId, IovaRange, &T)> {
        let (_, area) = self.areas.range(..=iova).next_back()?;
        area.range
            .contains(iova)
            .then_some((area.id, area.range, &area.payload))
    }

    /// The areas that intersect `range`, in IOVA order (whole areas, not clipped).
    pub fn areas_in(&self, range: IovaRange) -> impl Iterator<Item = (AreaId, IovaRange, &T)> + '_ {
        let first = self
            .areas
            .range(..range.start())
            .next_back()
            .filter(|(_, a)| a.range.last() >= range.start());
        first
            .into_iter()
            .chain(self.areas.range(range.start()..=range.last()))
            .map(|(_, a)| (a.id, a.range, &a.payload))
    }

    /// Every area, in IOVA order.
    pub fn areas(&self) -> impl Iterator<Item = (AreaId, IovaRange, &T)> + '_ {
        self.areas.values().map(|a| (a.id, a.range, &a.payload))
    }

    /// How many areas there are.
    pub fn area_count(&self) -> usize {
        self.areas.len()
    }

    /// Whether areas cover every byte of `range` without a gap (Linux `iopt_for_each_contig_area`
    /// followed by `iopt_area_contig_done`, which `IOMMU_IOAS_COPY` and access pinning need;
    /// `ENOENT` when not).
    pub fn is_contiguous_mapped(&self, range: IovaRange) -> bool {
        let mut cursor = range.start();
        loop {
            let Some((_, area, _)) = self.area_at(cursor) else {
                return false;
            };
            if area.last() >= range.last() {
                return true;
            }
            // `area.last() < range.last()`, so the next byte exists.
            match area.end() {
                Some(next) => cursor = next,
                None => return false,
            }
        }
    }

    // ----- allowed and reserved ranges ----------------------------------------------------------

    /// Replaces the allowed list (`IOMMU_IOAS_ALLOW_IOVAS`): "Ensure a range of IOVAs are always
    /// available for allocation. [...] This call replaces the entire allowed list with the given
    /// list." An empty list allows everything again.
    ///
    /// Refused, in the kernel's order: an entry with `start >= last` (`EINVAL`; Linux rejects
    /// one-byte entries too), an entry overlapping an earlier one (`EINVAL`), then any entry over a
    /// reserved range (`EADDRINUSE`: "This call will fail if IOMMU_IOAS_IOVA_RANGES is currently
    /// narrower than the given ranges"). Existing areas are not checked, as in Linux.
    pub fn set_allowed(&mut self, ranges: &[IovaRange]) -> Result<(), IovaSpaceError> {
        let mut sorted: BTreeMap<Iova, IovaRange> = BTreeMap::new();
        for &range in ranges {
            if range.start() >= range.last() {
                return Err(IovaSpaceError::AllowedInvalid {
                    start: range.start().raw(),
                    last: range.last().raw(),
                });
            }
            // The accepted ranges are disjoint, so the one starting last at or below `range.last()`
            // is the only candidate for an overlap.
            if let Some((_, &other)) = sorted.range(..=range.last()).next_back() {
                if other.overlaps(&range) {
                    return Err(IovaSpaceError::AllowedOverlap { range, other });
                }
            }
            sorted.insert(range.start(), range);
        }
        for range in sorted.values() {
            if let Some(reserved) = self.first_reserved_in(*range) {
                return Err(IovaSpaceError::AllowedReserved {
                    range: *range,
                    reserved,
                });
            }
        }
        self.allowed = sorted.into_values().collect();
        Ok(())
    }

    /// The allowed list, sorted by start (empty: everything is allowed).
    pub fn allowed(&self) -> &[IovaRange] {
        &self.allowed
    }

    /// Reserves `range` for `owner` (Linux `iopt_reserve_iova`: a device's reserved region such as
    /// an MSI window, or the outside of a domain's aperture). Refused with `EADDRINUSE` over a mapped
    /// area or over an allowed range ("When an allowed range is specified any narrowing will be
    /// refused"). Reservations may overlap each other.
    pub fn reserve(&mut self, range: IovaRange, owner: ReserveOwner) -> Result<(), IovaSpaceError> {
        if let Some((_, area, _)) = self.areas_in(range).next() {
            return Err(IovaSpaceError::ReserveMapped { range, area });
        }
        if let Some(&allowed) = self.allowed.iter().find(|a| a.overlaps(&range)) {
            return Err(IovaSpaceError::ReserveAllowed { range, allowed });
        }
        let at = self
            .reserved
            .partition_point(|r| r.range.start() <= range.start());
        self.reserved.insert(at, Reservation { range, owner });
        Ok(())
    }

    /// Drops every range `owner` reserved (Linux `iopt_remove_reserved_iova`).
    pub fn unreserve_owner(&mut self, owner: ReserveOwner) {
        self.reserved.retain(|r| r.owner != owner);
    }

    /// The reserved ranges with their owners, sorted by start.
    pub fn reserved(&self) -> impl Iterator<Item = (IovaRange, ReserveOwner)> + '_ {
        self.reserved.iter().map(|r| (r.range, r.owner))
    }

    /// The IOVA ranges `IOMMU_IOAS_IOVA_RANGES` reports: the holes between reserved ranges over the
    /// whole 64-bit space, sorted, maximal ("A fresh empty IOAS will have a full range, and each
    /// attached device will narrow the ranges based on that device's HW restrictions"). Allowed
    /// ranges do not narrow it, as in Linux's `iommufd_ioas_iova_ranges`.
    pub fn usable_ranges(&self) -> Vec<IovaRange> {
        let used = merge_touching(self.reserved.iter().map(|r| r.range));
        Holes::new(IovaRange::full(), used.into_iter()).collect()
    }

    // ----- alignment ----------------------------------------------------------------------------

    /// The IOVA alignment: "out_iova_alignment returns the minimum IOVA alignment that can be given
    /// to IOMMU_IOAS_MAP/COPY. [...] out_iova_alignment can be 1 indicating any IOVA is allowed."
    pub fn iova_alignment(&self) -> Alignment {
        self.iova_alignment
    }

    /// Whether every area meets `alignment` in its IOVA, its length and its source page offset
    /// (Linux `iopt_check_iova_alignment`; `EADDRINUSE` otherwise), and `alignment` is at most
    /// `PAGE_SIZE` ("It cannot be higher than the system PAGE_SIZE"; `EINVAL`).
    pub fn check_iova_alignment(&self, alignment: Alignment) -> Result<(), IovaSpaceError> {
        if alignment.bytes() > PAGE_SIZE {
            return Err(IovaSpaceError::AlignmentTooLarge(alignment.bytes()));
        }
        let mask = alignment.mask();
        for area in self.areas.values() {
            // `length & mask == 0` is `(length - 1) & mask == mask`, which also holds for 2^64 bytes.
            let length_aligned = area.range.len_minus_one() & mask == mask;
            if area.range.start().raw() & mask != 0 || !length_aligned || area.page_offset & mask != 0 {
                return Err(IovaSpaceError::AreaNotAligned {
                    area: area.range,
                    alignment: alignment.bytes(),
                });
            }
        }
        Ok(())
    }

    /// Sets the IOVA alignment, as attaching or detaching a domain, adding or removing an access,
    /// or `IOMMU_OPTION_HUGE_PAGES` do (Linux `iopt_table_add_domain`,
    /// `iopt_calculate_iova_alignment`): a raise is checked with
    /// [`check_iova_alignment`](Self::check_iova_alignment); a lowering always succeeds.
    pub fn set_iova_alignment(&mut self, alignment: Alignment) -> Result<(), IovaSpaceError> {
        if alignment.bytes() > PAGE_SIZE {
            return Err(IovaSpaceError::AlignmentTooLarge(alignment.bytes()));
        }
        if alignment > self.iova_alignment {
            self.check_iova_alignment(alignment)?;
        }
        self.iova_alignment = alignment;
        Ok(())
    }

    // ----- internals ----------------------------------------------------------------------------

    fn check_aligned(&self, what: Misalignment, value: u64) -> Result<(), IovaSpaceError> {
        if value & self.iova_alignment.mask() != 0 {
            return Err(IovaSpaceError::Misaligned {
                what,
                value,
                alignment: self.iova_alignment.bytes(),
            });
        }
        Ok(())
    }

    /// Linux `iopt_check_iova`.
    fn check_fixed(&self, iova: Iova, length: u64) -> Result<(), IovaSpaceError> {
        self.check_aligned(Misalignment::Iova, iova.raw())?;
        let range = IovaRange::from_start_len(iova, length).map_err(|_| IovaSpaceError::Overflow {
            iova: iova.raw(),
            length,
        })?;
        if let Some(reserved) = self.first_reserved_in(range) {
            return Err(IovaSpaceError::Reserved { range, reserved });
        }
        if let Some((_, area, _)) = self.areas_in(range).next() {
            return Err(IovaSpaceError::Exists { range, area });
        }
        Ok(())
    }

    fn first_reserved_in(&self, range: IovaRange) -> Option<IovaRange> {
        self.reserved.iter().map(|r| r.range).find(|r| r.overlaps(&range))
    }

    fn add_area(&mut self, range: IovaRange, page_offset: u64, payload: T) -> AreaId {
        let id = AreaId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        self.ids.insert(id, range.start());
        self.areas.insert(
            range.start(),
            Area {
                id,
                range,
                page_offset,
                payload,
            },
        );
        id
    }

    fn take_area(&mut self, start: Iova) -> Option<(AreaId, IovaRange, T)> {
        let area = self.areas.remove(&start)?;
        self.ids.remove(&area.id);
        Some((area.id, area.range, area.payload))
    }
}

fn first_of(mut areas: Vec<(AreaId, IovaRange)>) -> (AreaId, IovaRange) {
    // `insert` answers one entry per piece, and these callers pass exactly one piece.
    areas.swap_remove(0)
}
