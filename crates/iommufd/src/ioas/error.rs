//! [`IoasError`] and its one errno boundary.

use super::{AccessId, CutError};
use crate::fail::Site;
use crate::iova_space::IovaSpaceError;
use crate::pages::PagesError;
use rustix::io::Errno;
use uvfio_iommu::IommuError;
use uvfio_memory::MemoryError;
use uvfio_types::{Access, Iova, IovaRange};

/// Errors of IOAS operations.
#[derive(Debug, thiserror::Error)]
pub enum IoasError {
    /// The IOVA bookkeeping refused.
    #[error("IOVA space")]
    Iova(#[from] IovaSpaceError),
    /// Pinning or accounting failed.
    #[error("pinning")]
    Pages(#[from] PagesError),
    /// A domain refused a map or an unmap.
    #[error("domain")]
    Domain(#[from] IommuError),
    /// Host memory refused an access's read or write.
    #[error("host memory")]
    Memory(#[source] MemoryError),
    /// A cut or a large-page switch was refused.
    #[error("cut")]
    Cut(#[from] CutError),
    /// A fault-injection point failed this step.
    #[error("injected failure at {0:?}")]
    Injected(Site),
    /// The mapping asks for neither read nor write.
    #[error("a mapping must allow reads or writes")]
    NoAccess,
    /// The domain is attached already.
    #[error("domain already attached")]
    AlreadyAttached,
    /// The domain is not attached.
    #[error("domain not attached")]
    NotAttached,
    /// Writes asked of pages mapped read-only: `iopt_insert_area` (a writable `IOMMU_IOAS_COPY` of
    /// a read-only map), `iopt_area_add_access` and `iopt_pages_rw_access` answer `EPERM`.
    #[error("the pages behind {iova} are not writable")]
    ReadOnlyPages {
        /// Where the refused piece starts (for a copy: in the source IOAS).
        iova: Iova,
    },
    /// The area does not grant what an access asks (`check_area_prot` → `EPERM`).
    #[error("the area {area} grants {granted:?}, not {needed:?}")]
    AreaProt {
        /// The area.
        area: IovaRange,
        /// What it grants.
        granted: Access,
        /// What the access needs.
        needed: Access,
    },
    /// Areas do not cover the range without a gap (`iopt_area_contig_done` fails: `ENOENT`).
    #[error("{range} is not mapped contiguously")]
    NotContiguous {
        /// The requested range.
        range: IovaRange,
    },
    /// An access pin that does not start on a page, or crosses into the next area mid-page
    /// (`iopt_area_contig_is_aligned` → `EINVAL`).
    #[error("the access range {range} is not page aligned in the area {area}")]
    AccessUnaligned {
        /// The requested range.
        range: IovaRange,
        /// The area where the alignment broke.
        area: IovaRange,
    },
    /// The area is being unmapped and its accesses notified (`area->prevent_access` → `EINVAL`).
    #[error("the area {area} is being unmapped")]
    AccessPrevented {
        /// The area.
        area: IovaRange,
    },
    /// No such access is attached to this IOAS, or it is detaching (`!access->ioas` → `ENOENT`).
    #[error("access {0:?} is not attached to this IOAS")]
    AccessUnknown(AccessId),
    /// The access is attached already (`EEXIST`).
    #[error("access {0:?} is attached already")]
    AccessExists(AccessId),
    /// A pin by an access created without `needs_pin_pages` (Linux `WARN_ON` → `EINVAL`).
    #[error("access {0:?} was not created to pin pages")]
    AccessCannotPin(AccessId),
    /// An unpin that matches no pin of the access exactly ("The iova/length must exactly match
    /// the one provided to access_pages"; Linux `WARN_ON`s, uvfio answers `EINVAL`).
    #[error("access {access:?} has no pin of exactly {range}")]
    AccessNotPinned {
        /// The access.
        access: AccessId,
        /// The range given.
        range: IovaRange,
    },
    /// An access kept its pins on `range` although it was told to drop them (Linux `WARN_ON`
    /// and `-EDEADLOCK` from `iopt_unmap_iova_range`).
    #[error("an access still pins {range} after its unmap notification")]
    AccessStillPinned {
        /// The area (or, for a detach, the pin) that stayed pinned.
        range: IovaRange,
    },
}

impl IoasError {
    /// The errno Linux returns.
    pub fn errno(&self) -> Errno {
        match self {
            IoasError::Iova(e) => e.errno(),
            IoasError::Pages(e) => e.errno(),
            IoasError::Domain(e) => e.errno(),
            IoasError::Memory(e) => e.errno(),
            IoasError::Cut(e) => e.errno(),
            IoasError::Injected(_) => Errno::NOMEM,
            IoasError::NoAccess
            | IoasError::NotAttached
            | IoasError::AccessUnaligned { .. }
            | IoasError::AccessPrevented { .. }
            | IoasError::AccessCannotPin(_)
            | IoasError::AccessNotPinned { .. } => Errno::INVAL,
            IoasError::AlreadyAttached | IoasError::AccessExists(_) => Errno::EXIST,
            IoasError::ReadOnlyPages { .. } | IoasError::AreaProt { .. } => Errno::PERM,
            IoasError::NotContiguous { .. } | IoasError::AccessUnknown(_) => Errno::NOENT,
            IoasError::AccessStillPinned { .. } => Errno::DEADLK,
        }
    }
}
