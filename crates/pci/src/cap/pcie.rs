//! The PCI Express capability (`PCI_CAP_ID_EXP`, PCI Express Base Spec, 7.5.3), version 2,
//! device/port type Endpoint.
//!
//! Implemented: Device Capabilities (Max_Payload_Size supported, extended tags, role-based error
//! reporting, FLR), Device Control (the error reporting enables, relaxed ordering, MPS, extended
//! tag, no snoop, MRRS RW; `PCI_EXP_DEVCTL_BCR_FLR` initiates a Function Level Reset and reads
//! 0), Device Status (error bits RW1C), static link registers (speed and width as configured, the
//! link control bits software commonly writes are RW). Slot and root registers, which an
//! endpoint does not have, and the "2" registers beyond the link speeds read 0.

use crate::config::ConfigSpace;
use crate::regs::*;

/// A link speed (`PCI_EXP_LNKCAP_SLS` / `PCI_EXP_LNKSTA_CLS` encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSpeed {
    /// 2.5 GT/s (PCIe 1.x).
    Gt2_5 = 1,
    /// 5.0 GT/s (PCIe 2.x).
    Gt5 = 2,
    /// 8.0 GT/s (PCIe 3.x).
    Gt8 = 3,
    /// 16.0 GT/s (PCIe 4.0).
    Gt16 = 4,
    /// 32.0 GT/s (PCIe 5.0).
    Gt32 = 5,
    /// 64.0 GT/s (PCIe 6.0).
    Gt64 = 6,
}

/// How the PCI Express capability is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcieConfig {
    /// Max_Payload_Size Supported in bytes: 128, 256, 512, 1024, 2048 or 4096.
    pub max_payload_size: u16,
    /// Extended Tag Field Supported (`PCI_EXP_DEVCAP_EXT_TAG`); makes `PCI_EXP_DEVCTL_EXT_TAG` RW.
    pub extended_tag: bool,
    /// Function Level Reset Capability (`PCI_EXP_DEVCAP_FLR`).
    pub flr: bool,
    /// Max and current link speed.
    pub link_speed: LinkSpeed,
    /// Max and negotiated link width: 1, 2, 4, 8, 12, 16 or 32 lanes.
    pub link_width: u8,
}

impl Default for PcieConfig {
    /// 256-byte payloads, extended tags, FLR, a x1 link at 2.5 GT/s.
    fn default() -> Self {
        Self {
            max_payload_size: 256,
            extended_tag: true,
            flr: true,
            link_speed: LinkSpeed::Gt2_5,
            link_width: 1,
        }
    }
}

/// A PCI Express configuration the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PcieError {
    /// Max_Payload_Size Supported encodes 128 << n for n in 0..=5.
    #[error("max payload size {size} is not one of 128, 256, 512, 1024, 2048, 4096")]
    PayloadSize {
        /// The size given.
        size: u16,
    },
    /// Link widths are x1, x2, x4, x8, x12, x16 or x32.
    #[error("link width x{width} is not one of x1, x2, x4, x8, x12, x16, x32")]
    LinkWidth {
        /// The width given.
        width: u8,
    },
}

/// Size of a version-2 PCI Express capability: through `PCI_EXP_SLTSTA2`.
const SIZE_V2: u16 = PCI_EXP_SLTSTA2 + 2;

/// Registers a Function Level Reset leaves alone. PCI Express Base Spec, 6.6.2: FLR resets the
/// function's registers except sticky and HwInit ones and, among others, "Max_Payload_Size",
/// "Active State Power Management (ASPM) Control", "Read Completion Boundary (RCB)", "Common Clock
/// Configuration" and "Extended Synch" — link-wide settings other functions may depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlrPreserved {
    devctl: u16,
    lnkctl: u16,
}

const FLR_KEEP_DEVCTL: u16 = PCI_EXP_DEVCTL_PAYLOAD;
const FLR_KEEP_LNKCTL: u16 =
    PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_RCB | PCI_EXP_LNKCTL_CCC | PCI_EXP_LNKCTL_ES;

/// A placed PCI Express capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcieRegs {
    /// Offset of the capability header.
    pub(crate) off: u16,
    cfg: PcieConfig,
    /// The Max_Payload_Size Supported encoding.
    mps: u16,
}

impl PcieRegs {
    /// Size of the structure.
    pub(crate) const SIZE: u16 = SIZE_V2;

    pub(crate) fn new(off: u16, cfg: PcieConfig) -> Result<Self, PcieError> {
        let size = cfg.max_payload_size;
        if !size.is_power_of_two() || !(128..=4096).contains(&size) {
            return Err(PcieError::PayloadSize { size });
        }
        if ![1, 2, 4, 8, 12, 16, 32].contains(&cfg.link_width) {
            return Err(PcieError::LinkWidth {
                width: cfg.link_width,
            });
        }
        Ok(Self {
            off,
            cfg,
            mps: (size.trailing_zeros() - 7) as u16,
        })
    }

    fn reg(&self, rel: u16) -> u16 {
        self.off + rel
    }

    /// Writes the defaults and masks (the header byte is written by the placement).
    pub(crate) fn install(&self, cs: &mut ConfigSpace) {
        // 7.5.3.2: Capability Version 2h (this layout, with the "2" registers); Device/Port Type
        // 0000b, a PCI Express Endpoint; no slot; Interrupt Message Number 0.
        cs.store_u16(
            self.reg(PCI_EXP_FLAGS),
            2 | PCI_EXP_TYPE_ENDPOINT << PCI_EXP_FLAGS_TYPE.trailing_zeros(),
        );

        let mut devcap = u32::from(self.mps) & PCI_EXP_DEVCAP_PAYLOAD;
        // 7.5.3.3: Role-Based Error Reporting "must be Set by all Functions conforming to" PCIe 1.1
        // and later.
        devcap |= PCI_EXP_DEVCAP_RBER;
        if self.cfg.extended_tag {
            devcap |= PCI_EXP_DEVCAP_EXT_TAG;
        }
        if self.cfg.flr {
            devcap |= PCI_EXP_DEVCAP_FLR;
        }
        cs.store_u32(self.reg(PCI_EXP_DEVCAP), devcap);

        // 7.5.3.4 defaults: Enable Relaxed Ordering 1b, Enable No Snoop 1b, Max_Read_Request_Size
        // 010b (512 bytes), Max_Payload_Size 000b (128 bytes), the rest 0.
        cs.store_u16(
            self.reg(PCI_EXP_DEVCTL),
            PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | PCI_EXP_DEVCTL_READRQ_512B,
        );
        let mut devctl_rw = PCI_EXP_DEVCTL_CERE
            | PCI_EXP_DEVCTL_NFERE
            | PCI_EXP_DEVCTL_FERE
            | PCI_EXP_DEVCTL_URRE
            | PCI_EXP_DEVCTL_RELAX_EN
            | PCI_EXP_DEVCTL_PAYLOAD
            | PCI_EXP_DEVCTL_NOSNOOP_EN
            | PCI_EXP_DEVCTL_READRQ;
        if self.cfg.extended_tag {
            devctl_rw |= PCI_EXP_DEVCTL_EXT_TAG;
        }
        // Phantom Functions and Aux Power PM are unsupported: hardwired 0. Initiate Function Level
        // Reset always reads 0 (7.5.3.4): RO 0 here, acted on by the function's write path.
        cs.set_masks_u16(self.reg(PCI_EXP_DEVCTL), devctl_rw, 0);

        // 7.5.3.5: the error-detected bits are RW1C; AUX Power Detected and Transactions Pending RO.
        let devsta_w1c = PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD;
        cs.set_masks_u16(self.reg(PCI_EXP_DEVSTA), 0, devsta_w1c);

        let speed = self.cfg.link_speed as u16;
        let width = u16::from(self.cfg.link_width);
        let lnkcap = (u32::from(speed) & PCI_EXP_LNKCAP_SLS) | (u32::from(width) << 4 & PCI_EXP_LNKCAP_MLW);
        cs.store_u32(self.reg(PCI_EXP_LNKCAP), lnkcap);
        cs.set_masks_u16(
            self.reg(PCI_EXP_LNKCTL),
            PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_RCB | PCI_EXP_LNKCTL_CCC | PCI_EXP_LNKCTL_ES,
            0,
        );
        cs.store_u16(
            self.reg(PCI_EXP_LNKSTA),
            (speed & PCI_EXP_LNKSTA_CLS) | (width << PCI_EXP_LNKSTA_NLW_SHIFT & PCI_EXP_LNKSTA_NLW),
        );
        // 7.5.3.18: Supported Link Speeds Vector, bit n-1 of 7:1 for speed n; LNKCAP's Max Link
        // Speed then indexes this vector.
        let vector = (((1u32 << (speed + 1)) - 1) & PCI_EXP_LNKCAP2_SLS) as u16;
        cs.store_u32(self.reg(PCI_EXP_LNKCAP2), vector.into());
        cs.store_u16(self.reg(PCI_EXP_LNKCTL2), speed & PCI_EXP_LNKCTL2_TLS);
    }

    /// Whether a driver write of the low `len` bytes of `value` at `start` sets Initiate Function
    /// Level Reset (on an FLR-capable function).
    pub(crate) fn flr_requested(&self, start: usize, len: usize, value: u32) -> bool {
        if !self.cfg.flr {
            return false;
        }
        let flr_byte = usize::from(self.reg(PCI_EXP_DEVCTL)) + 1;
        let flr_bit = (PCI_EXP_DEVCTL_BCR_FLR >> 8) as u8;
        value
            .to_le_bytes()
            .into_iter()
            .take(len)
            .enumerate()
            .any(|(i, byte)| start + i == flr_byte && byte & flr_bit != 0)
    }

    /// The registers an FLR keeps.
    pub(crate) fn save_for_flr(&self, cs: &ConfigSpace) -> FlrPreserved {
        FlrPreserved {
            devctl: cs.load_u16(self.reg(PCI_EXP_DEVCTL)),
            lnkctl: cs.load_u16(self.reg(PCI_EXP_LNKCTL)),
        }
    }

    /// Puts back what an FLR keeps, after the reset.
    pub(crate) fn restore_after_flr(&self, cs: &mut ConfigSpace, saved: FlrPreserved) {
        cs.update_u16(self.reg(PCI_EXP_DEVCTL), FLR_KEEP_DEVCTL, saved.devctl);
        cs.update_u16(self.reg(PCI_EXP_LNKCTL), FLR_KEEP_LNKCTL, saved.lnkctl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(cfg: PcieConfig) -> (PcieRegs, ConfigSpace) {
        let regs = PcieRegs::new(0x70, cfg).unwrap();
        let mut cs = ConfigSpace::new();
        regs.install(&mut cs);
        (regs, cs)
    }

    #[test]
    fn validation() {
        let bad_mps = PcieConfig {
            max_payload_size: 64,
            ..PcieConfig::default()
        };
        assert_eq!(
            PcieRegs::new(0x70, bad_mps),
            Err(PcieError::PayloadSize { size: 64 })
        );
        let bad_width = PcieConfig {
            link_width: 3,
            ..PcieConfig::default()
        };
        assert_eq!(
            PcieRegs::new(0x70, bad_width),
            Err(PcieError::LinkWidth { width: 3 })
        );
    }

    #[test]
    fn capability_registers() {
        let cfg = PcieConfig {
            max_payload_size: 512,
            link_speed: LinkSpeed::Gt8,
            link_width: 4,
            ..PcieConfig::default()
        };
        let (_, cs) = placed(cfg);
        assert_eq!(cs.load_u16(0x72), 0x0002, "version 2, endpoint");
        assert_eq!(
            cs.load_u32(0x74),
            2 | PCI_EXP_DEVCAP_EXT_TAG | PCI_EXP_DEVCAP_RBER | PCI_EXP_DEVCAP_FLR
        );
        assert_eq!(cs.load_u16(0x78), 0x2810);
        assert_eq!(cs.load_u32(0x7c), 0x43, "x4 at 8 GT/s");
        assert_eq!(cs.load_u16(0x82), 0x43);
        assert_eq!(cs.load_u32(0x70 + PCI_EXP_LNKCAP2), 0x0e, "2.5, 5 and 8 GT/s");
        assert_eq!(PcieRegs::SIZE, 0x3c);
    }

    #[test]
    fn devctl_and_devsta_semantics() {
        let (_, mut cs) = placed(PcieConfig {
            extended_tag: false,
            ..PcieConfig::default()
        });
        cs.write(0x78, 2, 0xffff).unwrap();
        assert_eq!(
            cs.load_u16(0x78),
            0x7fff & !(PCI_EXP_DEVCTL_EXT_TAG | PCI_EXP_DEVCTL_PHANTOM | PCI_EXP_DEVCTL_AUX_PME)
        );
        cs.store_u16(0x7a, 0x003f);
        cs.write(0x7a, 2, 0x0005).unwrap();
        assert_eq!(cs.load_u16(0x7a), 0x003a, "CED and FED cleared, AUXPD/TRPND RO");
        cs.write(0x7c, 4, 0xffff_ffff).unwrap();
        assert_eq!(cs.load_u32(0x7c), 0x11, "link capabilities RO");
    }

    #[test]
    fn flr_detection() {
        let (regs, _) = placed(PcieConfig::default());
        assert!(regs.flr_requested(0x78, 2, 0x8000));
        assert!(regs.flr_requested(0x79, 1, 0x80));
        assert!(regs.flr_requested(0x78, 4, 0x0000_8000));
        assert!(!regs.flr_requested(0x78, 1, 0xff));
        assert!(!regs.flr_requested(0x78, 4, 0x8000_0000), "that is DEVSTA");
        let (no_flr, _) = placed(PcieConfig {
            flr: false,
            ..PcieConfig::default()
        });
        assert!(!no_flr.flr_requested(0x78, 2, 0x8000));
    }

    #[test]
    fn flr_keeps_link_settings() {
        let (regs, mut cs) = placed(PcieConfig::default());
        let defaults = cs.clone();
        cs.write(0x78, 2, 0x002f).unwrap(); // MPS 256, all error enables
        cs.write(0x80, 2, 0x00cb).unwrap();
        let saved = regs.save_for_flr(&cs);
        cs.copy_from(&defaults);
        regs.restore_after_flr(&mut cs, saved);
        assert_eq!(cs.load_u16(0x78), 0x2830, "MPS kept, enables back to defaults");
        assert_eq!(cs.load_u16(0x80), 0x00cb);
    }
}
