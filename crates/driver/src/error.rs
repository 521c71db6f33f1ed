//! [`DriverError`]: why a driver API call failed.

use rustix::io::Errno;

/// Why a driver API call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A uAPI call failed with this errno (`what` names the call).
    #[error("{what} failed")]
    Uapi {
        /// The call, e.g. `VFIO_GROUP_SET_CONTAINER`.
        what: &'static str,
        /// The errno it returned.
        #[source]
        errno: Errno,
    },
    /// A region access outside the region.
    #[error("{len} bytes at {offset:#x} are outside region {index} ({size} bytes)")]
    OutOfRegion {
        /// The region.
        index: u32,
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: usize,
        /// The region's size.
        size: u64,
    },
    /// An access outside a DMA buffer.
    #[error("{len} bytes at {offset:#x} are outside the {size}-byte DMA buffer")]
    OutOfBuffer {
        /// The offset asked for.
        offset: usize,
        /// The length asked for.
        len: usize,
        /// The buffer's size.
        size: usize,
    },
    /// The device has no such region or IRQ index, or none of that kind.
    #[error("the device has no {0}")]
    Missing(&'static str),
    /// Making an eventfd or DMA memory failed.
    #[error("{what}")]
    Os {
        /// What was being made.
        what: &'static str,
        /// The errno.
        #[source]
        errno: Errno,
    },
    /// The pagemap hides frame numbers (no `CAP_SYS_ADMIN`), so a no-IOMMU driver cannot learn
    /// where its buffer is.
    #[error("the pagemap shows no frame numbers (CAP_SYS_ADMIN is needed)")]
    NoFrames,
    /// No more IOVA space in the driver's allocator.
    #[error("no IOVA space left for {0} bytes")]
    NoIova(u64),
}

impl DriverError {
    /// The errno behind the error, where there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            DriverError::Uapi { errno, .. } | DriverError::Os { errno, .. } => Some(*errno),
            DriverError::OutOfRegion { .. } | DriverError::OutOfBuffer { .. } => Some(Errno::INVAL),
            DriverError::Missing(_) => Some(Errno::NODEV),
            DriverError::NoFrames => Some(Errno::PERM),
            DriverError::NoIova(_) => Some(Errno::NOSPC),
        }
    }
}

/// Wraps a uAPI call's errno.
pub(crate) fn uapi(what: &'static str) -> impl Fn(Errno) -> DriverError {
    move |errno| DriverError::Uapi { what, errno }
}
