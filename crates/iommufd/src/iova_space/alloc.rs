//! Span walks over sorted ranges and the IOVA allocator (Linux `iopt_alloc_iova`).

use super::{IovaSpace, IovaSpaceError, MAX_ALLOC_ALIGNMENT, PAGE_SIZE, SourceAddr};
use std::iter::Peekable;
use uvfio_types::{Iova, IovaRange};

/// Two iterators of ranges, each sorted by start, merged into one sorted by start.
pub(super) struct MergeByStart<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<A, B> MergeByStart<A, B>
where
    A: Iterator<Item = IovaRange>,
    B: Iterator<Item = IovaRange>,
{
    pub(super) fn new(a: A, b: B) -> Self {
        MergeByStart {
            a: a.peekable(),
            b: b.peekable(),
        }
    }
}

impl<A, B> Iterator for MergeByStart<A, B>
where
    A: Iterator<Item = IovaRange>,
    B: Iterator<Item = IovaRange>,
{
    type Item = IovaRange;

    fn next(&mut self) -> Option<IovaRange> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.start() < x.start() => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// The holes of `window` left by `used`: the maximal runs of bytes no range of `used` covers, in
/// order (Linux `interval_tree_span_iter` / `interval_tree_double_span_iter`, `is_hole` spans).
///
/// `used` must be sorted by start; its ranges may overlap, touch, or stick out of the window.
pub(super) struct Holes<I> {
    used: I,
    /// The first byte not yet known to be used; `None` once the walk is past `last`.
    cursor: Option<Iova>,
    last: Iova,
}

impl<I: Iterator<Item = IovaRange>> Holes<I> {
    pub(super) fn new(window: IovaRange, used: I) -> Self {
        Holes {
            used,
            cursor: Some(window.start()),
            last: window.last(),
        }
    }
}

impl<I: Iterator<Item = IovaRange>> Iterator for Holes<I> {
    type Item = IovaRange;

    fn next(&mut self) -> Option<IovaRange> {
        loop {
            let cursor = self.cursor.filter(|c| *c <= self.last)?;
            let Some(used) = self.used.next() else {
                self.cursor = None;
                return IovaRange::new(cursor, self.last).ok();
            };
            if used.last() < cursor {
                continue;
            }
            // Past the used range; `None` when it ends on the last byte of the space.
            self.cursor = used.end();
            if used.start() > self.last {
                self.cursor = None;
                return IovaRange::new(cursor, self.last).ok();
            }
            if used.start() > cursor {
                // `used.start() > cursor >= 0`, so the byte before it exists.
                let hole_last = used.start().checked_sub(1)?;
                return IovaRange::new(cursor, hole_last).ok();
            }
        }
    }
}

/// Ranges sorted by start, with overlapping and touching ones merged (the `is_used` spans of Linux's
/// `interval_tree_span_iter`).
pub(super) fn merge_touching(sorted: impl Iterator<Item = IovaRange>) -> Vec<IovaRange> {
    let mut out: Vec<IovaRange> = Vec::new();
    for r in sorted {
        if let Some(prev) = out.last_mut() {
            // Touching: `prev.end() == r.start()`; a `prev` that ends at the top absorbs everything.
            let joins = match prev.end() {
                None => true,
                Some(end) => r.start() <= end,
            };
            if joins {
                if r.last() > prev.last() {
                    if let Ok(joined) = IovaRange::new(prev.start(), r.last()) {
                        *prev = joined;
                    }
                }
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// Linux `__alloc_iova_check_range`: rounds `start` up to `alignment`, ORs in `page_offset`, and
/// answers the result if `length` bytes from there fit up to `last`.
///
/// Faithful to the kernel's comparison `aligned_start >= last`, which also refuses a one-byte
/// allocation into a one-byte hole.
fn check_range(start: Iova, last: Iova, length: u64, alignment: u64, page_offset: u64) -> Option<Iova> {
    let mask = alignment.checked_sub(1)?;
    let aligned = (start.raw().checked_add(mask)? & !mask) | page_offset;
    let minus_one = length.checked_sub(1)?;
    if aligned >= last.raw() || last.raw() - aligned < minus_one {
        return None;
    }
    Some(Iova::new(aligned))
}

/// The IOVA alignment `iopt_alloc_iova` picks for `length` bytes from `source`: "Keep alignment
/// present in addr when building the IOVA, which increases the chance we can map a THP", capped at
/// the huge-page size to "Protect against ALIGN() overflow". `length` must be below `2^63`.
pub(super) fn alloc_alignment(source: SourceAddr, length: u64) -> u64 {
    let rounded = length.checked_next_power_of_two().unwrap_or(MAX_ALLOC_ALIGNMENT);
    let alignment = match source.raw() {
        0 => rounded,
        addr => rounded.min(1u64 << addr.trailing_zeros()),
    };
    alignment.min(MAX_ALLOC_ALIGNMENT)
}

impl<T> IovaSpace<T> {
    /// The IOVA ranges automatic allocation may use before areas and reservations are subtracted:
    /// the allowed ranges (merged where they touch) or, when none are set, everything; in both
    /// cases clipped to `[PAGE_SIZE, ULONG_MAX - PAGE_SIZE]` ("Does not return a 0 IOVA even if it
    /// is valid").
    fn alloc_windows(&self) -> Vec<IovaRange> {
        let Ok(bounds) = IovaRange::new(Iova::new(PAGE_SIZE), Iova::new(u64::MAX - PAGE_SIZE)) else {
            return Vec::new();
        };
        if self.allowed.is_empty() {
            return vec![bounds];
        }
        merge_touching(self.allowed.iter().copied())
            .iter()
            .filter_map(|r| r.intersection(&bounds))
            .collect()
    }

    /// What is in the way of an allocation inside `window`: reservations and areas, sorted by start.
    fn used_in(&self, window: IovaRange) -> impl Iterator<Item = IovaRange> + '_ {
        let reserved = self
            .reserved
            .iter()
            .map(|r| r.range)
            .filter(move |r| r.overlaps(&window));
        let areas = self.areas_in(window).map(|(_, range, _)| range);
        MergeByStart::new(reserved, areas)
    }

    /// Linux `iopt_alloc_iova`: the first IOVA, walking the allowed ranges upwards, where `length`
    /// bytes fit between reservations and areas, aligned as [`alloc_alignment`] says with the
    /// source's page offset ORed in.
    pub(super) fn alloc_iova(&self, source: SourceAddr, length: u64) -> Result<Iova, IovaSpaceError> {
        // "Protect roundup_pow-of_two() from overflow"
        if length == 0 || length >= u64::MAX / 2 {
            return Err(IovaSpaceError::TooLong { length });
        }
        let alignment = alloc_alignment(source, length);
        let required = self.iova_alignment.bytes();
        if alignment < required {
            return Err(IovaSpaceError::SourceAlignment { alignment, required });
        }
        let page_offset = source.page_offset();
        for window in self.alloc_windows() {
            let Some(start) = check_range(window.start(), window.last(), length, alignment, page_offset)
            else {
                continue;
            };
            let Ok(window) = IovaRange::new(start, window.last()) else {
                continue;
            };
            for hole in Holes::new(window, self.used_in(window)) {
                if let Some(iova) = check_range(hole.start(), hole.last(), length, alignment, page_offset) {
                    return Ok(iova);
                }
            }
        }
        Err(IovaSpaceError::NoSpace { length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, last: u64) -> IovaRange {
        IovaRange::new(Iova::new(start), Iova::new(last)).unwrap()
    }

    #[test]
    fn holes_skip_overlapping_touching_and_outside_ranges() {
        let used = [r(0, 9), r(5, 19), r(20, 29), r(40, 49), r(45, 45), r(100, 200)];
        let holes: Vec<_> = Holes::new(r(10, 120), used.into_iter()).collect();
        assert_eq!(holes, vec![r(30, 39), r(50, 99)]);
        let holes: Vec<_> = Holes::new(r(0, u64::MAX), std::iter::empty()).collect();
        assert_eq!(holes, vec![r(0, u64::MAX)]);
        let holes: Vec<_> = Holes::new(r(0, u64::MAX), [r(0, u64::MAX - 1)].into_iter()).collect();
        assert_eq!(holes, vec![r(u64::MAX, u64::MAX)]);
        let holes: Vec<_> = Holes::new(r(0, u64::MAX), [r(1, u64::MAX)].into_iter()).collect();
        assert_eq!(holes, vec![r(0, 0)]);
        let holes: Vec<_> = Holes::new(r(5, 6), [r(0, u64::MAX)].into_iter()).collect();
        assert!(holes.is_empty());
    }

    #[test]
    fn merge_by_start_and_touching() {
        let merged: Vec<_> = MergeByStart::new([r(0, 1), r(10, 11)].into_iter(), [r(5, 6)].into_iter())
            .map(|x| x.start().raw())
            .collect();
        assert_eq!(merged, vec![0, 5, 10]);
        assert_eq!(
            merge_touching([r(0, 9), r(10, 19), r(21, 30), r(25, 26)].into_iter()),
            vec![r(0, 19), r(21, 30)]
        );
        assert_eq!(
            merge_touching([r(0, u64::MAX), r(5, 6)].into_iter()),
            vec![r(0, u64::MAX)]
        );
    }

    #[test]
    fn check_range_follows_the_kernel() {
        let at = |s, l, len, a, po| check_range(Iova::new(s), Iova::new(l), len, a, po).map(Iova::raw);
        assert_eq!(at(0x1001, 0x3fff, 0x1000, 0x1000, 0), Some(0x2000));
        assert_eq!(at(0x1001, 0x2fff, 0x1000, 0x1000, 0), Some(0x2000));
        assert_eq!(at(0x1001, 0x2ffe, 0x1000, 0x1000, 0), None);
        // The page offset is ORed into the aligned start.
        assert_eq!(at(0x1000, 0x3fff, 0x800, 0x800, 0x800), Some(0x1800));
        // `aligned >= last` refuses a one-byte hole even for one byte.
        assert_eq!(at(7, 7, 1, 1, 0), None);
        assert_eq!(at(7, 8, 1, 1, 0), Some(7));
        // Rounding up past the top of the space.
        assert_eq!(at(u64::MAX - 5, u64::MAX, 2, 0x1000, 0), None);
    }

    #[test]
    fn alignment_from_source_and_length() {
        assert_eq!(alloc_alignment(SourceAddr::new(0), 0x3000), 0x4000);
        assert_eq!(alloc_alignment(SourceAddr::new(0x1000), 0x3000), 0x1000);
        assert_eq!(alloc_alignment(SourceAddr::new(0x8000_0000), 0x3000), 0x4000);
        assert_eq!(alloc_alignment(SourceAddr::new(0), 1 << 40), MAX_ALLOC_ALIGNMENT);
        assert_eq!(alloc_alignment(SourceAddr::new(0x1234), 0x1000), 4);
        assert_eq!(alloc_alignment(SourceAddr::new(0), 1), 1);
    }
}
