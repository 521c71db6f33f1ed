//! The software IOMMU: the hardware model every uvfio DMA goes through.
//!
//! Modelled on Intel VT-d. IO page tables in the second-stage format ([`pgtable`]) live in 4 KiB
//! frames of the emulated host's memory and are walked by HPA. A [`Domain`] is blocked, identity
//! (pass-through) or paging; a paging domain owns a page table and an IOTLB that keeps entries until
//! software invalidates them (or, for callers that do not manage invalidation, a `coherent` domain
//! invalidates on every unmap). A device sees its domain through a [`DmaPort`]: `read`, `write`,
//! `translate`, each checked page by page; a failed access returns a typed [`DmaFault`] and is
//! recorded in the domain's fault log. The [`Iommu`] unit makes domains and invalidates globally.
//!
//! The unmap guarantee — once an unmap and its invalidation return, no access can touch the pages,
//! not even one that translated before — is implemented in `quiesce` (see its doc and
//! `docs/architecture.md`); translation hits take no lock and write nothing shared.
//!
//! Nested translation (stage 1 walked through a parent), PASID-tagged ports and dirty tracking (the
//! A/D bits [`pgtable::pte`] already defines) are later variants of [`DomainType`] and of the walk.
//!
//! Why hand-written: no crate models an IOMMU's page tables in emulated physical memory with hardware
//! IOTLB semantics; rust-vmm's `vm-memory` `IommuMemory` (a peer in the benchmarks) translates through
//! an IOTLB map supplied by a VMM, with no page-table format, invalidation model or fault records.
#![deny(missing_docs)]

mod domain;
mod error;
mod fault;
mod iotlb;
mod owner;
pub mod pgtable;
mod port;
mod quiesce;
mod sys;
mod tables;
mod unit;

pub use domain::{Domain, DomainConfig, DomainId, DomainType, Invalidation, IotlbStats};
pub use error::IommuError;
pub use fault::{
    DmaFault, FAULT_LOG_CAPACITY, FaultCounts, FaultHandler, FaultReason, FaultRecord, FaultResponse,
};
pub use owner::{DmaOwners, OwnerError, OwnerId};
pub use pgtable::{Levels, PgTableError, Translation};
pub use port::{DmaPort, Fragment, MAX_FAULT_RETRIES};
pub use unit::Iommu;
