//! The device side through a bound cdev (`/dev/vfio/devices/vfioX`): the shared scenarios, a
//! device without reset, nothing served before the bind, and the unbind (closing the file)
//! tearing the IRQs down — the group path then finding the device as it was at the start, since
//! the two paths share one device.

mod device_rig;
mod device_support;

use device_rig::{CdevDev, GroupDev, NAME, Rig, bind};
use device_support::model::TestDevice;
use device_support::{
    Data, DeviceFd, ProcessFds, eventfd, eventfd_copies, fired, raw, region_offset, set_irqs, suite,
    write_u32,
};
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
};
use uvfio_vfio::device::{DeviceOffset, IrqMode};
use uvfio_vfio::uapi::IoctlArg;

const TRIGGER: u32 = VFIO_IRQ_SET_ACTION_TRIGGER;

/// Runs `scenario` on a fresh device through its bound cdev, then closes it.
fn through_cdev(scenario: impl FnOnce(&dyn DeviceFd, &TestDevice)) {
    let rig = Rig::new(TestDevice::new());
    let dev = CdevDev {
        file: rig.bound_cdev(),
        rig: &rig,
    };
    assert_eq!(rig.vfio.open_count(), 1, "the bind opens the device");
    scenario(&dev, &rig.model);
    drop(dev);
    assert_eq!(rig.vfio.open_count(), 0);
    assert_eq!(rig.vfio.irq_mode(), IrqMode::None);
    rig.baseline();
}

#[test]
fn cdev_info() {
    through_cdev(|dev, _| suite::info(dev));
}

#[test]
fn cdev_region_info() {
    through_cdev(|dev, _| suite::region_info(dev));
}

#[test]
fn cdev_region_io() {
    through_cdev(suite::region_io);
}

#[test]
fn cdev_mmap() {
    through_cdev(suite::mmap);
}

#[test]
fn cdev_irq_info() {
    through_cdev(|dev, _| suite::irq_info(dev));
}

#[test]
fn cdev_intx() {
    through_cdev(suite::intx);
}

#[test]
fn cdev_msi_and_msix() {
    through_cdev(suite::msi);
}

#[test]
fn cdev_set_irqs_refusals() {
    through_cdev(suite::set_irqs_errors);
}

#[test]
fn cdev_req() {
    through_cdev(suite::req);
}

#[test]
fn cdev_reset() {
    through_cdev(suite::reset);
}

#[test]
fn cdev_reset_without_the_flag_is_einval() {
    let rig = Rig::new(TestDevice::without_reset());
    let dev = CdevDev {
        file: rig.bound_cdev(),
        rig: &rig,
    };
    assert_eq!(device_support::reset(&dev), Err(Errno::INVAL));
    assert_eq!(rig.model.resets(), 0);
    drop(dev);
    rig.baseline();
}

#[test]
fn nothing_is_served_before_the_bind() {
    let rig = Rig::new(TestDevice::new());
    let file = rig.cdev.open();
    // Every ioctl but BIND, known or not, and read / write / mmap: EINVAL (access_granted).
    for request in [
        VFIO_DEVICE_GET_INFO,
        VFIO_DEVICE_GET_REGION_INFO,
        VFIO_DEVICE_RESET,
        0x3b99,
    ] {
        let mut arg = [0u8; 64];
        arg[..4].copy_from_slice(&64u32.to_ne_bytes());
        let e = file.ioctl(request, IoctlArg::Buffer(&mut arg), &rig, &ProcessFds);
        assert_eq!(e.unwrap_err().errno(), Errno::INVAL, "request {request:#x}");
    }
    let offset = DeviceOffset::new(region_offset(7));
    assert_eq!(
        file.read(offset, &mut [0u8; 4]).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(file.write(offset, &[0u8; 4]).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(
        file.mmap(DeviceOffset::new(region_offset(2) + 4096), 4096)
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
    assert_eq!(
        rig.vfio.open_count(),
        0,
        "an unbound file does not open the device"
    );
    assert_eq!(rig.model.resets(), 0);
    // Bound, the same file serves.
    bind(&file, &rig).unwrap();
    let dev = CdevDev { file, rig: &rig };
    assert_eq!(
        device_support::read_u32(&dev, region_offset(7)),
        Ok(device_support::model::VENDOR_DEVICE)
    );
    drop(dev);
    rig.baseline();
}

#[test]
fn closing_the_cdev_tears_the_irqs_down_and_the_group_path_starts_clean() {
    let rig = Rig::new(TestDevice::new());
    let (e, m) = (eventfd(), eventfd());
    let baseline = eventfd_copies(&[&e, &m]);
    let dev = CdevDev {
        file: rig.bound_cdev(),
        rig: &rig,
    };
    assert_eq!(rig.model.resets(), 1, "the first open resets");
    set_irqs(
        &dev,
        TRIGGER,
        VFIO_PCI_MSI_IRQ_INDEX,
        0,
        2,
        Data::Fds(&[raw(&e), raw(&m)]),
    )
    .unwrap();
    write_u32(&dev, region_offset(0) + 4, 1).unwrap();
    assert_eq!((fired(&e), fired(&m)), (0, 1));
    write_u32(&dev, region_offset(0) + 8, 0xfeed).unwrap();
    let map = dev.mmap(region_offset(2) + 4096, 4096).unwrap();
    assert!(eventfd_copies(&[&e, &m]) > baseline);
    // The group file cannot open while the device is bound through its cdev.
    assert!(rig.group.open(false).is_err());
    drop(dev);
    drop(map);
    assert_eq!(eventfd_copies(&[&e, &m]), baseline, "eventfd duplicates released");
    assert_eq!(rig.model.mode(), IrqMode::None);
    assert_eq!(rig.model.resets(), 2, "the last close resets");
    rig.model.raise(VFIO_PCI_MSI_IRQ_INDEX, 1);
    assert_eq!(fired(&m), 0);
    // The group path now: the same device, its IRQs off, BAR0 back to power-on values.
    let group = rig.open_group();
    let dev = GroupDev(rig.device_file(&group, NAME).unwrap());
    assert_eq!(rig.vfio.irq_mode(), IrqMode::None);
    assert_eq!(device_support::read_u32(&dev, region_offset(0) + 8), Ok(0));
    assert_eq!(
        set_irqs(&dev, TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 2, Data::None),
        Err(Errno::INVAL),
        "MSI is not enabled"
    );
    set_irqs(
        &dev,
        TRIGGER,
        VFIO_PCI_INTX_IRQ_INDEX,
        0,
        1,
        Data::Fds(&[raw(&e)]),
    )
    .unwrap();
    drop((dev, group));
    assert_eq!(eventfd_copies(&[&e, &m]), baseline);
    rig.baseline();
}
