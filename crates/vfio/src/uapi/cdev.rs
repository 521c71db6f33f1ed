//! The cdev path, `/dev/vfio/devices/vfioX`: `VFIO_DEVICE_BIND_IOMMUFD`,
//! `VFIO_DEVICE_ATTACH_IOMMUFD_PT` and `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`drivers/vfio/device_cdev.c`).
//!
//! `vfio_device_fops_unl_ioctl()` (`drivers/vfio/vfio_main.c`) routes them: BIND before anything
//! else, then `if (!smp_load_acquire(&df->access_granted)) return -EINVAL;` for every other
//! request, then ATTACH and DETACH only on a cdev fd (`!df->group`; on a device fd from a group
//! they fall through to the driver, whose `default:` is `-ENOTTY`).

use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_BIND_FLAG_TOKEN, VFIO_DEVICE_DETACH_PASID,
    VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd, VfioDeviceDetachIommufdPt,
};
use uvfio_abi::{Tail, read_extensible};

use super::{UapiError, UserPtr, copy_from_user, copy_minsz, copy_to_user};

/// A decoded `VFIO_DEVICE_BIND_IOMMUFD` (`struct vfio_device_bind_iommufd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindIommufd {
    /// The iommufd to bind to, not negative.
    pub iommufd: i32,
    /// With `VFIO_DEVICE_BIND_FLAG_TOKEN`: where the 16-byte VF token UUID is. A device without a
    /// token check (`match_token_uuid`) refuses the flag with `EINVAL`, after the bind's state
    /// checks; reading the UUID can fail with `EFAULT`.
    pub token: Option<UserPtr>,
}

impl BindIommufd {
    /// Decodes the caller's bytes as `vfio_df_ioctl_bind_iommufd()` does. This ioctl reads with
    /// `copy_struct_from_user()`: bytes past the struct, up to `argsz`, must be zero (`E2BIG`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // minsz = offsetofend(struct vfio_device_bind_iommufd, out_devid);
        // ret = get_user(user_size, &arg->argsz); if (ret) return ret;
        // if (user_size < minsz) return -EINVAL;
        // ret = copy_struct_from_user(&bind, sizeof(bind), arg, user_size); if (ret) return ret;
        let bind: VfioDeviceBindIommufd = read_extensible(bytes, Tail::MustBeZero)?;
        // if (bind.iommufd < 0 || bind.flags & ~VALID_FLAGS) return -EINVAL;
        if bind.iommufd < 0 {
            return Err(UapiError::NegativeFd {
                cmd: "bind_iommufd",
                fd: bind.iommufd,
            });
        }
        if bind.flags & !VFIO_DEVICE_BIND_FLAG_TOKEN != 0 {
            return Err(UapiError::UnknownFlags {
                cmd: "bind_iommufd",
                flags: bind.flags & !VFIO_DEVICE_BIND_FLAG_TOKEN,
            });
        }
        Ok(Self {
            iommufd: bind.iommufd,
            token: (bind.flags & VFIO_DEVICE_BIND_FLAG_TOKEN != 0).then_some(UserPtr(bind.token_uuid_ptr)),
        })
    }

    /// Writes the reply: `copy_to_user(&arg->out_devid, &df->devid, sizeof(df->devid))`, only
    /// `out_devid`.
    pub fn encode_reply(&self, out_devid: u32, user: &mut [u8]) -> Result<(), UapiError> {
        copy_to_user(
            user,
            std::mem::offset_of!(VfioDeviceBindIommufd, out_devid),
            &out_devid.to_ne_bytes(),
        )
    }
}

/// A decoded `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (`struct vfio_device_attach_iommufd_pt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachIommufdPt {
    /// The IOAS or HWPT to attach to.
    pub pt_id: u32,
    /// With `VFIO_DEVICE_ATTACH_PASID`: the PASID to attach instead of the whole device.
    pub pasid: Option<u32>,
}

impl AttachIommufdPt {
    /// Decodes the caller's bytes as `vfio_df_ioctl_attach_pt()` does; `pasid_capable` says
    /// whether the device has `pasid_attach_ioas` (without it the PASID flag is `EOPNOTSUPP`).
    pub fn decode(bytes: &[u8], pasid_capable: bool) -> Result<Self, UapiError> {
        // minsz = offsetofend(struct vfio_device_attach_iommufd_pt, pt_id);
        // if (copy_from_user(&attach, arg, minsz)) return -EFAULT;
        // if (attach.argsz < minsz) return -EINVAL;
        let attach: VfioDeviceAttachIommufdPt = copy_minsz(bytes)?;
        let pasid = decode_pasid(
            "attach_iommufd_pt",
            bytes,
            attach.argsz,
            attach.flags,
            VFIO_DEVICE_ATTACH_PASID,
            std::mem::offset_of!(VfioDeviceAttachIommufdPt, pasid),
            pasid_capable,
        )?;
        Ok(Self {
            pt_id: attach.pt_id,
            pasid,
        })
    }

    /// Writes the reply: `copy_to_user(&arg->pt_id, &attach.pt_id, sizeof(attach.pt_id))`, the
    /// id of the HWPT the device is now attached to (an automatic one when `pt_id` named an IOAS).
    pub fn encode_reply(&self, pt_id: u32, user: &mut [u8]) -> Result<(), UapiError> {
        copy_to_user(
            user,
            std::mem::offset_of!(VfioDeviceAttachIommufdPt, pt_id),
            &pt_id.to_ne_bytes(),
        )
    }
}

/// A decoded `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`struct vfio_device_detach_iommufd_pt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetachIommufdPt {
    /// With `VFIO_DEVICE_DETACH_PASID`: the PASID to detach instead of the whole device.
    pub pasid: Option<u32>,
}

impl DetachIommufdPt {
    /// Decodes the caller's bytes as `vfio_df_ioctl_detach_pt()` does; `pasid_capable` says
    /// whether the device has `pasid_detach_ioas`.
    pub fn decode(bytes: &[u8], pasid_capable: bool) -> Result<Self, UapiError> {
        // minsz = offsetofend(struct vfio_device_detach_iommufd_pt, flags);
        // if (copy_from_user(&detach, arg, minsz)) return -EFAULT;
        // if (detach.argsz < minsz) return -EINVAL;
        let detach: VfioDeviceDetachIommufdPt = copy_minsz(bytes)?;
        let pasid = decode_pasid(
            "detach_iommufd_pt",
            bytes,
            detach.argsz,
            detach.flags,
            VFIO_DEVICE_DETACH_PASID,
            std::mem::offset_of!(VfioDeviceDetachIommufdPt, pasid),
            pasid_capable,
        )?;
        Ok(Self { pasid })
    }
}

/// The flag and PASID checks attach and detach share.
fn decode_pasid(
    cmd: &'static str,
    bytes: &[u8],
    argsz: u32,
    flags: u32,
    pasid_flag: u32,
    pasid_offset: usize,
    pasid_capable: bool,
) -> Result<Option<u32>, UapiError> {
    // if (attach.flags & ~VFIO_DEVICE_ATTACH_PASID) return -EINVAL;
    if flags & !pasid_flag != 0 {
        return Err(UapiError::UnknownFlags {
            cmd,
            flags: flags & !pasid_flag,
        });
    }
    if flags & pasid_flag == 0 {
        return Ok(None);
    }
    // if (attach.flags & VFIO_DEVICE_ATTACH_PASID) {
    //         if (!device->ops->pasid_attach_ioas) return -EOPNOTSUPP;
    //         xend = offsetofend(struct vfio_device_attach_iommufd_pt, pasid);
    // }
    if !pasid_capable {
        return Err(UapiError::PasidNotSupported { cmd });
    }
    let xend = pasid_offset + size_of::<u32>();
    // if (xend) {
    //         if (attach.argsz < xend) return -EINVAL;
    if (argsz as usize) < xend {
        return Err(UapiError::ArgszTooSmall {
            cmd,
            argsz,
            needed: xend as u64,
        });
    }
    //         if (copy_from_user((void *)&attach + minsz, (void __user *)arg + minsz, xend - minsz))
    //                 return -EFAULT;
    let raw = copy_from_user(bytes, pasid_offset, size_of::<u32>())?;
    Ok(Some(u32::from_ne_bytes(
        <[u8; 4]>::try_from(raw).unwrap_or_default(),
    )))
}
