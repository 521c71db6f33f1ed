//! iommufd HW page tables (`IOMMU_HWPT_*`), hardware info, and I/O page-fault queues.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// HWPT alloc flag: "If set, allocate a HWPT that can serve as the parent HWPT in a nesting
/// configuration."
pub const IOMMU_HWPT_ALLOC_NEST_PARENT: u32 = 1 << 0;
/// HWPT alloc flag: "Dirty tracking support for device IOMMU is enforced on device attachment".
pub const IOMMU_HWPT_ALLOC_DIRTY_TRACKING: u32 = 1 << 1;
/// HWPT alloc flag: "The fault_id field of hwpt allocation data is valid."
pub const IOMMU_HWPT_FAULT_ID_VALID: u32 = 1 << 2;
/// HWPT alloc flag: "Requests a domain that can be used with PASID. The domain can be attached to
/// any PASID on the device." "If IOMMU does not support PASID it will return error (-EOPNOTSUPP)."
pub const IOMMU_HWPT_ALLOC_PASID: u32 = 1 << 3;

/// HWPT data type: "no data" (a kernel-managed paging HWPT).
pub const IOMMU_HWPT_DATA_NONE: u32 = 0;
/// HWPT data type: "Intel VT-d stage-1 page table" ([`IommuHwptVtdS1`]).
pub const IOMMU_HWPT_DATA_VTD_S1: u32 = 1;
/// HWPT data type: "ARM SMMUv3 Context Descriptor Table".
pub const IOMMU_HWPT_DATA_ARM_SMMUV3: u32 = 2;
/// HWPT data type: "AMD IOMMU guest page table".
pub const IOMMU_HWPT_DATA_AMD_GUEST: u32 = 3;

/// VT-d stage-1 flag: "Supervisor request".
pub const IOMMU_VTD_S1_SRE: u64 = 1 << 0;
/// VT-d stage-1 flag: "Extended access enable".
pub const IOMMU_VTD_S1_EAFE: u64 = 1 << 1;
/// VT-d stage-1 flag: "Write protect enable".
pub const IOMMU_VTD_S1_WPE: u64 = 1 << 2;

/// `struct iommu_hwpt_vtd_s1`: "Intel VT-d stage-1 page table info (IOMMU_HWPT_DATA_VTD_S1)".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptVtdS1 {
    /// "Combination of enum iommu_hwpt_vtd_s1_flags".
    pub flags: u64,
    /// "The base address of the stage-1 page table."
    pub pgtbl_addr: u64,
    /// "The address width of the stage-1 page table".
    pub addr_width: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
}

/// Argument of `IOMMU_HWPT_ALLOC` (`struct iommu_hwpt_alloc`): "Explicitly allocate a hardware
/// page table object."
///
/// "A kernel-managed HWPT will be created with the mappings from the given IOAS via the @pt_id.
/// The @data_type for this allocation must be set to IOMMU_HWPT_DATA_NONE." "If the @data_type is
/// set to IOMMU_HWPT_DATA_NONE, @data_len and @data_uptr should be zero. Otherwise, both
/// @data_len and @data_uptr must be given."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptAlloc {
    /// "sizeof(struct iommu_hwpt_alloc)".
    pub size: u32,
    /// "Combination of enum iommufd_hwpt_alloc_flags".
    pub flags: u32,
    /// "The device to allocate this HWPT for".
    pub dev_id: u32,
    /// "The IOAS or HWPT or vIOMMU to connect this HWPT to".
    pub pt_id: u32,
    /// "The ID of the new HWPT".
    pub out_hwpt_id: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "One of enum iommu_hwpt_data_type".
    pub data_type: u32,
    /// "Length of the type specific data".
    pub data_len: u32,
    /// "User pointer to the type specific data".
    pub data_uptr: u64,
    /// "The ID of IOMMUFD_FAULT object. Valid only if flags field of IOMMU_HWPT_FAULT_ID_VALID is
    /// set."
    pub fault_id: u32,
    /// "Padding to 64-bit alignment. Must be 0." (`__reserved2`).
    pub reserved2: u32,
}
extensible!(IommuHwptAlloc, "iommu_hwpt_alloc", reserved: u32);

/// VT-d hw_info flag: "If set, disallow read-only mappings on a nested_parent domain."
pub const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: u32 = 1 << 0;

/// `struct iommu_hw_info_vtd`: "Intel VT-d hardware information".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwInfoVtd {
    /// "Combination of enum iommu_hw_info_vtd_flags".
    pub flags: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "Value of Intel VT-d capability register defined in VT-d spec section 11.4.2 Capability
    /// Register."
    pub cap_reg: u64,
    /// "Value of Intel VT-d capability register defined in VT-d spec section 11.4.3 Extended
    /// Capability Register."
    pub ecap_reg: u64,
}

/// HW info type: "Output by the drivers that do not report hardware info".
pub const IOMMU_HW_INFO_TYPE_NONE: u32 = 0;
/// HW info type: "Input to request for a default type".
pub const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
/// HW info type: "Intel VT-d iommu info type" ([`IommuHwInfoVtd`]).
pub const IOMMU_HW_INFO_TYPE_INTEL_VTD: u32 = 1;
/// HW info type: "ARM SMMUv3 iommu info type".
pub const IOMMU_HW_INFO_TYPE_ARM_SMMUV3: u32 = 2;
/// HW info type: "NVIDIA Tegra241 CMDQV (extension for ARM SMMUv3) info type".
pub const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV: u32 = 3;
/// HW info type: "AMD IOMMU info type".
pub const IOMMU_HW_INFO_TYPE_AMD: u32 = 4;

/// HW capability: "IOMMU hardware support for dirty tracking" (so `IOMMU_HWPT_GET_DIRTY_BITMAP`
/// and `IOMMU_HWPT_SET_DIRTY_TRACKING` are supported).
pub const IOMMU_HW_CAP_DIRTY_TRACKING: u64 = 1 << 0;
/// HW capability: PCI PASID "Execute Permission Supported".
pub const IOMMU_HW_CAP_PCI_PASID_EXEC: u64 = 1 << 1;
/// HW capability: PCI PASID "Privileged Mode Supported".
pub const IOMMU_HW_CAP_PCI_PASID_PRIV: u64 = 1 << 2;
/// HW capability: "ATS is not supported or cannot be used on this device".
pub const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED: u64 = 1 << 3;

/// HW info flag: "If set, @in_data_type carries an input type for user space to request for a
/// specific info".
pub const IOMMU_HW_INFO_FLAG_INPUT_TYPE: u32 = 1 << 0;

/// Argument of `IOMMU_GET_HW_INFO` (`struct iommu_hw_info`): "Query an iommu type specific
/// hardware information data from an iommu behind a given device that has been bound to
/// iommufd."
///
/// "Trailing bytes will be zeroed if the user buffer is larger than the data that kernel has.
/// Otherwise, kernel only fills the buffer using the given length in @data_len."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwInfo {
    /// "sizeof(struct iommu_hw_info)".
    pub size: u32,
    /// Flags ([`IOMMU_HW_INFO_FLAG_INPUT_TYPE`]).
    pub flags: u32,
    /// "The device bound to the iommufd".
    pub dev_id: u32,
    /// "Input the length of a user buffer in bytes. Output the length of data that kernel
    /// supports".
    pub data_len: u32,
    /// "User pointer to a user-space buffer used by the kernel to fill the iommu type specific
    /// hardware information data".
    pub data_uptr: u64,
    /// The C union `{ in_data_type; out_data_type; }`: the requested type on input (with
    /// [`IOMMU_HW_INFO_FLAG_INPUT_TYPE`]), "the iommu hardware info type as defined in the enum
    /// iommu_hw_info_type" on output.
    pub data_type: u32,
    /// "Output the width of PASIDs. 0 means no PASID support."
    pub out_max_pasid_log2: u8,
    /// "Must be 0" (`__reserved`).
    pub reserved: [u8; 3],
    /// "Output the generic iommu capability info type as defined in the enum
    /// iommu_hw_capabilities."
    pub out_capabilities: u64,
}
extensible!(IommuHwInfo, "iommu_hw_info", reserved: [u8; 3]);

/// Dirty tracking flag: enable (clear to disable).
pub const IOMMU_HWPT_DIRTY_TRACKING_ENABLE: u32 = 1;

/// Argument of `IOMMU_HWPT_SET_DIRTY_TRACKING` (`struct iommu_hwpt_set_dirty_tracking`): "Toggle
/// dirty tracking on an HW pagetable."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptSetDirtyTracking {
    /// "sizeof(struct iommu_hwpt_set_dirty_tracking)".
    pub size: u32,
    /// "Combination of enum iommufd_hwpt_set_dirty_tracking_flags".
    pub flags: u32,
    /// "HW pagetable ID that represents the IOMMU domain".
    pub hwpt_id: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
}
extensible!(IommuHwptSetDirtyTracking, "iommu_hwpt_set_dirty_tracking", reserved: u32);

/// Dirty bitmap flag: "Just read the PTEs without clearing any dirty bits metadata."
pub const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: u32 = 1;

/// Argument of `IOMMU_HWPT_GET_DIRTY_BITMAP` (`struct iommu_hwpt_get_dirty_bitmap`): "Walk the
/// IOMMU pagetables for a given IOVA range to return a bitmap with the dirty IOVAs."
///
/// "Checking a given IOVA is dirty: data[(iova / page_size) / 64] & (1ULL << ((iova / page_size)
/// % 64))"
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptGetDirtyBitmap {
    /// "sizeof(struct iommu_hwpt_get_dirty_bitmap)".
    pub size: u32,
    /// "HW pagetable ID that represents the IOMMU domain".
    pub hwpt_id: u32,
    /// "Combination of enum iommufd_hwpt_get_dirty_bitmap_flags".
    pub flags: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "base IOVA of the bitmap first bit".
    pub iova: u64,
    /// "IOVA range size".
    pub length: u64,
    /// "page size granularity of each bit in the bitmap".
    pub page_size: u64,
    /// "bitmap where to set the dirty bits" (user pointer).
    pub data: u64,
}
extensible!(IommuHwptGetDirtyBitmap, "iommu_hwpt_get_dirty_bitmap", data: u64);

/// Invalidation data type: "Invalidation data for VTD_S1" ([`IommuHwptVtdS1Invalidate`]).
pub const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: u32 = 0;
/// Invalidation data type: "Invalidation data for ARM SMMUv3".
pub const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3: u32 = 1;

/// VT-d invalidation flag: "Indicates whether the invalidation applies to all-levels page
/// structure cache or just the leaf PTE cache."
pub const IOMMU_VTD_INV_FLAGS_LEAF: u32 = 1 << 0;

/// `struct iommu_hwpt_vtd_s1_invalidate`: "Intel VT-d cache invalidation
/// (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)".
///
/// "Invalidating all the caches related to the page table by setting @addr to be 0 and @npages
/// to be U64_MAX. The device TLB will be invalidated automatically if ATS is enabled."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptVtdS1Invalidate {
    /// "The start address of the range to be invalidated. It needs to be 4KB aligned."
    pub addr: u64,
    /// "Number of contiguous 4K pages to be invalidated."
    pub npages: u64,
    /// "Combination of enum iommu_hwpt_vtd_s1_invalidate_flags".
    pub flags: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
}

/// Argument of `IOMMU_HWPT_INVALIDATE` (`struct iommu_hwpt_invalidate`): "Invalidate iommu cache
/// for user-managed page table or vIOMMU."
///
/// "An empty invalidation request array by setting @entry_num==0 is allowed, and @entry_len and
/// @data_uptr would be ignored in this case. This can be used to check if the given @data_type is
/// supported or not by kernel."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptInvalidate {
    /// "sizeof(struct iommu_hwpt_invalidate)".
    pub size: u32,
    /// "ID of a nested HWPT or a vIOMMU, for cache invalidation".
    pub hwpt_id: u32,
    /// "User pointer to an array of driver-specific cache invalidation data."
    pub data_uptr: u64,
    /// "One of enum iommu_hwpt_invalidate_data_type, defining the data type of all the entries in
    /// the invalidation request array."
    pub data_type: u32,
    /// "Length (in bytes) of a request entry in the request array".
    pub entry_len: u32,
    /// "Input the number of cache invalidation requests in the array. Output the number of
    /// requests successfully handled by kernel."
    pub entry_num: u32,
    /// "Must be 0." (`__reserved`).
    pub reserved: u32,
}
extensible!(IommuHwptInvalidate, "iommu_hwpt_invalidate", reserved: u32);

/// Page fault flag: "The pasid field of the fault data is valid."
pub const IOMMU_PGFAULT_FLAGS_PASID_VALID: u32 = 1 << 0;
/// Page fault flag: "It's the last fault of a fault group."
pub const IOMMU_PGFAULT_FLAGS_LAST_PAGE: u32 = 1 << 1;
/// Page fault permission: "request for read permission".
pub const IOMMU_PGFAULT_PERM_READ: u32 = 1 << 0;
/// Page fault permission: "request for write permission".
pub const IOMMU_PGFAULT_PERM_WRITE: u32 = 1 << 1;
/// Page fault permission: PASID request with the Execute Requested bit.
pub const IOMMU_PGFAULT_PERM_EXEC: u32 = 1 << 2;
/// Page fault permission: PASID request with the Privileged Mode Requested bit.
pub const IOMMU_PGFAULT_PERM_PRIV: u32 = 1 << 3;

/// `struct iommu_hwpt_pgfault`: "iommu page fault data", read from a fault queue fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptPgfault {
    /// "Combination of enum iommu_hwpt_pgfault_flags".
    pub flags: u32,
    /// "id of the originated device".
    pub dev_id: u32,
    /// "Process Address Space ID".
    pub pasid: u32,
    /// "Page Request Group Index".
    pub grpid: u32,
    /// "Combination of enum iommu_hwpt_pgfault_perm".
    pub perm: u32,
    /// "Must be 0." (`__reserved`).
    pub reserved: u32,
    /// "Fault address".
    pub addr: u64,
    /// "a hint of how much data the requestor is expecting to fetch. [...] It's default to 0 if
    /// there's no such hint."
    pub length: u32,
    /// "kernel-managed cookie identifying a group of fault messages. The cookie number encoded in
    /// the last page fault of the group should be echoed back in the response message."
    pub cookie: u32,
}

/// Page response: "Fault has been handled and the page tables populated, retry the access."
pub const IOMMUFD_PAGE_RESP_SUCCESS: u32 = 0;
/// Page response: "Could not handle this fault, don't retry the access."
pub const IOMMUFD_PAGE_RESP_INVALID: u32 = 1;

/// `struct iommu_hwpt_page_response`: "IOMMU page fault response", written to a fault queue fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptPageResponse {
    /// "The kernel-managed cookie reported in the fault message."
    pub cookie: u32,
    /// "One of response code in enum iommufd_page_response_code."
    pub code: u32,
}

/// Argument of `IOMMU_FAULT_QUEUE_ALLOC` (`struct iommu_fault_alloc`): "Explicitly allocate a
/// fault handling object."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuFaultAlloc {
    /// "sizeof(struct iommu_fault_alloc)".
    pub size: u32,
    /// "Must be 0".
    pub flags: u32,
    /// "The ID of the new FAULT".
    pub out_fault_id: u32,
    /// "The fd of the new FAULT".
    pub out_fault_fd: u32,
}
extensible!(IommuFaultAlloc, "iommu_fault_alloc", out_fault_fd: u32);
