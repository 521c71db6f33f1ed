//! [`ConfigSpace`]: 4096 bytes of configuration space with per-bit access semantics.
//!
//! Every bit is one of three kinds, recorded in two per-byte masks:
//!
//! * **RW** (`writable`): a write stores the written bit;
//! * **RW1C** (`w1c`): a write of 1 clears the bit, a write of 0 leaves it ("write-1-to-clear",
//!   the PCI_STATUS error bits);
//! * **RO** (neither): writes are ignored. Reserved and unimplemented registers are RO bits whose
//!   value is 0 — PCI Local Bus Spec 3.0, 6.1: "Read accesses to reserved or unimplemented
//!   registers must be completed normally and a data value of 0 returned. Write accesses to
//!   reserved registers must be completed normally and the data discarded."
//!
//! The masks are the guest/driver view ([`ConfigSpace::write`]). The device side uses
//! [`ConfigSpace::store_u16`] and friends, which bypass the masks (hardware sets RO status bits and
//! RW1C error bits; software cannot).
//!
//! Accesses are 1, 2 or 4 bytes, naturally aligned, inside the 4096 bytes, little-endian (PCI is
//! little-endian: the register at the lowest address is the least significant byte).

use crate::regs::PCI_CFG_SPACE_EXP_SIZE;
use std::fmt;

/// Size of the modelled config space: the PCI Express extended space, of which the first
/// [`PCI_CFG_SPACE_SIZE`](crate::regs::PCI_CFG_SPACE_SIZE) bytes are conventional.
pub const CONFIG_SPACE_SIZE: usize = PCI_CFG_SPACE_EXP_SIZE as usize;

/// An access the config space refuses (the VFIO layer answers these with `EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Only 1-, 2- and 4-byte accesses exist.
    #[error("config access of {len} bytes: only 1, 2 or 4 bytes are allowed")]
    Length {
        /// The requested length.
        len: usize,
    },
    /// The access is not naturally aligned (a 2-byte access at an odd offset, ...).
    #[error("config access of {len} bytes at {offset:#x} is not naturally aligned")]
    Unaligned {
        /// The requested offset.
        offset: u64,
        /// The requested length.
        len: usize,
    },
    /// The access does not lie within the 4096 bytes.
    #[error(
        "config access of {len} bytes at {offset:#x} is beyond the {CONFIG_SPACE_SIZE}-byte config space"
    )]
    OutOfRange {
        /// The requested offset.
        offset: u64,
        /// The requested length.
        len: usize,
    },
}

/// The bytes of a config space with their RW and RW1C masks.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigSpace {
    data: Box<[u8; CONFIG_SPACE_SIZE]>,
    writable: Box<[u8; CONFIG_SPACE_SIZE]>,
    w1c: Box<[u8; CONFIG_SPACE_SIZE]>,
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rw_bits: u32 = self.writable.iter().map(|b| b.count_ones()).sum();
        let w1c_bits: u32 = self.w1c.iter().map(|b| b.count_ones()).sum();
        f.debug_struct("ConfigSpace")
            .field("vendor_id", &format_args!("{:#06x}", self.load_u16(0)))
            .field("device_id", &format_args!("{:#06x}", self.load_u16(2)))
            .field("rw_bits", &rw_bits)
            .field("w1c_bits", &w1c_bits)
            .finish()
    }
}

impl ConfigSpace {
    /// An all-zero, all-read-only config space.
    pub fn new() -> Self {
        Self {
            data: Box::new([0; CONFIG_SPACE_SIZE]),
            writable: Box::new([0; CONFIG_SPACE_SIZE]),
            w1c: Box::new([0; CONFIG_SPACE_SIZE]),
        }
    }

    /// Checks a driver access: `len` of 1, 2 or 4, `offset` a multiple of `len`, and the bytes
    /// within the config space. Returns the offset as an index.
    pub fn check(offset: u64, len: usize) -> Result<usize, ConfigError> {
        if !matches!(len, 1 | 2 | 4) {
            return Err(ConfigError::Length { len });
        }
        // `len` is 1, 2 or 4: the conversion cannot fail, and the alignment test is exact.
        if offset % (len as u64) != 0 {
            return Err(ConfigError::Unaligned { offset, len });
        }
        match usize::try_from(offset) {
            Ok(start) if start.checked_add(len).is_some_and(|end| end <= CONFIG_SPACE_SIZE) => Ok(start),
            _ => Err(ConfigError::OutOfRange { offset, len }),
        }
    }

    /// A driver read of `len` bytes at `offset`, little-endian in the low bytes of the result.
    pub fn read(&self, offset: u64, len: usize) -> Result<u32, ConfigError> {
        let start = Self::check(offset, len)?;
        Ok(get_le(&self.data[..], start, len))
    }

    /// A driver write of the low `len` bytes of `value` at `offset`, through the masks: RW bits
    /// take the written value, RW1C bits clear where a 1 is written, RO bits do not change.
    pub fn write(&mut self, offset: u64, len: usize, value: u32) -> Result<(), ConfigError> {
        let start = Self::check(offset, len)?;
        for (i, byte) in value.to_le_bytes().into_iter().take(len).enumerate() {
            let at = start + i;
            let (Some(old), Some(&rw), Some(&w1c)) = (
                self.data.get(at).copied(),
                self.writable.get(at),
                self.w1c.get(at),
            ) else {
                continue;
            };
            let kept = old & !rw;
            let stored = (kept | (byte & rw)) & !(byte & w1c);
            if let Some(slot) = self.data.get_mut(at) {
                *slot = stored;
            }
        }
        Ok(())
    }

    /// Copies `other`'s bytes and masks into `self` without reallocating (used by reset).
    pub fn copy_from(&mut self, other: &ConfigSpace) {
        self.data.copy_from_slice(&other.data[..]);
        self.writable.copy_from_slice(&other.writable[..]);
        self.w1c.copy_from_slice(&other.w1c[..]);
    }

    /// The device-side value of the byte at `offset` (0 beyond the space).
    pub fn load_u8(&self, offset: u16) -> u8 {
        self.data.get(usize::from(offset)).copied().unwrap_or(0)
    }

    /// The device-side value of the 16 bits at `offset` (bytes beyond the space read 0).
    pub fn load_u16(&self, offset: u16) -> u16 {
        get_le(&self.data[..], usize::from(offset), 2) as u16
    }

    /// The device-side value of the 32 bits at `offset` (bytes beyond the space read 0).
    pub fn load_u32(&self, offset: u16) -> u32 {
        get_le(&self.data[..], usize::from(offset), 4)
    }

    /// Sets the byte at `offset`, bypassing the masks (bytes beyond the space are dropped).
    pub fn store_u8(&mut self, offset: u16, value: u8) {
        put_le(&mut self.data[..], usize::from(offset), 1, value.into());
    }

    /// Sets the 16 bits at `offset`, bypassing the masks.
    pub fn store_u16(&mut self, offset: u16, value: u16) {
        put_le(&mut self.data[..], usize::from(offset), 2, value.into());
    }

    /// Sets the 32 bits at `offset`, bypassing the masks.
    pub fn store_u32(&mut self, offset: u16, value: u32) {
        put_le(&mut self.data[..], usize::from(offset), 4, value);
    }

    /// Replaces the bits of `mask` in the 16 bits at `offset` with those of `value`, bypassing the
    /// access masks.
    pub fn update_u16(&mut self, offset: u16, mask: u16, value: u16) {
        let old = self.load_u16(offset);
        self.store_u16(offset, (old & !mask) | (value & mask));
    }

    /// Declares the RW and RW1C bits of the byte at `offset`. A bit in both masks is RW1C.
    pub fn set_masks_u8(&mut self, offset: u16, writable: u8, w1c: u8) {
        self.set_masks(offset, 1, writable.into(), w1c.into());
    }

    /// Declares the RW and RW1C bits of the 16 bits at `offset`. A bit in both masks is RW1C.
    pub fn set_masks_u16(&mut self, offset: u16, writable: u16, w1c: u16) {
        self.set_masks(offset, 2, writable.into(), w1c.into());
    }

    /// Declares the RW and RW1C bits of the 32 bits at `offset`. A bit in both masks is RW1C.
    pub fn set_masks_u32(&mut self, offset: u16, writable: u32, w1c: u32) {
        self.set_masks(offset, 4, writable, w1c);
    }

    fn set_masks(&mut self, offset: u16, len: usize, writable: u32, w1c: u32) {
        let start = usize::from(offset);
        put_le(&mut self.writable[..], start, len, writable & !w1c);
        put_le(&mut self.w1c[..], start, len, w1c);
    }

    /// The RW bits of the byte at `offset` (0 beyond the space).
    pub fn writable_u8(&self, offset: u16) -> u8 {
        self.writable.get(usize::from(offset)).copied().unwrap_or(0)
    }

    /// The RW1C bits of the byte at `offset` (0 beyond the space).
    pub fn w1c_u8(&self, offset: u16) -> u8 {
        self.w1c.get(usize::from(offset)).copied().unwrap_or(0)
    }

    /// The RW bits of the 16 bits at `offset`.
    pub fn writable_u16(&self, offset: u16) -> u16 {
        get_le(&self.writable[..], usize::from(offset), 2) as u16
    }

    /// The RW1C bits of the 16 bits at `offset`.
    pub fn w1c_u16(&self, offset: u16) -> u16 {
        get_le(&self.w1c[..], usize::from(offset), 2) as u16
    }

    /// The RW bits of the 32 bits at `offset`.
    pub fn writable_u32(&self, offset: u16) -> u32 {
        get_le(&self.writable[..], usize::from(offset), 4)
    }

    /// All 4096 bytes as the device sees them.
    pub fn bytes(&self) -> &[u8; CONFIG_SPACE_SIZE] {
        &self.data
    }
}

/// Little-endian load of `len` (≤ 4) bytes; bytes beyond `buf` read 0.
fn get_le(buf: &[u8], start: usize, len: usize) -> u32 {
    (0..len.min(4)).fold(0u32, |acc, i| {
        let byte = start
            .checked_add(i)
            .and_then(|at| buf.get(at))
            .copied()
            .unwrap_or(0);
        acc | u32::from(byte) << (8 * i)
    })
}

/// Little-endian store of the low `len` (≤ 4) bytes of `value`; bytes beyond `buf` are dropped.
fn put_le(buf: &mut [u8], start: usize, len: usize, value: u32) {
    for (i, byte) in value.to_le_bytes().into_iter().take(len).enumerate() {
        if let Some(slot) = start.checked_add(i).and_then(|at| buf.get_mut(at)) {
            *slot = byte;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn access_checks() {
        assert_eq!(ConfigSpace::check(0, 3), Err(ConfigError::Length { len: 3 }));
        assert_eq!(ConfigSpace::check(0, 8), Err(ConfigError::Length { len: 8 }));
        assert_eq!(ConfigSpace::check(0, 0), Err(ConfigError::Length { len: 0 }));
        assert_eq!(
            ConfigSpace::check(1, 2),
            Err(ConfigError::Unaligned { offset: 1, len: 2 })
        );
        assert_eq!(
            ConfigSpace::check(6, 4),
            Err(ConfigError::Unaligned { offset: 6, len: 4 })
        );
        assert_eq!(
            ConfigSpace::check(4096, 1),
            Err(ConfigError::OutOfRange { offset: 4096, len: 1 })
        );
        assert_eq!(
            ConfigSpace::check(u64::MAX - 3, 4),
            Err(ConfigError::OutOfRange {
                offset: u64::MAX - 3,
                len: 4
            })
        );
        assert_eq!(ConfigSpace::check(4092, 4), Ok(4092));
        assert_eq!(ConfigSpace::check(4095, 1), Ok(4095));
    }

    #[test]
    fn little_endian_views_agree() {
        let mut cs = ConfigSpace::new();
        cs.store_u32(0x40, 0x1234_5678);
        assert_eq!(cs.read(0x40, 1), Ok(0x78));
        assert_eq!(cs.read(0x41, 1), Ok(0x56));
        assert_eq!(cs.read(0x42, 2), Ok(0x1234));
        assert_eq!(cs.read(0x40, 4), Ok(0x1234_5678));
        assert_eq!(cs.load_u16(0x40), 0x5678);
    }

    #[test]
    fn rw_ro_and_w1c_bits() {
        let mut cs = ConfigSpace::new();
        cs.store_u16(0x10, 0xff00);
        cs.set_masks_u16(0x10, 0x00f0, 0xf000);
        cs.write(0x10, 2, 0x50ff).unwrap();
        // RW nibble took 0xf; RO low nibble and bits 8..11 unchanged; W1C cleared only bits 12, 14.
        assert_eq!(cs.load_u16(0x10), 0xaff0);
        cs.write(0x10, 2, 0).unwrap();
        assert_eq!(cs.load_u16(0x10), 0xaf00, "writing 0 leaves RW1C bits alone");
    }

    #[test]
    fn a_bit_in_both_masks_is_w1c() {
        let mut cs = ConfigSpace::new();
        cs.set_masks_u8(0x20, 0x03, 0x01);
        assert_eq!(cs.writable_u8(0x20), 0x02);
        assert_eq!(cs.w1c_u8(0x20), 0x01);
    }

    #[test]
    fn device_side_out_of_range_is_harmless() {
        let mut cs = ConfigSpace::new();
        cs.store_u32(4094, 0xaabb_ccdd);
        assert_eq!(cs.load_u16(4094), 0xccdd);
        assert_eq!(cs.load_u32(4094), 0xccdd, "bytes beyond the space read 0");
        assert_eq!(cs.load_u8(u16::MAX), 0);
    }

    #[test]
    fn copy_from_restores_bytes_and_masks() {
        let mut a = ConfigSpace::new();
        a.set_masks_u32(0x10, 0xffff_0000, 0);
        let defaults = a.clone();
        a.write(0x10, 4, 0xdead_beef).unwrap();
        a.set_masks_u32(0x14, 0xff, 0);
        assert_ne!(a, defaults);
        a.copy_from(&defaults);
        assert_eq!(a, defaults);
    }

    fn masked_space() -> impl Strategy<Value = ConfigSpace> {
        (
            proptest::collection::vec(any::<u8>(), 64),
            proptest::collection::vec(any::<u8>(), 64),
            proptest::collection::vec(any::<u8>(), 64),
        )
            .prop_map(|(data, rw, w1c)| {
                let mut cs = ConfigSpace::new();
                for (i, ((d, r), c)) in data.iter().zip(&rw).zip(&w1c).enumerate() {
                    let at = u16::try_from(i).unwrap();
                    cs.store_u8(at, *d);
                    cs.set_masks_u8(at, *r, *c);
                }
                cs
            })
    }

    proptest! {
        /// Any aligned write: RO bits keep their value, RW bits take the written value, RW1C bits
        /// clear exactly where 1s are written, and bytes outside the access do not change.
        #[test]
        fn write_obeys_masks(
            cs in masked_space(),
            raw in 0u64..64,
            len_sel in 0usize..3,
            value in any::<u32>(),
        ) {
            let len = [1usize, 2, 4][len_sel];
            let offset = raw / len as u64 * len as u64;
            let mut after = cs.clone();
            after.write(offset, len, value).unwrap();
            let start = usize::try_from(offset).unwrap();
            for at in 0u16..64 {
                let i = usize::from(at);
                let (old, new) = (cs.load_u8(at), after.load_u8(at));
                let (rw, w1c) = (cs.writable_u8(at), cs.w1c_u8(at));
                if (start..start + len).contains(&i) {
                    let byte = value.to_le_bytes()[i - start];
                    prop_assert_eq!(new & !(rw | w1c), old & !(rw | w1c));
                    prop_assert_eq!(new & rw, byte & rw);
                    prop_assert_eq!(new & w1c, old & w1c & !byte);
                } else {
                    prop_assert_eq!(new, old);
                }
            }
        }
    }
}
