//! The device-side scenarios, each run by both crates through every kind of device file: the
//! happy paths and the malformed requests, each refusal checked for its errno and for the device
//! still working afterwards. Each scenario leaves the device with no interrupt enabled.

use super::model::{
    BAR0_SIZE, BAR2_SIZE, BAR2_SPARSE, CONFIG_SIZE, MSI_VECTORS, MSIX_VECTORS, REG_INTX, REG_MSI, TestDevice,
    VENDOR_DEVICE,
};
use super::*;
use rustix::io::Errno;
use std::os::fd::AsRawFd;
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_DEVICE_GET_INFO, VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_NORESIZE, VFIO_IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_BOOL,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_BAR1_REGION_INDEX, VFIO_PCI_BAR2_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_PCI_REQ_IRQ_INDEX, VFIO_PCI_ROM_REGION_INDEX,
    VFIO_PCI_VGA_REGION_INDEX, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_SPARSE_MMAP,
    VFIO_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, VfioDeviceInfo, VfioIrqSet, VfioRegionInfo, VfioRegionInfoCapSparseMmap,
    VfioRegionSparseMmapArea,
};
use uvfio_vfio::device::IrqMode;
use uvfio_vfio::uapi::cap_headers;
use zerocopy::{FromBytes, IntoBytes};

const TRIGGER: u32 = VFIO_IRQ_SET_ACTION_TRIGGER;
const MASK: u32 = VFIO_IRQ_SET_ACTION_MASK;
const UNMASK: u32 = VFIO_IRQ_SET_ACTION_UNMASK;
const INTX: u32 = VFIO_PCI_INTX_IRQ_INDEX;
const MSI: u32 = VFIO_PCI_MSI_IRQ_INDEX;
const MSIX: u32 = VFIO_PCI_MSIX_IRQ_INDEX;
const REQ: u32 = VFIO_PCI_REQ_IRQ_INDEX;
const RW: u32 = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

fn bar0(offset: u64) -> u64 {
    region_offset(VFIO_PCI_BAR0_REGION_INDEX) + offset
}

fn bar2(offset: u64) -> u64 {
    region_offset(VFIO_PCI_BAR2_REGION_INDEX) + offset
}

fn config(offset: u64) -> u64 {
    region_offset(VFIO_PCI_CONFIG_REGION_INDEX) + offset
}

/// The device raises INTx (a write to its register 0).
fn raise_intx(dev: &dyn DeviceFd) {
    write_u32(dev, bar0(REG_INTX), 1).unwrap();
}

/// The device raises vector `n` of the enabled MSI / MSI-X (a write of `n` to register 4).
fn raise_msi(dev: &dyn DeviceFd, n: u32) {
    write_u32(dev, bar0(REG_MSI), n).unwrap();
}

/// INTx on eventfd `e`, then one interrupt delivered and acknowledged: the device works.
fn assert_intx_works(dev: &dyn DeviceFd, e: &vmm_sys_util::eventfd::EventFd) {
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(e)])).unwrap();
    raise_intx(dev);
    assert_eq!(fired(e), 1, "INTx still delivered");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    set_irqs(dev, TRIGGER, INTX, 0, 0, Data::None).unwrap();
}

/// `VFIO_DEVICE_GET_INFO`: the model's flags, 9 regions, 5 IRQ indexes; a short `argsz` or
/// buffer refused.
pub fn info(dev: &dyn DeviceFd) {
    let info = device_info(dev).unwrap();
    assert_eq!(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    assert_eq!(info.num_regions, VFIO_PCI_NUM_REGIONS);
    assert_eq!(info.num_irqs, VFIO_PCI_NUM_IRQS);
    assert_eq!(info.argsz as usize, size_of::<VfioDeviceInfo>());
    assert_eq!(info.cap_offset, 0);
    // argsz below minsz (16): EINVAL; fewer bytes than minsz: EFAULT.
    let mut short = VfioDeviceInfo {
        argsz: 15,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(
        dev.ioctl_buf(VFIO_DEVICE_GET_INFO, short.as_mut_bytes()),
        Err(Errno::INVAL)
    );
    assert_eq!(
        dev.ioctl_buf(VFIO_DEVICE_GET_INFO, &mut [16, 0, 0, 0]),
        Err(Errno::FAULT)
    );
    // The minimal 16-byte struct is answered too (no cap_offset written).
    let mut min = [0u8; 16];
    min[..4].copy_from_slice(&16u32.to_ne_bytes());
    dev.ioctl_buf(VFIO_DEVICE_GET_INFO, &mut min).unwrap();
    assert_eq!(
        u32::from_ne_bytes(min[8..12].try_into().unwrap()),
        VFIO_PCI_NUM_REGIONS
    );
}

/// `VFIO_DEVICE_GET_REGION_INFO`: sizes, flags and offsets; BAR2's sparse-mmap and
/// MSI-X-mappable capabilities, and the reply to an `argsz` too small for them; index == count,
/// the VGA index of a device without VGA: `EINVAL`.
pub fn region_info(dev: &dyn DeviceFd) {
    let (b0, _) = super::region_info(dev, VFIO_PCI_BAR0_REGION_INDEX).unwrap();
    assert_eq!(
        (b0.size, b0.flags, b0.offset, b0.cap_offset),
        (BAR0_SIZE, RW, 0, 0)
    );
    let (b1, _) = super::region_info(dev, VFIO_PCI_BAR1_REGION_INDEX).unwrap();
    assert_eq!((b1.size, b1.flags, b1.offset), (0, 0, 1 << 40), "an absent BAR");
    let (cfg, _) = super::region_info(dev, VFIO_PCI_CONFIG_REGION_INDEX).unwrap();
    assert_eq!((cfg.size, cfg.flags, cfg.offset), (CONFIG_SIZE, RW, 7 << 40));
    let (rom, _) = super::region_info(dev, VFIO_PCI_ROM_REGION_INDEX).unwrap();
    assert_eq!((rom.size, rom.flags), (0, 0));

    // BAR2: MMAP and two capabilities, the chain right after the 32-byte struct.
    let (b2, buf) = super::region_info(dev, VFIO_PCI_BAR2_REGION_INDEX).unwrap();
    assert_eq!(b2.size, BAR2_SIZE);
    assert_eq!(b2.offset, 2 << 40);
    assert_eq!(
        b2.flags,
        RW | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS
    );
    assert_eq!(b2.argsz, 256, "room enough: argsz as given");
    assert_eq!(b2.cap_offset, 32);
    let caps = cap_headers(&buf, b2.cap_offset);
    let ids: Vec<_> = caps.iter().map(|(at, h)| (*at, h.id, h.version)).collect();
    assert_eq!(
        ids,
        [
            (32, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1),
            (64, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1)
        ]
    );
    let sparse = VfioRegionInfoCapSparseMmap::read_from_prefix(&buf[32..])
        .unwrap()
        .0;
    assert_eq!(sparse.nr_areas, 1);
    let area = VfioRegionSparseMmapArea::read_from_prefix(&buf[48..]).unwrap().0;
    assert_eq!(
        (area.offset, area.size),
        (BAR2_SPARSE.offset.raw(), BAR2_SPARSE.size)
    );
    assert!(
        buf[72..].iter().all(|&b| b == 0xee),
        "nothing written past the chain"
    );

    // argsz too small for the chain: argsz raised to what is needed, CAPS set, cap_offset 0,
    // nothing written past the struct.
    let small = region_info_raw(dev, VFIO_PCI_BAR2_REGION_INDEX, 32, 64).unwrap();
    let info = VfioRegionInfo::read_from_prefix(&small).unwrap().0;
    assert_eq!(info.argsz, 72);
    assert_eq!(
        info.flags,
        RW | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS
    );
    assert_eq!((info.cap_offset, info.size, info.offset), (0, BAR2_SIZE, 2 << 40));
    assert!(small[32..].iter().all(|&b| b == 0xee));

    // index == count, far past it, the VGA index without VGA: EINVAL; argsz below 32: EINVAL;
    // fewer bytes than 32: EFAULT.
    for index in [VFIO_PCI_NUM_REGIONS, u32::MAX, VFIO_PCI_VGA_REGION_INDEX] {
        assert_eq!(
            super::region_info(dev, index).unwrap_err(),
            Errno::INVAL,
            "index {index}"
        );
    }
    assert_eq!(region_info_raw(dev, 0, 31, 32).unwrap_err(), Errno::INVAL);
    assert_eq!(region_info_raw(dev, 0, 32, 24).unwrap_err(), Errno::FAULT);
    // Still answered.
    assert_eq!(super::region_info(dev, 0).unwrap().0.size, BAR0_SIZE);
}

/// `pread` / `pwrite` at `VFIO_PCI_INDEX_TO_OFFSET(index) + offset`; every access outside a
/// region refused with `EINVAL`, an access the registers do not take too.
pub fn region_io(dev: &dyn DeviceFd, model: &TestDevice) {
    assert_eq!(read_u32(dev, config(0)).unwrap(), VENDOR_DEVICE);
    dev.pwrite(config(0x40), &[0xab, 0xcd]).unwrap();
    let mut two = [0u8; 2];
    assert_eq!(dev.pread(config(0x40), &mut two), Ok(2));
    assert_eq!(two, [0xab, 0xcd]);
    write_u32(dev, bar0(8), 0xdead_beef).unwrap();
    assert_eq!(read_u32(dev, bar0(8)).unwrap(), 0xdead_beef);
    assert_eq!(model.bar0_u32(8), 0xdead_beef);
    assert_eq!(dev.pwrite(bar2(100), b"through pwrite!!"), Ok(16));
    assert_eq!(model.bar2_bytes(100, 16), b"through pwrite!!");
    let mut last = [0u8; 8];
    assert_eq!(dev.pread(bar2(BAR2_SIZE - 8), &mut last), Ok(8), "the last bytes");
    // A zero-length access is 0 wherever it points (vfio_pci_core_read(): if (!count) return 0).
    assert_eq!(dev.pread(region_offset(40), &mut []), Ok(0));

    let refused: [(u64, usize, &str); 10] = [
        (bar0(BAR0_SIZE), 4, "starting at the end"),
        (bar0(BAR0_SIZE - 4), 8, "running past the end"),
        (config(CONFIG_SIZE - 2), 4, "running past config space"),
        (bar2(BAR2_SIZE), 1, "starting at BAR2's end"),
        (region_offset(VFIO_PCI_NUM_REGIONS), 4, "index == count"),
        (region_offset(VFIO_PCI_VGA_REGION_INDEX), 4, "VGA without VGA"),
        (region_offset(VFIO_PCI_BAR1_REGION_INDEX), 4, "an absent BAR"),
        (region_offset(VFIO_PCI_ROM_REGION_INDEX), 4, "no ROM"),
        (bar0(2), 4, "misaligned register"),
        (bar0(0x10), 3, "3-byte register access"),
    ];
    for (offset, len, case) in refused {
        assert_eq!(
            dev.pread(offset, &mut vec![0u8; len]),
            Err(Errno::INVAL),
            "read {case}"
        );
        let data = vec![0x5a; len];
        assert_eq!(dev.pwrite(offset, &data), Err(Errno::INVAL), "write {case}");
    }
    // Nothing was written by the refused accesses; the device still works.
    assert_eq!(model.bar0_u32(BAR0_SIZE - 4), 0);
    assert_eq!(read_u32(dev, bar0(8)).unwrap(), 0xdead_beef);
}

/// `mmap` of BAR2's sparse area: the fd handed back maps the memfd the model reads and writes;
/// every range outside a mappable area refused with `EINVAL`.
pub fn mmap(dev: &dyn DeviceFd, model: &TestDevice) {
    let area = BAR2_SPARSE.offset.raw();
    let map = dev.mmap(bar2(area), PAGE).unwrap();
    assert_eq!((map.file_offset, map.len), (area, PAGE));
    let mapping = Mapping::new(&map);
    dev.pwrite(bar2(area + 8), b"seen by the map").unwrap();
    assert_eq!(mapping.read(8, 15), b"seen by the map");
    mapping.write(200, b"written through the map");
    let mut back = [0u8; 23];
    dev.pread(bar2(area + 200), &mut back).unwrap();
    assert_eq!(&back, b"written through the map");
    assert_eq!(model.bar2_bytes(area + 200, 23), b"written through the map");
    drop(mapping);
    drop(map);
    // A length is rounded up to pages, as mmap() does.
    assert_eq!(dev.mmap(bar2(area), 100).unwrap().len, PAGE);

    let refused: [(u64, u64, &str); 8] = [
        (bar2(0), PAGE, "outside the sparse area"),
        (bar2(area), 2 * PAGE, "past the end of the region"),
        (bar2(area + 1), PAGE, "an offset that is not a page multiple"),
        (bar2(area), 0, "an empty range"),
        (bar0(0), PAGE, "a region without MMAP"),
        (region_offset(VFIO_PCI_BAR1_REGION_INDEX), PAGE, "an absent BAR"),
        (region_offset(VFIO_PCI_NUM_REGIONS), PAGE, "index == count"),
        (bar2(area), u64::MAX, "a length that overflows"),
    ];
    for (offset, len, case) in refused {
        assert_eq!(dev.mmap(offset, len).unwrap_err(), Errno::INVAL, "{case}");
    }
    assert_eq!(dev.mmap(bar2(area), PAGE).unwrap().len, PAGE, "still mappable");
}

/// `VFIO_DEVICE_GET_IRQ_INFO`: INTx maskable and automasked, MSI / MSI-X / REQ `NORESIZE`, the
/// counts; ERR (not PCI Express) and index == count: `EINVAL`.
pub fn irq_info(dev: &dyn DeviceFd) {
    let want = [
        (
            INTX,
            VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
            1,
        ),
        (MSI, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, MSI_VECTORS),
        (MSIX, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, MSIX_VECTORS),
        (REQ, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1),
    ];
    for (index, flags, count) in want {
        let info = super::irq_info(dev, index).unwrap();
        assert_eq!(
            (info.index, info.flags, info.count),
            (index, flags, count),
            "index {index}"
        );
    }
    for index in [VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_NUM_IRQS, u32::MAX] {
        assert_eq!(
            super::irq_info(dev, index).unwrap_err(),
            Errno::INVAL,
            "index {index}"
        );
    }
    assert_eq!(super::irq_info(dev, INTX).unwrap().count, 1, "still answered");
}

/// INTx: eventfd delivery, automasking, `UNMASK` delivering what was raised while masked,
/// `MASK`, loopback triggers, replacing and removing the eventfd, disabling.
pub fn intx(dev: &dyn DeviceFd, model: &TestDevice) {
    let e = eventfd();
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(&e)])).unwrap();
    assert_eq!(model.mode(), IrqMode::Intx);
    raise_intx(dev);
    assert_eq!(fired(&e), 1);
    // Automasked: a second interrupt is held ...
    raise_intx(dev);
    assert_eq!(fired(&e), 0);
    // ... and sent at UNMASK, which leaves the line masked.
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    assert_eq!(fired(&e), 1);
    raise_intx(dev);
    assert_eq!(fired(&e), 0, "still masked");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::Bool(&[1])).unwrap();
    assert_eq!(fired(&e), 1, "the interrupt raised while masked");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::Bool(&[1])).unwrap();
    assert_eq!(fired(&e), 0, "nothing pending: unmasked");
    raise_intx(dev);
    assert_eq!(fired(&e), 1);
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    // MASK: held until UNMASK; MASK with a false bool does nothing.
    set_irqs(dev, MASK, INTX, 0, 1, Data::None).unwrap();
    raise_intx(dev);
    assert_eq!(fired(&e), 0);
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    assert_eq!(fired(&e), 1);
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    set_irqs(dev, MASK, INTX, 0, 1, Data::Bool(&[0])).unwrap();
    raise_intx(dev);
    assert_eq!(fired(&e), 1, "a false MASK masks nothing");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    // Loopback: DATA_NONE and a true bool signal, a false bool does not; none of them masks.
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::None).unwrap();
    assert_eq!(fired(&e), 1);
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Bool(&[0])).unwrap();
    assert_eq!(fired(&e), 0);
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Bool(&[7])).unwrap();
    assert_eq!(fired(&e), 1);
    raise_intx(dev);
    assert_eq!(fired(&e), 1, "loopback did not mask");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    // A new eventfd replaces the old one; -1 removes it (INTx stays enabled).
    let e2 = eventfd();
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(&e2)])).unwrap();
    raise_intx(dev);
    assert_eq!((fired(&e), fired(&e2)), (0, 1));
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[-1])).unwrap();
    raise_intx(dev);
    assert_eq!((fired(&e), fired(&e2)), (0, 0));
    assert_eq!(model.mode(), IrqMode::Intx);
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    // Disabled: interrupts are lost, INTx's other actions refused.
    set_irqs(dev, TRIGGER, INTX, 0, 0, Data::None).unwrap();
    assert_eq!(model.mode(), IrqMode::None);
    raise_intx(dev);
    assert_eq!(fired(&e2), 0);
    assert_eq!(set_irqs(dev, UNMASK, INTX, 0, 1, Data::None), Err(Errno::INVAL));
    assert_eq!(set_irqs(dev, TRIGGER, INTX, 0, 1, Data::None), Err(Errno::INVAL));
    assert_eq!(
        set_irqs(dev, TRIGGER, INTX, 0, 0, Data::None),
        Err(Errno::INVAL),
        "nothing to disable"
    );
    assert_intx_works(dev, &e);
}

/// MSI and MSI-X: one eventfd per vector (`-1` leaves a vector without one), delivery of the
/// vectors the device raises, loopback, changing one vector, disabling.
pub fn msi(dev: &dyn DeviceFd, model: &TestDevice) {
    let (a, b, c, d) = (eventfd(), eventfd(), eventfd(), eventfd());
    set_irqs(
        dev,
        TRIGGER,
        MSI,
        0,
        4,
        Data::Fds(&[raw(&a), raw(&b), -1, raw(&c)]),
    )
    .unwrap();
    assert_eq!(model.mode(), IrqMode::Msi { vectors: 4 });
    raise_msi(dev, 0);
    raise_msi(dev, 3);
    raise_msi(dev, 3);
    raise_msi(dev, 2);
    raise_msi(dev, 9);
    assert_eq!(
        (fired(&a), fired(&b), fired(&c)),
        (1, 0, 2),
        "no automasking for MSI"
    );
    // Loopback over all four, then the bools of vectors 1 and 2.
    set_irqs(dev, TRIGGER, MSI, 0, 4, Data::None).unwrap();
    assert_eq!((fired(&a), fired(&b), fired(&c)), (1, 1, 1));
    set_irqs(dev, TRIGGER, MSI, 1, 3, Data::Bool(&[1, 1, 0])).unwrap();
    assert_eq!((fired(&a), fired(&b), fired(&c)), (0, 1, 0));
    // One vector's eventfd changed, another's removed.
    set_irqs(dev, TRIGGER, MSI, 1, 1, Data::Fds(&[raw(&d)])).unwrap();
    set_irqs(dev, TRIGGER, MSI, 0, 1, Data::Fds(&[-1])).unwrap();
    raise_msi(dev, 0);
    raise_msi(dev, 1);
    assert_eq!((fired(&a), fired(&b), fired(&d)), (0, 0, 1));
    assert_eq!(model.mode(), IrqMode::Msi { vectors: 4 }, "no re-enable");
    // Another index while MSI is on: EINVAL.
    assert_eq!(
        set_irqs(dev, TRIGGER, MSIX, 0, 1, Data::Fds(&[raw(&a)])),
        Err(Errno::INVAL)
    );
    assert_eq!(
        set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(&a)])),
        Err(Errno::INVAL)
    );
    set_irqs(dev, TRIGGER, MSI, 0, 0, Data::None).unwrap();
    assert_eq!(model.mode(), IrqMode::None);
    raise_msi(dev, 3);
    assert_eq!(fired(&c), 0, "disabled");

    // MSI-X with vectors 2..5: five vectors enabled, 0 and 1 without an eventfd.
    set_irqs(dev, TRIGGER, MSIX, 2, 3, Data::Fds(&[raw(&a), raw(&b), raw(&c)])).unwrap();
    assert_eq!(model.mode(), IrqMode::Msix { vectors: 5 });
    raise_msi(dev, 4);
    raise_msi(dev, 0);
    assert_eq!((fired(&a), fired(&b), fired(&c)), (0, 0, 1));
    // Past the vectors enabled: a new eventfd cannot go there (no dynamic MSI-X), -1 is fine.
    assert_eq!(
        set_irqs(dev, TRIGGER, MSIX, 5, 1, Data::Fds(&[raw(&d)])),
        Err(Errno::INVAL)
    );
    set_irqs(dev, TRIGGER, MSIX, 5, 1, Data::Fds(&[-1])).unwrap();
    set_irqs(dev, TRIGGER, MSIX, 0, 8, Data::None).unwrap();
    assert_eq!(
        (fired(&a), fired(&b), fired(&c), fired(&d)),
        (1, 1, 1, 0),
        "loopback skips vectors without one"
    );
    // MSI-X masking is not exported: ENOTTY.
    assert_eq!(set_irqs(dev, MASK, MSIX, 0, 1, Data::None), Err(Errno::NOTTY));
    set_irqs(dev, TRIGGER, MSIX, 0, 0, Data::None).unwrap();
    assert_eq!(model.mode(), IrqMode::None);
    // Disabling what is not enabled: EINVAL.
    assert_eq!(set_irqs(dev, TRIGGER, MSIX, 0, 0, Data::None), Err(Errno::INVAL));
    assert_intx_works(dev, &a);
}

/// Every malformed `SET_IRQS` the issue lists, and the handlers' own refusals, each with its
/// errno; INTx, enabled throughout, keeps working.
pub fn set_irqs_errors(dev: &dyn DeviceFd, model: &TestDevice) {
    let e = eventfd();
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(&e)])).unwrap();
    let modes = model.modes().len();
    let hdr = |flags, index, start, count| VfioIrqSet {
        argsz: size_of::<VfioIrqSet>() as u32,
        flags,
        index,
        start,
        count,
    };
    let none_trigger = VFIO_IRQ_SET_DATA_NONE | TRIGGER;
    let table: [(&str, VfioIrqSet, Errno); 12] = [
        (
            "index == count",
            hdr(none_trigger, VFIO_PCI_NUM_IRQS, 0, 0),
            Errno::INVAL,
        ),
        (
            "start + count overflows",
            hdr(none_trigger, MSI, 1, u32::MAX),
            Errno::INVAL,
        ),
        (
            "start + count overflows at start",
            hdr(none_trigger, MSI, u32::MAX, 1),
            Errno::INVAL,
        ),
        ("past the vectors", hdr(none_trigger, MSI, 2, 3), Errno::INVAL),
        (
            "start at the vectors' end",
            hdr(none_trigger, MSI, MSI_VECTORS, 0),
            Errno::INVAL,
        ),
        (
            "an unknown flag",
            hdr(none_trigger | 1 << 6, INTX, 0, 1),
            Errno::INVAL,
        ),
        (
            "two data types",
            hdr(none_trigger | VFIO_IRQ_SET_DATA_BOOL, INTX, 0, 1),
            Errno::INVAL,
        ),
        ("no data type", hdr(TRIGGER, INTX, 0, 1), Errno::INVAL),
        (
            "argsz without room for the data",
            hdr(VFIO_IRQ_SET_DATA_EVENTFD | TRIGGER, INTX, 0, 1),
            Errno::INVAL,
        ),
        // vfio_pci_set_irqs_ioctl() switches on the ACTION bits: no handler for two, or none.
        (
            "two actions",
            hdr(VFIO_IRQ_SET_DATA_NONE | TRIGGER | MASK, INTX, 0, 1),
            Errno::NOTTY,
        ),
        ("no action", hdr(VFIO_IRQ_SET_DATA_NONE, INTX, 0, 1), Errno::NOTTY),
        (
            "ERR on a device without it",
            hdr(none_trigger, VFIO_PCI_ERR_IRQ_INDEX, 0, 1),
            Errno::INVAL,
        ),
    ];
    for (case, h, errno) in table {
        assert_eq!(set_irqs_raw(dev, &h, &[0; 8]), Err(errno), "{case}");
    }
    // argsz below the header: EINVAL; fewer bytes than the header: EFAULT.
    let mut short = hdr(none_trigger, INTX, 0, 1);
    short.argsz = 19;
    assert_eq!(set_irqs_raw(dev, &short, &[]), Err(Errno::INVAL));
    assert_eq!(
        dev.ioctl_buf(uvfio_abi::vfio::VFIO_DEVICE_SET_IRQS, &mut [0u8; 12]),
        Err(Errno::FAULT)
    );
    // Eventfds: a number no file has is EBADF, a file that is no eventfd EINVAL; the INTx
    // eventfd in place stays.
    let not_eventfd = rustix::fs::memfd_create("not-an-eventfd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert_eq!(
        set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[CLOSED_FD])),
        Err(Errno::BADF)
    );
    assert_eq!(
        set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[not_eventfd.as_raw_fd()])),
        Err(Errno::INVAL)
    );
    // Handlers: MSI while INTx is on; MSI masking; an INTx mask eventfd; INTx masking of another
    // range; REQ masking.
    assert_eq!(
        set_irqs(dev, TRIGGER, MSI, 0, 1, Data::Fds(&[raw(&e)])),
        Err(Errno::INVAL)
    );
    assert_eq!(set_irqs(dev, MASK, MSI, 0, 1, Data::None), Err(Errno::NOTTY));
    assert_eq!(
        set_irqs(dev, UNMASK, MSI, 0, 1, Data::Bool(&[1])),
        Err(Errno::NOTTY)
    );
    assert_eq!(
        set_irqs(dev, MASK, INTX, 0, 1, Data::Fds(&[raw(&e)])),
        Err(Errno::NOTTY)
    );
    assert_eq!(set_irqs(dev, MASK, INTX, 0, 0, Data::None), Err(Errno::INVAL));
    assert_eq!(set_irqs(dev, MASK, REQ, 0, 1, Data::None), Err(Errno::NOTTY));
    assert_eq!(model.modes().len(), modes, "no mode changed");
    raise_intx(dev);
    assert_eq!(fired(&e), 1, "the INTx eventfd survived the refusals");
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    set_irqs(dev, TRIGGER, INTX, 0, 0, Data::None).unwrap();
    // Enabling MSI with a bad eventfd enables nothing (vfio_msi_disable() on failure).
    let modes = model.modes().len();
    assert_eq!(
        set_irqs(dev, TRIGGER, MSI, 0, 2, Data::Fds(&[raw(&e), CLOSED_FD])),
        Err(Errno::BADF)
    );
    assert_eq!(model.modes().len(), modes);
    assert_eq!(
        set_irqs(dev, TRIGGER, MSI, 0, 2, Data::None),
        Err(Errno::INVAL),
        "MSI is off"
    );
    assert_intx_works(dev, &e);
}

/// REQ (and the single-eventfd handler it shares with ERR): registering, the device's request,
/// loopback, unregistering.
pub fn req(dev: &dyn DeviceFd, model: &TestDevice) {
    let r = eventfd();
    // DATA_NONE with no eventfd registered falls through to EINVAL.
    assert_eq!(set_irqs(dev, TRIGGER, REQ, 0, 1, Data::None), Err(Errno::INVAL));
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::Fds(&[raw(&r)])).unwrap();
    model.raise(REQ, 0);
    assert_eq!(fired(&r), 1);
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::None).unwrap();
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::Bool(&[1])).unwrap();
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::Bool(&[0])).unwrap();
    assert_eq!(fired(&r), 2);
    assert_eq!(
        set_irqs(dev, TRIGGER, REQ, 0, 0, Data::Bool(&[])),
        Err(Errno::INVAL)
    );
    // DATA_NONE with count 0 unregisters; so does -1.
    set_irqs(dev, TRIGGER, REQ, 0, 0, Data::None).unwrap();
    model.raise(REQ, 0);
    assert_eq!(fired(&r), 0);
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::Fds(&[raw(&r)])).unwrap();
    set_irqs(dev, TRIGGER, REQ, 0, 1, Data::Fds(&[-1])).unwrap();
    model.raise(REQ, 0);
    assert_eq!(fired(&r), 0);
    assert_eq!(model.mode(), IrqMode::None, "REQ is no interrupt mode");
}

/// `VFIO_DEVICE_RESET`: BAR0 cleared by the model's reset, the interrupt mode restored after it.
pub fn reset(dev: &dyn DeviceFd, model: &TestDevice) {
    let e = eventfd();
    write_u32(dev, bar0(8), 0x1234_5678).unwrap();
    set_irqs(dev, TRIGGER, INTX, 0, 1, Data::Fds(&[raw(&e)])).unwrap();
    let resets = model.resets();
    assert_eq!(super::reset(dev), Ok(0));
    assert_eq!(model.resets(), resets + 1);
    assert_eq!(read_u32(dev, bar0(8)).unwrap(), 0, "BAR0 cleared");
    assert_eq!(
        model.modes().last(),
        Some(&IrqMode::Intx),
        "INTx enabled again after the reset"
    );
    raise_intx(dev);
    assert_eq!(fired(&e), 1);
    set_irqs(dev, UNMASK, INTX, 0, 1, Data::None).unwrap();
    set_irqs(dev, TRIGGER, INTX, 0, 0, Data::None).unwrap();
}
