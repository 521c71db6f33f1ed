//! The one error type of the VFIO uAPI decoders, and the errno Linux returns for each case.
//!
//! Each variant is one kind of check a Linux VFIO handler makes on the raw bytes of a command
//! (or, for the checks that need a device or container value, on the typed command); the doc of
//! each variant names the errno, so [`UapiError::errno`] is a plain table and the only place an
//! errno is chosen.

use rustix::io::Errno;
use uvfio_abi::AbiError;

/// Why the bytes of a VFIO ioctl were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UapiError {
    /// The request number is not served by this file (`ENOTTY`: the `default:` of every VFIO
    /// `unlocked_ioctl`, and iommufd's compat `-ENOIOCTLCMD`, which the VFS turns into `ENOTTY`).
    #[error("unknown VFIO request {request:#x}")]
    UnknownRequest {
        /// The request number.
        request: u32,
    },
    /// The size rules of the struct were broken, or the caller's bytes end too soon (`EFAULT`,
    /// `EINVAL`, `E2BIG`): see [`AbiError::errno`].
    #[error("the command's bytes break the uAPI size rules")]
    Abi(#[from] AbiError),
    /// The request takes a pointer but was given a plain value (`EFAULT`: the kernel's
    /// `copy_from_user()` from that address finds no memory of the caller's).
    #[error("{cmd}: the argument {value:#x} is not a pointer to the caller's bytes")]
    NotAPointer {
        /// The command.
        cmd: &'static str,
        /// The value passed.
        value: u64,
    },
    /// A flag bit the handler does not know is set (`EINVAL`, as VFIO answers unknown flags).
    #[error("{cmd}: unknown flags {flags:#x}")]
    UnknownFlags {
        /// The command.
        cmd: &'static str,
        /// The unknown bits.
        flags: u32,
    },
    /// Flags that are known but may not be combined (`EINVAL`).
    #[error("{cmd}: flags {flags:#x} may not be combined")]
    ConflictingFlags {
        /// The command.
        cmd: &'static str,
        /// The flags given.
        flags: u32,
    },
    /// `argsz` leaves no room for data a flag or a count asks for (`EINVAL`).
    #[error("{cmd}: argsz {argsz} is below the {needed} bytes needed")]
    ArgszTooSmall {
        /// The command.
        cmd: &'static str,
        /// The declared `argsz`.
        argsz: u32,
        /// The size needed.
        needed: u64,
    },
    /// A size of zero where the handler needs at least one byte (`EINVAL`).
    #[error("{cmd}: zero size")]
    ZeroSize {
        /// The command.
        cmd: &'static str,
    },
    /// An address range runs past the end of the 64-bit space (`EOVERFLOW`).
    #[error("{cmd}: {field} + size - 1 overflows")]
    Overflow {
        /// The command.
        cmd: &'static str,
        /// The field whose range overflows.
        field: &'static str,
    },
    /// An address or size that is not a multiple of the page size the handler needs (`EINVAL`).
    #[error("{cmd}: not aligned to {align:#x}")]
    Misaligned {
        /// The command.
        cmd: &'static str,
        /// The alignment required.
        align: u64,
    },
    /// `VFIO_DMA_UNMAP_FLAG_ALL` with a non-zero `iova` or `size` (`EINVAL`).
    #[error("unmap_dma: FLAG_ALL needs iova and size 0, got {iova:#x} and {size:#x}")]
    UnmapAllNotZero {
        /// `iova`.
        iova: u64,
        /// `size`.
        size: u64,
    },
    /// A dirty bitmap the caller could not own (`EINVAL`, type1's `access_ok()` check).
    #[error("dirty bitmap {data:#x} + {size:#x} is not user memory")]
    BitmapNotUserMemory {
        /// `bitmap.data`.
        data: u64,
        /// `bitmap.size`.
        size: u64,
    },
    /// A dirty bitmap of the wrong size for the range (`EINVAL`, type1's `verify_bitmap_size()`).
    #[error("dirty bitmap of {size} bytes does not fit {npages} pages")]
    BitmapSize {
        /// Pages in the range, at the bitmap's page size.
        npages: u64,
        /// `bitmap.size`.
        size: u64,
    },
    /// A negative fd where the handler tests for one (`EINVAL`, `VFIO_DEVICE_BIND_IOMMUFD`).
    #[error("{cmd}: negative fd {fd}")]
    NegativeFd {
        /// The command.
        cmd: &'static str,
        /// The fd.
        fd: i32,
    },
    /// An fd that cannot name an open file (`EBADF`, `fdget()` of a negative number).
    #[error("{cmd}: bad fd {fd}")]
    BadFd {
        /// The command.
        cmd: &'static str,
        /// The fd.
        fd: i32,
    },
    /// A device name with no NUL within `PAGE_SIZE` bytes (`EINVAL`, `strndup_user()`).
    #[error("device name is not NUL-terminated within {max} bytes")]
    NameTooLong {
        /// The longest name accepted, NUL included.
        max: usize,
    },
    /// The PASID flag on a device without PASID support (`EOPNOTSUPP`).
    #[error("{cmd}: the device does not support PASID")]
    PasidNotSupported {
        /// The command.
        cmd: &'static str,
    },
    /// An IRQ index at or past the number of indexes (`EINVAL`).
    #[error("irq index {index} is not below {max}")]
    IrqIndex {
        /// The index.
        index: u32,
        /// The number of indexes.
        max: u32,
    },
    /// A region index at or past the number of regions (`EINVAL`).
    #[error("region index {index} is not below {max}")]
    RegionIndex {
        /// The index.
        index: u32,
        /// The number of regions.
        max: u32,
    },
    /// `count >= U32_MAX - start` in `VFIO_DEVICE_SET_IRQS` (`EINVAL`).
    #[error("set_irqs: start {start} + count {count} overflows")]
    IrqCountOverflow {
        /// `start`.
        start: u32,
        /// `count`.
        count: u32,
    },
    /// Sub-indexes past the IRQs of the index (`EINVAL`).
    #[error("set_irqs: start {start} + count {count} is past the index's {num_irqs} irqs")]
    IrqRange {
        /// `start`.
        start: u32,
        /// `count`.
        count: u32,
        /// IRQs of the index.
        num_irqs: u32,
    },
    /// Not exactly one `VFIO_IRQ_SET_DATA_*` flag (`EINVAL`).
    #[error("set_irqs: flags {flags:#x} do not name exactly one data type")]
    IrqDataType {
        /// The flags.
        flags: u32,
    },
    /// No handler for this index and action (`ENOTTY`: vfio-pci's `vfio_pci_set_irqs_ioctl()`
    /// finds no `func`, which includes zero or several ACTION flags).
    #[error("set_irqs: no handler for index {index} with flags {flags:#x}")]
    NoIrqHandler {
        /// The index.
        index: u32,
        /// The flags.
        flags: u32,
    },
}

impl UapiError {
    /// The errno Linux returns for this condition.
    pub fn errno(&self) -> Errno {
        match self {
            Self::UnknownRequest { .. } | Self::NoIrqHandler { .. } => Errno::NOTTY,
            Self::Abi(e) => e.errno(),
            Self::NotAPointer { .. } => Errno::FAULT,
            Self::Overflow { .. } => Errno::OVERFLOW,
            Self::BadFd { .. } => Errno::BADF,
            Self::PasidNotSupported { .. } => Errno::OPNOTSUPP,
            Self::UnknownFlags { .. }
            | Self::ConflictingFlags { .. }
            | Self::ArgszTooSmall { .. }
            | Self::ZeroSize { .. }
            | Self::Misaligned { .. }
            | Self::UnmapAllNotZero { .. }
            | Self::BitmapNotUserMemory { .. }
            | Self::BitmapSize { .. }
            | Self::NegativeFd { .. }
            | Self::NameTooLong { .. }
            | Self::IrqIndex { .. }
            | Self::RegionIndex { .. }
            | Self::IrqCountOverflow { .. }
            | Self::IrqRange { .. }
            | Self::IrqDataType { .. } => Errno::INVAL,
        }
    }
}
