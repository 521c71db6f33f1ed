//! The device side through the host's files, driven with raw uAPI bytes as a C driver drives it:
//! a host started with a device model behind its endpoint, the shared scenarios (info, regions,
//! region I/O, mmap, IRQ info, INTx, MSI / MSI-X, `SET_IRQS` refusals, REQ, reset) through a
//! device fd from `/dev/vfio/N` → `GET_DEVICE_FD` and through `/dev/vfio/devices/vfioX` after
//! `BIND_IOMMUFD`; the no-IOMMU path; the models `Host::with_devices` refuses; one IRQ state for
//! both paths, torn down with every eventfd at the last close. Each test ends with the host at its
//! baseline.

#[path = "../../vfio/tests/device_support/mod.rs"]
mod device_support;
mod support;

use device_support::model::{TestDevice, VENDOR_DEVICE};
use device_support::{
    Data, DeviceFd, eventfd, eventfd_copies, fired, raw, read_u32, region_offset, set_irqs, suite, write_u32,
};
use rustix::io::Errno;
use std::sync::Arc;
use support::assert_baseline;
use uvfio_abi::vfio::{
    VFIO_DEVICE_BIND_IOMMUFD, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_NOIOMMU_IOMMU, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VfioDeviceBindIommufd,
};
use uvfio_host::topology::{Bdf, FunctionConfig, FunctionKind, PciId};
use uvfio_host::{DEV_IOMMU, DEV_VFIO_CONTAINER, Host, HostFd, HostOptions, Topology, TopologyConfig};
use uvfio_iommufd::ctx::{Accounts, Credentials};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_vfio::device::{IrqMode, RegionMap, VfioDeviceModel};
use zerocopy::{FromZeros, IntoBytes};

/// The default topology's one device, `00:02.0`, in group 0.
const GROUP: &str = "/dev/vfio/0";
const DEVICE: &str = "0000:00:02.0";
const CDEV: &str = "/dev/vfio/devices/vfio0";
const TRIGGER: u32 = VFIO_IRQ_SET_ACTION_TRIGGER;

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn root() -> Credentials {
    Credentials {
        sys_resource: true,
        sys_rawio: true,
        sys_admin: true,
    }
}

/// A host on `topology` started with `options`, `devices` behind their addresses.
fn host_with_devices(
    topology: TopologyConfig,
    options: HostOptions,
    devices: Vec<(Bdf, Arc<dyn VfioDeviceModel>)>,
) -> Result<Host, Errno> {
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(16 << 20)).unwrap());
    let topology = Topology::new(topology).unwrap();
    Host::with_devices(mem, Accounts::unlimited(), root(), topology, options, devices)
}

/// The default host with `model` behind `00:02.0`.
fn host_with_model(model: &Arc<TestDevice>) -> Host {
    let devices = vec![(bdf("00:02.0"), model.model())];
    host_with_devices(TopologyConfig::default(), HostOptions::default(), devices).unwrap()
}

/// A device file of the host: raw bytes in, errnos out.
struct HostDev<'h> {
    host: &'h Host,
    fd: HostFd,
}

impl DeviceFd for HostDev<'_> {
    fn ioctl_buf(&self, request: u32, arg: &mut [u8]) -> Result<u32, Errno> {
        self.host.ioctl_buf(self.fd, request, arg)
    }

    fn ioctl_value(&self, request: u32, value: u64) -> Result<u32, Errno> {
        self.host.ioctl_value(self.fd, request, value)
    }

    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.host.read(self.fd, offset, buf)
    }

    fn pwrite(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.host.write(self.fd, offset, data)
    }

    fn mmap(&self, offset: u64, len: u64) -> Result<RegionMap, Errno> {
        self.host.mmap(self.fd, offset, len)
    }
}

/// `open(/dev/vfio/vfio)`, `open(group)`, `SET_CONTAINER`, `SET_IOMMU(iommu_type)`,
/// `GET_DEVICE_FD`: the files opened, the device's last.
fn legacy_open(host: &Host, group_path: &str, iommu_type: u32) -> Vec<HostFd> {
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let group = host.open(group_path).unwrap();
    host.ioctl_buf(group, VFIO_GROUP_SET_CONTAINER, &mut container.0.to_ne_bytes())
        .unwrap();
    host.ioctl_value(container, VFIO_SET_IOMMU, u64::from(iommu_type))
        .unwrap();
    let mut name = DEVICE.as_bytes().to_vec();
    name.push(0);
    let device = host
        .ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, &mut name)
        .unwrap();
    vec![container, group, HostFd(device as i32)]
}

/// `open(/dev/iommu)`, `open(cdev)`, `BIND_IOMMUFD`: the files opened, the cdev last.
fn cdev_open(host: &Host) -> Vec<HostFd> {
    let iommufd = host.open(DEV_IOMMU).unwrap();
    let cdev = host.open(CDEV).unwrap();
    let mut b = VfioDeviceBindIommufd {
        argsz: size_of::<VfioDeviceBindIommufd>() as u32,
        iommufd: iommufd.0,
        ..FromZeros::new_zeroed()
    };
    host.ioctl_buf(cdev, VFIO_DEVICE_BIND_IOMMUFD, b.as_mut_bytes())
        .unwrap();
    vec![iommufd, cdev]
}

fn close_all(host: &Host, fds: &[HostFd]) {
    for &fd in fds.iter().rev() {
        host.close(fd).unwrap();
    }
}

/// Runs `scenario` through the group path of a fresh host, then closes everything.
fn through_group(scenario: impl FnOnce(&dyn DeviceFd, &TestDevice)) {
    let model = TestDevice::new();
    let host = host_with_model(&model);
    let fds = legacy_open(&host, GROUP, VFIO_TYPE1v2_IOMMU);
    scenario(
        &HostDev {
            host: &host,
            fd: fds[2],
        },
        &model,
    );
    close_all(&host, &fds);
    assert_eq!(model.mode(), IrqMode::None);
    assert_baseline(&host);
}

/// Runs `scenario` through the bound cdev of a fresh host, then closes everything.
fn through_cdev(scenario: impl FnOnce(&dyn DeviceFd, &TestDevice)) {
    let model = TestDevice::new();
    let host = host_with_model(&model);
    let fds = cdev_open(&host);
    scenario(
        &HostDev {
            host: &host,
            fd: fds[1],
        },
        &model,
    );
    close_all(&host, &fds);
    assert_eq!(model.mode(), IrqMode::None);
    assert_baseline(&host);
}

#[test]
fn group_path_info_and_region_info() {
    through_group(|dev, _| {
        suite::info(dev);
        suite::region_info(dev);
        suite::irq_info(dev);
    });
}

#[test]
fn group_path_region_io() {
    through_group(suite::region_io);
}

#[test]
fn group_path_mmap() {
    through_group(suite::mmap);
}

#[test]
fn group_path_intx() {
    through_group(suite::intx);
}

#[test]
fn group_path_msi_and_msix() {
    through_group(suite::msi);
}

#[test]
fn group_path_set_irqs_refusals() {
    through_group(suite::set_irqs_errors);
}

#[test]
fn group_path_req_and_reset() {
    through_group(|dev, model| {
        suite::req(dev, model);
        suite::reset(dev, model);
    });
}

#[test]
fn cdev_path_info_and_region_info() {
    through_cdev(|dev, _| {
        suite::info(dev);
        suite::region_info(dev);
        suite::irq_info(dev);
    });
}

#[test]
fn cdev_path_region_io() {
    through_cdev(suite::region_io);
}

#[test]
fn cdev_path_mmap() {
    through_cdev(suite::mmap);
}

#[test]
fn cdev_path_intx() {
    through_cdev(suite::intx);
}

#[test]
fn cdev_path_msi_and_msix() {
    through_cdev(suite::msi);
}

#[test]
fn cdev_path_set_irqs_refusals() {
    through_cdev(suite::set_irqs_errors);
}

#[test]
fn cdev_path_req_and_reset() {
    through_cdev(|dev, model| {
        suite::req(dev, model);
        suite::reset(dev, model);
    });
}

#[test]
fn noiommu_group_path_serves_the_device_side() {
    let model = TestDevice::new();
    let options = HostOptions {
        iommu: false,
        unsafe_noiommu: true,
    };
    let devices = vec![(bdf("00:02.0"), model.model())];
    let host = host_with_devices(TopologyConfig::default(), options, devices).unwrap();
    let fds = legacy_open(&host, "/dev/vfio/noiommu-0", VFIO_NOIOMMU_IOMMU);
    let dev = HostDev {
        host: &host,
        fd: fds[2],
    };
    suite::region_io(&dev, &model);
    suite::intx(&dev, &model);
    close_all(&host, &fds);
    assert_baseline(&host);
}

#[test]
fn with_devices_refuses_models_at_addresses_without_an_endpoint() {
    let topology = TopologyConfig {
        functions: vec![
            FunctionConfig::bridge(bdf("00:1e.0"), PciId::EDU, FunctionKind::PcieToPciBridge, 1),
            FunctionConfig::endpoint(bdf("01:00.0"), PciId::EDU),
        ],
    };
    let model = TestDevice::new();
    for (case, devices) in [
        ("a bridge", vec![(bdf("00:1e.0"), model.model())]),
        ("no function", vec![(bdf("00:05.0"), model.model())]),
        (
            "one address twice",
            vec![(bdf("01:00.0"), model.model()), (bdf("01:00.0"), model.model())],
        ),
    ] {
        let r = host_with_devices(topology.clone(), HostOptions::default(), devices);
        assert_eq!(r.err(), Some(Errno::INVAL), "{case}");
    }
    let host = host_with_devices(
        topology,
        HostOptions::default(),
        vec![(bdf("01:00.0"), model.model())],
    )
    .unwrap();
    assert_eq!(host.vfio_cdev_nodes(), ["vfio0"]);
    assert_baseline(&host);
}

#[test]
fn unbound_cdevs_and_other_files_keep_their_errnos() {
    let model = TestDevice::new();
    let host = host_with_model(&model);
    let cdev = host.open(CDEV).unwrap();
    let config = region_offset(7);
    assert_eq!(host.read(cdev, config, &mut [0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.write(cdev, config, &[0u8; 4]), Err(Errno::INVAL));
    assert_eq!(
        host.mmap(cdev, region_offset(2) + 4096, 4096).unwrap_err(),
        Errno::INVAL
    );
    let group = host.open(GROUP).unwrap();
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let pagemap = host.open(uvfio_host::PROC_PAGEMAP).unwrap();
    assert_eq!(host.write(group, 0, &[0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.write(pagemap, 0, &[0u8; 8]), Err(Errno::INVAL));
    assert_eq!(host.mmap(group, 0, 4096).unwrap_err(), Errno::NODEV);
    assert_eq!(host.mmap(pagemap, 0, 4096).unwrap_err(), Errno::NODEV);
    assert_eq!(host.mmap(container, 0, 4096).unwrap_err(), Errno::INVAL);
    assert_eq!(host.mmap(HostFd(77), 0, 4096).unwrap_err(), Errno::BADF);
    assert_eq!(model.resets(), 0, "nothing opened the device");
    close_all(&host, &[cdev, group, container, pagemap]);
    assert_baseline(&host);
}

#[test]
fn both_paths_share_one_device_torn_down_at_the_last_close() {
    let model = TestDevice::new();
    let host = host_with_model(&model);
    let (e, f) = (eventfd(), eventfd());
    let baseline = eventfd_copies(&[&e, &f]);
    // The cdev path: MSI-X on, BAR0 written, a region mapped; then closed.
    let fds = cdev_open(&host);
    let dev = HostDev {
        host: &host,
        fd: fds[1],
    };
    set_irqs(
        &dev,
        TRIGGER,
        VFIO_PCI_MSIX_IRQ_INDEX,
        0,
        2,
        Data::Fds(&[raw(&e), raw(&f)]),
    )
    .unwrap();
    write_u32(&dev, region_offset(0) + 4, 1).unwrap();
    assert_eq!((fired(&e), fired(&f)), (0, 1));
    write_u32(&dev, region_offset(0) + 8, 0xabcd).unwrap();
    let map = dev.mmap(region_offset(2) + 4096, 4096).unwrap();
    assert!(eventfd_copies(&[&e, &f]) > baseline);
    // The group cannot open while the device is bound through its cdev.
    assert_eq!(host.open(GROUP), Err(Errno::BUSY));
    close_all(&host, &fds);
    drop(map);
    assert_eq!(
        eventfd_copies(&[&e, &f]),
        baseline,
        "every eventfd duplicate released"
    );
    assert_eq!(model.mode(), IrqMode::None);
    model.raise(VFIO_PCI_MSIX_IRQ_INDEX, 1);
    assert_eq!(fired(&f), 0);
    // The group path finds the same device, reset, its IRQs off; two device fds share it.
    let fds = legacy_open(&host, GROUP, VFIO_TYPE1v2_IOMMU);
    let (a, b) = (
        HostDev {
            host: &host,
            fd: fds[2],
        },
        HostDev {
            host: &host,
            fd: get_device_fd(&host, fds[1]),
        },
    );
    assert_eq!(
        read_u32(&a, region_offset(0) + 8),
        Ok(0),
        "reset at the last close"
    );
    assert_eq!(read_u32(&b, region_offset(7)), Ok(VENDOR_DEVICE));
    set_irqs(&a, TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, Data::Fds(&[raw(&e)])).unwrap();
    write_u32(&b, region_offset(0), 1).unwrap();
    assert_eq!(fired(&e), 1, "b raised what a set up");
    host.close(a.fd).unwrap();
    assert_eq!(model.mode(), IrqMode::Intx, "b still has the device open");
    host.close(b.fd).unwrap();
    assert_eq!(model.mode(), IrqMode::None);
    assert_eq!(eventfd_copies(&[&e, &f]), baseline);
    close_all(&host, &fds[..2]);
    assert_baseline(&host);
}

fn get_device_fd(host: &Host, group: HostFd) -> HostFd {
    let mut name = DEVICE.as_bytes().to_vec();
    name.push(0);
    HostFd(
        host.ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, &mut name)
            .unwrap() as i32,
    )
}
