//! The emulated host machine of uvfio.
//!
//! This crate wires together the emulated machine: host memory (`uvfio-memory`), the IOMMU model (`uvfio-iommu`),
//! a PCI topology, the devices on it, and the uAPI files (`/dev/iommu`, `/dev/vfio/vfio`, `/dev/vfio/N`,
//! `/dev/vfio/devices/vfioX`) with `open / ioctl / read / write / mmap / close` dispatch.
//!
//! What exists today is the first piece, [`topology`]: a PCI topology described in a serde (JSON) config — root
//! complex, root ports, PCIe switches, PCIe-to-PCI and conventional PCI bridges, endpoints — validated, and split into
//! IOMMU groups the way Linux's `pci_device_group()` does. [`files`] is the host's file table with `open / ioctl /
//! read / write / mmap / close` over the raw uAPI bytes: `/dev/iommu`, `/dev/vfio/vfio`, a VFIO group per IOMMU
//! group (`/dev/vfio/N`; `/dev/vfio/noiommu-N` per device in the unsafe no-IOMMU mode of a host without an IOMMU),
//! a cdev per device (`/dev/vfio/devices/vfioX`), device files, and what a no-IOMMU driver needs (`mlock`,
//! `/proc/self/pagemap`, `/proc/sys/kernel/tainted`). [`sys`] is the real user memory of this process
//! ([`ProcessMemory`], the only place allowed `unsafe`). Devices the host is given a model for
//! ([`Host::with_devices`], a `uvfio_vfio::device::VfioDeviceModel` per endpoint) serve the VFIO device side through
//! both kinds of device file: info, regions (`read` / `write`, and `mmap` handing back the file that backs a
//! region), IRQs signalled through the caller's eventfds, reset. The others are bare (the iommufd selftest's kind:
//! DMA through their group's domain, no regions or IRQs).

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod embedded;
pub mod files;
#[allow(unsafe_code)]
pub mod sys;
pub mod topology;

pub use embedded::{EDU_BDF, EMBEDDED_RAM, embedded_host};
pub use files::{
    DEV_IOMMU, DEV_VFIO_CONTAINER, DEV_VFIO_DEVICES_DIR, DEV_VFIO_DIR, FIRST_FD, Host, HostFd, HostOptions,
    PROC_PAGEMAP, PROC_TAINTED, TAINT_USER, device_name,
};
pub use files::{DmaPath, EndpointDma, ModelFactory, ModelSource};
pub use sys::ProcessMemory;

pub use topology::{
    Bdf, FunctionConfig, FunctionKind, GroupId, IommuGroup, PciId, RequesterId, Topology, TopologyConfig,
    TopologyError,
};
