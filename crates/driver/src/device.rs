//! [`Device`]: an open device as a driver uses it — its regions, DMA buffers, interrupts and
//! reset — over any [`DeviceBackend`].

use crate::backend::{DeviceBackend, DeviceInfo, IrqInfo, RegionInfo};
use crate::dma::DmaBuffer;
use crate::error::DriverError;
use crate::irq::Interrupt;
use crate::sys::DmaMemory;
use parking_lot::Mutex;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
};
use uvfio_types::{Access, Iova};

/// Where the driver's IOVA allocator starts (above the first MiB, as drivers commonly leave low
/// IOVAs alone).
pub const IOVA_START: u64 = 1 << 20;

/// An open device.
#[derive(Debug)]
pub struct Device {
    backend: Arc<dyn DeviceBackend>,
    info: DeviceInfo,
    /// The next IOVA the allocator hands out.
    next_iova: Mutex<u64>,
}

/// One region of the device (a BAR, the config space, ...), checked against its size.
#[derive(Debug, Clone)]
pub struct Region {
    backend: Arc<dyn DeviceBackend>,
    info: RegionInfo,
}

impl Device {
    /// The device `backend` serves.
    pub fn new(backend: Arc<dyn DeviceBackend>) -> Result<Self, DriverError> {
        let info = backend.info()?;
        Ok(Device {
            backend,
            info,
            next_iova: Mutex::new(IOVA_START),
        })
    }

    /// `VFIO_DEVICE_GET_INFO`.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn DeviceBackend> {
        &self.backend
    }

    /// Region `index` (a BAR is its number; the PCI config space is
    /// `VFIO_PCI_CONFIG_REGION_INDEX`). `NODEV`-like [`DriverError::Missing`] for a region of
    /// size 0.
    pub fn region(&self, index: u32) -> Result<Region, DriverError> {
        let info = self.backend.region_info(index)?;
        if info.size == 0 {
            return Err(DriverError::Missing("such region"));
        }
        Ok(Region {
            backend: Arc::clone(&self.backend),
            info,
        })
    }

    /// The PCI configuration space.
    pub fn config(&self) -> Result<Region, DriverError> {
        self.region(VFIO_PCI_CONFIG_REGION_INDEX)
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    pub fn irq_info(&self, index: u32) -> Result<IrqInfo, DriverError> {
        self.backend.irq_info(index)
    }

    /// Enables INTx with a new eventfd; the returned interrupt waits for it. INTx is auto-masked:
    /// call [`Interrupt::unmask`] after handling each one.
    pub fn enable_intx(&self) -> Result<Interrupt, DriverError> {
        let mut irqs = self.enable(VFIO_PCI_INTX_IRQ_INDEX, 1)?;
        irqs.pop().ok_or(DriverError::Missing("INTx"))
    }

    /// Enables `vectors` MSI vectors, each with its own eventfd.
    pub fn enable_msi(&self, vectors: u32) -> Result<Vec<Interrupt>, DriverError> {
        self.enable(VFIO_PCI_MSI_IRQ_INDEX, vectors)
    }

    /// Enables `vectors` MSI-X vectors, each with its own eventfd.
    pub fn enable_msix(&self, vectors: u32) -> Result<Vec<Interrupt>, DriverError> {
        self.enable(VFIO_PCI_MSIX_IRQ_INDEX, vectors)
    }

    fn enable(&self, index: u32, vectors: u32) -> Result<Vec<Interrupt>, DriverError> {
        let info = self.backend.irq_info(index)?;
        if info.count < vectors || vectors == 0 {
            return Err(DriverError::Missing("so many vectors of that interrupt"));
        }
        let irqs = (0..vectors)
            .map(|v| Interrupt::new(Arc::clone(&self.backend), index, v))
            .collect::<Result<Vec<_>, _>>()?;
        let fds: Vec<_> = irqs.iter().map(|i| Some(i.eventfd())).collect();
        self.backend.set_irq_eventfds(index, 0, &fds)?;
        Ok(irqs)
    }

    /// Disables interrupt index `index` (INTx, MSI or MSI-X).
    pub fn disable_irq(&self, index: u32) -> Result<(), DriverError> {
        self.backend.disable_irq(index)
    }

    /// `VFIO_DEVICE_RESET`.
    pub fn reset(&self) -> Result<(), DriverError> {
        self.backend.reset()
    }

    /// A new zeroed DMA buffer of `len` bytes (whole pages), mapped readable and writable for the
    /// device at the next free IOVA. The buffer is unmapped when dropped.
    pub fn dma_alloc(&self, len: usize) -> Result<DmaBuffer, DriverError> {
        self.dma_alloc_with(len, Access::READ | Access::WRITE)
    }

    /// As [`Device::dma_alloc`], with the device's access limited to `access`.
    pub fn dma_alloc_with(&self, len: usize, access: Access) -> Result<DmaBuffer, DriverError> {
        let mem = DmaMemory::new(len).map_err(|errno| DriverError::Os {
            what: "allocating DMA memory",
            errno,
        })?;
        let size = mem.len() as u64;
        // Align the IOVA to the buffer's size (up to 2 MiB) so large buffers can use large pages.
        let align = size.next_power_of_two().clamp(4096, 2 << 20);
        let iova = {
            let mut next = self.next_iova.lock();
            let start = next
                .checked_next_multiple_of(align)
                .ok_or(DriverError::NoIova(size))?;
            *next = start.checked_add(size).ok_or(DriverError::NoIova(size))?;
            start
        };
        self.dma_map_at(mem, Iova::new(iova), access)
    }

    /// Maps `mem` for the device at `iova` (ignored without an IOMMU: the device then uses the
    /// memory's physical address, which the buffer reports).
    pub fn dma_map_at(&self, mem: DmaMemory, iova: Iova, access: Access) -> Result<DmaBuffer, DriverError> {
        let addr = self.backend.dma_map(&mem, iova, access)?;
        Ok(DmaBuffer::new(Arc::clone(&self.backend), mem, addr))
    }

    /// DMA faults the IOMMU recorded for this device since the last call, where the backend can
    /// see them.
    pub fn dma_faults(&self) -> Option<Vec<(Iova, bool)>> {
        self.backend.dma_faults()
    }
}

impl Region {
    /// The region's index.
    pub fn index(&self) -> u32 {
        self.info.index
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// Its `VFIO_REGION_INFO_FLAG_*`.
    pub fn flags(&self) -> u32 {
        self.info.flags
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), DriverError> {
        let fits = offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= self.info.size);
        if fits {
            Ok(())
        } else {
            Err(DriverError::OutOfRegion {
                index: self.info.index,
                offset,
                len,
                size: self.info.size,
            })
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DriverError> {
        self.check(offset, buf.len())?;
        self.backend.read(self.info.index, offset, buf)
    }

    /// Writes `data` at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DriverError> {
        self.check(offset, data.len())?;
        self.backend.write(self.info.index, offset, data)
    }

    /// A 32-bit little-endian register at `offset`.
    pub fn read32(&self, offset: u64) -> Result<u32, DriverError> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a 32-bit little-endian register at `offset`.
    pub fn write32(&self, offset: u64, value: u32) -> Result<(), DriverError> {
        self.write(offset, &value.to_le_bytes())
    }

    /// A 64-bit little-endian register at `offset`.
    pub fn read64(&self, offset: u64) -> Result<u64, DriverError> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a 64-bit little-endian register at `offset`.
    pub fn write64(&self, offset: u64, value: u64) -> Result<(), DriverError> {
        self.write(offset, &value.to_le_bytes())
    }

    /// A 16-bit little-endian register at `offset`.
    pub fn read16(&self, offset: u64) -> Result<u16, DriverError> {
        let mut b = [0u8; 2];
        self.read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a 16-bit little-endian register at `offset`.
    pub fn write16(&self, offset: u64, value: u16) -> Result<(), DriverError> {
        self.write(offset, &value.to_le_bytes())
    }
}
