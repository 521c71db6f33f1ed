//! `VFIO_USER_REGION_READ`, `VFIO_USER_REGION_WRITE` and `VFIO_USER_REGION_WRITE_MULTI`.
//!
//! "The `count` field must not exceed the value of `max_data_xfer_size` of the peer, for both
//! reads and writes." A write's data is the rest of the payload and must be exactly `count` bytes;
//! a read's request has no data. An access whose end wraps the 64-bit offset space is `EINVAL`
//! here; whether it lies within the region is the device's check (the server's). A
//! `WRITE_MULTI` entry "can only describe writes of 8 bytes or less", and a message holds at most
//! [`VFIO_USER_MULTI_MAX`] of them (QEMU's limit).

use super::{ProtoError, exact, no_fds, split};
use uvfio_abi::vfio_user::{
    VFIO_USER_MULTI_DATA, VFIO_USER_MULTI_MAX, VfioUserRegionAccess, VfioUserRegionWriteMulti,
    VfioUserRegionWriteMultiEntry,
};
use zerocopy::IntoBytes;

/// Size of the fixed part of the region access messages.
pub const REGION_ACCESS_SIZE: usize = size_of::<VfioUserRegionAccess>();

/// Where a region access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionAccess {
    /// "the index of the region being accessed".
    pub region: u32,
    /// "offset into the region being accessed".
    pub offset: u64,
    /// "the size of the data to be transferred".
    pub count: u32,
}

impl RegionAccess {
    fn raw(&self) -> VfioUserRegionAccess {
        VfioUserRegionAccess {
            offset: self.offset,
            region: self.region,
            count: self.count,
        }
    }

    fn check(what: &'static str, raw: VfioUserRegionAccess, max: u64) -> Result<RegionAccess, ProtoError> {
        if u64::from(raw.count) > max {
            return Err(ProtoError::TooLarge {
                what,
                count: raw.count.into(),
                max,
            });
        }
        if raw.count > 0 && raw.offset.checked_add(u64::from(raw.count) - 1).is_none() {
            return Err(ProtoError::Range {
                what,
                start: raw.offset,
                len: raw.count.into(),
            });
        }
        Ok(RegionAccess {
            region: raw.region,
            offset: raw.offset,
            count: raw.count,
        })
    }

    /// Decodes a `VFIO_USER_REGION_READ` request (`count` at most `max`).
    pub fn decode_read(payload: &[u8], fds: usize, max: u64) -> Result<RegionAccess, ProtoError> {
        const WHAT: &str = "VFIO_USER_REGION_READ";
        no_fds(WHAT, fds)?;
        Self::check(WHAT, exact(WHAT, payload)?, max)
    }

    /// Decodes a `VFIO_USER_REGION_WRITE` request (`count` at most `max`): the access and its data.
    pub fn decode_write(payload: &[u8], fds: usize, max: u64) -> Result<(RegionAccess, &[u8]), ProtoError> {
        const WHAT: &str = "VFIO_USER_REGION_WRITE";
        no_fds(WHAT, fds)?;
        let (raw, data): (VfioUserRegionAccess, _) = split(WHAT, payload)?;
        let access = Self::check(WHAT, raw, max)?;
        if data.len() != access.count as usize {
            return Err(ProtoError::Length {
                what: WHAT,
                len: payload.len(),
                expected: REGION_ACCESS_SIZE.saturating_add(access.count as usize),
            });
        }
        Ok((access, data))
    }

    /// A read request, or a write reply: the fixed part alone.
    pub fn encode(&self) -> Vec<u8> {
        self.raw().as_bytes().to_vec()
    }

    /// A write request, or a read reply: the fixed part and `data` (whose length is `count`).
    pub fn encode_with(&self, data: &[u8]) -> Vec<u8> {
        let mut out = self.encode();
        out.extend_from_slice(data);
        out
    }

    /// Decodes a read reply: the access echoed and the data read.
    pub fn decode_read_reply(payload: &[u8]) -> Result<(RegionAccess, &[u8]), ProtoError> {
        Self::decode_write(payload, 0, u64::MAX)
    }
}

/// One write of a `VFIO_USER_REGION_WRITE_MULTI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiWrite {
    /// Where it goes.
    pub access: RegionAccess,
    /// Its data: the first `count` bytes count.
    pub data: [u8; VFIO_USER_MULTI_DATA],
}

impl MultiWrite {
    /// The bytes written.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..(self.access.count as usize).min(VFIO_USER_MULTI_DATA)]
    }
}

/// Decodes a `VFIO_USER_REGION_WRITE_MULTI` request.
pub fn decode_write_multi(payload: &[u8], fds: usize) -> Result<Vec<MultiWrite>, ProtoError> {
    const WHAT: &str = "VFIO_USER_REGION_WRITE_MULTI";
    no_fds(WHAT, fds)?;
    let (head, mut rest): (VfioUserRegionWriteMulti, _) = split(WHAT, payload)?;
    if head.wr_cnt == 0 || head.wr_cnt > VFIO_USER_MULTI_MAX {
        return Err(ProtoError::TooLarge {
            what: WHAT,
            count: head.wr_cnt,
            max: VFIO_USER_MULTI_MAX,
        });
    }
    let entry = size_of::<VfioUserRegionWriteMultiEntry>();
    if rest.len() != head.wr_cnt as usize * entry {
        return Err(ProtoError::Length {
            what: WHAT,
            len: payload.len(),
            expected: size_of::<VfioUserRegionWriteMulti>() + head.wr_cnt as usize * entry,
        });
    }
    let mut out = Vec::with_capacity(head.wr_cnt as usize);
    while !rest.is_empty() {
        let (e, tail): (VfioUserRegionWriteMultiEntry, _) = split(WHAT, rest)?;
        rest = tail;
        let access = RegionAccess::check(
            WHAT,
            VfioUserRegionAccess {
                offset: e.offset,
                region: e.region,
                count: e.count,
            },
            VFIO_USER_MULTI_DATA as u64,
        )?;
        out.push(MultiWrite { access, data: e.data });
    }
    Ok(out)
}

/// Encodes a `VFIO_USER_REGION_WRITE_MULTI` request.
pub fn encode_write_multi(writes: &[MultiWrite]) -> Vec<u8> {
    let mut out = VfioUserRegionWriteMulti {
        wr_cnt: writes.len() as u64,
    }
    .as_bytes()
    .to_vec();
    for w in writes {
        out.extend_from_slice(
            VfioUserRegionWriteMultiEntry {
                offset: w.access.offset,
                region: w.access.region,
                count: w.access.count,
                data: w.data,
            }
            .as_bytes(),
        );
    }
    out
}

/// The `VFIO_USER_REGION_WRITE_MULTI` reply: "*wr_cnt* is the number of device writes completed."
pub fn encode_write_multi_reply(done: u64) -> Vec<u8> {
    VfioUserRegionWriteMulti { wr_cnt: done }.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(region: u32, offset: u64, count: u32) -> RegionAccess {
        RegionAccess {
            region,
            offset,
            count,
        }
    }

    #[test]
    fn read_and_write_checks() {
        let r = access(0, 0x10, 4);
        assert_eq!(RegionAccess::decode_read(&r.encode(), 0, 1 << 20).unwrap(), r);
        assert!(RegionAccess::decode_read(&r.encode(), 1, 1 << 20).is_err());
        assert!(RegionAccess::decode_read(&r.encode_with(&[0]), 0, 1 << 20).is_err());
        assert!(RegionAccess::decode_read(&r.encode(), 0, 2).is_err());
        assert!(RegionAccess::decode_read(&access(0, u64::MAX - 1, 4).encode(), 0, 1 << 20).is_err());
        let bytes = r.encode_with(&[1, 2, 3, 4]);
        let (w, data) = RegionAccess::decode_write(&bytes, 0, 1 << 20).unwrap();
        assert_eq!((w, data), (r, &[1u8, 2, 3, 4][..]));
        assert!(RegionAccess::decode_write(&r.encode_with(&[1, 2, 3]), 0, 1 << 20).is_err());
        assert!(RegionAccess::decode_write(&r.encode_with(&[1, 2, 3, 4, 5]), 0, 1 << 20).is_err());
    }

    #[test]
    fn write_multi_checks() {
        let w = MultiWrite {
            access: access(0, 4, 4),
            data: [1, 2, 3, 4, 0, 0, 0, 0],
        };
        let p = encode_write_multi(&[w, w]);
        assert_eq!(decode_write_multi(&p, 0).unwrap(), vec![w, w]);
        assert!(decode_write_multi(&p[..p.len() - 1], 0).is_err());
        assert!(decode_write_multi(&encode_write_multi(&[]), 0).is_err());
        let big = MultiWrite {
            access: access(0, 4, 9),
            ..w
        };
        assert!(decode_write_multi(&encode_write_multi(&[big]), 0).is_err());
        assert_eq!(w.bytes(), &[1, 2, 3, 4]);
    }
}
