//! The edu device as a PCI function (QEMU `hw/misc/edu.c`'s `pci_edu_realize()`): `1234:11e8`,
//! revision 0x10, class `PCI_CLASS_OTHERS`, INTA, one 32-bit, non-prefetchable memory BAR of
//! 1 MiB, and an MSI capability with one vector and 64-bit addresses (`msi_init(pdev, 0, 1,
//! true, false, errp)`), served through VFIO by [`VfioPci`].

use crate::edu::{EDU_BAR0_SIZE, Edu};
use crate::vfio_pci::{PciDevice, VfioPci};
use crate::{DmaSource, EduBus};
use std::sync::Arc;
use uvfio_pci::{BarConfig, BuildError, ClassCode, HeaderConfig, InterruptPin, MsiConfig, PciFunction};

/// QEMU's vendor id.
pub const EDU_VENDOR: u16 = 0x1234;
/// The edu device id.
pub const EDU_DEVICE: u16 = 0x11e8;

/// The edu PCI function: header, BAR 0 and MSI.
pub fn edu_function() -> Result<PciFunction, BuildError> {
    PciFunction::builder(HeaderConfig {
        vendor_id: EDU_VENDOR,
        device_id: EDU_DEVICE,
        revision_id: 0x10,
        // PCI_CLASS_OTHERS (0xff00).
        class_code: ClassCode {
            base: 0xff,
            sub: 0x00,
            prog_if: 0,
        },
        subsystem_vendor_id: 0x1af4,
        subsystem_id: 0x1100,
        multifunction: false,
        interrupt_pin: Some(InterruptPin::IntA),
    })
    .bar(0, BarConfig::memory32(EDU_BAR0_SIZE))
    .msi(MsiConfig {
        vectors: 1,
        address64: true,
        per_vector_mask: false,
    })
    .build()
}

impl EduBus for PciFunction {
    fn bus_master(&self) -> bool {
        PciFunction::bus_master(self)
    }

    fn msi_enabled(&self) -> bool {
        self.msi_state().is_some_and(|s| s.enabled)
    }

    fn notify_msi(&self, vector: u32) {
        // A message the function cannot send now (masked, bus mastering off) is its business.
        let _ = PciFunction::notify_msi(self, u16::try_from(vector).unwrap_or(u16::MAX));
    }

    fn set_intx(&self, asserted: bool) {
        let _ = if asserted {
            self.assert_intx()
        } else {
            self.deassert_intx()
        };
    }
}

/// The edu device's BAR 0 as a [`PciDevice`].
#[derive(Debug)]
pub struct EduPci {
    edu: Edu,
}

impl EduPci {
    /// The edu model behind the BAR.
    pub fn edu(&self) -> &Edu {
        &self.edu
    }
}

impl PciDevice for EduPci {
    fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) {
        let value = if bar == 0 {
            self.edu.mmio_read(offset, data.len())
        } else {
            u64::MAX
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) {
        if bar != 0 || data.len() > 8 {
            return;
        }
        let mut bytes = [0u8; 8];
        bytes[..data.len()].copy_from_slice(data);
        self.edu.mmio_write(offset, data.len(), u64::from_le_bytes(bytes));
    }

    fn reset(&self) {
        self.edu.reset();
    }
}

/// A new edu device whose DMA goes through `dma`, as VFIO serves it; also its model, for
/// inspection.
pub fn edu_vfio(dma: Arc<dyn DmaSource>, dma_mask: u64) -> Result<(Arc<VfioPci>, Arc<EduPci>), BuildError> {
    let function = Arc::new(edu_function()?);
    let edu = Edu::new(Arc::clone(&function) as Arc<dyn EduBus>, dma, dma_mask);
    let device = Arc::new(EduPci { edu });
    let vfio = Arc::new(VfioPci::new(function, Arc::clone(&device) as Arc<dyn PciDevice>));
    Ok((vfio, device))
}
