//! `VFIO_USER_DMA_MAP`, `VFIO_USER_DMA_UNMAP` (client → server) and `VFIO_USER_DMA_READ`,
//! `VFIO_USER_DMA_WRITE` (server → client).
//!
//! A map is checked as type1's `vfio_dma_do_map()` checks one, in the negotiated page size: "if
//! (!size || (size | iova | vaddr) & (pgsize - 1)) return -EINVAL", a range that wraps is `EINVAL`,
//! and a map that grants neither read nor write is `EINVAL` ("if (!prot ...)"). "If the DMA region
//! being added can be directly mapped by the server, a file descriptor must be sent as part of the
//! message meta-data"; otherwise "no file descriptor must be sent", and `offset` is "zero if the
//! region is not mappable" — so at most one descriptor, and a non-zero offset without one is
//! refused.
//!
//! An unmap names a region by address and size: "The address and size of the DMA region being
//! unmapped must match exactly a previous mapping." "*flags* is unused in this version"; QEMU's
//! client sends `<linux/vfio.h>`'s `VFIO_DMA_UNMAP_FLAG_ALL` (with address and size 0, as Linux
//! requires: "iova and size must be zero") to drop every region, which is accepted. Dirty-page
//! logging (`VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP` of earlier revisions) is never started here, so
//! that flag is `EINVAL`, as type1 answers it without dirty tracking; other bits are `EINVAL`.

use super::{ProtoError, argsz_at_least, exact, no_fds, split, zero};
use uvfio_abi::vfio::{VFIO_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP};
use uvfio_abi::vfio_user::{
    VFIO_USER_F_DMA_REGION_READ, VFIO_USER_F_DMA_REGION_WRITE, VfioUserDmaMap, VfioUserDmaRegionAccess,
    VfioUserDmaUnmap,
};
use uvfio_types::{Access, Iova, IovaRange};
use zerocopy::IntoBytes;

/// Size of the `VFIO_USER_DMA_MAP` payload.
pub const DMA_MAP_SIZE: usize = size_of::<VfioUserDmaMap>();
/// Size of the `VFIO_USER_DMA_UNMAP` payload (request and reply).
pub const DMA_UNMAP_SIZE: usize = size_of::<VfioUserDmaUnmap>();

/// A `VFIO_USER_DMA_MAP` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaMap {
    /// The client's DMA addresses of the region.
    pub range: IovaRange,
    /// The offset of the region in the file descriptor sent with it (0 without one).
    pub offset: u64,
    /// What the device may do: `READ` ("readable"), `WRITE` ("writeable").
    pub access: Access,
    /// Whether a file descriptor came with it.
    pub has_fd: bool,
}

impl DmaMap {
    /// Decodes a payload that came with `fds` descriptors, checking alignment to `page_size`.
    pub fn decode(payload: &[u8], fds: usize, page_size: u64) -> Result<DmaMap, ProtoError> {
        const WHAT: &str = "VFIO_USER_DMA_MAP";
        let raw: VfioUserDmaMap = exact(WHAT, payload)?;
        // "argsz is the size of the above structure. Note there is no reply payload".
        if raw.argsz as usize != DMA_MAP_SIZE {
            return Err(ProtoError::ArgszMismatch {
                what: WHAT,
                argsz: raw.argsz,
                len: DMA_MAP_SIZE,
            });
        }
        let known = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
        if raw.flags & !known != 0 || raw.flags & known == 0 {
            return Err(ProtoError::Flags {
                what: WHAT,
                flags: raw.flags,
            });
        }
        if fds > 1 {
            return Err(ProtoError::Fds {
                what: WHAT,
                got: fds,
                expected: "at most one",
            });
        }
        if fds == 0 {
            zero(WHAT, "offset (no file descriptor)", raw.offset)?;
        }
        let range =
            IovaRange::from_start_len(Iova::new(raw.addr), raw.size).map_err(|_| ProtoError::Range {
                what: WHAT,
                start: raw.addr,
                len: raw.size,
            })?;
        if raw.offset.checked_add(raw.size - 1).is_none() {
            return Err(ProtoError::Range {
                what: WHAT,
                start: raw.offset,
                len: raw.size,
            });
        }
        for (field, value) in [("addr", raw.addr), ("size", raw.size), ("offset", raw.offset)] {
            if value % page_size != 0 {
                return Err(ProtoError::Unaligned {
                    what: WHAT,
                    field,
                    value,
                    align: page_size,
                });
            }
        }
        let mut access = Access::empty();
        if raw.flags & VFIO_USER_F_DMA_REGION_READ != 0 {
            access |= Access::READ;
        }
        if raw.flags & VFIO_USER_F_DMA_REGION_WRITE != 0 {
            access |= Access::WRITE;
        }
        Ok(DmaMap {
            range,
            offset: raw.offset,
            access,
            has_fd: fds == 1,
        })
    }

    /// The payload (the descriptor, if any, goes with it as ancillary data).
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = 0;
        if self.access.contains(Access::READ) {
            flags |= VFIO_USER_F_DMA_REGION_READ;
        }
        if self.access.contains(Access::WRITE) {
            flags |= VFIO_USER_F_DMA_REGION_WRITE;
        }
        VfioUserDmaMap {
            argsz: DMA_MAP_SIZE as u32,
            flags,
            offset: self.offset,
            addr: self.range.start().raw(),
            size: self.range.len().unwrap_or(0),
        }
        .as_bytes()
        .to_vec()
    }
}

/// What an unmap removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapTarget {
    /// The region mapped exactly at this range.
    Range(IovaRange),
    /// Every region (`VFIO_DMA_UNMAP_FLAG_ALL`).
    All,
}

/// A `VFIO_USER_DMA_UNMAP` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaUnmap {
    /// What to unmap.
    pub target: UnmapTarget,
    raw: VfioUserDmaUnmap,
}

impl DmaUnmap {
    /// An unmap of `target`.
    pub fn new(target: UnmapTarget) -> DmaUnmap {
        let (flags, addr, size) = match target {
            UnmapTarget::All => (VFIO_DMA_UNMAP_FLAG_ALL, 0, 0),
            UnmapTarget::Range(r) => (0, r.start().raw(), r.len().unwrap_or(0)),
        };
        DmaUnmap {
            target,
            raw: VfioUserDmaUnmap {
                argsz: DMA_UNMAP_SIZE as u32,
                flags,
                addr,
                size,
            },
        }
    }

    /// Decodes a payload that came with `fds` descriptors (none allowed).
    pub fn decode(payload: &[u8], fds: usize) -> Result<DmaUnmap, ProtoError> {
        const WHAT: &str = "VFIO_USER_DMA_UNMAP";
        no_fds(WHAT, fds)?;
        let (raw, _): (VfioUserDmaUnmap, _) = split(WHAT, payload)?;
        if raw.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP != 0 || raw.flags & !VFIO_DMA_UNMAP_FLAG_ALL != 0
        {
            return Err(ProtoError::Flags {
                what: WHAT,
                flags: raw.flags,
            });
        }
        let raw: VfioUserDmaUnmap = exact(WHAT, payload)?;
        // "argsz is the maximum size of the reply payload": room for the entry sent back.
        argsz_at_least(WHAT, raw.argsz, DMA_UNMAP_SIZE)?;
        let target = if raw.flags & VFIO_DMA_UNMAP_FLAG_ALL != 0 {
            zero(WHAT, "addr (with VFIO_DMA_UNMAP_FLAG_ALL)", raw.addr)?;
            zero(WHAT, "size (with VFIO_DMA_UNMAP_FLAG_ALL)", raw.size)?;
            UnmapTarget::All
        } else {
            UnmapTarget::Range(
                IovaRange::from_start_len(Iova::new(raw.addr), raw.size).map_err(|_| ProtoError::Range {
                    what: WHAT,
                    start: raw.addr,
                    len: raw.size,
                })?,
            )
        };
        Ok(DmaUnmap { target, raw })
    }

    /// The request payload.
    pub fn encode(&self) -> Vec<u8> {
        self.raw.as_bytes().to_vec()
    }

    /// The reply payload: "The server responds with the original DMA entry in the request",
    /// with `argsz` set to the reply's size ("In a reply, the server sets `argsz` field to the size
    /// needed for a full payload size").
    pub fn reply(&self) -> Vec<u8> {
        VfioUserDmaUnmap {
            argsz: DMA_UNMAP_SIZE as u32,
            ..self.raw
        }
        .as_bytes()
        .to_vec()
    }
}

/// A `VFIO_USER_DMA_READ` request (server → client): "the server can use this message to read from
/// guest memory". Its reply is [`DmaData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaRead {
    /// "the client DMA memory address being accessed".
    pub addr: Iova,
    /// "the size of the data to be transferred".
    pub count: u64,
}

impl DmaRead {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        VfioUserDmaRegionAccess {
            addr: self.addr.raw(),
            count: self.count,
        }
        .as_bytes()
        .to_vec()
    }

    /// Decodes a request whose `count` may not pass `max` (the receiver's `max_data_xfer_size`).
    pub fn decode(payload: &[u8], max: u64) -> Result<DmaRead, ProtoError> {
        const WHAT: &str = "VFIO_USER_DMA_READ";
        let raw: VfioUserDmaRegionAccess = exact(WHAT, payload)?;
        check_count(WHAT, raw.addr, raw.count, max)?;
        Ok(DmaRead {
            addr: Iova::new(raw.addr),
            count: raw.count,
        })
    }
}

/// A `VFIO_USER_DMA_WRITE` request, or a `VFIO_USER_DMA_READ` reply: an address and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaData {
    /// "the client DMA memory address being accessed".
    pub addr: Iova,
    /// The data ("*count* is the size of the data").
    pub data: Vec<u8>,
}

impl DmaData {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = VfioUserDmaRegionAccess {
            addr: self.addr.raw(),
            count: self.data.len() as u64,
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes one whose `count` must equal the data that follows and not pass `max`.
    pub fn decode(payload: &[u8], max: u64) -> Result<DmaData, ProtoError> {
        const WHAT: &str = "VFIO_USER_DMA_WRITE";
        let (raw, data): (VfioUserDmaRegionAccess, _) = split(WHAT, payload)?;
        check_count(WHAT, raw.addr, raw.count, max)?;
        if data.len() as u64 != raw.count {
            return Err(ProtoError::Length {
                what: WHAT,
                len: payload.len(),
                expected: size_of::<VfioUserDmaRegionAccess>().saturating_add(raw.count as usize),
            });
        }
        Ok(DmaData {
            addr: Iova::new(raw.addr),
            data: data.to_vec(),
        })
    }
}

fn check_count(what: &'static str, addr: u64, count: u64, max: u64) -> Result<(), ProtoError> {
    if count > max {
        return Err(ProtoError::TooLarge { what, count, max });
    }
    if count > 0 && addr.checked_add(count - 1).is_none() {
        return Err(ProtoError::Range {
            what,
            start: addr,
            len: count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(argsz: u32, flags: u32, offset: u64, addr: u64, size: u64) -> Vec<u8> {
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

    #[test]
    fn dma_map_checks() {
        let ok = DmaMap::decode(&map(32, 3, 0x1000, 0x10_0000, 0x2000), 1, 4096).unwrap();
        assert_eq!(ok.access, Access::RW);
        assert_eq!(DmaMap::decode(&ok.encode(), 1, 4096).unwrap(), ok);
        let bad = [
            (map(24, 3, 0, 0x1000, 0x1000), 1),           // argsz
            (map(32, 0, 0, 0x1000, 0x1000), 1),           // no access
            (map(32, 7, 0, 0x1000, 0x1000), 1),           // unknown flag
            (map(32, 3, 0, 0x1000, 0), 1),                // empty
            (map(32, 3, 0, u64::MAX - 0xfff, 0x2000), 1), // wraps
            (map(32, 3, u64::MAX - 0xfff, 0, 0x2000), 1), // offset wraps
            (map(32, 3, 0, 0x1800, 0x1000), 1),           // unaligned
            (map(32, 3, 0x1000, 0x1000, 0x1000), 0),      // offset without fd
            (map(32, 3, 0, 0x1000, 0x1000), 2),           // two fds
        ];
        for (p, fds) in bad {
            assert!(DmaMap::decode(&p, fds, 4096).is_err(), "{p:?} {fds}");
        }
        let mut long = map(32, 3, 0, 0x1000, 0x1000);
        long.push(0);
        assert!(DmaMap::decode(&long, 1, 4096).is_err());
    }

    #[test]
    fn dma_unmap_checks() {
        let r = IovaRange::from_start_len(Iova::new(0x1000), 0x1000).unwrap();
        let u = DmaUnmap::decode(&DmaUnmap::new(UnmapTarget::Range(r)).encode(), 0).unwrap();
        assert_eq!(u.target, UnmapTarget::Range(r));
        assert_eq!(u.reply().len(), DMA_UNMAP_SIZE);
        let all = DmaUnmap::decode(&DmaUnmap::new(UnmapTarget::All).encode(), 0).unwrap();
        assert_eq!(all.target, UnmapTarget::All);
        let raw = |argsz, flags, addr, size| {
            VfioUserDmaUnmap {
                argsz,
                flags,
                addr,
                size,
            }
            .as_bytes()
            .to_vec()
        };
        for p in [
            raw(24, 1, 0x1000, 0x1000),   // dirty bitmap
            raw(24, 4, 0x1000, 0x1000),   // unknown
            raw(24, 2, 0x1000, 0),        // ALL with an address
            raw(16, 0, 0x1000, 0x1000),   // argsz
            raw(24, 0, 0x1000, 0),        // empty
            raw(24, 0, u64::MAX, 0x1000), // wraps
        ] {
            assert!(DmaUnmap::decode(&p, 0).is_err(), "{p:?}");
        }
        assert!(DmaUnmap::decode(&raw(24, 0, 0, 0x1000), 1).is_err());
    }

    #[test]
    fn dma_read_write_round_trip() {
        let r = DmaRead {
            addr: Iova::new(0x1000),
            count: 8,
        };
        assert_eq!(DmaRead::decode(&r.encode(), 8).unwrap(), r);
        assert!(DmaRead::decode(&r.encode(), 4).is_err());
        let w = DmaData {
            addr: Iova::new(0x1000),
            data: vec![1, 2, 3],
        };
        assert_eq!(DmaData::decode(&w.encode(), 8).unwrap(), w);
        let mut short = w.encode();
        short.pop();
        assert!(DmaData::decode(&short, 8).is_err());
    }
}
