//! The unsafe no-IOMMU mode through the host's files (seed 000, Linux
//! `vfio.enable_unsafe_noiommu_mode`): off without the opt-in, refused without `CAP_SYS_RAWIO`,
//! the taint it leaves, a container that takes only the no-IOMMU type and no map request, and a
//! driver that locks a buffer, learns its physical address from `/proc/self/pagemap` and has the
//! device DMA there.

mod support;

use rustix::io::Errno;
use support::{Buffer, PAGE, assert_baseline, host_with};
use uvfio_abi::vfio::{
    VFIO_CHECK_EXTENSION, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_IOMMU_MAP_DMA,
    VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VfioIommuType1DmaMap,
};
use uvfio_host::{
    DEV_IOMMU, DEV_VFIO_CONTAINER, Host, HostFd, HostOptions, PROC_PAGEMAP, PROC_TAINTED, TAINT_USER,
    TopologyConfig,
};
use uvfio_iommufd::ctx::Credentials;
use uvfio_types::Iova;
use zerocopy::{FromZeros, IntoBytes};

const NOIOMMU_GROUP: &str = "/dev/vfio/noiommu-0";
const DEVICE: &str = "0000:00:02.0";

const NO_IOMMU: HostOptions = HostOptions {
    iommu: false,
    unsafe_noiommu: false,
};
const NO_IOMMU_UNSAFE: HostOptions = HostOptions {
    iommu: false,
    unsafe_noiommu: true,
};

fn root() -> Credentials {
    Credentials {
        sys_resource: true,
        sys_rawio: true,
        sys_admin: true,
    }
}

fn noiommu_host(creds: Credentials, limit_pages: Option<u64>) -> Host {
    host_with(TopologyConfig::default(), NO_IOMMU_UNSAFE, creds, limit_pages)
}

fn get_device_fd(host: &Host, group: HostFd) -> Result<HostFd, Errno> {
    let mut name = DEVICE.as_bytes().to_vec();
    name.push(0);
    host.ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, &mut name)
        .map(|fd| HostFd(fd as i32))
}

/// The pagemap entry of the page holding `va`.
fn pagemap_entry(host: &Host, pagemap: HostFd, va: u64) -> u64 {
    let mut entry = [0u8; 8];
    assert_eq!(host.read(pagemap, va / PAGE as u64 * 8, &mut entry), Ok(8));
    u64::from_ne_bytes(entry)
}

const PM_PRESENT: u64 = 1 << 63;
const PM_PFRAME_MASK: u64 = (1 << 55) - 1;

#[test]
fn without_the_opt_in_a_host_without_iommu_offers_no_vfio_device() {
    let host = host_with(TopologyConfig::default(), NO_IOMMU, root(), None);
    assert!(host.vfio_group_nodes().is_empty());
    assert!(host.vfio_cdev_nodes().is_empty());
    assert_eq!(host.open(NOIOMMU_GROUP), Err(Errno::NOENT));
    // The container does not offer the no-IOMMU type either.
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let ext = u64::from(VFIO_NOIOMMU_IOMMU);
    assert_eq!(host.ioctl_value(container, VFIO_CHECK_EXTENSION, ext), Ok(0));
    host.close(container).unwrap();
    assert_eq!(host.tainted(), 0);
    assert_baseline(&host);
}

#[test]
fn the_opt_in_makes_noiommu_groups_taints_and_still_needs_cap_sys_rawio() {
    let host = noiommu_host(Credentials::default(), None);
    assert_eq!(host.vfio_group_nodes(), vec!["noiommu-0"]);
    // "cdev does not support noiommu device".
    assert!(host.vfio_cdev_nodes().is_empty());
    // Making the group tainted the kernel, and /proc/sys/kernel/tainted says so.
    assert_eq!(host.tainted(), TAINT_USER);
    let tainted = host.open(PROC_TAINTED).unwrap();
    let mut text = [0u8; 8];
    let n = host.read(tainted, 0, &mut text).unwrap();
    assert_eq!(&text[..n], b"64\n");
    host.close(tainted).unwrap();
    // Without CAP_SYS_RAWIO the group does not open.
    assert_eq!(host.open(NOIOMMU_GROUP), Err(Errno::PERM));
    // The container offers the type, but will not open it.
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let ext = u64::from(VFIO_NOIOMMU_IOMMU);
    assert_eq!(host.ioctl_value(container, VFIO_CHECK_EXTENSION, ext), Ok(1));
    host.close(container).unwrap();
    assert_eq!(host.taint().noiommu_opens(), 0);
    assert_baseline(&host);
}

#[test]
fn a_noiommu_driver_dmas_to_the_physical_address_of_its_locked_buffer() {
    let buf = Buffer::new(2, 0x3c);
    let host = noiommu_host(root(), None);
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let group = host.open(NOIOMMU_GROUP).unwrap();
    let set = host.ioctl_buf(group, VFIO_GROUP_SET_CONTAINER, &mut container.0.to_ne_bytes());
    assert_eq!(set, Ok(0));
    // Only the no-IOMMU type: TYPE1v2 has no allowed driver (ENODEV).
    let type1v2 = u64::from(VFIO_TYPE1v2_IOMMU);
    assert_eq!(
        host.ioctl_value(container, VFIO_SET_IOMMU, type1v2),
        Err(Errno::NODEV)
    );
    host.ioctl_value(container, VFIO_SET_IOMMU, u64::from(VFIO_NOIOMMU_IOMMU))
        .unwrap();
    // No map requests (ENOTTY).
    let mut map = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(
        host.ioctl_buf(container, VFIO_IOMMU_MAP_DMA, map.as_mut_bytes()),
        Err(Errno::NOTTY)
    );
    let device = get_device_fd(&host, group).unwrap();
    assert_eq!(host.taint().noiommu_opens(), 1, "the open is recorded");
    // Lock the buffer and read its frames from the pagemap.
    let pagemap = host.open(PROC_PAGEMAP).unwrap();
    assert_eq!(
        pagemap_entry(&host, pagemap, buf.va()),
        0,
        "not locked: not present"
    );
    host.mlock(buf.va(), 2 * PAGE as u64).unwrap();
    assert_eq!(host.locked_pages(), 2);
    assert_eq!(host.accounts().mm.locked_pages(), 2);
    let entry = pagemap_entry(&host, pagemap, buf.va() + PAGE as u64);
    assert_ne!(entry & PM_PRESENT, 0);
    let hpa = (entry & PM_PFRAME_MASK) * PAGE as u64;
    // The device reaches the buffer at its HPA, untranslated.
    let port = host.device_port(device).unwrap();
    port.write(Iova::new(hpa + 5), &[0xa5]).unwrap();
    assert_eq!(buf.byte(PAGE + 5), 0xa5);
    let mut b = [0u8; 1];
    port.read(Iova::new(hpa), &mut b).unwrap();
    assert_eq!(b[0], 0x3c);
    drop(port);
    host.munlock(buf.va(), 2 * PAGE as u64).unwrap();
    assert_eq!(pagemap_entry(&host, pagemap, buf.va()), 0);
    for fd in [device, group, container, pagemap] {
        host.close(fd).unwrap();
    }
    assert_eq!(host.locked_pages(), 0);
    assert_baseline(&host);
}

#[test]
fn the_pagemap_hides_frames_without_cap_sys_admin_and_wants_whole_entries() {
    let buf = Buffer::new(1, 0);
    let creds = Credentials {
        sys_rawio: true,
        ..Credentials::default()
    };
    let host = noiommu_host(creds, None);
    let pagemap = host.open(PROC_PAGEMAP).unwrap();
    host.mlock(buf.va(), 1).unwrap();
    // "the PFNs are zeroed if the user does not have CAP_SYS_ADMIN"; the page is present.
    assert_eq!(pagemap_entry(&host, pagemap, buf.va()), PM_PRESENT);
    // Misaligned offset or length: EINVAL.
    let at = buf.va() / PAGE as u64 * 8;
    assert_eq!(host.read(pagemap, at + 1, &mut [0u8; 8]), Err(Errno::INVAL));
    assert_eq!(host.read(pagemap, at, &mut [0u8; 12]), Err(Errno::INVAL));
    // Read-only, no ioctls, no mmap.
    assert_eq!(host.write(pagemap, at, &[0u8; 8]), Err(Errno::INVAL));
    assert_eq!(
        host.ioctl_value(pagemap, VFIO_CHECK_EXTENSION, 0),
        Err(Errno::NOTTY)
    );
    assert_eq!(host.mmap(pagemap, 0, 4096).unwrap_err(), Errno::NODEV);
    host.munlock(buf.va(), 1).unwrap();
    host.close(pagemap).unwrap();
    assert_baseline(&host);
}

#[test]
fn mlock_refuses_bad_ranges_and_the_limit_and_changes_nothing() {
    let buf = Buffer::new(4, 0);
    let host = noiommu_host(root(), Some(2));
    // Empty or wrapping: EINVAL. Unmapped memory: ENOMEM.
    assert_eq!(host.mlock(buf.va(), 0), Err(Errno::INVAL));
    assert_eq!(host.mlock(u64::MAX - 10, 100), Err(Errno::INVAL));
    assert_eq!(host.mlock(0x1000, 4096), Err(Errno::NOMEM));
    // Past RLIMIT_MEMLOCK (2 pages): ENOMEM, nothing locked or charged.
    assert_eq!(host.mlock(buf.va(), 3 * PAGE as u64), Err(Errno::NOMEM));
    assert_eq!(host.locked_pages(), 0);
    assert_eq!(host.accounts().mm.locked_pages(), 0);
    assert_eq!(host.memory().stats().adopted_segments, 0);
    host.mlock(buf.va(), 2 * PAGE as u64).unwrap();
    // Overlapping a locked range: EBUSY; unlocking half of it: EINVAL.
    assert_eq!(host.mlock(buf.va() + PAGE as u64, PAGE as u64), Err(Errno::BUSY));
    assert_eq!(host.munlock(buf.va(), PAGE as u64), Err(Errno::INVAL));
    assert_eq!(host.locked_pages(), 2);
    // A range locked and never unlocked goes with the process (the host).
    drop(host);
    let host = noiommu_host(root(), None);
    host.mlock(buf.va(), PAGE as u64).unwrap();
    let mem = std::sync::Arc::clone(host.memory());
    drop(host);
    assert_eq!(mem.stats().adopted_segments, 0);
    assert_eq!(mem.account().locked_pages, 0);
}

#[test]
fn a_noiommu_group_may_use_an_iommufd_that_has_no_compat_ioas() {
    let host = noiommu_host(root(), None);
    let iommufd = host.open(DEV_IOMMU).unwrap();
    let group = host.open(NOIOMMU_GROUP).unwrap();
    let set = host.ioctl_buf(group, VFIO_GROUP_SET_CONTAINER, &mut iommufd.0.to_ne_bytes());
    assert_eq!(set, Ok(0));
    let device = get_device_fd(&host, group).unwrap();
    assert!(host.device_port(device).is_ok());
    for fd in [device, group, iommufd] {
        host.close(fd).unwrap();
    }
    assert_baseline(&host);
}
