//! [`IovaSpaceError`] and its one errno boundary.

use rustix::io::Errno;
use uvfio_types::IovaRange;

/// Which number broke the IOVA alignment rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Misalignment {
    /// The length of a mapping (`iopt_alloc_area_pages`: `length & (iova_alignment - 1)`).
    Length,
    /// The start of a fixed mapping (`iopt_check_iova`: `iova & (iova_alignment - 1)`).
    Iova,
    /// The offset of the source inside its page (`iopt_insert_area`: `area->page_offset &
    /// (iova_alignment - 1)`), for a new area or for the right half of a cut.
    PageOffset,
    /// The first IOVA of the right half of a cut (`iopt_area_split`: `new_start & (alignment - 1)`).
    CutPoint,
}

impl std::fmt::Display for Misalignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Misalignment::Length => "length",
            Misalignment::Iova => "IOVA",
            Misalignment::PageOffset => "page offset",
            Misalignment::CutPoint => "cut point",
        })
    }
}

/// Why an [`IovaSpace`](super::IovaSpace) operation was refused. Every refusal leaves the space as it
/// was; [`errno`](Self::errno) gives what Linux's `io_pagetable.c` / `ioas.c` return for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IovaSpaceError {
    /// A mapping (or one piece of it) of zero bytes, or an unmap of zero bytes.
    #[error("zero-length range")]
    ZeroLength,
    /// A length, IOVA or source page offset that is not a multiple of the IOVA alignment.
    #[error("{what} {value:#x} is not a multiple of the IOVA alignment {alignment:#x}")]
    Misaligned {
        /// Which number.
        what: Misalignment,
        /// Its value.
        value: u64,
        /// The IOAS's alignment at the time.
        alignment: u64,
    },
    /// `iova + length - 1` does not fit in 64 bits (`check_add_overflow` → `EOVERFLOW`).
    #[error("{length:#x} bytes at {iova:#x} run past the end of the IOVA space")]
    Overflow {
        /// The requested start.
        iova: u64,
        /// The requested length.
        length: u64,
    },
    /// An IOVA allocation of `ULONG_MAX / 2` bytes or more (`iopt_alloc_iova`: "Protect
    /// roundup_pow-of_two() from overflow").
    #[error("cannot allocate IOVA for {length:#x} bytes")]
    TooLong {
        /// The requested length.
        length: u64,
    },
    /// The alignment an allocated IOVA would get from the source address and the length is below
    /// the IOAS's alignment (`iopt_alloc_iova`: `iova_alignment < iopt->iova_alignment`).
    #[error("the source allows IOVA alignment {alignment:#x}, the IOAS needs {required:#x}")]
    SourceAlignment {
        /// The alignment derived from the source address and the length.
        alignment: u64,
        /// The IOAS's alignment.
        required: u64,
    },
    /// A fixed mapping over a reserved range (`iopt_check_iova`: "No reserved IOVA intersects the
    /// range" → `EINVAL`).
    #[error("{range} intersects the reserved range {reserved}")]
    Reserved {
        /// The requested range.
        range: IovaRange,
        /// The first reserved range it meets.
        reserved: IovaRange,
    },
    /// A fixed mapping over an existing area: "the iova range must currently be unused, existing
    /// IOVA cannot be replaced" (`EEXIST`).
    #[error("{range} intersects the mapped area {area}")]
    Exists {
        /// The requested range.
        range: IovaRange,
        /// The first area it meets.
        area: IovaRange,
    },
    /// No free IOVA range fits (`iopt_alloc_iova` → `ENOSPC`).
    #[error("no free IOVA range for {length:#x} bytes")]
    NoSpace {
        /// The requested length.
        length: u64,
    },
    /// An unmap of a range that holds no area (`IOMMU_IOAS_UNMAP` → `ENOENT`).
    #[error("nothing is mapped in {range}")]
    NotMapped {
        /// The requested range.
        range: IovaRange,
    },
    /// An unmap that would split an area: "Splitting or truncating ranges is not allowed"
    /// (`iopt_unmap_iova_range` → `ENOENT`).
    #[error("{range} would split the mapped area {area}")]
    SplitsArea {
        /// The requested range.
        range: IovaRange,
        /// The first area it cuts.
        area: IovaRange,
    },
    /// An allowed range with `start >= last` (`iommufd_ioas_load_iovas` → `EINVAL`). Holds raw
    /// numbers so that the uAPI layer can report an inverted pair with the same error.
    #[error("allowed range [{start:#x}, {last:#x}] is empty or inverted")]
    AllowedInvalid {
        /// `start` as given.
        start: u64,
        /// `last` as given.
        last: u64,
    },
    /// Two allowed ranges of one `IOMMU_IOAS_ALLOW_IOVAS` call overlap (`EINVAL`).
    #[error("allowed ranges {range} and {other} overlap")]
    AllowedOverlap {
        /// The later entry.
        range: IovaRange,
        /// The earlier entry it overlaps.
        other: IovaRange,
    },
    /// An allowed range over a reserved range (`iopt_set_allow_iova` → `EADDRINUSE`).
    #[error("allowed range {range} intersects the reserved range {reserved}")]
    AllowedReserved {
        /// The allowed range.
        range: IovaRange,
        /// The reserved range it meets.
        reserved: IovaRange,
    },
    /// A reservation over a mapped area (`iopt_reserve_iova` → `EADDRINUSE`).
    #[error("reserving {range} would cover the mapped area {area}")]
    ReserveMapped {
        /// The range to reserve.
        range: IovaRange,
        /// The first area it meets.
        area: IovaRange,
    },
    /// A reservation over an allowed range (`iopt_reserve_iova` → `EADDRINUSE`): "When an allowed
    /// range is specified any narrowing will be refused".
    #[error("reserving {range} would narrow the allowed range {allowed}")]
    ReserveAllowed {
        /// The range to reserve.
        range: IovaRange,
        /// The first allowed range it meets.
        allowed: IovaRange,
    },
    /// An IOVA alignment above `PAGE_SIZE` (`iopt_table_add_domain` → `EINVAL`): "A iommu_domain
    /// must always be able to accept PAGE_SIZE to be compatible".
    #[error("IOVA alignment {0:#x} is above PAGE_SIZE")]
    AlignmentTooLarge(u64),
    /// A raised IOVA alignment that an existing area does not meet (`iopt_check_iova_alignment` →
    /// `EADDRINUSE`).
    #[error("the mapped area {area} does not meet the IOVA alignment {alignment:#x}")]
    AreaNotAligned {
        /// The first such area.
        area: IovaRange,
        /// The alignment asked for.
        alignment: u64,
    },
}

impl IovaSpaceError {
    /// The errno Linux returns for the same failure.
    pub fn errno(&self) -> Errno {
        match self {
            IovaSpaceError::ZeroLength
            | IovaSpaceError::Misaligned { .. }
            | IovaSpaceError::SourceAlignment { .. }
            | IovaSpaceError::Reserved { .. }
            | IovaSpaceError::AllowedInvalid { .. }
            | IovaSpaceError::AllowedOverlap { .. }
            | IovaSpaceError::AlignmentTooLarge(_) => Errno::INVAL,
            IovaSpaceError::Overflow { .. } | IovaSpaceError::TooLong { .. } => Errno::OVERFLOW,
            IovaSpaceError::Exists { .. } => Errno::EXIST,
            IovaSpaceError::NoSpace { .. } => Errno::NOSPC,
            IovaSpaceError::NotMapped { .. } | IovaSpaceError::SplitsArea { .. } => Errno::NOENT,
            IovaSpaceError::AllowedReserved { .. }
            | IovaSpaceError::ReserveMapped { .. }
            | IovaSpaceError::ReserveAllowed { .. }
            | IovaSpaceError::AreaNotAligned { .. } => Errno::ADDRINUSE,
        }
    }
}
