//! `include/uapi/linux/iommufd.h`: the `/dev/iommu` API. This module holds the command numbers,
//! the request numbers and the IOAS structs; `hwpt` items (HW page tables, hardware info, dirty
//! tracking, invalidation, fault queues) and `viommu` items (vIOMMU, vDEVICE, vEVENTQ, HW queue)
//! are re-exported here.
//!
//! From the header ("General ioctl format"): "Each ioctl is passed in a structure pointer as the
//! argument providing the size of the structure in the first u32. The kernel checks that any
//! structure space beyond what it understands is 0. This allows userspace to use the backward
//! compatible portion while consistently using the newer, larger, structures." Its errno
//! conventions: ENOTTY for an unknown ioctl number; E2BIG for "non-zero in a part the kernel does
//! not understand"; EOPNOTSUPP when "a known field has a value the kernel does not understand or
//! support"; EINVAL when "Everything about the IOCTL was understood, but a field is not correct";
//! ENOENT when "An ID or IOVA provided does not exist"; ENOMEM; EOVERFLOW when "Mathematics
//! overflowed".

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioctl::{Request, io};

mod hwpt;
mod viommu;

pub use hwpt::*;
pub use viommu::*;

/// The ioctl type byte of every iommufd request (`';'`, shared with VFIO).
pub const IOMMUFD_TYPE: u8 = b';';

/// First iommufd command number.
pub const IOMMUFD_CMD_BASE: u8 = 0x80;
/// Command number of `IOMMU_DESTROY`.
pub const IOMMUFD_CMD_DESTROY: u8 = IOMMUFD_CMD_BASE;
/// Command number of `IOMMU_IOAS_ALLOC`.
pub const IOMMUFD_CMD_IOAS_ALLOC: u8 = 0x81;
/// Command number of `IOMMU_IOAS_ALLOW_IOVAS`.
pub const IOMMUFD_CMD_IOAS_ALLOW_IOVAS: u8 = 0x82;
/// Command number of `IOMMU_IOAS_COPY`.
pub const IOMMUFD_CMD_IOAS_COPY: u8 = 0x83;
/// Command number of `IOMMU_IOAS_IOVA_RANGES`.
pub const IOMMUFD_CMD_IOAS_IOVA_RANGES: u8 = 0x84;
/// Command number of `IOMMU_IOAS_MAP`.
pub const IOMMUFD_CMD_IOAS_MAP: u8 = 0x85;
/// Command number of `IOMMU_IOAS_UNMAP`.
pub const IOMMUFD_CMD_IOAS_UNMAP: u8 = 0x86;
/// Command number of `IOMMU_OPTION`.
pub const IOMMUFD_CMD_OPTION: u8 = 0x87;
/// Command number of `IOMMU_VFIO_IOAS`.
pub const IOMMUFD_CMD_VFIO_IOAS: u8 = 0x88;
/// Command number of `IOMMU_HWPT_ALLOC`.
pub const IOMMUFD_CMD_HWPT_ALLOC: u8 = 0x89;
/// Command number of `IOMMU_GET_HW_INFO`.
pub const IOMMUFD_CMD_GET_HW_INFO: u8 = 0x8a;
/// Command number of `IOMMU_HWPT_SET_DIRTY_TRACKING`.
pub const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING: u8 = 0x8b;
/// Command number of `IOMMU_HWPT_GET_DIRTY_BITMAP`.
pub const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP: u8 = 0x8c;
/// Command number of `IOMMU_HWPT_INVALIDATE`.
pub const IOMMUFD_CMD_HWPT_INVALIDATE: u8 = 0x8d;
/// Command number of `IOMMU_FAULT_QUEUE_ALLOC`.
pub const IOMMUFD_CMD_FAULT_QUEUE_ALLOC: u8 = 0x8e;
/// Command number of `IOMMU_IOAS_MAP_FILE`.
pub const IOMMUFD_CMD_IOAS_MAP_FILE: u8 = 0x8f;
/// Command number of `IOMMU_VIOMMU_ALLOC`.
pub const IOMMUFD_CMD_VIOMMU_ALLOC: u8 = 0x90;
/// Command number of `IOMMU_VDEVICE_ALLOC`.
pub const IOMMUFD_CMD_VDEVICE_ALLOC: u8 = 0x91;
/// Command number of `IOMMU_IOAS_CHANGE_PROCESS`.
pub const IOMMUFD_CMD_IOAS_CHANGE_PROCESS: u8 = 0x92;
/// Command number of `IOMMU_VEVENTQ_ALLOC`.
pub const IOMMUFD_CMD_VEVENTQ_ALLOC: u8 = 0x93;
/// Command number of `IOMMU_HW_QUEUE_ALLOC`.
pub const IOMMUFD_CMD_HW_QUEUE_ALLOC: u8 = 0x94;

/// `IOMMU_DESTROY`: "Destroy any object held within iommufd."
pub const IOMMU_DESTROY: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);
/// `IOMMU_IOAS_ALLOC`.
pub const IOMMU_IOAS_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);
/// `IOMMU_IOAS_ALLOW_IOVAS`.
pub const IOMMU_IOAS_ALLOW_IOVAS: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
/// `IOMMU_IOAS_COPY`.
pub const IOMMU_IOAS_COPY: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);
/// `IOMMU_IOAS_IOVA_RANGES`.
pub const IOMMU_IOAS_IOVA_RANGES: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);
/// `IOMMU_IOAS_MAP`.
pub const IOMMU_IOAS_MAP: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);
/// `IOMMU_IOAS_UNMAP`.
pub const IOMMU_IOAS_UNMAP: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);
/// `IOMMU_OPTION`.
pub const IOMMU_OPTION: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);
/// `IOMMU_VFIO_IOAS`.
pub const IOMMU_VFIO_IOAS: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);
/// `IOMMU_HWPT_ALLOC`.
pub const IOMMU_HWPT_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC);
/// `IOMMU_GET_HW_INFO`.
pub const IOMMU_GET_HW_INFO: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);
/// `IOMMU_HWPT_SET_DIRTY_TRACKING`.
pub const IOMMU_HWPT_SET_DIRTY_TRACKING: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);
/// `IOMMU_HWPT_GET_DIRTY_BITMAP`.
pub const IOMMU_HWPT_GET_DIRTY_BITMAP: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);
/// `IOMMU_HWPT_INVALIDATE`.
pub const IOMMU_HWPT_INVALIDATE: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE);
/// `IOMMU_FAULT_QUEUE_ALLOC`.
pub const IOMMU_FAULT_QUEUE_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC);
/// `IOMMU_IOAS_MAP_FILE`.
pub const IOMMU_IOAS_MAP_FILE: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE);
/// `IOMMU_VIOMMU_ALLOC`.
pub const IOMMU_VIOMMU_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC);
/// `IOMMU_VDEVICE_ALLOC`.
pub const IOMMU_VDEVICE_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC);
/// `IOMMU_IOAS_CHANGE_PROCESS`.
pub const IOMMU_IOAS_CHANGE_PROCESS: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS);
/// `IOMMU_VEVENTQ_ALLOC`.
pub const IOMMU_VEVENTQ_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC);
/// `IOMMU_HW_QUEUE_ALLOC`.
pub const IOMMU_HW_QUEUE_ALLOC: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC);

/// Argument of `IOMMU_DESTROY` (`struct iommu_destroy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuDestroy {
    /// "sizeof(struct iommu_destroy)".
    pub size: u32,
    /// "iommufd object ID to destroy. Can be any destroyable object type."
    pub id: u32,
}
extensible!(IommuDestroy, "iommu_destroy", id: u32);

/// Argument of `IOMMU_IOAS_ALLOC` (`struct iommu_ioas_alloc`): "Allocate an IO Address Space
/// (IOAS) which holds an IO Virtual Address (IOVA) to memory mapping."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasAlloc {
    /// "sizeof(struct iommu_ioas_alloc)".
    pub size: u32,
    /// "Must be 0".
    pub flags: u32,
    /// "Output IOAS ID for the allocated object".
    pub out_ioas_id: u32,
}
extensible!(IommuIoasAlloc, "iommu_ioas_alloc", out_ioas_id: u32);

/// `struct iommu_iova_range`: "An interval in IOVA space."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIovaRange {
    /// "First IOVA".
    pub start: u64,
    /// "Inclusive last IOVA".
    pub last: u64,
}

/// Argument of `IOMMU_IOAS_IOVA_RANGES` (`struct iommu_ioas_iova_ranges`): "Query an IOAS for
/// ranges of allowed IOVAs. Mapping IOVA outside these ranges is not allowed."
///
/// "On input num_iovas is the length of the allowed_iovas array. On output it is the total number
/// of iovas filled in. The ioctl will return -EMSGSIZE and set num_iovas to the required value if
/// num_iovas is too small."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasIovaRanges {
    /// "sizeof(struct iommu_ioas_iova_ranges)".
    pub size: u32,
    /// "IOAS ID to read ranges from".
    pub ioas_id: u32,
    /// "Input/Output total number of ranges in the IOAS".
    pub num_iovas: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "Pointer to the output array of struct iommu_iova_range".
    pub allowed_iovas: u64,
    /// "Minimum alignment required for mapping IOVA"; "out_iova_alignment can be 1 indicating any
    /// IOVA is allowed. It cannot be higher than the system PAGE_SIZE."
    pub out_iova_alignment: u64,
}
extensible!(IommuIoasIovaRanges, "iommu_ioas_iova_ranges", out_iova_alignment: u64);

/// Argument of `IOMMU_IOAS_ALLOW_IOVAS` (`struct iommu_ioas_allow_iovas`): "Ensure a range of
/// IOVAs are always available for allocation. [...] This call replaces the entire allowed list
/// with the given list."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasAllowIovas {
    /// "sizeof(struct iommu_ioas_allow_iovas)".
    pub size: u32,
    /// "IOAS ID to allow IOVAs from".
    pub ioas_id: u32,
    /// "Input/Output total number of ranges in the IOAS".
    pub num_iovas: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "Pointer to array of struct iommu_iova_range".
    pub allowed_iovas: u64,
}
extensible!(IommuIoasAllowIovas, "iommu_ioas_allow_iovas", allowed_iovas: u64);

/// Map flag: "If clear the kernel will compute an appropriate IOVA to place the mapping at".
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
/// Map flag: "DMA is allowed to write to this mapping".
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
/// Map flag: "DMA is allowed to read from this mapping".
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

/// Argument of `IOMMU_IOAS_MAP` (`struct iommu_ioas_map`): "Set an IOVA mapping from a user
/// pointer."
///
/// "If IOMMU_IOAS_MAP_FIXED_IOVA is specified then the iova range must currently be unused,
/// existing IOVA cannot be replaced."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasMap {
    /// "sizeof(struct iommu_ioas_map)".
    pub size: u32,
    /// "Combination of enum iommufd_ioas_map_flags".
    pub flags: u32,
    /// "IOAS ID to change the mapping of".
    pub ioas_id: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "Userspace pointer to start mapping from".
    pub user_va: u64,
    /// "Number of bytes to map".
    pub length: u64,
    /// "IOVA the mapping was placed at. If IOMMU_IOAS_MAP_FIXED_IOVA is set then this must be
    /// provided as input."
    pub iova: u64,
}
extensible!(IommuIoasMap, "iommu_ioas_map", iova: u64);

/// Argument of `IOMMU_IOAS_MAP_FILE` (`struct iommu_ioas_map_file`): "Set an IOVA mapping from a
/// memfd file. All other arguments and semantics match those of IOMMU_IOAS_MAP."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasMapFile {
    /// "sizeof(struct iommu_ioas_map_file)".
    pub size: u32,
    /// "same as for iommu_ioas_map".
    pub flags: u32,
    /// "same as for iommu_ioas_map".
    pub ioas_id: u32,
    /// "the memfd to map".
    pub fd: i32,
    /// "byte offset from start of file to map from".
    pub start: u64,
    /// "same as for iommu_ioas_map".
    pub length: u64,
    /// "same as for iommu_ioas_map".
    pub iova: u64,
}
extensible!(IommuIoasMapFile, "iommu_ioas_map_file", iova: u64);

/// Argument of `IOMMU_IOAS_COPY` (`struct iommu_ioas_copy`): "Copy an already existing mapping
/// from src_ioas_id and establish it in dst_ioas_id. The src iova/length must exactly match a
/// range used with IOMMU_IOAS_MAP."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasCopy {
    /// "sizeof(struct iommu_ioas_copy)".
    pub size: u32,
    /// "Combination of enum iommufd_ioas_map_flags".
    pub flags: u32,
    /// "IOAS ID to change the mapping of".
    pub dst_ioas_id: u32,
    /// "IOAS ID to copy from".
    pub src_ioas_id: u32,
    /// "Number of bytes to copy and map".
    pub length: u64,
    /// "IOVA the mapping was placed at. If IOMMU_IOAS_MAP_FIXED_IOVA is set then this must be
    /// provided as input."
    pub dst_iova: u64,
    /// "IOVA to start the copy".
    pub src_iova: u64,
}
extensible!(IommuIoasCopy, "iommu_ioas_copy", src_iova: u64);

/// Argument of `IOMMU_IOAS_UNMAP` (`struct iommu_ioas_unmap`): "Unmap an IOVA range. The
/// iova/length must be a superset of a previously mapped range used with IOMMU_IOAS_MAP or
/// IOMMU_IOAS_COPY. Splitting or truncating ranges is not allowed. The values 0 to U64_MAX will
/// unmap everything."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasUnmap {
    /// "sizeof(struct iommu_ioas_unmap)".
    pub size: u32,
    /// "IOAS ID to change the mapping of".
    pub ioas_id: u32,
    /// "IOVA to start the unmapping at".
    pub iova: u64,
    /// "Number of bytes to unmap, and return back the bytes unmapped".
    pub length: u64,
}
extensible!(IommuIoasUnmap, "iommu_ioas_unmap", length: u64);

/// Option id: "Change how RLIMIT_MEMLOCK accounting works. The caller must have privilege to
/// invoke this. Value 0 (default) is user based accounting, 1 uses process based accounting.
/// Global option, object_id must be 0".
pub const IOMMU_OPTION_RLIMIT_MODE: u32 = 0;
/// Option id: "Value 1 (default) allows contiguous pages to be combined when generating iommu
/// mappings. Value 0 disables combining, everything is mapped to PAGE_SIZE. [...] This is a
/// per-IOAS option, the object_id must be the IOAS ID."
pub const IOMMU_OPTION_HUGE_PAGES: u32 = 1;
/// Option op: "Set the option's value".
pub const IOMMU_OPTION_OP_SET: u16 = 0;
/// Option op: "Get the option's value".
pub const IOMMU_OPTION_OP_GET: u16 = 1;

/// Argument of `IOMMU_OPTION` (`struct iommu_option`): "Change a simple option value. This
/// multiplexor allows controlling options on objects."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuOption {
    /// "sizeof(struct iommu_option)".
    pub size: u32,
    /// "One of enum iommufd_option".
    pub option_id: u32,
    /// "One of enum iommufd_option_ops".
    pub op: u16,
    /// "Must be 0" (`__reserved`).
    pub reserved: u16,
    /// "ID of the object if required".
    pub object_id: u32,
    /// "Option value to set or value returned on get".
    pub val64: u64,
}
extensible!(IommuOption, "iommu_option", val64: u64);

/// VFIO-compat op: "Get the current compatibility IOAS".
pub const IOMMU_VFIO_IOAS_GET: u16 = 0;
/// VFIO-compat op: "Change the current compatibility IOAS".
pub const IOMMU_VFIO_IOAS_SET: u16 = 1;
/// VFIO-compat op: "Disable VFIO compatibility".
pub const IOMMU_VFIO_IOAS_CLEAR: u16 = 2;

/// Argument of `IOMMU_VFIO_IOAS` (`struct iommu_vfio_ioas`): "Set or Get the IOAS that VFIO
/// compatibility will use."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuVfioIoas {
    /// "sizeof(struct iommu_vfio_ioas)".
    pub size: u32,
    /// "For IOMMU_VFIO_IOAS_SET the input IOAS ID to set For IOMMU_VFIO_IOAS_GET will output the
    /// IOAS ID".
    pub ioas_id: u32,
    /// "One of enum iommufd_vfio_ioas_op".
    pub op: u16,
    /// "Must be 0" (`__reserved`).
    pub reserved: u16,
}
extensible!(IommuVfioIoas, "iommu_vfio_ioas", reserved: u16);

/// Argument of `IOMMU_IOAS_CHANGE_PROCESS` (`struct iommu_ioas_change_process`): "This transfers
/// pinned memory counts for every memory map in every IOAS in the context to the current process.
/// This only supports maps created with IOMMU_IOAS_MAP_FILE, and returns EINVAL if other maps are
/// present. If the ioctl returns a failure status, then nothing is changed."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuIoasChangeProcess {
    /// "sizeof(struct iommu_ioas_change_process)".
    pub size: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
}
extensible!(IommuIoasChangeProcess, "iommu_ioas_change_process", reserved: u32);
