//! Register offsets and bits, named as in Linux `include/uapi/linux/pci_regs.h`.
//!
//! Only the registers this model implements (and a few neighbours that make the layout readable)
//! are listed. Offsets of header registers are absolute; offsets inside a capability
//! (`PCI_PM_*`, `PCI_MSI_*`, `PCI_MSIX_*`, `PCI_EXP_*`) are relative to the capability's start,
//! exactly as in the C header. Widths follow the register: 8-bit registers have `u8` bits, 16-bit
//! registers `u16`, 32-bit registers `u32`; every offset is a `u16` (config space is 4096 bytes).
//!
//! Each constant's doc is the comment pci_regs.h gives it.

// --- Config space sizes -------------------------------------------------------------------------

/// Conventional PCI config space: 256 bytes.
pub const PCI_CFG_SPACE_SIZE: u16 = 256;
/// PCI Express (extended) config space: 4096 bytes.
pub const PCI_CFG_SPACE_EXP_SIZE: u16 = 4096;
/// The standardized type-0/1 header: the first 64 bytes.
pub const PCI_STD_HEADER_SIZEOF: u16 = 64;
/// Number of BARs in a type-0 header.
pub const PCI_STD_NUM_BARS: usize = 6;

// --- Type-0 header --------------------------------------------------------------------------------

/// Vendor ID (16 bits, RO).
pub const PCI_VENDOR_ID: u16 = 0x00;
/// Device ID (16 bits, RO).
pub const PCI_DEVICE_ID: u16 = 0x02;
/// Command register (16 bits).
pub const PCI_COMMAND: u16 = 0x04;
/// Enable response in I/O space.
pub const PCI_COMMAND_IO: u16 = 0x1;
/// Enable response in Memory space.
pub const PCI_COMMAND_MEMORY: u16 = 0x2;
/// Enable bus mastering.
pub const PCI_COMMAND_MASTER: u16 = 0x4;
/// Enable response to special cycles.
pub const PCI_COMMAND_SPECIAL: u16 = 0x8;
/// Use memory write and invalidate.
pub const PCI_COMMAND_INVALIDATE: u16 = 0x10;
/// Enable palette snooping.
pub const PCI_COMMAND_VGA_PALETTE: u16 = 0x20;
/// Enable parity checking.
pub const PCI_COMMAND_PARITY: u16 = 0x40;
/// Enable address/data stepping.
pub const PCI_COMMAND_WAIT: u16 = 0x80;
/// Enable SERR.
pub const PCI_COMMAND_SERR: u16 = 0x100;
/// Enable back-to-back writes.
pub const PCI_COMMAND_FAST_BACK: u16 = 0x200;
/// INTx Emulation Disable.
pub const PCI_COMMAND_INTX_DISABLE: u16 = 0x400;

/// Status register (16 bits).
pub const PCI_STATUS: u16 = 0x06;
/// Immediate Readiness.
pub const PCI_STATUS_IMM_READY: u16 = 0x01;
/// Interrupt status.
pub const PCI_STATUS_INTERRUPT: u16 = 0x08;
/// Support Capability List.
pub const PCI_STATUS_CAP_LIST: u16 = 0x10;
/// Support 66 MHz PCI 2.1 bus.
pub const PCI_STATUS_66MHZ: u16 = 0x20;
/// Accept fast-back to back.
pub const PCI_STATUS_FAST_BACK: u16 = 0x80;
/// Detected parity error (Master Data Parity Error).
pub const PCI_STATUS_PARITY: u16 = 0x100;
/// DEVSEL timing.
pub const PCI_STATUS_DEVSEL_MASK: u16 = 0x600;
/// Set on target abort.
pub const PCI_STATUS_SIG_TARGET_ABORT: u16 = 0x800;
/// Master ack of target abort.
pub const PCI_STATUS_REC_TARGET_ABORT: u16 = 0x1000;
/// Set on master abort.
pub const PCI_STATUS_REC_MASTER_ABORT: u16 = 0x2000;
/// Set when we drive SERR.
pub const PCI_STATUS_SIG_SYSTEM_ERROR: u16 = 0x4000;
/// Set on parity error.
pub const PCI_STATUS_DETECTED_PARITY: u16 = 0x8000;

/// High 24 bits are class, low 8 revision.
pub const PCI_CLASS_REVISION: u16 = 0x08;
/// Revision ID.
pub const PCI_REVISION_ID: u16 = 0x08;
/// Reg. Level Programming Interface.
pub const PCI_CLASS_PROG: u16 = 0x09;
/// Device class (sub-class, base class).
pub const PCI_CLASS_DEVICE: u16 = 0x0a;
/// Cache line size (8 bits).
pub const PCI_CACHE_LINE_SIZE: u16 = 0x0c;
/// Latency timer (8 bits).
pub const PCI_LATENCY_TIMER: u16 = 0x0d;
/// Header type (8 bits).
pub const PCI_HEADER_TYPE: u16 = 0x0e;
/// Header type 0: a normal function.
pub const PCI_HEADER_TYPE_NORMAL: u8 = 0;
/// Multi-Function Device (possible).
pub const PCI_HEADER_TYPE_MFD: u8 = 0x80;
/// Built-in self test (8 bits).
pub const PCI_BIST: u16 = 0x0f;

/// BAR 0 (32 bits).
pub const PCI_BASE_ADDRESS_0: u16 = 0x10;
/// BAR 1 (32 bits).
pub const PCI_BASE_ADDRESS_1: u16 = 0x14;
/// BAR 2 (32 bits).
pub const PCI_BASE_ADDRESS_2: u16 = 0x18;
/// BAR 3 (32 bits).
pub const PCI_BASE_ADDRESS_3: u16 = 0x1c;
/// BAR 4 (32 bits).
pub const PCI_BASE_ADDRESS_4: u16 = 0x20;
/// BAR 5 (32 bits).
pub const PCI_BASE_ADDRESS_5: u16 = 0x24;
/// 0 = memory, 1 = I/O.
pub const PCI_BASE_ADDRESS_SPACE: u32 = 0x01;
/// An I/O BAR.
pub const PCI_BASE_ADDRESS_SPACE_IO: u32 = 0x01;
/// A memory BAR.
pub const PCI_BASE_ADDRESS_SPACE_MEMORY: u32 = 0x00;
/// Memory BAR type field.
pub const PCI_BASE_ADDRESS_MEM_TYPE_MASK: u32 = 0x06;
/// 32 bit address.
pub const PCI_BASE_ADDRESS_MEM_TYPE_32: u32 = 0x00;
/// 64 bit address.
pub const PCI_BASE_ADDRESS_MEM_TYPE_64: u32 = 0x04;
/// Prefetchable?
pub const PCI_BASE_ADDRESS_MEM_PREFETCH: u32 = 0x08;
/// Address bits of a memory BAR.
pub const PCI_BASE_ADDRESS_MEM_MASK: u32 = !0x0f;
/// Address bits of an I/O BAR.
pub const PCI_BASE_ADDRESS_IO_MASK: u32 = !0x03;

/// CardBus CIS pointer.
pub const PCI_CARDBUS_CIS: u16 = 0x28;
/// Subsystem vendor ID.
pub const PCI_SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
/// Subsystem ID.
pub const PCI_SUBSYSTEM_ID: u16 = 0x2e;
/// Expansion ROM BAR: bits 31..11 are address, 10..1 reserved.
pub const PCI_ROM_ADDRESS: u16 = 0x30;
/// ROM address decode enable.
pub const PCI_ROM_ADDRESS_ENABLE: u32 = 0x01;
/// Address bits of the expansion ROM BAR.
pub const PCI_ROM_ADDRESS_MASK: u32 = !0x7ff;
/// Offset of first capability list entry.
pub const PCI_CAPABILITY_LIST: u16 = 0x34;
/// Interrupt line (8 bits).
pub const PCI_INTERRUPT_LINE: u16 = 0x3c;
/// Interrupt pin (8 bits).
pub const PCI_INTERRUPT_PIN: u16 = 0x3d;
/// Min grant (8 bits).
pub const PCI_MIN_GNT: u16 = 0x3e;
/// Max latency (8 bits).
pub const PCI_MAX_LAT: u16 = 0x3f;

// --- Capability list ------------------------------------------------------------------------------

/// Capability ID.
pub const PCI_CAP_LIST_ID: u16 = 0;
/// Power Management.
pub const PCI_CAP_ID_PM: u8 = 0x01;
/// Message Signalled Interrupts.
pub const PCI_CAP_ID_MSI: u8 = 0x05;
/// Vendor-Specific.
pub const PCI_CAP_ID_VNDR: u8 = 0x09;
/// PCI Express.
pub const PCI_CAP_ID_EXP: u8 = 0x10;
/// MSI-X.
pub const PCI_CAP_ID_MSIX: u8 = 0x11;
/// Next capability in the list.
pub const PCI_CAP_LIST_NEXT: u16 = 1;
/// Capability defined flags (16 bits).
pub const PCI_CAP_FLAGS: u16 = 2;
/// Size of a capability header.
pub const PCI_CAP_SIZEOF: u16 = 4;

// --- Power Management ---------------------------------------------------------------------------

/// PM Capabilities Register.
pub const PCI_PM_PMC: u16 = 2;
/// Version.
pub const PCI_PM_CAP_VER_MASK: u16 = 0x0007;
/// D1 power state support.
pub const PCI_PM_CAP_D1: u16 = 0x0200;
/// D2 power state support.
pub const PCI_PM_CAP_D2: u16 = 0x0400;
/// PME Mask of all supported states.
pub const PCI_PM_CAP_PME_MASK: u16 = 0xf800;
/// PM control and status register.
pub const PCI_PM_CTRL: u16 = 4;
/// Current power state (D0 to D3).
pub const PCI_PM_CTRL_STATE_MASK: u16 = 0x0003;
/// No reset for D3hot->D0.
pub const PCI_PM_CTRL_NO_SOFT_RESET: u16 = 0x0008;
/// PME pin enable.
pub const PCI_PM_CTRL_PME_ENABLE: u16 = 0x0100;
/// PME pin status.
pub const PCI_PM_CTRL_PME_STATUS: u16 = 0x8000;
/// PPB support extensions.
pub const PCI_PM_PPB_EXTENSIONS: u16 = 6;
/// PM data register.
pub const PCI_PM_DATA_REGISTER: u16 = 7;
/// Size of the PM capability.
pub const PCI_PM_SIZEOF: u16 = 8;
/// `PCI_D0` (include/linux/pci.h), the value of `PCI_PM_CTRL_STATE_MASK` in D0.
pub const PCI_D0: u16 = 0;
/// `PCI_D1` (include/linux/pci.h).
pub const PCI_D1: u16 = 1;
/// `PCI_D2` (include/linux/pci.h).
pub const PCI_D2: u16 = 2;
/// `PCI_D3hot` (include/linux/pci.h).
pub const PCI_D3HOT: u16 = 3;

// --- MSI ------------------------------------------------------------------------------------------

/// Message Control.
pub const PCI_MSI_FLAGS: u16 = 0x02;
/// MSI feature enabled.
pub const PCI_MSI_FLAGS_ENABLE: u16 = 0x0001;
/// Maximum queue size available.
pub const PCI_MSI_FLAGS_QMASK: u16 = 0x000e;
/// Message queue size configured.
pub const PCI_MSI_FLAGS_QSIZE: u16 = 0x0070;
/// 64-bit addresses allowed.
pub const PCI_MSI_FLAGS_64BIT: u16 = 0x0080;
/// Per-vector masking capable.
pub const PCI_MSI_FLAGS_MASKBIT: u16 = 0x0100;
/// Lower 32 bits.
pub const PCI_MSI_ADDRESS_LO: u16 = 0x04;
/// Upper 32 bits (if PCI_MSI_FLAGS_64BIT set).
pub const PCI_MSI_ADDRESS_HI: u16 = 0x08;
/// 16 bits of data for 32-bit devices.
pub const PCI_MSI_DATA_32: u16 = 0x08;
/// Mask bits register for 32-bit devices.
pub const PCI_MSI_MASK_32: u16 = 0x0c;
/// Pending intrs for 32-bit devices.
pub const PCI_MSI_PENDING_32: u16 = 0x10;
/// 16 bits of data for 64-bit devices.
pub const PCI_MSI_DATA_64: u16 = 0x0c;
/// Mask bits register for 64-bit devices.
pub const PCI_MSI_MASK_64: u16 = 0x10;
/// Pending intrs for 64-bit devices.
pub const PCI_MSI_PENDING_64: u16 = 0x14;

// --- MSI-X ----------------------------------------------------------------------------------------

/// Message Control.
pub const PCI_MSIX_FLAGS: u16 = 2;
/// Table size.
pub const PCI_MSIX_FLAGS_QSIZE: u16 = 0x07ff;
/// Mask all vectors for this function.
pub const PCI_MSIX_FLAGS_MASKALL: u16 = 0x4000;
/// MSI-X enable.
pub const PCI_MSIX_FLAGS_ENABLE: u16 = 0x8000;
/// Table offset.
pub const PCI_MSIX_TABLE: u16 = 4;
/// BAR index.
pub const PCI_MSIX_TABLE_BIR: u32 = 0x0000_0007;
/// Offset into specified BAR.
pub const PCI_MSIX_TABLE_OFFSET: u32 = 0xffff_fff8;
/// Pending Bit Array offset.
pub const PCI_MSIX_PBA: u16 = 8;
/// BAR index.
pub const PCI_MSIX_PBA_BIR: u32 = 0x0000_0007;
/// Offset into specified BAR.
pub const PCI_MSIX_PBA_OFFSET: u32 = 0xffff_fff8;
/// Size of MSIX registers.
pub const PCI_CAP_MSIX_SIZEOF: u16 = 12;
/// Size of one MSI-X table entry.
pub const PCI_MSIX_ENTRY_SIZE: u64 = 16;
/// Message Address.
pub const PCI_MSIX_ENTRY_LOWER_ADDR: u64 = 0x0;
/// Message Upper Address.
pub const PCI_MSIX_ENTRY_UPPER_ADDR: u64 = 0x4;
/// Message Data.
pub const PCI_MSIX_ENTRY_DATA: u64 = 0x8;
/// Vector Control.
pub const PCI_MSIX_ENTRY_VECTOR_CTRL: u64 = 0xc;
/// Mask Bit.
pub const PCI_MSIX_ENTRY_CTRL_MASKBIT: u32 = 0x0000_0001;

// --- PCI Express capability -----------------------------------------------------------------------

/// Capabilities register.
pub const PCI_EXP_FLAGS: u16 = 0x02;
/// Capability version.
pub const PCI_EXP_FLAGS_VERS: u16 = 0x000f;
/// Device/Port type.
pub const PCI_EXP_FLAGS_TYPE: u16 = 0x00f0;
/// Express Endpoint.
pub const PCI_EXP_TYPE_ENDPOINT: u16 = 0x0;
/// Device capabilities.
pub const PCI_EXP_DEVCAP: u16 = 0x04;
/// Max_Payload_Size.
pub const PCI_EXP_DEVCAP_PAYLOAD: u32 = 0x0000_0007;
/// Extended tags.
pub const PCI_EXP_DEVCAP_EXT_TAG: u32 = 0x0000_0020;
/// Role-Based Error Reporting.
pub const PCI_EXP_DEVCAP_RBER: u32 = 0x0000_8000;
/// Function Level Reset.
pub const PCI_EXP_DEVCAP_FLR: u32 = 0x1000_0000;
/// Device Control.
pub const PCI_EXP_DEVCTL: u16 = 0x08;
/// Correctable Error Reporting En.
pub const PCI_EXP_DEVCTL_CERE: u16 = 0x0001;
/// Non-Fatal Error Reporting Enable.
pub const PCI_EXP_DEVCTL_NFERE: u16 = 0x0002;
/// Fatal Error Reporting Enable.
pub const PCI_EXP_DEVCTL_FERE: u16 = 0x0004;
/// Unsupported Request Reporting En.
pub const PCI_EXP_DEVCTL_URRE: u16 = 0x0008;
/// Enable relaxed ordering.
pub const PCI_EXP_DEVCTL_RELAX_EN: u16 = 0x0010;
/// Max_Payload_Size.
pub const PCI_EXP_DEVCTL_PAYLOAD: u16 = 0x00e0;
/// Extended Tag Field Enable.
pub const PCI_EXP_DEVCTL_EXT_TAG: u16 = 0x0100;
/// Phantom Functions Enable.
pub const PCI_EXP_DEVCTL_PHANTOM: u16 = 0x0200;
/// Auxiliary Power PM Enable.
pub const PCI_EXP_DEVCTL_AUX_PME: u16 = 0x0400;
/// Enable No Snoop.
pub const PCI_EXP_DEVCTL_NOSNOOP_EN: u16 = 0x0800;
/// Max_Read_Request_Size.
pub const PCI_EXP_DEVCTL_READRQ: u16 = 0x7000;
/// 512 Bytes.
pub const PCI_EXP_DEVCTL_READRQ_512B: u16 = 0x2000;
/// Bridge Configuration Retry / FLR.
pub const PCI_EXP_DEVCTL_BCR_FLR: u16 = 0x8000;
/// Device Status.
pub const PCI_EXP_DEVSTA: u16 = 0x0a;
/// Correctable Error Detected.
pub const PCI_EXP_DEVSTA_CED: u16 = 0x0001;
/// Non-Fatal Error Detected.
pub const PCI_EXP_DEVSTA_NFED: u16 = 0x0002;
/// Fatal Error Detected.
pub const PCI_EXP_DEVSTA_FED: u16 = 0x0004;
/// Unsupported Request Detected.
pub const PCI_EXP_DEVSTA_URD: u16 = 0x0008;
/// AUX Power Detected.
pub const PCI_EXP_DEVSTA_AUXPD: u16 = 0x0010;
/// Transactions Pending.
pub const PCI_EXP_DEVSTA_TRPND: u16 = 0x0020;
/// Link Capabilities.
pub const PCI_EXP_LNKCAP: u16 = 0x0c;
/// Max Link Speed.
pub const PCI_EXP_LNKCAP_SLS: u32 = 0x0000_000f;
/// Maximum Link Width.
pub const PCI_EXP_LNKCAP_MLW: u32 = 0x0000_03f0;
/// Link Control.
pub const PCI_EXP_LNKCTL: u16 = 0x10;
/// ASPM Control.
pub const PCI_EXP_LNKCTL_ASPMC: u16 = 0x0003;
/// Read Completion Boundary.
pub const PCI_EXP_LNKCTL_RCB: u16 = 0x0008;
/// Common Clock Configuration.
pub const PCI_EXP_LNKCTL_CCC: u16 = 0x0040;
/// Extended Synch.
pub const PCI_EXP_LNKCTL_ES: u16 = 0x0080;
/// Link Status.
pub const PCI_EXP_LNKSTA: u16 = 0x12;
/// Current Link Speed.
pub const PCI_EXP_LNKSTA_CLS: u16 = 0x000f;
/// Negotiated Link Width.
pub const PCI_EXP_LNKSTA_NLW: u16 = 0x03f0;
/// Start of NLW mask in link status.
pub const PCI_EXP_LNKSTA_NLW_SHIFT: u16 = 4;
/// Slot Capabilities.
pub const PCI_EXP_SLTCAP: u16 = 0x14;
/// Device Capabilities 2.
pub const PCI_EXP_DEVCAP2: u16 = 0x24;
/// Device Control 2.
pub const PCI_EXP_DEVCTL2: u16 = 0x28;
/// Device Status 2.
pub const PCI_EXP_DEVSTA2: u16 = 0x2a;
/// Link Capabilities 2.
pub const PCI_EXP_LNKCAP2: u16 = 0x2c;
/// Supported Link Speeds Vector.
pub const PCI_EXP_LNKCAP2_SLS: u32 = 0x0000_00fe;
/// Link Control 2.
pub const PCI_EXP_LNKCTL2: u16 = 0x30;
/// Target Link Speed.
pub const PCI_EXP_LNKCTL2_TLS: u16 = 0x000f;
/// Link Status 2.
pub const PCI_EXP_LNKSTA2: u16 = 0x32;
/// Slot Capabilities 2.
pub const PCI_EXP_SLTCAP2: u16 = 0x34;
/// Slot Control 2.
pub const PCI_EXP_SLTCTL2: u16 = 0x38;
/// Slot Status 2.
pub const PCI_EXP_SLTSTA2: u16 = 0x3a;

// --- Extended capabilities ------------------------------------------------------------------------

/// Where the extended capability list starts (`PCI_CFG_SPACE_SIZE`).
pub const PCI_EXT_CAP_START: u16 = PCI_CFG_SPACE_SIZE;
/// Address Translation Services.
pub const PCI_EXT_CAP_ID_ATS: u16 = 0x0f;
/// Page Request Interface.
pub const PCI_EXT_CAP_ID_PRI: u16 = 0x13;
/// Process Address Space ID.
pub const PCI_EXT_CAP_ID_PASID: u16 = 0x1b;

/// `PCI_EXT_CAP_ID(header)`.
pub const fn pci_ext_cap_id(header: u32) -> u16 {
    (header & 0x0000_ffff) as u16
}

/// `PCI_EXT_CAP_VER(header)`.
pub const fn pci_ext_cap_ver(header: u32) -> u8 {
    ((header >> 16) & 0xf) as u8
}

/// `PCI_EXT_CAP_NEXT(header)`.
pub const fn pci_ext_cap_next(header: u32) -> u16 {
    ((header >> 20) & 0xffc) as u16
}
