//! The device side through a device file of the group path (`GET_DEVICE_FD`): the shared
//! scenarios (info, regions, region I/O, mmap, IRQ info, INTx, MSI / MSI-X, `SET_IRQS` refusals,
//! REQ, reset), a device without reset, two device files of one device sharing its IRQ state, the
//! last close tearing the IRQs down and releasing every eventfd, and a bare member answering as
//! before.

mod device_rig;
mod device_support;

use device_rig::{GroupDev, NAME, Rig};
use device_support::model::TestDevice;
use device_support::{
    Data, DeviceFd, eventfd, eventfd_copies, fired, raw, region_offset, set_irqs, suite, write_u32,
};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_GET_INFO, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX,
};
use uvfio_iommufd::device::GroupId;
use uvfio_vfio::device::{DeviceOffset, IrqMode};
use uvfio_vfio::group::{Group, GroupDevice};
use uvfio_vfio::uapi::IoctlArg;

const TRIGGER: u32 = VFIO_IRQ_SET_ACTION_TRIGGER;

/// Runs `scenario` on a fresh device through a group device file, then closes everything.
fn through_group(scenario: impl FnOnce(&dyn DeviceFd, &TestDevice)) {
    let rig = Rig::new(TestDevice::new());
    let group = rig.open_group();
    let dev = GroupDev(rig.device_file(&group, NAME).unwrap());
    scenario(&dev, &rig.model);
    drop(dev);
    drop(group);
    assert_eq!(rig.vfio.open_count(), 0);
    assert_eq!(rig.vfio.irq_mode(), IrqMode::None);
    rig.baseline();
}

#[test]
fn group_device_info() {
    through_group(|dev, _| suite::info(dev));
}

#[test]
fn group_device_region_info() {
    through_group(|dev, _| suite::region_info(dev));
}

#[test]
fn group_device_region_io() {
    through_group(suite::region_io);
}

#[test]
fn group_device_mmap() {
    through_group(suite::mmap);
}

#[test]
fn group_device_irq_info() {
    through_group(|dev, _| suite::irq_info(dev));
}

#[test]
fn group_device_intx() {
    through_group(suite::intx);
}

#[test]
fn group_device_msi_and_msix() {
    through_group(suite::msi);
}

#[test]
fn group_device_set_irqs_refusals() {
    through_group(suite::set_irqs_errors);
}

#[test]
fn group_device_req() {
    through_group(suite::req);
}

#[test]
fn group_device_reset() {
    through_group(suite::reset);
}

#[test]
fn reset_without_the_flag_is_einval() {
    let rig = Rig::new(TestDevice::without_reset());
    let group = rig.open_group();
    let dev = GroupDev(rig.device_file(&group, NAME).unwrap());
    let info = device_support::device_info(&dev).unwrap();
    assert_eq!(info.flags, VFIO_DEVICE_FLAGS_PCI);
    write_u32(&dev, region_offset(0) + 8, 77).unwrap();
    assert_eq!(device_support::reset(&dev), Err(Errno::INVAL));
    assert_eq!(
        rig.model.resets(),
        0,
        "never reset: not at open, not by the ioctl"
    );
    assert_eq!(device_support::read_u32(&dev, region_offset(0) + 8), Ok(77));
    drop((dev, group));
    assert_eq!(rig.model.resets(), 0, "nor at the last close");
    rig.baseline();
}

#[test]
fn device_files_of_one_device_share_its_irq_state_until_the_last_close() {
    let rig = Rig::new(TestDevice::new());
    let group = rig.open_group();
    let a = GroupDev(rig.device_file(&group, NAME).unwrap());
    // The first open resets the function (vfio_pci_core_enable()).
    assert_eq!(rig.model.resets(), 1);
    let b = GroupDev(rig.device_file(&group, NAME).unwrap());
    assert_eq!(rig.vfio.open_count(), 2);
    assert_eq!(rig.model.resets(), 1, "only the first open resets");
    let (e, r) = (eventfd(), eventfd());
    let baseline = eventfd_copies(&[&e, &r]);
    set_irqs(
        &a,
        TRIGGER,
        VFIO_PCI_MSIX_IRQ_INDEX,
        0,
        2,
        Data::Fds(&[raw(&e), raw(&e)]),
    )
    .unwrap();
    set_irqs(&a, TRIGGER, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, Data::Fds(&[raw(&r)])).unwrap();
    assert_eq!(
        eventfd_copies(&[&e, &r]),
        baseline + 3,
        "the device holds its own duplicates"
    );
    // What one file set, the other sees and drives.
    write_u32(&b, region_offset(0) + 4, 1).unwrap();
    assert_eq!(fired(&e), 1);
    assert_eq!(
        set_irqs(&b, TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, Data::Fds(&[raw(&e)])),
        Err(Errno::INVAL),
        "MSI-X is on, whichever file asks"
    );
    // One file closes: the device stays open, its IRQs on.
    drop(a);
    assert_eq!(rig.vfio.open_count(), 1);
    assert_eq!(rig.vfio.irq_mode(), IrqMode::Msix { vectors: 2 });
    write_u32(&b, region_offset(0) + 4, 0).unwrap();
    assert_eq!(fired(&e), 1);
    // The last close: IRQs disabled, the eventfds released, the function reset.
    drop(b);
    assert_eq!(rig.vfio.open_count(), 0);
    assert_eq!(rig.model.mode(), IrqMode::None);
    assert_eq!(rig.model.resets(), 2);
    assert_eq!(eventfd_copies(&[&e, &r]), baseline, "no eventfd duplicate left");
    rig.model.raise(VFIO_PCI_MSIX_IRQ_INDEX, 0);
    rig.model.raise(VFIO_PCI_REQ_IRQ_INDEX, 0);
    assert_eq!((fired(&e), fired(&r)), (0, 0));
    // Opened again: a clean state.
    let c = GroupDev(rig.device_file(&group, NAME).unwrap());
    assert_eq!(rig.vfio.irq_mode(), IrqMode::None);
    set_irqs(&c, TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, Data::Fds(&[raw(&e)])).unwrap();
    drop((c, group));
    assert_eq!(eventfd_copies(&[&e, &r]), baseline);
    rig.baseline();
}

#[test]
fn a_bare_member_serves_no_device_side() {
    let rig = Rig::new(TestDevice::new());
    rig.group
        .add_device("bare", GroupDevice::Iommu { rid: 0x19 })
        .unwrap();
    rig.group.set_vfio_bound("bare", true).unwrap();
    let group = rig.open_group();
    let bare = rig.device_file(&group, "bare").unwrap();
    assert!(bare.vfio_device().is_none());
    let mut info = [0u8; 16];
    info[..4].copy_from_slice(&16u32.to_ne_bytes());
    let e = bare.ioctl(
        VFIO_DEVICE_GET_INFO,
        IoctlArg::Buffer(&mut info),
        &device_support::ProcessFds,
    );
    assert_eq!(e.unwrap_err().errno(), Errno::NOTTY);
    let offset = DeviceOffset::new(0);
    assert_eq!(
        bare.read(offset, &mut [0u8; 4]).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(bare.write(offset, &[0u8; 4]).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(bare.mmap(offset, 4096).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(
        rig.vfio.open_count(),
        0,
        "the modelled device is not opened by its neighbour"
    );
    drop((bare, group));
    rig.baseline();
}

#[test]
fn a_device_side_fits_its_group_kind() {
    // A no-IOMMU group takes a no-IOMMU member with a device side, an IOMMU group does not.
    let rig = Rig::new(TestDevice::new());
    let other = Group::new(GroupId(9));
    let vfio = uvfio_vfio::device::VfioDevice::new(TestDevice::new().model());
    let mem =
        Arc::new(uvfio_memory::HostMemory::new(uvfio_memory::MemoryConfig::with_ram(16 << 20)).unwrap());
    let noiommu = GroupDevice::NoIommu(Arc::new(uvfio_vfio::noiommu::NoIommuDevice::new(mem, 1)));
    let e = other.add_vfio_device("x", noiommu, vfio).unwrap_err();
    assert_eq!(e.errno(), Errno::INVAL);
    rig.baseline();
}
