//! What a container needs from the outside: the iommufd context it is built on, and the groups
//! that join it.
//!
//! Both are seams. The host implements [`CompatContext`] over its iommufd context (Linux's
//! `struct iommufd_ctx`: the object table, the memory and the account new IOASes charge, and the
//! `vfio_ioas` slot that `IOMMU_VFIO_IOAS` reads and writes) and [`ContainerGroup`] over its IOMMU
//! groups; tests implement both over a rig of their own.

use std::sync::Arc;
use uvfio_iommufd::device::{Device, GroupId};
use uvfio_iommufd::hwpt::HwptObject;
use uvfio_iommufd::object::{ObjectError, ObjectId, ObjectTable};

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

    /// The group's devices, bound to the container's iommufd context. Attaching the group to the
    /// container's IOAS attaches each of them ([`Device::attach`] to the compat IOAS, which gives
    /// the group an automatic domain); the devices attached are remembered, and exactly those are
    /// detached when the group leaves.
    fn devices(&self) -> Vec<Arc<Device>>;
}
