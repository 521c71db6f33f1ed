//! Groups joining and leaving the container, and `VFIO_SET_IOMMU` (Linux `drivers/vfio/container.c`:
//! `vfio_container_attach_group()`, `vfio_group_detach_container()`, `vfio_ioctl_set_iommu()`,
//! `__vfio_container_attach_groups()`; the type1 driver's open is iommufd's
//! `iommufd_vfio_compat_ioas_create()` + `iommufd_vfio_set_iommu()`).

use super::{
    BACKENDS, Backend, BoundDevice, CompatContext, Container, ContainerError, ContainerGroup, GroupKind,
    IommuDriver,
};
use super::{Member, State};
use crate::uapi::container::Extension;
use std::sync::Arc;
use uvfio_iommufd::device::{AttachTarget, GroupId};
use uvfio_iommufd::hwpt::HwptObject;
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::object::{ObjectId, ObjectType};

impl<C: CompatContext> Container<C> {
    /// The container's side of `VFIO_GROUP_SET_CONTAINER` (`vfio_container_attach_group()`): a
    /// no-IOMMU group needs `CAP_SYS_RAWIO` (`EPERM`), real and no-IOMMU groups cannot mix
    /// (`EPERM`), and with a type1 driver set the group's devices are attached to the compat IOAS
    /// at once (a failure detaches those attached so far and leaves the group out). A group that is
    /// in the container already is `EINVAL` (the group's own check, `group->container`).
    pub fn attach_group(&self, group: Arc<dyn ContainerGroup>) -> Result<(), ContainerError> {
        let id = group.id();
        let noiommu = group.kind() == GroupKind::NoIommu;
        let mut state = self.state.lock();
        // vfio_group_ioctl_set_container(): if (group->container || ...) { ret = -EINVAL; ...
        if state.groups.iter().any(|m| m.group.id() == id) {
            return Err(ContainerError::GroupInContainer { group: id });
        }
        // if (group->type == VFIO_NO_IOMMU && !capable(CAP_SYS_RAWIO)) return -EPERM;
        if noiommu && !self.config.sys_rawio {
            return Err(ContainerError::NoRawio);
        }
        // /* Real groups and fake groups cannot mix */
        if !state.groups.is_empty() && state.noiommu != noiommu {
            return Err(ContainerError::MixedGroups { group: id });
        }
        // if (group->type != VFIO_NO_IOMMU) {
        //         ret = iommu_group_claim_dma_owner(group->iommu_group, group); ...
        if !noiommu {
            self.ctx.claim_group(id).map_err(ContainerError::Owner)?;
        }
        // if (driver) { ret = driver->ops->attach_group(...);
        //         if (ret) { if (group->type != VFIO_NO_IOMMU) iommu_group_release_dma_owner(...);
        let attached = match state.driver {
            Some(IommuDriver::Type1 | IommuDriver::Type1v2) => self
                .attach_devices(group.as_ref())
                .inspect_err(|_| self.ctx.release_group(id))?,
            Some(IommuDriver::NoIommu) | None => Vec::new(),
        };
        state.noiommu = noiommu;
        state.groups.push(Member { group, attached });
        Ok(())
    }

    /// The container's side of `VFIO_GROUP_UNSET_CONTAINER` and of closing a group
    /// (`vfio_group_detach_container()`): the group's devices leave the compat IOAS (an automatic
    /// domain nothing uses any more is destroyed), and the last group to leave releases the driver
    /// — "Detaching the last group deprivileges a container, remove iommu". The compat IOAS and
    /// its mappings stay with the iommufd context. A group that is not in the container is
    /// `EINVAL`.
    pub fn detach_group(&self, group: GroupId) -> Result<(), ContainerError> {
        let mut state = self.state.lock();
        let pos = state
            .groups
            .iter()
            .position(|m| m.group.id() == group)
            .ok_or(ContainerError::GroupNotInContainer { group })?;
        let member = state.groups.remove(pos);
        self.release_member(member);
        if state.groups.is_empty() && !self.over_iommufd {
            state.driver = None;
        }
        Ok(())
    }

    /// `VFIO_SET_IOMMU` (`vfio_ioctl_set_iommu()`).
    pub(super) fn set_iommu(&self, ext: Extension) -> Result<(), ContainerError> {
        let mut state = self.state.lock();
        // if (list_empty(&container->group_list) || container->iommu_driver) return -EINVAL;
        if state.groups.is_empty() || state.driver.is_some() {
            return Err(ContainerError::SetIommuState);
        }
        // long ret = -ENODEV;
        let mut ret = Err(ContainerError::NoDriverForType(ext));
        for backend in BACKENDS {
            if !Self::allowed(&state, backend) {
                continue;
            }
            // if (driver->ops->ioctl(NULL, VFIO_CHECK_EXTENSION, arg) <= 0) continue;
            if self.backend_check(backend, ext, false) == 0 {
                continue;
            }
            // data = driver->ops->open(arg); if (IS_ERR(data)) { ret = PTR_ERR(data); continue; }
            let (driver, made) = match self.open(backend, ext) {
                Ok(opened) => opened,
                Err(e) => {
                    ret = Err(e);
                    continue;
                }
            };
            // ret = __vfio_container_attach_groups(container, driver, data);
            // if (ret) { driver->ops->release(data); ...; continue; }
            // Releasing the compat driver leaves a compat IOAS that existed before with the
            // context; one this open made goes again (Linux makes it when the group joins, so a
            // failed SET_IOMMU cannot have made it).
            if let Err(e) = self.attach_groups(&mut state, driver) {
                if let Some(id) = made {
                    self.unmake_compat_ioas(id);
                }
                ret = Err(e);
                continue;
            }
            state.driver = Some(driver);
            return Ok(());
        }
        ret
    }

    /// A driver's `open(arg)`; with the compat IOAS it made, if it made one.
    fn open(
        &self,
        backend: Backend,
        ext: Extension,
    ) -> Result<(IommuDriver, Option<ObjectId>), ContainerError> {
        match backend {
            Backend::NoIommu => {
                // if (arg != VFIO_NOIOMMU_IOMMU) return ERR_PTR(-EINVAL);
                if ext != Extension::NoIommu {
                    return Err(ContainerError::OpenType {
                        driver: IommuDriver::NoIommu.name(),
                        ext,
                    });
                }
                // if (!capable(CAP_SYS_RAWIO)) return ERR_PTR(-EPERM);
                if !self.config.sys_rawio {
                    return Err(ContainerError::NoRawio);
                }
                Ok((IommuDriver::NoIommu, None))
            }
            Backend::Type1 => {
                // if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU) return -EINVAL;
                let driver = match ext {
                    Extension::Type1 => IommuDriver::Type1,
                    Extension::Type1v2 => IommuDriver::Type1v2,
                    _ => {
                        return Err(ContainerError::OpenType {
                            driver: IommuDriver::Type1.name(),
                            ext,
                        });
                    }
                };
                // iommufd_vfio_compat_ioas_create(), then get_compat_ioas().
                let existed = self.live_compat_ioas();
                let id = self.compat_ioas_create()?;
                let made = existed.is_none().then_some(id);
                let opened = self.compat_ioas_by_id(id).and_then(|(ioas, _use)| {
                    // if (type == VFIO_TYPE1_IOMMU) rc = iopt_disable_large_pages(&ioas->iopt);
                    // "Won't do it if domains already have pages mapped in them": -EINVAL.
                    if driver == IommuDriver::Type1 {
                        ioas.disable_large_pages()?;
                    }
                    Ok((driver, made))
                });
                if let (Err(_), Some(id)) = (&opened, made) {
                    self.unmake_compat_ioas(id);
                }
                opened
            }
        }
    }

    /// `iommufd_vfio_compat_ioas_create()`: the context's `vfio_ioas` if it names a live IOAS,
    /// else a new IOAS, published in the object table and recorded as `vfio_ioas`.
    pub(super) fn compat_ioas_create(&self) -> Result<ObjectId, ContainerError> {
        if let Some(id) = self.live_compat_ioas() {
            return Ok(id);
        }
        let id = self.ctx.alloc_ioas()?;
        self.ctx.set_vfio_ioas(Some(id));
        Ok(id)
    }

    /// The context's `vfio_ioas`, if it names a live IOAS.
    fn live_compat_ioas(&self) -> Option<ObjectId> {
        self.ctx
            .vfio_ioas()
            .filter(|id| self.ctx.objects().get(id.raw(), Some(ObjectType::Ioas)).is_ok())
    }

    /// Takes back a compat IOAS [`Container::compat_ioas_create`] made for a request that failed.
    fn unmake_compat_ioas(&self, id: ObjectId) {
        self.ctx.set_vfio_ioas(None);
        // Nothing else can use an IOAS made within this request (the container's lock is held).
        drop(self.ctx.objects().destroy(id.raw()));
    }

    /// `get_compat_ioas()` for a known id: the IOAS, with a use of its object held for the
    /// duration of the request (`iommufd_lock_obj()`); `ENODEV` if it is gone.
    pub(super) fn compat_ioas_by_id(
        &self,
        id: ObjectId,
    ) -> Result<(Arc<IoPageTable>, uvfio_iommufd::object::UserRef), ContainerError> {
        let (obj, user) = self
            .ctx
            .objects()
            .get_with_user(id.raw(), ObjectType::Ioas)
            .map_err(|_| ContainerError::NoCompatIoas)?;
        let ioas = obj.as_ioas().cloned().ok_or(ContainerError::NoCompatIoas)?;
        Ok((ioas, user))
    }

    /// `__vfio_container_attach_groups()`: every group to the new driver, undone in reverse on
    /// the first failure.
    fn attach_groups(&self, state: &mut State, driver: IommuDriver) -> Result<(), ContainerError> {
        if driver == IommuDriver::NoIommu {
            // vfio_noiommu_attach_group(): return 0;
            return Ok(());
        }
        let mut done: Vec<Vec<BoundDevice>> = Vec::with_capacity(state.groups.len());
        for member in &state.groups {
            match self.attach_devices(member.group.as_ref()) {
                Ok(attached) => done.push(attached),
                Err(e) => {
                    for attached in done.into_iter().rev() {
                        self.detach_devices(attached);
                    }
                    return Err(e);
                }
            }
        }
        for (member, attached) in state.groups.iter_mut().zip(done) {
            member.attached = attached;
        }
        Ok(())
    }

    /// The compat driver's `attach_group`: each device of `group` bound to the context and
    /// attached to the compat IOAS (an automatic domain, shared by the group). On failure the
    /// devices bound so far are detached and unbound again.
    fn attach_devices(&self, group: &dyn ContainerGroup) -> Result<Vec<BoundDevice>, ContainerError> {
        let id = self.ctx.vfio_ioas().ok_or(ContainerError::NoCompatIoas)?;
        let table = self.ctx.objects();
        let mut attached: Vec<BoundDevice> = Vec::new();
        for rid in group.device_rids() {
            let result = self
                .ctx
                .bind_device(group.id(), rid)
                .map_err(ContainerError::from)
                .and_then(|bound| {
                    let done = self.compat_ioas_by_id(id).and_then(|(ioas, _use)| {
                        let target = AttachTarget::Ioas { id, ioas };
                        Ok(bound.device.attach(table, target)?)
                    });
                    match done {
                        Ok(_) => Ok(bound),
                        Err(e) => {
                            self.ctx.unbind_device(bound);
                            Err(e)
                        }
                    }
                });
            match result {
                Ok(bound) => attached.push(bound),
                Err(e) => {
                    self.detach_devices(attached);
                    return Err(e);
                }
            }
        }
        Ok(attached)
    }

    /// The compat driver's `detach_group`: the devices leave and are unbound, last attached first.
    pub(super) fn detach_devices(&self, devices: Vec<BoundDevice>) {
        for bound in devices.into_iter().rev() {
            self.ctx.unbind_device(bound);
        }
    }

    /// A group leaving: its devices detached and unbound, then its DMA ownership released
    /// (`vfio_group_detach_container()`: `iommu_group_release_dma_owner()` after the driver's
    /// `detach_group`).
    pub(super) fn release_member(&self, member: Member) {
        self.detach_devices(member.attached);
        if member.group.kind() == GroupKind::Iommu {
            self.ctx.release_group(member.group.id());
        }
    }
}
