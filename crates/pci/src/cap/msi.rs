//! The MSI capability (`PCI_CAP_ID_MSI`, PCI Local Bus Spec 3.0, 6.8.1).
//!
//! Layouts (offsets from pci_regs.h): 32- or 64-bit message address (`PCI_MSI_FLAGS_64BIT`),
//! with or without per-vector masking (`PCI_MSI_FLAGS_MASKBIT`, mask and pending registers).
//! Driver-writable: `PCI_MSI_FLAGS_ENABLE`, `PCI_MSI_FLAGS_QSIZE` (Multiple Message Enable), the
//! address (bits 1:0 reserved), the 16-bit data and the implemented mask bits. The pending bits
//! are RO: the function sets them.

use crate::config::ConfigSpace;
use crate::interrupt::{MessageKind, MsiMessage};
use crate::regs::*;

/// How the MSI capability is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiConfig {
    /// Vectors requested (Multiple Message Capable): 1, 2, 4, 8, 16 or 32.
    pub vectors: u8,
    /// 64-bit message address capable (`PCI_MSI_FLAGS_64BIT`).
    pub address64: bool,
    /// Per-vector masking capable (`PCI_MSI_FLAGS_MASKBIT`).
    pub per_vector_mask: bool,
}

impl Default for MsiConfig {
    /// One vector, 64-bit address, no per-vector masking.
    fn default() -> Self {
        Self {
            vectors: 1,
            address64: true,
            per_vector_mask: false,
        }
    }
}

/// An MSI configuration the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsiError {
    /// Multiple Message Capable encodes 1, 2, 4, 8, 16 or 32 vectors (6.8.1.3: 000b to 101b;
    /// 110b and 111b are reserved).
    #[error("MSI supports 1, 2, 4, 8, 16 or 32 vectors, not {vectors}")]
    Vectors {
        /// The count given.
        vectors: u8,
    },
}

/// The MSI registers as currently programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiState {
    /// `PCI_MSI_FLAGS_ENABLE`.
    pub enabled: bool,
    /// Vectors the function requests (Multiple Message Capable).
    pub vectors_capable: u8,
    /// Vectors software allocated (Multiple Message Enable).
    pub vectors_enabled: u8,
    /// The message address (upper half 0 without `PCI_MSI_FLAGS_64BIT`).
    pub address: u64,
    /// The message data.
    pub data: u16,
    /// The mask bits, with per-vector masking.
    pub mask: Option<u32>,
    /// The pending bits, with per-vector masking.
    pub pending: Option<u32>,
}

/// A placed MSI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsiRegs {
    /// Offset of the capability header.
    pub(crate) off: u16,
    cfg: MsiConfig,
    /// log2 of the vector count: the Multiple Message Capable encoding.
    mmc: u16,
}

impl MsiRegs {
    pub(crate) fn new(off: u16, cfg: MsiConfig) -> Result<Self, MsiError> {
        if !cfg.vectors.is_power_of_two() || cfg.vectors > 32 {
            return Err(MsiError::Vectors { vectors: cfg.vectors });
        }
        Ok(Self {
            off,
            cfg,
            mmc: cfg.vectors.trailing_zeros() as u16,
        })
    }

    /// Size of the structure for `cfg` (6.8.1: 10, 14, 20 or 24 bytes).
    pub(crate) fn size(cfg: &MsiConfig) -> u16 {
        match (cfg.address64, cfg.per_vector_mask) {
            (false, false) => PCI_MSI_DATA_32 + 2,
            (true, false) => PCI_MSI_DATA_64 + 2,
            (false, true) => PCI_MSI_PENDING_32 + 4,
            (true, true) => PCI_MSI_PENDING_64 + 4,
        }
    }

    pub(crate) fn vectors_capable(&self) -> u8 {
        self.cfg.vectors
    }

    fn flags(&self) -> u16 {
        self.off + PCI_MSI_FLAGS
    }

    fn data_reg(&self) -> u16 {
        self.off
            + if self.cfg.address64 {
                PCI_MSI_DATA_64
            } else {
                PCI_MSI_DATA_32
            }
    }

    fn mask_reg(&self) -> Option<u16> {
        let rel = if self.cfg.address64 {
            PCI_MSI_MASK_64
        } else {
            PCI_MSI_MASK_32
        };
        self.cfg.per_vector_mask.then_some(self.off + rel)
    }

    fn pending_reg(&self) -> Option<u16> {
        let rel = if self.cfg.address64 {
            PCI_MSI_PENDING_64
        } else {
            PCI_MSI_PENDING_32
        };
        self.cfg.per_vector_mask.then_some(self.off + rel)
    }

    /// The implemented mask/pending bits: one per requested vector.
    fn vector_bits(&self) -> u32 {
        u32::MAX >> (32 - u32::from(self.cfg.vectors))
    }

    /// Writes the defaults and masks (the header byte is written by the placement).
    pub(crate) fn install(&self, cs: &mut ConfigSpace) {
        let mut flags = self.mmc << PCI_MSI_FLAGS_QMASK.trailing_zeros();
        if self.cfg.address64 {
            flags |= PCI_MSI_FLAGS_64BIT;
        }
        if self.cfg.per_vector_mask {
            flags |= PCI_MSI_FLAGS_MASKBIT;
        }
        cs.store_u16(self.flags(), flags);
        cs.set_masks_u16(self.flags(), PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE, 0);
        // 6.8.1.4: Message Address bits 1:0 are "Reserved. Always returns 0 on read."
        cs.set_masks_u32(self.off + PCI_MSI_ADDRESS_LO, 0xffff_fffc, 0);
        if self.cfg.address64 {
            cs.set_masks_u32(self.off + PCI_MSI_ADDRESS_HI, 0xffff_ffff, 0);
        }
        cs.set_masks_u16(self.data_reg(), 0xffff, 0);
        if let Some(mask) = self.mask_reg() {
            // Mask bits reset to 0 (unmasked); bits beyond the requested vectors are reserved.
            cs.set_masks_u32(mask, self.vector_bits(), 0);
        }
    }

    /// Whether the driver access `[start, start + len)` touches the low byte of Message Control.
    pub(crate) fn touches_flags(&self, start: usize, len: usize) -> bool {
        let at = usize::from(self.flags());
        start <= at && at < start + len
    }

    /// Keeps Multiple Message Enable within Multiple Message Capable after a driver write.
    /// 6.8.1.3: "Software writes to this field to indicate the number of allocated vectors (equal
    /// to or less than the number of requested vectors)"; a larger value is undefined, and this
    /// model (like QEMU's `msi_write_config`) clamps it to the requested count.
    pub(crate) fn clamp_mme(&self, cs: &mut ConfigSpace) {
        let shift = PCI_MSI_FLAGS_QSIZE.trailing_zeros();
        let mme = (cs.load_u16(self.flags()) & PCI_MSI_FLAGS_QSIZE) >> shift;
        if mme > self.mmc {
            cs.update_u16(self.flags(), PCI_MSI_FLAGS_QSIZE, self.mmc << shift);
        }
    }

    pub(crate) fn enabled(&self, cs: &ConfigSpace) -> bool {
        cs.load_u16(self.flags()) & PCI_MSI_FLAGS_ENABLE != 0
    }

    /// Vectors allocated by software: 2^Multiple Message Enable.
    pub(crate) fn vectors_enabled(&self, cs: &ConfigSpace) -> u8 {
        let mme = (cs.load_u16(self.flags()) & PCI_MSI_FLAGS_QSIZE) >> PCI_MSI_FLAGS_QSIZE.trailing_zeros();
        // clamp_mme keeps mme ≤ 5.
        1u8 << mme.min(5)
    }

    fn address(&self, cs: &ConfigSpace) -> u64 {
        let low = u64::from(cs.load_u32(self.off + PCI_MSI_ADDRESS_LO));
        let high = if self.cfg.address64 {
            u64::from(cs.load_u32(self.off + PCI_MSI_ADDRESS_HI))
        } else {
            0
        };
        high << 32 | low
    }

    fn data(&self, cs: &ConfigSpace) -> u16 {
        cs.load_u16(self.data_reg())
    }

    /// The message for `vector`. Per 6.8.1 (Message Data), with Multiple Message Enable non-zero
    /// the function may modify the low log2(allocated vectors) bits of the message data to tell
    /// its vectors apart: those bits carry the vector number.
    pub(crate) fn message(&self, cs: &ConfigSpace, vector: u16) -> MsiMessage {
        let low_bits = u16::from(self.vectors_enabled(cs)) - 1;
        let data = (self.data(cs) & !low_bits) | (vector & low_bits);
        MsiMessage {
            kind: MessageKind::Msi,
            vector,
            address: self.address(cs),
            data: data.into(),
        }
    }

    pub(crate) fn masked(&self, cs: &ConfigSpace, vector: u16) -> bool {
        self.mask_reg()
            .is_some_and(|reg| cs.load_u32(reg) >> vector & 1 != 0)
    }

    pub(crate) fn pending_bits(&self, cs: &ConfigSpace) -> u32 {
        self.pending_reg().map_or(0, |reg| cs.load_u32(reg))
    }

    /// Sets or clears a pending bit; false without per-vector masking (no pending register).
    pub(crate) fn set_pending(&self, cs: &mut ConfigSpace, vector: u16, pending: bool) -> bool {
        let Some(reg) = self.pending_reg() else {
            return false;
        };
        let bit = 1u32.checked_shl(vector.into()).unwrap_or(0) & self.vector_bits();
        let old = cs.load_u32(reg);
        cs.store_u32(reg, if pending { old | bit } else { old & !bit });
        true
    }

    pub(crate) fn state(&self, cs: &ConfigSpace) -> MsiState {
        MsiState {
            enabled: self.enabled(cs),
            vectors_capable: self.cfg.vectors,
            vectors_enabled: self.vectors_enabled(cs),
            address: self.address(cs),
            data: self.data(cs),
            mask: self.mask_reg().map(|reg| cs.load_u32(reg)),
            pending: self.pending_reg().map(|reg| cs.load_u32(reg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(cfg: MsiConfig) -> (MsiRegs, ConfigSpace) {
        let regs = MsiRegs::new(0x50, cfg).unwrap();
        let mut cs = ConfigSpace::new();
        regs.install(&mut cs);
        (regs, cs)
    }

    #[test]
    fn vector_counts() {
        for vectors in [1, 2, 4, 8, 16, 32] {
            assert!(
                MsiRegs::new(
                    0x50,
                    MsiConfig {
                        vectors,
                        ..MsiConfig::default()
                    }
                )
                .is_ok()
            );
        }
        for vectors in [0, 3, 64] {
            let err = MsiRegs::new(
                0x50,
                MsiConfig {
                    vectors,
                    ..MsiConfig::default()
                },
            )
            .unwrap_err();
            assert_eq!(err, MsiError::Vectors { vectors });
        }
    }

    #[test]
    fn sizes_match_the_four_layouts() {
        let size = |address64, per_vector_mask| {
            MsiRegs::size(&MsiConfig {
                vectors: 1,
                address64,
                per_vector_mask,
            })
        };
        assert_eq!(
            [
                size(false, false),
                size(true, false),
                size(false, true),
                size(true, true)
            ],
            [10, 14, 20, 24]
        );
    }

    #[test]
    fn flags_register() {
        let (_, mut cs) = placed(MsiConfig {
            vectors: 8,
            address64: true,
            per_vector_mask: true,
        });
        assert_eq!(cs.load_u16(0x52), 0x0100 | 0x0080 | (3 << 1));
        cs.write(0x52, 2, 0xffff).unwrap();
        assert_eq!(cs.load_u16(0x52), 0x0100 | 0x0080 | (3 << 1) | 0x0070 | 0x0001);
    }

    #[test]
    fn mme_is_clamped_to_mmc() {
        let (regs, mut cs) = placed(MsiConfig {
            vectors: 4,
            ..MsiConfig::default()
        });
        cs.write(0x52, 2, 0x0051).unwrap(); // MME = 5 (32 vectors)
        regs.clamp_mme(&mut cs);
        assert_eq!(regs.vectors_enabled(&cs), 4);
        cs.write(0x52, 2, 0x0011).unwrap(); // MME = 1
        regs.clamp_mme(&mut cs);
        assert_eq!(regs.vectors_enabled(&cs), 2);
        assert!(regs.enabled(&cs));
    }

    #[test]
    fn address_data_and_multi_vector_message() {
        let (regs, mut cs) = placed(MsiConfig {
            vectors: 4,
            address64: true,
            per_vector_mask: false,
        });
        cs.write(0x54, 4, 0xfee0_0003).unwrap();
        cs.write(0x58, 4, 0x0000_0001).unwrap();
        cs.write(0x5c, 4, 0xffff_4021).unwrap();
        let state = regs.state(&cs);
        assert_eq!((state.address, state.data), (0x1_fee0_0000, 0x4021));
        assert_eq!((state.mask, state.pending), (None, None));
        assert_eq!(
            cs.load_u32(0x5c),
            0x4021,
            "bits 31:16 after the data are reserved"
        );
        cs.write(0x52, 2, 0x0021).unwrap(); // 4 vectors
        assert_eq!(regs.message(&cs, 2).data, 0x4022);
        assert_eq!(regs.message(&cs, 3).data, 0x4023);
    }

    #[test]
    fn address32_layout() {
        let (regs, mut cs) = placed(MsiConfig {
            vectors: 2,
            address64: false,
            per_vector_mask: true,
        });
        cs.write(0x54, 4, 0xfee0_1000).unwrap();
        cs.write(0x58, 2, 0x0041).unwrap();
        cs.write(0x5c, 4, 0xffff_ffff).unwrap();
        cs.write(0x60, 4, 0xffff_ffff).unwrap();
        let state = regs.state(&cs);
        assert_eq!((state.address, state.data), (0xfee0_1000, 0x41));
        assert_eq!(
            state.mask,
            Some(0b11),
            "only the two implemented mask bits are RW"
        );
        assert_eq!(state.pending, Some(0), "pending bits are RO");
        assert!(regs.set_pending(&mut cs, 1, true));
        assert_eq!(regs.pending_bits(&cs), 0b10);
        assert!(regs.masked(&cs, 1));
    }
}
