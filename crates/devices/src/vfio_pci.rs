//! [`VfioPci`]: an emulated PCI device served through VFIO the way Linux's vfio-pci serves a
//! physical one (`drivers/vfio/pci/vfio_pci_core.c`, `vfio_pci_rdwr.c`, `vfio_pci_config.c`).
//!
//! The device is a [`PciFunction`] (config space, capabilities, interrupt state) plus a
//! [`PciDevice`] (what its BARs decode). The adapter gives VFIO vfio-pci's regions — BAR 0–5
//! (`READ | WRITE`; emulated registers trap, so none is mmap-able), the ROM (`READ`, size 0 without
//! one), the config space (`READ | WRITE`, 256 bytes, 4 KiB for PCI Express), no VGA — and its IRQ
//! indexes (INTx if the function has a pin, MSI and MSI-X as many as their capabilities, ERR for
//! PCI Express, REQ).
//!
//! What vfio-pci does that the adapter does too:
//! - BAR accesses need memory decode: "if (!__vfio_pci_memory_enabled(vdev)) return -EIO".
//! - The MSI-X table and PBA are not the user's to touch through the BAR region: reads of that
//!   range return all ones and writes are dropped (`vfio_pci_core_do_io_rw()`'s `x_start`..`x_end`
//!   exclusion); the VFIO layer programs vectors through `VFIO_DEVICE_SET_IRQS`.
//! - An access is split into naturally aligned 8-, 4-, 2- and 1-byte pieces, as
//!   `vfio_pci_core_do_io_rw()` issues `ioread64/32/16/8`.
//! - Enabling an interrupt mode programs the function as `pci_alloc_irq_vectors()` /
//!   `pci_intx()` would: MSI or MSI-X enabled with the vectors asked for (a fixed message: nothing
//!   decodes it, the adapter routes by vector), INTx unmasked in the command register; disabling
//!   turns them off again.
//!
//! Differences: the user's config writes reach the function directly (vfio-pci virtualizes some
//! fields — BAR addresses, the MSI capability, `INTX_DISABLE`); the function model already keeps
//! read-only bits read-only, and the interrupt enables are re-programmed by the VFIO layer's
//! `irq_mode`.

use parking_lot::Mutex;
use std::sync::Arc;
use uvfio_pci::regs::{
    PCI_CAP_ID_EXP, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE,
    PCI_MSI_ADDRESS_LO, PCI_MSI_DATA_32, PCI_MSI_DATA_64, PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT,
    PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_QSIZE, PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_DATA,
    PCI_MSIX_ENTRY_LOWER_ADDR, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_FLAGS,
    PCI_MSIX_FLAGS_ENABLE,
};
use uvfio_pci::{BarKind, InterruptSink, MessageKind, MsiMessage, PciFunction};
use uvfio_vfio::device::{
    IrqMode, IrqSink, ModelError, RegionDesc, RegionMap, RegionOffset, VfioDeviceModel,
};

/// `VFIO_DEVICE_FLAGS_RESET`.
const FLAGS_RESET: u32 = 1 << 0;
/// `VFIO_DEVICE_FLAGS_PCI`.
const FLAGS_PCI: u32 = 1 << 1;
/// `VFIO_REGION_INFO_FLAG_READ`, `_WRITE`.
const REGION_READ: u32 = 1 << 0;
const REGION_WRITE: u32 = 1 << 1;
/// `VFIO_PCI_NUM_REGIONS` and the indexes of vfio-pci.
const NUM_REGIONS: u32 = 9;
const ROM_INDEX: u32 = 6;
const CONFIG_INDEX: u32 = 7;
/// `VFIO_PCI_*_IRQ_INDEX`.
const INTX: u32 = 0;
const MSI: u32 = 1;
const MSIX: u32 = 2;
const ERR: u32 = 3;
const REQ: u32 = 4;
/// The message address the adapter programs (x86's MSI window; nothing decodes it here).
const MSI_ADDRESS: u32 = 0xfee0_0000;

/// What a PCI device's BARs decode: the device model behind a [`PciFunction`].
pub trait PciDevice: Send + Sync + std::fmt::Debug {
    /// One naturally aligned read of `data.len()` (1, 2, 4 or 8) bytes at `offset` of BAR `bar`.
    fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]);
    /// One naturally aligned write of `data` at `offset` of BAR `bar`.
    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]);
    /// The device's part of a function reset (registers, internal state).
    fn reset(&self);
}

/// An emulated PCI device as vfio-pci serves it.
#[derive(Debug)]
pub struct VfioPci {
    function: Arc<PciFunction>,
    device: Arc<dyn PciDevice>,
    /// The VFIO layer's sink, shared with the function's [`InterruptSink`].
    sink: Arc<SinkSlot>,
}

/// Routes the function's interrupts to the VFIO layer.
#[derive(Default)]
struct SinkSlot {
    sink: Mutex<Option<Arc<dyn IrqSink>>>,
}

impl std::fmt::Debug for SinkSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSlot")
            .field("set", &self.sink.lock().is_some())
            .finish()
    }
}

impl SinkSlot {
    fn trigger(&self, index: u32, vector: u32) {
        let sink = self.sink.lock().clone();
        if let Some(sink) = sink {
            sink.trigger(index, vector);
        }
    }
}

impl InterruptSink for SinkSlot {
    /// vfio-pci's INTx handler runs on the rising edge of the line (the line is then masked
    /// until the user unmasks it).
    fn intx(&self, asserted: bool) {
        if asserted {
            self.trigger(INTX, 0);
        }
    }

    fn msi(&self, message: MsiMessage) {
        let index = match message.kind {
            MessageKind::Msi => MSI,
            MessageKind::MsiX => MSIX,
        };
        self.trigger(index, u32::from(message.vector));
    }
}

impl VfioPci {
    /// `device` behind `function`.
    pub fn new(function: Arc<PciFunction>, device: Arc<dyn PciDevice>) -> Self {
        let sink = Arc::new(SinkSlot::default());
        function.set_sink(Arc::clone(&sink) as Arc<dyn InterruptSink>);
        VfioPci {
            function,
            device,
            sink,
        }
    }

    /// The PCI function.
    pub fn function(&self) -> &Arc<PciFunction> {
        &self.function
    }

    fn is_pcie(&self) -> bool {
        self.function.find_capability(PCI_CAP_ID_EXP).is_some()
    }

    fn config_size(&self) -> u64 {
        if self.is_pcie() { 4096 } else { 256 }
    }

    fn access_error(index: u32, offset: RegionOffset, len: usize, reason: &'static str) -> ModelError {
        ModelError::Access {
            index,
            offset,
            len,
            reason,
        }
    }

    /// Config space: naturally aligned pieces of at most 4 bytes.
    fn config_rw(&self, offset: RegionOffset, buf: &mut [u8], data: Option<&[u8]>) -> Result<(), ModelError> {
        for (at, len) in pieces(offset.raw(), buf.len(), 4) {
            let rel = (at - offset.raw()) as usize;
            match data {
                Some(d) => {
                    let mut v = [0u8; 4];
                    v[..len].copy_from_slice(&d[rel..rel + len]);
                    self.function
                        .config_write(at, len, u32::from_le_bytes(v))
                        .map_err(|_| Self::access_error(CONFIG_INDEX, offset, buf.len(), "config access"))?;
                }
                None => {
                    let v = self
                        .function
                        .config_read(at, len)
                        .map_err(|_| Self::access_error(CONFIG_INDEX, offset, buf.len(), "config access"))?;
                    buf[rel..rel + len].copy_from_slice(&v.to_le_bytes()[..len]);
                }
            }
        }
        Ok(())
    }

    /// A BAR: memory decode on, the MSI-X table and PBA excluded, naturally aligned pieces.
    fn bar_rw(
        &self,
        index: u32,
        offset: RegionOffset,
        buf: &mut [u8],
        data: Option<&[u8]>,
    ) -> Result<(), ModelError> {
        let bar = index as u8;
        let kind = self.function.bar(bar).map(|b| b.kind);
        let enabled = match kind {
            Some(BarKind::Io) => self.function.decodes_io(),
            Some(_) => self.function.decodes_memory(),
            None => false,
        };
        if !enabled {
            // "if (!__vfio_pci_memory_enabled(vdev)) return -EIO;"
            return Err(ModelError::Io(std::io::Error::from_raw_os_error(
                rustix::io::Errno::IO.raw_os_error(),
            )));
        }
        let excluded = self.msix_ranges(bar);
        for (at, len) in pieces(offset.raw(), buf.len(), 8) {
            let rel = (at - offset.raw()) as usize;
            let in_table = excluded
                .iter()
                .any(|&(start, end)| at < end && start < at + len as u64);
            match data {
                Some(d) if !in_table => self.device.bar_write(bar, at, &d[rel..rel + len]),
                Some(_) => {}
                None if in_table => buf[rel..rel + len].fill(0xff),
                None => self.device.bar_read(bar, at, &mut buf[rel..rel + len]),
            }
        }
        Ok(())
    }

    /// The `[start, end)` ranges of `bar` holding the MSI-X table and PBA.
    fn msix_ranges(&self, bar: u8) -> Vec<(u64, u64)> {
        [
            self.function.msix_table_location(),
            self.function.msix_pba_location(),
        ]
        .into_iter()
        .flatten()
        .filter(|l| l.bar == bar)
        .map(|l| (l.offset, l.offset + l.len))
        .collect()
    }

    /// Programs the function's MSI capability: enabled with `vectors` (a power of two) or off.
    fn program_msi(&self, vectors: u32) {
        let Some(cap) = self.function.find_capability(PCI_CAP_ID_MSI) else {
            return;
        };
        let cap = u64::from(cap);
        let flags_at = cap + u64::from(PCI_MSI_FLAGS);
        let flags = self.function.config_read(flags_at, 2).unwrap_or(0) as u16;
        let mut new = flags & !(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
        if vectors > 0 {
            let data_at = if flags & PCI_MSI_FLAGS_64BIT != 0 {
                PCI_MSI_DATA_64
            } else {
                PCI_MSI_DATA_32
            };
            let _ = self
                .function
                .config_write(cap + u64::from(PCI_MSI_ADDRESS_LO), 4, MSI_ADDRESS);
            let _ = self.function.config_write(cap + u64::from(data_at), 2, 0);
            let log2 = vectors.next_power_of_two().trailing_zeros().min(5) as u16;
            new |= PCI_MSI_FLAGS_ENABLE | (log2 << 4);
        }
        let _ = self.function.config_write(flags_at, 2, u32::from(new));
    }

    /// Programs MSI-X: enabled with entries `0..vectors` unmasked, or off with all masked.
    fn program_msix(&self, vectors: u32) {
        let Some(cap) = self.function.find_capability(PCI_CAP_ID_MSIX) else {
            return;
        };
        let flags_at = u64::from(cap) + u64::from(PCI_MSIX_FLAGS);
        let flags = self.function.config_read(flags_at, 2).unwrap_or(0) as u16;
        let size = self.function.msix_state().map_or(0, |s| u32::from(s.table_size));
        for v in 0..size {
            let entry = u64::from(v) * PCI_MSIX_ENTRY_SIZE;
            let masked = v >= vectors;
            if !masked {
                let _ = self.function.msix_table_write(
                    entry + PCI_MSIX_ENTRY_LOWER_ADDR,
                    4,
                    u64::from(MSI_ADDRESS),
                );
                let _ = self
                    .function
                    .msix_table_write(entry + PCI_MSIX_ENTRY_DATA, 4, u64::from(v));
            }
            let ctrl = if masked { PCI_MSIX_ENTRY_CTRL_MASKBIT } else { 0 };
            let _ = self
                .function
                .msix_table_write(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, u64::from(ctrl));
        }
        let new = if vectors > 0 {
            flags | PCI_MSIX_FLAGS_ENABLE
        } else {
            flags & !PCI_MSIX_FLAGS_ENABLE
        };
        let _ = self.function.config_write(flags_at, 2, u32::from(new));
    }

    /// `pci_intx(pdev, enable)`: clears or sets `PCI_COMMAND_INTX_DISABLE`.
    fn program_intx(&self, enable: bool) {
        let at = u64::from(PCI_COMMAND);
        let cmd = self.function.config_read(at, 2).unwrap_or(0) as u16;
        let new = if enable {
            cmd & !PCI_COMMAND_INTX_DISABLE
        } else {
            cmd | PCI_COMMAND_INTX_DISABLE
        };
        if new != cmd {
            let _ = self.function.config_write(at, 2, u32::from(new));
        }
    }
}

/// Splits `[offset, offset + len)` into naturally aligned pieces of at most `max` bytes.
fn pieces(offset: u64, len: usize, max: usize) -> impl Iterator<Item = (u64, usize)> {
    let end = offset + len as u64;
    let mut at = offset;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let left = (end - at) as usize;
        let size = [8usize, 4, 2, 1]
            .into_iter()
            .find(|&s| s <= max && s <= left && at % s as u64 == 0)
            .unwrap_or(1);
        let piece = (at, size);
        at += size as u64;
        Some(piece)
    })
}

impl VfioDeviceModel for VfioPci {
    fn flags(&self) -> u32 {
        FLAGS_PCI | FLAGS_RESET
    }

    fn num_regions(&self) -> u32 {
        NUM_REGIONS
    }

    fn region(&self, index: u32) -> Option<RegionDesc> {
        let desc = |size: u64, flags: u32| RegionDesc {
            size,
            flags: if size == 0 { 0 } else { flags },
            ..RegionDesc::default()
        };
        match index {
            0..=5 => Some(desc(
                self.function.bar(index as u8).map_or(0, |b| b.size),
                REGION_READ | REGION_WRITE,
            )),
            ROM_INDEX => Some(desc(
                self.function.rom().map_or(0, |r| u64::from(r.size)),
                REGION_READ,
            )),
            CONFIG_INDEX => Some(desc(self.config_size(), REGION_READ | REGION_WRITE)),
            _ => None,
        }
    }

    fn read(&self, index: u32, offset: RegionOffset, buf: &mut [u8]) -> Result<(), ModelError> {
        match index {
            0..=5 => self.bar_rw(index, offset, buf, None),
            CONFIG_INDEX => self.config_rw(offset, buf, None),
            // The ROM has no contents here.
            ROM_INDEX => {
                buf.fill(0);
                Ok(())
            }
            _ => Err(Self::access_error(index, offset, buf.len(), "no such region")),
        }
    }

    fn write(&self, index: u32, offset: RegionOffset, data: &[u8]) -> Result<(), ModelError> {
        let mut scratch = vec![0u8; data.len()];
        match index {
            0..=5 => self.bar_rw(index, offset, &mut scratch, Some(data)),
            CONFIG_INDEX => self.config_rw(offset, &mut scratch, Some(data)),
            _ => Err(Self::access_error(
                index,
                offset,
                data.len(),
                "read-only or no such region",
            )),
        }
    }

    fn mmap(&self, index: u32, offset: RegionOffset, len: u64) -> Result<RegionMap, ModelError> {
        Err(ModelError::NotMappable { index, offset, len })
    }

    fn irq_count(&self, index: u32) -> u32 {
        match index {
            INTX => u32::from(self.function.interrupt_pin().is_some()),
            MSI => self
                .function
                .msi_state()
                .map_or(0, |s| u32::from(s.vectors_capable)),
            MSIX => self.function.msix_state().map_or(0, |s| u32::from(s.table_size)),
            ERR => u32::from(self.is_pcie()),
            REQ => 1,
            _ => 0,
        }
    }

    fn set_irq_sink(&self, sink: Arc<dyn IrqSink>) {
        *self.sink.sink.lock() = Some(sink);
    }

    fn irq_mode(&self, mode: IrqMode) {
        match mode {
            IrqMode::None => {
                self.program_msi(0);
                self.program_msix(0);
                self.program_intx(false);
            }
            IrqMode::Intx => self.program_intx(true),
            IrqMode::Msi { vectors } => self.program_msi(vectors),
            IrqMode::Msix { vectors } => self.program_msix(vectors),
        }
    }

    fn reset(&self) -> Result<(), ModelError> {
        self.device.reset();
        self.function.reset();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn accesses_split_into_naturally_aligned_pieces() {
        let p: Vec<_> = pieces(0x3, 13, 8).collect();
        assert_eq!(p, vec![(0x3, 1), (0x4, 4), (0x8, 8)]);
        let p: Vec<_> = pieces(0x2, 8, 4).collect();
        assert_eq!(p, vec![(0x2, 2), (0x4, 4), (0x8, 2)]);
        assert_eq!(pieces(0, 0, 4).count(), 0);
    }
}
