//! The host's VFIO files through their raw uAPI bytes, as a C driver drives them
//! (Documentation/driver-api/vfio.rst's "VFIO Usage Example" and "Device cdev Example"): groups
//! and device files of the legacy path, cdevs bound to an iommufd, the exclusions between the two
//! paths and between owners, and the files' `read / write / mmap` errnos. Each test ends with the
//! host back at its baseline: no file, no pin, no charge, no adopted segment, no leaked object.

mod support;

use rustix::io::Errno;
use support::{Buffer, IOVA, PAGE, assert_baseline, host, host_with, ioas_alloc, ioas_map};
use uvfio_abi::iommufd::{IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS_GET, IommuVfioIoas};
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, VFIO_IOMMU_MAP_DMA, VFIO_SET_IOMMU,
    VFIO_TYPE1v2_IOMMU, VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd, VfioGroupStatus,
    VfioIommuType1DmaMap,
};
use uvfio_host::topology::{Bdf, FunctionConfig, FunctionKind, PciId};
use uvfio_host::{DEV_IOMMU, DEV_VFIO_CONTAINER, Host, HostFd, HostOptions, TopologyConfig};
use uvfio_iommufd::ctx::Credentials;
use uvfio_types::Iova;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// The default topology's one device, `00:02.0`, in group 0.
const GROUP: &str = "/dev/vfio/0";
const DEVICE: &str = "0000:00:02.0";
const CDEV: &str = "/dev/vfio/devices/vfio0";

fn status(host: &Host, group: HostFd) -> u32 {
    let mut st = VfioGroupStatus {
        argsz: size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_GET_STATUS, st.as_mut_bytes()),
        Ok(0)
    );
    st.flags
}

/// `ioctl(group, VFIO_GROUP_SET_CONTAINER, &fd)`.
fn set_container(host: &Host, group: HostFd, fd: i32) -> Result<u32, Errno> {
    host.ioctl_buf(group, VFIO_GROUP_SET_CONTAINER, &mut fd.to_ne_bytes())
}

/// `ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name)`: the new fd.
fn get_device_fd(host: &Host, group: HostFd, name: &str) -> Result<HostFd, Errno> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    host.ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, &mut bytes)
        .map(|fd| HostFd(fd as i32))
}

fn map_dma(host: &Host, container: HostFd, buf: &Buffer, pages: u64) -> Result<u32, Errno> {
    let mut map = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.va(),
        iova: IOVA,
        size: pages * PAGE as u64,
    };
    host.ioctl_buf(container, VFIO_IOMMU_MAP_DMA, map.as_mut_bytes())
}

/// `VFIO_DEVICE_BIND_IOMMUFD`: the devid.
fn bind(host: &Host, cdev: HostFd, iommufd: i32) -> Result<u32, Errno> {
    let mut b = VfioDeviceBindIommufd {
        argsz: size_of::<VfioDeviceBindIommufd>() as u32,
        iommufd,
        ..FromZeros::new_zeroed()
    };
    host.ioctl_buf(cdev, VFIO_DEVICE_BIND_IOMMUFD, b.as_mut_bytes())?;
    Ok(b.out_devid)
}

/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`: the HWPT's id.
fn attach(host: &Host, cdev: HostFd, pt_id: u32) -> Result<u32, Errno> {
    let mut a = VfioDeviceAttachIommufdPt {
        argsz: size_of::<VfioDeviceAttachIommufdPt>() as u32,
        pt_id,
        ..FromZeros::new_zeroed()
    };
    host.ioctl_buf(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, a.as_mut_bytes())?;
    Ok(a.pt_id)
}

/// The device's DMA reads the buffer's first byte through `IOVA` and writes its last one.
fn dma_round_trip(host: &Host, device: HostFd, buf: &Buffer, pages: u64) {
    let port = host.device_port(device).unwrap();
    let mut b = [0u8; 1];
    port.read(Iova::new(IOVA), &mut b).unwrap();
    assert_eq!(b[0], buf.byte(0));
    let last = pages * PAGE as u64 - 1;
    port.write(Iova::new(IOVA + last), &[0xc3]).unwrap();
    assert_eq!(buf.byte(last as usize), 0xc3);
    assert!(
        port.read(Iova::new(IOVA + last + 1), &mut b).is_err(),
        "past the mapping faults"
    );
}

fn close_all(host: &Host, fds: &[HostFd]) {
    for &fd in fds {
        host.close(fd).unwrap();
    }
}

/// Two endpoints behind a PCIe-to-PCI bridge: one IOMMU group (with the bridge), two cdevs.
fn shared_group_topology() -> TopologyConfig {
    let bdf = |s: &str| s.parse::<Bdf>().unwrap();
    TopologyConfig {
        functions: vec![
            FunctionConfig::bridge(bdf("00:1e.0"), PciId::EDU, FunctionKind::PcieToPciBridge, 1),
            FunctionConfig::endpoint(bdf("01:00.0"), PciId::EDU),
            FunctionConfig::endpoint(bdf("01:01.0"), PciId::EDU),
        ],
    }
}

#[test]
fn the_host_has_a_group_per_iommu_group_and_a_cdev_per_device() {
    let host = host();
    assert_eq!(host.vfio_group_nodes(), vec!["0"]);
    assert_eq!(host.vfio_cdev_nodes(), vec!["vfio0"]);
    let shared = host_with(
        shared_group_topology(),
        HostOptions::default(),
        Credentials::default(),
        None,
    );
    assert_eq!(
        shared.vfio_group_nodes().len(),
        1,
        "bridge and both endpoints share a group"
    );
    assert_eq!(shared.vfio_cdev_nodes(), vec!["vfio0", "vfio1"]);
    for path in [
        "/dev/vfio/1",
        "/dev/vfio/noiommu-0",
        "/dev/vfio/devices/vfio1",
        "/dev/vfio/devices/",
    ] {
        assert_eq!(host.open(path), Err(Errno::NOENT), "{path}");
    }
}

#[test]
fn legacy_group_path_end_to_end() {
    let buf = Buffer::new(4, 0x5a);
    let host = host();
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let group = host.open(GROUP).unwrap();
    // One opener at a time.
    assert_eq!(host.open(GROUP), Err(Errno::BUSY));
    assert_eq!(status(&host, group), VFIO_GROUP_FLAGS_VIABLE);
    set_container(&host, group, container.0).unwrap();
    assert_eq!(
        status(&host, group),
        VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET
    );
    // GET_DEVICE_FD before SET_IOMMU: EINVAL; an unknown name: ENODEV.
    assert_eq!(get_device_fd(&host, group, DEVICE), Err(Errno::INVAL));
    assert_eq!(get_device_fd(&host, group, "0000:00:03.0"), Err(Errno::NODEV));
    host.ioctl_value(container, VFIO_SET_IOMMU, u64::from(VFIO_TYPE1v2_IOMMU))
        .unwrap();
    map_dma(&host, container, &buf, 4).unwrap();
    assert_eq!(host.accounts().mm.locked_pages(), 4);
    let device = get_device_fd(&host, group, DEVICE).unwrap();
    assert_eq!(device, HostFd(5), "the next free file number");
    dma_round_trip(&host, device, &buf, 4);
    // UNSET_CONTAINER while a device file is open: EBUSY.
    assert_eq!(
        host.ioctl_value(group, VFIO_GROUP_UNSET_CONTAINER, 0),
        Err(Errno::BUSY)
    );
    // The container's file can go first: the group keeps the container (and its context) alive.
    close_all(&host, &[container]);
    dma_round_trip(&host, device, &buf, 4);
    close_all(&host, &[device, group]);
    assert_baseline(&host);
}

#[test]
fn set_container_takes_a_container_or_an_iommufd_and_nothing_else() {
    let buf = Buffer::new(2, 0x11);
    let host = host();
    let group = host.open(GROUP).unwrap();
    let pagemap = host.open(uvfio_host::PROC_PAGEMAP).unwrap();
    // No such file: EBADF; a file that is neither: EBADFD ("The FD passed is not recognized").
    assert_eq!(set_container(&host, group, 77), Err(Errno::BADF));
    assert_eq!(set_container(&host, group, pagemap.0), Err(Errno::BADFD));
    assert_eq!(set_container(&host, group, group.0), Err(Errno::BADFD));
    assert_eq!(status(&host, group), VFIO_GROUP_FLAGS_VIABLE);
    // An iommufd: the group uses its compat IOAS, made now; no SET_IOMMU needed.
    let iommufd = host.open(DEV_IOMMU).unwrap();
    set_container(&host, group, iommufd.0).unwrap();
    let mut get = IommuVfioIoas {
        size: size_of::<IommuVfioIoas>() as u32,
        op: IOMMU_VFIO_IOAS_GET,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(
        host.ioctl_buf(iommufd, IOMMU_VFIO_IOAS, get.as_mut_bytes()),
        Ok(0)
    );
    let compat = IommuVfioIoas::read_from_bytes(get.as_bytes()).unwrap().ioas_id;
    ioas_map(&host, iommufd, compat, &buf, 2);
    // The iommufd charges the user, as IOAS_MAP always does.
    assert_eq!(host.accounts().user.locked_pages(), 2);
    let device = get_device_fd(&host, group, DEVICE).unwrap();
    dma_round_trip(&host, device, &buf, 2);
    // The iommufd's file may close: the group holds the context.
    close_all(&host, &[iommufd]);
    dma_round_trip(&host, device, &buf, 2);
    close_all(&host, &[device, group, pagemap]);
    assert_baseline(&host);
}

#[test]
fn cdev_path_end_to_end() {
    let buf = Buffer::new(4, 0x77);
    let host = host();
    let iommufd = host.open(DEV_IOMMU).unwrap();
    let ioas = ioas_alloc(&host, iommufd);
    ioas_map(&host, iommufd, ioas, &buf, 4);
    let cdev = host.open(CDEV).unwrap();
    // Everything but BIND is EINVAL until bound, as are read / write / mmap.
    assert_eq!(attach(&host, cdev, ioas), Err(Errno::INVAL));
    assert_eq!(host.read(cdev, 0, &mut [0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.device_port(cdev).unwrap_err(), Errno::INVAL);
    // BIND with no such fd: EBADF; with a file that is no iommufd: EBADFD.
    assert_eq!(bind(&host, cdev, 99), Err(Errno::BADF));
    assert_eq!(bind(&host, cdev, cdev.0), Err(Errno::BADFD));
    let devid = bind(&host, cdev, iommufd.0).unwrap();
    assert_ne!(devid, 0);
    assert_eq!(bind(&host, cdev, iommufd.0), Err(Errno::INVAL), "bound already");
    // A second file of the same device cannot bind it too.
    let again = host.open(CDEV).unwrap();
    assert_eq!(bind(&host, again, iommufd.0), Err(Errno::INVAL));
    close_all(&host, &[again]);
    // Bound but not attached: DMA is blocked.
    let port = host.device_port(cdev).unwrap();
    assert!(port.read(Iova::new(IOVA), &mut [0u8; 1]).is_err());
    let hwpt = attach(&host, cdev, ioas).unwrap();
    assert_ne!(hwpt, ioas, "an automatic HWPT over the IOAS");
    dma_round_trip(&host, cdev, &buf, 4);
    // While a device is bound through its cdev, its group cannot be opened (EBUSY).
    assert_eq!(host.open(GROUP), Err(Errno::BUSY));
    // The iommufd's file may close first: the bound device holds the context.
    close_all(&host, &[iommufd]);
    dma_round_trip(&host, cdev, &buf, 4);
    close_all(&host, &[cdev]);
    // Unbound: the group opens again.
    let group = host.open(GROUP).unwrap();
    close_all(&host, &[group]);
    assert_baseline(&host);
}

#[test]
fn an_open_group_blocks_its_devices_cdev_bind() {
    let host = host();
    let iommufd = host.open(DEV_IOMMU).unwrap();
    let group = host.open(GROUP).unwrap();
    let cdev = host.open(CDEV).unwrap();
    // vfio_device_block_group(): EBUSY, and nothing was bound.
    assert_eq!(bind(&host, cdev, iommufd.0), Err(Errno::BUSY));
    close_all(&host, &[group]);
    bind(&host, cdev, iommufd.0).unwrap();
    close_all(&host, &[cdev, iommufd]);
    assert_baseline(&host);
}

#[test]
fn devices_of_one_group_cannot_be_bound_to_two_iommufds() {
    let host = host_with(
        shared_group_topology(),
        HostOptions::default(),
        Credentials::default(),
        None,
    );
    let a = host.open(DEV_IOMMU).unwrap();
    let b = host.open(DEV_IOMMU).unwrap();
    let vfio0 = host.open("/dev/vfio/devices/vfio0").unwrap();
    let vfio1 = host.open("/dev/vfio/devices/vfio1").unwrap();
    bind(&host, vfio0, a.0).unwrap();
    // "Devices belonging to the same group can not be bound to multiple iommufd_ctx":
    // iommu_device_claim_dma_owner() with another owner is EPERM.
    assert_eq!(bind(&host, vfio1, b.0), Err(Errno::PERM));
    // The same context may bind the group's other device.
    bind(&host, vfio1, a.0).unwrap();
    close_all(&host, &[vfio0]);
    // One device still holds the group for context a.
    let other = host.open("/dev/vfio/devices/vfio0").unwrap();
    assert_eq!(bind(&host, other, b.0), Err(Errno::PERM));
    close_all(&host, &[vfio1]);
    bind(&host, other, b.0).unwrap();
    close_all(&host, &[other, a, b]);
    assert_eq!(host.iommu().owners().owned_groups(), 0);
    assert_baseline(&host);
}

#[test]
fn device_files_refuse_what_linux_refuses() {
    let host = host();
    let container = host.open(DEV_VFIO_CONTAINER).unwrap();
    let group = host.open(GROUP).unwrap();
    set_container(&host, group, container.0).unwrap();
    host.ioctl_value(container, VFIO_SET_IOMMU, u64::from(VFIO_TYPE1v2_IOMMU))
        .unwrap();
    let device = get_device_fd(&host, group, DEVICE).unwrap();
    // BIND_IOMMUFD is for cdev files only (EINVAL); ATTACH_IOMMUFD_PT is a cdev-only ioctl, so the
    // device driver sees it and does not know it (ENOTTY).
    let iommufd = host.open(DEV_IOMMU).unwrap();
    assert_eq!(bind(&host, device, iommufd.0), Err(Errno::INVAL));
    assert_eq!(attach(&host, device, 1), Err(Errno::NOTTY));
    // A bare device (no model behind it) has no region: read / write / mmap at any offset are
    // EINVAL.
    assert_eq!(host.read(device, 0, &mut [0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.write(device, 0, &[0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.mmap(device, 0, 4096).unwrap_err(), Errno::INVAL);
    // Files without read / mmap.
    assert_eq!(host.read(group, 0, &mut [0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.read(iommufd, 0, &mut [0u8; 4]), Err(Errno::INVAL));
    assert_eq!(host.mmap(group, 0, 4096).unwrap_err(), Errno::NODEV);
    assert_eq!(host.mmap(container, 0, 4096).unwrap_err(), Errno::INVAL);
    assert_eq!(host.mmap(iommufd, 0, 4096).unwrap_err(), Errno::NODEV);
    // A group's ioctl on the device file, and a device ioctl on the group: ENOTTY.
    assert_eq!(
        host.ioctl_value(device, VFIO_GROUP_UNSET_CONTAINER, 0),
        Err(Errno::NOTTY)
    );
    assert_eq!(attach(&host, group, 1), Err(Errno::NOTTY));
    close_all(&host, &[device, group, container, iommufd]);
    assert_eq!(host.read(device, 0, &mut [0u8; 4]), Err(Errno::BADF));
    assert_baseline(&host);
}

#[test]
fn group_and_cdev_ioctls_are_strict_about_their_bytes() {
    let host = host();
    let iommufd = host.open(DEV_IOMMU).unwrap();
    let group = host.open(GROUP).unwrap();
    // GET_STATUS: argsz below the struct is EINVAL; fewer bytes than argsz says is EFAULT.
    let mut st = VfioGroupStatus { argsz: 4, flags: 0 };
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_GET_STATUS, st.as_mut_bytes()),
        Err(Errno::INVAL)
    );
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_GET_STATUS, &mut [8, 0, 0]),
        Err(Errno::FAULT)
    );
    // SET_CONTAINER needs an int; GET_DEVICE_FD a NUL-terminated name.
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_SET_CONTAINER, &mut [0u8; 2]),
        Err(Errno::FAULT)
    );
    // (strndup_user: the caller's bytes end before a NUL — EFAULT; a page without one — EINVAL.)
    let unterminated = &mut DEVICE.as_bytes().to_vec();
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, unterminated),
        Err(Errno::FAULT)
    );
    let page_of_a = &mut vec![b'a'; 4096];
    assert_eq!(
        host.ioctl_buf(group, VFIO_GROUP_GET_DEVICE_FD, page_of_a),
        Err(Errno::INVAL)
    );
    // An unknown request on a group: ENOTTY.
    assert_eq!(
        host.ioctl_value(group, VFIO_GROUP_GET_STATUS + 0x40, 0),
        Err(Errno::NOTTY)
    );
    host.close(group).unwrap();
    let cdev = host.open(CDEV).unwrap();
    let mut b = VfioDeviceBindIommufd {
        argsz: size_of::<VfioDeviceBindIommufd>() as u32,
        iommufd: iommufd.0,
        ..FromZeros::new_zeroed()
    };
    // Short argsz, an unknown flag, a negative fd: EINVAL, and nothing is bound.
    for (argsz, flags, fd) in [(12, 0, iommufd.0), (24, 1 << 7, iommufd.0), (24, 0, -1)] {
        b.argsz = argsz;
        b.flags = flags;
        b.iommufd = fd;
        let r = host.ioctl_buf(cdev, VFIO_DEVICE_BIND_IOMMUFD, b.as_mut_bytes());
        assert_eq!(r, Err(Errno::INVAL), "argsz {argsz} flags {flags:#x} fd {fd}");
    }
    // A longer struct whose tail is not zero: E2BIG.
    let mut long = b.as_bytes().to_vec();
    long.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    long[..4].copy_from_slice(&32u32.to_ne_bytes());
    long[4..8].copy_from_slice(&0u32.to_ne_bytes());
    long[8..12].copy_from_slice(&iommufd.0.to_ne_bytes());
    assert_eq!(
        host.ioctl_buf(cdev, VFIO_DEVICE_BIND_IOMMUFD, &mut long),
        Err(Errno::TOOBIG)
    );
    assert_eq!(host.device_port(cdev).unwrap_err(), Errno::INVAL, "still unbound");
    // The group is not blocked by the failed binds.
    let group = host.open(GROUP).unwrap();
    close_all(&host, &[group, cdev, iommufd]);
    assert_baseline(&host);
}
