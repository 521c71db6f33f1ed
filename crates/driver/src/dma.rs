//! [`DmaBuffer`]: memory the device may DMA to, mapped for as long as the buffer lives.

use crate::backend::DeviceBackend;
use crate::error::DriverError;
use crate::sys::DmaMemory;
use std::sync::Arc;
use uvfio_types::Iova;

/// A DMA buffer: driver memory mapped for the device at [`DmaBuffer::device_addr`]. Dropping it
/// unmaps it first (after which the device can no longer reach it) and then frees the memory, so
/// the driver cannot use memory the device still reaches, nor the device memory the driver freed.
#[derive(Debug)]
pub struct DmaBuffer {
    backend: Arc<dyn DeviceBackend>,
    /// `None` only while dropping.
    mem: Option<DmaMemory>,
    addr: Iova,
}

impl DmaBuffer {
    pub(crate) fn new(backend: Arc<dyn DeviceBackend>, mem: DmaMemory, addr: Iova) -> Self {
        DmaBuffer {
            backend,
            mem: Some(mem),
            addr,
        }
    }

    fn mem(&self) -> &DmaMemory {
        // Set from construction until `drop`.
        self.mem
            .as_ref()
            .unwrap_or_else(|| unreachable!("a DmaBuffer's memory lives until drop"))
    }

    /// The address the device uses for the buffer's first byte (an IOVA, or a physical address
    /// without an IOMMU).
    pub fn device_addr(&self) -> Iova {
        self.addr
    }

    /// Its length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.mem().len()
    }

    /// Whether it is empty (never).
    pub fn is_empty(&self) -> bool {
        self.mem().is_empty()
    }

    /// Its address in this process.
    pub fn va(&self) -> u64 {
        self.mem().va()
    }

    /// Copies bytes out of the buffer.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DriverError> {
        let size = self.len();
        self.mem()
            .read(offset, buf)
            .map_err(|_| DriverError::OutOfBuffer {
                offset,
                len: buf.len(),
                size,
            })
    }

    /// Copies bytes into the buffer.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), DriverError> {
        let size = self.len();
        self.mem()
            .write(offset, data)
            .map_err(|_| DriverError::OutOfBuffer {
                offset,
                len: data.len(),
                size,
            })
    }

    /// Unmaps and frees the buffer, reporting an unmap failure (dropping it ignores one).
    pub fn free(mut self) -> Result<(), DriverError> {
        self.unmap()
    }

    fn unmap(&mut self) -> Result<(), DriverError> {
        match self.mem.take() {
            Some(mem) => {
                let result = self.backend.dma_unmap(&mem, self.addr);
                // Freed only once the device can no longer reach it; if the unmap failed the
                // mapping may still be live, so the memory is kept (leaked) rather than reused.
                if result.is_err() {
                    std::mem::forget(mem);
                }
                result
            }
            None => Ok(()),
        }
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        let _ = self.unmap();
    }
}
