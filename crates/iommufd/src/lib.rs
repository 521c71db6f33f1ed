//! The iommufd object model (Linux `drivers/iommu/iommufd/`), in user space.
//!
//! What is here (issue 3, in progress): the object table ([`object`]: ids reserved, then
//! finalized or aborted; typed lookup; `IOMMU_DESTROY` refused with `EBUSY` while other objects use
//! an object; teardown in dependency order on close), the IOVA bookkeeping of an IOAS
//! ([`iova_space`]), the pinned memory behind a mapping and its locked-memory account
//! ([`pages`]), the IOAS page table that carries every mapping into every attached domain
//! ([`ioas`]), typed commands decoded from the raw ioctl bytes with Linux's errnos ([`uapi`]),
//! the context that serves them ([`ctx`]), and fault injection in the style of
//! `iommufd_fail_nth` ([`fail`]).
//!
//! Why hand-written: this *is* the system being modelled; no crate implements iommufd's semantics.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ctx;
pub mod device;
pub mod fail;
pub mod hwpt;
pub mod ioas;
pub mod iova_space;
pub mod object;
pub mod pages;
pub mod uapi;
