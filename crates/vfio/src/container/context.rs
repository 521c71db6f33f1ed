//! What a container needs from the outside: the iommufd context it is built on, and the groups
//! that join it.
//!
//! Both are seams. The host implements [`CompatContext`] over its iommufd context (Linux's
//! `struct iommufd_ctx`: the object table, the memory and the account new IOASes charge, and the
//! `vfio_ioas` slot that `IOMMU_VFIO_IOAS` reads and writes) and [`ContainerGroup`] over its IOMMU
//! groups; tests implement both over a rig of their own.

use std::sync::Arc;
use uvfio_iommu::{Iommu, OwnerError, OwnerId};
use uvfio_iommufd::device::{Device, DeviceError, GroupId};
use uvfio_iommufd::hwpt::HwptObject;
use uvfio_iommufd::object::{ObjectError, ObjectId, ObjectTable};

/// A device the container bound to its context for a group's attach.
#[derive(Debug)]
pub struct BoundDevice {
    /// The bound device.
    pub device: Arc<Device>,
    /// Its device object, if the context publishes one (destroyed at unbind).
    pub object: Option<ObjectId>,
}

/// The iommufd context a container serves its type1 ioctls through (Linux's `ictx`, which is what
/// `/dev/vfio/vfio` is when iommufd provides it).
pub trait CompatContext: Send + Sync {
    /// The context's object type (an enum of IOASes, HWPTs, ...).
    type Object: HwptObject;

    /// The object table the compat IOAS, the automatic HWPTs of the attached devices, and any
    /// IOAS the user made live in.
    fn objects(&self) -> &ObjectTable<Self::Object>;

    /// `iommufd_ioas_alloc()` + `iommufd_object_finalize()`: a new, empty IOAS published in the
    /// object table; its id. It must charge pins to the account the legacy interface uses:
    /// Linux's `iommufd_fops_open()` makes a context opened as `/dev/vfio/vfio` charge
    /// `mm->locked_vm` (`IOPT_PAGES_ACCOUNT_MM`, "the same rlimit accounting as vfio uses").
    fn alloc_ioas(&self) -> Result<ObjectId, ObjectError>;

    /// `ictx->vfio_ioas`: the IOAS the VFIO compat ioctls act on, if one was chosen
    /// (`IOMMU_VFIO_IOAS_SET`, or the container's `SET_IOMMU`). It may name an object that has been
    /// destroyed since; the container then answers `ENODEV`, as `get_compat_ioas()` does.
    fn vfio_ioas(&self) -> Option<ObjectId>;

    /// Sets or clears `ictx->vfio_ioas` (`IOMMU_VFIO_IOAS_SET` / `_CLEAR`).
    fn set_vfio_ioas(&self, id: Option<ObjectId>);

    /// The IOMMU the context's devices sit behind (where group DMA ownership is kept).
    fn iommu(&self) -> &Arc<Iommu>;

    /// The cookie the context claims DMA ownership with.
    fn owner(&self) -> OwnerId;

    /// `iommufd_device_bind()` of the device with requester id `rid` in `group`: it claims the
    /// group's DMA for this context's owner (which the container's group claim already holds).
    fn bind_device(&self, group: GroupId, rid: u16) -> Result<BoundDevice, DeviceError>;

    /// `iommufd_device_unbind()`: detaches `bound` and destroys its object; the claim goes with
    /// the last reference to the device.
    fn unbind_device(&self, bound: BoundDevice) {
        bound.device.detach(self.objects());
        if let Some(id) = bound.object {
            // Nothing but the container holds a bound device's object: it cannot be busy.
            drop(self.objects().destroy(id.raw()));
        }
    }

    /// `iommu_group_claim_dma_owner()` for this context's owner: `EPERM` if anyone owns `group`.
    fn claim_group(&self, group: GroupId) -> Result<(), OwnerError> {
        self.iommu().owners().claim_group(group.0, self.owner())
    }

    /// `iommu_group_release_dma_owner()`.
    fn release_group(&self, group: GroupId) {
        self.iommu().owners().release(group.0, self.owner());
    }
}

/// Whether a group's devices sit behind an IOMMU (Linux `enum vfio_group_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// `VFIO_IOMMU`: a real IOMMU group; its devices' DMA goes through the container's IOAS.
    Iommu,
    /// `VFIO_NO_IOMMU`: a `noiommu-N` group of the unsafe no-IOMMU mode; nothing translates its
    /// devices' DMA.
    NoIommu,
}

/// An IOMMU group as the container sees it (`VFIO_GROUP_SET_CONTAINER` hands it over).
pub trait ContainerGroup: Send + Sync + std::fmt::Debug {
    /// The group's number (what `/dev/vfio/N` names).
    fn id(&self) -> GroupId;

    /// A real IOMMU group or a no-IOMMU one.
    fn kind(&self) -> GroupKind;

    /// The requester ids of the group's VFIO devices. Attaching the group to the container's
    /// IOAS binds each of them to the container's context and attaches it
    /// ([`Device::attach`] to the compat IOAS, which gives the group an automatic domain); the
    /// devices bound are remembered, and exactly those are detached and unbound when the group
    /// leaves.
    fn device_rids(&self) -> Vec<u16>;
}
