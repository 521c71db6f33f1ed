//! `VFIO_USER_DEVICE_FEATURE` ("analogous to `VFIO_DEVICE_FEATURE`") and the migration data
//! messages `VFIO_USER_MIG_DATA_READ` / `VFIO_USER_MIG_DATA_WRITE`.
//!
//! Decoded and checked here; which features exist is the server's business. The flags: "The
//! feature index consists of the least significant 16 bits of the flags field", then
//! `VFIO_DEVICE_FEATURE_GET` / `_SET` / `_PROBE`; "`VFIO_DEVICE_FEATURE_GET` and
//! `VFIO_DEVICE_FEATURE_SET` are mutually exclusive, except for use with
//! `VFIO_DEVICE_FEATURE_PROBE`". Other bits are `EINVAL`, as `vfio_ioctl_device_feature()` answers
//! them.

use super::{ProtoError, argsz_at_least, exact, no_fds, split};
use uvfio_abi::vfio::{
    VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_MASK, VFIO_DEVICE_FEATURE_PROBE, VFIO_DEVICE_FEATURE_SET,
};
use uvfio_abi::vfio_user::{VfioUserDeviceFeature, VfioUserMigData};
use zerocopy::IntoBytes;

/// A `VFIO_USER_DEVICE_FEATURE` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The feature index (`flags & VFIO_DEVICE_FEATURE_MASK`).
    pub index: u32,
    /// `VFIO_DEVICE_FEATURE_GET`.
    pub get: bool,
    /// `VFIO_DEVICE_FEATURE_SET`.
    pub set: bool,
    /// `VFIO_DEVICE_FEATURE_PROBE`.
    pub probe: bool,
    /// The data after the fixed part.
    pub data: Vec<u8>,
}

impl Feature {
    /// Decodes a payload that came with `fds` descriptors (none allowed).
    pub fn decode(payload: &[u8], fds: usize) -> Result<Feature, ProtoError> {
        const WHAT: &str = "VFIO_USER_DEVICE_FEATURE";
        no_fds(WHAT, fds)?;
        let (raw, data): (VfioUserDeviceFeature, _) = split(WHAT, payload)?;
        argsz_at_least(WHAT, raw.argsz, size_of::<VfioUserDeviceFeature>())?;
        let known = VFIO_DEVICE_FEATURE_MASK
            | VFIO_DEVICE_FEATURE_GET
            | VFIO_DEVICE_FEATURE_SET
            | VFIO_DEVICE_FEATURE_PROBE;
        let get = raw.flags & VFIO_DEVICE_FEATURE_GET != 0;
        let set = raw.flags & VFIO_DEVICE_FEATURE_SET != 0;
        let probe = raw.flags & VFIO_DEVICE_FEATURE_PROBE != 0;
        if raw.flags & !known != 0 || (get && set && !probe) {
            return Err(ProtoError::Flags {
                what: WHAT,
                flags: raw.flags,
            });
        }
        Ok(Feature {
            index: raw.flags & VFIO_DEVICE_FEATURE_MASK,
            get,
            set,
            probe,
            data: data.to_vec(),
        })
    }

    /// The request payload.
    pub fn encode(&self, argsz: u32) -> Vec<u8> {
        let mut flags = self.index & VFIO_DEVICE_FEATURE_MASK;
        for (on, bit) in [
            (self.get, VFIO_DEVICE_FEATURE_GET),
            (self.set, VFIO_DEVICE_FEATURE_SET),
            (self.probe, VFIO_DEVICE_FEATURE_PROBE),
        ] {
            if on {
                flags |= bit;
            }
        }
        let mut out = VfioUserDeviceFeature { argsz, flags }.as_bytes().to_vec();
        out.extend_from_slice(&self.data);
        out
    }
}

/// A `VFIO_USER_MIG_DATA_READ` request: how much to read.
pub fn decode_mig_data_read(payload: &[u8], fds: usize) -> Result<u32, ProtoError> {
    const WHAT: &str = "VFIO_USER_MIG_DATA_READ";
    no_fds(WHAT, fds)?;
    let raw: VfioUserMigData = exact(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, size_of::<VfioUserMigData>())?;
    Ok(raw.size)
}

/// A `VFIO_USER_MIG_DATA_WRITE` request: the data ("*size* is the size of the migration data to
/// be written").
pub fn decode_mig_data_write(payload: &[u8], fds: usize) -> Result<&[u8], ProtoError> {
    const WHAT: &str = "VFIO_USER_MIG_DATA_WRITE";
    no_fds(WHAT, fds)?;
    let (raw, data): (VfioUserMigData, _) = split(WHAT, payload)?;
    argsz_at_least(WHAT, raw.argsz, size_of::<VfioUserMigData>())?;
    if data.len() != raw.size as usize {
        return Err(ProtoError::Length {
            what: WHAT,
            len: payload.len(),
            expected: size_of::<VfioUserMigData>().saturating_add(raw.size as usize),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_flags() {
        let f = Feature {
            index: 1,
            get: true,
            set: false,
            probe: true,
            data: vec![],
        };
        assert_eq!(Feature::decode(&f.encode(8), 0).unwrap(), f);
        assert!(Feature::decode(&f.encode(4), 0).is_err());
        let both = Feature {
            set: true,
            probe: false,
            ..f.clone()
        };
        assert!(Feature::decode(&both.encode(8), 0).is_err());
        let mut unknown = f.encode(8);
        unknown[7] = 0x80;
        assert!(Feature::decode(&unknown, 0).is_err());
    }

    #[test]
    fn mig_data() {
        let mut w = VfioUserMigData { argsz: 8, size: 2 }.as_bytes().to_vec();
        w.extend_from_slice(&[1, 2]);
        assert_eq!(decode_mig_data_write(&w, 0).unwrap(), &[1, 2]);
        assert!(decode_mig_data_write(&w[..9], 0).is_err());
        let r = VfioUserMigData { argsz: 8, size: 64 };
        assert_eq!(decode_mig_data_read(r.as_bytes(), 0).unwrap(), 64);
    }
}
