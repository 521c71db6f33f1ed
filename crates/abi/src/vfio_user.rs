//! vfio-user (QEMU `docs/interop/vfio-user.rst`): the message header, the command numbers and the
//! fixed parts of the messages that are not `<linux/vfio.h>` structs.
//!
//! "In many cases, the messages are analogous to data structures used in the `ioctl()`
//! implementation": `VFIO_USER_DEVICE_GET_REGION_INFO` carries `struct vfio_region_info` with its
//! capability chain ([`crate::vfio::VfioRegionInfo`]), `VFIO_USER_DEVICE_GET_IRQ_INFO`
//! `struct vfio_irq_info` ([`crate::vfio::VfioIrqInfo`]) and `VFIO_USER_DEVICE_SET_IRQS`
//! `struct vfio_irq_set` ([`crate::vfio::VfioIrqSet`]); those are not repeated here. The layouts
//! below follow the spec's tables (and libvfio-user's `include/vfio-user.h`, whose structs are
//! `packed` but have no padding to lose: every field here sits at its natural alignment, so
//! `#[repr(C)]` gives the same bytes). "In this revision, all data is in the endianness of the host
//! system."
//!
//! Variable parts (the version's JSON, region data, the sub-region array, bitmaps) follow the
//! fixed parts in the message, as flexible array members do in C.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `VFIO_USER_VERSION`: "the initial message sent by the client after the socket connection is
/// established".
pub const VFIO_USER_VERSION: u16 = 1;
/// `VFIO_USER_DMA_MAP`.
pub const VFIO_USER_DMA_MAP: u16 = 2;
/// `VFIO_USER_DMA_UNMAP`.
pub const VFIO_USER_DMA_UNMAP: u16 = 3;
/// `VFIO_USER_DEVICE_GET_INFO`.
pub const VFIO_USER_DEVICE_GET_INFO: u16 = 4;
/// `VFIO_USER_DEVICE_GET_REGION_INFO`.
pub const VFIO_USER_DEVICE_GET_REGION_INFO: u16 = 5;
/// `VFIO_USER_DEVICE_GET_REGION_IO_FDS`.
pub const VFIO_USER_DEVICE_GET_REGION_IO_FDS: u16 = 6;
/// `VFIO_USER_DEVICE_GET_IRQ_INFO`.
pub const VFIO_USER_DEVICE_GET_IRQ_INFO: u16 = 7;
/// `VFIO_USER_DEVICE_SET_IRQS`.
pub const VFIO_USER_DEVICE_SET_IRQS: u16 = 8;
/// `VFIO_USER_REGION_READ`.
pub const VFIO_USER_REGION_READ: u16 = 9;
/// `VFIO_USER_REGION_WRITE`.
pub const VFIO_USER_REGION_WRITE: u16 = 10;
/// `VFIO_USER_DMA_READ` (server → client).
pub const VFIO_USER_DMA_READ: u16 = 11;
/// `VFIO_USER_DMA_WRITE` (server → client).
pub const VFIO_USER_DMA_WRITE: u16 = 12;
/// `VFIO_USER_DEVICE_RESET`.
pub const VFIO_USER_DEVICE_RESET: u16 = 13;
/// `VFIO_USER_DIRTY_PAGES`: number 14 of earlier revisions of the spec (still in QEMU's
/// `hw/vfio-user/protocol.h`); the current spec's table skips it (dirty tracking moved to
/// `VFIO_USER_DEVICE_FEATURE`).
pub const VFIO_USER_DIRTY_PAGES: u16 = 14;
/// `VFIO_USER_REGION_WRITE_MULTI`.
pub const VFIO_USER_REGION_WRITE_MULTI: u16 = 15;
/// `VFIO_USER_DEVICE_FEATURE`.
pub const VFIO_USER_DEVICE_FEATURE: u16 = 16;
/// `VFIO_USER_MIG_DATA_READ`.
pub const VFIO_USER_MIG_DATA_READ: u16 = 17;
/// `VFIO_USER_MIG_DATA_WRITE`.
pub const VFIO_USER_MIG_DATA_WRITE: u16 = 18;

/// Header flags, bits 0-3: "The *Type* bits indicate the message type."
pub const VFIO_USER_F_TYPE_MASK: u32 = 0xf;
/// "*Command* (value 0x0) indicates a command message."
pub const VFIO_USER_F_TYPE_COMMAND: u32 = 0x0;
/// "*Reply* (value 0x1) indicates a reply message acknowledging a previous command with the same
/// message ID."
pub const VFIO_USER_F_TYPE_REPLY: u32 = 0x1;
/// Bit 4: "*No_reply* in a command message indicates that no reply is needed for this command."
pub const VFIO_USER_F_NO_REPLY: u32 = 0x10;
/// Bit 5: "*Error* in a reply message indicates the command being acknowledged had an error. In
/// this case, the *Error* field will be valid."
pub const VFIO_USER_F_ERROR: u32 = 0x20;

/// `struct vfio_user_header`: "All messages, both command messages and reply messages, are
/// preceded by a 16-byte header".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserHeader {
    /// "Message ID identifies the message, and is echoed in the command's reply message."
    pub msg_id: u16,
    /// "Command specifies the command to be executed" (`VFIO_USER_*`).
    pub cmd: u16,
    /// "the size of the entire message, including the header".
    pub msg_size: u32,
    /// `VFIO_USER_F_*`.
    pub flags: u32,
    /// "Error in a reply message is an optional UNIX errno value. [...] It is reserved in a
    /// command message."
    pub error_no: u32,
}

/// Fixed part of `VFIO_USER_VERSION` (request and reply); the optional JSON version data follows,
/// "including terminating NUL".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserVersion {
    /// "version major".
    pub major: u16,
    /// "version minor".
    pub minor: u16,
}

/// `VFIO_USER_DMA_MAP` request: "This structure is 32 bytes in size".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserDmaMap {
    /// "the size of the above structure".
    pub argsz: u32,
    /// [`VFIO_USER_F_DMA_REGION_READ`] | [`VFIO_USER_F_DMA_REGION_WRITE`].
    pub flags: u32,
    /// "the file offset of the region with respect to the associated file descriptor, or zero if
    /// the region is not mappable".
    pub offset: u64,
    /// "the base DMA address of the region".
    pub addr: u64,
    /// "the size of the region".
    pub size: u64,
}

/// DMA map flag bit 0: "*readable* indicates that the region can be read from."
pub const VFIO_USER_F_DMA_REGION_READ: u32 = 1 << 0;
/// DMA map flag bit 1: "*writeable* indicates that the region can be written to."
pub const VFIO_USER_F_DMA_REGION_WRITE: u32 = 1 << 1;

/// `VFIO_USER_DMA_UNMAP` request and reply ("The server responds with the original DMA entry in
/// the request.").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserDmaUnmap {
    /// "the maximum size of the reply payload".
    pub argsz: u32,
    /// "*flags* is unused in this version" (clients send `<linux/vfio.h>`'s
    /// `VFIO_DMA_UNMAP_FLAG_ALL`; earlier revisions defined `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`
    /// with a [`VfioUserBitmap`] following).
    pub flags: u32,
    /// "the base DMA address of the DMA region".
    pub addr: u64,
    /// "the size of the DMA region".
    pub size: u64,
}

/// `struct vfio_user_bitmap` (after a [`VfioUserDmaUnmap`] with
/// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`, in earlier revisions); `size` bytes of bitmap follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserBitmap {
    /// Page size a bit stands for.
    pub pgsize: u64,
    /// Bytes of bitmap.
    pub size: u64,
}

/// `VFIO_USER_DEVICE_GET_INFO` request and reply (`struct vfio_user_device_info`: "Similar to
/// vfio_device_info, but without caps").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserDeviceInfo {
    /// Request: "the maximum size of the reply payload"; reply: "the size required for the full
    /// reply payload (16 bytes today)".
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_RESET` | `VFIO_DEVICE_FLAGS_PCI`.
    pub flags: u32,
    /// "the number of memory regions that the device exposes".
    pub num_regions: u32,
    /// "the number of distinct interrupt types that the device supports".
    pub num_irqs: u32,
}

/// Fixed part of `VFIO_USER_DEVICE_GET_REGION_IO_FDS` request and reply; in the reply `count`
/// sub-regions ([`VfioUserSubRegionIoeventfd`] or [`VfioUserSubRegionIoregionfd`]) follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserRegionIoFds {
    /// Request: "the maximum size of the reply payload"; reply: "the size of the region IO FD
    /// info structure plus the total size of the sub-region array".
    pub argsz: u32,
    /// "must be zero".
    pub flags: u32,
    /// "the index of memory region being queried".
    pub index: u32,
    /// Request: zero; reply: "the number of sub-regions in the array".
    pub count: u32,
}

/// Sub-region type: ioeventfd.
pub const VFIO_USER_IO_FD_TYPE_IOEVENTFD: u32 = 0;
/// Sub-region type: ioregionfd.
pub const VFIO_USER_IO_FD_TYPE_IOREGIONFD: u32 = 1;

/// "Sub-Region IO FD info format (ioeventfd)".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserSubRegionIoeventfd {
    /// "the offset of the start of the sub-region within the region requested".
    pub offset: u64,
    /// "the length of the sub-region".
    pub size: u64,
    /// "the index in the ancillary data of the FD to use for ioeventfd notification".
    pub fd_index: u32,
    /// [`VFIO_USER_IO_FD_TYPE_IOEVENTFD`].
    pub type_: u32,
    /// `KVM_IOEVENTFD_FLAG_*`.
    pub flags: u32,
    /// Padding.
    pub padding: u32,
    /// "the datamatch value if needed".
    pub datamatch: u64,
}

/// "Sub-Region IO FD info format (ioregionfd)".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserSubRegionIoregionfd {
    /// "the offset of the start of the sub-region within the region requested".
    pub offset: u64,
    /// "the length of the sub-region".
    pub size: u64,
    /// "the index in the ancillary data of the FD to use for ioregionfd messages".
    pub fd_index: u32,
    /// [`VFIO_USER_IO_FD_TYPE_IOREGIONFD`].
    pub type_: u32,
    /// `KVM_IOREGION_*`.
    pub flags: u32,
    /// Padding.
    pub padding: u32,
    /// "an opaque value passed back to the server via a message on the file descriptor".
    pub user_data: u64,
}

/// Fixed part of `VFIO_USER_REGION_READ` / `VFIO_USER_REGION_WRITE` request and reply
/// (`struct vfio_user_region_access`); `data` follows in a read reply and a write request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserRegionAccess {
    /// "offset into the region being accessed".
    pub offset: u64,
    /// "the index of the region being accessed".
    pub region: u32,
    /// "the size of the data to be transferred".
    pub count: u32,
}

/// Fixed part of `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE` (`struct
/// vfio_user_dma_region_access`); `data` follows in a read reply and a write request.
///
/// The spec's table for the `VFIO_USER_DMA_WRITE` reply gives `count` 4 bytes; libvfio-user and
/// QEMU use this 16-byte struct for it, as here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserDmaRegionAccess {
    /// "the client DMA memory address being accessed".
    pub addr: u64,
    /// "the size of the data to be transferred".
    pub count: u64,
}

/// Fixed part of `VFIO_USER_REGION_WRITE_MULTI` request (`wr_cnt`) and its reply; `wr_cnt`
/// [`VfioUserRegionWriteMultiEntry`]s follow in the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserRegionWriteMulti {
    /// Request: "the number of device writes coalesced in the message"; reply: "the number of
    /// device writes completed".
    pub wr_cnt: u64,
}

/// Most writes one `VFIO_USER_REGION_WRITE_MULTI` may carry (QEMU's `VFIO_USER_MULTI_MAX`).
pub const VFIO_USER_MULTI_MAX: u64 = 200;

/// Data bytes of one [`VfioUserRegionWriteMultiEntry`]: "This format can only describe writes of
/// 8 bytes or less."
pub const VFIO_USER_MULTI_DATA: usize = 8;

/// "Single Device Write Format" of `VFIO_USER_REGION_WRITE_MULTI`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserRegionWriteMultiEntry {
    /// "offset into the region being accessed".
    pub offset: u64,
    /// "the index of the region being accessed".
    pub region: u32,
    /// "the size of the data to be transferred".
    pub count: u32,
    /// "the data to write".
    pub data: [u8; VFIO_USER_MULTI_DATA],
}

/// Fixed part of `VFIO_USER_DEVICE_FEATURE` request and reply ("analogous to VFIO's `struct
/// vfio_device_feature`"); `data` follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserDeviceFeature {
    /// "the maximum size of the reply payload".
    pub argsz: u32,
    /// Feature index (bits 0-15) and `VFIO_DEVICE_FEATURE_GET` / `_SET` / `_PROBE`.
    pub flags: u32,
}

/// Fixed part of `VFIO_USER_MIG_DATA_READ` / `VFIO_USER_MIG_DATA_WRITE` (`struct
/// vfio_user_mig_data`); `data` follows in a read reply and a write request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VfioUserMigData {
    /// "the maximum size of the reply payload" (request), the size including data (reply).
    pub argsz: u32,
    /// "the size of the migration data to read" / "to be written".
    pub size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Every size and offset of the spec's tables ("Offset" / "Size" columns).
    #[test]
    fn layouts_match_the_spec_tables() {
        assert_eq!(size_of::<VfioUserHeader>(), 16);
        assert_eq!(offset_of!(VfioUserHeader, cmd), 2);
        assert_eq!(offset_of!(VfioUserHeader, msg_size), 4);
        assert_eq!(offset_of!(VfioUserHeader, flags), 8);
        assert_eq!(offset_of!(VfioUserHeader, error_no), 12);
        assert_eq!(size_of::<VfioUserVersion>(), 4);
        assert_eq!(size_of::<VfioUserDmaMap>(), 32);
        assert_eq!(offset_of!(VfioUserDmaMap, offset), 8);
        assert_eq!(offset_of!(VfioUserDmaMap, addr), 16);
        assert_eq!(offset_of!(VfioUserDmaMap, size), 24);
        assert_eq!(size_of::<VfioUserDmaUnmap>(), 24);
        assert_eq!(offset_of!(VfioUserDmaUnmap, addr), 8);
        assert_eq!(offset_of!(VfioUserDmaUnmap, size), 16);
        assert_eq!(size_of::<VfioUserDeviceInfo>(), 16);
        assert_eq!(offset_of!(VfioUserDeviceInfo, num_irqs), 12);
        assert_eq!(size_of::<VfioUserRegionIoFds>(), 16);
        assert_eq!(size_of::<VfioUserSubRegionIoeventfd>(), 40);
        assert_eq!(offset_of!(VfioUserSubRegionIoeventfd, fd_index), 16);
        assert_eq!(offset_of!(VfioUserSubRegionIoeventfd, datamatch), 32);
        assert_eq!(size_of::<VfioUserSubRegionIoregionfd>(), 40);
        assert_eq!(offset_of!(VfioUserSubRegionIoregionfd, user_data), 32);
        assert_eq!(size_of::<VfioUserRegionAccess>(), 16);
        assert_eq!(offset_of!(VfioUserRegionAccess, region), 8);
        assert_eq!(offset_of!(VfioUserRegionAccess, count), 12);
        assert_eq!(size_of::<VfioUserDmaRegionAccess>(), 16);
        assert_eq!(size_of::<VfioUserRegionWriteMulti>(), 8);
        assert_eq!(size_of::<VfioUserRegionWriteMultiEntry>(), 24);
        assert_eq!(offset_of!(VfioUserRegionWriteMultiEntry, data), 16);
        assert_eq!(size_of::<VfioUserDeviceFeature>(), 8);
        assert_eq!(size_of::<VfioUserMigData>(), 8);
        assert_eq!(size_of::<VfioUserBitmap>(), 16);
    }
}
