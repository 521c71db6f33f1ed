//! The safe, typed API a user-space driver programs against.
//!
//! A [`Device`] is an open VFIO device: its [`Region`]s (BARs, config space) with bounds-checked
//! register access, [`DmaBuffer`]s (memory the device may DMA to, mapped at an IOVA for as long as
//! the buffer lives, unmapped on drop before it is freed), [`Interrupt`]s (eventfds the driver
//! waits on, blocking or with a timeout) and reset. Everything goes through a [`DeviceBackend`]:
//! the in-process emulated host ([`HostBackend`], in three modes: type1v2 container, iommufd
//! cdev, no-IOMMU) and a vfio-user socket ([`VfioUserBackend`]); the real kernel's `/dev/vfio`
//! implements the same trait later, so drivers do not change.
//!
//! Why hand-written: rust-vmm's `vfio-ioctls` drives the real kernel only and is shaped for a VMM
//! (it maps guest memory, not driver buffers); the trait here is what lets one driver run on the
//! emulated host, a vfio-user server and the kernel. The kernel backend will use `vfio-ioctls`.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod backend;
mod device;
mod dma;
mod error;
mod host;
mod irq;
#[allow(unsafe_code)]
mod sys;
mod vfio_user;

pub use backend::{DeviceBackend, DeviceInfo, IrqInfo, RegionInfo};
pub use device::{Device, IOVA_START, Region};
pub use dma::DmaBuffer;
pub use error::DriverError;
pub use host::{HostBackend, Mode};
pub use irq::Interrupt;
pub use sys::DmaMemory;
pub use vfio_user::VfioUserBackend;
