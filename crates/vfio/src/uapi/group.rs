//! The group, `/dev/vfio/N`: `vfio_group_fops_unl_ioctl()` of `drivers/vfio/group.c`.
//!
//! ```c
//! switch (cmd) {
//! case VFIO_GROUP_GET_DEVICE_FD:   return vfio_group_ioctl_get_device_fd(group, uarg);
//! case VFIO_GROUP_GET_STATUS:      return vfio_group_ioctl_get_status(group, uarg);
//! case VFIO_GROUP_SET_CONTAINER:   return vfio_group_ioctl_set_container(group, uarg);
//! case VFIO_GROUP_UNSET_CONTAINER: return vfio_group_ioctl_unset_container(group);
//! default:                         return -ENOTTY;
//! }
//! ```

use uvfio_abi::AbiError;
use uvfio_abi::vfio::{
    VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER,
    VfioGroupStatus,
};
use zerocopy::IntoBytes;

use super::{ArgKind, IoctlArg, PAGE_SIZE, UapiError, copy_from_user, copy_minsz, copy_to_user};

/// A request the group file serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupRequest {
    /// `VFIO_GROUP_GET_STATUS`.
    GetStatus,
    /// `VFIO_GROUP_SET_CONTAINER`.
    SetContainer,
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    UnsetContainer,
    /// `VFIO_GROUP_GET_DEVICE_FD`.
    GetDeviceFd,
}

/// The group request `request` names, or `None` (`ENOTTY`).
pub fn group_command(request: u32) -> Option<GroupRequest> {
    Some(match request {
        VFIO_GROUP_GET_STATUS => GroupRequest::GetStatus,
        VFIO_GROUP_SET_CONTAINER => GroupRequest::SetContainer,
        VFIO_GROUP_UNSET_CONTAINER => GroupRequest::UnsetContainer,
        VFIO_GROUP_GET_DEVICE_FD => GroupRequest::GetDeviceFd,
        _ => return None,
    })
}

impl GroupRequest {
    /// The request number.
    pub fn request(self) -> u32 {
        match self {
            Self::GetStatus => VFIO_GROUP_GET_STATUS,
            Self::SetContainer => VFIO_GROUP_SET_CONTAINER,
            Self::UnsetContainer => VFIO_GROUP_UNSET_CONTAINER,
            Self::GetDeviceFd => VFIO_GROUP_GET_DEVICE_FD,
        }
    }

    /// The short name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetStatus => "group_get_status",
            Self::SetContainer => "group_set_container",
            Self::UnsetContainer => "group_unset_container",
            Self::GetDeviceFd => "group_get_device_fd",
        }
    }

    /// How the request uses its `arg` (`SET_CONTAINER` takes a pointer to an `int`).
    pub fn arg_kind(self) -> ArgKind {
        match self {
            Self::UnsetContainer => ArgKind::None,
            Self::GetStatus | Self::SetContainer | Self::GetDeviceFd => ArgKind::Pointer,
        }
    }
}

/// A decoded group command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCmd {
    /// `VFIO_GROUP_GET_STATUS`.
    GetStatus(GroupGetStatus),
    /// `VFIO_GROUP_SET_CONTAINER` with the container (or iommufd) fd, not negative.
    SetContainer {
        /// The fd.
        fd: i32,
    },
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    UnsetContainer,
    /// `VFIO_GROUP_GET_DEVICE_FD` for the device of this name.
    GetDeviceFd(DeviceName),
}

/// Decodes a group ioctl: the request (`ENOTTY` if unknown), then its argument.
pub fn decode_group(request: u32, arg: &IoctlArg<'_>) -> Result<GroupCmd, UapiError> {
    let req = group_command(request).ok_or(UapiError::UnknownRequest { request })?;
    Ok(match req {
        GroupRequest::GetStatus => GroupCmd::GetStatus(GroupGetStatus::decode(arg.bytes(req.name())?)?),
        GroupRequest::SetContainer => GroupCmd::SetContainer {
            fd: decode_set_container(arg.bytes(req.name())?)?,
        },
        GroupRequest::UnsetContainer => GroupCmd::UnsetContainer,
        GroupRequest::GetDeviceFd => GroupCmd::GetDeviceFd(DeviceName::decode(arg.bytes(req.name())?)?),
    })
}

/// A decoded `VFIO_GROUP_GET_STATUS` (`struct vfio_group_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupGetStatus {
    /// The kernel's copy of the caller's struct.
    user: VfioGroupStatus,
}

impl GroupGetStatus {
    /// Decodes the caller's bytes as `vfio_group_ioctl_get_status()` does.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // unsigned long minsz = offsetofend(struct vfio_group_status, flags);
        // if (copy_from_user(&status, arg, minsz)) return -EFAULT;
        // if (status.argsz < minsz) return -EINVAL;
        Ok(Self {
            user: copy_minsz(bytes)?,
        })
    }

    /// Writes the reply: the caller's `argsz` and `flags` (`VFIO_GROUP_FLAGS_*`), `minsz` bytes.
    /// The handler reports `ENODEV` first when the group has lost its IOMMU group.
    pub fn encode_reply(&self, flags: u32, user: &mut [u8]) -> Result<(), UapiError> {
        let status = VfioGroupStatus {
            argsz: self.user.argsz,
            flags,
        };
        // if (copy_to_user(arg, &status, minsz)) return -EFAULT;
        copy_to_user(user, 0, status.as_bytes())
    }
}

/// The argument of `VFIO_GROUP_SET_CONTAINER`, as `vfio_group_ioctl_set_container()` reads it.
pub fn decode_set_container(bytes: &[u8]) -> Result<i32, UapiError> {
    // if (get_user(fd, arg)) return -EFAULT;
    let raw = copy_from_user(bytes, 0, size_of::<i32>())?;
    let fd = i32::from_ne_bytes(<[u8; 4]>::try_from(raw).unwrap_or_default());
    // CLASS(fd, f)(fd); if (fd_empty(f)) return -EBADF;
    // (a negative number never names an open file; other fds are the host's to look up)
    if fd < 0 {
        return Err(UapiError::BadFd {
            cmd: "group_set_container",
            fd,
        });
    }
    Ok(fd)
}

/// The longest device name `VFIO_GROUP_GET_DEVICE_FD` accepts, NUL included
/// (`strndup_user(arg, PAGE_SIZE)`).
pub const DEVICE_NAME_MAX: usize = PAGE_SIZE as usize;

/// The device name of `VFIO_GROUP_GET_DEVICE_FD`, without its NUL.
///
/// Linux compares it with `dev_name()` (or hands it to the driver's `match`, which for vfio-pci
/// also parses a `vf_token=UUID` option after the PCI name); names are bytes, not necessarily
/// UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceName(Box<[u8]>);

impl DeviceName {
    /// Reads the NUL-terminated name at the start of `bytes` as `strndup_user(arg, PAGE_SIZE)`
    /// does: `EFAULT` if the caller's bytes end before a NUL (and before `PAGE_SIZE` bytes),
    /// `EINVAL` if the first `PAGE_SIZE` bytes hold no NUL.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // length = strnlen_user(s, n);   (the length including the NUL; > n if none in n bytes)
        let window = &bytes[..bytes.len().min(DEVICE_NAME_MAX)];
        match window.iter().position(|&b| b == 0) {
            Some(nul) => Ok(Self(window[..nul].into())),
            // if (length > n) return ERR_PTR(-EINVAL);
            None if window.len() == DEVICE_NAME_MAX => Err(UapiError::NameTooLong { max: DEVICE_NAME_MAX }),
            // if (!length) return ERR_PTR(-EFAULT);
            None => Err(UapiError::Abi(AbiError::Fault {
                len: bytes.len(),
                needed: bytes.len() + 1,
            })),
        }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as text, if it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}
