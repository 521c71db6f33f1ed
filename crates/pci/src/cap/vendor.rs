//! The Vendor-Specific capability (`PCI_CAP_ID_VNDR`, PCI Local Bus Spec 3.0, 6.7 and appendix
//! H): the header, a length byte, then vendor-defined bytes — read-only here (virtio's
//! `virtio_pci_cap` structures are this shape).

use crate::config::ConfigSpace;

/// The bytes of a vendor-specific capability after its length byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VendorConfig {
    /// The vendor-defined bytes (capability offset 3 onwards); read-only.
    pub data: Vec<u8>,
}

/// A vendor-specific capability the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    /// The length byte (header + length + data) must fit in 8 bits.
    #[error("vendor capability of {len} data bytes: the whole structure must fit in 255 bytes")]
    TooLong {
        /// The data length given.
        len: usize,
    },
}

/// Bytes before the data: ID, next pointer, length.
const HEADER: usize = 3;

/// Size of the structure for `cfg`.
pub(crate) fn size(cfg: &VendorConfig) -> Result<u16, VendorError> {
    u8::try_from(HEADER + cfg.data.len())
        .map(u16::from)
        .map_err(|_| VendorError::TooLong { len: cfg.data.len() })
}

/// Writes the length byte and the data (the header bytes are written by the placement).
pub(crate) fn install(cs: &mut ConfigSpace, off: u16, cfg: &VendorConfig) -> Result<(), VendorError> {
    let len = size(cfg)?;
    cs.store_u8(off + 2, len as u8);
    for (at, &byte) in (off + 3..).zip(&cfg.data) {
        cs.store_u8(at, byte);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_read_only() {
        let mut cs = ConfigSpace::new();
        install(
            &mut cs,
            0x80,
            &VendorConfig {
                data: vec![0xaa, 0xbb, 0xcc],
            },
        )
        .unwrap();
        assert_eq!(cs.load_u32(0x80), 0xaa06_0000);
        cs.write(0x84, 2, 0xffff).unwrap();
        assert_eq!(cs.load_u16(0x84), 0xccbb);
        assert_eq!(
            size(&VendorConfig { data: vec![0; 253] }),
            Err(VendorError::TooLong { len: 253 })
        );
    }
}
