//! Base Address Registers (PCI Local Bus Spec 3.0, 6.2.5) and the expansion ROM BAR (6.2.5.2).
//!
//! A BAR is modelled entirely by its config-space masks: the type bits are RO, the address bits
//! above the size are RW, the bits below it RO 0. Sizing then works as 6.2.5.1 describes:
//! "Software saves the original value of the Base Address register, writes 0 FFFFFFFFh to the
//! register, then reads it back. Size calculation can be done from the 32-bit value read by
//! first clearing encoding information bits (bit 0 for I/O, bits 0-3 for memory), inverting all
//! 32 bits (logical NOT), then incrementing by 1." A 64-bit BAR takes two slots, the upper dword
//! holding address bits 63:32 (RW above the size, so a BAR under 4 GiB has an all-RW upper half).

use crate::config::ConfigSpace;
use crate::regs::*;

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// Memory space, 32-bit address (`PCI_BASE_ADDRESS_MEM_TYPE_32`).
    Memory32,
    /// Memory space, 64-bit address (`PCI_BASE_ADDRESS_MEM_TYPE_64`); takes this slot and the next.
    Memory64,
    /// I/O space (`PCI_BASE_ADDRESS_SPACE_IO`).
    Io,
}

impl BarKind {
    /// Whether this is a memory BAR.
    pub fn is_memory(self) -> bool {
        matches!(self, BarKind::Memory32 | BarKind::Memory64)
    }
}

/// A BAR as the builder declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarConfig {
    /// What it decodes.
    pub kind: BarKind,
    /// Its size in bytes: a power of two, ≥ 16 for memory, 4..=256 for I/O.
    pub size: u64,
    /// `PCI_BASE_ADDRESS_MEM_PREFETCH` (memory BARs only).
    pub prefetchable: bool,
}

impl BarConfig {
    /// A non-prefetchable 32-bit memory BAR of `size` bytes.
    pub const fn memory32(size: u64) -> Self {
        Self {
            kind: BarKind::Memory32,
            size,
            prefetchable: false,
        }
    }

    /// A non-prefetchable 64-bit memory BAR of `size` bytes.
    pub const fn memory64(size: u64) -> Self {
        Self {
            kind: BarKind::Memory64,
            size,
            prefetchable: false,
        }
    }

    /// An I/O BAR of `size` bytes.
    pub const fn io(size: u64) -> Self {
        Self {
            kind: BarKind::Io,
            size,
            prefetchable: false,
        }
    }

    /// The same BAR, prefetchable.
    pub const fn prefetchable(self) -> Self {
        Self {
            prefetchable: true,
            ..self
        }
    }

    /// The RO type bits of the (low) BAR dword.
    fn type_bits(&self) -> u32 {
        let prefetch = if self.prefetchable {
            PCI_BASE_ADDRESS_MEM_PREFETCH
        } else {
            0
        };
        match self.kind {
            BarKind::Memory32 => PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_32 | prefetch,
            BarKind::Memory64 => PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64 | prefetch,
            BarKind::Io => PCI_BASE_ADDRESS_SPACE_IO,
        }
    }

    /// The RW address bits: (low dword, high dword).
    fn address_masks(&self) -> (u32, u32) {
        let above_size = !(self.size.wrapping_sub(1));
        let low = above_size as u32;
        match self.kind {
            BarKind::Memory32 => (low & PCI_BASE_ADDRESS_MEM_MASK, 0),
            BarKind::Memory64 => (low & PCI_BASE_ADDRESS_MEM_MASK, (above_size >> 32) as u32),
            BarKind::Io => (low & PCI_BASE_ADDRESS_IO_MASK, 0),
        }
    }
}

/// A BAR as currently programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Its index (0..=5; for a 64-bit BAR the lower slot).
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Its size in bytes.
    pub size: u64,
    /// The address bits as programmed (both halves of a 64-bit BAR combined). Meaningless while
    /// software is sizing the BAR (it then reads the size mask).
    pub address: u64,
    /// `PCI_BASE_ADDRESS_MEM_PREFETCH`.
    pub prefetchable: bool,
}

/// The expansion ROM BAR as currently programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomBar {
    /// Its size in bytes.
    pub size: u32,
    /// The address bits as programmed (`PCI_ROM_ADDRESS_MASK`).
    pub address: u32,
    /// `PCI_ROM_ADDRESS_ENABLE`. The ROM decodes only if `PCI_COMMAND_MEMORY` is also set (PCI 3.0,
    /// 6.2.5.2: "the Memory Space bit in the Command register has precedence over the Expansion
    /// ROM enable bit").
    pub enabled: bool,
}

/// A BAR layout the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    /// Only BARs 0..=5 exist in a type-0 header.
    #[error("BAR {index} does not exist (a type-0 header has BARs 0-5)")]
    NoSuchBar {
        /// The index given.
        index: u8,
    },
    /// The slot is already declared, or is the upper half of a 64-bit BAR.
    #[error("BAR slot {index} is already in use")]
    SlotInUse {
        /// The index given.
        index: u8,
    },
    /// A 64-bit BAR in slot 5 has no slot for its upper half.
    #[error("a 64-bit BAR at index 5 has no slot for its upper half")]
    NoUpperSlot,
    /// Sizes are powers of two (6.2.5.1: "all address spaces used are a power of two in size").
    #[error("BAR {index}: size {size:#x} is not a power of two")]
    NotPowerOfTwo {
        /// The BAR.
        index: u8,
        /// The size given.
        size: u64,
    },
    /// The size is outside what the BAR kind can express.
    #[error("BAR {index}: size {size:#x} outside {min:#x}..={max:#x} for {kind:?}")]
    SizeOutOfRange {
        /// The BAR.
        index: u8,
        /// Its kind.
        kind: BarKind,
        /// The size given.
        size: u64,
        /// The smallest size of the kind.
        min: u64,
        /// The largest size of the kind.
        max: u64,
    },
    /// Only memory BARs can be prefetchable.
    #[error("BAR {index}: an I/O BAR cannot be prefetchable")]
    PrefetchableIo {
        /// The BAR.
        index: u8,
    },
    /// The ROM size is a power of two in 2 KiB..=16 MiB.
    #[error("expansion ROM size {size:#x} is not a power of two in 2 KiB..=16 MiB")]
    RomSize {
        /// The size given.
        size: u32,
    },
}

/// The smallest and largest size of each kind. Memory: bits 3:0 are type bits, so 16 bytes is the
/// least a memory BAR can decode; a 32-bit BAR's largest mask is bit 31 alone. I/O: bits 1:0 are
/// type/reserved, and 6.2.5.1: "Devices that map control functions into I/O Space must not
/// consume more than 256 bytes per I/O Base Address register."
fn size_range(kind: BarKind) -> (u64, u64) {
    match kind {
        BarKind::Memory32 => (16, 1 << 31),
        BarKind::Memory64 => (16, 1 << 63),
        BarKind::Io => (4, 256),
    }
}

/// The smallest expansion ROM: bits 10:1 are reserved, the address starts at bit 11.
const ROM_MIN: u32 = 1 << 11;
/// The largest expansion ROM (PCI 3.0, 6.2.5.2 allows up to 16 MB of ROM address space).
const ROM_MAX: u32 = 1 << 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Unused,
    Used(BarConfig),
    /// The upper dword of the 64-bit BAR in the previous slot.
    Upper,
}

/// The validated BAR layout of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bars {
    slots: [Slot; PCI_STD_NUM_BARS],
    rom: Option<u32>,
}

/// The config-space offset of BAR `index`.
fn bar_offset(index: usize) -> u16 {
    // index < 6: the product is at most 0x24.
    PCI_BASE_ADDRESS_0 + 4 * index as u16
}

impl Bars {
    /// Validates the declared BARs (in declaration order) and the ROM size.
    pub(crate) fn new(declared: &[(u8, BarConfig)], rom: Option<u32>) -> Result<Self, BarError> {
        let mut slots = [Slot::Unused; PCI_STD_NUM_BARS];
        for &(index, bar) in declared {
            let i = usize::from(index);
            if i >= PCI_STD_NUM_BARS {
                return Err(BarError::NoSuchBar { index });
            }
            if slots[i] != Slot::Unused {
                return Err(BarError::SlotInUse { index });
            }
            if !bar.size.is_power_of_two() {
                return Err(BarError::NotPowerOfTwo {
                    index,
                    size: bar.size,
                });
            }
            let (min, max) = size_range(bar.kind);
            if bar.size < min || bar.size > max {
                return Err(BarError::SizeOutOfRange {
                    index,
                    kind: bar.kind,
                    size: bar.size,
                    min,
                    max,
                });
            }
            if bar.kind == BarKind::Io && bar.prefetchable {
                return Err(BarError::PrefetchableIo { index });
            }
            if bar.kind == BarKind::Memory64 {
                match slots.get(i + 1) {
                    None => return Err(BarError::NoUpperSlot),
                    Some(Slot::Unused) => slots[i + 1] = Slot::Upper,
                    Some(_) => return Err(BarError::SlotInUse { index: index + 1 }),
                }
            }
            slots[i] = Slot::Used(bar);
        }
        match rom {
            Some(size) if !size.is_power_of_two() || !(ROM_MIN..=ROM_MAX).contains(&size) => {
                return Err(BarError::RomSize { size });
            }
            _ => {}
        }
        Ok(Self { slots, rom })
    }

    /// Writes the BARs' type bits and address masks; unused slots stay RO 0.
    pub(crate) fn install(&self, cs: &mut ConfigSpace) {
        for (i, slot) in self.slots.iter().enumerate() {
            let Slot::Used(bar) = slot else { continue };
            let (low_mask, high_mask) = bar.address_masks();
            cs.store_u32(bar_offset(i), bar.type_bits());
            cs.set_masks_u32(bar_offset(i), low_mask, 0);
            if bar.kind == BarKind::Memory64 {
                cs.store_u32(bar_offset(i + 1), 0);
                cs.set_masks_u32(bar_offset(i + 1), high_mask, 0);
            }
        }
        if let Some(size) = self.rom {
            // 6.2.5.2: bit 0 is the enable bit (RW), bits 10:1 reserved, 31:11 the address.
            let mask = (!(size - 1) & PCI_ROM_ADDRESS_MASK) | PCI_ROM_ADDRESS_ENABLE;
            cs.set_masks_u32(PCI_ROM_ADDRESS, mask, 0);
        }
    }

    /// The declared BAR at `index` (not the upper half of a 64-bit BAR).
    pub(crate) fn config(&self, index: u8) -> Option<BarConfig> {
        match self.slots.get(usize::from(index)) {
            Some(Slot::Used(bar)) => Some(*bar),
            _ => None,
        }
    }

    /// The BAR at `index` as programmed in `cs`.
    pub(crate) fn decode(&self, cs: &ConfigSpace, index: u8) -> Option<Bar> {
        let bar = self.config(index)?;
        let i = usize::from(index);
        let low = u64::from(cs.load_u32(bar_offset(i)));
        let address = match bar.kind {
            BarKind::Memory32 => low & u64::from(PCI_BASE_ADDRESS_MEM_MASK),
            BarKind::Memory64 => {
                let high = u64::from(cs.load_u32(bar_offset(i + 1)));
                (low & u64::from(PCI_BASE_ADDRESS_MEM_MASK)) | high << 32
            }
            BarKind::Io => low & u64::from(PCI_BASE_ADDRESS_IO_MASK),
        };
        Some(Bar {
            index,
            kind: bar.kind,
            size: bar.size,
            address,
            prefetchable: bar.prefetchable,
        })
    }

    /// Every declared BAR as programmed in `cs`, in index order.
    pub(crate) fn decode_all(&self, cs: &ConfigSpace) -> Vec<Bar> {
        (0..PCI_STD_NUM_BARS as u8)
            .filter_map(|i| self.decode(cs, i))
            .collect()
    }

    /// The expansion ROM BAR as programmed in `cs`.
    pub(crate) fn rom(&self, cs: &ConfigSpace) -> Option<RomBar> {
        let size = self.rom?;
        let value = cs.load_u32(PCI_ROM_ADDRESS);
        Some(RomBar {
            size,
            address: value & PCI_ROM_ADDRESS_MASK,
            enabled: value & PCI_ROM_ADDRESS_ENABLE != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(declared: &[(u8, BarConfig)], rom: Option<u32>) -> (Bars, ConfigSpace) {
        let bars = Bars::new(declared, rom).unwrap();
        let mut cs = ConfigSpace::new();
        bars.install(&mut cs);
        (bars, cs)
    }

    /// 6.2.5.1 sizing: write all-ones, read back, clear the type bits, invert, add one.
    fn size_by_probe(cs: &mut ConfigSpace, offset: u16, type_mask: u32) -> u32 {
        let saved = cs.read(u64::from(offset), 4).unwrap();
        cs.write(u64::from(offset), 4, 0xffff_ffff).unwrap();
        let probed = cs.read(u64::from(offset), 4).unwrap();
        cs.write(u64::from(offset), 4, saved).unwrap();
        (!(probed & !type_mask)).wrapping_add(1)
    }

    #[test]
    fn sizing_memory32() {
        let (bars, mut cs) = space(&[(0, BarConfig::memory32(0x1000))], None);
        cs.write(u64::from(PCI_BASE_ADDRESS_0), 4, 0xffff_ffff).unwrap();
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_0), 4), Ok(0xffff_f000));
        assert_eq!(size_by_probe(&mut cs, PCI_BASE_ADDRESS_0, 0xf), 0x1000);
        cs.write(u64::from(PCI_BASE_ADDRESS_0), 4, 0xfebf_1234).unwrap();
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_0), 4), Ok(0xfebf_1000));
        let bar = bars.decode(&cs, 0).unwrap();
        assert_eq!(
            (bar.kind, bar.size, bar.address, bar.prefetchable),
            (BarKind::Memory32, 0x1000, 0xfebf_1000, false)
        );
    }

    #[test]
    fn sizing_memory64_prefetchable_with_upper_half() {
        let (bars, mut cs) = space(&[(2, BarConfig::memory64(0x2_0000_0000).prefetchable())], None);
        assert_eq!(
            cs.read(u64::from(PCI_BASE_ADDRESS_2), 4),
            Ok(0x0c),
            "64-bit, prefetchable"
        );
        cs.write(u64::from(PCI_BASE_ADDRESS_2), 4, 0xffff_ffff).unwrap();
        cs.write(u64::from(PCI_BASE_ADDRESS_3), 4, 0xffff_ffff).unwrap();
        let low = cs.read(u64::from(PCI_BASE_ADDRESS_2), 4).unwrap();
        let high = cs.read(u64::from(PCI_BASE_ADDRESS_3), 4).unwrap();
        assert_eq!((low, high), (0x0000_000c, 0xffff_fffe));
        let mask = u64::from(high) << 32 | u64::from(low & !0xf);
        assert_eq!((!mask).wrapping_add(1), 0x2_0000_0000);
        cs.write(u64::from(PCI_BASE_ADDRESS_2), 4, 0).unwrap();
        cs.write(u64::from(PCI_BASE_ADDRESS_3), 4, 0x0000_0004).unwrap();
        let bar = bars.decode(&cs, 2).unwrap();
        assert_eq!(
            (bar.address, bar.prefetchable, bar.kind),
            (0x4_0000_0000, true, BarKind::Memory64)
        );
        assert_eq!(
            bars.decode(&cs, 3),
            None,
            "the upper half is not a BAR of its own"
        );
    }

    #[test]
    fn small_memory64_has_all_rw_upper_half() {
        let (bars, mut cs) = space(&[(0, BarConfig::memory64(0x4000))], None);
        cs.write(u64::from(PCI_BASE_ADDRESS_0), 4, 0xffff_ffff).unwrap();
        cs.write(u64::from(PCI_BASE_ADDRESS_1), 4, 0xffff_ffff).unwrap();
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_0), 4), Ok(0xffff_c004));
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_1), 4), Ok(0xffff_ffff));
        cs.write(u64::from(PCI_BASE_ADDRESS_0), 4, 0xe000_0000).unwrap();
        cs.write(u64::from(PCI_BASE_ADDRESS_1), 4, 0x0000_0001).unwrap();
        assert_eq!(bars.decode(&cs, 0).map(|b| b.address), Some(0x1_e000_0000));
    }

    #[test]
    fn sizing_io() {
        let (bars, mut cs) = space(&[(4, BarConfig::io(0x20))], None);
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_4), 4), Ok(0x1));
        cs.write(u64::from(PCI_BASE_ADDRESS_4), 4, 0xffff_ffff).unwrap();
        assert_eq!(cs.read(u64::from(PCI_BASE_ADDRESS_4), 4), Ok(0xffff_ffe1));
        assert_eq!(size_by_probe(&mut cs, PCI_BASE_ADDRESS_4, 0x3), 0x20);
        cs.write(u64::from(PCI_BASE_ADDRESS_4), 4, 0xc07f).unwrap();
        assert_eq!(
            bars.decode(&cs, 4).map(|b| (b.kind, b.address)),
            Some((BarKind::Io, 0xc060))
        );
    }

    #[test]
    fn unused_bars_and_absent_rom_read_zero() {
        let (bars, mut cs) = space(&[(1, BarConfig::memory32(16))], None);
        for off in [
            PCI_BASE_ADDRESS_0,
            PCI_BASE_ADDRESS_2,
            PCI_BASE_ADDRESS_5,
            PCI_ROM_ADDRESS,
        ] {
            cs.write(u64::from(off), 4, 0xffff_ffff).unwrap();
            assert_eq!(cs.read(u64::from(off), 4), Ok(0), "offset {off:#x}");
        }
        assert_eq!(bars.decode(&cs, 0), None);
        assert_eq!(bars.rom(&cs), None);
        cs.write(u64::from(PCI_BASE_ADDRESS_1), 4, 0xffff_ffff).unwrap();
        assert_eq!(
            cs.read(u64::from(PCI_BASE_ADDRESS_1), 4),
            Ok(0xffff_fff0),
            "16-byte BAR"
        );
    }

    #[test]
    fn rom_sizing_and_enable() {
        let (bars, mut cs) = space(&[], Some(0x1_0000));
        cs.write(u64::from(PCI_ROM_ADDRESS), 4, 0xffff_fffe).unwrap();
        assert_eq!(cs.read(u64::from(PCI_ROM_ADDRESS), 4), Ok(0xffff_0000));
        cs.write(u64::from(PCI_ROM_ADDRESS), 4, 0xfeb0_07ff).unwrap();
        assert_eq!(
            bars.rom(&cs),
            Some(RomBar {
                size: 0x1_0000,
                address: 0xfeb0_0000,
                enabled: true
            })
        );
    }

    #[test]
    fn layout_errors() {
        let err = |declared: &[(u8, BarConfig)]| Bars::new(declared, None).unwrap_err();
        assert_eq!(err(&[(6, BarConfig::io(4))]), BarError::NoSuchBar { index: 6 });
        assert_eq!(err(&[(5, BarConfig::memory64(4096))]), BarError::NoUpperSlot);
        assert_eq!(
            err(&[(0, BarConfig::memory64(4096)), (1, BarConfig::io(4))]),
            BarError::SlotInUse { index: 1 }
        );
        assert_eq!(
            err(&[(1, BarConfig::io(4)), (0, BarConfig::memory64(4096))]),
            BarError::SlotInUse { index: 1 }
        );
        assert_eq!(
            err(&[(0, BarConfig::memory32(3000))]),
            BarError::NotPowerOfTwo { index: 0, size: 3000 }
        );
        assert!(matches!(
            err(&[(0, BarConfig::memory32(8))]),
            BarError::SizeOutOfRange { min: 16, .. }
        ));
        assert!(matches!(
            err(&[(0, BarConfig::memory32(1 << 32))]),
            BarError::SizeOutOfRange { .. }
        ));
        assert!(matches!(
            err(&[(0, BarConfig::io(512))]),
            BarError::SizeOutOfRange { max: 256, .. }
        ));
        assert!(matches!(
            err(&[(0, BarConfig::memory32(0))]),
            BarError::NotPowerOfTwo { .. }
        ));
        assert_eq!(
            err(&[(0, BarConfig::io(4).prefetchable())]),
            BarError::PrefetchableIo { index: 0 }
        );
        assert_eq!(
            Bars::new(&[], Some(1024)).unwrap_err(),
            BarError::RomSize { size: 1024 }
        );
        assert_eq!(
            Bars::new(&[], Some(0x3000)).unwrap_err(),
            BarError::RomSize { size: 0x3000 }
        );
    }
}
