//! The hostile client's corpus: malformed messages and what the server must do with each.

use crate::common::{BAR0, CONFIG, PAGE, eventfd, memfd};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use uvfio_abi::vfio::{
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VfioIrqSet, VfioRegionInfo,
};
use uvfio_abi::vfio_user::{
    VFIO_USER_DIRTY_PAGES, VFIO_USER_F_TYPE_REPLY, VfioUserDmaMap, VfioUserDmaRegionAccess, VfioUserDmaUnmap,
    VfioUserMigData, VfioUserRegionAccess, VfioUserVersion,
};
use uvfio_vfio_user::proto::device::encode_query;
use uvfio_vfio_user::proto::feature::Feature;
use uvfio_vfio_user::proto::region::{MultiWrite, RegionAccess, encode_write_multi};
use uvfio_vfio_user::proto::{Command, HEADER_SIZE, Header};
use zerocopy::IntoBytes;

pub const ID: u16 = 0x77;

/// A message with a header of our choosing: `msg_size` as given (None: the true size).
pub fn raw(cmd: u16, flags: u32, error_no: u32, msg_size: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        msg_id: ID,
        cmd,
        msg_size: msg_size.unwrap_or((HEADER_SIZE + payload.len()) as u32),
        flags,
        error_no,
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A well-formed command with `payload`.
pub fn cmd(c: Command, payload: &[u8]) -> Vec<u8> {
    raw(c.raw(), 0, 0, None, payload)
}

/// What the server must do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An error reply with this errno; the connection stays usable.
    Error(Errno),
    /// An error reply with this errno, then the server closes the connection.
    ErrorThenClose(Errno),
    /// The server closes the connection without a reply.
    Close,
}

pub struct Case {
    pub name: &'static str,
    /// Do the handshake first.
    pub handshake: bool,
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    /// Shut the client's sending side after the bytes (a disconnection mid-message).
    pub shutdown: bool,
    pub expect: Expect,
}

fn case(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        handshake: true,
        bytes,
        fds: Vec::new(),
        shutdown: false,
        expect,
    }
}

fn version(major: u16, json: &[u8]) -> Vec<u8> {
    let mut p = VfioUserVersion { major, minor: 0 }.as_bytes().to_vec();
    p.extend_from_slice(json);
    p
}

fn dma_map(argsz: u32, flags: u32, offset: u64, addr: u64, size: u64) -> Vec<u8> {
    VfioUserDmaMap {
        argsz,
        flags,
        offset,
        addr,
        size,
    }
    .as_bytes()
    .to_vec()
}

fn dma_unmap(argsz: u32, flags: u32, addr: u64, size: u64) -> Vec<u8> {
    VfioUserDmaUnmap {
        argsz,
        flags,
        addr,
        size,
    }
    .as_bytes()
    .to_vec()
}

pub fn access(region: u32, offset: u64, count: u32) -> Vec<u8> {
    VfioUserRegionAccess {
        offset,
        region,
        count,
    }
    .as_bytes()
    .to_vec()
}

pub fn irq_set(argsz: u32, flags: u32, index: u32, start: u32, count: u32) -> Vec<u8> {
    VfioIrqSet {
        argsz,
        flags,
        index,
        start,
        count,
    }
    .as_bytes()
    .to_vec()
}

fn region_info(argsz: u32, index: u32, size: u64) -> Vec<u8> {
    VfioRegionInfo {
        argsz,
        index,
        size,
        ..Default::default()
    }
    .as_bytes()
    .to_vec()
}

pub const EFD: u32 = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
const INVAL: Expect = Expect::Error(Errno::INVAL);

pub fn corpus() -> Vec<Case> {
    use Expect::*;
    let info = encode_query(Command::DeviceGetInfo, 16, 0);
    let mut cases = vec![
        // Framing.
        Case {
            shutdown: true,
            ..case("short header", vec![1, 0, 4, 0, 16, 0, 0, 0, 0, 0], Close)
        },
        case(
            "msg_size below the header",
            raw(4, 0, 0, Some(8), &[]),
            ErrorThenClose(Errno::INVAL),
        ),
        case(
            "msg_size 4 GiB",
            raw(4, 0, 0, Some(u32::MAX), &[]),
            ErrorThenClose(Errno::INVAL),
        ),
        case(
            "msg_size above the limit",
            raw(10, 0, 0, Some(64 << 20), &[]),
            ErrorThenClose(Errno::INVAL),
        ),
        Case {
            shutdown: true,
            ..case(
                "msg_size smaller than sent",
                raw(9, 0, 0, Some((HEADER_SIZE + 8) as u32), &access(BAR0, 0, 4)),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            shutdown: true,
            ..case("msg_size bigger than sent", raw(4, 0, 0, Some(64), &info), Close)
        },
        Case {
            shutdown: true,
            ..case(
                "disconnect mid-message",
                raw(
                    10,
                    0,
                    0,
                    Some(HEADER_SIZE as u32 + 16 + 4096),
                    &access(BAR0, 0, 4096),
                ),
                Close,
            )
        },
        // Header fields.
        case("unknown header flag", raw(4, 0x40, 0, None, &info), INVAL),
        case("error flag on a command", raw(4, 0x20, 0, None, &info), INVAL),
        case(
            "a reply sent to the server",
            raw(4, VFIO_USER_F_TYPE_REPLY, 0, None, &info),
            INVAL,
        ),
        case("error field set in a command", raw(4, 0, 5, None, &info), INVAL),
        case("unknown command", raw(99, 0, 0, None, &info), Error(Errno::NOTTY)),
        case("command 0", raw(0, 0, 0, None, &[]), Error(Errno::NOTTY)),
        case(
            "VFIO_USER_DIRTY_PAGES (removed)",
            raw(VFIO_USER_DIRTY_PAGES, 0, 0, None, &[]),
            Error(Errno::NOTTY),
        ),
        case(
            "DMA_READ from the client",
            cmd(
                Command::DmaRead,
                VfioUserDmaRegionAccess { addr: 0, count: 4 }.as_bytes(),
            ),
            INVAL,
        ),
        // Handshake.
        Case {
            handshake: false,
            ..case(
                "first message not VERSION",
                cmd(Command::DeviceGetInfo, &info),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            handshake: false,
            ..case(
                "VERSION major 1",
                cmd(Command::Version, &version(1, b"")),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            handshake: false,
            ..case(
                "VERSION JSON not terminated",
                cmd(Command::Version, &version(0, b"{}")),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            handshake: false,
            ..case(
                "VERSION JSON malformed",
                cmd(Command::Version, &version(0, b"{\"capabilities\":\0")),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            handshake: false,
            ..case(
                "VERSION capability of the wrong type",
                cmd(
                    Command::Version,
                    &version(0, b"{\"capabilities\":{\"max_msg_fds\":\"8\"}}\0"),
                ),
                ErrorThenClose(Errno::INVAL),
            )
        },
        Case {
            handshake: false,
            ..case(
                "VERSION truncated",
                cmd(Command::Version, &[0, 0]),
                ErrorThenClose(Errno::INVAL),
            )
        },
        case("VERSION twice", cmd(Command::Version, &version(0, b"")), INVAL),
        // Truncated payloads and sizes.
        case(
            "truncated DEVICE_GET_INFO",
            cmd(Command::DeviceGetInfo, &info[..8]),
            INVAL,
        ),
        case(
            "DEVICE_GET_INFO with a tail",
            cmd(Command::DeviceGetInfo, &[&info[..], &[0]].concat()),
            INVAL,
        ),
        case(
            "DEVICE_GET_INFO argsz 8",
            cmd(
                Command::DeviceGetInfo,
                &encode_query(Command::DeviceGetInfo, 8, 0),
            ),
            INVAL,
        ),
        case(
            "REGION_INFO argsz 16",
            cmd(Command::DeviceGetRegionInfo, &region_info(16, 0, 0)),
            INVAL,
        ),
        case(
            "REGION_INFO non-zero size",
            cmd(Command::DeviceGetRegionInfo, &region_info(32, 0, 1)),
            INVAL,
        ),
        case(
            "DMA_MAP argsz 24",
            cmd(Command::DmaMap, &dma_map(24, 3, 0, 0x10_0000, PAGE)),
            INVAL,
        ),
        case(
            "DMA_MAP truncated",
            cmd(Command::DmaMap, &dma_map(32, 3, 0, 0x10_0000, PAGE)[..24]),
            INVAL,
        ),
        case(
            "DMA_UNMAP argsz 8",
            cmd(Command::DmaUnmap, &dma_unmap(8, 0, 0x10_0000, PAGE)),
            INVAL,
        ),
        case(
            "SET_IRQS argsz not the payload",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(24, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, 0),
            ),
            INVAL,
        ),
        case(
            "REGION_WRITE count above the data",
            cmd(Command::RegionWrite, &[access(CONFIG, 0, 8), vec![0; 4]].concat()),
            INVAL,
        ),
        case(
            "REGION_READ with data",
            cmd(Command::RegionRead, &[access(CONFIG, 0, 4), vec![0; 4]].concat()),
            INVAL,
        ),
        case(
            "DEVICE_RESET with a payload",
            cmd(Command::DeviceReset, &[0; 4]),
            INVAL,
        ),
        case(
            "REGION_WRITE above max_data_xfer_size",
            cmd(
                Command::RegionWrite,
                &[access(BAR0, 0, (1 << 20) + 1), vec![0; (1 << 20) + 1]].concat(),
            ),
            INVAL,
        ),
        // Flags.
        case(
            "DMA_MAP unknown flag",
            cmd(Command::DmaMap, &dma_map(32, 7, 0, 0x10_0000, PAGE)),
            INVAL,
        ),
        case(
            "DMA_MAP neither read nor write",
            cmd(Command::DmaMap, &dma_map(32, 0, 0, 0x10_0000, PAGE)),
            INVAL,
        ),
        case(
            "DMA_UNMAP unknown flag",
            cmd(Command::DmaUnmap, &dma_unmap(24, 4, 0x10_0000, PAGE)),
            INVAL,
        ),
        case(
            "DMA_UNMAP dirty bitmap",
            cmd(
                Command::DmaUnmap,
                &dma_unmap(24, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0x10_0000, PAGE),
            ),
            INVAL,
        ),
        case(
            "DMA_UNMAP ALL with an address",
            cmd(Command::DmaUnmap, &dma_unmap(24, 2, 0x10_0000, 0)),
            INVAL,
        ),
        case(
            "SET_IRQS two actions",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(20, VFIO_IRQ_SET_DATA_NONE | 0x30, 0, 0, 1),
            ),
            INVAL,
        ),
        case(
            "SET_IRQS unknown flag",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(
                    20,
                    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER | 0x100,
                    0,
                    0,
                    1,
                ),
            ),
            INVAL,
        ),
        case(
            "DEVICE_FEATURE GET and SET",
            cmd(
                Command::DeviceFeature,
                &Feature {
                    index: 1,
                    get: true,
                    set: true,
                    probe: false,
                    data: vec![],
                }
                .encode(8),
            ),
            INVAL,
        ),
        case(
            "REGION_WRITE_MULTI not negotiated",
            cmd(
                Command::RegionWriteMulti,
                &encode_write_multi(&[MultiWrite {
                    access: RegionAccess {
                        region: BAR0,
                        offset: 4,
                        count: 4,
                    },
                    data: [0; 8],
                }]),
            ),
            INVAL,
        ),
        // Indexes at the count.
        case(
            "REGION_INFO index == num_regions",
            cmd(Command::DeviceGetRegionInfo, &region_info(32, 9, 0)),
            INVAL,
        ),
        case(
            "REGION_INFO index u32::MAX",
            cmd(Command::DeviceGetRegionInfo, &region_info(32, u32::MAX, 0)),
            INVAL,
        ),
        case(
            "IRQ_INFO index == num_irqs",
            cmd(
                Command::DeviceGetIrqInfo,
                &encode_query(Command::DeviceGetIrqInfo, 16, 5),
            ),
            INVAL,
        ),
        case(
            "REGION_IO_FDS index == num_regions",
            cmd(
                Command::DeviceGetRegionIoFds,
                &encode_query(Command::DeviceGetRegionIoFds, 16, 9),
            ),
            INVAL,
        ),
        case(
            "REGION_READ region == num_regions",
            cmd(Command::RegionRead, &access(9, 0, 4)),
            INVAL,
        ),
        case(
            "SET_IRQS index == num_irqs",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(20, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 5, 0, 0),
            ),
            INVAL,
        ),
        case(
            "SET_IRQS start == count",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(
                    20,
                    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                    VFIO_PCI_INTX_IRQ_INDEX,
                    1,
                    1,
                ),
            ),
            INVAL,
        ),
        case(
            "SET_IRQS count u32::MAX",
            cmd(
                Command::DeviceSetIrqs,
                &irq_set(20, EFD, VFIO_PCI_MSI_IRQ_INDEX, 0, u32::MAX),
            ),
            INVAL,
        ),
        // Ranges.
        case(
            "DMA_MAP range wraps",
            cmd(Command::DmaMap, &dma_map(32, 3, 0, u64::MAX - 0xfff, 2 * PAGE)),
            INVAL,
        ),
        case(
            "DMA_MAP empty",
            cmd(Command::DmaMap, &dma_map(32, 3, 0, 0x10_0000, 0)),
            INVAL,
        ),
        case(
            "DMA_MAP unaligned",
            cmd(Command::DmaMap, &dma_map(32, 3, 0, 0x10_0800, PAGE)),
            INVAL,
        ),
        case(
            "DMA_UNMAP range wraps",
            cmd(Command::DmaUnmap, &dma_unmap(24, 0, u64::MAX, PAGE)),
            INVAL,
        ),
        case(
            "DMA_UNMAP of nothing",
            cmd(Command::DmaUnmap, &dma_unmap(24, 0, 0x10_0000, PAGE)),
            Error(Errno::NOENT),
        ),
        case(
            "REGION_READ offset wraps",
            cmd(Command::RegionRead, &access(BAR0, u64::MAX - 1, 4)),
            INVAL,
        ),
        case(
            "REGION_READ into the next region's offsets",
            cmd(Command::RegionRead, &access(BAR0, 1 << 40, 4)),
            INVAL,
        ),
        case(
            "REGION_READ past the region",
            cmd(Command::RegionRead, &access(CONFIG, 4094, 4)),
            INVAL,
        ),
        // Missing descriptors.
        case(
            "DMA_MAP offset without a descriptor",
            cmd(Command::DmaMap, &dma_map(32, 3, PAGE, 0x10_0000, PAGE)),
            INVAL,
        ),
        Case {
            fds: vec![eventfd()],
            ..case(
                "SET_IRQS one eventfd for two",
                cmd(
                    Command::DeviceSetIrqs,
                    &irq_set(20, EFD, VFIO_PCI_MSI_IRQ_INDEX, 0, 2),
                ),
                INVAL,
            )
        },
        // Extra descriptors.
        Case {
            fds: vec![eventfd()],
            ..case(
                "DEVICE_GET_INFO with a descriptor",
                cmd(Command::DeviceGetInfo, &info),
                INVAL,
            )
        },
        Case {
            fds: vec![memfd(PAGE), memfd(PAGE)],
            ..case(
                "DMA_MAP with two descriptors",
                cmd(Command::DmaMap, &dma_map(32, 3, 0, 0x10_0000, PAGE)),
                INVAL,
            )
        },
        Case {
            fds: (0..17).map(|_| eventfd()).collect(),
            ..case(
                "17 descriptors (max_msg_fds is 16)",
                cmd(
                    Command::DeviceSetIrqs,
                    &irq_set(20, EFD, VFIO_PCI_MSI_IRQ_INDEX, 0, 17),
                ),
                INVAL,
            )
        },
        Case {
            fds: vec![eventfd()],
            ..case(
                "SET_IRQS DATA_NONE with a descriptor",
                cmd(
                    Command::DeviceSetIrqs,
                    &irq_set(
                        20,
                        VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                        VFIO_PCI_INTX_IRQ_INDEX,
                        0,
                        1,
                    ),
                ),
                INVAL,
            )
        },
        Case {
            fds: vec![eventfd()],
            ..case(
                "DEVICE_RESET with a descriptor",
                cmd(Command::DeviceReset, &[]),
                INVAL,
            )
        },
        // Descriptors of the wrong kind or size: the host refuses them.
        Case {
            fds: vec![memfd(PAGE)],
            ..case(
                "DMA_MAP past the end of the memfd",
                cmd(Command::DmaMap, &dma_map(32, 3, 0, 0x10_0000, 4 * PAGE)),
                INVAL,
            )
        },
        Case {
            fds: vec![memfd(PAGE)],
            ..case(
                "SET_IRQS with a memfd for an eventfd",
                cmd(
                    Command::DeviceSetIrqs,
                    &irq_set(20, EFD, VFIO_PCI_INTX_IRQ_INDEX, 0, 1),
                ),
                INVAL,
            )
        },
        // Features and migration the device does not have.
        case(
            "DEVICE_FEATURE migration",
            cmd(
                Command::DeviceFeature,
                &Feature {
                    index: 1,
                    get: true,
                    set: false,
                    probe: false,
                    data: vec![],
                }
                .encode(16),
            ),
            Error(Errno::NOTTY),
        ),
        case(
            "MIG_DATA_READ",
            cmd(
                Command::MigDataRead,
                VfioUserMigData { argsz: 64, size: 56 }.as_bytes(),
            ),
            INVAL,
        ),
    ];
    // A DMA_MAP at an IOVA the domain cannot hold (past the IOMMU's address width).
    cases.push(Case {
        fds: vec![memfd(PAGE)],
        ..case(
            "DMA_MAP above the address width",
            cmd(Command::DmaMap, &dma_map(32, 3, 0, 1 << 60, PAGE)),
            INVAL,
        )
    });
    cases
}
