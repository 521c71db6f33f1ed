//! The device fd (from `VFIO_GROUP_GET_DEVICE_FD`, or a cdev): the dispatch of every request it
//! serves, and `VFIO_DEVICE_GET_INFO`, `VFIO_DEVICE_GET_REGION_INFO`, `VFIO_DEVICE_GET_IRQ_INFO`,
//! `VFIO_DEVICE_RESET` (`drivers/vfio/vfio_main.c`, `drivers/vfio/pci/vfio_pci_core.c`).
//!
//! `vfio_device_fops_unl_ioctl()` runs, in this order: `VFIO_DEVICE_BIND_IOMMUFD` (any fd; on a
//! device fd from a group it fails with `EINVAL` after decoding); `if
//! (!smp_load_acquire(&df->access_granted)) return -EINVAL;` — so on a cdev that is not bound yet
//! every other request, known or not, is `EINVAL`, which the host checks before calling
//! [`decode_device`]; the cdev-only `ATTACH`/`DETACH_IOMMUFD_PT`; `VFIO_DEVICE_GET_REGION_INFO`
//! (decoded by the core since Linux 6.19: `vfio_get_region_info()`); `VFIO_DEVICE_FEATURE`; then the
//! driver's `ioctl`, whose `default:` is `-ENOTTY`.

use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT,
    VFIO_DEVICE_FLAGS_CAPS, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_RESET, VFIO_DEVICE_SET_IRQS, VFIO_REGION_INFO_FLAG_CAPS, VfioDeviceInfo, VfioIrqInfo,
    VfioRegionInfo,
};
use zerocopy::IntoBytes;

use super::cdev::{AttachIommufdPt, BindIommufd, DetachIommufdPt};
use super::irqs::SetIrqs;
use super::{ArgKind, CapChain, CapPlacement, IoctlArg, UapiError, copy_minsz, copy_to_user};

/// A request a device fd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRequest {
    /// `VFIO_DEVICE_BIND_IOMMUFD` (cdev).
    BindIommufd,
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (cdev).
    AttachIommufdPt,
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (cdev).
    DetachIommufdPt,
    /// `VFIO_DEVICE_GET_INFO`.
    GetInfo,
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    GetRegionInfo,
    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    GetIrqInfo,
    /// `VFIO_DEVICE_SET_IRQS`.
    SetIrqs,
    /// `VFIO_DEVICE_RESET`.
    Reset,
}

/// The device request `request` names, or `None` (`ENOTTY`, once access is granted).
pub fn device_command(request: u32) -> Option<DeviceRequest> {
    Some(match request {
        VFIO_DEVICE_BIND_IOMMUFD => DeviceRequest::BindIommufd,
        VFIO_DEVICE_ATTACH_IOMMUFD_PT => DeviceRequest::AttachIommufdPt,
        VFIO_DEVICE_DETACH_IOMMUFD_PT => DeviceRequest::DetachIommufdPt,
        VFIO_DEVICE_GET_INFO => DeviceRequest::GetInfo,
        VFIO_DEVICE_GET_REGION_INFO => DeviceRequest::GetRegionInfo,
        VFIO_DEVICE_GET_IRQ_INFO => DeviceRequest::GetIrqInfo,
        VFIO_DEVICE_SET_IRQS => DeviceRequest::SetIrqs,
        VFIO_DEVICE_RESET => DeviceRequest::Reset,
        _ => return None,
    })
}

impl DeviceRequest {
    /// The request number.
    pub fn request(self) -> u32 {
        match self {
            Self::BindIommufd => VFIO_DEVICE_BIND_IOMMUFD,
            Self::AttachIommufdPt => VFIO_DEVICE_ATTACH_IOMMUFD_PT,
            Self::DetachIommufdPt => VFIO_DEVICE_DETACH_IOMMUFD_PT,
            Self::GetInfo => VFIO_DEVICE_GET_INFO,
            Self::GetRegionInfo => VFIO_DEVICE_GET_REGION_INFO,
            Self::GetIrqInfo => VFIO_DEVICE_GET_IRQ_INFO,
            Self::SetIrqs => VFIO_DEVICE_SET_IRQS,
            Self::Reset => VFIO_DEVICE_RESET,
        }
    }

    /// The short name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::BindIommufd => "bind_iommufd",
            Self::AttachIommufdPt => "attach_iommufd_pt",
            Self::DetachIommufdPt => "detach_iommufd_pt",
            Self::GetInfo => "device_get_info",
            Self::GetRegionInfo => "device_get_region_info",
            Self::GetIrqInfo => "device_get_irq_info",
            Self::SetIrqs => "set_irqs",
            Self::Reset => "device_reset",
        }
    }

    /// How the request uses its `arg`.
    pub fn arg_kind(self) -> ArgKind {
        match self {
            Self::Reset => ArgKind::None,
            _ => ArgKind::Pointer,
        }
    }

    /// Whether only a cdev fd serves the request (on a device fd from a group, ATTACH and DETACH
    /// reach the driver, which answers `ENOTTY`; BIND is decoded, then refused with `EINVAL`).
    pub fn cdev_only(self) -> bool {
        matches!(
            self,
            Self::BindIommufd | Self::AttachIommufdPt | Self::DetachIommufdPt
        )
    }

    /// Whether the request is served before access is granted (only BIND).
    pub fn before_access(self) -> bool {
        self == Self::BindIommufd
    }
}

/// What the decoders need to know about a device: the values Linux's handlers read from the
/// device before they can fail on anything else.
pub trait DeviceLimits {
    /// The number of IRQ indexes (`VFIO_PCI_NUM_IRQS` for vfio-pci), the `max_irq_type` of
    /// `VFIO_DEVICE_SET_IRQS` and the bound of `VFIO_DEVICE_GET_IRQ_INFO`.
    fn num_irq_indexes(&self) -> u32;
    /// The IRQs of `index`, 0 for an index the device does not have
    /// (`vfio_pci_get_irq_count()`).
    fn irq_count(&self, index: u32) -> u32;
    /// Whether the device can attach a PASID (`pasid_attach_ioas` / `pasid_detach_ioas`).
    fn pasid_capable(&self) -> bool;
}

/// A decoded device command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCmd {
    /// `VFIO_DEVICE_BIND_IOMMUFD`.
    BindIommufd(BindIommufd),
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
    AttachIommufdPt(AttachIommufdPt),
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`.
    DetachIommufdPt(DetachIommufdPt),
    /// `VFIO_DEVICE_GET_INFO`.
    GetInfo(GetDeviceInfo),
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    GetRegionInfo(GetRegionInfo),
    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    GetIrqInfo(GetIrqInfo),
    /// `VFIO_DEVICE_SET_IRQS`.
    SetIrqs(SetIrqs),
    /// `VFIO_DEVICE_RESET` (no argument; a device that cannot reset answers `EINVAL`).
    Reset,
}

/// Decodes a device ioctl: the request (`ENOTTY` if unknown), then its argument as the request's
/// handler reads it. The host checks `access_granted` first for every request but BIND.
pub fn decode_device(
    request: u32,
    arg: &IoctlArg<'_>,
    limits: &dyn DeviceLimits,
) -> Result<DeviceCmd, UapiError> {
    let req = device_command(request).ok_or(UapiError::UnknownRequest { request })?;
    if req == DeviceRequest::Reset {
        return Ok(DeviceCmd::Reset);
    }
    let bytes = arg.bytes(req.name())?;
    Ok(match req {
        DeviceRequest::BindIommufd => DeviceCmd::BindIommufd(BindIommufd::decode(bytes)?),
        DeviceRequest::AttachIommufdPt => {
            DeviceCmd::AttachIommufdPt(AttachIommufdPt::decode(bytes, limits.pasid_capable())?)
        }
        DeviceRequest::DetachIommufdPt => {
            DeviceCmd::DetachIommufdPt(DetachIommufdPt::decode(bytes, limits.pasid_capable())?)
        }
        DeviceRequest::GetInfo => DeviceCmd::GetInfo(GetDeviceInfo::decode(bytes)?),
        DeviceRequest::GetRegionInfo => DeviceCmd::GetRegionInfo(GetRegionInfo::decode(bytes)?),
        DeviceRequest::GetIrqInfo => {
            DeviceCmd::GetIrqInfo(GetIrqInfo::decode(bytes, limits.num_irq_indexes())?)
        }
        DeviceRequest::SetIrqs => {
            DeviceCmd::SetIrqs(SetIrqs::decode(bytes, limits.num_irq_indexes(), |index| {
                limits.irq_count(index)
            })?)
        }
        DeviceRequest::Reset => DeviceCmd::Reset,
    })
}

/// A decoded `VFIO_DEVICE_GET_INFO` (`struct vfio_device_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetDeviceInfo {
    /// The caller's `argsz`: room for the struct and its capability chain.
    pub argsz: u32,
}

/// What a device reports in `VFIO_DEVICE_GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*` (`CAPS` is added by the reply when there are capabilities).
    pub flags: u32,
    /// "Max region index + 1".
    pub num_regions: u32,
    /// "Max IRQ index + 1".
    pub num_irqs: u32,
}

impl GetDeviceInfo {
    /// Decodes the caller's bytes as vfio-pci's `vfio_pci_ioctl_get_info()` does.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
        // if (copy_from_user(&info, arg, minsz)) return -EFAULT;
        // if (info.argsz < minsz) return -EINVAL;
        let info: VfioDeviceInfo = copy_minsz(bytes)?;
        Ok(Self { argsz: info.argsz })
    }

    /// Writes the reply as `vfio_pci_ioctl_get_info()` does: the chain placed by
    /// [`CapChain::place`] (`CAPS` set whenever it is not empty, `argsz` raised when it does not
    /// fit), then `min(argsz, sizeof(info))` bytes of the struct.
    pub fn encode_reply(&self, info: &DeviceInfo, caps: &CapChain, user: &mut [u8]) -> Result<(), UapiError> {
        let info_size = size_of::<VfioDeviceInfo>();
        // minsz = min_t(size_t, info.argsz, sizeof(info));
        let minsz = (self.argsz as usize).min(info_size);
        let placed = caps.place(info_size, self.argsz, user)?;
        let mut reply = VfioDeviceInfo {
            argsz: placed.argsz(self.argsz),
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
            cap_offset: 0,
            pad: 0,
        };
        if placed.has_caps() {
            // info.flags |= VFIO_DEVICE_FLAGS_CAPS;
            reply.flags |= VFIO_DEVICE_FLAGS_CAPS;
        }
        if let CapPlacement::Written { cap_offset } = placed {
            reply.cap_offset = cap_offset;
        }
        // return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
        copy_to_user(user, 0, &reply.as_bytes()[..minsz])
    }
}

/// A decoded `VFIO_DEVICE_GET_REGION_INFO` (`struct vfio_region_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetRegionInfo {
    /// The region asked about, not yet checked against the device.
    pub index: u32,
    /// The caller's `argsz`: room for the struct and its capability chain.
    pub argsz: u32,
    /// The kernel's copy of the caller's struct (`info = {}` then `minsz` bytes copied in).
    user: VfioRegionInfo,
}

/// What a device reports for a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// `VFIO_REGION_INFO_FLAG_*` (`CAPS` is added by the reply when there are capabilities).
    pub flags: u32,
    /// "Region size (bytes)"; 0 for an unimplemented region.
    pub size: u64,
    /// "Region offset from start of device fd".
    pub offset: u64,
}

impl GetRegionInfo {
    /// Decodes the caller's bytes as the core's `vfio_get_region_info()` does (which first
    /// answers `EINVAL` for a driver without a region-info op).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // unsigned long minsz = offsetofend(struct vfio_region_info, offset);
        // if (copy_from_user(&info, arg, minsz)) return -EFAULT;
        // if (info.argsz < minsz) return -EINVAL;
        let user: VfioRegionInfo = copy_minsz(bytes)?;
        Ok(Self {
            index: user.index,
            argsz: user.argsz,
            user,
        })
    }

    /// vfio-pci's range check of the index (`default:` of its switch):
    /// `if (info.index >= VFIO_PCI_NUM_REGIONS + vdev->num_regions) return -EINVAL;`. (vfio-pci
    /// also refuses the VGA index of a device without VGA, `EINVAL`.)
    pub fn check_index(&self, num_regions: u32) -> Result<(), UapiError> {
        if self.index >= num_regions {
            return Err(UapiError::RegionIndex {
                index: self.index,
                max: num_regions,
            });
        }
        Ok(())
    }

    /// Writes the reply as `vfio_get_region_info()` does: the chain placed by
    /// [`CapChain::place`] (`CAPS` set whenever it is not empty; when it does not fit, `argsz`
    /// raised and `cap_offset` 0), then the 32-byte struct — whose `index`, and `cap_offset` when
    /// there are no capabilities, are the caller's own.
    pub fn encode_reply(&self, info: &RegionInfo, caps: &CapChain, user: &mut [u8]) -> Result<(), UapiError> {
        let info_size = size_of::<VfioRegionInfo>();
        let placed = caps.place(info_size, self.argsz, user)?;
        let mut reply = VfioRegionInfo {
            argsz: placed.argsz(self.argsz),
            flags: info.flags,
            size: info.size,
            offset: info.offset,
            ..self.user
        };
        match placed {
            CapPlacement::NoCaps => {}
            CapPlacement::Written { cap_offset } => {
                reply.flags |= VFIO_REGION_INFO_FLAG_CAPS;
                reply.cap_offset = cap_offset;
            }
            CapPlacement::DoesNotFit { .. } => {
                reply.flags |= VFIO_REGION_INFO_FLAG_CAPS;
                reply.cap_offset = 0;
            }
        }
        // if (copy_to_user(arg, &info, minsz)) return -EFAULT;
        copy_to_user(user, 0, reply.as_bytes())
    }
}

/// A decoded `VFIO_DEVICE_GET_IRQ_INFO` (`struct vfio_irq_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetIrqInfo {
    /// The IRQ index, below the device's number of indexes.
    pub index: u32,
    /// The kernel's copy of the caller's struct.
    user: VfioIrqInfo,
}

impl GetIrqInfo {
    /// Decodes the caller's bytes as vfio-pci's `vfio_pci_ioctl_get_irq_info()` does, with
    /// `num_irq_indexes` for `VFIO_PCI_NUM_IRQS`. (vfio-pci then refuses the ERR index of a
    /// device that is not PCI Express, `EINVAL`.)
    pub fn decode(bytes: &[u8], num_irq_indexes: u32) -> Result<Self, UapiError> {
        // unsigned long minsz = offsetofend(struct vfio_irq_info, count);
        // if (copy_from_user(&info, arg, minsz)) return -EFAULT;
        // if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) return -EINVAL;
        let user: VfioIrqInfo = copy_minsz(bytes)?;
        if user.index >= num_irq_indexes {
            return Err(UapiError::IrqIndex {
                index: user.index,
                max: num_irq_indexes,
            });
        }
        Ok(Self {
            index: user.index,
            user,
        })
    }

    /// Writes the reply: the caller's `argsz` and `index`, `flags` (`VFIO_IRQ_INFO_*`) and `count`,
    /// `minsz` bytes.
    pub fn encode_reply(&self, flags: u32, count: u32, user: &mut [u8]) -> Result<(), UapiError> {
        let reply = VfioIrqInfo {
            flags,
            count,
            ..self.user
        };
        // return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
        copy_to_user(user, 0, reply.as_bytes())
    }
}
