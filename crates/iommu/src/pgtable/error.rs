//! Errors of the page-table writers and of the walker.

use super::TableAllocError;
use uvfio_types::{Hpa, Iova, IovaRange, PageSizes};

/// Why a page-table operation was refused or failed. A failed operation changed nothing.
///
/// Checks run in this order: `Empty`, `Misaligned`/`MisalignedRange`, `BeyondAddressWidth`,
/// `HpaOutOfRange`, `NoPermission`, then `Exists`, then `Alloc`.
#[derive(Debug, thiserror::Error)]
pub enum PgTableError {
    /// A map of zero bytes.
    #[error("map of zero bytes")]
    Empty,
    /// The IOVA, HPA or length of a map is not a multiple of the smallest page size.
    #[error("map of {len:#x} bytes at {iova} -> {hpa} is not aligned to {align:#x}")]
    Misaligned {
        /// The requested IOVA.
        iova: Iova,
        /// The requested HPA.
        hpa: Hpa,
        /// The requested length in bytes.
        len: u64,
        /// The required alignment (the smallest page size).
        align: u64,
    },
    /// An unmap range whose start or end is not a multiple of the smallest page size.
    #[error("unmap range {range} is not aligned to {align:#x}")]
    MisalignedRange {
        /// The requested range.
        range: IovaRange,
        /// The required alignment (the smallest page size).
        align: u64,
    },
    /// The range reaches past the IOVA width of the tables (or past the end of the 64-bit space).
    #[error("range starting at {start} reaches beyond the {width}-bit IOVA width")]
    BeyondAddressWidth {
        /// The first IOVA of the requested range.
        start: Iova,
        /// The IOVA width in bits.
        width: u32,
    },
    /// The HPA range does not fit the 52-bit address field of an entry.
    #[error("{len:#x} bytes at {hpa} do not fit the 52-bit address field")]
    HpaOutOfRange {
        /// The requested HPA.
        hpa: Hpa,
        /// The requested length in bytes.
        len: u64,
    },
    /// Neither read nor write permission was asked for.
    #[error("a mapping must allow reads or writes")]
    NoPermission,
    /// Part of the range is already mapped (`EEXIST`).
    #[error("{iova} is already mapped")]
    Exists {
        /// An IOVA inside the requested range that is mapped.
        iova: Iova,
    },
    /// No frame for a page table (`ENOMEM`).
    #[error("page-table frame allocation failed")]
    Alloc(#[from] TableAllocError),
    /// The memory does not know the page sizes asked for in the configuration.
    #[error("unsupported page-size set {sizes:?}")]
    UnsupportedPageSizes {
        /// The requested set.
        sizes: PageSizes,
    },
    /// An entry points to an HPA where the memory has no table frame: the tables are corrupt.
    #[error("no page-table frame at {table}")]
    BadTable {
        /// The HPA found in the entry.
        table: Hpa,
    },
}

/// Why a walk found no translation; a hardware IOMMU reports these as translation faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WalkError {
    /// The entry at `level` is not present (neither `R` nor `W`).
    #[error("entry not present at level {level}")]
    NotPresent {
        /// The level of the non-present entry (1 = 4 KiB leaf level).
        level: u8,
    },
    /// The IOVA has bits set above the address width.
    #[error("IOVA beyond the address width")]
    BeyondAddressWidth,
    /// The table at `level` is not a page-table frame, or its entry is malformed (`PS` set at a
    /// level that cannot hold a super-page).
    #[error("bad page-table entry or frame at level {level}")]
    BadTable {
        /// The level of the bad table.
        level: u8,
    },
}
