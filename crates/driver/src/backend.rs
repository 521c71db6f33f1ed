//! The seam between the driver API and whatever serves the device: [`DeviceBackend`].
//!
//! It is the set of operations a VFIO device offers a user-space driver, named after the uAPI they
//! map to: `VFIO_DEVICE_GET_INFO`, `VFIO_DEVICE_GET_REGION_INFO`, region `pread` / `pwrite`,
//! `VFIO_DEVICE_GET_IRQ_INFO`, `VFIO_DEVICE_SET_IRQS`, `VFIO_DEVICE_RESET`, and DMA map / unmap
//! (type1 `MAP_DMA`, iommufd `IOAS_MAP`, or, without an IOMMU, locking the memory and reading its
//! physical address). The in-process emulated host implements it ([`crate::HostBackend`]); a
//! vfio-user client and the real kernel (`/dev/vfio`) implement the same trait in later issues,
//! so a driver written against [`crate::Device`] runs unchanged on all of them.

use crate::error::DriverError;
use crate::sys::DmaMemory;
use std::os::fd::BorrowedFd;
use uvfio_types::{Access, Iova};

/// `VFIO_DEVICE_GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Regions (`VFIO_PCI_NUM_REGIONS` for a PCI device, or more).
    pub num_regions: u32,
    /// IRQ indexes.
    pub num_irqs: u32,
}

/// `VFIO_DEVICE_GET_REGION_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region's index.
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Its size in bytes (0: the device has no such region).
    pub size: u64,
    /// Where it starts in the device file.
    pub offset: u64,
}

/// `VFIO_DEVICE_GET_IRQ_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfo {
    /// The IRQ index.
    pub index: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// Vectors (0: the device has none of this kind).
    pub count: u32,
}

/// What serves a device to a driver.
pub trait DeviceBackend: Send + Sync + std::fmt::Debug {
    /// `VFIO_DEVICE_GET_INFO`.
    fn info(&self) -> Result<DeviceInfo, DriverError>;
    /// `VFIO_DEVICE_GET_REGION_INFO` of region `index`.
    fn region_info(&self, index: u32) -> Result<RegionInfo, DriverError>;
    /// Reads `buf.len()` bytes at `offset` of region `index`.
    fn read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), DriverError>;
    /// Writes `data` at `offset` of region `index`.
    fn write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), DriverError>;
    /// `VFIO_DEVICE_GET_IRQ_INFO` of IRQ index `index`.
    fn irq_info(&self, index: u32) -> Result<IrqInfo, DriverError>;
    /// `VFIO_DEVICE_SET_IRQS` (`DATA_EVENTFD | ACTION_TRIGGER`): the eventfds of vectors
    /// `start ..` of `index` (`None`: no trigger for that vector).
    fn set_irq_eventfds(
        &self,
        index: u32,
        start: u32,
        fds: &[Option<BorrowedFd<'_>>],
    ) -> Result<(), DriverError>;
    /// `VFIO_DEVICE_SET_IRQS` (`DATA_NONE | ACTION_TRIGGER`, count 0): disables `index`.
    fn disable_irq(&self, index: u32) -> Result<(), DriverError>;
    /// `VFIO_DEVICE_SET_IRQS` (`DATA_NONE | ACTION_UNMASK`) of one vector (INTx is auto-masked).
    fn unmask_irq(&self, index: u32, vector: u32) -> Result<(), DriverError>;
    /// `VFIO_DEVICE_RESET`.
    fn reset(&self) -> Result<(), DriverError>;
    /// Makes `mem` reachable by the device's DMA with `access`, at `iova` where the device
    /// translates through an IOMMU; returns the address the device uses (`iova`, or the memory's
    /// physical address without an IOMMU).
    fn dma_map(&self, mem: &DmaMemory, iova: Iova, access: Access) -> Result<Iova, DriverError>;
    /// Undoes [`DeviceBackend::dma_map`] of `mem` at device address `addr`: after it returns the
    /// device can no longer reach the memory.
    fn dma_unmap(&self, mem: &DmaMemory, addr: Iova) -> Result<(), DriverError>;
    /// DMA faults the IOMMU recorded for this device since the last call, as `(address, write)`
    /// pairs, where the backend can see them (the emulated host can; a real kernel logs them).
    fn dma_faults(&self) -> Option<Vec<(Iova, bool)>>;
}
