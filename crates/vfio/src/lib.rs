//! VFIO (Linux `drivers/vfio/`) on top of uvfio's iommufd, in user space.
//!
//! This crate holds the legacy API (the `/dev/vfio/vfio` container with the type1, type1v2 and
//! no-IOMMU backends, and the `/dev/vfio/N` groups, built on iommufd the way Linux's compat layer
//! `drivers/iommu/iommufd/vfio_compat.c` builds them), the cdev path (`/dev/vfio/devices/vfioX`
//! bound to an iommufd and attached to an IOAS or HWPT), and the device side (regions, IRQs,
//! reset).
//!
//! What is here: [`uapi`], the decoding layer (each VFIO ioctl arrives as a request number and the
//! raw bytes of its argument; [`uapi`] turns them into typed commands, applying the checks Linux's
//! handlers apply, in Linux's order, with Linux's errnos, and writes the structs the kernel writes
//! back, capability chains included), and [`container`], the `/dev/vfio/vfio` container over an
//! iommufd compat IOAS (type1 — whose unmap may cut a mapping —, type1v2, no-IOMMU), [`group`], the
//! `/dev/vfio/N` groups (`GET_STATUS`, `SET_CONTAINER` with a container or an iommufd,
//! `UNSET_CONTAINER`, `GET_DEVICE_FD`), [`cdev`], the `/dev/vfio/devices/vfioX` path (bind to an
//! iommufd, attach / replace / detach an IOAS or HWPT), [`noiommu`], the unsafe no-IOMMU mode
//! (the host's opt-in, the taint, `noiommu-N` groups, devices that DMA to host physical
//! addresses), and [`device`], the device side both kinds of device file serve over an emulated
//! device model (info, regions with their capabilities, region `read` / `write` / `mmap`, IRQ
//! info, `SET_IRQS` with eventfds, reset: `vfio_pci_core.c`, `vfio_pci_intrs.c`). The DMA
//! ownership of IOMMU groups (one container or iommufd context at a time) is the IOMMU's
//! (`uvfio_iommu::DmaOwners`), claimed here as Linux's VFIO claims it.
//!
//! Why hand-written: this *is* the system being modelled. rust-vmm's `vfio-ioctls` is the other
//! side of the same interface (a client issuing these ioctls to a kernel), and `vfio-bindings`
//! only describes byte layouts, which `uvfio-abi` already checks against it.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cdev;
pub mod compat;
pub mod container;
pub mod device;
pub mod group;
pub mod noiommu;
pub mod uapi;
