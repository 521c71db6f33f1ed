//! The cdev path, `/dev/vfio/devices/vfioX` (Linux `drivers/vfio/device_cdev.c`,
//! `drivers/vfio/iommufd.c` and the routing of `vfio_device_fops_unl_ioctl()`).
//!
//! A [`CdevDevice`] is the host's record of one device (its IOMMU group and requester id);
//! [`CdevDevice::open`] gives a [`CdevFile`] (`vfio_device_fops_cdev_open()`), which must be
//! bound before anything else: every request but `BIND_IOMMUFD` is `EINVAL` until then
//! (`if (!smp_load_acquire(&df->access_granted)) return -EINVAL;`).
//!
//! - `BIND_IOMMUFD`: `EINVAL` if this file is bound (`if (df->access_granted)`), the VF-token flag
//!   `EINVAL` (no device here has `match_token_uuid`), then the iommufd (`EBADF` / `EBADFD` from
//!   the host's fd lookup), then `vfio_df_open()`: a device can be opened by one cdev file at a
//!   time (`if (device->open_count != 0 && !df->group) return -EINVAL;`), and
//!   `iommufd_device_bind()` makes the device object whose id is `out_devid`. A fault writing
//!   `out_devid` undoes the bind (`EFAULT`).
//! - `ATTACH_IOMMUFD_PT`: `pt_id` names an IOAS (an automatic HWPT) or a paging HWPT;
//!   `vfio_iommufd_physical_attach_ioas()` replaces when the device is attached already; the
//!   HWPT's id is written back, and a fault writing it detaches again (`goto out_detach`).
//! - `DETACH_IOMMUFD_PT`: always 0; the device goes back to blocked DMA.
//!
//! Once bound, the device side ([`crate::device`], when the device has a [`VfioDevice`]) is served
//! as through a device file of the group path: info, regions, IRQs, reset, `read` / `write` /
//! `mmap`; the bind opens the device (`vfio_df_open()`), sharing its IRQ state with the group path.
//!
//! Closing the file unbinds (`vfio_df_unbind_iommufd()`: `vfio_df_close()`, the last close
//! disabling the device's IRQs and resetting it, then `iommufd_device_unbind()`): the device is
//! detached and its object destroyed.

use crate::container::GroupKind;
use crate::device::{DeviceError, DeviceOffset, DeviceOpen, RegionMap, VfioDevice};
use crate::group::{Group, GroupError};
use crate::uapi::cdev::{AttachIommufdPt, BindIommufd};
use crate::uapi::device::{DeviceCmd, DeviceLimits, DeviceRequest, decode_device, device_command};
use crate::uapi::{IoctlArg, UapiError};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::sync::{Arc, Weak};
use uvfio_iommufd::ctx::{Iommufd, IommufdError, UserMemory};
use uvfio_iommufd::device::{AttachTarget, Device, DeviceError as IommufdDeviceError, GroupId};
use uvfio_iommufd::object::ObjectId;

/// Why a cdev request failed.
#[derive(Debug, thiserror::Error)]
pub enum CdevError {
    /// The decoder refused the request or its argument.
    #[error("bad request")]
    Uapi(#[from] UapiError),
    /// A request other than `BIND_IOMMUFD` before the bind (`EINVAL`).
    #[error("request {request:#x} before VFIO_DEVICE_BIND_IOMMUFD")]
    NotBound {
        /// The request number.
        request: u32,
    },
    /// `BIND_IOMMUFD` on a bound file (`EINVAL`).
    #[error("the device file is bound already")]
    AlreadyBound,
    /// The device is open through another cdev file (`vfio_df_open()`: `EINVAL`).
    #[error("the device is open through another file")]
    OpenElsewhere,
    /// `VFIO_DEVICE_BIND_FLAG_TOKEN` for a device without a VF token (`EINVAL`).
    #[error("the device takes no VF token")]
    NoToken,
    /// The iommufd fd names no open file (`EBADF`).
    #[error("fd {0} is not open")]
    BadFd(i32),
    /// The iommufd fd is not an iommufd (`iommufd_ctx_from_fd()`: `EBADFD`).
    #[error("fd {0} is not an iommufd")]
    NotAnIommufd(i32),
    /// The device's group file is open (`vfio_device_block_group()`: `EBUSY`) or a kernel driver
    /// has a device of the group (`iommu_device_claim_dma_owner()`: `EPERM`).
    #[error("the device's group")]
    Group(#[source] GroupError),
    /// Binding in the iommufd context failed.
    #[error("binding")]
    Bind(#[source] IommufdError),
    /// The attach or replace failed (`ENOENT`, `EINVAL`, `EBUSY`, ...).
    #[error("attaching")]
    Attach(#[source] IommufdDeviceError),
    /// `read`, `write` or `mmap` before the bind (`vfio_device_fops_read()` and the others:
    /// `if (!smp_load_acquire(&df->access_granted)) return -EINVAL;`).
    #[error("{op} before VFIO_DEVICE_BIND_IOMMUFD")]
    NoAccess {
        /// `read`, `write` or `mmap`.
        op: &'static str,
    },
    /// The device side refused (its errno).
    #[error("the device")]
    Device(#[source] DeviceError),
}

impl CdevError {
    /// The errno the ioctl returns: the one place a cdev error becomes a number.
    pub fn errno(&self) -> Errno {
        match self {
            CdevError::Uapi(e) => e.errno(),
            CdevError::NotBound { .. }
            | CdevError::NoAccess { .. }
            | CdevError::AlreadyBound
            | CdevError::OpenElsewhere
            | CdevError::NoToken => Errno::INVAL,
            CdevError::BadFd(_) => Errno::BADF,
            CdevError::NotAnIommufd(_) => Errno::BADFD,
            CdevError::Group(e) => e.errno(),
            CdevError::Bind(e) => e.errno(),
            CdevError::Attach(e) => e.errno(),
            CdevError::Device(e) => e.errno(),
        }
    }
}

/// An iommufd context as a bound device file holds it: Linux's `df->iommufd` is a reference on
/// the context (`iommufd_ctx_get()`), so the context outlives the file that opened it for as long
/// as a device stays bound. `hold` is whatever keeps the host's context open.
#[derive(Debug, Clone)]
pub struct IommufdRef {
    /// The context.
    pub ctx: Arc<Iommufd>,
    /// Keeps the context from being closed while held.
    pub hold: Arc<dyn std::fmt::Debug + Send + Sync>,
}

/// How the host resolves the fd `BIND_IOMMUFD` names.
pub trait IommufdFds {
    /// The iommufd context `fd` is open on: [`CdevError::BadFd`] or [`CdevError::NotAnIommufd`].
    fn iommufd(&self, fd: i32) -> Result<IommufdRef, CdevError>;
}

/// A device as the cdev path knows it (Linux `struct vfio_device` with its cdev).
#[derive(Debug)]
pub struct CdevDevice {
    name: String,
    group: GroupId,
    rid: u16,
    /// The device's VFIO group, when the host has one: binding blocks the group file
    /// (`vfio_device_block_group()`) and needs the group free of kernel drivers.
    vfio_group: Option<Arc<Group>>,
    /// The device side, when an emulated device model backs the device (shared with its group
    /// member).
    vfio: Option<Arc<VfioDevice>>,
    /// `device->open_count` of cdev files.
    opened: Mutex<bool>,
    /// `vdev->iommufd_device` while a cdev file has the device bound.
    iommufd_device: Mutex<Weak<Device>>,
}

impl CdevDevice {
    /// The device `vfioX` named `name`, requester id `rid` in IOMMU group `group`.
    pub fn new(name: &str, group: GroupId, rid: u16) -> Arc<Self> {
        Arc::new(CdevDevice {
            name: name.to_owned(),
            group,
            rid,
            vfio_group: None,
            vfio: None,
            opened: Mutex::new(false),
            iommufd_device: Mutex::new(Weak::new()),
        })
    }

    /// The device `vfioX` named `name`, requester id `rid`, a device of the VFIO group `group`
    /// (whose group file its binding blocks). Linux gives no-IOMMU devices no cdev ("cdev does
    /// not support noiommu device", `vfio_device_add()`), so `group` must be a real IOMMU group
    /// (`EINVAL` otherwise).
    pub fn in_group(name: &str, group: &Arc<Group>, rid: u16) -> Result<Arc<Self>, GroupError> {
        Self::in_group_with(name, group, rid, None)
    }

    /// [`CdevDevice::in_group`] with the device side: binding opens `vfio`, the same
    /// [`VfioDevice`] the group member has, and the bound file serves its regions, IRQs and reset.
    pub fn in_group_with_device(
        name: &str,
        group: &Arc<Group>,
        rid: u16,
        vfio: Arc<VfioDevice>,
    ) -> Result<Arc<Self>, GroupError> {
        Self::in_group_with(name, group, rid, Some(vfio))
    }

    fn in_group_with(
        name: &str,
        group: &Arc<Group>,
        rid: u16,
        vfio: Option<Arc<VfioDevice>>,
    ) -> Result<Arc<Self>, GroupError> {
        if group.kind() != GroupKind::Iommu {
            return Err(GroupError::WrongGroup(group.id()));
        }
        Ok(Arc::new(CdevDevice {
            name: name.to_owned(),
            group: group.id(),
            rid,
            vfio_group: Some(Arc::clone(group)),
            vfio,
            opened: Mutex::new(false),
            iommufd_device: Mutex::new(Weak::new()),
        }))
    }

    /// The device node's name (`vfioX`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The iommufd device a cdev file has bound (`vdev->iommufd_device`): its DMA goes through
    /// that device's domain.
    pub fn bound_device(&self) -> Option<Arc<Device>> {
        self.iommufd_device.lock().upgrade()
    }

    /// Whether a cdev file has it bound.
    pub fn is_open(&self) -> bool {
        *self.opened.lock()
    }

    /// The device side, if an emulated device model backs the device.
    pub fn vfio_device(&self) -> Option<&Arc<VfioDevice>> {
        self.vfio.as_ref()
    }

    /// `vfio_device_fops_cdev_open()`: an unbound file.
    pub fn open(self: &Arc<Self>) -> CdevFile {
        CdevFile {
            device: Arc::clone(self),
            bound: Mutex::new(None),
        }
    }
}

#[derive(Debug)]
struct Bound {
    ctx: Arc<Iommufd>,
    devid: ObjectId,
    device: Arc<Device>,
    /// The device side, open while bound (`vfio_df_open()`).
    open: Option<DeviceOpen>,
    /// Keeps the context open while the device is bound.
    _hold: Arc<dyn std::fmt::Debug + Send + Sync>,
}

/// An open `/dev/vfio/devices/vfioX`.
#[derive(Debug)]
pub struct CdevFile {
    device: Arc<CdevDevice>,
    bound: Mutex<Option<Bound>>,
}

/// The limits of a bare device (no device model behind it): no PASID support, no IRQs.
pub(crate) struct Limits;

impl DeviceLimits for Limits {
    fn num_irq_indexes(&self) -> u32 {
        0
    }
    fn irq_count(&self, _index: u32) -> u32 {
        0
    }
    fn pasid_capable(&self) -> bool {
        false
    }
}

impl CdevFile {
    /// The bound iommufd device, if bound.
    pub fn iommufd_device(&self) -> Option<Arc<Device>> {
        self.bound.lock().as_ref().map(|b| Arc::clone(&b.device))
    }

    /// The device object's id (`out_devid`), if bound.
    pub fn devid(&self) -> Option<ObjectId> {
        self.bound.lock().as_ref().map(|b| b.devid)
    }

    /// `ioctl(cdev_fd, request, arg)`: returns the ioctl's value (0) and writes replies into
    /// `arg`. `fds` resolves `BIND_IOMMUFD`'s iommufd, `user` the eventfds of `SET_IRQS`. Once
    /// bound, the device side is the [`VfioDevice`]'s (a bare device's driver answers `ENOTTY`).
    pub fn ioctl(
        &self,
        request: u32,
        mut arg: IoctlArg<'_>,
        fds: &dyn IommufdFds,
        user: &dyn UserMemory,
    ) -> Result<u32, CdevError> {
        // if (cmd == VFIO_DEVICE_BIND_IOMMUFD) return vfio_df_ioctl_bind_iommufd(df, uptr);
        // if (!smp_load_acquire(&df->access_granted)) return -EINVAL;
        let req = device_command(request);
        if req != Some(DeviceRequest::BindIommufd) && self.bound.lock().is_none() {
            return Err(CdevError::NotBound { request });
        }
        let vfio = self.device.vfio.as_ref();
        let limits: &dyn DeviceLimits = match vfio {
            Some(d) => d.as_ref(),
            None => &Limits,
        };
        match decode_device(request, &arg, limits)? {
            DeviceCmd::BindIommufd(cmd) => self.bind(&cmd, arg.bytes_mut("bind_iommufd")?, fds).map(|()| 0),
            DeviceCmd::AttachIommufdPt(cmd) => {
                self.attach(&cmd, arg.bytes_mut("attach_iommufd_pt")?).map(|()| 0)
            }
            DeviceCmd::DetachIommufdPt(_) => {
                self.detach();
                Ok(0)
            }
            // The driver's ioctl (vfio_pci_core_ioctl()); a bare device's `default:` -ENOTTY.
            cmd => match vfio {
                Some(d) => d.ioctl(cmd, arg, user).map_err(CdevError::Device),
                None => Err(UapiError::UnknownRequest { request }.into()),
            },
        }
    }

    /// `pread(cdev_fd, buf, offset)`: `EINVAL` before the bind and for a bare device.
    pub fn read(&self, offset: DeviceOffset, buf: &mut [u8]) -> Result<usize, CdevError> {
        self.served("read")?
            .region_read(offset, buf)
            .map_err(CdevError::Device)
    }

    /// `pwrite(cdev_fd, data, offset)`: `EINVAL` before the bind and for a bare device.
    pub fn write(&self, offset: DeviceOffset, data: &[u8]) -> Result<usize, CdevError> {
        self.served("write")?
            .region_write(offset, data)
            .map_err(CdevError::Device)
    }

    /// `mmap(cdev_fd, offset, len)`: the file to map; `EINVAL` before the bind and for a bare
    /// device.
    pub fn mmap(&self, offset: DeviceOffset, len: u64) -> Result<RegionMap, CdevError> {
        self.served("mmap")?
            .region_mmap(offset, len)
            .map_err(CdevError::Device)
    }

    /// The device side of a bound file.
    fn served(&self, op: &'static str) -> Result<&Arc<VfioDevice>, CdevError> {
        // if (!smp_load_acquire(&df->access_granted)) return -EINVAL;
        if self.bound.lock().is_none() {
            return Err(CdevError::NoAccess { op });
        }
        self.device
            .vfio
            .as_ref()
            .ok_or(CdevError::Device(DeviceError::Bare { op }))
    }

    /// `vfio_df_ioctl_bind_iommufd()` after decoding.
    fn bind(&self, cmd: &BindIommufd, user: &mut [u8], fds: &dyn IommufdFds) -> Result<(), CdevError> {
        // ret = vfio_device_block_group(device); if (ret) return ret;
        let group = self.device.vfio_group.as_ref();
        if let Some(g) = group {
            g.block().map_err(CdevError::Group)?;
        }
        let result = self.bind_blocked(cmd, user, fds);
        // out_unlock: ... vfio_device_unblock_group(device);
        if let (Err(_), Some(g)) = (&result, group) {
            g.unblock();
        }
        result
    }

    /// The rest of the bind, with the group blocked.
    fn bind_blocked(
        &self,
        cmd: &BindIommufd,
        user: &mut [u8],
        fds: &dyn IommufdFds,
    ) -> Result<(), CdevError> {
        let mut bound = self.bound.lock();
        // /* one device cannot be bound twice */ if (df->access_granted) ret = -EINVAL;
        if bound.is_some() {
            return Err(CdevError::AlreadyBound);
        }
        // vfio_df_check_token(): no match_token_uuid → the TOKEN flag is -EINVAL.
        if cmd.token.is_some() {
            return Err(CdevError::NoToken);
        }
        // df->iommufd = iommufd_ctx_from_fd(bind.iommufd);
        let IommufdRef { ctx, hold } = fds.iommufd(cmd.iommufd)?;
        // vfio_df_open(): if (device->open_count != 0 && !df->group) return -EINVAL;
        let mut opened = self.device.opened.lock();
        if *opened {
            return Err(CdevError::OpenElsewhere);
        }
        // iommufd_device_bind() → iommu_device_claim_dma_owner(): a group a kernel driver uses
        // has an owner count without an owner, so the claim is -EPERM.
        if let Some(g) = &self.device.vfio_group
            && !g.is_viable()
        {
            return Err(CdevError::Group(GroupError::NotViable(g.id())));
        }
        let (devid, device) = ctx
            .bind_device(self.device.group, self.device.rid)
            .map_err(CdevError::Bind)?;
        // vfio_df_open(): device->open_count++, the first open calling the driver's open_device.
        let new = Bound {
            ctx,
            devid,
            device,
            open: self.device.vfio.as_ref().map(|d| d.open()),
            _hold: hold,
        };
        // copy_to_user(&arg->out_devid, ...) ? -EFAULT : 0; on failure the device is closed.
        if let Err(e) = cmd.encode_reply(devid.raw(), user) {
            unbind(new);
            return Err(e.into());
        }
        *opened = true;
        *self.device.iommufd_device.lock() = Arc::downgrade(&new.device);
        *bound = Some(new);
        Ok(())
    }

    /// `vfio_df_ioctl_attach_pt()` → `vfio_iommufd_physical_attach_ioas()`.
    fn attach(&self, cmd: &AttachIommufdPt, user: &mut [u8]) -> Result<(), CdevError> {
        let bound = self.bound.lock();
        let Some(b) = bound.as_ref() else {
            return Err(CdevError::NotBound { request: 0 });
        };
        let table = b.ctx.objects();
        let target = AttachTarget::lookup(table, cmd.pt_id).map_err(CdevError::Attach)?;
        // if (vdev->iommufd_attached) rc = iommufd_device_replace(...); else attach.
        let pt_id = if b.device.is_attached() {
            b.device.replace(table, target)
        } else {
            b.device.attach(table, target)
        }
        .map_err(CdevError::Attach)?;
        // if (copy_to_user(&arg->pt_id, ...)) { ret = -EFAULT; goto out_detach; }
        if let Err(e) = cmd.encode_reply(pt_id.raw(), user) {
            b.device.detach(table);
            return Err(e.into());
        }
        Ok(())
    }

    /// `vfio_df_ioctl_detach_pt()` → `vfio_iommufd_physical_detach_ioas()`: detaches if attached.
    fn detach(&self) {
        if let Some(b) = self.bound.lock().as_ref() {
            b.device.detach(b.ctx.objects());
        }
    }
}

/// `vfio_df_unbind_iommufd()`: `vfio_df_close()` (the last close of the device disables its IRQs
/// and resets it), then `iommufd_device_unbind()`: detach (destroying an automatic HWPT nothing
/// uses), then the device object goes.
fn unbind(mut b: Bound) {
    drop(b.open.take());
    let table = b.ctx.objects();
    b.device.detach(table);
    // The object holds the other reference; it cannot be in use by anything but this file.
    let removed = table.destroy(b.devid.raw());
    debug_assert!(removed.is_ok());
    drop(removed);
}

impl Drop for CdevFile {
    /// `vfio_device_fops_release()` → `vfio_df_unbind_iommufd()`.
    fn drop(&mut self) {
        if let Some(b) = self.bound.get_mut().take() {
            *self.device.iommufd_device.lock() = Weak::new();
            unbind(b);
            *self.device.opened.lock() = false;
            // vfio_df_unbind_iommufd(): ... vfio_device_unblock_group(device);
            if let Some(g) = &self.device.vfio_group {
                g.unblock();
            }
        }
    }
}
