//! A fully featured function and a recording sink, shared by the integration tests.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::sync::{Arc, Mutex};
use uvfio_pci::regs::*;
use uvfio_pci::*;

/// Capability offsets of [`full_function`] (declaration order from 0x40, DWORD aligned).
pub const PM: u16 = 0x40;
pub const MSI: u16 = 0x48;
pub const MSIX: u16 = 0x60;
pub const EXP: u16 = 0x6c;

/// MSI-X: 16 entries, table at BAR 0 + 0x2000, PBA at BAR 0 + 0x3000.
pub const MSIX_VECTORS: u16 = 16;
pub const TABLE: u64 = 0x2000;
pub const PBA: u64 = 0x3000;

pub fn header() -> HeaderConfig {
    HeaderConfig {
        vendor_id: 0x1b36,
        device_id: 0x0010,
        revision_id: 0x02,
        class_code: ClassCode {
            base: 0x01,
            sub: 0x08,
            prog_if: 0x02,
        },
        subsystem_vendor_id: 0x1af4,
        subsystem_id: 0x1100,
        multifunction: false,
        interrupt_pin: Some(InterruptPin::IntA),
    }
}

/// An NVMe-like endpoint with every feature: four BAR kinds, a ROM, PM, 4-vector MSI with
/// per-vector masking, 16-vector MSI-X and the PCI Express capability.
pub fn full_builder() -> PciFunctionBuilder {
    PciFunction::builder(header())
        .bar(0, BarConfig::memory64(0x4000))
        .bar(2, BarConfig::memory32(0x1000).prefetchable())
        .bar(3, BarConfig::io(0x20))
        .bar(4, BarConfig::memory64(1 << 33).prefetchable())
        .rom(0x1_0000)
        .power_management(PmConfig::default())
        .msi(MsiConfig {
            vectors: 4,
            address64: true,
            per_vector_mask: true,
        })
        .msix(MsixConfig {
            table_size: MSIX_VECTORS,
            table_bar: 0,
            table_offset: TABLE as u32,
            pba_bar: 0,
            pba_offset: PBA as u32,
        })
        .pcie(PcieConfig::default())
}

pub fn full_function() -> Arc<PciFunction> {
    Arc::new(full_builder().build().unwrap())
}

pub fn read(f: &PciFunction, offset: u16, len: usize) -> u32 {
    f.config_read(u64::from(offset), len).unwrap()
}

pub fn write(f: &PciFunction, offset: u16, len: usize, value: u32) {
    f.config_write(u64::from(offset), len, value).unwrap()
}

/// Sets bits in the 16-bit register at `offset` (read-modify-write, as a driver does).
pub fn set16(f: &PciFunction, offset: u16, bits: u16) {
    let old = read(f, offset, 2) as u16;
    write(f, offset, 2, u32::from(old | bits));
}

/// Clears bits in the 16-bit register at `offset`.
pub fn clear16(f: &PciFunction, offset: u16, bits: u16) {
    let old = read(f, offset, 2) as u16;
    write(f, offset, 2, u32::from(old & !bits));
}

/// What a sink heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Intx(bool),
    Msg(MsiMessage),
}

/// A sink that records everything.
#[derive(Debug, Default)]
pub struct Recorder {
    heard: Mutex<Vec<Heard>>,
}

impl Recorder {
    pub fn attach(f: &PciFunction) -> Arc<Recorder> {
        let rec = Arc::new(Recorder::default());
        f.set_sink(rec.clone());
        rec
    }

    /// Everything heard since the last call.
    pub fn take(&self) -> Vec<Heard> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }
}

impl InterruptSink for Recorder {
    fn intx(&self, asserted: bool) {
        self.heard.lock().unwrap().push(Heard::Intx(asserted));
    }

    fn msi(&self, message: MsiMessage) {
        self.heard.lock().unwrap().push(Heard::Msg(message));
    }
}

/// Programs MSI-X entry `vector` with address `0xfee0_0000 + vector * 0x10` and data
/// `0x4000 + vector`, leaving its mask bit as `masked`.
pub fn program_msix_entry(f: &PciFunction, vector: u16, masked: bool) {
    let base = u64::from(vector) * 16;
    f.msix_table_write(base, 8, 0xfee0_0000 + u64::from(vector) * 0x10)
        .unwrap();
    f.msix_table_write(
        base + 8,
        8,
        u64::from(masked) << 32 | (0x4000 + u64::from(vector)),
    )
    .unwrap();
}

pub fn msix_message(vector: u16) -> MsiMessage {
    MsiMessage {
        kind: MessageKind::MsiX,
        vector,
        address: 0xfee0_0000 + u64::from(vector) * 0x10,
        data: 0x4000 + u32::from(vector),
    }
}

/// Turns on bus mastering and memory decoding.
pub fn enable_master(f: &PciFunction) {
    set16(f, PCI_COMMAND, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
}
