//! The iommufd object model (Linux `drivers/iommu/iommufd/`), in user space.
//!
//! What lands here, piece by piece (issue 3): the object table ([`object`]: ids reserved, then
//! finalized or aborted; typed lookup; `IOMMU_DESTROY` refused with `EBUSY` while other objects use
//! an object; teardown in dependency order on close), the IOVA bookkeeping of an IOAS
//! ([`iova_space`]: areas, allowed and reserved ranges, IOVA allocation), fault injection in the
//! style of `iommufd_fail_nth` ([`fail`]); then IOAS with pinned `Pages`, HW page tables, devices and
//! access objects on top of `uvfio-iommu` and `uvfio-memory`.
//!
//! Why hand-written: this *is* the system being modelled; no crate implements iommufd's semantics.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod fail;
pub mod ioas;
pub mod iova_space;
pub mod object;
pub mod pages;
pub mod uapi;
