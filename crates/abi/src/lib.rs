//! The Linux VFIO and iommufd user-space ABI, byte for byte.
//!
//! This crate models what a user-space driver hands the kernel: the structs of
//! `include/uapi/linux/vfio.h` ([`vfio`]), `include/uapi/linux/iommufd.h` ([`iommufd`]) and the
//! iommufd selftest command of `drivers/iommu/iommufd/iommufd_test.h` ([`selftest`]), their flag
//! and id constants, and the ioctl request numbers (built with [`io`], Linux `_IO`). Each struct
//! is `#[repr(C)]` and derives zerocopy's `FromBytes`, `IntoBytes`, `Immutable` and `KnownLayout`,
//! so the emulated host reads a request from the raw bytes a driver passed, and writes the answer
//! back, without `unsafe`. [`read_extensible`] and its helpers apply the size rules every handler
//! applies first: a short `argsz` is `EINVAL`, a longer struct with a non-zero tail is `E2BIG`
//! (iommufd), reserved fields must be zero; [`AbiError::errno`] gives Linux's errno. Beside the
//! kernel's, [`vfio_user`] has the messages of the vfio-user protocol (QEMU
//! `docs/interop/vfio-user.rst`) that are not `vfio.h` structs.
//!
//! Why hand-written: rust-vmm's `vfio-bindings` and the `iommufd-bindings` crate are bindgen
//! output, with no zerocopy derives (so reading them from bytes needs `unsafe`), raw C names,
//! unions as `__bindgen_anon` fields, no ioctl request numbers (bindgen cannot expand `_IO`),
//! and no selftest command. They serve here as the oracle instead: the crate's tests compare every
//! struct's size and field offsets with theirs, and the request numbers with `_IO` computed from
//! their constants (or with the kernel header where they lack a struct).
//!
//! Names: structs are the C names in CamelCase (`struct vfio_region_info` is
//! [`vfio::VfioRegionInfo`]); fields keep the C names except `__reserved` → `reserved`,
//! `type` → `type_`, `vfio_iova_range.end` → `last` (it is inclusive), and the anonymous unions
//! of two `__u32`s, which become one named field; where C pads implicitly, a `pad` field makes
//! the bytes explicit (zerocopy requires it). Constants and request numbers keep their C names
//! exactly. Integers are native-endian, as the kernel reads them.
//!
//! Flexible array members (`vfio_irq_set.data[]`, `..._sparse_mmap.areas[]`, ...) are not part of
//! the structs: a struct here is the fixed part, and the array follows it in the caller's bytes.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// Implements [`Extensible`] with `MIN_SIZE = offsetofend(struct, last)`.
macro_rules! extensible {
    ($ty:ty, $name:literal, $last:ident: $last_ty:ty) => {
        impl $crate::Extensible for $ty {
            const NAME: &'static str = $name;
            const MIN_SIZE: usize = ::core::mem::offset_of!($ty, $last) + ::core::mem::size_of::<$last_ty>();
        }
    };
}

mod argsz;
mod ioctl;
pub mod iommufd;
pub mod selftest;
pub mod vfio;
pub mod vfio_user;

pub use argsz::{
    AbiError, Extensible, Tail, check_min_size, check_reserved_zero, check_zero_tail, copy_struct_from_user,
    declared_size, read_extensible, read_prefix, write_prefix,
};
pub use ioctl::{
    IOC_DIRBITS, IOC_DIRSHIFT, IOC_NONE, IOC_NRBITS, IOC_NRSHIFT, IOC_SIZEBITS, IOC_SIZESHIFT, IOC_TYPEBITS,
    IOC_TYPESHIFT, Request, io, ioc_dir, ioc_nr, ioc_size, ioc_type,
};
