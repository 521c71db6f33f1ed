//! The type1 IOMMU API of `vfio.h` (container fd after `VFIO_SET_IOMMU`), and the request numbers
//! of the sPAPR TCE and EEH APIs that share its command numbers.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{VFIO_BASE, VFIO_TYPE, VfioInfoCapHeader};
use crate::ioctl::{Request, io};

/// Argument of `VFIO_IOMMU_GET_INFO` (`struct vfio_iommu_type1_info`).
///
/// "Retrieve information about the IOMMU object. Fills in provided struct vfio_iommu_info.
/// Caller sets argsz."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1Info {
    /// Size of the caller's buffer (struct plus room for the capability chain).
    pub argsz: u32,
    /// `VFIO_IOMMU_INFO_*`.
    pub flags: u32,
    /// "Bitmap of supported page sizes".
    pub iova_pgsizes: u64,
    /// "Offset within info struct of first cap" (valid with [`VFIO_IOMMU_INFO_CAPS`]).
    pub cap_offset: u32,
    /// Padding (`pad` in the header).
    pub pad: u32,
}
extensible!(VfioIommuType1Info, "vfio_iommu_type1_info", iova_pgsizes: u64);

/// "supported page sizes info".
pub const VFIO_IOMMU_INFO_PGSIZES: u32 = 1 << 0;
/// "Info supports caps".
pub const VFIO_IOMMU_INFO_CAPS: u32 = 1 << 1;

/// Type1 info capability: valid IOVA ranges ([`VfioIommuType1InfoCapIovaRange`]). "Any DMA map
/// attempt outside the valid iova range will return error."
pub const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;
/// Type1 info capability: dirty page logging support ([`VfioIommuType1InfoCapMigration`]).
pub const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: u16 = 2;
/// Type1 info capability: "the current number of simultaneously outstanding DMA mappings that are
/// allowed" ([`VfioIommuType1InfoDmaAvail`]).
pub const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: u16 = 3;

/// One valid IOVA range (`struct vfio_iova_range`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIovaRange {
    /// First IOVA.
    pub start: u64,
    /// Last IOVA, inclusive. The header calls it `end`, but type1 fills it with the inclusive
    /// end of the aperture (e.g. `u64::MAX` for a full range); named `last` here by house rule.
    pub last: u64,
}

/// Fixed part of `struct vfio_iommu_type1_info_cap_iova_range`; `nr_iovas` [`VfioIovaRange`]s
/// follow (`iova_ranges[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1InfoCapIovaRange {
    /// Capability header, id [`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`], version 1.
    pub header: VfioInfoCapHeader,
    /// Number of ranges that follow.
    pub nr_iovas: u32,
    /// Reserved.
    pub reserved: u32,
}

/// `struct vfio_iommu_type1_info_cap_migration`: "The existence of this capability indicates that
/// IOMMU kernel driver supports dirty page logging."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1InfoCapMigration {
    /// Capability header, id [`VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`], version 1.
    pub header: VfioInfoCapHeader,
    /// Flags (none defined).
    pub flags: u32,
    /// C's implicit padding before `pgsize_bitmap`.
    pub pad: u32,
    /// "bitmap of supported page sizes for dirty page logging".
    pub pgsize_bitmap: u64,
    /// "maximum supported dirty bitmap size in bytes".
    pub max_dirty_bitmap_size: u64,
}

/// `struct vfio_iommu_type1_info_dma_avail`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1InfoDmaAvail {
    /// Capability header, id [`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`], version 1.
    pub header: VfioInfoCapHeader,
    /// "the current number of outstanding DMA mappings allowed."
    pub avail: u32,
}

/// `VFIO_IOMMU_GET_INFO` (same number as `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, on another fd).
pub const VFIO_IOMMU_GET_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 12);

/// Argument of `VFIO_IOMMU_MAP_DMA` (`struct vfio_iommu_type1_dma_map`).
///
/// "Map process virtual addresses to IO virtual addresses using the provided struct vfio_dma_map.
/// Caller sets argsz. READ &/ WRITE required."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1DmaMap {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_*`.
    pub flags: u32,
    /// "Process virtual address".
    pub vaddr: u64,
    /// "IO virtual address".
    pub iova: u64,
    /// "Size of mapping (bytes)".
    pub size: u64,
}
extensible!(VfioIommuType1DmaMap, "vfio_iommu_type1_dma_map", size: u64);

/// "readable from device".
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
/// "writable from device".
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;
/// "update the base vaddr for iova. The vaddr must have previously been invalidated with
/// VFIO_DMA_UNMAP_FLAG_VADDR. [...] iova and size must match those in the original MAP_DMA call.
/// Protection is not changed, and the READ & WRITE flags must be 0."
pub const VFIO_DMA_MAP_FLAG_VADDR: u32 = 1 << 2;

/// `VFIO_IOMMU_MAP_DMA`.
pub const VFIO_IOMMU_MAP_DMA: Request = io(VFIO_TYPE, VFIO_BASE + 13);

/// A user dirty bitmap (`struct vfio_bitmap`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioBitmap {
    /// "page size for bitmap in bytes".
    pub pgsize: u64,
    /// "in bytes".
    pub size: u64,
    /// User pointer to the bitmap, "one bit per page" (`__u64 __user *data`).
    pub data: u64,
}

/// Fixed part of `struct vfio_iommu_type1_dma_unmap`, the argument of `VFIO_IOMMU_UNMAP_DMA`;
/// with [`VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`] a [`VfioBitmap`] follows in `data[]`.
///
/// "The actual unmapped size is returned in the size field. No guarantee is made to the user that
/// arbitrary unmaps of iova or size different from those used in the original mapping call will
/// succeed."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1DmaUnmap {
    /// Size of the struct including `data[]`.
    pub argsz: u32,
    /// `VFIO_DMA_UNMAP_FLAG_*`.
    pub flags: u32,
    /// "IO virtual address".
    pub iova: u64,
    /// "Size of mapping (bytes)"; on return the bytes actually unmapped.
    pub size: u64,
}
extensible!(VfioIommuType1DmaUnmap, "vfio_iommu_type1_dma_unmap", size: u64);

/// "get the dirty bitmap before unmapping IO virtual addresses. When this flag is set, the user
/// must provide a struct vfio_bitmap in data[]."
pub const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: u32 = 1 << 0;
/// "unmap all addresses. iova and size must be 0. This cannot be combined with the
/// get-dirty-bitmap flag."
pub const VFIO_DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;
/// "do not unmap, but invalidate host virtual addresses in the iova range. DMA to already-mapped
/// pages continues. Groups may not be added to the container while any addresses are invalid."
pub const VFIO_DMA_UNMAP_FLAG_VADDR: u32 = 1 << 2;

/// `VFIO_IOMMU_UNMAP_DMA`.
pub const VFIO_IOMMU_UNMAP_DMA: Request = io(VFIO_TYPE, VFIO_BASE + 14);
/// `VFIO_IOMMU_ENABLE` ("No parameters are supported.").
pub const VFIO_IOMMU_ENABLE: Request = io(VFIO_TYPE, VFIO_BASE + 15);
/// `VFIO_IOMMU_DISABLE` ("No parameters are supported.").
pub const VFIO_IOMMU_DISABLE: Request = io(VFIO_TYPE, VFIO_BASE + 16);

/// Fixed part of `struct vfio_iommu_type1_dirty_bitmap`, the argument of
/// `VFIO_IOMMU_DIRTY_PAGES`; with `GET_BITMAP` a [`VfioIommuType1DirtyBitmapGet`] follows.
///
/// "Only one of the flags _START, _STOP and _GET may be specified at a time."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1DirtyBitmap {
    /// "The caller must set argsz to a value including the size of structure
    /// vfio_iommu_type1_dirty_bitmap_get, but excluding the size of the actual bitmap."
    pub argsz: u32,
    /// One `VFIO_IOMMU_DIRTY_PAGES_FLAG_*`.
    pub flags: u32,
}
extensible!(VfioIommuType1DirtyBitmap, "vfio_iommu_type1_dirty_bitmap", flags: u32);

/// Start dirty page logging.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_START: u32 = 1 << 0;
/// Stop dirty page logging.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP: u32 = 1 << 1;
/// Read the dirty bitmap of an IOVA range.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP: u32 = 1 << 2;

/// `struct vfio_iommu_type1_dirty_bitmap_get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIommuType1DirtyBitmapGet {
    /// "IO virtual address".
    pub iova: u64,
    /// "Size of iova range".
    pub size: u64,
    /// Where to write the bitmap.
    pub bitmap: VfioBitmap,
}

/// `VFIO_IOMMU_DIRTY_PAGES`: "IOCTL is used for dirty pages logging."
pub const VFIO_IOMMU_DIRTY_PAGES: Request = io(VFIO_TYPE, VFIO_BASE + 17);

// -------- sPAPR TCE and EEH (POWER): request numbers only --------

/// `VFIO_IOMMU_SPAPR_TCE_GET_INFO` (sPAPR container; same number as `VFIO_IOMMU_GET_INFO`).
pub const VFIO_IOMMU_SPAPR_TCE_GET_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 12);
/// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`.
pub const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: Request = io(VFIO_TYPE, VFIO_BASE + 17);
/// `VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY`.
pub const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: Request = io(VFIO_TYPE, VFIO_BASE + 18);
/// `VFIO_IOMMU_SPAPR_TCE_CREATE`.
pub const VFIO_IOMMU_SPAPR_TCE_CREATE: Request = io(VFIO_TYPE, VFIO_BASE + 19);
/// `VFIO_IOMMU_SPAPR_TCE_REMOVE`.
pub const VFIO_IOMMU_SPAPR_TCE_REMOVE: Request = io(VFIO_TYPE, VFIO_BASE + 20);
/// `VFIO_EEH_PE_OP`.
pub const VFIO_EEH_PE_OP: Request = io(VFIO_TYPE, VFIO_BASE + 21);
