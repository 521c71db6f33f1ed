//! Inclusive address ranges `[start, last]`.
//!
//! `last` is inclusive, as in Linux's interval trees (`iopt_area`'s `node.start` / `node.last`), so
//! a range can end on the last byte of the 64-bit space. A range is never empty and never wraps.

use crate::{Alignment, Gpa, Hpa, Iova, PageSize, TypesError};

/// The operations a range needs from its address type.
pub trait RangeAddr: Copy + Ord + std::fmt::Debug {
    /// The raw number.
    fn raw(self) -> u64;
    /// From a raw number.
    fn from_raw(raw: u64) -> Self;
}

macro_rules! range_addr {
    ($($t:ty),*) => {$(
        impl RangeAddr for $t {
            fn raw(self) -> u64 {
                <$t>::raw(self)
            }
            fn from_raw(raw: u64) -> Self {
                <$t>::new(raw)
            }
        }
    )*};
}
range_addr!(Iova, Gpa, Hpa);

/// A non-empty, non-wrapping range of addresses with an inclusive `last`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrRange<A> {
    start: A,
    last: A,
}

/// A range of I/O virtual addresses.
pub type IovaRange = AddrRange<Iova>;
/// A range of guest physical addresses.
pub type GpaRange = AddrRange<Gpa>;
/// A range of host physical addresses.
pub type HpaRange = AddrRange<Hpa>;

impl<A: RangeAddr> AddrRange<A> {
    /// `[start, last]`; fails if `last < start`.
    pub fn new(start: A, last: A) -> Result<Self, TypesError> {
        if last < start {
            return Err(TypesError::Inverted {
                start: start.raw(),
                last: last.raw(),
            });
        }
        Ok(AddrRange { start, last })
    }

    /// The `len` bytes from `start`; fails for `len == 0` or a range that would wrap.
    pub fn from_start_len(start: A, len: u64) -> Result<Self, TypesError> {
        let minus_one = len.checked_sub(1).ok_or(TypesError::Empty)?;
        let last = start.raw().checked_add(minus_one).ok_or(TypesError::Wraps {
            start: start.raw(),
            len,
        })?;
        Ok(AddrRange {
            start,
            last: A::from_raw(last),
        })
    }

    /// The whole 64-bit space.
    pub fn full() -> Self {
        AddrRange {
            start: A::from_raw(0),
            last: A::from_raw(u64::MAX),
        }
    }

    /// The first byte.
    pub fn start(&self) -> A {
        self.start
    }

    /// The last byte (inclusive).
    pub fn last(&self) -> A {
        self.last
    }

    /// The first byte past the range, or `None` when the range ends at the top of the space.
    pub fn end(&self) -> Option<A> {
        self.last.raw().checked_add(1).map(A::from_raw)
    }

    /// The length in bytes, or `None` for the full 64-bit space (2^64 bytes).
    pub fn len(&self) -> Option<u64> {
        (self.last.raw() - self.start.raw()).checked_add(1)
    }

    /// Always false: a range holds at least one byte. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `last - start`, which always fits.
    pub fn len_minus_one(&self) -> u64 {
        self.last.raw() - self.start.raw()
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: A) -> bool {
        self.start <= addr && addr <= self.last
    }

    /// Whether `other` lies wholly inside.
    pub fn contains_range(&self, other: &Self) -> bool {
        self.start <= other.start && other.last <= self.last
    }

    /// Whether the two share at least one byte.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start <= other.last && other.start <= self.last
    }

    /// The bytes the two share.
    pub fn intersection(&self, other: &Self) -> Option<Self> {
        let start = self.start.max(other.start);
        let last = self.last.min(other.last);
        (start <= last).then_some(AddrRange { start, last })
    }

    /// How far `addr` lies above `start`, if it lies inside.
    pub fn offset_of(&self, addr: A) -> Option<u64> {
        self.contains(addr).then(|| addr.raw() - self.start.raw())
    }

    /// Whether both ends sit on `align` boundaries (`start` aligned, `last + 1` aligned).
    pub fn is_aligned(&self, align: impl Into<Alignment>) -> bool {
        let mask = align.into().mask();
        self.start.raw() & mask == 0 && self.last.raw() & mask == mask
    }

    /// The same length at another start; fails if it would wrap.
    pub fn with_start<B: RangeAddr>(&self, start: B) -> Result<AddrRange<B>, TypesError> {
        let last = start
            .raw()
            .checked_add(self.len_minus_one())
            .ok_or(TypesError::Wraps {
                start: start.raw(),
                len: self.len_minus_one().wrapping_add(1),
            })?;
        Ok(AddrRange {
            start,
            last: B::from_raw(last),
        })
    }

    /// The pages of size `ps` the range touches, as the start address of each page.
    pub fn pages(&self, ps: PageSize) -> impl Iterator<Item = A> + use<A> {
        let first = self.start.raw() >> ps.shift();
        let last = self.last.raw() >> ps.shift();
        (first..=last).map(move |n| A::from_raw(n << ps.shift()))
    }
}

impl<A: RangeAddr> std::fmt::Debug for AddrRange<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:#x}, {:#x}]", self.start.raw(), self.last.raw())
    }
}

impl<A: RangeAddr> std::fmt::Display for AddrRange<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:#x}, {:#x}]", self.start.raw(), self.last.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constructors_reject_empty_inverted_and_wrapping() {
        assert_eq!(
            IovaRange::from_start_len(Iova::new(0x1000), 0),
            Err(TypesError::Empty)
        );
        assert_eq!(
            IovaRange::from_start_len(Iova::new(u64::MAX), 2),
            Err(TypesError::Wraps {
                start: u64::MAX,
                len: 2
            })
        );
        assert_eq!(
            IovaRange::new(Iova::new(2), Iova::new(1)),
            Err(TypesError::Inverted { start: 2, last: 1 })
        );
        let top = IovaRange::from_start_len(Iova::new(u64::MAX - 0xfff), 0x1000).unwrap();
        assert_eq!(top.last(), Iova::MAX);
        assert_eq!(top.end(), None);
        assert_eq!(top.len(), Some(0x1000));
        assert_eq!(IovaRange::full().len(), None);
        assert!(top.is_aligned(PageSize::Size4K));
    }

    #[test]
    fn pages_cover_partial_ends() {
        let r = IovaRange::new(Iova::new(0xfff), Iova::new(0x2000)).unwrap();
        let pages: Vec<_> = r.pages(PageSize::Size4K).collect();
        assert_eq!(pages, vec![Iova::new(0), Iova::new(0x1000), Iova::new(0x2000)]);
        let top = IovaRange::new(Iova::new(u64::MAX - 0x1fff), Iova::MAX).unwrap();
        assert_eq!(top.pages(PageSize::Size4K).count(), 2);
    }

    proptest! {
        #[test]
        fn intersection_matches_pointwise(a in any::<u64>(), al in 0u64..1 << 20, b in any::<u64>(), bl in 0u64..1 << 20) {
            let (Ok(x), Ok(y)) = (
                IovaRange::from_start_len(Iova::new(a), al + 1),
                IovaRange::from_start_len(Iova::new(b), bl + 1),
            ) else { return Ok(()); };
            let i = x.intersection(&y);
            prop_assert_eq!(i.is_some(), x.overlaps(&y));
            if let Some(i) = i {
                prop_assert!(x.contains_range(&i) && y.contains_range(&i));
                prop_assert!(x.contains(i.start()) && y.contains(i.last()));
            }
        }

        #[test]
        fn from_start_len_is_checked(start in any::<u64>(), len in any::<u64>()) {
            match IovaRange::from_start_len(Iova::new(start), len) {
                Ok(r) => {
                    prop_assert_eq!(r.start().raw(), start);
                    prop_assert_eq!(r.len_minus_one(), len - 1);
                }
                Err(TypesError::Empty) => prop_assert_eq!(len, 0),
                Err(TypesError::Wraps { .. }) => prop_assert!(start.checked_add(len - 1).is_none()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
