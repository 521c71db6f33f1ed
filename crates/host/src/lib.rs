//! The emulated host machine of uvfio.
//!
//! This crate will wire together the emulated machine: host memory (`uvfio-memory`), the IOMMU model (`uvfio-iommu`),
//! a PCI topology, the devices on it, and the uAPI files (`/dev/iommu`, `/dev/vfio/vfio`, `/dev/vfio/N`,
//! `/dev/vfio/devices/vfioX`) with `open / ioctl / read / write / mmap / close` dispatch.
//!
//! What exists today is the first piece, [`topology`]: a PCI topology described in a serde (JSON) config — root
//! complex, root ports, PCIe switches, PCIe-to-PCI and conventional PCI bridges, endpoints — validated, and split into
//! IOMMU groups the way Linux's `pci_device_group()` does. [`files`] is the host's file table with `open / ioctl /
//! close` of `/dev/iommu` and `/dev/vfio/vfio` over the raw uAPI bytes, and [`sys`] the real user memory of this
//! process ([`ProcessMemory`], the only place allowed `unsafe`). Still to come: groups (`/dev/vfio/N`), device cdevs
//! (`/dev/vfio/devices/vfioX`), devices, and `read / write / mmap` of device regions.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod files;
#[allow(unsafe_code)]
pub mod sys;
pub mod topology;

pub use files::{DEV_IOMMU, DEV_VFIO_CONTAINER, FIRST_FD, Host, HostFd};
pub use sys::ProcessMemory;

pub use topology::{
    Bdf, FunctionConfig, FunctionKind, GroupId, IommuGroup, PciId, RequesterId, Topology, TopologyConfig,
    TopologyError,
};
