//! [`ContainerError`] and its one errno boundary.

use crate::uapi::UapiError;
use crate::uapi::container::Extension;
use rustix::io::Errno;
use uvfio_iommufd::device::{DeviceError, GroupId};
use uvfio_iommufd::ioas::IoasError;
use uvfio_iommufd::object::ObjectError;
use uvfio_types::IovaRange;

/// Why a container ioctl (or a group joining or leaving the container) failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The request or its argument was refused by the decoder (`ENOTTY`, `EFAULT`, `EINVAL`,
    /// `EOVERFLOW`: see [`UapiError::errno`]).
    #[error("bad request")]
    Uapi(#[from] UapiError),
    /// An IOMMU-driver request on a container without a driver: `vfio_fops_unl_ioctl()` starts
    /// with `long ret = -EINVAL` and only a set driver changes it (`EINVAL`).
    #[error("request {request:#x}: the container has no IOMMU driver (VFIO_SET_IOMMU first)")]
    NoIommuDriver {
        /// The request number.
        request: u32,
    },
    /// A request the container's driver does not serve: the no-IOMMU driver answers everything
    /// but `VFIO_CHECK_EXTENSION` with `-ENOTTY`; the compat layer answers unknown requests with
    /// `-ENOIOCTLCMD`, which reaches the caller as `ENOTTY`.
    #[error("request {request:#x} is not served by the {driver} driver")]
    NotServed {
        /// The request number.
        request: u32,
        /// The driver's name (Linux `ops->name`).
        driver: &'static str,
    },
    /// `VFIO_SET_IOMMU` on a container without a group, or with a driver already set
    /// (`vfio_ioctl_set_iommu()`: `if (list_empty(&container->group_list) ||
    /// container->iommu_driver) return -EINVAL;`).
    #[error("set_iommu: the container has no group or already has a driver")]
    SetIommuState,
    /// No IOMMU driver allowed for this container offers the type (`vfio_ioctl_set_iommu()` keeps
    /// its initial `ret = -ENODEV`: `ENODEV`).
    #[error("set_iommu: no IOMMU driver offers {0:?}")]
    NoDriverForType(Extension),
    /// A driver that offers the extension was asked to open it as an IOMMU type it is not
    /// (`VFIO_SET_IOMMU(VFIO_UNMAP_ALL)`: type1's `vfio_iommu_type1_open()` and the compat layer's
    /// `iommufd_vfio_set_iommu()` accept only TYPE1 and TYPE1v2, `vfio_noiommu_open()` only
    /// NOIOMMU: `EINVAL`).
    #[error("the {driver} driver does not open {ext:?}")]
    OpenType {
        /// The driver's name.
        driver: &'static str,
        /// The extension asked for.
        ext: Extension,
    },
    /// No-IOMMU without `CAP_SYS_RAWIO` (`vfio_noiommu_open()`, `vfio_container_attach_group()`:
    /// `EPERM`).
    #[error("no-IOMMU needs CAP_SYS_RAWIO")]
    NoRawio,
    /// A real IOMMU group and a no-IOMMU group in one container ("Real groups and fake groups
    /// cannot mix": `EPERM`).
    #[error("group {group}: real and no-IOMMU groups cannot share a container")]
    MixedGroups {
        /// The group refused.
        group: GroupId,
    },
    /// The group is in the container already (`vfio_group_ioctl_set_container()`:
    /// `if (group->container ...) ret = -EINVAL`).
    #[error("group {group} is in the container already")]
    GroupInContainer {
        /// The group.
        group: GroupId,
    },
    /// The group is not in the container (`vfio_group_ioctl_unset_container()`:
    /// `if (!group->container) ret = -EINVAL`).
    #[error("group {group} is not in the container")]
    GroupNotInContainer {
        /// The group.
        group: GroupId,
    },
    /// There is no compat IOAS, or it has been destroyed (`get_compat_ioas()`: `ENODEV`).
    #[error("no compat IOAS")]
    NoCompatIoas,
    /// type1's `dma_entry_limit` mappings exist (`vfio_dma_do_map()`:
    /// `if (!iommu->dma_avail) { ret = -ENOSPC; ... }`).
    #[error("the container holds its limit of {limit} mappings")]
    DmaLimit {
        /// The limit.
        limit: u32,
    },
    /// A map over an existing mapping, found by type1's check that precedes its limit check
    /// (`vfio_find_dma()`: `EEXIST`).
    #[error("{range} overlaps the mapping {existing}")]
    Exists {
        /// The range asked for.
        range: IovaRange,
        /// A mapping it overlaps.
        existing: IovaRange,
    },
    /// The compat IOAS could not be looked up or made.
    #[error("object table")]
    Object(#[from] ObjectError),
    /// The IOAS refused a map or an unmap.
    #[error("IOAS")]
    Ioas(#[from] IoasError),
    /// The group's DMA is owned by another context or container
    /// (`iommu_group_claim_dma_owner()`: `EPERM`).
    #[error("claiming the group's DMA")]
    Owner(#[source] uvfio_iommu::OwnerError),
    /// A device of a group could not be attached to the compat IOAS.
    #[error("attaching a device")]
    Device(#[from] DeviceError),
}

impl ContainerError {
    /// The errno the ioctl returns: the one place a container error becomes a number.
    pub fn errno(&self) -> Errno {
        match self {
            ContainerError::Uapi(e) => e.errno(),
            ContainerError::Object(e) => e.errno(),
            ContainerError::Ioas(e) => e.errno(),
            ContainerError::Device(e) => e.errno(),
            ContainerError::Owner(e) => e.errno(),
            ContainerError::NotServed { .. } => Errno::NOTTY,
            ContainerError::NoDriverForType(_) | ContainerError::NoCompatIoas => Errno::NODEV,
            ContainerError::NoRawio | ContainerError::MixedGroups { .. } => Errno::PERM,
            ContainerError::DmaLimit { .. } => Errno::NOSPC,
            ContainerError::Exists { .. } => Errno::EXIST,
            ContainerError::NoIommuDriver { .. }
            | ContainerError::SetIommuState
            | ContainerError::OpenType { .. }
            | ContainerError::GroupInContainer { .. }
            | ContainerError::GroupNotInContainer { .. } => Errno::INVAL,
        }
    }
}
