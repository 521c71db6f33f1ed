//! The crate's error enum and its one errno boundary.

use crate::domain::{DomainId, DomainType};
use crate::pgtable::PgTableError;
use rustix::io::Errno;

/// Errors of domain operations. DMA faults are [`DmaFault`](crate::DmaFault)s, not errors of this kind.
#[derive(Debug, thiserror::Error)]
pub enum IommuError {
    /// Map, unmap and invalidate need a paging domain.
    #[error("domain {} is {kind:?}: it has no page table", domain.0)]
    NotPaging {
        /// The domain.
        domain: DomainId,
        /// What it is.
        kind: DomainType,
    },
    /// The page table refused the operation.
    #[error("page-table operation failed")]
    PageTable(
        #[from]
        #[source]
        PgTableError,
    ),
}

impl IommuError {
    /// The errno Linux returns for the same failure (`iommu_map` / `iommu_unmap` callers).
    pub fn errno(&self) -> Errno {
        match self {
            IommuError::NotPaging { .. } => Errno::INVAL,
            IommuError::PageTable(e) => pgtable_errno(e),
        }
    }
}

/// The errno of a page-table failure, as Linux's `iommu_map` / io-pgtable return them.
fn pgtable_errno(e: &PgTableError) -> Errno {
    match e {
        PgTableError::Exists { .. } => Errno::EXIST,
        PgTableError::Alloc(_) => Errno::NOMEM,
        // io-pgtable: "if (WARN_ON(iaext || paddr >> cfg->oas)) return -ERANGE;"
        PgTableError::BeyondAddressWidth { .. } | PgTableError::HpaOutOfRange { .. } => Errno::RANGE,
        PgTableError::BadTable { .. } => Errno::FAULT,
        PgTableError::Empty
        | PgTableError::Misaligned { .. }
        | PgTableError::MisalignedRange { .. }
        | PgTableError::NoPermission
        | PgTableError::UnsupportedPageSizes { .. } => Errno::INVAL,
    }
}
