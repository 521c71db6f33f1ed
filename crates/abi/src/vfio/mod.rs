//! `include/uapi/linux/vfio.h`: the container, group and device API, the cdev binding to iommufd,
//! and (`type1` items re-exported here) the type1 IOMMU API.
//!
//! From the header: "The IOCTL interface is designed for extensibility by embedding the structure
//! length (argsz) and flags into structures passed between kernel and userspace. [...] As
//! structure fields are added, argsz will increase to match and flag bits will be defined to
//! indicate additional fields with valid data. It's *always* the caller's responsibility to
//! indicate the size of the structure passed by setting argsz appropriately."

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ioctl::{Request, io};

mod type1;

pub use type1::*;

/// `VFIO_API_VERSION`: what `VFIO_GET_API_VERSION` returns.
pub const VFIO_API_VERSION: u32 = 0;

/// Extension: the type1 IOMMU (x86-style; unmap may split a mapping).
pub const VFIO_TYPE1_IOMMU: u32 = 1;
/// Extension: the POWER sPAPR TCE IOMMU.
pub const VFIO_SPAPR_TCE_IOMMU: u32 = 2;
/// Extension: type1 version 2 (unmap may not bisect a mapping).
#[allow(non_upper_case_globals)]
pub const VFIO_TYPE1v2_IOMMU: u32 = 3;
/// Extension: "IOMMU enforces DMA cache coherence (ex. PCIe NoSnoop stripping). This capability
/// is subject to change as groups are added or removed."
pub const VFIO_DMA_CC_IOMMU: u32 = 4;
/// Extension: "Check if EEH is supported".
pub const VFIO_EEH: u32 = 5;
/// Extension 6, "Two-stage IOMMU" ("Implies v2"). Linux removed it; the header now names it
/// `__VFIO_RESERVED_TYPE1_NESTING_IOMMU` so that the number is never reused.
pub const VFIO_TYPE1_NESTING_IOMMU: u32 = 6;
/// Extension: sPAPR TCE IOMMU version 2.
#[allow(non_upper_case_globals)]
pub const VFIO_SPAPR_TCE_v2_IOMMU: u32 = 7;
/// Extension: "The No-IOMMU IOMMU offers no translation or isolation for devices and supports no
/// ioctls outside of VFIO_CHECK_EXTENSION. Use of VFIO's No-IOMMU code will taint the host kernel
/// and should be used with extreme caution."
pub const VFIO_NOIOMMU_IOMMU: u32 = 8;
/// Extension: "Supports VFIO_DMA_UNMAP_FLAG_ALL".
pub const VFIO_UNMAP_ALL: u32 = 9;
/// Extension: "Supports the vaddr flag for DMA map and unmap."
pub const VFIO_UPDATE_VADDR: u32 = 10;

/// The ioctl type byte of every VFIO request (`';'`).
pub const VFIO_TYPE: u8 = b';';
/// The first VFIO command number.
pub const VFIO_BASE: u8 = 100;

/// Header of one capability in an INFO ioctl's capability chain (`struct vfio_info_cap_header`).
///
/// "This offset field is relative to the start of the INFO buffer, as is the next field within
/// each capability header. The id within the header is a shared address space per INFO ioctl,
/// while the version field is specific to the capability id."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioInfoCapHeader {
    /// "Identifies capability".
    pub id: u16,
    /// "Version specific to the capability ID".
    pub version: u16,
    /// "Offset of next capability" (0 ends the chain).
    pub next: u32,
}

// -------- /dev/vfio/vfio (container) --------

/// `VFIO_GET_API_VERSION`: "Report the version of the VFIO API." Returns [`VFIO_API_VERSION`].
pub const VFIO_GET_API_VERSION: Request = io(VFIO_TYPE, VFIO_BASE);
/// `VFIO_CHECK_EXTENSION`: "Return: 0 if not supported, 1 (or some other positive integer) if
/// supported."
pub const VFIO_CHECK_EXTENSION: Request = io(VFIO_TYPE, VFIO_BASE + 1);
/// `VFIO_SET_IOMMU`: "Set the iommu to the given type. The type must be supported by an iommu
/// driver as verified by calling CHECK_EXTENSION using the same type. A group must be set to this
/// file descriptor before this ioctl is available."
pub const VFIO_SET_IOMMU: Request = io(VFIO_TYPE, VFIO_BASE + 2);

// -------- /dev/vfio/$GROUP --------

/// Argument of `VFIO_GROUP_GET_STATUS` (`struct vfio_group_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioGroupStatus {
    /// Size of the struct; "Caller sets argsz."
    pub argsz: u32,
    /// `VFIO_GROUP_FLAGS_*`, filled by the kernel.
    pub flags: u32,
}
extensible!(VfioGroupStatus, "vfio_group_status", flags: u32);

/// Group flag: every device of the group is bound to a VFIO driver (or otherwise safe).
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;
/// Group flag: the group is attached to a container.
pub const VFIO_GROUP_FLAGS_CONTAINER_SET: u32 = 1 << 1;

/// `VFIO_GROUP_GET_STATUS`: "Retrieve information about the group."
pub const VFIO_GROUP_GET_STATUS: Request = io(VFIO_TYPE, VFIO_BASE + 3);
/// `VFIO_GROUP_SET_CONTAINER` (argument: `__s32` container fd): "Groups may only belong to a
/// single container."
pub const VFIO_GROUP_SET_CONTAINER: Request = io(VFIO_TYPE, VFIO_BASE + 4);
/// `VFIO_GROUP_UNSET_CONTAINER`: "All device file descriptors must be released prior to calling
/// this interface."
pub const VFIO_GROUP_UNSET_CONTAINER: Request = io(VFIO_TYPE, VFIO_BASE + 5);
/// `VFIO_GROUP_GET_DEVICE_FD` (argument: a NUL-terminated device name): "Return a new file
/// descriptor for the device object described by the provided string."
pub const VFIO_GROUP_GET_DEVICE_FD: Request = io(VFIO_TYPE, VFIO_BASE + 6);

// -------- device fd --------

/// Argument of `VFIO_DEVICE_GET_INFO` (`struct vfio_device_info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceInfo {
    /// Size of the caller's buffer; "Caller sets argsz." Raised by the kernel when the capability
    /// chain does not fit.
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// "Max region index + 1".
    pub num_regions: u32,
    /// "Max IRQ index + 1".
    pub num_irqs: u32,
    /// "Offset within info struct of first cap" (valid with [`VFIO_DEVICE_FLAGS_CAPS`]).
    pub cap_offset: u32,
    /// Padding (`pad` in the header).
    pub pad: u32,
}
extensible!(VfioDeviceInfo, "vfio_device_info", num_irqs: u32);

/// "Device supports reset".
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// "vfio-pci device".
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// "vfio-platform device".
pub const VFIO_DEVICE_FLAGS_PLATFORM: u32 = 1 << 2;
/// "vfio-amba device".
pub const VFIO_DEVICE_FLAGS_AMBA: u32 = 1 << 3;
/// "vfio-ccw device".
pub const VFIO_DEVICE_FLAGS_CCW: u32 = 1 << 4;
/// "vfio-ap device".
pub const VFIO_DEVICE_FLAGS_AP: u32 = 1 << 5;
/// "vfio-fsl-mc device".
pub const VFIO_DEVICE_FLAGS_FSL_MC: u32 = 1 << 6;
/// "Info supports caps".
pub const VFIO_DEVICE_FLAGS_CAPS: u32 = 1 << 7;
/// "vfio-cdx device".
pub const VFIO_DEVICE_FLAGS_CDX: u32 = 1 << 8;

/// `device_api` string of a vfio-pci mediated device type.
pub const VFIO_DEVICE_API_PCI_STRING: &str = "vfio-pci";
/// `device_api` string of a vfio-platform mediated device type.
pub const VFIO_DEVICE_API_PLATFORM_STRING: &str = "vfio-platform";
/// `device_api` string of a vfio-amba mediated device type.
pub const VFIO_DEVICE_API_AMBA_STRING: &str = "vfio-amba";
/// `device_api` string of a vfio-ccw mediated device type.
pub const VFIO_DEVICE_API_CCW_STRING: &str = "vfio-ccw";
/// `device_api` string of a vfio-ap mediated device type.
pub const VFIO_DEVICE_API_AP_STRING: &str = "vfio-ap";

/// Device info capability: s390 zPCI base (contents in `vfio_zdev.h`).
pub const VFIO_DEVICE_INFO_CAP_ZPCI_BASE: u16 = 1;
/// Device info capability: s390 zPCI group.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_GROUP: u16 = 2;
/// Device info capability: s390 zPCI utility string.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_UTIL: u16 = 3;
/// Device info capability: s390 zPCI function path.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_PFIP: u16 = 4;
/// Device info capability: "support for PCIe AtomicOp completion to the root bus with supported
/// widths provided via flags" ([`VfioDeviceInfoCapPciAtomicComp`]).
pub const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP: u16 = 5;

/// `struct vfio_device_info_cap_pci_atomic_comp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceInfoCapPciAtomicComp {
    /// Capability header, id [`VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP`].
    pub header: VfioInfoCapHeader,
    /// `VFIO_PCI_ATOMIC_COMP*`.
    pub flags: u32,
    /// Reserved.
    pub reserved: u32,
}

/// 32-bit AtomicOp completion supported.
pub const VFIO_PCI_ATOMIC_COMP32: u32 = 1 << 0;
/// 64-bit AtomicOp completion supported.
pub const VFIO_PCI_ATOMIC_COMP64: u32 = 1 << 1;
/// 128-bit AtomicOp completion supported.
pub const VFIO_PCI_ATOMIC_COMP128: u32 = 1 << 2;

/// `VFIO_DEVICE_GET_INFO`: "Retrieve information about the device."
pub const VFIO_DEVICE_GET_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 7);

/// Argument of `VFIO_DEVICE_GET_REGION_INFO` (`struct vfio_region_info`).
///
/// "Caller provides struct vfio_region_info with index value set. Caller sets argsz. [...] Zero
/// sized regions may be used to describe unimplemented regions (ex. unimplemented PCI BARs)."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioRegionInfo {
    /// Size of the caller's buffer (struct plus room for the capability chain).
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// "Region index".
    pub index: u32,
    /// "Offset within info struct of first cap" (valid with [`VFIO_REGION_INFO_FLAG_CAPS`]).
    pub cap_offset: u32,
    /// "Region size (bytes)".
    pub size: u64,
    /// "Region offset from start of device fd".
    pub offset: u64,
}
extensible!(VfioRegionInfo, "vfio_region_info", offset: u64);

/// "Region supports read".
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
/// "Region supports write".
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
/// "Region supports mmap".
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
/// "Info supports caps".
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;

/// Region capability: sparse mmap ([`VfioRegionInfoCapSparseMmap`]). "When specified, the user
/// should only mmap the offset ranges specified by the areas array."
pub const VFIO_REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;
/// Region capability: device-specific region type ([`VfioRegionInfoCapType`]).
pub const VFIO_REGION_INFO_CAP_TYPE: u16 = 2;
/// Region capability (no body): "MSIX data of a BAR can be mmapped which allows direct access to
/// non-MSIX registers which happened to be within the same system page."
pub const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: u16 = 3;

/// One mmap-able area of a region (`struct vfio_region_sparse_mmap_area`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioRegionSparseMmapArea {
    /// "Offset of mmap'able area within region".
    pub offset: u64,
    /// "Size of mmap'able area".
    pub size: u64,
}

/// Fixed part of `struct vfio_region_info_cap_sparse_mmap`; `nr_areas`
/// [`VfioRegionSparseMmapArea`]s follow it (`areas[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioRegionInfoCapSparseMmap {
    /// Capability header, id [`VFIO_REGION_INFO_CAP_SPARSE_MMAP`], version 1.
    pub header: VfioInfoCapHeader,
    /// Number of areas that follow.
    pub nr_areas: u32,
    /// Reserved.
    pub reserved: u32,
}

/// `struct vfio_region_info_cap_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioRegionInfoCapType {
    /// Capability header, id [`VFIO_REGION_INFO_CAP_TYPE`], version 1.
    pub header: VfioInfoCapHeader,
    /// "global per bus driver" (`VFIO_REGION_TYPE_*`).
    pub type_: u32,
    /// "type specific" (`VFIO_REGION_SUBTYPE_*`).
    pub subtype: u32,
}

/// "PCI region type containing a PCI vendor part".
pub const VFIO_REGION_TYPE_PCI_VENDOR_TYPE: u32 = 1 << 31;
/// Mask of the PCI vendor id in a vendor region type.
pub const VFIO_REGION_TYPE_PCI_VENDOR_MASK: u32 = 0xffff;
/// Region type: graphics.
pub const VFIO_REGION_TYPE_GFX: u32 = 1;
/// Region type: s390 channel I/O.
pub const VFIO_REGION_TYPE_CCW: u32 = 2;
/// Region type: v1 migration region, deprecated.
pub const VFIO_REGION_TYPE_MIGRATION_DEPRECATED: u32 = 3;
/// 8086 sub-type: Intel IGD OpRegion.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION: u32 = 1;
/// 8086 sub-type: Intel IGD host bridge config.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG: u32 = 2;
/// 8086 sub-type: Intel IGD LPC bridge config.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG: u32 = 3;
/// GFX sub-type: EDID.
pub const VFIO_REGION_SUBTYPE_GFX_EDID: u32 = 1;

/// `VFIO_DEVICE_GET_REGION_INFO`: "Retrieve information about a device region."
pub const VFIO_DEVICE_GET_REGION_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 8);

/// Argument of `VFIO_DEVICE_GET_IRQ_INFO` (`struct vfio_irq_info`).
///
/// "Caller provides struct vfio_irq_info with index value set. Caller sets argsz. [...] Zero count
/// irq blocks may be used to describe unimplemented interrupt types."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIrqInfo {
    /// Size of the struct.
    pub argsz: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// "IRQ index".
    pub index: u32,
    /// "Number of IRQs within this index".
    pub count: u32,
}
extensible!(VfioIrqInfo, "vfio_irq_info", count: u32);

/// "The EVENTFD flag indicates the interrupt index supports eventfd based signaling."
pub const VFIO_IRQ_INFO_EVENTFD: u32 = 1 << 0;
/// "The MASKABLE flags indicates the index supports MASK and UNMASK actions".
pub const VFIO_IRQ_INFO_MASKABLE: u32 = 1 << 1;
/// "AUTOMASKED indicates that after signaling, the interrupt line is automatically masked by VFIO
/// and the user needs to unmask the line to receive new interrupts."
pub const VFIO_IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
/// "The NORESIZE flag indicates that the interrupt lines within the index are setup as a set and
/// new subindexes cannot be enabled without first disabling the entire index."
pub const VFIO_IRQ_INFO_NORESIZE: u32 = 1 << 3;

/// `VFIO_DEVICE_GET_IRQ_INFO`: "Retrieve information about a device IRQ."
pub const VFIO_DEVICE_GET_IRQ_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 9);

/// Fixed part of `struct vfio_irq_set`, the argument of `VFIO_DEVICE_SET_IRQS`; `data[]` follows
/// (nothing, `count` `u8` bools, or `count` `__s32` eventfds, as the DATA flag says).
///
/// "Caller provides struct vfio_irq_set with all fields set. 'start' and 'count' indicate the
/// range of subindexes being specified."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioIrqSet {
    /// Size of the struct including `data[]`.
    pub argsz: u32,
    /// One `VFIO_IRQ_SET_DATA_*` and one `VFIO_IRQ_SET_ACTION_*`.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// First subindex.
    pub start: u32,
    /// Number of subindexes; "the index can be disabled as a whole with: flags =
    /// (DATA_NONE|ACTION_TRIGGER), count = 0."
    pub count: u32,
}
extensible!(VfioIrqSet, "vfio_irq_set", count: u32);

/// "Data not present".
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// "Data is bool (u8)".
pub const VFIO_IRQ_SET_DATA_BOOL: u32 = 1 << 1;
/// "Data is eventfd (s32)"; "A value of -1 can be used to either de-assign interrupts if already
/// assigned or skip un-assigned interrupts."
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// "Mask interrupt".
pub const VFIO_IRQ_SET_ACTION_MASK: u32 = 1 << 3;
/// "Unmask interrupt".
pub const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
/// "Trigger interrupt".
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// All DATA flags.
pub const VFIO_IRQ_SET_DATA_TYPE_MASK: u32 =
    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
/// All ACTION flags.
pub const VFIO_IRQ_SET_ACTION_TYPE_MASK: u32 =
    VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

/// `VFIO_DEVICE_SET_IRQS`: "Set signaling, masking, and unmasking of interrupts."
pub const VFIO_DEVICE_SET_IRQS: Request = io(VFIO_TYPE, VFIO_BASE + 10);
/// `VFIO_DEVICE_RESET`: "Reset a device."
pub const VFIO_DEVICE_RESET: Request = io(VFIO_TYPE, VFIO_BASE + 11);

/// vfio-pci region index of BAR 0 ("Unimplemented regions return a size of zero.").
pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
/// vfio-pci region index of BAR 1.
pub const VFIO_PCI_BAR1_REGION_INDEX: u32 = 1;
/// vfio-pci region index of BAR 2.
pub const VFIO_PCI_BAR2_REGION_INDEX: u32 = 2;
/// vfio-pci region index of BAR 3.
pub const VFIO_PCI_BAR3_REGION_INDEX: u32 = 3;
/// vfio-pci region index of BAR 4.
pub const VFIO_PCI_BAR4_REGION_INDEX: u32 = 4;
/// vfio-pci region index of BAR 5.
pub const VFIO_PCI_BAR5_REGION_INDEX: u32 = 5;
/// vfio-pci region index of the expansion ROM.
pub const VFIO_PCI_ROM_REGION_INDEX: u32 = 6;
/// vfio-pci region index of config space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// vfio-pci region index of the legacy VGA ranges (I/O 0x3b0–0x3bb, 0x3c0–0x3df, MMIO
/// 0xa0000–0xbffff at their identity offsets).
pub const VFIO_PCI_VGA_REGION_INDEX: u32 = 8;
/// Number of fixed vfio-pci regions: "Fixed user ABI, region indexes >=9 use device specific cap
/// to define content."
pub const VFIO_PCI_NUM_REGIONS: u32 = 9;

/// vfio-pci IRQ index of INTx ("Unimplemented IRQ types return a count of zero.").
pub const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
/// vfio-pci IRQ index of MSI.
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
/// vfio-pci IRQ index of MSI-X.
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
/// vfio-pci IRQ index of the AER error notification.
pub const VFIO_PCI_ERR_IRQ_INDEX: u32 = 3;
/// vfio-pci IRQ index of the device-release request notification.
pub const VFIO_PCI_REQ_IRQ_INDEX: u32 = 4;
/// Number of vfio-pci IRQ indexes.
pub const VFIO_PCI_NUM_IRQS: u32 = 5;

/// One device affected by a hot reset (`struct vfio_pci_dependent_device`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioPciDependentDevice {
    /// The C union `{ group_id; devid; }`: the group id, or the iommufd device id when
    /// [`VFIO_PCI_HOT_RESET_FLAG_DEV_ID`] is set (then also [`VFIO_PCI_DEVID_OWNED`] or
    /// [`VFIO_PCI_DEVID_NOT_OWNED`]).
    pub group_id_or_devid: u32,
    /// PCI segment.
    pub segment: u16,
    /// PCI bus.
    pub bus: u8,
    /// "Use PCI_SLOT/PCI_FUNC".
    pub devfn: u8,
}

/// Dependent devid: owned through the same IOMMU group, without a devid of its own.
pub const VFIO_PCI_DEVID_OWNED: i32 = 0;
/// Dependent devid: not owned by the caller.
pub const VFIO_PCI_DEVID_NOT_OWNED: i32 = -1;

/// Fixed part of `struct vfio_pci_hot_reset_info`; `count` [`VfioPciDependentDevice`]s follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioPciHotResetInfo {
    /// Size of the caller's buffer; "-enospc = insufficient buffer".
    pub argsz: u32,
    /// `VFIO_PCI_HOT_RESET_FLAG_*`.
    pub flags: u32,
    /// Number of dependent devices.
    pub count: u32,
}
extensible!(VfioPciHotResetInfo, "vfio_pci_hot_reset_info", count: u32);

/// Hot-reset info reports devids (cdev-opened device) instead of group ids.
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID: u32 = 1 << 0;
/// Every affected device is in the dev_set and owned by the caller.
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED: u32 = 1 << 1;

/// Fixed part of `struct vfio_pci_hot_reset`; `count` `__s32` group fds follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioPciHotReset {
    /// Size of the struct including the fds.
    pub argsz: u32,
    /// Flags (none defined).
    pub flags: u32,
    /// Number of group fds.
    pub count: u32,
}
extensible!(VfioPciHotReset, "vfio_pci_hot_reset", count: u32);

/// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: "query the affected devices in the hot reset for a given
/// device."
pub const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 12);
/// `VFIO_DEVICE_PCI_HOT_RESET`: "A PCI hot reset results in either a bus or slot reset which may
/// affect other devices sharing the bus/slot."
pub const VFIO_DEVICE_PCI_HOT_RESET: Request = io(VFIO_TYPE, VFIO_BASE + 13);
/// `VFIO_DEVICE_QUERY_GFX_PLANE` (mediated graphics devices).
pub const VFIO_DEVICE_QUERY_GFX_PLANE: Request = io(VFIO_TYPE, VFIO_BASE + 14);
/// `VFIO_DEVICE_GET_GFX_DMABUF` (mediated graphics devices).
pub const VFIO_DEVICE_GET_GFX_DMABUF: Request = io(VFIO_TYPE, VFIO_BASE + 15);

/// Argument of `VFIO_DEVICE_IOEVENTFD` (`struct vfio_device_ioeventfd`): "Perform a write to the
/// device at the specified device fd offset, with the specified data and width when the provided
/// eventfd is triggered."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceIoeventfd {
    /// Size of the struct.
    pub argsz: u32,
    /// One `VFIO_DEVICE_IOEVENTFD_{8,16,32,64}`.
    pub flags: u32,
    /// "device fd offset of write".
    pub offset: u64,
    /// "data to be written".
    pub data: u64,
    /// "-1 for de-assignment".
    pub fd: i32,
    /// Reserved.
    pub reserved: u32,
}
extensible!(VfioDeviceIoeventfd, "vfio_device_ioeventfd", fd: i32);

/// "1-byte write".
pub const VFIO_DEVICE_IOEVENTFD_8: u32 = 1 << 0;
/// "2-byte write".
pub const VFIO_DEVICE_IOEVENTFD_16: u32 = 1 << 1;
/// "4-byte write".
pub const VFIO_DEVICE_IOEVENTFD_32: u32 = 1 << 2;
/// "8-byte write".
pub const VFIO_DEVICE_IOEVENTFD_64: u32 = 1 << 3;
/// All write-size flags.
pub const VFIO_DEVICE_IOEVENTFD_SIZE_MASK: u32 = 0xf;

/// `VFIO_DEVICE_IOEVENTFD`.
pub const VFIO_DEVICE_IOEVENTFD: Request = io(VFIO_TYPE, VFIO_BASE + 16);

/// Fixed part of `struct vfio_device_feature`; the feature's `data[]` follows.
///
/// "The feature is selected using the FEATURE_MASK portion of the flags field. [...] GET and SET
/// are mutually exclusive, except for use with PROBE."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceFeature {
    /// Size of the struct including `data[]`.
    pub argsz: u32,
    /// Feature index (low 16 bits) and `VFIO_DEVICE_FEATURE_{GET,SET,PROBE}`.
    pub flags: u32,
}
extensible!(VfioDeviceFeature, "vfio_device_feature", flags: u32);

/// "16-bit feature index".
pub const VFIO_DEVICE_FEATURE_MASK: u32 = 0xffff;
/// "Get feature into data[]".
pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
/// "Set feature from data[]".
pub const VFIO_DEVICE_FEATURE_SET: u32 = 1 << 17;
/// "Probe feature support".
pub const VFIO_DEVICE_FEATURE_PROBE: u32 = 1 << 18;
/// Feature: PCI SR-IOV VF token (16-byte UUID).
pub const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: u32 = 0;
/// Feature: migration capabilities.
pub const VFIO_DEVICE_FEATURE_MIGRATION: u32 = 1;
/// Feature: migration state change.
pub const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: u32 = 2;
/// Feature: enter low power.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: u32 = 3;
/// Feature: enter low power with a wake-up eventfd.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: u32 = 4;
/// Feature: leave low power.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: u32 = 5;
/// Feature: start device DMA logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_START: u32 = 6;
/// Feature: stop device DMA logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: u32 = 7;
/// Feature: read and clear the device DMA log.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: u32 = 8;
/// Feature: estimated stop-copy data size.
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;
/// Feature: bus master control (CDX devices).
pub const VFIO_DEVICE_FEATURE_BUS_MASTER: u32 = 10;

/// `VFIO_DEVICE_FEATURE`: "Get, set, or probe feature data of the device."
pub const VFIO_DEVICE_FEATURE: Request = io(VFIO_TYPE, VFIO_BASE + 17);

// -------- cdev: /dev/vfio/devices/vfioX --------

/// Argument of `VFIO_DEVICE_BIND_IOMMUFD` (`struct vfio_device_bind_iommufd`).
///
/// "User is restricted from accessing the device before the binding operation is completed. Only
/// allowed on cdev fds. Unbind is automatically conducted when device fd is closed."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceBindIommufd {
    /// "User filled size of this data."
    pub argsz: u32,
    /// "Must be 0 or a bit flags of VFIO_DEVICE_BIND_*".
    pub flags: u32,
    /// "iommufd to bind."
    pub iommufd: i32,
    /// "The device id generated by this bind. devid is a handle for this device/iommufd bond and
    /// can be used in IOMMUFD commands."
    pub out_devid: u32,
    /// "Valid if VFIO_DEVICE_BIND_FLAG_TOKEN. Points to a 16 byte UUID in the same format as
    /// VFIO_DEVICE_FEATURE_PCI_VF_TOKEN."
    pub token_uuid_ptr: u64,
}
extensible!(VfioDeviceBindIommufd, "vfio_device_bind_iommufd", out_devid: u32);

/// Bind flag: `token_uuid_ptr` is valid.
pub const VFIO_DEVICE_BIND_FLAG_TOKEN: u32 = 1 << 0;

/// `VFIO_DEVICE_BIND_IOMMUFD`: "Bind a vfio_device to the specified iommufd."
pub const VFIO_DEVICE_BIND_IOMMUFD: Request = io(VFIO_TYPE, VFIO_BASE + 18);

/// Argument of `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (`struct vfio_device_attach_iommufd_pt`).
///
/// "Associate the device with an address space within the bound iommufd. Undo by
/// VFIO_DEVICE_DETACH_IOMMUFD_PT or device fd close. This is only allowed on cdev fds." A second
/// attach without a detach replaces the hwpt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceAttachIommufdPt {
    /// "User filled size of this data."
    pub argsz: u32,
    /// "Flags for attach." ([`VFIO_DEVICE_ATTACH_PASID`]).
    pub flags: u32,
    /// "Input the target id which can represent an ioas or a hwpt allocated via iommufd subsystem.
    /// Output the input ioas id or the attached hwpt id which could be the specified hwpt itself
    /// or a hwpt automatically created for the specified ioas by kernel during the attachment."
    pub pt_id: u32,
    /// "The pasid to be attached, only meaningful when VFIO_DEVICE_ATTACH_PASID is set in @flags".
    pub pasid: u32,
}
extensible!(VfioDeviceAttachIommufdPt, "vfio_device_attach_iommufd_pt", pt_id: u32);

/// Attach flag: `pasid` is valid.
pub const VFIO_DEVICE_ATTACH_PASID: u32 = 1 << 0;

/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: Request = io(VFIO_TYPE, VFIO_BASE + 19);

/// Argument of `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`struct vfio_device_detach_iommufd_pt`).
///
/// "Remove the association of the device or a pasid of the device and its current associated
/// address space. After it, the device or the pasid should be in a blocking DMA state."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioDeviceDetachIommufdPt {
    /// "User filled size of this data."
    pub argsz: u32,
    /// "Flags for detach." ([`VFIO_DEVICE_DETACH_PASID`]).
    pub flags: u32,
    /// "The pasid to be detached, only meaningful when VFIO_DEVICE_DETACH_PASID is set in @flags".
    pub pasid: u32,
}
extensible!(VfioDeviceDetachIommufdPt, "vfio_device_detach_iommufd_pt", flags: u32);

/// Detach flag: `pasid` is valid.
pub const VFIO_DEVICE_DETACH_PASID: u32 = 1 << 0;

/// `VFIO_DEVICE_DETACH_IOMMUFD_PT`.
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: Request = io(VFIO_TYPE, VFIO_BASE + 20);

/// `VFIO_MIG_GET_PRECOPY_INFO` (on a migration data fd; same number as `VFIO_EEH_PE_OP`).
pub const VFIO_MIG_GET_PRECOPY_INFO: Request = io(VFIO_TYPE, VFIO_BASE + 21);
