//! The one error type of the uAPI decoders, and the errno Linux returns for each case.
//!
//! Each variant is one kind of check a Linux iommufd handler makes on the raw bytes of a command;
//! where two handlers answer the same kind of mistake with different errnos (an unknown flag is
//! `EOPNOTSUPP` almost everywhere, but `EINVAL` for the selftest's mock device flags), the variants
//! are distinct, so [`UapiError::errno`] is a plain table.

use rustix::io::Errno;
use uvfio_abi::AbiError;

/// Why the bytes of an iommufd ioctl were refused, before (or while) any object is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UapiError {
    /// The request number is not an iommufd command served here (`ENOTTY`: Linux's
    /// `iommufd_fops_ioctl` answers `-ENOIOCTLCMD`, which the VFS turns into `ENOTTY`).
    #[error("unknown iommufd request {request:#x}")]
    UnknownRequest {
        /// The request number.
        request: u32,
    },
    /// The size rules of the struct were broken (`EFAULT`, `EINVAL`, `E2BIG`, or `EOPNOTSUPP` for
    /// a non-zero reserved field): see [`AbiError::errno`].
    #[error("the command's bytes break the uAPI size rules")]
    Abi(#[from] AbiError),
    /// A flag bit the handler does not know is set (`EOPNOTSUPP`).
    #[error("{cmd}: unsupported flags {flags:#x}")]
    UnsupportedFlags {
        /// The command.
        cmd: &'static str,
        /// The unknown bits.
        flags: u32,
    },
    /// A value is too large for the kernel's `unsigned long` arithmetic, or an address range runs
    /// past the end of the address space (`EOVERFLOW`).
    #[error("{cmd}: {field} overflows")]
    Overflow {
        /// The command.
        cmd: &'static str,
        /// The field that overflows.
        field: &'static str,
    },
    /// A mapping with neither `IOMMU_IOAS_MAP_READABLE` nor `IOMMU_IOAS_MAP_WRITEABLE` (`EINVAL`).
    #[error("{cmd}: the mapping is neither readable nor writeable")]
    NoAccess {
        /// The command.
        cmd: &'static str,
    },
    /// A length of zero where the handler needs at least one byte (`EINVAL`).
    #[error("{cmd}: zero length")]
    ZeroLength {
        /// The command.
        cmd: &'static str,
    },
    /// An address or length that is not a multiple of the page size the handler needs (`EINVAL`).
    #[error("{cmd}: not aligned to {align:#x}")]
    Misaligned {
        /// The command.
        cmd: &'static str,
        /// The alignment required.
        align: u64,
    },
    /// `IOMMU_HWPT_ALLOC` with a data type but no data, or data but no type (`EINVAL`).
    #[error("hwpt_alloc: data_type {data_type} does not match data_len {data_len}")]
    HwptDataMismatch {
        /// `data_type`.
        data_type: u32,
        /// `data_len`.
        data_len: u32,
    },
    /// `IOMMU_HWPT_ALLOC` flags the paging or nested allocator refuses, or a nested HWPT without
    /// data (`EOPNOTSUPP`).
    #[error("hwpt_alloc: flags {flags:#x} not supported for this kind of HWPT")]
    HwptUnsupported {
        /// The flags.
        flags: u32,
    },
    /// An `IOMMU_OPTION` id the kernel does not know (`EOPNOTSUPP`).
    #[error("unknown option {option_id}")]
    UnknownOption {
        /// `option_id`.
        option_id: u32,
    },
    /// A global option with a non-zero `object_id` (`EOPNOTSUPP`).
    #[error("option {option_id} is global, object_id {object_id} must be 0")]
    OptionObject {
        /// `option_id`.
        option_id: u32,
        /// `object_id`.
        object_id: u32,
    },
    /// An `IOMMU_OPTION` op other than get or set (`EOPNOTSUPP`).
    #[error("unknown option op {op}")]
    UnknownOptionOp {
        /// `op`.
        op: u16,
    },
    /// An option value other than 0 or 1 (`EINVAL`).
    #[error("option value {val64} is neither 0 nor 1")]
    OptionValue {
        /// `val64`.
        val64: u64,
    },
    /// An `IOMMU_VFIO_IOAS` op other than get, set and clear (`EOPNOTSUPP`).
    #[error("unknown vfio_ioas op {op}")]
    UnknownVfioIoasOp {
        /// `op`.
        op: u16,
    },
    /// An allowed IOVA range whose `start` is not below its `last` (`EINVAL`; Linux refuses even
    /// a one-byte range, `start == last`).
    #[error("allowed range {start:#x}..={last:#x} is empty or inverted")]
    BadIovaRange {
        /// `start`.
        start: u64,
        /// `last`.
        last: u64,
    },
    /// Two allowed IOVA ranges of one `IOMMU_IOAS_ALLOW_IOVAS` overlap (`EINVAL`).
    #[error("allowed range {start:#x}..={last:#x} overlaps an earlier one")]
    OverlappingIovaRange {
        /// `start`.
        start: u64,
        /// `last`.
        last: u64,
    },
    /// `IOMMU_IOAS_IOVA_RANGES` with an array too short for every range (`EMSGSIZE`; the reply
    /// still carries the number needed).
    #[error("{needed} ranges do not fit the caller's {capacity}")]
    RangesDoNotFit {
        /// Ranges the IOAS has.
        needed: u32,
        /// Ranges the caller's array holds.
        capacity: u32,
    },
    /// An `IOMMU_TEST_CMD` op not served (`EOPNOTSUPP`, the `default:` of Linux's
    /// `iommufd_test()`).
    #[error("unknown selftest op {op}")]
    UnknownTestOp {
        /// `op`.
        op: u32,
    },
    /// Mock device flags `mock_dev_create()` refuses (`EINVAL`).
    #[error("unsupported mock device flags {flags:#x}")]
    MockDeviceFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// A selftest length above the 16 MiB the kernel allows an access to copy or pin in one go
    /// (`ENOMEM`, "Prevent syzkaller from triggering a WARN_ON in kvzalloc()").
    #[error("{cmd}: length {length:#x} is above 16 MiB")]
    TestLengthTooLarge {
        /// The op.
        cmd: &'static str,
        /// The length asked for.
        length: u64,
    },
    /// A temporary memory limit below one batch element (`EINVAL`).
    #[error("memory limit {limit} is below the batch element size")]
    MemoryLimitTooSmall {
        /// The limit asked for.
        limit: u32,
    },
}

impl UapiError {
    /// The errno Linux returns for this condition.
    pub fn errno(&self) -> Errno {
        match self {
            Self::UnknownRequest { .. } => Errno::NOTTY,
            Self::Abi(e) => e.errno(),
            Self::UnsupportedFlags { .. }
            | Self::HwptUnsupported { .. }
            | Self::UnknownOption { .. }
            | Self::OptionObject { .. }
            | Self::UnknownOptionOp { .. }
            | Self::UnknownVfioIoasOp { .. }
            | Self::UnknownTestOp { .. } => Errno::OPNOTSUPP,
            Self::Overflow { .. } => Errno::OVERFLOW,
            Self::NoAccess { .. }
            | Self::ZeroLength { .. }
            | Self::Misaligned { .. }
            | Self::HwptDataMismatch { .. }
            | Self::OptionValue { .. }
            | Self::BadIovaRange { .. }
            | Self::OverlappingIovaRange { .. }
            | Self::MockDeviceFlags { .. }
            | Self::MemoryLimitTooSmall { .. } => Errno::INVAL,
            Self::RangesDoNotFit { .. } => Errno::MSGSIZE,
            Self::TestLengthTooLarge { .. } => Errno::NOMEM,
        }
    }
}
