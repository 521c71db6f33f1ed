//! The device queries and `SET_IRQS`: `VFIO_USER_DEVICE_GET_INFO`,
//! `VFIO_USER_DEVICE_GET_REGION_INFO` (with its capability chain), `VFIO_USER_DEVICE_GET_REGION_IO_FDS`,
//! `VFIO_USER_DEVICE_GET_IRQ_INFO`, `VFIO_USER_DEVICE_SET_IRQS`.
//!
//! In every query "*argsz* is the maximum size of the reply payload" and "all other fields must
//! be zero" (but the index); a request with a non-zero field, an `argsz` below the fixed reply, or
//! file descriptors is `EINVAL`. `SET_IRQS` carries `struct vfio_irq_set`, with "*argsz* [...] the
//! size of the VFIO IRQ set request payload, including any *data* field", one `DATA` and one
//! `ACTION` flag ("The flags are mutually exclusive for both sets"), booleans in the payload for
//! `DATA_BOOL`, and for `DATA_EVENTFD` "an array of event file descriptors was sent in the message
//! meta-data" — one per sub-index — or none: "If no file descriptors are provided, this
//! de-assigns the specified previously configured interrupts."

use super::{ProtoError, argsz_at_least, exact, no_fds, split, zero};
use uvfio_abi::vfio::{
    VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_SPARSE_MMAP,
    VFIO_REGION_INFO_CAP_TYPE, VFIO_REGION_INFO_FLAG_CAPS, VfioInfoCapHeader, VfioIrqInfo, VfioIrqSet,
    VfioRegionInfo, VfioRegionInfoCapSparseMmap, VfioRegionInfoCapType, VfioRegionSparseMmapArea,
};
use uvfio_abi::vfio_user::{VfioUserDeviceInfo, VfioUserRegionIoFds};
use zerocopy::{FromBytes, IntoBytes};

/// Size of `struct vfio_user_device_info`.
pub const DEVICE_INFO_SIZE: usize = size_of::<VfioUserDeviceInfo>();
/// Size of `struct vfio_region_info`.
pub const REGION_INFO_SIZE: usize = size_of::<VfioRegionInfo>();
/// Size of `struct vfio_irq_info`.
pub const IRQ_INFO_SIZE: usize = size_of::<VfioIrqInfo>();
/// Size of the fixed part of `struct vfio_irq_set`.
pub const IRQ_SET_SIZE: usize = size_of::<VfioIrqSet>();
/// Size of the fixed part of the region I/O fds request and reply.
pub const IO_FDS_SIZE: usize = size_of::<VfioUserRegionIoFds>();

/// A query's `argsz` and index (0 for `GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// "the maximum size of the reply payload".
    pub argsz: u32,
    /// The region or IRQ index asked about.
    pub index: u32,
}

/// Decodes `VFIO_USER_DEVICE_GET_INFO`.
pub fn decode_device_info(payload: &[u8], fds: usize) -> Result<Query, ProtoError> {
    const WHAT: &str = "VFIO_USER_DEVICE_GET_INFO";
    no_fds(WHAT, fds)?;
    let raw: VfioUserDeviceInfo = exact(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, DEVICE_INFO_SIZE)?;
    zero(WHAT, "flags", raw.flags.into())?;
    zero(WHAT, "num_regions", raw.num_regions.into())?;
    zero(WHAT, "num_irqs", raw.num_irqs.into())?;
    Ok(Query {
        argsz: raw.argsz,
        index: 0,
    })
}

/// Decodes `VFIO_USER_DEVICE_GET_REGION_INFO`: "*index* is the index of memory region being
/// queried, it is the only field that is required to be set in the command message."
pub fn decode_region_info(payload: &[u8], fds: usize) -> Result<Query, ProtoError> {
    const WHAT: &str = "VFIO_USER_DEVICE_GET_REGION_INFO";
    no_fds(WHAT, fds)?;
    let raw: VfioRegionInfo = exact(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, REGION_INFO_SIZE)?;
    zero(WHAT, "flags", raw.flags.into())?;
    zero(WHAT, "cap_offset", raw.cap_offset.into())?;
    zero(WHAT, "size", raw.size)?;
    zero(WHAT, "offset", raw.offset)?;
    Ok(Query {
        argsz: raw.argsz,
        index: raw.index,
    })
}

/// Decodes `VFIO_USER_DEVICE_GET_REGION_IO_FDS`: "The client must set `flags` to zero and specify
/// the region being queried in the `index`."
pub fn decode_region_io_fds(payload: &[u8], fds: usize) -> Result<Query, ProtoError> {
    const WHAT: &str = "VFIO_USER_DEVICE_GET_REGION_IO_FDS";
    no_fds(WHAT, fds)?;
    let raw: VfioUserRegionIoFds = exact(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, IO_FDS_SIZE)?;
    zero(WHAT, "flags", raw.flags.into())?;
    zero(WHAT, "count", raw.count.into())?;
    Ok(Query {
        argsz: raw.argsz,
        index: raw.index,
    })
}

/// Decodes `VFIO_USER_DEVICE_GET_IRQ_INFO`.
pub fn decode_irq_info(payload: &[u8], fds: usize) -> Result<Query, ProtoError> {
    const WHAT: &str = "VFIO_USER_DEVICE_GET_IRQ_INFO";
    no_fds(WHAT, fds)?;
    let raw: VfioIrqInfo = exact(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, IRQ_INFO_SIZE)?;
    zero(WHAT, "flags", raw.flags.into())?;
    zero(WHAT, "count", raw.count.into())?;
    Ok(Query {
        argsz: raw.argsz,
        index: raw.index,
    })
}

/// A query's request payload (client side): `argsz`, zeros, the index in its place.
pub fn encode_query(cmd: super::Command, argsz: u32, index: u32) -> Vec<u8> {
    match cmd {
        super::Command::DeviceGetRegionInfo => VfioRegionInfo {
            argsz,
            index,
            ..Default::default()
        }
        .as_bytes()
        .to_vec(),
        super::Command::DeviceGetRegionIoFds => VfioUserRegionIoFds {
            argsz,
            index,
            ..Default::default()
        }
        .as_bytes()
        .to_vec(),
        super::Command::DeviceGetIrqInfo => VfioIrqInfo {
            argsz,
            index,
            ..Default::default()
        }
        .as_bytes()
        .to_vec(),
        _ => VfioUserDeviceInfo {
            argsz,
            ..Default::default()
        }
        .as_bytes()
        .to_vec(),
    }
}

/// The `VFIO_USER_DEVICE_GET_INFO` reply: "*argsz* is the size required for the full reply
/// payload (16 bytes today)".
pub fn encode_device_info(flags: u32, num_regions: u32, num_irqs: u32) -> Vec<u8> {
    VfioUserDeviceInfo {
        argsz: DEVICE_INFO_SIZE as u32,
        flags,
        num_regions,
        num_irqs,
    }
    .as_bytes()
    .to_vec()
}

/// The `VFIO_USER_DEVICE_GET_IRQ_INFO` reply.
pub fn encode_irq_info(flags: u32, index: u32, count: u32) -> Vec<u8> {
    VfioIrqInfo {
        argsz: IRQ_INFO_SIZE as u32,
        flags,
        index,
        count,
    }
    .as_bytes()
    .to_vec()
}

/// The `VFIO_USER_DEVICE_GET_REGION_IO_FDS` reply with no sub-regions (and so no descriptors).
pub fn encode_region_io_fds_empty(index: u32) -> Vec<u8> {
    VfioUserRegionIoFds {
        argsz: IO_FDS_SIZE as u32,
        flags: 0,
        index,
        count: 0,
    }
    .as_bytes()
    .to_vec()
}

/// One region capability (`struct vfio_info_cap_header` and its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionCap {
    /// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`: the (offset, size) areas that may be mmapped.
    SparseMmap(Vec<(u64, u64)>),
    /// `VFIO_REGION_INFO_CAP_TYPE`.
    Type {
        /// `type`.
        type_: u32,
        /// `subtype`.
        subtype: u32,
    },
    /// `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`.
    MsixMappable,
    /// Any other capability, kept as it came.
    Other {
        /// `id`.
        id: u16,
        /// `version`.
        version: u16,
        /// The bytes after the header.
        body: Vec<u8>,
    },
}

impl RegionCap {
    fn encode(&self, next: u32) -> Vec<u8> {
        let header = |id, version| VfioInfoCapHeader { id, version, next };
        let mut out = match self {
            RegionCap::SparseMmap(areas) => {
                let mut v = VfioRegionInfoCapSparseMmap {
                    header: header(VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1),
                    nr_areas: areas.len() as u32,
                    reserved: 0,
                }
                .as_bytes()
                .to_vec();
                for &(offset, size) in areas {
                    v.extend_from_slice(VfioRegionSparseMmapArea { offset, size }.as_bytes());
                }
                v
            }
            RegionCap::Type { type_, subtype } => VfioRegionInfoCapType {
                header: header(VFIO_REGION_INFO_CAP_TYPE, 1),
                type_: *type_,
                subtype: *subtype,
            }
            .as_bytes()
            .to_vec(),
            RegionCap::MsixMappable => header(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1).as_bytes().to_vec(),
            RegionCap::Other { id, version, body } => {
                let mut v = header(*id, *version).as_bytes().to_vec();
                v.extend_from_slice(body);
                v
            }
        };
        // vfio_info_cap_add(): each capability starts 8-byte aligned.
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }

    fn encoded_len(&self) -> usize {
        self.encode(0).len()
    }
}

/// A region's description: `struct vfio_region_info` and its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// "Region index".
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_READ | _WRITE | _MMAP` (`_CAPS` is set by the encoding).
    pub flags: u32,
    /// "the size of the region".
    pub size: u64,
    /// "the offset that should be given to the mmap() system call for regions with the MMAP
    /// attribute".
    pub offset: u64,
    /// The capabilities.
    pub caps: Vec<RegionCap>,
}

impl RegionInfo {
    /// Bytes of the full reply: the struct and its chain.
    pub fn full_len(&self) -> usize {
        REGION_INFO_SIZE + self.caps.iter().map(RegionCap::encoded_len).sum::<usize>()
    }

    /// The reply for a request of `argsz`: the full payload when it fits, else only the struct,
    /// its `argsz` "indicates the needed size". "`VFIO_REGION_INFO_FLAG_CAPS` indicates
    /// additional capabilities found in the reply": it is set only when they are.
    pub fn encode(&self, argsz: u32) -> Vec<u8> {
        let full = self.full_len();
        let with_caps = !self.caps.is_empty() && argsz as usize >= full;
        let mut info = VfioRegionInfo {
            argsz: u32::try_from(full).unwrap_or(u32::MAX),
            flags: self.flags & !VFIO_REGION_INFO_FLAG_CAPS,
            index: self.index,
            cap_offset: 0,
            size: self.size,
            offset: self.offset,
        };
        if !with_caps {
            return info.as_bytes().to_vec();
        }
        info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        info.cap_offset = REGION_INFO_SIZE as u32;
        let mut out = info.as_bytes().to_vec();
        for (i, cap) in self.caps.iter().enumerate() {
            let at = out.len() + cap.encoded_len();
            let next = if i + 1 == self.caps.len() { 0 } else { at as u32 };
            out.extend_from_slice(&cap.encode(next));
        }
        out
    }

    /// Parses a `struct vfio_region_info` with its chain: a vfio-user reply payload, or the bytes
    /// `VFIO_DEVICE_GET_REGION_INFO` wrote back (the same layout). A chain that points backwards,
    /// outside the bytes, or at a truncated capability is refused.
    pub fn decode(bytes: &[u8]) -> Result<RegionInfo, ProtoError> {
        const WHAT: &str = "region info";
        let (raw, _): (VfioRegionInfo, _) = split(WHAT, bytes)?;
        let mut caps = Vec::new();
        if raw.flags & VFIO_REGION_INFO_FLAG_CAPS != 0 && raw.cap_offset != 0 {
            let mut at = raw.cap_offset as usize;
            let mut min = REGION_INFO_SIZE;
            loop {
                if at < min {
                    return Err(ProtoError::Range {
                        what: WHAT,
                        start: at as u64,
                        len: 0,
                    });
                }
                let cap_bytes = bytes.get(at..).ok_or(ProtoError::Short {
                    what: WHAT,
                    len: bytes.len(),
                    need: at,
                })?;
                let (header, body): (VfioInfoCapHeader, _) = split(WHAT, cap_bytes)?;
                let body_len = if header.next == 0 {
                    body.len()
                } else {
                    (header.next as usize)
                        .checked_sub(at + size_of::<VfioInfoCapHeader>())
                        .ok_or(ProtoError::Range {
                            what: WHAT,
                            start: header.next.into(),
                            len: 0,
                        })?
                };
                let body = body.get(..body_len).ok_or(ProtoError::Short {
                    what: WHAT,
                    len: bytes.len(),
                    need: at + body_len,
                })?;
                caps.push(parse_cap(header, body)?);
                if header.next == 0 {
                    break;
                }
                min = at + size_of::<VfioInfoCapHeader>();
                at = header.next as usize;
            }
        }
        Ok(RegionInfo {
            index: raw.index,
            flags: raw.flags & !VFIO_REGION_INFO_FLAG_CAPS,
            size: raw.size,
            offset: raw.offset,
            caps,
        })
    }

    /// The sparse mmap areas, if the region has that capability.
    pub fn sparse_areas(&self) -> Option<&[(u64, u64)]> {
        self.caps.iter().find_map(|c| match c {
            RegionCap::SparseMmap(a) => Some(a.as_slice()),
            _ => None,
        })
    }
}

fn parse_cap(header: VfioInfoCapHeader, body: &[u8]) -> Result<RegionCap, ProtoError> {
    const WHAT: &str = "region capability";
    Ok(match header.id {
        VFIO_REGION_INFO_CAP_SPARSE_MMAP => {
            let (fixed, mut rest): (SparseFixed, _) = split(WHAT, body)?;
            let mut areas = Vec::new();
            for _ in 0..fixed.nr_areas {
                let (area, tail): (VfioRegionSparseMmapArea, _) = split(WHAT, rest)?;
                areas.push((area.offset, area.size));
                rest = tail;
            }
            RegionCap::SparseMmap(areas)
        }
        VFIO_REGION_INFO_CAP_TYPE => {
            let (t, _): (TypeFixed, _) = split(WHAT, body)?;
            RegionCap::Type {
                type_: t.type_,
                subtype: t.subtype,
            }
        }
        VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => RegionCap::MsixMappable,
        id => RegionCap::Other {
            id,
            version: header.version,
            body: body.to_vec(),
        },
    })
}

/// The body of `struct vfio_region_info_cap_sparse_mmap` after its header.
#[derive(FromBytes)]
#[repr(C)]
struct SparseFixed {
    nr_areas: u32,
    _reserved: u32,
}

/// The body of `struct vfio_region_info_cap_type` after its header.
#[derive(FromBytes)]
#[repr(C)]
struct TypeFixed {
    type_: u32,
    subtype: u32,
}

/// The data of a `SET_IRQS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqData {
    /// `VFIO_IRQ_SET_DATA_NONE`.
    None,
    /// `VFIO_IRQ_SET_DATA_BOOL`: one byte per sub-index.
    Bool(Vec<u8>),
    /// `VFIO_IRQ_SET_DATA_EVENTFD`: the message's descriptors, one per sub-index, or none to
    /// de-assign.
    Eventfds {
        /// Whether descriptors came (else the sub-indexes are de-assigned).
        assign: bool,
    },
}

/// A `VFIO_USER_DEVICE_SET_IRQS` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetIrqs {
    /// The `ACTION` flag (`VFIO_IRQ_SET_ACTION_*`).
    pub action: u32,
    /// "*index* is the index of IRQ type being setup."
    pub index: u32,
    /// "*start* is the start of the sub-index being set."
    pub start: u32,
    /// "*count* describes the number of sub-indexes being set."
    pub count: u32,
    /// The data.
    pub data: IrqData,
}

impl SetIrqs {
    /// Decodes a payload that came with `fds` descriptors.
    pub fn decode(payload: &[u8], fds: usize) -> Result<SetIrqs, ProtoError> {
        const WHAT: &str = "VFIO_USER_DEVICE_SET_IRQS";
        let (raw, data): (VfioIrqSet, _) = split(WHAT, payload)?;
        if raw.argsz as usize != payload.len() {
            return Err(ProtoError::ArgszMismatch {
                what: WHAT,
                argsz: raw.argsz,
                len: payload.len(),
            });
        }
        let data_type = raw.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = raw.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        let known = VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK;
        if raw.flags & !known != 0 || !data_type.is_power_of_two() || !action.is_power_of_two() {
            return Err(ProtoError::Flags {
                what: WHAT,
                flags: raw.flags,
            });
        }
        let expect_len = |extra: usize| -> Result<(), ProtoError> {
            if data.len() != extra {
                return Err(ProtoError::Length {
                    what: WHAT,
                    len: payload.len(),
                    expected: IRQ_SET_SIZE.saturating_add(extra),
                });
            }
            Ok(())
        };
        let data = match data_type {
            VFIO_IRQ_SET_DATA_NONE => {
                no_fds(WHAT, fds)?;
                expect_len(0)?;
                IrqData::None
            }
            VFIO_IRQ_SET_DATA_BOOL => {
                no_fds(WHAT, fds)?;
                expect_len(raw.count as usize)?;
                IrqData::Bool(data.to_vec())
            }
            // VFIO_IRQ_SET_DATA_EVENTFD: the descriptors are in the meta-data, not the payload.
            _ => {
                expect_len(0)?;
                if fds != 0 && fds != raw.count as usize {
                    return Err(ProtoError::Fds {
                        what: WHAT,
                        got: fds,
                        expected: "none, or one per sub-index (count)",
                    });
                }
                IrqData::Eventfds { assign: fds != 0 }
            }
        };
        Ok(SetIrqs {
            action,
            index: raw.index,
            start: raw.start,
            count: raw.count,
            data,
        })
    }

    fn data_flag(&self) -> u32 {
        match self.data {
            IrqData::None => VFIO_IRQ_SET_DATA_NONE,
            IrqData::Bool(_) => VFIO_IRQ_SET_DATA_BOOL,
            IrqData::Eventfds { .. } => VFIO_IRQ_SET_DATA_EVENTFD,
        }
    }

    /// The request payload (client side; eventfds go as ancillary data).
    pub fn encode(&self) -> Vec<u8> {
        let extra = match &self.data {
            IrqData::Bool(b) => b.as_slice(),
            _ => &[],
        };
        let mut out = VfioIrqSet {
            argsz: (IRQ_SET_SIZE + extra.len()) as u32,
            flags: self.data_flag() | self.action,
            index: self.index,
            start: self.start,
            count: self.count,
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(extra);
        out
    }

    /// The `struct vfio_irq_set` of the same request for `VFIO_DEVICE_SET_IRQS`, with `fds` (the
    /// received descriptors' numbers in this process) as its `__s32` data, or `-1` per sub-index
    /// to de-assign. The caller bounds `count` first (it sizes the data).
    pub fn to_vfio(&self, fds: &[i32]) -> Vec<u8> {
        let data: Vec<u8> = match &self.data {
            IrqData::None => Vec::new(),
            IrqData::Bool(b) => b.clone(),
            IrqData::Eventfds { assign: true } => fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect(),
            IrqData::Eventfds { assign: false } => {
                (0..self.count).flat_map(|_| (-1i32).to_ne_bytes()).collect()
            }
        };
        let mut out = VfioIrqSet {
            argsz: u32::try_from(IRQ_SET_SIZE + data.len()).unwrap_or(u32::MAX),
            flags: self.data_flag() | self.action,
            index: self.index,
            start: self.start,
            count: self.count,
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(&data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvfio_abi::vfio::{
        VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_REGION_INFO_FLAG_MMAP,
    };

    #[test]
    fn queries_need_zeros_and_room() {
        let q = encode_query(super::super::Command::DeviceGetRegionInfo, 32, 7);
        assert_eq!(decode_region_info(&q, 0).unwrap().index, 7);
        assert!(decode_region_info(&q, 1).is_err());
        assert!(
            decode_region_info(
                &encode_query(super::super::Command::DeviceGetRegionInfo, 31, 7),
                0
            )
            .is_err()
        );
        let mut nz = q.clone();
        nz[4] = 1;
        assert!(decode_region_info(&nz, 0).is_err());
        let d = encode_query(super::super::Command::DeviceGetInfo, 16, 0);
        assert!(decode_device_info(&d, 0).is_ok());
        assert!(decode_device_info(&d[..15], 0).is_err());
        let i = encode_query(super::super::Command::DeviceGetIrqInfo, 16, 1);
        assert_eq!(decode_irq_info(&i, 0).unwrap().index, 1);
        let f = encode_query(super::super::Command::DeviceGetRegionIoFds, 16, 0);
        assert!(decode_region_io_fds(&f, 0).is_ok());
    }

    #[test]
    fn region_info_with_caps_round_trips() {
        let info = RegionInfo {
            index: 0,
            flags: VFIO_REGION_INFO_FLAG_MMAP | 3,
            size: 0x4000,
            offset: 0,
            caps: vec![
                RegionCap::SparseMmap(vec![(0x1000, 0x1000), (0x3000, 0x1000)]),
                RegionCap::MsixMappable,
                RegionCap::Type { type_: 1, subtype: 2 },
            ],
        };
        let full = info.encode(4096);
        assert_eq!(full.len(), info.full_len());
        assert_eq!(RegionInfo::decode(&full).unwrap(), info);
        let short = info.encode(32);
        assert_eq!(short.len(), 32);
        let back = RegionInfo::decode(&short).unwrap();
        assert!(back.caps.is_empty());
        let raw = VfioRegionInfo::read_from_prefix(&short).unwrap().0;
        assert_eq!(raw.argsz as usize, info.full_len());
        assert_eq!(raw.flags & VFIO_REGION_INFO_FLAG_CAPS, 0);
        // A chain pointing back at itself is refused.
        let mut looped = full.clone();
        looped[32 + 4..32 + 8].copy_from_slice(&32u32.to_ne_bytes());
        assert!(RegionInfo::decode(&looped).is_err());
    }

    #[test]
    fn set_irqs_checks() {
        let eventfd = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_TRIGGER,
            index: 1,
            start: 0,
            count: 2,
            data: IrqData::Eventfds { assign: true },
        };
        let p = eventfd.encode();
        assert_eq!(SetIrqs::decode(&p, 2).unwrap(), eventfd);
        assert_eq!(
            SetIrqs::decode(&p, 0).unwrap().data,
            IrqData::Eventfds { assign: false }
        );
        assert!(SetIrqs::decode(&p, 1).is_err());
        assert!(SetIrqs::decode(&p, 3).is_err());
        let vfio = eventfd.to_vfio(&[5, 6]);
        assert_eq!(vfio.len(), IRQ_SET_SIZE + 8);
        let bools = SetIrqs {
            action: VFIO_IRQ_SET_ACTION_UNMASK,
            index: 0,
            start: 0,
            count: 1,
            data: IrqData::Bool(vec![1]),
        };
        assert_eq!(SetIrqs::decode(&bools.encode(), 0).unwrap(), bools);
        assert!(SetIrqs::decode(&bools.encode(), 1).is_err());
        let mut wrong_argsz = bools.encode();
        wrong_argsz[0] = 20;
        assert!(SetIrqs::decode(&wrong_argsz, 0).is_err());
        let mut two_actions = bools.encode();
        two_actions[4] |= (VFIO_IRQ_SET_ACTION_TRIGGER) as u8;
        assert!(SetIrqs::decode(&two_actions, 0).is_err());
        let mut unknown = bools.encode();
        unknown[5] = 1;
        assert!(SetIrqs::decode(&unknown, 0).is_err());
    }
}
