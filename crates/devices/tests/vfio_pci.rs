//! `VfioPci` against vfio-pci's behaviour, with a PCI Express function that has MSI-X and a
//! register BAR: the regions it reports, memory decode gating BAR accesses with `EIO`, the MSI-X
//! table and PBA hidden from the BAR region, access splitting, IRQ counts, interrupt modes
//! programmed on the function and routed to the VFIO sink, and reset.

use parking_lot::Mutex;
use std::sync::Arc;
use uvfio_devices::{PciDevice, VfioPci};
use uvfio_pci::{BarConfig, ClassCode, HeaderConfig, InterruptPin, MsixConfig, PciFunction, PcieConfig};
use uvfio_vfio::device::{IrqMode, IrqSink, RegionOffset, VfioDeviceModel};

/// A BAR 0 of 4 KiB registers (bytes) and a BAR 2 holding the MSI-X table at 0 and PBA at 0x800;
/// every access is logged.
#[derive(Debug, Default)]
struct Regs {
    bytes: Mutex<Vec<u8>>,
    log: Mutex<Vec<(u8, u64, usize, bool)>>,
    resets: Mutex<u32>,
}

impl PciDevice for Regs {
    fn bar_read(&self, bar: u8, offset: u64, data: &mut [u8]) {
        self.log.lock().push((bar, offset, data.len(), false));
        let bytes = self.bytes.lock();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes[offset as usize + i];
        }
    }
    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) {
        self.log.lock().push((bar, offset, data.len(), true));
        self.bytes.lock()[offset as usize..offset as usize + data.len()].copy_from_slice(data);
    }
    fn reset(&self) {
        *self.resets.lock() += 1;
        self.bytes.lock().fill(0);
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<(u32, u32)>>);

impl IrqSink for Sink {
    fn trigger(&self, index: u32, vector: u32) {
        self.0.lock().push((index, vector));
    }
}

fn rig() -> (Arc<PciFunction>, Arc<Regs>, VfioPci, Arc<Sink>) {
    let function = PciFunction::builder(HeaderConfig {
        vendor_id: 0x1b36,
        device_id: 0x0010,
        revision_id: 1,
        class_code: ClassCode {
            base: 0x01,
            sub: 0x08,
            prog_if: 0x02,
        },
        subsystem_vendor_id: 0,
        subsystem_id: 0,
        multifunction: false,
        interrupt_pin: Some(InterruptPin::IntA),
    })
    .bar(0, BarConfig::memory32(4096))
    .bar(2, BarConfig::memory64(4096))
    .msix(MsixConfig {
        table_size: 4,
        table_bar: 2,
        table_offset: 0,
        pba_bar: 2,
        pba_offset: 0x800,
    })
    .pcie(PcieConfig::default())
    .build()
    .unwrap();
    let function = Arc::new(function);
    let regs = Arc::new(Regs {
        bytes: Mutex::new(vec![0; 4096]),
        ..Regs::default()
    });
    let vfio = VfioPci::new(Arc::clone(&function), Arc::clone(&regs) as Arc<dyn PciDevice>);
    let sink = Arc::new(Sink::default());
    vfio.set_irq_sink(Arc::clone(&sink) as Arc<dyn IrqSink>);
    (function, regs, vfio, sink)
}

fn enable_memory(vfio: &VfioPci) {
    vfio.write(7, RegionOffset::new(4), &0x6u16.to_le_bytes())
        .unwrap();
}

#[test]
fn regions_are_vfio_pcis() {
    let (_, _, vfio, _) = rig();
    assert_eq!(vfio.num_regions(), 9);
    assert_eq!(vfio.region(0).unwrap().size, 4096);
    assert_eq!(vfio.region(1).unwrap().size, 0, "BAR 1 does not exist");
    assert_eq!(vfio.region(1).unwrap().flags, 0);
    assert_eq!(
        vfio.region(2).unwrap().size,
        4096,
        "a 64-bit BAR, reported at its lower index"
    );
    assert_eq!(vfio.region(3).unwrap().size, 0, "its upper half is no region");
    assert_eq!(
        vfio.region(7).unwrap().size,
        4096,
        "PCI Express: extended config space"
    );
    assert!(vfio.region(8).is_none(), "no VGA");
    assert_eq!(
        vfio.region(0).unwrap().flags & 4,
        0,
        "trapped registers: not mmap-able"
    );
    let mut id = [0u8; 4];
    vfio.read(7, RegionOffset::ZERO, &mut id).unwrap();
    assert_eq!(u32::from_le_bytes(id), 0x0010_1b36);
}

#[test]
fn bar_accesses_need_memory_decode_and_are_split_into_aligned_pieces() {
    let (_, regs, vfio, _) = rig();
    let mut b = [0u8; 4];
    let err = vfio.read(0, RegionOffset::new(0), &mut b).unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::IO);
    assert!(regs.log.lock().is_empty(), "nothing reached the device");
    enable_memory(&vfio);
    vfio.write(0, RegionOffset::new(0x3), &[1; 13]).unwrap();
    assert_eq!(
        *regs.log.lock(),
        vec![(0, 0x3, 1, true), (0, 0x4, 4, true), (0, 0x8, 8, true)]
    );
    let mut back = [0u8; 13];
    vfio.read(0, RegionOffset::new(0x3), &mut back).unwrap();
    assert_eq!(back, [1; 13]);
}

#[test]
fn the_msix_table_and_pba_are_not_the_users_through_the_bar() {
    let (function, regs, vfio, _) = rig();
    enable_memory(&vfio);
    // The table reads as all ones and a write to it is dropped, the entry unchanged.
    let mut entry = [0u8; 16];
    vfio.read(2, RegionOffset::new(0), &mut entry).unwrap();
    assert_eq!(entry, [0xff; 16]);
    vfio.write(2, RegionOffset::new(0xc), &0u32.to_le_bytes())
        .unwrap();
    assert!(function.msix_entry(0).unwrap().masked, "still masked");
    let mut pba = [0u8; 8];
    vfio.read(2, RegionOffset::new(0x800), &mut pba).unwrap();
    assert_eq!(pba, [0xff; 8]);
    assert!(regs.log.lock().is_empty(), "the device saw none of it");
}

#[test]
fn irq_counts_modes_and_routing() {
    let (function, _, vfio, sink) = rig();
    assert_eq!(
        [0, 1, 2, 3, 4].map(|i| vfio.irq_count(i)),
        [1, 0, 4, 1, 1],
        "INTx, no MSI, 4 MSI-X, ERR (PCIe), REQ"
    );
    // Bus mastering on (messages are memory writes), then MSI-X with 2 vectors.
    vfio.write(7, RegionOffset::new(4), &0x6u16.to_le_bytes())
        .unwrap();
    vfio.irq_mode(IrqMode::Msix { vectors: 2 });
    assert!(function.msix_state().unwrap().enabled);
    assert!(!function.msix_entry(1).unwrap().masked);
    assert!(
        function.msix_entry(2).unwrap().masked,
        "beyond the enabled vectors"
    );
    function.notify_msix(1).unwrap();
    function.notify_msix(3).unwrap();
    assert_eq!(
        *sink.0.lock(),
        vec![(2, 1)],
        "vector 3 is masked: pending, not sent"
    );
    vfio.irq_mode(IrqMode::None);
    assert!(!function.msix_state().unwrap().enabled);
    // INTx: the line's rising edge reaches the sink.
    vfio.irq_mode(IrqMode::Intx);
    function.assert_intx().unwrap();
    function.deassert_intx().unwrap();
    assert_eq!(sink.0.lock().last(), Some(&(0, 0)));
    vfio.irq_mode(IrqMode::None);
    let before = sink.0.lock().len();
    function.assert_intx().unwrap();
    assert_eq!(
        sink.0.lock().len(),
        before,
        "INTX_DISABLE set: the line stays low"
    );
}

#[test]
fn reset_resets_the_device_and_the_function() {
    let (function, regs, vfio, _) = rig();
    enable_memory(&vfio);
    vfio.write(0, RegionOffset::new(0), &[9; 4]).unwrap();
    vfio.reset().unwrap();
    assert_eq!(*regs.resets.lock(), 1);
    assert_eq!(regs.bytes.lock()[0], 0);
    assert!(!function.decodes_memory(), "the command register is back to 0");
}
