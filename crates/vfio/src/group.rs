//! The group, `/dev/vfio/N` (or `/dev/vfio/noiommu-N`): Linux `drivers/vfio/group.c`.
//!
//! A [`Group`] is the host's record of one IOMMU group: its VFIO devices, each with the flag
//! "bound to a VFIO driver" the host sets. [`Group::open`] is `vfio_group_fops_open()` and gives a
//! [`GroupFile`], whose requests are Linux's:
//!
//! - `GET_STATUS`: `CONTAINER_SET | VIABLE` once a container is set, else `VIABLE` when no
//!   device of the group is claimed by a non-VFIO driver (`!iommu_group_dma_owner_claimed()`).
//! - `SET_CONTAINER`: `EINVAL` if the group has one already (`vfio_group_has_iommu()`); then the
//!   container's `vfio_container_attach_group()` (no-IOMMU without `CAP_SYS_RAWIO` → `EPERM`,
//!   real and no-IOMMU groups mixed → `EPERM`, a real group that is not viable →
//!   `iommu_group_claim_dma_owner()`'s `EPERM`, and the driver's attach).
//! - `UNSET_CONTAINER`: `EINVAL` without a container, `EBUSY` while a device file is open
//!   (`group->container_users != 1`).
//! - `GET_DEVICE_FD`: `ENODEV` for a name no VFIO device of the group has, `EINVAL` before
//!   `SET_CONTAINER` and before `VFIO_SET_IOMMU` (`vfio_group_use_container()`), `EPERM` for a
//!   no-IOMMU device without `CAP_SYS_RAWIO`; a [`DeviceFile`] the host turns into an fd. Device
//!   files keep the group file's release back, as Linux's device fds hold the group file.
//!
//! A device file of a member with a [`VfioDevice`] (given by [`Group::add_vfio_device`]) opens it
//! (`vfio_df_open()`) and serves the device side ([`crate::device`]): info, regions, IRQs, reset,
//! `read` / `write` / `mmap`. A bare member's device file serves none of it (`ENOTTY` for the
//! ioctls, `EINVAL` for region access).
//!
//! Closing the group file detaches it from its container (`vfio_group_fops_release()`).

use crate::container::{CompatContext, Container, ContainerError, ContainerGroup, GroupKind};
use crate::device::{DeviceError, DeviceOffset, DeviceOpen, RegionMap, VfioDevice};
use crate::noiommu::{NoIommuDevice, NoIommuPolicy, Taint, group_node_name};
use crate::uapi::device::{DeviceCmd, DeviceLimits, decode_device};
use crate::uapi::group::{DeviceName, GroupCmd, decode_group};
use crate::uapi::{IoctlArg, UapiError};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE};
use uvfio_iommu::DmaPort;
use uvfio_iommufd::ctx::UserMemory;
use uvfio_iommufd::device::{Device, GroupId};

/// Why a group request (or the host's group bookkeeping) failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The decoder refused the request or its argument.
    #[error("bad request")]
    Uapi(#[from] UapiError),
    /// The container refused the group (its errno: `EPERM`, `EINVAL`, the attach's).
    #[error("the container refused")]
    Container(#[source] ContainerError),
    /// `SET_CONTAINER` on a group that has one (`vfio_group_has_iommu()`: `EINVAL`).
    #[error("group {0} has a container already")]
    ContainerSet(GroupId),
    /// `UNSET_CONTAINER` or `GET_DEVICE_FD` without a container (`EINVAL`).
    #[error("group {0} has no container")]
    NoContainer(GroupId),
    /// `GET_DEVICE_FD` before `VFIO_SET_IOMMU` (`vfio_group_use_container()`:
    /// `if (!group->container->iommu_driver) return -EINVAL`).
    #[error("the container of group {0} has no IOMMU driver yet")]
    NoIommuDriver(GroupId),
    /// `UNSET_CONTAINER` while device files are open (`container_users != 1`: `EBUSY`).
    #[error("group {group}: {open} device files are open")]
    DevicesOpen {
        /// The group.
        group: GroupId,
        /// The open device files.
        open: usize,
    },
    /// A real group with a device claimed by a non-VFIO driver (`iommu_group_claim_dma_owner()`:
    /// `EPERM`).
    #[error("group {0} is not viable")]
    NotViable(GroupId),
    /// No VFIO device of this name in the group (`vfio_device_get_from_name()`: `ENODEV`).
    #[error("no VFIO device of that name in group {0}")]
    NoDevice(GroupId),
    /// No-IOMMU without `CAP_SYS_RAWIO` (`EPERM`).
    #[error("no-IOMMU needs CAP_SYS_RAWIO")]
    NoRawio,
    /// The group file is open already, or a device of the group is bound through its cdev
    /// (`vfio_group_fops_open()`, `vfio_device_block_group()`: `EBUSY`).
    #[error("group {0} is open already, or one of its devices is bound through its cdev")]
    AlreadyOpen(GroupId),
    /// A no-IOMMU group without the unsafe mode (`vfio_group_find_or_alloc()`: `EINVAL`).
    #[error("the unsafe no-IOMMU mode is off")]
    NoIommuDisabled,
    /// A device added to a group it does not belong to, or of the wrong kind (`EINVAL`).
    #[error("the device does not belong to group {0}")]
    WrongGroup(GroupId),
    /// A device name used twice in one group (`EEXIST`).
    #[error("group {0} has a device of that name already")]
    DuplicateName(GroupId),
    /// A non-VFIO driver asked for a device of a group whose DMA is owned by VFIO (a container
    /// is set): `iommu_device_use_default_domain()` answers `EBUSY`.
    #[error("group {0}'s DMA is owned by VFIO")]
    DmaOwned(GroupId),
    /// `VFIO_DEVICE_BIND_IOMMUFD` on a device file of the group path (`if (df->group) return
    /// -EINVAL;`).
    #[error("BIND_IOMMUFD is only for cdev device files")]
    NotCdev,
    /// The `SET_CONTAINER` fd names no open file (`EBADF`).
    #[error("fd {0} is not open")]
    BadFd(i32),
    /// The `SET_CONTAINER` fd is neither a container nor an iommufd ("The FD passed is not
    /// recognized": `EBADFD`).
    #[error("fd {0} is not a VFIO container")]
    NotAContainer(i32),
    /// The device side refused (its errno).
    #[error("the device")]
    Device(#[source] DeviceError),
}

impl GroupError {
    /// The errno the ioctl returns: the one place a group error becomes a number.
    pub fn errno(&self) -> Errno {
        match self {
            GroupError::Uapi(e) => e.errno(),
            GroupError::Container(e) => e.errno(),
            GroupError::Device(e) => e.errno(),
            GroupError::ContainerSet(_)
            | GroupError::NoContainer(_)
            | GroupError::NoIommuDriver(_)
            | GroupError::NoIommuDisabled
            | GroupError::NotCdev
            | GroupError::WrongGroup(_) => Errno::INVAL,
            GroupError::DevicesOpen { .. } | GroupError::AlreadyOpen(_) | GroupError::DmaOwned(_) => {
                Errno::BUSY
            }
            GroupError::NotViable(_) | GroupError::NoRawio => Errno::PERM,
            GroupError::NoDevice(_) => Errno::NODEV,
            GroupError::DuplicateName(_) => Errno::EXIST,
            GroupError::BadFd(_) => Errno::BADF,
            GroupError::NotAContainer(_) => Errno::BADFD,
        }
    }
}

/// A container as a group sees it: [`Container`] over any [`CompatContext`].
pub trait GroupContainer: Send + Sync + std::fmt::Debug {
    /// `vfio_container_attach_group()`.
    fn attach_group(&self, group: Arc<dyn ContainerGroup>) -> Result<(), ContainerError>;
    /// `vfio_group_detach_container()`.
    fn detach_group(&self, group: GroupId) -> Result<(), ContainerError>;
    /// Whether `VFIO_SET_IOMMU` has set a driver.
    fn has_driver(&self) -> bool;
    /// The device `rid` of `group` as the container bound it, if it did.
    fn bound_device(&self, group: GroupId, rid: u16) -> Option<Arc<Device>>;
}

impl<C: CompatContext + 'static> GroupContainer for Container<C> {
    fn attach_group(&self, group: Arc<dyn ContainerGroup>) -> Result<(), ContainerError> {
        Container::attach_group(self, group)
    }

    fn detach_group(&self, group: GroupId) -> Result<(), ContainerError> {
        Container::detach_group(self, group)
    }

    fn has_driver(&self) -> bool {
        self.driver().is_some()
    }

    fn bound_device(&self, group: GroupId, rid: u16) -> Option<Arc<Device>> {
        self.bound_devices(group).into_iter().find(|d| d.rid() == rid)
    }
}

/// How the host resolves the fd `VFIO_GROUP_SET_CONTAINER` names.
pub trait ContainerFds {
    /// The container `fd` is open on: [`GroupError::BadFd`] for no open file,
    /// [`GroupError::NotAContainer`] for another kind of file.
    fn container(&self, fd: i32) -> Result<Arc<dyn GroupContainer>, GroupError>;
}

/// A device of a group.
#[derive(Debug, Clone)]
pub enum GroupDevice {
    /// A device behind an IOMMU with requester id `rid`; the container binds it to its iommufd
    /// context when the group is attached to the container's IOMMU driver.
    Iommu {
        /// The requester id its DMA carries.
        rid: u16,
    },
    /// A no-IOMMU device.
    NoIommu(Arc<NoIommuDevice>),
}

#[derive(Debug)]
struct Member {
    name: Box<[u8]>,
    device: GroupDevice,
    /// The device side, when an emulated device model backs the member.
    vfio: Option<Arc<VfioDevice>>,
    vfio_bound: bool,
}

/// The group's devices, the part a container holds (no reference back to the container).
#[derive(Debug)]
struct Members {
    id: GroupId,
    kind: GroupKind,
    list: Mutex<Vec<Member>>,
}

impl ContainerGroup for Members {
    fn id(&self) -> GroupId {
        self.id
    }

    fn kind(&self) -> GroupKind {
        self.kind
    }

    fn device_rids(&self) -> Vec<u16> {
        self.list
            .lock()
            .iter()
            .filter_map(|m| match &m.device {
                GroupDevice::Iommu { rid } => Some(*rid),
                GroupDevice::NoIommu(_) => None,
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct State {
    /// `group->opened_file`.
    opened: bool,
    /// `group->container`.
    container: Option<Arc<dyn GroupContainer>>,
    /// Open device files (`group->container_users - 1`).
    open_devices: usize,
    /// Devices of the group bound through their cdev (`group->cdev_device_open_cnt`).
    cdev_open: usize,
}

/// One VFIO group (Linux `struct vfio_group`).
#[derive(Debug)]
pub struct Group {
    members: Arc<Members>,
    taint: Option<Arc<Taint>>,
    state: Mutex<State>,
}

impl Group {
    /// A group of IOMMU group `id` (`vfio_create_group(iommu_group, VFIO_IOMMU)`), no devices.
    pub fn new(id: GroupId) -> Arc<Self> {
        Arc::new(Self::with(id, GroupKind::Iommu, None))
    }

    /// A no-IOMMU group (`vfio_noiommu_group_alloc()`): `EINVAL` unless `policy` enables the
    /// unsafe mode; taints the host as Linux does.
    pub fn new_noiommu(
        id: GroupId,
        policy: NoIommuPolicy,
        taint: Arc<Taint>,
    ) -> Result<Arc<Self>, GroupError> {
        if !policy.enabled {
            return Err(GroupError::NoIommuDisabled);
        }
        taint.group_made();
        Ok(Arc::new(Self::with(id, GroupKind::NoIommu, Some(taint))))
    }

    fn with(id: GroupId, kind: GroupKind, taint: Option<Arc<Taint>>) -> Self {
        Group {
            members: Arc::new(Members {
                id,
                kind,
                list: Mutex::new(Vec::new()),
            }),
            taint,
            state: Mutex::new(State::default()),
        }
    }

    /// The group's number.
    pub fn id(&self) -> GroupId {
        self.members.id
    }

    /// Real or no-IOMMU.
    pub fn kind(&self) -> GroupKind {
        self.members.kind
    }

    /// The device node name under `/dev/vfio/`: `N` or `noiommu-N`.
    pub fn node_name(&self) -> String {
        group_node_name(self.id().0, self.kind() == GroupKind::NoIommu)
    }

    /// Adds a device named `name` (what `GET_DEVICE_FD` looks for), not yet bound to a VFIO
    /// driver. An IOMMU device needs an IOMMU group, a no-IOMMU device a no-IOMMU group.
    pub fn add_device(&self, name: &str, device: GroupDevice) -> Result<(), GroupError> {
        self.add_member(name, device, None)
    }

    /// [`Group::add_device`] with the device side: device files opened by `name` open `vfio`
    /// (which the device's cdev shares) and serve its regions, IRQs and reset.
    pub fn add_vfio_device(
        &self,
        name: &str,
        device: GroupDevice,
        vfio: Arc<VfioDevice>,
    ) -> Result<(), GroupError> {
        self.add_member(name, device, Some(vfio))
    }

    fn add_member(
        &self,
        name: &str,
        device: GroupDevice,
        vfio: Option<Arc<VfioDevice>>,
    ) -> Result<(), GroupError> {
        let id = self.id();
        let fits = match &device {
            GroupDevice::Iommu { .. } => self.kind() == GroupKind::Iommu,
            GroupDevice::NoIommu(_) => self.kind() == GroupKind::NoIommu,
        };
        if !fits {
            return Err(GroupError::WrongGroup(id));
        }
        let mut list = self.members.list.lock();
        if list.iter().any(|m| *m.name == *name.as_bytes()) {
            return Err(GroupError::DuplicateName(id));
        }
        list.push(Member {
            name: name.as_bytes().into(),
            device,
            vfio,
            vfio_bound: false,
        });
        Ok(())
    }

    /// The host binds the device `name` to a VFIO driver (`true`) or to another driver
    /// (`false`). A non-VFIO driver cannot take a device while VFIO owns the group's DMA
    /// (`EBUSY`).
    pub fn set_vfio_bound(&self, name: &str, bound: bool) -> Result<(), GroupError> {
        let id = self.id();
        let state = self.state.lock();
        let mut list = self.members.list.lock();
        let member = list
            .iter_mut()
            .find(|m| *m.name == *name.as_bytes())
            .ok_or(GroupError::NoDevice(id))?;
        if !bound && (state.container.is_some() || state.cdev_open > 0) {
            return Err(GroupError::DmaOwned(id));
        }
        member.vfio_bound = bound;
        Ok(())
    }

    /// Whether no device is claimed by a non-VFIO driver.
    pub fn is_viable(&self) -> bool {
        self.members.list.lock().iter().all(|m| m.vfio_bound)
    }

    /// The device `rid` of the group as its container bound it (its DMA goes through that
    /// device's domain), if the group has a container that bound it.
    pub fn bound_device(&self, rid: u16) -> Option<Arc<Device>> {
        let container = self.state.lock().container.clone()?;
        container.bound_device(self.id(), rid)
    }

    /// Whether a container is set.
    pub fn has_container(&self) -> bool {
        self.state.lock().container.is_some()
    }

    /// Open device files.
    pub fn open_devices(&self) -> usize {
        self.state.lock().open_devices
    }

    /// `vfio_device_block_group()`: a device of the group is being bound through its cdev, which
    /// the group file being open forbids (`if (group->opened_file) { ret = -EBUSY; ...`). Undone
    /// by [`Group::unblock`].
    pub fn block(&self) -> Result<(), GroupError> {
        let mut state = self.state.lock();
        if state.opened {
            return Err(GroupError::AlreadyOpen(self.id()));
        }
        state.cdev_open += 1;
        Ok(())
    }

    /// `vfio_device_unblock_group()`.
    pub fn unblock(&self) {
        let mut state = self.state.lock();
        debug_assert!(state.cdev_open > 0);
        state.cdev_open = state.cdev_open.saturating_sub(1);
    }

    /// Devices of the group bound through their cdev.
    pub fn cdev_bound(&self) -> usize {
        self.state.lock().cdev_open
    }

    /// `vfio_group_fops_open()`: one opener at a time, and not while a device of the group is
    /// bound through its cdev (`EBUSY` both); a no-IOMMU group needs `CAP_SYS_RAWIO` (`EPERM`).
    pub fn open(self: &Arc<Self>, sys_rawio: bool) -> Result<GroupFile, GroupError> {
        let mut state = self.state.lock();
        // if (group->opened_file) { ret = -EBUSY; ...
        // if (group->cdev_device_open_cnt) { ret = -EBUSY; ...
        if state.opened || state.cdev_open > 0 {
            return Err(GroupError::AlreadyOpen(self.id()));
        }
        if self.kind() == GroupKind::NoIommu && !sys_rawio {
            return Err(GroupError::NoRawio);
        }
        state.opened = true;
        Ok(GroupFile {
            open: Arc::new(OpenGroup {
                group: Arc::clone(self),
                sys_rawio,
            }),
        })
    }
}

/// The open group file; released when it and every device file opened through it are gone.
#[derive(Debug)]
struct OpenGroup {
    group: Arc<Group>,
    sys_rawio: bool,
}

impl Drop for OpenGroup {
    /// `vfio_group_fops_release()`: "Device FDs hold a group file reference, therefore the group
    /// release is only called when there are no open devices"; the container is detached.
    fn drop(&mut self) {
        let mut state = self.group.state.lock();
        if let Some(container) = state.container.take() {
            // The container holds this group (it was attached by SET_CONTAINER): detaching
            // cannot find it missing.
            let detached = container.detach_group(self.group.id());
            debug_assert!(detached.is_ok());
        }
        state.opened = false;
    }
}

/// What a group ioctl returns.
#[derive(Debug)]
pub enum GroupReply {
    /// The ioctl's return value (0 for every request but `GET_DEVICE_FD`).
    Value(u32),
    /// `GET_DEVICE_FD`'s new device file.
    Device(DeviceFile),
}

/// An open `/dev/vfio/N`.
#[derive(Debug)]
pub struct GroupFile {
    open: Arc<OpenGroup>,
}

impl GroupFile {
    /// The group.
    pub fn group(&self) -> &Arc<Group> {
        &self.open.group
    }

    /// `ioctl(group_fd, request, arg)`: decodes (`ENOTTY`, `EFAULT`, `EINVAL`, `EBADF`), runs the
    /// handler, writes `GET_STATUS`'s reply into `arg`.
    pub fn ioctl(
        &self,
        request: u32,
        mut arg: IoctlArg<'_>,
        fds: &dyn ContainerFds,
    ) -> Result<GroupReply, GroupError> {
        match decode_group(request, &arg)? {
            GroupCmd::GetStatus(cmd) => {
                // (The group never loses its IOMMU group here: no ENODEV.)
                let flags = self.status();
                cmd.encode_reply(flags, arg.bytes_mut("group_get_status")?)?;
                Ok(GroupReply::Value(0))
            }
            GroupCmd::SetContainer { fd } => {
                let container = fds.container(fd)?;
                self.set_container(container).map(|()| GroupReply::Value(0))
            }
            GroupCmd::UnsetContainer => self.unset_container().map(|()| GroupReply::Value(0)),
            GroupCmd::GetDeviceFd(name) => self.get_device_fd(&name).map(GroupReply::Device),
        }
    }

    /// `VFIO_GROUP_GET_STATUS`'s flags.
    pub fn status(&self) -> u32 {
        let group = &self.open.group;
        let state = group.state.lock();
        if state.container.is_some() {
            VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE
        } else if group.is_viable() {
            VFIO_GROUP_FLAGS_VIABLE
        } else {
            0
        }
    }

    /// `VFIO_GROUP_SET_CONTAINER` (`vfio_group_ioctl_set_container()` +
    /// `vfio_container_attach_group()`).
    pub fn set_container(&self, container: Arc<dyn GroupContainer>) -> Result<(), GroupError> {
        let group = &self.open.group;
        let id = group.id();
        let mut state = group.state.lock();
        // if (vfio_group_has_iommu(group)) { ret = -EINVAL; goto out_unlock; }
        if state.container.is_some() {
            return Err(GroupError::ContainerSet(id));
        }
        // vfio_container_attach_group(): the CAP_SYS_RAWIO and mixing checks are the
        // container's; iommu_group_claim_dma_owner() comes after them and before the driver's
        // attach, for real groups only. The claim is checked first here: each failure is EPERM
        // and none changes anything, so only which EPERM is reported can differ.
        if group.kind() == GroupKind::Iommu && !group.is_viable() {
            return Err(GroupError::NotViable(id));
        }
        let members: Arc<dyn ContainerGroup> = Arc::clone(&group.members) as Arc<dyn ContainerGroup>;
        container.attach_group(members).map_err(GroupError::Container)?;
        state.container = Some(container);
        Ok(())
    }

    /// `VFIO_GROUP_UNSET_CONTAINER` (`vfio_group_ioctl_unset_container()`).
    pub fn unset_container(&self) -> Result<(), GroupError> {
        let group = &self.open.group;
        let id = group.id();
        let mut state = group.state.lock();
        // if (!vfio_group_has_iommu(group)) { ret = -EINVAL; goto out_unlock; }
        let Some(container) = state.container.as_ref() else {
            return Err(GroupError::NoContainer(id));
        };
        // if (group->container_users != 1) { ret = -EBUSY; goto out_unlock; }
        if state.open_devices != 0 {
            return Err(GroupError::DevicesOpen {
                group: id,
                open: state.open_devices,
            });
        }
        container.detach_group(id).map_err(GroupError::Container)?;
        state.container = None;
        Ok(())
    }

    /// `VFIO_GROUP_GET_DEVICE_FD` (`vfio_group_ioctl_get_device_fd()`).
    pub fn get_device_fd(&self, name: &DeviceName) -> Result<DeviceFile, GroupError> {
        let group = &self.open.group;
        let id = group.id();
        let mut state = group.state.lock();
        // device = vfio_device_get_from_name(group, buf); -ENODEV. Only devices bound to a VFIO
        // driver are VFIO devices of the group.
        let (device, vfio) = group
            .members
            .list
            .lock()
            .iter()
            .find(|m| m.vfio_bound && *m.name == *name.as_bytes())
            .map(|m| (m.device.clone(), m.vfio.clone()))
            .ok_or(GroupError::NoDevice(id))?;
        // vfio_df_group_open(): if (!vfio_group_has_iommu(device->group)) { ret = -EINVAL; ...
        let container = state.container.clone().ok_or(GroupError::NoContainer(id))?;
        // vfio_group_use_container(): if (!group->container->iommu_driver) return -EINVAL;
        if !container.has_driver() {
            return Err(GroupError::NoIommuDriver(id));
        }
        // if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO)) return -EPERM;
        if group.kind() == GroupKind::NoIommu {
            if !self.open.sys_rawio {
                return Err(GroupError::NoRawio);
            }
            // dev_warn(device->dev, "vfio-noiommu device opened by user (%s:%d)\n", ...);
            if let Some(taint) = &group.taint {
                taint.device_opened();
            }
        }
        // group->container_users++;
        state.open_devices += 1;
        // vfio_df_open(df): device->open_count++, the first open calling the driver's
        // open_device.
        let vfio = vfio.map(|d| d.open());
        Ok(DeviceFile {
            open: Arc::clone(&self.open),
            container,
            device,
            vfio,
            name: name.as_bytes().into(),
        })
    }
}

/// A device fd from `GET_DEVICE_FD`; closing it is dropping it.
#[derive(Debug)]
pub struct DeviceFile {
    open: Arc<OpenGroup>,
    /// The group's container, which cannot change while a device file is open.
    container: Arc<dyn GroupContainer>,
    device: GroupDevice,
    /// The device side, open while the file is.
    vfio: Option<DeviceOpen>,
    name: Box<[u8]>,
}

impl DeviceFile {
    /// The device.
    pub fn device(&self) -> &GroupDevice {
        &self.device
    }

    /// The name it was opened by.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The device side, if an emulated device model backs the device.
    pub fn vfio_device(&self) -> Option<&Arc<VfioDevice>> {
        self.vfio.as_ref().map(DeviceOpen::device)
    }

    /// The device as the container bound it to its iommufd context (`None` for no-IOMMU).
    pub fn iommufd_device(&self) -> Option<Arc<Device>> {
        match &self.device {
            GroupDevice::Iommu { rid } => self.container.bound_device(self.open.group.id(), *rid),
            GroupDevice::NoIommu(_) => None,
        }
    }

    /// A DMA port of the device: through its group's domain, or untranslated for no-IOMMU.
    /// (`None` only if the container did not bind the device, which an open device file rules
    /// out.)
    pub fn port(&self) -> Option<DmaPort> {
        match &self.device {
            GroupDevice::Iommu { .. } => self.iommufd_device().map(|d| d.port().0),
            GroupDevice::NoIommu(d) => Some(d.port()),
        }
    }
}

impl DeviceFile {
    /// `ioctl(device_fd, request, arg)` on a device file from `GET_DEVICE_FD`
    /// (`vfio_device_fops_unl_ioctl()` with `df->group` set): `BIND_IOMMUFD` is decoded and then
    /// refused ("BIND_IOMMUFD only allowed for cdev fds": `EINVAL`); `ATTACH_IOMMUFD_PT` and
    /// `DETACH_IOMMUFD_PT` are cdev-only ioctls, so they reach the device driver, which does not
    /// know them (`ENOTTY`). The device side (`GET_INFO`, regions, IRQs, reset) is the
    /// [`VfioDevice`]'s, decoded with its limits; eventfds are the caller's, reached through
    /// `user`. A bare device serves none of it (`ENOTTY`).
    pub fn ioctl(&self, request: u32, arg: IoctlArg<'_>, user: &dyn UserMemory) -> Result<u32, GroupError> {
        let vfio = self.vfio_device();
        let limits: &dyn DeviceLimits = match vfio {
            Some(d) => d.as_ref(),
            None => &crate::cdev::Limits,
        };
        match decode_device(request, &arg, limits)? {
            DeviceCmd::BindIommufd(_) => Err(GroupError::NotCdev),
            DeviceCmd::AttachIommufdPt(_) | DeviceCmd::DetachIommufdPt(_) => {
                Err(UapiError::UnknownRequest { request }.into())
            }
            cmd => match vfio {
                Some(d) => d.ioctl(cmd, arg, user).map_err(GroupError::Device),
                None => Err(UapiError::UnknownRequest { request }.into()),
            },
        }
    }

    /// `pread(device_fd, buf, offset)` (`vfio_device_fops_read()` → the driver's `read`; a bare
    /// device has no regions: `EINVAL`).
    pub fn read(&self, offset: DeviceOffset, buf: &mut [u8]) -> Result<usize, GroupError> {
        self.served("read")?
            .region_read(offset, buf)
            .map_err(GroupError::Device)
    }

    /// `pwrite(device_fd, data, offset)` (`vfio_device_fops_write()`).
    pub fn write(&self, offset: DeviceOffset, data: &[u8]) -> Result<usize, GroupError> {
        self.served("write")?
            .region_write(offset, data)
            .map_err(GroupError::Device)
    }

    /// `mmap(device_fd, offset, len)` (`vfio_device_fops_mmap()`): the file to map.
    pub fn mmap(&self, offset: DeviceOffset, len: u64) -> Result<RegionMap, GroupError> {
        self.served("mmap")?
            .region_mmap(offset, len)
            .map_err(GroupError::Device)
    }

    /// The device side, or `EINVAL` for a bare device.
    fn served(&self, op: &'static str) -> Result<&Arc<VfioDevice>, GroupError> {
        self.vfio_device()
            .ok_or(GroupError::Device(DeviceError::Bare { op }))
    }
}

impl Drop for DeviceFile {
    /// `vfio_device_fops_release()` → `vfio_df_group_close()`: `vfio_df_close()` (the last close
    /// of the device disables its IRQs and resets it), then `vfio_device_group_unuse_iommu()`:
    /// `group->container_users--`.
    fn drop(&mut self) {
        drop(self.vfio.take());
        let mut state = self.open.group.state.lock();
        state.open_devices = state.open_devices.saturating_sub(1);
    }
}
