//! Capabilities: the conventional list from `PCI_CAPABILITY_LIST` (PCI Local Bus Spec 3.0, 6.7)
//! and the room for the extended list at 0x100.
//!
//! The builder places capabilities in declaration order from 0x40 (just after the standard
//! header), each at a DWORD-aligned offset: 6.7: "Each capability must be DWORD aligned." Their
//! next pointers are chained, the last is 0, `PCI_CAPABILITY_LIST` points at the first and
//! `PCI_STATUS_CAP_LIST` is set.
//!
//! **Extended capabilities.** PCI Express Base Spec, 7.6.3: "Extended Capabilities in
//! Configuration Space always begin at offset 100h with a PCI Express Extended Capability header.
//! Absence of any Extended Capabilities is required to be indicated by an Extended Capability
//! header with a Capability ID of 0000h, a Capability Version of 0h, and a Next Capability Offset
//! of 000h." Today offset 0x100 reads 0: the empty list. ATS (`PCI_EXT_CAP_ID_ATS`), PRI
//! (`PCI_EXT_CAP_ID_PRI`) and PASID (`PCI_EXT_CAP_ID_PASID`) — what an IOMMU with page requests
//! and PASID-tagged DMA needs — go here later: an `ExtCapability` enum beside [`Capability`], a
//! second cursor in `place` starting at `PCI_EXT_CAP_START` with 4-byte headers
//! `id | version << 16 | next << 20`, and, like `CapLayout`'s fields, one placed-register struct
//! per capability whose control bits the function's write path consults.

pub mod msi;
pub mod msix;
pub mod pcie;
pub mod pm;
pub mod vendor;

use crate::bar::Bars;
use crate::config::ConfigSpace;
use crate::regs::*;
use msi::{MsiConfig, MsiError, MsiRegs};
use msix::{MsixConfig, MsixError, MsixRegs};
use pcie::{PcieConfig, PcieError, PcieRegs};
use pm::{PmConfig, PmRegs};
use vendor::{VendorConfig, VendorError};

/// A capability the builder places in the conventional list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `PCI_CAP_ID_PM`.
    PowerManagement(PmConfig),
    /// `PCI_CAP_ID_MSI`.
    Msi(MsiConfig),
    /// `PCI_CAP_ID_MSIX`.
    MsiX(MsixConfig),
    /// `PCI_CAP_ID_EXP`.
    PciExpress(PcieConfig),
    /// `PCI_CAP_ID_VNDR` (may appear more than once).
    Vendor(VendorConfig),
}

impl Capability {
    /// The capability ID.
    pub fn id(&self) -> u8 {
        match self {
            Capability::PowerManagement(_) => PCI_CAP_ID_PM,
            Capability::Msi(_) => PCI_CAP_ID_MSI,
            Capability::MsiX(_) => PCI_CAP_ID_MSIX,
            Capability::PciExpress(_) => PCI_CAP_ID_EXP,
            Capability::Vendor(_) => PCI_CAP_ID_VNDR,
        }
    }
}

/// A capability list entry: its ID and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapabilityEntry {
    /// The capability ID (`PCI_CAP_LIST_ID`).
    pub id: u8,
    /// Its offset in config space.
    pub offset: u8,
}

/// A capability list the builder refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// PM, MSI, MSI-X and PCI Express may each appear once.
    #[error("capability {id:#04x} declared twice")]
    Duplicate {
        /// The capability ID.
        id: u8,
    },
    /// The capabilities do not fit between 0x40 and 0x100.
    #[error("capability {id:#04x} ({size} bytes at {offset:#x}) does not fit below 0x100")]
    NoRoom {
        /// The capability ID.
        id: u8,
        /// Where it would go.
        offset: u16,
        /// Its size.
        size: u16,
    },
    /// The MSI configuration is invalid.
    #[error("invalid MSI capability")]
    Msi(#[source] MsiError),
    /// The MSI-X configuration is invalid.
    #[error("invalid MSI-X capability")]
    Msix(#[source] MsixError),
    /// The PCI Express configuration is invalid.
    #[error("invalid PCI Express capability")]
    Pcie(#[source] PcieError),
    /// The vendor-specific capability is invalid.
    #[error("invalid vendor-specific capability")]
    Vendor(#[source] VendorError),
}

/// Where the builder put the capabilities whose registers have behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CapLayout {
    pub(crate) pm: Option<PmRegs>,
    pub(crate) msi: Option<MsiRegs>,
    pub(crate) msix: Option<MsixRegs>,
    pub(crate) pcie: Option<PcieRegs>,
}

fn round_up4(size: u16) -> u16 {
    size.div_ceil(4) * 4
}

fn once<T>(slot: &Option<T>, id: u8) -> Result<(), CapError> {
    if slot.is_some() {
        Err(CapError::Duplicate { id })
    } else {
        Ok(())
    }
}

/// Places `caps` in `cs` from 0x40, validating each against `bars`, and links the list.
pub(crate) fn place(caps: &[Capability], bars: &Bars, cs: &mut ConfigSpace) -> Result<CapLayout, CapError> {
    let mut layout = CapLayout::default();
    let mut offsets: Vec<u16> = Vec::with_capacity(caps.len());
    let mut cursor = PCI_STD_HEADER_SIZEOF;
    for cap in caps {
        let id = cap.id();
        let off = cursor;
        let size = match cap {
            Capability::PowerManagement(_) => PmRegs::SIZE,
            Capability::Msi(cfg) => MsiRegs::size(cfg),
            Capability::MsiX(_) => MsixRegs::SIZE,
            Capability::PciExpress(_) => PcieRegs::SIZE,
            Capability::Vendor(cfg) => vendor::size(cfg).map_err(CapError::Vendor)?,
        };
        let end = off + round_up4(size);
        if end > PCI_CFG_SPACE_SIZE {
            return Err(CapError::NoRoom {
                id,
                offset: off,
                size,
            });
        }
        match cap {
            Capability::PowerManagement(cfg) => {
                once(&layout.pm, id)?;
                let regs = PmRegs::new(off, *cfg);
                regs.install(cs);
                layout.pm = Some(regs);
            }
            Capability::Msi(cfg) => {
                once(&layout.msi, id)?;
                let regs = MsiRegs::new(off, *cfg).map_err(CapError::Msi)?;
                regs.install(cs);
                layout.msi = Some(regs);
            }
            Capability::MsiX(cfg) => {
                once(&layout.msix, id)?;
                let regs = MsixRegs::new(off, *cfg, bars).map_err(CapError::Msix)?;
                regs.install(cs);
                layout.msix = Some(regs);
            }
            Capability::PciExpress(cfg) => {
                once(&layout.pcie, id)?;
                let regs = PcieRegs::new(off, *cfg).map_err(CapError::Pcie)?;
                regs.install(cs);
                layout.pcie = Some(regs);
            }
            Capability::Vendor(cfg) => vendor::install(cs, off, cfg).map_err(CapError::Vendor)?,
        }
        cs.store_u8(off + PCI_CAP_LIST_ID, id);
        offsets.push(off);
        cursor = end;
    }
    for pair in offsets.windows(2) {
        if let [this, next] = pair {
            // Offsets are below 0x100 (checked above).
            cs.store_u8(this + PCI_CAP_LIST_NEXT, *next as u8);
        }
    }
    if let Some(&first) = offsets.first() {
        cs.store_u8(PCI_CAPABILITY_LIST, first as u8);
        let status = cs.load_u16(PCI_STATUS);
        cs.store_u16(PCI_STATUS, status | PCI_STATUS_CAP_LIST);
    }
    Ok(layout)
}

/// Linux's `PCI_FIND_CAP_TTL`: a bound on list walks, so a looping list terminates.
const FIND_CAP_TTL: usize = 48;

/// Walks the conventional capability list of `cs` as a driver does: from `PCI_CAPABILITY_LIST`
/// (only if `PCI_STATUS_CAP_LIST` is set), masking the reserved low two bits of every pointer
/// (6.7: "The bottom two bits are Reserved and must be set to 00b. Software must mask these bits
/// off before using this register as a pointer"), stopping at a pointer below 0x40, an ID of 0xff
/// or after 48 entries (Linux's `__pci_find_next_cap_ttl`).
pub fn capabilities(cs: &ConfigSpace) -> Vec<CapabilityEntry> {
    let mut out = Vec::new();
    if cs.load_u16(PCI_STATUS) & PCI_STATUS_CAP_LIST == 0 {
        return out;
    }
    let mut pos = cs.load_u8(PCI_CAPABILITY_LIST) & !3;
    while u16::from(pos) >= PCI_STD_HEADER_SIZEOF && out.len() < FIND_CAP_TTL {
        let id = cs.load_u8(u16::from(pos) + PCI_CAP_LIST_ID);
        if id == 0xff {
            break;
        }
        out.push(CapabilityEntry { id, offset: pos });
        pos = cs.load_u8(u16::from(pos) + PCI_CAP_LIST_NEXT) & !3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarConfig;

    fn bars() -> Bars {
        Bars::new(&[(0, BarConfig::memory32(0x1000))], None).unwrap()
    }

    #[test]
    fn placement_chains_dword_aligned() {
        let mut cs = ConfigSpace::new();
        let caps = [
            Capability::PowerManagement(PmConfig::default()),
            Capability::Msi(MsiConfig {
                vectors: 1,
                address64: false,
                per_vector_mask: false,
            }),
            Capability::Vendor(VendorConfig { data: vec![1] }),
            Capability::PciExpress(PcieConfig::default()),
        ];
        let layout = place(&caps, &bars(), &mut cs).unwrap();
        let found = capabilities(&cs);
        let expect = [
            (PCI_CAP_ID_PM, 0x40),
            (PCI_CAP_ID_MSI, 0x48),
            (PCI_CAP_ID_VNDR, 0x54),
            (PCI_CAP_ID_EXP, 0x58),
        ];
        let found: Vec<(u8, u8)> = found.iter().map(|e| (e.id, e.offset)).collect();
        assert_eq!(found, expect);
        assert_eq!(cs.load_u8(0x59), 0, "last next pointer is 0");
        assert_eq!(layout.pcie.map(|p| p.off), Some(0x58));
        assert_ne!(cs.load_u16(PCI_STATUS) & PCI_STATUS_CAP_LIST, 0);
    }

    #[test]
    fn no_capabilities() {
        let mut cs = ConfigSpace::new();
        place(&[], &bars(), &mut cs).unwrap();
        assert_eq!(cs.load_u8(PCI_CAPABILITY_LIST), 0);
        assert_eq!(cs.load_u16(PCI_STATUS), 0);
        assert!(capabilities(&cs).is_empty());
    }

    #[test]
    fn errors() {
        let mut cs = ConfigSpace::new();
        let pm = Capability::PowerManagement(PmConfig::default());
        assert_eq!(
            place(&[pm.clone(), pm], &bars(), &mut cs),
            Err(CapError::Duplicate { id: PCI_CAP_ID_PM })
        );
        let big = Capability::Vendor(VendorConfig { data: vec![0; 200] });
        assert!(matches!(
            place(&[big], &bars(), &mut cs),
            Err(CapError::NoRoom {
                id: PCI_CAP_ID_VNDR,
                offset: 0x40,
                size: 203
            })
        ));
        let bad_msi = Capability::Msi(MsiConfig {
            vectors: 3,
            ..MsiConfig::default()
        });
        assert!(matches!(
            place(&[bad_msi], &bars(), &mut cs),
            Err(CapError::Msi(MsiError::Vectors { vectors: 3 }))
        ));
    }

    #[test]
    fn walk_is_bounded_and_masks_pointers() {
        let mut cs = ConfigSpace::new();
        cs.store_u16(PCI_STATUS, PCI_STATUS_CAP_LIST);
        cs.store_u8(PCI_CAPABILITY_LIST, 0x43);
        cs.store_u8(0x40, 0x09);
        cs.store_u8(0x41, 0x41); // points back at itself (masked to 0x40)
        assert_eq!(capabilities(&cs).len(), FIND_CAP_TTL);
        cs.store_u8(0x41, 0x30); // below the header end: the walk stops
        assert_eq!(
            capabilities(&cs),
            vec![CapabilityEntry {
                id: 0x09,
                offset: 0x40
            }]
        );
    }
}
