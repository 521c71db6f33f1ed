//! Bound devices and their attachment (Linux `drivers/iommu/iommufd/device.c`): attach to an IOAS
//! (an automatic domain) or to a paging HWPT, replace, detach.
//!
//! Attachment belongs to the IOMMU group, as in Linux's `struct iommufd_group`: "Only attach to the
//! group once for the first device that is in the group. All the other devices will follow this
//! attachment", so every device of a group translates through the group's domain (one that is
//! bound but not attached too: the hardware cannot tell them apart), and a device of an attached
//! group that asks for another HWPT is refused (`if (old_hwpt && old_hwpt != hwpt) rc = -EINVAL;`).
//! Attaching a device that is attached already is `EBUSY` (`xa_insert(&attach->device_array, ...)`
//! finds it); replace needs an attached device (`EINVAL` otherwise) and switches the whole group at
//! once, and on failure "no change is made to the attachment"; detaching an unattached device does
//! nothing (VFIO's `DETACH_IOMMUFD_PT` returns 0), and the last device to leave puts the group back
//! on its blocking domain, where every DMA faults with `FaultReason::Blocked` ("The device returns
//! back to a blocked DMA translation"). Attaching to an IOAS reuses an automatic HWPT of that IOAS
//! that accepts the device ("-EINVAL means the domain is incompatible with the device. Other error
//! codes should propagate to userspace as failure"), else makes one; an automatic HWPT is destroyed
//! when its last group leaves it. An attached group holds one long-term use of its HWPT object, so
//! `IOMMU_DESTROY` of that HWPT is `EBUSY`. A device model reads [`Device::port`] (or
//! [`Device::current_domain`]) and must fetch again whenever [`Device::generation`] moves: an attach,
//! a replace or the last detach of the group changes the domain its DMA goes through.

use crate::fail::{FailPoints, Site};
use crate::hwpt::{HwptError, HwptObject, HwptPaging};
use crate::ioas::IoPageTable;
use crate::object::{ObjectError, ObjectId, ObjectTable, ObjectType, UserRef};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use uvfio_iommu::{DmaPort, Domain, DomainConfig, Iommu, OwnerError, OwnerId};

/// An IOMMU group's number (what `/dev/vfio/N` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors of binding, attaching and replacing.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// An object id was not found (or a fault was injected reserving one).
    #[error("object lookup")]
    Object(#[from] ObjectError),
    /// The id names an object that is neither an IOAS nor a paging HWPT.
    #[error("object {id} is neither an IOAS nor a paging HWPT")]
    NotAPageTable {
        /// The id.
        id: u32,
    },
    /// The device is attached already.
    #[error("the device is attached already")]
    AlreadyAttached,
    /// The device's group is attached to another HWPT.
    #[error("group {group} is attached to HWPT {current}, not {wanted}")]
    GroupAttachedElsewhere {
        /// The group.
        group: GroupId,
        /// The HWPT the group is attached to.
        current: ObjectId,
        /// The HWPT asked for.
        wanted: ObjectId,
    },
    /// Replace needs an attached device.
    #[error("the device is not attached")]
    NotAttached,
    /// The HWPT's domain was made by another IOMMU unit.
    #[error("HWPT {hwpt}'s domain belongs to another IOMMU")]
    OtherIommu {
        /// The HWPT.
        hwpt: ObjectId,
    },
    /// The HWPT's domain is wider than the device's IOMMU translates.
    #[error("HWPT {hwpt}'s domain is {width} bits wide, the device's IOMMU translates {max}")]
    TooWide {
        /// The HWPT.
        hwpt: ObjectId,
        /// The domain's IOVA width.
        width: u32,
        /// What the device's IOMMU supports.
        max: u32,
    },
    /// The group already exists behind another IOMMU unit (a host topology error).
    #[error("group {group} sits behind another IOMMU")]
    GroupIommu {
        /// The group.
        group: GroupId,
    },
    /// Another owner has the group's DMA (`iommu_device_claim_dma_owner()`: `EPERM`).
    #[error("claiming the group's DMA")]
    Owner(#[from] OwnerError),
    /// Making an automatic HWPT failed.
    #[error("making the automatic HWPT")]
    Hwpt(#[from] HwptError),
    /// A fault-injection point failed this step.
    #[error("injected failure at {0:?}")]
    Injected(Site),
}

impl DeviceError {
    /// The errno Linux returns for the same failure.
    pub fn errno(&self) -> Errno {
        match self {
            DeviceError::Object(e) => e.errno(),
            // `iommufd_device_change_pt()`: `default: destroy_hwpt = ERR_PTR(-EINVAL);`
            DeviceError::NotAPageTable { .. } => Errno::INVAL,
            // `xa_insert()` of an index in use.
            DeviceError::AlreadyAttached => Errno::BUSY,
            DeviceError::GroupAttachedElsewhere { .. }
            | DeviceError::NotAttached
            | DeviceError::OtherIommu { .. }
            | DeviceError::TooWide { .. }
            | DeviceError::GroupIommu { .. } => Errno::INVAL,
            DeviceError::Owner(e) => e.errno(),
            DeviceError::Hwpt(e) => e.errno(),
            DeviceError::Injected(_) => Errno::NOMEM,
        }
    }
}

/// What `pt_id` names in an attach or a replace.
#[derive(Debug)]
pub enum AttachTarget {
    /// A paging HWPT, with a long-term use of its object for the attachment to keep.
    Hwpt {
        /// The HWPT.
        hwpt: Arc<HwptPaging>,
        /// A use of its object.
        user: UserRef,
    },
    /// An IOAS: the device gets an automatic HWPT over it.
    Ioas {
        /// The IOAS's object id.
        id: ObjectId,
        /// Its page table.
        ioas: Arc<IoPageTable>,
    },
}

impl AttachTarget {
    /// Resolves `pt_id` as `iommufd_device_change_pt()` does: `ENOENT` for no object, `EINVAL` for
    /// one that is neither an IOAS nor a paging HWPT.
    pub fn lookup<O: HwptObject>(table: &ObjectTable<O>, pt_id: u32) -> Result<Self, DeviceError> {
        let obj = table.get(pt_id, None)?;
        let not_pt = DeviceError::NotAPageTable { id: pt_id };
        match obj.object_type() {
            ObjectType::HwptPaging => {
                let (obj, user) = table.get_with_user(pt_id, ObjectType::HwptPaging)?;
                let hwpt = obj.as_hwpt_paging().cloned().ok_or(not_pt)?;
                Ok(AttachTarget::Hwpt { hwpt, user })
            }
            ObjectType::Ioas => Ok(AttachTarget::Ioas {
                id: ObjectId::new(pt_id).ok_or(ObjectError::NotFound(pt_id))?,
                ioas: obj.as_ioas().cloned().ok_or(not_pt)?,
            }),
            _ => Err(not_pt),
        }
    }
}

/// The iommufd context's groups (Linux `ictx->groups`): one [`Group`] per IOMMU group with a
/// bound device, and the context's DMA-owner cookie (Linux passes `ictx`).
#[derive(Debug)]
pub struct Groups {
    fail: Arc<FailPoints>,
    owner: OwnerId,
    map: Mutex<HashMap<GroupId, Weak<Group>>>,
}

impl Groups {
    /// No groups yet; attach steps consult `fail`.
    pub fn new(fail: Arc<FailPoints>) -> Self {
        Groups {
            fail,
            owner: OwnerId::unique(),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The cookie this context claims DMA ownership with.
    pub fn owner(&self) -> OwnerId {
        self.owner
    }

    /// `iommufd_get_group()`: the group `id` behind `iommu`, made on first use.
    fn get(&self, id: GroupId, iommu: &Arc<Iommu>) -> Result<Arc<Group>, DeviceError> {
        let mut map = self.map.lock();
        if let Some(group) = map.get(&id).and_then(Weak::upgrade) {
            if !Arc::ptr_eq(&group.iommu, iommu) {
                return Err(DeviceError::GroupIommu { group: id });
            }
            return Ok(group);
        }
        map.retain(|_, g| g.strong_count() > 0);
        let group = Arc::new(Group {
            id,
            iommu: Arc::clone(iommu),
            blocked: Domain::new_blocked(Arc::clone(iommu.memory())),
            fail: Arc::clone(&self.fail),
            generation: AtomicU64::new(0),
            state: Mutex::new(None),
        });
        map.insert(id, Arc::downgrade(&group));
        Ok(group)
    }

    /// Groups with at least one bound device.
    pub fn live(&self) -> usize {
        self.map.lock().values().filter(|g| g.strong_count() > 0).count()
    }
}

/// A group's attachment (Linux `struct iommufd_attach`): the HWPT and the devices attached to it.
#[derive(Debug)]
struct GroupAttach {
    hwpt: Arc<HwptPaging>,
    /// The group's long-term use of the HWPT object.
    user: UserRef,
    /// Serials of the attached devices (`device_array`); never empty.
    devices: Vec<u64>,
}

/// One IOMMU group in one iommufd context: the unit that is attached to a domain.
#[derive(Debug)]
pub struct Group {
    id: GroupId,
    iommu: Arc<Iommu>,
    /// Where the group's DMA goes while nothing is attached.
    blocked: Arc<Domain>,
    fail: Arc<FailPoints>,
    /// Bumped whenever the group's domain changes.
    generation: AtomicU64,
    state: Mutex<Option<GroupAttach>>,
}

impl Group {
    /// The group's number.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The HWPT the group is attached to.
    pub fn hwpt(&self) -> Option<Arc<HwptPaging>> {
        self.state.lock().as_ref().map(|a| Arc::clone(&a.hwpt))
    }

    /// Devices of the group that are attached.
    pub fn attached_devices(&self) -> usize {
        self.state.lock().as_ref().map_or(0, |a| a.devices.len())
    }

    fn domain_of(&self, state: &Option<GroupAttach>) -> Arc<Domain> {
        match state {
            Some(a) => Arc::clone(a.hwpt.domain()),
            None => Arc::clone(&self.blocked),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// How a device changes its page table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// `iommufd_device_do_attach`.
    Attach,
    /// `iommufd_device_do_replace`.
    Replace,
}

/// A released attachment: the HWPT and the use that is to be put.
type Released = (Arc<HwptPaging>, UserRef);

fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A device bound to an iommufd context (Linux `struct iommufd_device`).
#[derive(Debug)]
pub struct Device {
    serial: u64,
    rid: u16,
    group: Arc<Group>,
    iommu: Arc<Iommu>,
    /// The context's cookie its DMA-ownership claim was made with.
    owner: OwnerId,
    config: DomainConfig,
}

impl Device {
    /// `iommufd_device_bind()`: the device with requester id `rid` in IOMMU group `group` behind
    /// `iommu`, whose IOMMU makes paging domains with `config` (its `levels` are also the widest
    /// domain the IOMMU can translate through). It starts detached: DMA blocked.
    ///
    /// The context claims the group's DMA for itself first (`rc = iommu_device_claim_dma_owner(dev,
    /// ictx)`): a group another context or a legacy container owns is `EPERM`. The claim goes
    /// with the device.
    pub fn bind(
        groups: &Groups,
        iommu: &Arc<Iommu>,
        group: GroupId,
        rid: u16,
        config: DomainConfig,
    ) -> Result<Self, DeviceError> {
        let group = groups.get(group, iommu)?;
        iommu.owners().claim_device(group.id.0, groups.owner)?;
        Ok(Device {
            serial: next_serial(),
            rid,
            group,
            iommu: Arc::clone(iommu),
            owner: groups.owner,
            config,
        })
    }

    /// The requester id (PCI bus/device/function) its DMA carries.
    pub fn rid(&self) -> u16 {
        self.rid
    }

    /// Its IOMMU group.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// The IOMMU unit it sits behind.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// How its IOMMU makes paging domains.
    pub fn domain_config(&self) -> DomainConfig {
        self.config
    }

    /// Whether the device is attached (not merely following its group).
    pub fn is_attached(&self) -> bool {
        self.group
            .state
            .lock()
            .as_ref()
            .is_some_and(|a| a.devices.contains(&self.serial))
    }

    /// The HWPT the device is attached to.
    pub fn attached_hwpt(&self) -> Option<Arc<HwptPaging>> {
        self.group
            .state
            .lock()
            .as_ref()
            .filter(|a| a.devices.contains(&self.serial))
            .map(|a| Arc::clone(&a.hwpt))
    }

    /// The domain the device's DMA goes through now: its group's HWPT's, or the blocking domain.
    pub fn current_domain(&self) -> Arc<Domain> {
        self.group.domain_of(&self.group.state.lock())
    }

    /// Counts the changes of the device's domain; a device model compares it with the value
    /// [`port`](Self::port) returned to notice one.
    pub fn generation(&self) -> u64 {
        self.group.generation.load(Ordering::Acquire)
    }

    /// A DMA port on the current domain and the generation it belongs to, read together.
    pub fn port(&self) -> (DmaPort, u64) {
        let state = self.group.state.lock();
        let domain = self.group.domain_of(&state);
        (domain.port(self.rid), self.generation())
    }

    /// `iommufd_device_attach()`: attaches to a paging HWPT or to an automatic one over an IOAS.
    /// Returns the HWPT's id (the `pt_id` Linux writes back).
    pub fn attach<O: HwptObject>(
        &self,
        table: &ObjectTable<O>,
        target: AttachTarget,
    ) -> Result<ObjectId, DeviceError> {
        self.change_pt(table, target, Change::Attach)
    }

    /// `iommufd_device_replace()`: moves the device's group to another HWPT (or an automatic one
    /// over an IOAS) in one step; "If it fails then no change is made to the attachment". The HWPT
    /// left behind is put: an automatic one nothing uses any more is destroyed.
    pub fn replace<O: HwptObject>(
        &self,
        table: &ObjectTable<O>,
        target: AttachTarget,
    ) -> Result<ObjectId, DeviceError> {
        self.change_pt(table, target, Change::Replace)
    }

    /// `iommufd_device_detach()`: the device leaves its HWPT; the group's last device puts the group
    /// on its blocking domain and puts the HWPT (an automatic one nothing uses is destroyed).
    /// Returns whether the device was attached (detaching an unattached device changes nothing).
    pub fn detach<O: HwptObject>(&self, table: &ObjectTable<O>) -> bool {
        let (was_attached, released) = self.leave();
        if let Some(a) = released {
            put_hwpt(table, a.hwpt, a.user);
        }
        was_attached
    }

    /// Removes the device from its group's attachment; returns whether it was attached and the
    /// attachment the group gave up.
    fn leave(&self) -> (bool, Option<GroupAttach>) {
        let mut state = self.group.state.lock();
        let Some(attach) = state.as_mut() else {
            return (false, None);
        };
        let Some(pos) = attach.devices.iter().position(|&d| d == self.serial) else {
            return (false, None);
        };
        attach.devices.swap_remove(pos);
        if !attach.devices.is_empty() {
            return (true, None);
        }
        let released = state.take();
        self.group.bump();
        (true, released)
    }

    fn change_pt<O: HwptObject>(
        &self,
        table: &ObjectTable<O>,
        target: AttachTarget,
        how: Change,
    ) -> Result<ObjectId, DeviceError> {
        match target {
            AttachTarget::Hwpt { hwpt, user } => {
                let old = self.change(&hwpt, user, how)?;
                // "This destruction has to be after we unlock everything".
                if let Some((old, user)) = old {
                    put_hwpt(table, old, user);
                }
                Ok(hwpt.id())
            }
            AttachTarget::Ioas { id, ioas } => self.auto_get_domain(table, id, &ioas, how),
        }
    }

    /// `iommufd_device_auto_get_domain()`.
    fn auto_get_domain<O: HwptObject>(
        &self,
        table: &ObjectTable<O>,
        ioas_id: ObjectId,
        ioas: &Arc<IoPageTable>,
        how: Change,
    ) -> Result<ObjectId, DeviceError> {
        // "There is no differentiation when domains are allocated, so any domain that is willing
        // to attach to the device is interchangeable with any other."
        for (hwpt, user) in auto_hwpts(table, ioas) {
            match self.change(&hwpt, user, how) {
                Ok(old) => {
                    if let Some((old, user)) = old {
                        put_hwpt(table, old, user);
                    }
                    return Ok(hwpt.id());
                }
                // "-EINVAL means the domain is incompatible with the device. Other error codes
                // should propagate to userspace as failure."
                Err(e) if e.errno() == Errno::INVAL => continue,
                Err(e) => return Err(e),
            }
        }
        let reservation = table.reserve(ObjectType::HwptPaging)?;
        let (_, ioas_use) = table.get_with_user(ioas_id.raw(), ObjectType::Ioas)?;
        let hwpt = HwptPaging::new(
            reservation.id(),
            self,
            Arc::clone(ioas),
            ioas_use,
            true,
            &self.group.fail,
        )?;
        let id = hwpt.id();
        reservation.finalize(O::from_hwpt_paging(Arc::clone(&hwpt)));
        // Linux takes the device's use before it publishes the HWPT; this table hands out uses of
        // published objects only. A racing `IOMMU_DESTROY` of the fresh id leaves nothing attached.
        let (_, user) = table.get_with_user(id.raw(), ObjectType::HwptPaging)?;
        match self.change(&hwpt, user, how) {
            Ok(old) => {
                if let Some((old, user)) = old {
                    put_hwpt(table, old, user);
                }
                Ok(id)
            }
            Err(e) => {
                // `iommufd_object_abort_and_destroy()`: unless a racing attach picked it up.
                if let Ok((_, user)) = table.get_with_user(id.raw(), ObjectType::HwptPaging) {
                    put_hwpt(table, hwpt, user);
                }
                Err(e)
            }
        }
    }

    fn change(
        &self,
        hwpt: &Arc<HwptPaging>,
        user: UserRef,
        how: Change,
    ) -> Result<Option<Released>, DeviceError> {
        match how {
            Change::Attach => self.group_attach(hwpt, user).map(|()| None),
            Change::Replace => self.group_replace(hwpt, user),
        }
    }

    /// Whether the group may be attached to `hwpt` (the driver's `attach_dev` check): a domain of
    /// another IOMMU, or one wider than this IOMMU translates, is `EINVAL` as in Linux
    /// (`__iommu_attach_group`: `dev_iommu_ops(dev) != domain->owner`; VT-d
    /// `paging_domain_compatible`: `dmar_domain->gaw > addr_width`).
    fn check_compatible(&self, hwpt: &HwptPaging) -> Result<(), DeviceError> {
        if !Arc::ptr_eq(hwpt.iommu(), &self.iommu) {
            return Err(DeviceError::OtherIommu { hwpt: hwpt.id() });
        }
        let max = self.config.levels.address_width();
        if hwpt.address_width() > max {
            return Err(DeviceError::TooWide {
                hwpt: hwpt.id(),
                width: hwpt.address_width(),
                max,
            });
        }
        Ok(())
    }

    /// `iommufd_hw_pagetable_attach()`.
    fn group_attach(&self, hwpt: &Arc<HwptPaging>, user: UserRef) -> Result<(), DeviceError> {
        let group = &self.group;
        let mut state = group.state.lock();
        // The slot for the device in the group's attachment.
        group.fail.step(Site::Alloc).map_err(DeviceError::Injected)?;
        if let Some(attach) = state.as_mut() {
            if attach.devices.contains(&self.serial) {
                return Err(DeviceError::AlreadyAttached);
            }
            if !Arc::ptr_eq(&attach.hwpt, hwpt) {
                return Err(DeviceError::GroupAttachedElsewhere {
                    group: group.id,
                    current: attach.hwpt.id(),
                    wanted: hwpt.id(),
                });
            }
            // The group is attached already; this device follows it, and the group's use of the
            // HWPT covers it.
            attach.devices.push(self.serial);
            return Ok(());
        }
        self.check_compatible(hwpt)?;
        // The attach handle.
        group.fail.step(Site::Alloc).map_err(DeviceError::Injected)?;
        *state = Some(GroupAttach {
            hwpt: Arc::clone(hwpt),
            user,
            devices: vec![self.serial],
        });
        group.bump();
        Ok(())
    }

    /// `iommufd_device_do_replace()`: returns the attachment given up, if the HWPT changed.
    fn group_replace(&self, hwpt: &Arc<HwptPaging>, user: UserRef) -> Result<Option<Released>, DeviceError> {
        let group = &self.group;
        let mut state = group.state.lock();
        // `if (!iommufd_device_is_attached(idev, pasid)) { rc = -EINVAL; ...`
        let Some(attach) = state.as_mut().filter(|a| a.devices.contains(&self.serial)) else {
            return Err(DeviceError::NotAttached);
        };
        // `if (hwpt == igroup->hwpt) { mutex_unlock(...); return NULL; }`
        if Arc::ptr_eq(&attach.hwpt, hwpt) {
            return Ok(None);
        }
        self.check_compatible(hwpt)?;
        // The new attach handle.
        group.fail.step(Site::Alloc).map_err(DeviceError::Injected)?;
        // "Move the refcounts held by the device_list to the new hwpt."
        let old_hwpt = std::mem::replace(&mut attach.hwpt, Arc::clone(hwpt));
        let old_user = std::mem::replace(&mut attach.user, user);
        group.bump();
        Ok(Some((old_hwpt, old_user)))
    }
}

impl Drop for Device {
    /// Unbinding an attached device detaches it (VFIO's unbind does, `iommufd_device_detach`). An
    /// automatic HWPT it leaves unused stays in the object table until it is destroyed or the
    /// context closes: call [`Device::detach`] first to have it destroyed at once. Then the
    /// context's claim on the group's DMA goes (`iommu_device_release_dma_owner()`).
    fn drop(&mut self) {
        let (_, released) = self.leave();
        drop(released);
        self.iommu.owners().release(self.group.id.0, self.owner);
    }
}

/// The automatic HWPTs over `ioas` in id order (Linux walks `ioas->hwpt_list`), each with a use of
/// its object taken as it is handed out (Linux `iommufd_lock_obj`).
fn auto_hwpts<'t, O: HwptObject>(
    table: &'t ObjectTable<O>,
    ioas: &'t Arc<IoPageTable>,
) -> impl Iterator<Item = Released> + 't {
    let is_candidate = |obj: &O| {
        obj.as_hwpt_paging()
            .is_some_and(|h| h.is_auto() && Arc::ptr_eq(h.ioas(), ioas))
    };
    let ids: Vec<u32> = table
        .snapshot()
        .into_iter()
        .filter(|&(_, ty)| ty == ObjectType::HwptPaging)
        .map(|(id, _)| id.raw())
        .filter(|&id| {
            table
                .get(id, Some(ObjectType::HwptPaging))
                .is_ok_and(|o| is_candidate(&o))
        })
        .collect();
    ids.into_iter().filter_map(move |id| {
        // Gone since the listing: skipped, as `if (!iommufd_lock_obj(&hwpt->obj)) continue;`.
        let (obj, user) = table.get_with_user(id, ObjectType::HwptPaging).ok()?;
        // The id may have been reused since the listing.
        let hwpt = obj.as_hwpt_paging().filter(|_| is_candidate(&obj))?;
        Some((Arc::clone(hwpt), user))
    })
}

/// `iommufd_hw_pagetable_put()`: releases `user`; an automatic HWPT nothing uses any more is
/// destroyed (`iommufd_object_put_and_try_destroy`), one still in use stays.
fn put_hwpt<O: HwptObject>(table: &ObjectTable<O>, hwpt: Arc<HwptPaging>, user: UserRef) {
    if !hwpt.is_auto() {
        return;
    }
    let id = hwpt.id().raw();
    // While `user` is held the object cannot go, so the id still names this HWPT.
    let same = table
        .get(id, Some(ObjectType::HwptPaging))
        .is_ok_and(|o| o.as_hwpt_paging().is_some_and(|h| Arc::ptr_eq(h, &hwpt)));
    drop(user);
    drop(hwpt);
    if same {
        // `Busy` when another group uses it: then it stays, as in Linux.
        let destroyed = table.destroy(id);
        drop(destroyed);
    }
}
