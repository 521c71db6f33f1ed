//! Address newtypes: no arithmetic operators, only checked methods.

use crate::{PageSize, TypesError};
use std::num::NonZeroU64;

/// A power-of-two alignment in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alignment(NonZeroU64);

impl Alignment {
    /// `bytes` as an alignment; `bytes` must be a power of two.
    pub const fn new(bytes: u64) -> Result<Self, TypesError> {
        match NonZeroU64::new(bytes) {
            Some(nz) if bytes.is_power_of_two() => Ok(Alignment(nz)),
            _ => Err(TypesError::NotPowerOfTwo(bytes)),
        }
    }

    /// The alignment in bytes.
    pub const fn bytes(self) -> u64 {
        self.0.get()
    }

    /// `bytes() - 1`.
    pub const fn mask(self) -> u64 {
        self.0.get() - 1
    }
}

impl From<PageSize> for Alignment {
    fn from(ps: PageSize) -> Self {
        // `PageSize::bytes` is a non-zero power of two for every variant, so the fallback is unused.
        Alignment(NonZeroU64::new(ps.bytes()).unwrap_or(NonZeroU64::MIN))
    }
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The lowest address.
            pub const ZERO: $name = $name(0);
            /// The highest address of the 64-bit space.
            pub const MAX: $name = $name(u64::MAX);

            /// The address `raw`.
            pub const fn new(raw: u64) -> Self {
                $name(raw)
            }

            /// The address as a plain number, for encoding into a table entry or a uAPI struct.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// `self + bytes`, or `None` past the end of the space.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some($name(v)),
                    None => None,
                }
            }

            /// `self - bytes`, or `None` below zero.
            pub const fn checked_sub(self, bytes: u64) -> Option<Self> {
                match self.0.checked_sub(bytes) {
                    Some(v) => Some($name(v)),
                    None => None,
                }
            }

            /// How far `self` lies above `base`, or `None` if it lies below.
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Rounded down to `align`.
            pub fn align_down(self, align: impl Into<Alignment>) -> Self {
                $name(self.0 & !align.into().mask())
            }

            /// Rounded up to `align`, or `None` past the end of the space.
            pub fn align_up(self, align: impl Into<Alignment>) -> Option<Self> {
                let mask = align.into().mask();
                self.0.checked_add(mask).map(|v| $name(v & !mask))
            }

            /// Whether `self` is a multiple of `align`.
            pub fn is_aligned(self, align: impl Into<Alignment>) -> bool {
                self.0 & align.into().mask() == 0
            }

            /// The offset of `self` within its page of size `ps`.
            pub const fn page_offset(self, ps: PageSize) -> u64 {
                self.0 & ps.offset_mask()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl std::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// An I/O virtual address: what a device puts on the bus, translated by the IOMMU.
    Iova
);
address_type!(
    /// A guest physical address: the output of stage 1 and the input of stage 2 in nested translation.
    Gpa
);
address_type!(
    /// A host physical address in the emulated host's synthetic physical space.
    Hpa
);
address_type!(
    /// A virtual address in this process, as a driver hands one to `IOMMU_IOAS_MAP`.
    HostVa
);

impl HostVa {
    /// The address of a pointer (no provenance is kept: turning it back into a pointer is the
    /// business of a `sys` module that knows which mapping it lies in).
    pub fn from_ptr<T>(ptr: *const T) -> Self {
        HostVa(ptr.addr() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_stops_at_the_edges() {
        assert_eq!(Iova::MAX.checked_add(1), None);
        assert_eq!(Iova::ZERO.checked_sub(1), None);
        assert_eq!(Iova::new(0x1000).checked_add(0x1000), Some(Iova::new(0x2000)));
        assert_eq!(Iova::new(0x1000).offset_from(Iova::new(0x2000)), None);
        assert_eq!(Iova::new(0x2010).offset_from(Iova::new(0x2000)), Some(0x10));
    }

    #[test]
    fn alignment_helpers() {
        let a = Hpa::new(0x20_1234);
        assert_eq!(a.align_down(PageSize::Size4K), Hpa::new(0x20_1000));
        assert_eq!(a.align_down(PageSize::Size2M), Hpa::new(0x20_0000));
        assert_eq!(a.align_up(PageSize::Size2M), Some(Hpa::new(0x40_0000)));
        assert_eq!(Hpa::MAX.align_up(PageSize::Size4K), None);
        assert!(Hpa::new(0x4000_0000).is_aligned(PageSize::Size1G));
        assert!(!a.is_aligned(PageSize::Size4K));
        assert_eq!(a.page_offset(PageSize::Size4K), 0x234);
        assert_eq!(Alignment::new(3), Err(TypesError::NotPowerOfTwo(3)));
        assert_eq!(Alignment::new(0), Err(TypesError::NotPowerOfTwo(0)));
        for ps in PageSize::ALL {
            assert_eq!(Alignment::from(ps).bytes(), ps.bytes());
        }
    }

    #[test]
    fn formatting_is_hex() {
        assert_eq!(format!("{:?}", Iova::new(0x1000)), "Iova(0x1000)");
        assert_eq!(format!("{}", Gpa::new(0xabc)), "0xabc");
    }
}
