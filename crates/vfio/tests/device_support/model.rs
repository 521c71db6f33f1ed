//! The test double of a device model: a 256-byte config space backed by memory, a 4 KiB BAR0 of
//! registers (writing register 0 raises INTx, writing `n` to register 4 raises vector `n` of
//! whichever of MSI / MSI-X is enabled), an 8 KiB mmap-able BAR2 backed by a memfd (its second
//! page a sparse mmap area, and MSI-X mappable, so both region capabilities show), INTx, 4 MSI
//! vectors, 8 MSI-X vectors, no ERR (not PCI Express), REQ. Reset clears BAR0.
//!
//! Shared by the vfio crate's device tests and the host's (`#[path]`), so it uses nothing but the
//! vfio crate's public API.
#![allow(dead_code)]

use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR2_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_REGIONS, VFIO_PCI_REQ_IRQ_INDEX, VFIO_PCI_VGA_REGION_INDEX, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use uvfio_vfio::device::{
    IrqMode, IrqSink, ModelError, RegionDesc, RegionMap, RegionOffset, SparseArea, VfioDeviceModel,
};

pub const CONFIG_SIZE: u64 = 256;
pub const BAR0_SIZE: u64 = 4096;
pub const BAR2_SIZE: u64 = 8192;
pub const MSI_VECTORS: u32 = 4;
pub const MSIX_VECTORS: u32 = 8;
/// BAR0 register: any write raises INTx.
pub const REG_INTX: u64 = 0;
/// BAR0 register: writing `n` raises vector `n` of the enabled MSI / MSI-X.
pub const REG_MSI: u64 = 4;
/// BAR2's sparse mmap area: its second page.
pub const BAR2_SPARSE: SparseArea = SparseArea {
    offset: RegionOffset::new(4096),
    size: 4096,
};
/// The vendor and device id at the start of config space (QEMU's edu).
pub const VENDOR_DEVICE: u32 = 0x11e8_1234;

pub struct TestDevice {
    reset_works: bool,
    config: Mutex<Vec<u8>>,
    bar0: Mutex<Vec<u8>>,
    bar2: OwnedFd,
    sink: Mutex<Option<Arc<dyn IrqSink>>>,
    /// Every mode VFIO set, in order.
    modes: Mutex<Vec<IrqMode>>,
    resets: AtomicUsize,
}

impl std::fmt::Debug for TestDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDevice")
            .field("reset_works", &self.reset_works)
            .field("modes", &self.modes.lock())
            .finish_non_exhaustive()
    }
}

impl TestDevice {
    /// A device whose reset works.
    pub fn new() -> Arc<Self> {
        Self::with_reset(true)
    }

    /// A device without `VFIO_DEVICE_FLAGS_RESET`.
    pub fn without_reset() -> Arc<Self> {
        Self::with_reset(false)
    }

    fn with_reset(reset_works: bool) -> Arc<Self> {
        let bar2 = rustix::fs::memfd_create("test-bar2", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&bar2, BAR2_SIZE).unwrap();
        let mut config = vec![0u8; CONFIG_SIZE as usize];
        config[..4].copy_from_slice(&VENDOR_DEVICE.to_le_bytes());
        Arc::new(TestDevice {
            reset_works,
            config: Mutex::new(config),
            bar0: Mutex::new(vec![0u8; BAR0_SIZE as usize]),
            bar2,
            sink: Mutex::new(None),
            modes: Mutex::new(Vec::new()),
            resets: AtomicUsize::new(0),
        })
    }

    /// The model as VFIO takes it.
    pub fn model(self: &Arc<Self>) -> Arc<dyn VfioDeviceModel> {
        Arc::clone(self) as Arc<dyn VfioDeviceModel>
    }

    /// The last mode VFIO set (`None` if never).
    pub fn mode(&self) -> IrqMode {
        self.modes.lock().last().copied().unwrap_or_default()
    }

    /// Every mode VFIO set, in order.
    pub fn modes(&self) -> Vec<IrqMode> {
        self.modes.lock().clone()
    }

    /// How many times VFIO reset the device.
    pub fn resets(&self) -> usize {
        self.resets.load(Ordering::Relaxed)
    }

    /// Raises an interrupt directly (as a device's own logic would).
    pub fn raise(&self, index: u32, vector: u32) {
        let sink = self.sink.lock().clone();
        if let Some(s) = sink {
            s.trigger(index, vector);
        }
    }

    /// A BAR0 register's value, as the device holds it.
    pub fn bar0_u32(&self, offset: u64) -> u32 {
        let bar0 = self.bar0.lock();
        let at = offset as usize;
        u32::from_le_bytes(bar0[at..at + 4].try_into().unwrap())
    }

    /// The bytes of BAR2 at `offset`, as its memfd holds them.
    pub fn bar2_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        rustix::io::pread(&self.bar2, &mut buf, offset).unwrap();
        buf
    }

    /// BAR0 takes 1, 2, 4 and 8-byte naturally aligned accesses.
    fn check_register(index: u32, offset: RegionOffset, len: usize) -> Result<(), ModelError> {
        if !matches!(len, 1 | 2 | 4 | 8) || offset.raw() % len as u64 != 0 {
            return Err(ModelError::Access {
                index,
                offset,
                len,
                reason: "registers take naturally aligned 1, 2, 4 or 8 bytes",
            });
        }
        Ok(())
    }
}

fn io(e: rustix::io::Errno) -> ModelError {
    ModelError::Io(e.into())
}

impl VfioDeviceModel for TestDevice {
    fn flags(&self) -> u32 {
        if self.reset_works {
            VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET
        } else {
            VFIO_DEVICE_FLAGS_PCI
        }
    }

    fn num_regions(&self) -> u32 {
        VFIO_PCI_NUM_REGIONS
    }

    fn region(&self, index: u32) -> Option<RegionDesc> {
        let rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
        Some(match index {
            VFIO_PCI_BAR0_REGION_INDEX => RegionDesc {
                size: BAR0_SIZE,
                flags: rw,
                ..RegionDesc::default()
            },
            VFIO_PCI_BAR2_REGION_INDEX => RegionDesc {
                size: BAR2_SIZE,
                flags: rw | VFIO_REGION_INFO_FLAG_MMAP,
                sparse: vec![BAR2_SPARSE],
                msix_mappable: true,
            },
            VFIO_PCI_CONFIG_REGION_INDEX => RegionDesc {
                size: CONFIG_SIZE,
                flags: rw,
                ..RegionDesc::default()
            },
            // No VGA: vfio-pci refuses the index.
            VFIO_PCI_VGA_REGION_INDEX => return None,
            // BAR1, BAR3-5 and the ROM are absent.
            _ => RegionDesc::default(),
        })
    }

    fn read(&self, index: u32, offset: RegionOffset, buf: &mut [u8]) -> Result<(), ModelError> {
        let at = offset.raw() as usize;
        match index {
            VFIO_PCI_BAR0_REGION_INDEX => {
                Self::check_register(index, offset, buf.len())?;
                buf.copy_from_slice(&self.bar0.lock()[at..at + buf.len()]);
            }
            VFIO_PCI_BAR2_REGION_INDEX => {
                rustix::io::pread(&self.bar2, buf, offset.raw()).map_err(io)?;
            }
            VFIO_PCI_CONFIG_REGION_INDEX => buf.copy_from_slice(&self.config.lock()[at..at + buf.len()]),
            _ => unreachable!("VFIO passed an access to region {index}"),
        }
        Ok(())
    }

    fn write(&self, index: u32, offset: RegionOffset, data: &[u8]) -> Result<(), ModelError> {
        let at = offset.raw() as usize;
        match index {
            VFIO_PCI_BAR0_REGION_INDEX => {
                Self::check_register(index, offset, data.len())?;
                self.bar0.lock()[at..at + data.len()].copy_from_slice(data);
                if offset.raw() == REG_INTX {
                    self.raise(VFIO_PCI_INTX_IRQ_INDEX, 0);
                } else if offset.raw() == REG_MSI && data.len() == 4 {
                    let vector = u32::from_le_bytes(data.try_into().unwrap());
                    match self.mode() {
                        IrqMode::Msi { .. } => self.raise(VFIO_PCI_MSI_IRQ_INDEX, vector),
                        IrqMode::Msix { .. } => self.raise(VFIO_PCI_MSIX_IRQ_INDEX, vector),
                        _ => {}
                    }
                }
            }
            VFIO_PCI_BAR2_REGION_INDEX => {
                rustix::io::pwrite(&self.bar2, data, offset.raw()).map_err(io)?;
            }
            VFIO_PCI_CONFIG_REGION_INDEX => self.config.lock()[at..at + data.len()].copy_from_slice(data),
            _ => unreachable!("VFIO passed an access to region {index}"),
        }
        Ok(())
    }

    fn mmap(&self, index: u32, offset: RegionOffset, len: u64) -> Result<RegionMap, ModelError> {
        if index != VFIO_PCI_BAR2_REGION_INDEX {
            return Err(ModelError::NotMappable { index, offset, len });
        }
        Ok(RegionMap {
            fd: self.bar2.try_clone().map_err(ModelError::Io)?,
            file_offset: offset.raw(),
            len,
        })
    }

    fn irq_count(&self, index: u32) -> u32 {
        match index {
            VFIO_PCI_INTX_IRQ_INDEX => 1,
            VFIO_PCI_MSI_IRQ_INDEX => MSI_VECTORS,
            VFIO_PCI_MSIX_IRQ_INDEX => MSIX_VECTORS,
            VFIO_PCI_REQ_IRQ_INDEX => 1,
            _ => 0,
        }
    }

    fn set_irq_sink(&self, sink: Arc<dyn IrqSink>) {
        *self.sink.lock() = Some(sink);
    }

    fn irq_mode(&self, mode: IrqMode) {
        self.modes.lock().push(mode);
    }

    fn reset(&self) -> Result<(), ModelError> {
        self.bar0.lock().fill(0);
        self.resets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
