//! The emulated host machine of uvfio.
//!
//! This crate will wire together the emulated machine: host memory (`uvfio-memory`), the IOMMU model (`uvfio-iommu`),
//! a PCI topology, the devices on it, and the uAPI files (`/dev/iommu`, `/dev/vfio/vfio`, `/dev/vfio/N`,
//! `/dev/vfio/devices/vfioX`) with `open / ioctl / read / write / mmap / close` dispatch.
//!
//! What exists today is the first piece, [`topology`]: a PCI topology described in a serde (JSON) config — root
//! complex, root ports, PCIe switches, PCIe-to-PCI and conventional PCI bridges, endpoints — validated, and split into
//! IOMMU groups the way Linux's `pci_device_group()` does. Still to come: the file table and the real user memory (in
//! a `sys` module, the only place allowed `unsafe`), devices, and the ioctl dispatch over iommufd and VFIO.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod topology;

pub use topology::{
    Bdf, FunctionConfig, FunctionKind, GroupId, IommuGroup, PciId, RequesterId, Topology, TopologyConfig,
    TopologyError,
};
