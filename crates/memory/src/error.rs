//! The crate's one error enum and its errno boundary.

use rustix::io::Errno;
use uvfio_types::{HostVa, Hpa, PageSize};

/// Why a memory operation failed. [`MemoryError::errno`] is the single place that maps a failure to
/// the errno Linux would return for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// Pinning would push the locked-memory account past its limit (`RLIMIT_MEMLOCK`).
    #[error(
        "locking {requested_pages} more pages would pass the limit of {limit_pages} ({locked_pages} locked)"
    )]
    LimitExceeded {
        /// Pages the request would newly charge.
        requested_pages: u64,
        /// Pages charged before the request.
        locked_pages: u64,
        /// The limit in pages.
        limit_pages: u64,
    },
    /// No free folio (or contiguous run of folios) of the asked size is left in RAM.
    #[error("out of {folio} frames ({bytes:#x} bytes asked for)")]
    OutOfFrames {
        /// The folio size asked for.
        folio: PageSize,
        /// The number of bytes asked for.
        bytes: u64,
    },
    /// The synthetic HPA space above RAM has no room left for another segment.
    #[error("no HPA space left for a segment of {len:#x} bytes")]
    OutOfAddressSpace {
        /// The segment length asked for.
        len: u64,
    },
    /// The address (or a byte of the range starting there) lies in no segment.
    #[error("no host memory at {hpa}")]
    BadAddress {
        /// The first offending address.
        hpa: Hpa,
    },
    /// A null or otherwise unusable pointer into this process was handed over.
    #[error("unusable host address {va:?}")]
    BadHostAddress {
        /// The offending address.
        va: HostVa,
    },
    /// The address lies in RAM that is not allocated.
    #[error("{hpa} is not allocated")]
    NotAllocated {
        /// The first offending address.
        hpa: Hpa,
    },
    /// An address or length is not a multiple of the alignment it must have.
    #[error("{value:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// The offending address or length.
        value: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// A length of zero, or one that wraps past the end of the address space.
    #[error("invalid length {len:#x}")]
    InvalidLength {
        /// The offending length.
        len: u64,
    },
    /// The folio or segment holds pinned pages.
    #[error("{hpa} is pinned")]
    Busy {
        /// The first pinned page found.
        hpa: Hpa,
    },
    /// Unpinning a page that is not pinned.
    #[error("{hpa} is not pinned")]
    NotPinned {
        /// The first unpinned page found.
        hpa: Hpa,
    },
    /// A page's pin count would overflow.
    #[error("pin count of {hpa} would overflow")]
    PinOverflow {
        /// The page whose count is saturated.
        hpa: Hpa,
    },
    /// Freeing an address that is not the first byte of an allocated folio, or a range that does not
    /// cover whole folios.
    #[error("{hpa} is not the start of a folio")]
    NotFolioStart {
        /// The offending address.
        hpa: Hpa,
    },
    /// Releasing a range that is not exactly one adopted or fd segment.
    #[error("{hpa} does not start a releasable segment of that length")]
    NotReleasable {
        /// The offending address.
        hpa: Hpa,
    },
    /// Writing into a segment that was mapped read-only.
    #[error("{hpa} lies in a read-only segment")]
    ReadOnly {
        /// The offending address.
        hpa: Hpa,
    },
    /// The fd is shorter than `offset + len`.
    #[error("fd of {size:#x} bytes is shorter than the {needed:#x} bytes asked for")]
    FdTooShort {
        /// The file size.
        size: u64,
        /// `offset + len`.
        needed: u64,
    },
    /// `HugePages::Require` was asked for but hugetlb pages cannot back RAM.
    #[error("huge pages required but unavailable")]
    HugePagesUnavailable {
        /// What the OS said when hugetlb was tried.
        #[source]
        source: Errno,
    },
    /// An OS call failed.
    #[error("{call} failed")]
    Os {
        /// The call that failed (`mmap`, `memfd_create`, ...).
        call: &'static str,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

impl MemoryError {
    /// The errno Linux returns for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            MemoryError::LimitExceeded { .. }
            | MemoryError::OutOfFrames { .. }
            | MemoryError::OutOfAddressSpace { .. }
            | MemoryError::PinOverflow { .. }
            | MemoryError::HugePagesUnavailable { .. } => Errno::NOMEM,
            MemoryError::BadAddress { .. }
            | MemoryError::BadHostAddress { .. }
            | MemoryError::NotAllocated { .. }
            | MemoryError::ReadOnly { .. } => Errno::FAULT,
            MemoryError::Misaligned { .. }
            | MemoryError::InvalidLength { .. }
            | MemoryError::NotPinned { .. }
            | MemoryError::NotFolioStart { .. }
            | MemoryError::NotReleasable { .. }
            | MemoryError::FdTooShort { .. } => Errno::INVAL,
            MemoryError::Busy { .. } => Errno::BUSY,
            MemoryError::Os { source, .. } => *source,
        }
    }

    /// An OS call failure.
    pub(crate) fn os(call: &'static str) -> impl FnOnce(Errno) -> MemoryError {
        move |source| MemoryError::Os { call, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let h = Hpa::new(0x1000);
        let cases = [
            (
                MemoryError::LimitExceeded {
                    requested_pages: 1,
                    locked_pages: 0,
                    limit_pages: 0,
                },
                Errno::NOMEM,
            ),
            (
                MemoryError::OutOfFrames {
                    folio: PageSize::Size4K,
                    bytes: 4096,
                },
                Errno::NOMEM,
            ),
            (MemoryError::OutOfAddressSpace { len: 1 }, Errno::NOMEM),
            (MemoryError::PinOverflow { hpa: h }, Errno::NOMEM),
            (
                MemoryError::HugePagesUnavailable { source: Errno::NOSPC },
                Errno::NOMEM,
            ),
            (MemoryError::BadAddress { hpa: h }, Errno::FAULT),
            (MemoryError::NotAllocated { hpa: h }, Errno::FAULT),
            (MemoryError::BadHostAddress { va: HostVa::new(0) }, Errno::FAULT),
            (MemoryError::ReadOnly { hpa: h }, Errno::FAULT),
            (
                MemoryError::Misaligned {
                    value: 1,
                    align: 4096,
                },
                Errno::INVAL,
            ),
            (MemoryError::InvalidLength { len: 0 }, Errno::INVAL),
            (MemoryError::NotPinned { hpa: h }, Errno::INVAL),
            (MemoryError::NotFolioStart { hpa: h }, Errno::INVAL),
            (MemoryError::NotReleasable { hpa: h }, Errno::INVAL),
            (MemoryError::FdTooShort { size: 0, needed: 1 }, Errno::INVAL),
            (MemoryError::Busy { hpa: h }, Errno::BUSY),
            (
                MemoryError::Os {
                    call: "mmap",
                    source: Errno::ACCESS,
                },
                Errno::ACCESS,
            ),
        ];
        for (err, errno) in cases {
            assert_eq!(err.errno(), errno, "{err}");
        }
    }

    #[test]
    fn sources_are_kept_not_repeated() {
        use std::error::Error;
        let e = MemoryError::Os {
            call: "mmap",
            source: Errno::NOMEM,
        };
        assert_eq!(e.to_string(), "mmap failed");
        assert!(e.source().is_some());
        let e = MemoryError::HugePagesUnavailable { source: Errno::NOSPC };
        assert!(e.source().is_some());
    }
}
