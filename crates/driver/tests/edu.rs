//! The edu device against its spec (QEMU `docs/specs/edu.rst`), driven only through the driver
//! API on the embedded host, in each mode: the example driver end to end, interrupts over INTx
//! and MSI, DMA both ways, DMA to an unmapped or read-only IOVA faulting and writing nothing, bus
//! mastering off blocking DMA, memory decode off refusing BAR accesses, region bounds, reset, and
//! every resource back to its baseline afterwards.

#[path = "../../../examples/edu_driver.rs"]
#[allow(dead_code)]
mod edu_driver;

use rustix::io::Errno;
use std::sync::Arc;
use std::time::Duration;
use uvfio_driver::{Device, DmaMemory, DriverError, HostBackend, Mode, Region};
use uvfio_host::{EDU_BDF, Host, HostOptions, embedded_host};
use uvfio_types::{Access, Iova};

const NO_IOMMU: HostOptions = HostOptions {
    iommu: false,
    unsafe_noiommu: true,
};

fn open(mode: Mode) -> (Arc<Host>, Device) {
    let options = if mode == Mode::NoIommu {
        NO_IOMMU
    } else {
        HostOptions::default()
    };
    let host = Arc::new(embedded_host(options).unwrap());
    let backend = HostBackend::open(Arc::clone(&host), EDU_BDF, mode).unwrap();
    (host, Device::new(Arc::new(backend)).unwrap())
}

/// Everything back: no file, no pin, no charge, no adopted segment, no leaked object.
fn baseline(host: &Host) {
    assert_eq!(host.open_files(), 0);
    assert_eq!(host.leaked_objects(), 0);
    assert_eq!(host.memory().account().locked_pages, 0);
    assert_eq!(host.accounts().mm.locked_pages(), 0);
    assert_eq!(host.accounts().user.locked_pages(), 0);
    assert_eq!(host.memory().stats().adopted_segments, 0);
    assert_eq!(host.locked_pages(), 0);
}

/// Memory decode and bus mastering on, BAR 0.
fn enable(device: &Device) -> Region {
    let config = device.config().unwrap();
    let cmd = config.read16(0x04).unwrap();
    config.write16(0x04, cmd | 0x6).unwrap();
    device.region(0).unwrap()
}

fn dma(bar: &Region, src: u64, dst: u64, count: u64, to_ram: bool) {
    bar.write64(0x80, src).unwrap();
    bar.write64(0x88, dst).unwrap();
    bar.write64(0x90, count).unwrap();
    bar.write64(0x98, 1 | if to_ram { 2 } else { 0 }).unwrap();
    let start = std::time::Instant::now();
    while bar.read64(0x98).unwrap() & 1 != 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "DMA stuck");
        std::thread::yield_now();
    }
}

#[test]
fn the_example_driver_runs_in_every_mode_and_leaves_nothing_behind() {
    for (mode, msi) in [
        (Mode::Type1v2, false),
        (Mode::Type1v2, true),
        (Mode::IommufdCdev, true),
        (Mode::IommufdCdev, false),
        (Mode::NoIommu, false),
    ] {
        let (host, device) = open(mode);
        let mut report = edu_driver::drive(&device, msi, mode != Mode::NoIommu).unwrap();
        assert_eq!(report.id, 0x0100_00ed, "{mode:?}");
        assert!(report.alive);
        assert_eq!(report.factorial, 3_628_800);
        assert_eq!(report.dma_verified, 1024, "{mode:?}");
        if mode == Mode::NoIommu {
            assert_eq!(report.interrupts, 3);
            assert!(
                report.dma_addr >= uvfio_memory::RAM_BASE.raw(),
                "a host physical address"
            );
        } else {
            assert_eq!(report.interrupts, 4, "{mode:?} msi={msi}");
            assert_eq!(report.fault, Some((Iova::new(0x0dea_d000), true)), "{mode:?}");
            assert!(report.fault_wrote_nothing);
        }
        // While the buffer is mapped one page is pinned and charged.
        assert_eq!(host.memory().account().locked_pages, 1);
        report.buffer.take().unwrap().free().unwrap();
        drop(device);
        baseline(&host);
    }
}

#[test]
fn dma_to_a_read_only_iova_faults_and_writes_nothing() {
    for mode in [Mode::Type1v2, Mode::IommufdCdev] {
        let (host, device) = open(mode);
        let bar = enable(&device);
        let ro = device.dma_alloc_with(4096, Access::READ).unwrap();
        ro.write(0, &[0x5a; 64]).unwrap();
        // RAM → device works: the device may read the page.
        dma(&bar, ro.device_addr().raw(), 0x40000, 64, false);
        // device → RAM does not: a permission fault, the page unchanged.
        let _ = device.dma_faults();
        bar.write32(0x04, 0).unwrap();
        dma(&bar, 0x40000 + 64, ro.device_addr().raw(), 64, true);
        let mut back = [0u8; 64];
        ro.read(0, &mut back).unwrap();
        assert_eq!(back, [0x5a; 64], "{mode:?}");
        let faults = device.dma_faults().unwrap();
        assert_eq!(faults, vec![(ro.device_addr(), true)], "{mode:?}");
        drop((ro, bar, device));
        baseline(&host);
    }
}

#[test]
fn bus_mastering_off_blocks_dma_and_memory_decode_off_refuses_bar_access() {
    let (host, device) = open(Mode::Type1v2);
    let bar = enable(&device);
    let buf = device.dma_alloc(4096).unwrap();
    buf.write(0, &[7; 32]).unwrap();
    let config = device.config().unwrap();
    let cmd = config.read16(0x04).unwrap();
    // Bus mastering off: the transfer completes without touching RAM or the IOMMU.
    config.write16(0x04, cmd & !0x4).unwrap();
    dma(&bar, 0x40000, buf.device_addr().raw(), 32, true);
    let mut back = [0u8; 32];
    buf.read(0, &mut back).unwrap();
    assert_eq!(back, [7; 32]);
    assert_eq!(device.dma_faults().unwrap(), vec![]);
    // Memory decode off: BAR accesses fail with EIO (vfio-pci's __vfio_pci_memory_enabled()).
    config.write16(0x04, cmd & !0x2).unwrap();
    let err = bar.read32(0).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::IO), "{err}");
    // Back on: the device works again.
    config.write16(0x04, cmd | 0x6).unwrap();
    assert_eq!(bar.read32(0).unwrap(), 0x0100_00ed);
    drop((buf, bar, config, device));
    baseline(&host);
}

#[test]
fn region_bounds_and_missing_regions() {
    let (host, device) = open(Mode::IommufdCdev);
    let bar = enable(&device);
    assert_eq!(bar.size(), 1 << 20);
    // Past the end: refused by the driver API before any uAPI call.
    assert!(matches!(
        bar.read32((1 << 20) - 2),
        Err(DriverError::OutOfRegion { .. })
    ));
    // The same access through the raw backend reaches the host, which answers EINVAL.
    let mut b = [0u8; 4];
    let err = device.backend().read(0, (1 << 20) - 2, &mut b).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::INVAL));
    // BAR 1 does not exist (size 0); the config space is 256 bytes (conventional PCI).
    assert!(matches!(device.region(1), Err(DriverError::Missing(_))));
    assert_eq!(device.config().unwrap().size(), 256);
    assert_eq!(device.config().unwrap().read16(0).unwrap(), 0x1234);
    assert_eq!(device.config().unwrap().read16(2).unwrap(), 0x11e8);
    // An index past the regions: EINVAL from GET_REGION_INFO.
    assert_eq!(device.region(9).unwrap_err().errno(), Some(Errno::INVAL));
    // The device still answers.
    assert_eq!(bar.read32(0).unwrap(), 0x0100_00ed);
    drop((bar, device));
    baseline(&host);
}

#[test]
fn interrupts_wait_with_a_timeout_and_intx_is_automasked() {
    let (host, device) = open(Mode::Type1v2);
    let bar = enable(&device);
    let irq = device.enable_intx().unwrap();
    assert_eq!(
        irq.wait_timeout(Duration::from_millis(20)).unwrap(),
        None,
        "nothing raised yet"
    );
    bar.write32(0x60, 0x10).unwrap();
    assert_eq!(irq.wait_timeout(Duration::from_secs(5)).unwrap(), Some(1));
    // Masked until unmasked: a second raise is held back.
    bar.write32(0x64, 0x10).unwrap();
    bar.write32(0x60, 0x20).unwrap();
    assert_eq!(irq.wait_timeout(Duration::from_millis(20)).unwrap(), None);
    irq.unmask().unwrap();
    assert_eq!(
        irq.wait_timeout(Duration::from_secs(5)).unwrap(),
        Some(1),
        "delivered at unmask"
    );
    bar.write32(0x64, 0x20).unwrap();
    // MSI while INTx is on: EINVAL; after disabling INTx, MSI works.
    assert_eq!(device.enable_msi(1).unwrap_err().errno(), Some(Errno::INVAL));
    device.disable_irq(0).unwrap();
    let msi = device.enable_msi(1).unwrap().remove(0);
    bar.write32(0x60, 1).unwrap();
    assert_eq!(msi.wait_timeout(Duration::from_secs(5)).unwrap(), Some(1));
    drop((irq, msi, bar, device));
    baseline(&host);
}

#[test]
fn reset_brings_the_device_back_and_it_keeps_working() {
    let (host, device) = open(Mode::IommufdCdev);
    let bar = enable(&device);
    bar.write32(0x04, 5).unwrap();
    assert_eq!(bar.read32(0x04).unwrap(), !5);
    device.reset().unwrap();
    drop(bar);
    // The function reset cleared the command register too: enable again.
    let bar = enable(&device);
    assert_eq!(bar.read32(0x04).unwrap(), 0, "power-on value");
    assert_eq!(bar.read32(0).unwrap(), 0x0100_00ed);
    drop((bar, device));
    baseline(&host);
}

#[test]
fn a_dma_buffer_is_unmapped_before_it_is_freed() {
    let (host, device) = open(Mode::Type1v2);
    let bar = enable(&device);
    let buf = device.dma_alloc(8192).unwrap();
    let addr = buf.device_addr();
    assert_eq!(host.accounts().mm.locked_pages(), 2);
    drop(buf);
    assert_eq!(host.accounts().mm.locked_pages(), 0);
    // The device can no longer reach it.
    let _ = device.dma_faults();
    dma(&bar, addr.raw(), 0x40000, 16, false);
    assert_eq!(device.dma_faults().unwrap(), vec![(addr, false)]);
    // Mapping at a chosen IOVA works too, and mapping twice there is refused (EEXIST).
    let a = device
        .dma_map_at(
            DmaMemory::new(4096).unwrap(),
            Iova::new(0x40_0000),
            Access::READ | Access::WRITE,
        )
        .unwrap();
    let err = device
        .dma_map_at(DmaMemory::new(4096).unwrap(), Iova::new(0x40_0000), Access::READ)
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EXIST));
    drop((a, bar, device));
    baseline(&host);
}
