//! Typed addresses, inclusive address ranges, access flags and page sizes.
//!
//! This crate models the *vocabulary* of an IOMMU system, nothing more: the address spaces a DMA
//! crosses (`Iova` as the device issues it, `Gpa` inside a guest, `Hpa` in the emulated host's
//! physical space, `HostVa` in this process), ranges over them with an inclusive `last` (so the last
//! page of the 64-bit space is expressible, as in Linux's `iommufd` `struct iopt_area`), the
//! permissions of an access, and the page sizes of the VT-d page-table format.
//!
//! House rules it enforces: addresses have no arithmetic operators, only checked methods; a range
//! cannot be empty, inverted or wrap past the end of its space. There is no `unsafe` here.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod addr;
mod range;

pub use addr::{Alignment, Gpa, HostVa, Hpa, Iova};
pub use range::{AddrRange, GpaRange, HpaRange, IovaRange, RangeAddr};

use bitflags::bitflags;

/// Errors from building typed addresses and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TypesError {
    /// A range of zero bytes was asked for; ranges here always hold at least one byte.
    #[error("empty range")]
    Empty,
    /// `last` lies below `start`.
    #[error("inverted range: start {start:#x} is above last {last:#x}")]
    Inverted {
        /// The requested first byte.
        start: u64,
        /// The requested last byte.
        last: u64,
    },
    /// `start + len - 1` does not fit in 64 bits.
    #[error("range of {len:#x} bytes at {start:#x} wraps past the end of the address space")]
    Wraps {
        /// The requested first byte.
        start: u64,
        /// The requested length in bytes.
        len: u64,
    },
    /// An alignment that is not a power of two.
    #[error("alignment {0:#x} is not a power of two")]
    NotPowerOfTwo(u64),
}

bitflags! {
    /// The permissions a DMA access needs, or a mapping grants.
    ///
    /// `EXEC` and `PRIV` exist for first-stage formats and PASID-tagged requests (execute-requested
    /// and privileged-mode requests in the VT-d and PCIe specs); the second-stage format ignores them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Access: u8 {
        /// Device reads memory.
        const READ = 1 << 0;
        /// Device writes memory.
        const WRITE = 1 << 1;
        /// Execute-requested access.
        const EXEC = 1 << 2;
        /// Privileged (supervisor) request.
        const PRIV = 1 << 3;
        /// Read and write.
        const RW = Self::READ.bits() | Self::WRITE.bits();
    }
}

/// A page size of the VT-d (and x86) page-table formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a leaf at level 1.
    Size4K,
    /// 2 MiB, a super-page at level 2.
    Size2M,
    /// 1 GiB, a super-page at level 3.
    Size1G,
}

impl PageSize {
    /// Every page size, smallest first.
    pub const ALL: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G];

    /// log2 of the size in bytes.
    pub const fn shift(self) -> u32 {
        match self {
            PageSize::Size4K => 12,
            PageSize::Size2M => 21,
            PageSize::Size1G => 30,
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// `bytes() - 1`: the mask of the offset within a page.
    pub const fn offset_mask(self) -> u64 {
        self.bytes() - 1
    }

    /// The page size of exactly `bytes` bytes, if there is one.
    pub const fn from_bytes(bytes: u64) -> Option<PageSize> {
        match bytes {
            0x1000 => Some(PageSize::Size4K),
            0x20_0000 => Some(PageSize::Size2M),
            0x4000_0000 => Some(PageSize::Size1G),
            _ => None,
        }
    }

    /// The matching single-bit set of [`PageSizes`].
    pub const fn as_set(self) -> PageSizes {
        match self {
            PageSize::Size4K => PageSizes::SZ_4K,
            PageSize::Size2M => PageSizes::SZ_2M,
            PageSize::Size1G => PageSizes::SZ_1G,
        }
    }
}

impl std::fmt::Display for PageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PageSize::Size4K => "4 KiB",
            PageSize::Size2M => "2 MiB",
            PageSize::Size1G => "1 GiB",
        })
    }
}

bitflags! {
    /// A set of page sizes, laid out as Linux's `pgsize_bitmap` (bit *n* set = pages of 2^n bytes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PageSizes: u64 {
        /// 4 KiB pages.
        const SZ_4K = 1 << 12;
        /// 2 MiB pages.
        const SZ_2M = 1 << 21;
        /// 1 GiB pages.
        const SZ_1G = 1 << 30;
    }
}

impl PageSizes {
    /// The largest size in the set with which a mapping of `iova → phys` for `len` bytes may start:
    /// both addresses aligned to it and at least one whole page of it in `len`. This is the choice
    /// Linux's `iommu_pgsize()` makes.
    pub fn largest_fitting(self, iova: u64, phys: u64, len: u64) -> Option<PageSize> {
        PageSize::ALL.into_iter().rev().find(|ps| {
            self.contains(ps.as_set()) && (iova | phys) & ps.offset_mask() == 0 && len >= ps.bytes()
        })
    }

    /// The smallest size in the set.
    pub fn smallest(self) -> Option<PageSize> {
        PageSize::ALL.into_iter().find(|ps| self.contains(ps.as_set()))
    }
}

impl Default for PageSizes {
    fn default() -> Self {
        PageSizes::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_roundtrip() {
        for ps in PageSize::ALL {
            assert_eq!(PageSize::from_bytes(ps.bytes()), Some(ps));
            assert_eq!(ps.as_set().bits(), ps.bytes());
        }
        assert_eq!(PageSize::from_bytes(0x3000), None);
    }

    #[test]
    fn largest_fitting_follows_alignment_and_length() {
        let all = PageSizes::all();
        assert_eq!(all.largest_fitting(0, 0, 1 << 30), Some(PageSize::Size1G));
        assert_eq!(all.largest_fitting(0, 0x20_0000, 1 << 30), Some(PageSize::Size2M));
        assert_eq!(all.largest_fitting(0x1000, 0, 1 << 30), Some(PageSize::Size4K));
        assert_eq!(all.largest_fitting(0, 0, (1 << 30) - 1), Some(PageSize::Size2M));
        assert_eq!(all.largest_fitting(0, 0, 0xfff), None);
        assert_eq!(
            PageSizes::SZ_4K.largest_fitting(0, 0, 1 << 30),
            Some(PageSize::Size4K)
        );
        assert_eq!(PageSizes::SZ_2M.smallest(), Some(PageSize::Size2M));
    }
}
