//! The group, `/dev/vfio/N`, over a real container on uvfio's iommufd context: GET_STATUS
//! viability, the SET/UNSET_CONTAINER order rules, GET_DEVICE_FD, and the legacy flow end to end.
//! Every test ends with the leak check: no object, no pin, no charge left.

mod container_support;

use container_support::{Buffer, TestUser};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE,
    VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER,
    VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VfioGroupStatus,
    VfioIommuType1DmaMap, VfioIommuType1DmaUnmap,
};
use uvfio_iommu::FaultReason;
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_iommufd::object::ObjectType;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::Iova;
use uvfio_vfio::container::{Container, ContainerConfig};
use uvfio_vfio::group::{
    ContainerFds, DeviceFile, Group, GroupContainer, GroupDevice, GroupError, GroupFile, GroupReply,
};
use uvfio_vfio::noiommu::NoIommuDevice;
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const IOVA: u64 = 0x10_0000;
const CONTAINER_FD: i32 = 3;
const OTHER_FILE_FD: i32 = 4;

struct Rig {
    mem: Arc<HostMemory>,
    accounts: Accounts,
    ctx: Arc<Iommufd>,
    container: Arc<Container<Iommufd>>,
}

impl Rig {
    fn new() -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
        let accounts = Accounts::unlimited();
        let ctx = Arc::new(Iommufd::new_legacy(
            Arc::clone(&mem),
            accounts.clone(),
            Credentials::default(),
        ));
        let container = Arc::new(Container::new(Arc::clone(&ctx), ContainerConfig::default()));
        Rig {
            mem,
            accounts,
            ctx,
            container,
        }
    }

    /// Group `id` with devices `names` (rid = 0x10 + index), none VFIO-bound.
    fn group(&self, id: u32, names: &[&str]) -> Arc<Group> {
        let group = Group::new(GroupId(id));
        for (i, name) in names.iter().enumerate() {
            let rid = 0x10 + i as u16;
            group.add_device(name, GroupDevice::Iommu { rid }).unwrap();
        }
        group
    }

    /// Device objects in the context.
    fn device_objects(&self) -> usize {
        self.ctx
            .objects()
            .snapshot()
            .into_iter()
            .filter(|&(_, ty)| ty == ObjectType::Device)
            .count()
    }

    /// Everything closed: no object, no pin, no charge.
    fn baseline(self) {
        let Rig {
            mem,
            accounts,
            ctx,
            container,
        } = self;
        drop(container);
        assert!(ctx.close().is_empty());
        assert_eq!(accounts.mm.locked_pages(), 0);
        assert_eq!(accounts.user.locked_pages(), 0);
        assert_eq!(mem.account().locked_pages, 0);
        assert_eq!(mem.stats().adopted_segments, 0);
    }
}

/// The host's fd table: fd 3 is the container, fd 4 some other file.
impl ContainerFds for Rig {
    fn container(&self, fd: i32) -> Result<Arc<dyn GroupContainer>, GroupError> {
        match fd {
            CONTAINER_FD => Ok(Arc::clone(&self.container) as Arc<dyn GroupContainer>),
            OTHER_FILE_FD => Err(GroupError::NotAContainer(fd)),
            _ => Err(GroupError::BadFd(fd)),
        }
    }
}

fn errno<T: std::fmt::Debug>(r: Result<T, GroupError>) -> Errno {
    r.unwrap_err().errno()
}

fn status(file: &GroupFile, rig: &Rig) -> u32 {
    let mut st = VfioGroupStatus {
        argsz: size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    file.ioctl(VFIO_GROUP_GET_STATUS, IoctlArg::Buffer(st.as_mut_bytes()), rig)
        .unwrap();
    st.flags
}

fn set_container(file: &GroupFile, rig: &Rig, fd: i32) -> Result<GroupReply, GroupError> {
    let mut fd = fd;
    file.ioctl(VFIO_GROUP_SET_CONTAINER, IoctlArg::Buffer(fd.as_mut_bytes()), rig)
}

fn unset_container(file: &GroupFile, rig: &Rig) -> Result<GroupReply, GroupError> {
    file.ioctl(VFIO_GROUP_UNSET_CONTAINER, IoctlArg::Value(0), rig)
}

fn get_device_fd(file: &GroupFile, rig: &Rig, name: &str) -> Result<DeviceFile, GroupError> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    match file.ioctl(VFIO_GROUP_GET_DEVICE_FD, IoctlArg::Buffer(&mut bytes), rig)? {
        GroupReply::Device(d) => Ok(d),
        GroupReply::Value(v) => panic!("GET_DEVICE_FD returned {v}"),
    }
}

fn set_iommu(rig: &Rig) -> Result<u32, Errno> {
    rig.container
        .ioctl(
            VFIO_SET_IOMMU,
            IoctlArg::Value(u64::from(VFIO_TYPE1v2_IOMMU)),
            &TestUser,
        )
        .map_err(|e| e.errno())
}

#[test]
fn a_group_with_a_device_not_bound_to_vfio_is_not_viable() {
    let rig = Rig::new();
    let group = rig.group(7, &["0000:00:07.0", "0000:00:07.1"]);
    assert_eq!(group.node_name(), "7");
    let file = group.open(false).unwrap();
    assert_eq!(status(&file, &rig), 0);
    group.set_vfio_bound("0000:00:07.0", true).unwrap();
    assert_eq!(status(&file, &rig), 0, "one device is still another driver's");
    // Not viable: SET_CONTAINER is the DMA-owner claim's EPERM, and nothing changes.
    assert_eq!(errno(set_container(&file, &rig, CONTAINER_FD)), Errno::PERM);
    assert!(rig.container.groups().is_empty());
    assert!(!group.has_container());
    group.set_vfio_bound("0000:00:07.1", true).unwrap();
    assert_eq!(status(&file, &rig), VFIO_GROUP_FLAGS_VIABLE);
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    assert_eq!(
        status(&file, &rig),
        VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE
    );
    // While VFIO owns the group's DMA no other driver can take a device: EBUSY.
    assert_eq!(errno(group.set_vfio_bound("0000:00:07.1", false)), Errno::BUSY);
    assert!(group.is_viable());
    // Unknown device names: ENODEV.
    assert_eq!(errno(group.set_vfio_bound("nope", true)), Errno::NODEV);
    // A short status struct: EINVAL (argsz < minsz).
    let mut st = VfioGroupStatus { argsz: 4, flags: 0 };
    let e = file.ioctl(VFIO_GROUP_GET_STATUS, IoctlArg::Buffer(st.as_mut_bytes()), &rig);
    assert_eq!(errno(e), Errno::INVAL);
    drop(file);
    assert!(
        rig.container.groups().is_empty(),
        "closing the group file detaches it"
    );
    drop(group);
    rig.baseline();
}

#[test]
fn set_and_unset_container_follow_group_c_order() {
    let rig = Rig::new();
    let group = rig.group(7, &["a"]);
    group.set_vfio_bound("a", true).unwrap();
    let file = group.open(false).unwrap();
    // One opener at a time.
    assert_eq!(errno(group.open(false)), Errno::BUSY);
    // UNSET without a container: EINVAL.
    assert_eq!(errno(unset_container(&file, &rig)), Errno::INVAL);
    // Bad fds: a negative one (EBADF in the decoder), an unopened one, another kind of file.
    assert_eq!(errno(set_container(&file, &rig, -1)), Errno::BADF);
    assert_eq!(errno(set_container(&file, &rig, 9)), Errno::BADF);
    assert_eq!(errno(set_container(&file, &rig, OTHER_FILE_FD)), Errno::BADFD);
    assert!(rig.container.groups().is_empty());
    // A pointer to nothing: EFAULT.
    let e = file.ioctl(VFIO_GROUP_SET_CONTAINER, IoctlArg::Buffer(&mut [0u8; 2]), &rig);
    assert_eq!(errno(e), Errno::FAULT);
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    assert_eq!(rig.container.groups(), vec![GroupId(7)]);
    // Set twice: EINVAL, nothing changes.
    assert_eq!(errno(set_container(&file, &rig, CONTAINER_FD)), Errno::INVAL);
    assert_eq!(rig.container.groups(), vec![GroupId(7)]);
    // SET_IOMMU binds the group's device to the container's context (a device object, and the
    // context owns the group's DMA) and attaches it to the compat IOAS.
    assert_eq!(rig.device_objects(), 0);
    set_iommu(&rig).unwrap();
    assert_eq!(rig.device_objects(), 1);
    assert_eq!(
        rig.ctx.iommu().owners().owner(7).map(|(o, _)| o),
        Some(rig.ctx.owner())
    );
    let dev = get_device_fd(&file, &rig, "a").unwrap().iommufd_device().unwrap();
    assert_eq!(dev.rid(), 0x10);
    assert!(dev.is_attached());
    unset_container(&file, &rig).unwrap();
    assert!(!dev.is_attached());
    assert_eq!(rig.device_objects(), 0, "unset unbinds the group's devices");
    assert!(rig.container.groups().is_empty());
    assert_eq!(
        rig.container.driver(),
        None,
        "the last group takes the driver with it"
    );
    assert_eq!(errno(unset_container(&file, &rig)), Errno::INVAL);
    assert_eq!(status(&file, &rig), VFIO_GROUP_FLAGS_VIABLE);
    // Set again after an unset: fine.
    drop(dev);
    assert_eq!(
        rig.ctx.iommu().owners().owned_groups(),
        0,
        "unset released the group"
    );
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    drop(file);
    drop(group);
    rig.baseline();
}

#[test]
fn get_device_fd_needs_a_container_with_a_driver_and_a_known_name() {
    let rig = Rig::new();
    let group = rig.group(7, &["a", "b"]);
    group.set_vfio_bound("a", true).unwrap();
    group.set_vfio_bound("b", true).unwrap();
    let file = group.open(false).unwrap();
    // Unknown name first: ENODEV, even without a container.
    assert_eq!(errno(get_device_fd(&file, &rig, "zz")), Errno::NODEV);
    // No container: EINVAL.
    assert_eq!(errno(get_device_fd(&file, &rig, "a")), Errno::INVAL);
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    // A container without an IOMMU driver: EINVAL.
    assert_eq!(errno(get_device_fd(&file, &rig, "a")), Errno::INVAL);
    assert_eq!(group.open_devices(), 0);
    set_iommu(&rig).unwrap();
    // A name without its NUL in the caller's bytes: EFAULT.
    let e = file.ioctl(
        VFIO_GROUP_GET_DEVICE_FD,
        IoctlArg::Buffer(&mut b"a".to_vec()),
        &rig,
    );
    assert_eq!(errno(e), Errno::FAULT);
    let a = get_device_fd(&file, &rig, "a").unwrap();
    let a2 = get_device_fd(&file, &rig, "a").unwrap();
    assert_eq!(a.name(), b"a");
    assert_eq!(group.open_devices(), 2);
    // UNSET while device files are open: EBUSY, nothing changes.
    assert_eq!(errno(unset_container(&file, &rig)), Errno::BUSY);
    assert_eq!(rig.container.groups(), vec![GroupId(7)]);
    drop(a);
    assert_eq!(errno(unset_container(&file, &rig)), Errno::BUSY);
    drop(a2);
    unset_container(&file, &rig).unwrap();
    // A device file keeps the group file's release back: closing the group with a device open
    // leaves the container set until the device closes.
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    set_iommu(&rig).unwrap();
    let b = get_device_fd(&file, &rig, "b").unwrap();
    drop(file);
    assert_eq!(rig.container.groups(), vec![GroupId(7)]);
    assert_eq!(errno(group.open(false)), Errno::BUSY);
    drop(b);
    assert!(rig.container.groups().is_empty());
    let again = group.open(false).unwrap();
    drop(again);
    drop(group);
    rig.baseline();
}

#[test]
fn a_noiommu_device_is_refused_and_names_are_unique() {
    let rig = Rig::new();
    let group = Group::new(GroupId(7));
    let noiommu = Arc::new(NoIommuDevice::new(Arc::clone(&rig.mem), 1));
    assert_eq!(
        errno(group.add_device("x", GroupDevice::NoIommu(noiommu))),
        Errno::INVAL
    );
    group.add_device("x", GroupDevice::Iommu { rid: 2 }).unwrap();
    assert_eq!(
        errno(group.add_device("x", GroupDevice::Iommu { rid: 3 })),
        Errno::EXIST
    );
    drop(group);
    rig.baseline();
}

#[test]
fn a_group_whose_dma_another_context_owns_cannot_join_the_container() {
    let rig = Rig::new();
    let group = rig.group(7, &["a"]);
    group.set_vfio_bound("a", true).unwrap();
    // Another context on the same IOMMU binds a device of group 7 (as a cdev bind would).
    let other = Iommufd::on_iommu(
        Arc::clone(rig.ctx.iommu()),
        rig.accounts.clone(),
        Credentials::default(),
    );
    let (_, held) = other.bind_device(GroupId(7), 0x11).unwrap();
    let file = group.open(false).unwrap();
    // iommu_group_claim_dma_owner(): EPERM, and the group stays out.
    assert_eq!(errno(set_container(&file, &rig, CONTAINER_FD)), Errno::PERM);
    assert!(rig.container.groups().is_empty());
    assert!(!group.has_container());
    drop(held);
    assert!(other.close().is_empty());
    // The other context gone, the group joins.
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    // And now the other way round: a context cannot bind a device of the container's group.
    let third = Iommufd::on_iommu(
        Arc::clone(rig.ctx.iommu()),
        rig.accounts.clone(),
        Credentials::default(),
    );
    assert_eq!(
        third.bind_device(GroupId(7), 0x10).unwrap_err().errno(),
        Errno::PERM
    );
    assert!(third.close().is_empty());
    drop(file);
    assert_eq!(rig.ctx.iommu().owners().owned_groups(), 0);
    drop(group);
    rig.baseline();
}

#[test]
fn legacy_flow_end_to_end() {
    let buf = Buffer::new(4, 0x5a);
    let rig = Rig::new();
    let group = rig.group(7, &["0000:00:07.0"]);
    group.set_vfio_bound("0000:00:07.0", true).unwrap();
    let file = group.open(false).unwrap();
    assert_eq!(status(&file, &rig), VFIO_GROUP_FLAGS_VIABLE);
    set_container(&file, &rig, CONTAINER_FD).unwrap();
    set_iommu(&rig).unwrap();
    let mut map = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.va(),
        iova: IOVA,
        size: 4 * 4096,
    };
    rig.container
        .ioctl(
            VFIO_IOMMU_MAP_DMA,
            IoctlArg::Buffer(map.as_mut_bytes()),
            &TestUser,
        )
        .unwrap();
    assert_eq!(rig.accounts.mm.locked_pages(), 4);
    let device = get_device_fd(&file, &rig, "0000:00:07.0").unwrap();
    let port = device.port().unwrap();
    let mut b = [0u8; 1];
    port.read(Iova::new(IOVA + 0x1234), &mut b).unwrap();
    assert_eq!(b[0], 0x5a);
    port.write(Iova::new(IOVA + 0x3fff), &[0xc3]).unwrap();
    assert_eq!(buf.byte(0x3fff), 0xc3);
    let mut unmap = VfioIommuType1DmaUnmap {
        argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
        iova: IOVA,
        size: 4 * 4096,
        ..FromZeros::new_zeroed()
    };
    rig.container
        .ioctl(
            VFIO_IOMMU_UNMAP_DMA,
            IoctlArg::Buffer(unmap.as_mut_bytes()),
            &TestUser,
        )
        .unwrap();
    let unmap = VfioIommuType1DmaUnmap::read_from_bytes(unmap.as_bytes()).unwrap();
    assert_eq!(unmap.size, 4 * 4096);
    // After the unmap no DMA reaches the buffer, not even through the port that translated.
    let fault = port.read(Iova::new(IOVA), &mut b).unwrap_err();
    assert_eq!(fault.reason, FaultReason::NotPresent);
    assert_eq!(rig.accounts.mm.locked_pages(), 0);
    drop(port);
    drop(device);
    unset_container(&file, &rig).unwrap();
    drop(file);
    drop(group);
    rig.baseline();
}
