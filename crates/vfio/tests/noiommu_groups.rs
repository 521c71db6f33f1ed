//! The unsafe no-IOMMU mode: refused without the host's opt-in and without CAP_SYS_RAWIO, the
//! taint, `noiommu-N` names, the container taking only the no-IOMMU type, and device DMA going
//! untranslated to host physical addresses.

mod container_support;

use container_support::TestUser;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_IOMMU_MAP_DMA, VFIO_NOIOMMU_IOMMU,
    VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU,
};
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::{Iova, PageSize};
use uvfio_vfio::container::{Container, ContainerConfig};
use uvfio_vfio::group::{
    ContainerFds, DeviceFile, Group, GroupContainer, GroupDevice, GroupError, GroupFile, GroupReply,
};
use uvfio_vfio::noiommu::{NoIommuDevice, NoIommuPolicy, Taint};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::IntoBytes;

struct Rig {
    mem: Arc<HostMemory>,
    ctx: Arc<Iommufd>,
    container: Arc<Container<Iommufd>>,
    taint: Arc<Taint>,
}

impl ContainerFds for Rig {
    fn container(&self, fd: i32) -> Result<Arc<dyn GroupContainer>, GroupError> {
        match fd {
            3 => Ok(Arc::clone(&self.container) as Arc<dyn GroupContainer>),
            _ => Err(GroupError::BadFd(fd)),
        }
    }
}

impl Rig {
    fn new(noiommu_enabled: bool, sys_rawio: bool) -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
        let accounts = Accounts::unlimited();
        let ctx = Arc::new(Iommufd::new_legacy(
            Arc::clone(&mem),
            accounts,
            Credentials::default(),
        ));
        let container = Arc::new(Container::new(
            Arc::clone(&ctx),
            ContainerConfig {
                noiommu_enabled,
                sys_rawio,
                ..ContainerConfig::default()
            },
        ));
        Rig {
            mem,
            ctx,
            container,
            taint: Arc::new(Taint::new()),
        }
    }

    fn noiommu_group(&self, id: u32) -> Arc<Group> {
        let group = Group::new_noiommu(
            GroupId(id),
            NoIommuPolicy { enabled: true },
            Arc::clone(&self.taint),
        )
        .unwrap();
        let dev = Arc::new(NoIommuDevice::new(Arc::clone(&self.mem), 0x20));
        group
            .add_device("0000:00:04.0", GroupDevice::NoIommu(dev))
            .unwrap();
        group.set_vfio_bound("0000:00:04.0", true).unwrap();
        group
    }

    fn baseline(self) {
        drop(self.container);
        assert!(self.ctx.close().is_empty());
        assert_eq!(self.mem.account().locked_pages, 0);
        assert_eq!(self.mem.stats().adopted_segments, 0);
    }
}

fn set_container(file: &GroupFile, rig: &Rig) -> Result<GroupReply, GroupError> {
    let mut fd = 3i32;
    file.ioctl(VFIO_GROUP_SET_CONTAINER, IoctlArg::Buffer(fd.as_mut_bytes()), rig)
}

fn get_device_fd(file: &GroupFile, rig: &Rig) -> Result<DeviceFile, GroupError> {
    let mut name = b"0000:00:04.0\0".to_vec();
    match file.ioctl(VFIO_GROUP_GET_DEVICE_FD, IoctlArg::Buffer(&mut name), rig)? {
        GroupReply::Device(d) => Ok(d),
        GroupReply::Value(_) => unreachable!(),
    }
}

fn set_iommu(rig: &Rig, ty: u32) -> Result<u32, Errno> {
    rig.container
        .ioctl(VFIO_SET_IOMMU, IoctlArg::Value(u64::from(ty)), &TestUser)
        .map_err(|e| e.errno())
}

#[test]
fn no_noiommu_group_without_the_opt_in() {
    let taint = Arc::new(Taint::new());
    let e = Group::new_noiommu(GroupId(0), NoIommuPolicy::default(), Arc::clone(&taint));
    assert_eq!(e.unwrap_err().errno(), Errno::INVAL);
    assert!(!taint.is_tainted());
    assert_eq!(taint.noiommu_groups(), 0);
}

#[test]
fn a_noiommu_group_is_named_noiommu_n_and_taints() {
    let rig = Rig::new(true, true);
    assert!(!rig.taint.is_tainted());
    let group = rig.noiommu_group(0);
    assert_eq!(group.node_name(), "noiommu-0");
    assert!(rig.taint.is_tainted());
    assert_eq!(rig.taint.noiommu_groups(), 1);
    assert_eq!(Group::new(GroupId(0)).node_name(), "0");
    drop(group);
    rig.baseline();
}

#[test]
fn without_cap_sys_rawio_every_use_is_eperm() {
    // The group file itself.
    let rig = Rig::new(true, false);
    let group = rig.noiommu_group(1);
    assert_eq!(group.open(false).unwrap_err().errno(), Errno::PERM);
    // An opener with the capability, but a container opened without it: SET_CONTAINER is EPERM.
    let file = group.open(true).unwrap();
    assert_eq!(set_container(&file, &rig).unwrap_err().errno(), Errno::PERM);
    assert!(rig.container.groups().is_empty());
    assert!(!group.has_container());
    drop(file);
    drop(group);
    rig.baseline();
}

#[test]
fn real_and_noiommu_groups_do_not_mix_and_the_container_takes_only_noiommu() {
    let rig = Rig::new(true, true);
    let group = rig.noiommu_group(1);
    let file = group.open(true).unwrap();
    set_container(&file, &rig).unwrap();
    // A real group joining a no-IOMMU container: EPERM.
    let real = Group::new(GroupId(9));
    real.add_device("r", GroupDevice::Iommu { rid: 1 }).unwrap();
    real.set_vfio_bound("r", true).unwrap();
    let real_file = real.open(false).unwrap();
    assert_eq!(set_container(&real_file, &rig).unwrap_err().errno(), Errno::PERM);
    assert_eq!(rig.container.groups(), vec![GroupId(1)]);
    // Only the no-IOMMU type: TYPE1v2 has no driver allowed (ENODEV).
    assert_eq!(set_iommu(&rig, VFIO_TYPE1v2_IOMMU), Err(Errno::NODEV));
    // GET_DEVICE_FD before SET_IOMMU: EINVAL.
    assert_eq!(get_device_fd(&file, &rig).unwrap_err().errno(), Errno::INVAL);
    set_iommu(&rig, VFIO_NOIOMMU_IOMMU).unwrap();
    // No map ioctls: ENOTTY.
    let e = rig
        .container
        .ioctl(VFIO_IOMMU_MAP_DMA, IoctlArg::Buffer(&mut [0u8; 32]), &TestUser);
    assert_eq!(e.unwrap_err().errno(), Errno::NOTTY);
    drop((real_file, real));
    drop(file);
    drop(group);
    rig.baseline();
}

#[test]
fn a_noiommu_device_dmas_to_host_physical_addresses() {
    let rig = Rig::new(true, true);
    let group = rig.noiommu_group(2);
    let file = group.open(true).unwrap();
    set_container(&file, &rig).unwrap();
    set_iommu(&rig, VFIO_NOIOMMU_IOMMU).unwrap();
    assert_eq!(rig.taint.noiommu_opens(), 0);
    let device = get_device_fd(&file, &rig).unwrap();
    assert_eq!(rig.taint.noiommu_opens(), 1);
    // A host frame: the device reaches it at IOVA = HPA, nothing translates.
    let hpa = rig.mem.alloc(PageSize::Size4K).unwrap();
    let port = device.port().unwrap();
    port.write(Iova::new(hpa.raw() + 8), &[1, 2, 3]).unwrap();
    let mut back = [0u8; 3];
    rig.mem.read(hpa.checked_add(8).unwrap(), &mut back).unwrap();
    assert_eq!(back, [1, 2, 3]);
    rig.mem.free(hpa).unwrap();
    drop(port);
    drop(device);
    drop(file);
    assert!(rig.container.groups().is_empty());
    drop(group);
    rig.baseline();
}
