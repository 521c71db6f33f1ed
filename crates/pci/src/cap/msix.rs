//! The MSI-X capability (`PCI_CAP_ID_MSIX`, PCI Local Bus Spec 3.0, 6.8.2).
//!
//! The capability holds Message Control (table size RO; `PCI_MSIX_FLAGS_MASKALL` and
//! `PCI_MSIX_FLAGS_ENABLE` RW) and two RO pointers, `PCI_MSIX_TABLE` and `PCI_MSIX_PBA`, each a
//! BAR indicator (BIR) plus a QWORD-aligned offset into that BAR. The table and PBA themselves are
//! device memory, modelled in [`crate::table`].

use crate::bar::Bars;
use crate::config::ConfigSpace;
use crate::regs::*;
use crate::table::{MAX_TABLE_SIZE, pba_len};

/// How the MSI-X capability is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixConfig {
    /// Number of table entries, 1..=2048 (Message Control encodes N - 1 in 11 bits).
    pub table_size: u16,
    /// The BAR holding the table (a memory BAR; for a 64-bit BAR its lower index).
    pub table_bar: u8,
    /// The table's offset in that BAR: a multiple of 8.
    pub table_offset: u32,
    /// The BAR holding the PBA.
    pub pba_bar: u8,
    /// The PBA's offset in that BAR: a multiple of 8.
    pub pba_offset: u32,
}

/// An MSI-X configuration the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsixError {
    /// The table has 1..=2048 entries.
    #[error("MSI-X table size {size} is outside 1..=2048")]
    TableSize {
        /// The size given.
        size: u16,
    },
    /// The BIR names no memory BAR. 6.8.2.4: the BIR "Indicates which one of a function's Base
    /// Address registers ... is used to map the function's MSI-X Table into Memory Space."
    #[error("BAR {bar} is not a memory BAR of the function")]
    NotMemoryBar {
        /// The BIR given.
        bar: u8,
    },
    /// Offsets are QWORD aligned: the low 3 bits of the register hold the BIR.
    #[error("MSI-X structure offset {offset:#x} is not a multiple of 8")]
    Unaligned {
        /// The offset given.
        offset: u32,
    },
    /// The structure does not fit in its BAR.
    #[error(
        "MSI-X structure at {offset:#x} ({len:#x} bytes) does not fit in BAR {bar} ({bar_size:#x} bytes)"
    )]
    BeyondBar {
        /// The BAR.
        bar: u8,
        /// The structure's offset.
        offset: u32,
        /// The structure's length.
        len: u64,
        /// The BAR's size.
        bar_size: u64,
    },
    /// The table and the PBA overlap.
    #[error("the MSI-X table and PBA overlap")]
    Overlap,
}

/// Where an MSI-X structure lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixLocation {
    /// The BAR index.
    pub bar: u8,
    /// The offset in the BAR.
    pub offset: u64,
    /// The length in bytes.
    pub len: u64,
}

/// Where a BAR access falls relative to an MSI-X structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Not in the structure at all.
    Outside,
    /// Entirely inside, at this offset from the structure's start.
    Inside(u64),
    /// Partly inside: straddles the structure's edge.
    Straddles,
}

impl MsixLocation {
    /// Where `[offset, offset + len)` of BAR `bar` falls relative to this structure.
    pub(crate) fn locate(&self, bar: u8, offset: u64, len: u64) -> Hit {
        let Some(end) = offset.checked_add(len) else {
            return Hit::Outside;
        };
        let struct_end = self.offset + self.len;
        if bar != self.bar || end <= self.offset || offset >= struct_end {
            Hit::Outside
        } else if offset < self.offset || end > struct_end {
            Hit::Straddles
        } else {
            Hit::Inside(offset - self.offset)
        }
    }
}

/// The MSI-X control bits as currently programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsixState {
    /// `PCI_MSIX_FLAGS_ENABLE`.
    pub enabled: bool,
    /// `PCI_MSIX_FLAGS_MASKALL`.
    pub function_masked: bool,
    /// Number of table entries.
    pub table_size: u16,
}

/// A placed MSI-X capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsixRegs {
    /// Offset of the capability header.
    pub(crate) off: u16,
    cfg: MsixConfig,
}

impl MsixRegs {
    /// Size of the structure.
    pub(crate) const SIZE: u16 = PCI_CAP_MSIX_SIZEOF;

    /// Validates `cfg` against the function's BARs.
    pub(crate) fn new(off: u16, cfg: MsixConfig, bars: &Bars) -> Result<Self, MsixError> {
        if cfg.table_size == 0 || usize::from(cfg.table_size) > MAX_TABLE_SIZE {
            return Err(MsixError::TableSize { size: cfg.table_size });
        }
        let regs = Self { off, cfg };
        let (table, pba) = (regs.table_location(), regs.pba_location());
        for (loc, offset) in [(table, cfg.table_offset), (pba, cfg.pba_offset)] {
            let bar = bars.config(loc.bar).filter(|b| b.kind.is_memory());
            let Some(bar) = bar else {
                return Err(MsixError::NotMemoryBar { bar: loc.bar });
            };
            if offset % 8 != 0 {
                return Err(MsixError::Unaligned { offset });
            }
            if loc.offset + loc.len > bar.size {
                return Err(MsixError::BeyondBar {
                    bar: loc.bar,
                    offset,
                    len: loc.len,
                    bar_size: bar.size,
                });
            }
        }
        let disjoint = table.offset + table.len <= pba.offset || pba.offset + pba.len <= table.offset;
        if table.bar == pba.bar && !disjoint {
            return Err(MsixError::Overlap);
        }
        Ok(regs)
    }

    pub(crate) fn table_size(&self) -> u16 {
        self.cfg.table_size
    }

    pub(crate) fn table_location(&self) -> MsixLocation {
        MsixLocation {
            bar: self.cfg.table_bar,
            offset: self.cfg.table_offset.into(),
            len: u64::from(self.cfg.table_size) * PCI_MSIX_ENTRY_SIZE,
        }
    }

    pub(crate) fn pba_location(&self) -> MsixLocation {
        MsixLocation {
            bar: self.cfg.pba_bar,
            offset: self.cfg.pba_offset.into(),
            len: pba_len(self.cfg.table_size),
        }
    }

    fn flags(&self) -> u16 {
        self.off + PCI_MSIX_FLAGS
    }

    /// Writes the defaults and masks (the header byte is written by the placement).
    pub(crate) fn install(&self, cs: &mut ConfigSpace) {
        // 6.8.2.3: Table Size "System software reads this field to determine the MSI-X Table
        // Size N, which is encoded as N-1."
        cs.store_u16(self.flags(), (self.cfg.table_size - 1) & PCI_MSIX_FLAGS_QSIZE);
        cs.set_masks_u16(self.flags(), PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE, 0);
        let bir = |bar: u8| u32::from(bar) & PCI_MSIX_TABLE_BIR;
        cs.store_u32(
            self.off + PCI_MSIX_TABLE,
            (self.cfg.table_offset & PCI_MSIX_TABLE_OFFSET) | bir(self.cfg.table_bar),
        );
        cs.store_u32(
            self.off + PCI_MSIX_PBA,
            (self.cfg.pba_offset & PCI_MSIX_PBA_OFFSET) | bir(self.cfg.pba_bar),
        );
    }

    pub(crate) fn enabled(&self, cs: &ConfigSpace) -> bool {
        cs.load_u16(self.flags()) & PCI_MSIX_FLAGS_ENABLE != 0
    }

    pub(crate) fn function_masked(&self, cs: &ConfigSpace) -> bool {
        cs.load_u16(self.flags()) & PCI_MSIX_FLAGS_MASKALL != 0
    }

    pub(crate) fn state(&self, cs: &ConfigSpace) -> MsixState {
        MsixState {
            enabled: self.enabled(cs),
            function_masked: self.function_masked(cs),
            table_size: self.cfg.table_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarConfig;

    fn bars() -> Bars {
        Bars::new(
            &[
                (0, BarConfig::memory32(0x1000)),
                (1, BarConfig::io(16)),
                (2, BarConfig::memory64(0x4000)),
            ],
            None,
        )
        .unwrap()
    }

    fn cfg(table_size: u16) -> MsixConfig {
        MsixConfig {
            table_size,
            table_bar: 2,
            table_offset: 0,
            pba_bar: 2,
            pba_offset: 0x2000,
        }
    }

    #[test]
    fn registers() {
        let regs = MsixRegs::new(0x60, cfg(64), &bars()).unwrap();
        let mut cs = ConfigSpace::new();
        regs.install(&mut cs);
        assert_eq!(cs.load_u16(0x62), 63);
        assert_eq!(cs.load_u32(0x64), 0x0000_0002);
        assert_eq!(cs.load_u32(0x68), 0x0000_2002);
        cs.write(0x62, 2, 0xffff).unwrap();
        assert_eq!(
            cs.load_u16(0x62),
            0xc000 | 63,
            "table size RO, bits 13:11 reserved"
        );
        cs.write(0x64, 4, 0xffff_ffff).unwrap();
        assert_eq!(cs.load_u32(0x64), 0x0000_0002, "table offset/BIR RO");
        let state = regs.state(&cs);
        assert_eq!(
            (state.enabled, state.function_masked, state.table_size),
            (true, true, 64)
        );
    }

    #[test]
    fn validation() {
        let new = |c: MsixConfig| MsixRegs::new(0x60, c, &bars()).map(|_| ());
        assert_eq!(new(cfg(0)), Err(MsixError::TableSize { size: 0 }));
        assert_eq!(new(cfg(2049)), Err(MsixError::TableSize { size: 2049 }));
        assert!(
            new(cfg(2048)).is_err(),
            "2048 entries (32 KiB) do not fit the 16 KiB BAR"
        );
        assert_eq!(
            new(MsixConfig {
                table_bar: 1,
                ..cfg(4)
            }),
            Err(MsixError::NotMemoryBar { bar: 1 })
        );
        assert_eq!(
            new(MsixConfig {
                table_bar: 3,
                ..cfg(4)
            }),
            Err(MsixError::NotMemoryBar { bar: 3 })
        );
        assert_eq!(
            new(MsixConfig { pba_bar: 5, ..cfg(4) }),
            Err(MsixError::NotMemoryBar { bar: 5 })
        );
        assert_eq!(
            new(MsixConfig {
                table_offset: 4,
                ..cfg(4)
            }),
            Err(MsixError::Unaligned { offset: 4 })
        );
        assert_eq!(
            new(MsixConfig {
                table_bar: 0,
                table_offset: 0xff8,
                ..cfg(4)
            }),
            Err(MsixError::BeyondBar {
                bar: 0,
                offset: 0xff8,
                len: 64,
                bar_size: 0x1000
            })
        );
        assert_eq!(
            new(MsixConfig {
                pba_offset: 0x38,
                ..cfg(4)
            }),
            Err(MsixError::Overlap)
        );
        assert_eq!(
            new(MsixConfig {
                pba_offset: 0x40,
                ..cfg(4)
            }),
            Ok(())
        );
        assert_eq!(
            new(MsixConfig {
                table_bar: 0,
                pba_bar: 2,
                pba_offset: 0,
                ..cfg(4)
            }),
            Ok(())
        );
    }

    #[test]
    fn locate() {
        let loc = MsixLocation {
            bar: 2,
            offset: 0x100,
            len: 0x40,
        };
        assert_eq!(loc.locate(0, 0x100, 4), Hit::Outside);
        assert_eq!(loc.locate(2, 0xfc, 4), Hit::Outside);
        assert_eq!(loc.locate(2, 0x140, 4), Hit::Outside);
        assert_eq!(loc.locate(2, 0x100, 4), Hit::Inside(0));
        assert_eq!(loc.locate(2, 0x138, 8), Hit::Inside(0x38));
        assert_eq!(loc.locate(2, 0xfc, 8), Hit::Straddles);
        assert_eq!(loc.locate(2, 0x13c, 8), Hit::Straddles);
        assert_eq!(loc.locate(2, u64::MAX, 8), Hit::Outside);
    }
}
