//! A user-space driver for QEMU's edu device (QEMU `docs/specs/edu.rst`), written against
//! uvfio's driver API: the file to copy when writing a driver of your own.
//!
//! It enables the device (memory decode, bus mastering), checks its identification and liveness
//! registers, computes a factorial and waits for the interrupt that announces the result, copies
//! a buffer to the device and back with the DMA engine, and then DMAs on purpose to an IOVA it
//! never mapped: the IOMMU refuses the write, the buffer stays untouched, and the fault is
//! reported.
//!
//! Run it on the embedded host (one edu device behind uvfio's software IOMMU):
//!
//! ```sh
//! cargo run -p uvfio-driver --example edu_driver            # type1v2 container
//! cargo run -p uvfio-driver --example edu_driver -- cdev    # iommufd + device cdev
//! cargo run -p uvfio-driver --example edu_driver -- noiommu # unsafe no-IOMMU mode
//! cargo run -p uvfio-driver --example edu_driver -- vfio-user /tmp/edu.sock  # a remote device,
//!                                                  # e.g. `uvfio serve --socket /tmp/edu.sock`
//! ```

use std::sync::Arc;
use std::time::Duration;
use uvfio_driver::{Device, DmaBuffer, DriverError, HostBackend, Interrupt, Mode, VfioUserBackend};
use uvfio_types::Iova;

/// The edu registers this driver uses (edu.rst, "MMIO area spec").
const ID: u64 = 0x00;
const LIVENESS: u64 = 0x04;
const FACTORIAL: u64 = 0x08;
const STATUS: u64 = 0x20;
const IRQ_STATUS: u64 = 0x24;
const IRQ_ACK: u64 = 0x64;
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
/// Status: raise an interrupt when the factorial is done.
const STATUS_IRQFACT: u32 = 0x80;
/// DMA command: start, direction EDU → RAM, interrupt when done.
const DMA_START: u64 = 0x01;
const DMA_TO_RAM: u64 = 0x02;
const DMA_IRQ: u64 = 0x04;
/// The device's buffer, in its own address space.
const EDU_BUFFER: u64 = 0x40000;
/// PCI command register bits (`PCI_COMMAND_MEMORY`, `PCI_COMMAND_MASTER`).
const PCI_COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 0x2;
const COMMAND_MASTER: u16 = 0x4;
/// An IOVA this driver never maps (below the edu's 28-bit DMA mask).
const UNMAPPED: u64 = 0x0dea_d000;

/// What the driver did, for its caller to print.
#[derive(Debug, Default)]
pub struct EduReport {
    /// The identification register (`0xRRrr00ed`).
    pub id: u32,
    /// The liveness register returned the inverse of what was written.
    pub alive: bool,
    /// 10! as the device computed it.
    pub factorial: u32,
    /// Interrupts received (factorial, DMA in, DMA out, the faulting DMA).
    pub interrupts: u32,
    /// The interrupt kind used ("INTx" or "MSI").
    pub irq_kind: &'static str,
    /// Bytes that went RAM → device → RAM and came back equal.
    pub dma_verified: usize,
    /// The device address of the DMA buffer (an IOVA, or a physical address without an IOMMU).
    pub dma_addr: u64,
    /// The DMA to an unmapped IOVA was caught: the IOMMU's fault record, if it can be seen.
    pub fault: Option<(Iova, bool)>,
    /// The faulting DMA left the buffer untouched.
    pub fault_wrote_nothing: bool,
    /// The DMA buffer, still mapped: dropping it unmaps and frees it.
    pub buffer: Option<DmaBuffer>,
}

/// Drives the edu device `device`: everything the module doc lists. With `msi`, interrupts come
/// as MSI, else as INTx. `probe_fault` does the deliberate bad DMA (pointless without an IOMMU).
pub fn drive(device: &Device, msi: bool, probe_fault: bool) -> Result<EduReport, DriverError> {
    let mut report = EduReport::default();
    // Enable memory decode and bus mastering, as a driver's probe does (pci_enable_device,
    // pci_set_master).
    let config = device.config()?;
    let cmd = config.read16(PCI_COMMAND)?;
    config.write16(PCI_COMMAND, cmd | COMMAND_MEMORY | COMMAND_MASTER)?;
    let bar = device.region(0)?;

    report.id = bar.read32(ID)?;
    bar.write32(LIVENESS, 0x1234_5678)?;
    report.alive = bar.read32(LIVENESS)? == !0x1234_5678;

    let irq = if msi {
        report.irq_kind = "MSI";
        device.enable_msi(1)?.remove(0)
    } else {
        report.irq_kind = "INTx";
        device.enable_intx()?
    };

    // The factorial, announced by an interrupt.
    bar.write32(STATUS, STATUS_IRQFACT)?;
    bar.write32(FACTORIAL, 10)?;
    report.interrupts += handle(&irq, &bar)?;
    report.factorial = bar.read32(FACTORIAL)?;

    // DMA: a pattern into the device's buffer and back into the second half of ours.
    let buf = device.dma_alloc(4096)?;
    let pattern: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    buf.write(0, &pattern)?;
    report.dma_addr = buf.device_addr().raw();
    dma(&bar, buf.device_addr().raw(), EDU_BUFFER, pattern.len() as u64, 0)?;
    report.interrupts += handle(&irq, &bar)?;
    dma(
        &bar,
        EDU_BUFFER,
        buf.device_addr().raw() + 2048,
        pattern.len() as u64,
        DMA_TO_RAM,
    )?;
    report.interrupts += handle(&irq, &bar)?;
    let mut back = vec![0u8; pattern.len()];
    buf.read(2048, &mut back)?;
    report.dma_verified = if back == pattern { back.len() } else { 0 };

    if probe_fault {
        // On purpose: the device writes to an IOVA nobody mapped. The IOMMU must refuse it.
        let _ = device.dma_faults();
        dma(&bar, EDU_BUFFER, UNMAPPED, 64, DMA_TO_RAM)?;
        report.interrupts += handle(&irq, &bar)?;
        report.fault = device.dma_faults().and_then(|f| f.into_iter().next());
        let mut after = vec![0u8; pattern.len()];
        buf.read(2048, &mut after)?;
        report.fault_wrote_nothing = after == pattern;
    }
    report.buffer = Some(buf);
    Ok(report)
}

/// Programs and starts one transfer.
fn dma(bar: &uvfio_driver::Region, src: u64, dst: u64, count: u64, flags: u64) -> Result<(), DriverError> {
    bar.write64(DMA_SRC, src)?;
    bar.write64(DMA_DST, dst)?;
    bar.write64(DMA_COUNT, count)?;
    bar.write64(DMA_CMD, DMA_START | DMA_IRQ | flags)
}

/// Waits for the interrupt, acknowledges it at the device, unmasks it (INTx); 1 if it came.
fn handle(irq: &Interrupt, bar: &uvfio_driver::Region) -> Result<u32, DriverError> {
    let fired = irq.wait_timeout(Duration::from_secs(10))?;
    let status = bar.read32(IRQ_STATUS)?;
    bar.write32(IRQ_ACK, status)?;
    irq.unmask()?;
    Ok(u32::from(fired.is_some()))
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg == "vfio-user" {
        let socket = std::env::args()
            .nth(2)
            .ok_or("usage: edu_driver vfio-user SOCKET")?;
        let device = Device::new(Arc::new(VfioUserBackend::connect(socket)?))?;
        let mut report = drive(&device, true, true)?;
        if let Some(buffer) = report.buffer.take() {
            buffer.free()?;
        }
        println!("{report:#?}");
        return Ok(());
    }
    let (mode, options) = match arg.as_str() {
        "cdev" => (Mode::IommufdCdev, uvfio_host::HostOptions::default()),
        "noiommu" => (
            Mode::NoIommu,
            uvfio_host::HostOptions {
                iommu: false,
                unsafe_noiommu: true,
            },
        ),
        _ => (Mode::Type1v2, uvfio_host::HostOptions::default()),
    };
    let host = Arc::new(uvfio_host::embedded_host(options)?);
    let backend = HostBackend::open(Arc::clone(&host), uvfio_host::EDU_BDF, mode)?;
    let device = Device::new(Arc::new(backend))?;
    let mut report = drive(&device, mode == Mode::IommufdCdev, mode != Mode::NoIommu)?;
    if let Some(buffer) = report.buffer.take() {
        buffer.free()?;
    }
    println!("{report:#?}");
    Ok(())
}
