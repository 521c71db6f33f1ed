//! iommufd virtual IOMMU objects: vIOMMU, vDEVICE, vEVENTQ and HW queue.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// vIOMMU type: "Reserved for future use".
pub const IOMMU_VIOMMU_TYPE_DEFAULT: u32 = 0;
/// vIOMMU type: "ARM SMMUv3 driver specific type".
pub const IOMMU_VIOMMU_TYPE_ARM_SMMUV3: u32 = 1;
/// vIOMMU type: "NVIDIA Tegra241 CMDQV (extension for ARM SMMUv3) enabled ARM SMMUv3 type".
pub const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV: u32 = 2;

/// Argument of `IOMMU_VIOMMU_ALLOC` (`struct iommu_viommu_alloc`): "Allocate a virtual IOMMU
/// object, representing the underlying physical IOMMU's virtualization support that is a
/// security-isolated slice of the real IOMMU HW that is unique to a specific VM."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuViommuAlloc {
    /// "sizeof(struct iommu_viommu_alloc)".
    pub size: u32,
    /// "Must be 0".
    pub flags: u32,
    /// "Type of the virtual IOMMU. Must be defined in enum iommu_viommu_type" (`type`).
    pub type_: u32,
    /// "The device's physical IOMMU will be used to back the virtual IOMMU".
    pub dev_id: u32,
    /// "ID of a nesting parent HWPT to associate to".
    pub hwpt_id: u32,
    /// "Output virtual IOMMU ID for the allocated object".
    pub out_viommu_id: u32,
    /// "Length of the type specific data".
    pub data_len: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
    /// "User pointer to a driver-specific virtual IOMMU data".
    pub data_uptr: u64,
}
extensible!(IommuViommuAlloc, "iommu_viommu_alloc", out_viommu_id: u32);

/// Argument of `IOMMU_VDEVICE_ALLOC` (`struct iommu_vdevice_alloc`): "Allocate a virtual device
/// instance (for a physical device) against a vIOMMU."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuVdeviceAlloc {
    /// "sizeof(struct iommu_vdevice_alloc)".
    pub size: u32,
    /// "vIOMMU ID to associate with the virtual device".
    pub viommu_id: u32,
    /// "The physical device to allocate a virtual instance on the vIOMMU".
    pub dev_id: u32,
    /// "Object handle for the vDevice."
    pub out_vdevice_id: u32,
    /// "Virtual device ID per vIOMMU, e.g. vSID of ARM SMMUv3, vDeviceID of AMD IOMMU, and vRID
    /// of Intel VT-d".
    pub virt_id: u64,
}
extensible!(IommuVdeviceAlloc, "iommu_vdevice_alloc", virt_id: u64);

/// vEVENTQ header flag: "vEVENTQ has lost vEVENTs".
pub const IOMMU_VEVENTQ_FLAG_LOST_EVENTS: u32 = 1 << 0;

/// `struct iommufd_vevent_header`: "Virtual Event Header for a vEVENTQ Status".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommufdVeventHeader {
    /// "Combination of enum iommu_veventq_flag".
    pub flags: u32,
    /// "The sequence index of a vEVENT in the vEVENTQ, with a range of [0, INT_MAX] where the
    /// following index of INT_MAX is 0".
    pub sequence: u32,
}

/// vEVENTQ type: "Reserved for future use".
pub const IOMMU_VEVENTQ_TYPE_DEFAULT: u32 = 0;
/// vEVENTQ type: "ARM SMMUv3 Virtual Event Queue".
pub const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3: u32 = 1;
/// vEVENTQ type: "NVIDIA Tegra241 CMDQV Extension IRQ".
pub const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV: u32 = 2;

/// Argument of `IOMMU_VEVENTQ_ALLOC` (`struct iommu_veventq_alloc`): "Explicitly allocate a
/// virtual event queue interface for a vIOMMU."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuVeventqAlloc {
    /// "sizeof(struct iommu_veventq_alloc)".
    pub size: u32,
    /// "Must be 0".
    pub flags: u32,
    /// "virtual IOMMU ID to associate the vEVENTQ with".
    pub viommu_id: u32,
    /// "Type of the vEVENTQ. Must be defined in enum iommu_veventq_type" (`type`).
    pub type_: u32,
    /// "Maximum number of events in the vEVENTQ".
    pub veventq_depth: u32,
    /// "The ID of the new vEVENTQ".
    pub out_veventq_id: u32,
    /// "The fd of the new vEVENTQ. User space must close the successfully returned fd after using
    /// it".
    pub out_veventq_fd: u32,
    /// "Must be 0" (`__reserved`).
    pub reserved: u32,
}
extensible!(IommuVeventqAlloc, "iommu_veventq_alloc", out_veventq_fd: u32);

/// HW queue type: "Reserved for future use".
pub const IOMMU_HW_QUEUE_TYPE_DEFAULT: u32 = 0;
/// HW queue type: "NVIDIA Tegra241 CMDQV (extension for ARM SMMUv3) Virtual Command Queue
/// (VCMDQ)".
pub const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV: u32 = 1;

/// Argument of `IOMMU_HW_QUEUE_ALLOC` (`struct iommu_hw_queue_alloc`): "Allocate a HW queue object
/// for a vIOMMU-specific HW-accelerated queue, which allows HW to access a guest queue memory
/// described using @nesting_parent_iova and @length."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwQueueAlloc {
    /// "sizeof(struct iommu_hw_queue_alloc)".
    pub size: u32,
    /// "Must be 0".
    pub flags: u32,
    /// "Virtual IOMMU ID to associate the HW queue with".
    pub viommu_id: u32,
    /// "One of enum iommu_hw_queue_type" (`type`).
    pub type_: u32,
    /// "The logical index to the HW queue per virtual IOMMU for a multi-queue model".
    pub index: u32,
    /// "The ID of the new HW queue".
    pub out_hw_queue_id: u32,
    /// "Base address of the queue memory in the guest physical address space".
    pub nesting_parent_iova: u64,
    /// "Length of the queue memory".
    pub length: u64,
}
extensible!(IommuHwQueueAlloc, "iommu_hw_queue_alloc", length: u64);
