//! Typed commands from the raw bytes of each VFIO ioctl, with exactly Linux's errnos.
//!
//! The emulated `/dev/vfio/vfio` (container), `/dev/vfio/N` (group), device fds and
//! `/dev/vfio/devices/vfioX` (cdev) receive `ioctl(request, arg)`. Linux's handlers
//! (`drivers/vfio/container.c`, `group.c`, `device_cdev.c`, `vfio_main.c`, `vfio_iommu_type1.c`,
//! `pci/vfio_pci_core.c`, and iommufd's compat layer `drivers/iommu/iommufd/vfio_compat.c`) check
//! the argument before they touch any state: `argsz` against `minsz` (`EINVAL`; VFIO copies only
//! `minsz` bytes and uses a larger `argsz` as the room for capability chains, so a longer `argsz`
//! is never `E2BIG` — except `VFIO_DEVICE_BIND_IOMMUFD`, which reads with
//! `copy_struct_from_user()`), unknown flags (`EINVAL`), ranges, overflow (`EOVERFLOW`).
//!
//! Each command group has a file: [`container`] (`/dev/vfio/vfio` and `VFIO_IOMMU_GET_INFO`),
//! [`type1`] (`VFIO_IOMMU_MAP_DMA`, `VFIO_IOMMU_UNMAP_DMA`), [`group`] (`/dev/vfio/N`), [`cdev`]
//! (bind / attach / detach), [`device`] (device fd info, region info, IRQ info, reset, and the
//! dispatch of every device-fd request), [`irqs`] (`VFIO_DEVICE_SET_IRQS` and
//! `vfio_set_irqs_validate_and_prepare()`), [`caps`] (capability chains), [`error`]
//! ([`UapiError`]).
//!
//! Each decoder applies the checks in Linux's order and quotes the kernel line above the code that
//! mirrors it. A check that Linux makes only after it has looked at some state (the container's
//! page size, the number of IRQs of an index, whether the device supports PASID) is either a
//! parameter of the decoder (when Linux makes it before anything can fail on state) or a method
//! of the typed command, named after the kernel function, for the handler to call at the point
//! where Linux calls it. Each `encode_reply`/`reply` writes back exactly the bytes the kernel
//! writes back, and fails with `EFAULT` where the kernel's `copy_to_user()` would.
//!
//! uvfio models a 64-bit x86 kernel: `unsigned long` and `size_t` are 64 bits (so Linux's
//! "`__u64` fits in `size_t`" checks never fail), `PAGE_SIZE` is 4 KiB.

pub mod caps;
pub mod cdev;
pub mod container;
pub mod device;
pub mod error;
pub mod group;
pub mod irqs;
pub mod type1;

pub use caps::{CapChain, CapPlacement, cap_headers};
pub use container::{ContainerCmd, ContainerRequest, Extension, container_command, decode_container};
pub use device::{DeviceCmd, DeviceLimits, DeviceRequest, decode_device, device_command};
pub use error::UapiError;
pub use group::{GroupCmd, GroupRequest, decode_group, group_command};

use uvfio_abi::{AbiError, Extensible, check_min_size, declared_size, read_prefix};
use uvfio_types::HostVa;

/// Linux's `PAGE_SIZE` on the modelled host (x86-64, 4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// x86-64's `TASK_SIZE_MAX` with 4-level paging, `(1 << 47) - PAGE_SIZE`: `access_ok(addr, size)`
/// holds when `addr + size` does not overflow and does not pass it.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - PAGE_SIZE;

/// The third argument of `ioctl()`, as the kernel's `unsigned long arg` sees it.
///
/// Most VFIO requests take a pointer to a struct; `VFIO_CHECK_EXTENSION` and `VFIO_SET_IOMMU`
/// take a number (`switch (arg)`), and `VFIO_GET_API_VERSION`, `VFIO_GROUP_UNSET_CONTAINER` and
/// `VFIO_DEVICE_RESET` ignore it. A caller that passes a buffer to a number request gives the
/// buffer's address as the number, exactly as in C; a number given to a pointer request is an
/// address the emulated kernel cannot read (`EFAULT`).
#[derive(Debug)]
pub enum IoctlArg<'a> {
    /// `arg` used as a number.
    Value(u64),
    /// `arg` as a pointer: the caller's bytes it points to.
    Buffer(&'a mut [u8]),
}

impl IoctlArg<'_> {
    /// `arg` as a number: the value, or the buffer's address.
    pub fn value(&self) -> u64 {
        match self {
            Self::Value(value) => *value,
            Self::Buffer(bytes) => HostVa::from_ptr(bytes.as_ptr()).raw(),
        }
    }

    /// The caller's bytes `arg` points to (`EFAULT` for a plain number).
    pub fn bytes(&self, cmd: &'static str) -> Result<&[u8], UapiError> {
        match self {
            Self::Value(value) => Err(UapiError::NotAPointer { cmd, value: *value }),
            Self::Buffer(bytes) => Ok(bytes),
        }
    }

    /// The caller's bytes `arg` points to, for writing a reply (`EFAULT` for a plain number).
    pub fn bytes_mut(&mut self, cmd: &'static str) -> Result<&mut [u8], UapiError> {
        match self {
            Self::Value(value) => Err(UapiError::NotAPointer { cmd, value: *value }),
            Self::Buffer(bytes) => Ok(bytes),
        }
    }
}

/// How a request uses its `arg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// Not looked at.
    None,
    /// A number (`unsigned long`).
    Value,
    /// A pointer to the caller's bytes.
    Pointer,
}

/// A pointer into the caller's memory carried by a command (`token_uuid_ptr`, a dirty bitmap's
/// `data`): the decoders never dereference it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UserPtr(pub u64);

impl UserPtr {
    /// Whether the pointer is `NULL`.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// What every VFIO handler does first:
///
/// ```c
/// if (copy_from_user(&info, arg, minsz))
///         return -EFAULT;
/// if (info.argsz < minsz)
///         return -EINVAL;
/// ```
///
/// with `minsz = T::MIN_SIZE`: exactly `minsz` bytes are read (fields past them read as zero),
/// before `argsz` is looked at. (`uvfio_abi::read_extensible` with `Tail::Ignored` checks `argsz`
/// first and reads up to `min(argsz, sizeof)` bytes, which changes the errno for a caller whose
/// buffer is shorter than `minsz`, or shorter than a struct whose later fields the handler reads
/// only on a flag; VFIO's order is kept here, with the same abi helpers.)
pub(crate) fn copy_minsz<T: Extensible>(bytes: &[u8]) -> Result<T, UapiError> {
    let head = bytes.get(..T::MIN_SIZE).ok_or(AbiError::Fault {
        len: bytes.len(),
        needed: T::MIN_SIZE,
    })?;
    let value: T = read_prefix(head);
    check_min_size(T::NAME, declared_size(head)?, T::MIN_SIZE)?;
    Ok(value)
}

/// Linux `copy_from_user(dst, arg + offset, len)`: `len` bytes of the caller's buffer at `offset`
/// (`EFAULT` past its end).
pub(crate) fn copy_from_user(bytes: &[u8], offset: usize, len: usize) -> Result<&[u8], UapiError> {
    let end = offset.saturating_add(len);
    bytes.get(offset..end).ok_or(UapiError::Abi(AbiError::Fault {
        len: bytes.len(),
        needed: end,
    }))
}

/// Linux `copy_to_user(arg + offset, src, src.len())` (`EFAULT` past the end of the caller's
/// buffer; nothing is written then).
pub(crate) fn copy_to_user(user: &mut [u8], offset: usize, src: &[u8]) -> Result<(), UapiError> {
    let end = offset.saturating_add(src.len());
    let have = user.len();
    let dst = user.get_mut(offset..end).ok_or(AbiError::Fault {
        len: have,
        needed: end,
    })?;
    dst.copy_from_slice(src);
    Ok(())
}
