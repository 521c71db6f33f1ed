//! Typed commands from the raw bytes of each `/dev/iommu` ioctl, with exactly Linux's errnos.
//!
//! The emulated `/dev/iommu` receives `ioctl(request, &mut [u8])`. Before Linux looks up any
//! object, `iommufd_fops_ioctl()` (`drivers/iommu/iommufd/main.c`) and each handler validate the
//! struct: the size rules of `copy_struct_from_user()` (a declared `size` below the `IOCTL_OP`
//! minimum is `EINVAL`, a longer struct with a non-zero tail is `E2BIG`), unknown flags and
//! non-zero reserved fields (`EOPNOTSUPP`), the `>= ULONG_MAX` overflow checks (`EOVERFLOW`), and
//! so on. [`decode`] applies those checks in Linux's order and returns an [`IommufdCmd`], one
//! typed command per ioctl; `encode_reply` functions write the out fields back the way
//! `iommufd_ucmd_respond()` does.
//!
//! Checks that Linux makes only *after* looking an object up (the `EOVERFLOW` of an
//! `IOMMU_IOAS_UNMAP` range, the flags a paging HWPT accepts, an option's value, ...) cannot run
//! in a decoder without changing which errno wins; they are methods on the typed command
//! ([`ioas::IoasUnmap::target`], [`hwpt::HwptAlloc::check_paging_flags`], ...), each naming the
//! kernel function it mirrors, for the handler to call after its lookup.
//!
//! uvfio models a 64-bit kernel: `unsigned long` is 64 bits, so `ULONG_MAX == u64::MAX`, and
//! `PAGE_SIZE` is 4 KiB.
//!
//! One file per command group: [`ioas`] (the IOAS commands), [`hwpt`] (`IOMMU_HWPT_ALLOC`,
//! `IOMMU_GET_HW_INFO`), [`misc`] (`IOMMU_DESTROY`, `IOMMU_OPTION`, `IOMMU_VFIO_IOAS`),
//! [`selftest`] (`IOMMU_TEST_CMD`), [`dispatch`] (request numbers, minimum sizes, [`decode`]),
//! [`error`] ([`UapiError`]).

pub mod dispatch;
pub mod error;
pub mod hwpt;
pub mod ioas;
pub mod misc;
pub mod selftest;

pub use dispatch::{Command, IommufdCmd, command_of, decode};
pub use error::UapiError;

use uvfio_abi::{AbiError, Extensible, Tail, declared_size, read_extensible, read_prefix, write_prefix};

/// Linux's `PAGE_SIZE` on the modelled host (x86-64, 4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// Linux's `ULONG_MAX` on a 64-bit kernel: the handlers refuse `iova`/`length` values `>=` it.
pub const ULONG_MAX: u64 = u64::MAX;

/// A pointer into the caller's memory, carried by a command for the host to copy from or to
/// (`allowed_iovas`, `data_uptr`, ...): the decoder never dereferences it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UserPtr(pub u64);

impl UserPtr {
    /// Whether the pointer is `NULL`.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// Reads an iommufd command struct out of the caller's bytes, as `iommufd_fops_ioctl()` does:
/// `size` below `T::MIN_SIZE` is `EINVAL`, then `copy_struct_from_user()` (zero-extended if
/// shorter, `E2BIG` if longer with a non-zero tail, `EFAULT` past the end of `bytes`).
pub(crate) fn read_cmd<T: Extensible>(bytes: &[u8]) -> Result<T, UapiError> {
    Ok(read_extensible::<T>(bytes, Tail::MustBeZero)?)
}

/// Linux `iommufd_ucmd_respond(ucmd, sizeof(*cmd))`: the kernel's copy of the command (the
/// caller's bytes, zero-extended), with the out fields `update` sets, written back over
/// `min(size, sizeof(T))` bytes.
pub(crate) fn respond<T: Extensible>(bytes: &mut [u8], update: impl FnOnce(&mut T)) -> Result<(), UapiError> {
    let declared = declared_size(bytes)? as usize;
    let len = declared.min(size_of::<T>());
    let have = bytes.len();
    let user = bytes.get_mut(..len).ok_or(AbiError::Fault {
        len: have,
        needed: len,
    })?;
    let mut cmd: T = read_prefix(user);
    update(&mut cmd);
    write_prefix(&cmd, user);
    Ok(())
}

/// `true` if `value >= ULONG_MAX`, the overflow test of the IOAS handlers (with a 64-bit
/// `unsigned long`, only `u64::MAX` itself).
pub(crate) fn ulong_overflows(value: u64) -> bool {
    value == ULONG_MAX
}
