//! The type-0 header (PCI Local Bus Spec 3.0, 6.2): identification, command, status and the
//! scratch registers. BARs are in [`crate::bar`], the capability list in [`crate::cap`].

use crate::config::ConfigSpace;
use crate::regs::*;
use bitflags::bitflags;

/// The class code register (`PCI_CLASS_PROG` .. `PCI_CLASS_DEVICE + 1`): three bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassCode {
    /// Base class (byte 0x0b), e.g. 0x01 mass storage, 0x02 network.
    pub base: u8,
    /// Sub-class (byte 0x0a).
    pub sub: u8,
    /// Register-level programming interface (byte 0x09).
    pub prog_if: u8,
}

/// The INTx pin a function uses (`PCI_INTERRUPT_PIN`: 1 = INTA# .. 4 = INTD#).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptPin {
    /// INTA#, the pin of single-function devices.
    IntA = 1,
    /// INTB#.
    IntB = 2,
    /// INTC#.
    IntC = 3,
    /// INTD#.
    IntD = 4,
}

/// The identity and static fields of a type-0 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderConfig {
    /// `PCI_VENDOR_ID`.
    pub vendor_id: u16,
    /// `PCI_DEVICE_ID`.
    pub device_id: u16,
    /// `PCI_REVISION_ID`.
    pub revision_id: u8,
    /// The class code.
    pub class_code: ClassCode,
    /// `PCI_SUBSYSTEM_VENDOR_ID`.
    pub subsystem_vendor_id: u16,
    /// `PCI_SUBSYSTEM_ID`.
    pub subsystem_id: u16,
    /// Sets `PCI_HEADER_TYPE_MFD` in `PCI_HEADER_TYPE`.
    pub multifunction: bool,
    /// `PCI_INTERRUPT_PIN`; `None` reads 0 (the function has no INTx).
    pub interrupt_pin: Option<InterruptPin>,
}

bitflags! {
    /// The `PCI_COMMAND` register.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Command: u16 {
        /// `PCI_COMMAND_IO`.
        const IO = PCI_COMMAND_IO;
        /// `PCI_COMMAND_MEMORY`.
        const MEMORY = PCI_COMMAND_MEMORY;
        /// `PCI_COMMAND_MASTER`.
        const MASTER = PCI_COMMAND_MASTER;
        /// `PCI_COMMAND_PARITY`.
        const PARITY = PCI_COMMAND_PARITY;
        /// `PCI_COMMAND_SERR`.
        const SERR = PCI_COMMAND_SERR;
        /// `PCI_COMMAND_INTX_DISABLE`.
        const INTX_DISABLE = PCI_COMMAND_INTX_DISABLE;
    }
}

bitflags! {
    /// The `PCI_STATUS` register.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Status: u16 {
        /// `PCI_STATUS_INTERRUPT`.
        const INTERRUPT = PCI_STATUS_INTERRUPT;
        /// `PCI_STATUS_CAP_LIST`.
        const CAP_LIST = PCI_STATUS_CAP_LIST;
        /// `PCI_STATUS_PARITY` (Master Data Parity Error).
        const PARITY = PCI_STATUS_PARITY;
        /// `PCI_STATUS_SIG_TARGET_ABORT`.
        const SIG_TARGET_ABORT = PCI_STATUS_SIG_TARGET_ABORT;
        /// `PCI_STATUS_REC_TARGET_ABORT`.
        const REC_TARGET_ABORT = PCI_STATUS_REC_TARGET_ABORT;
        /// `PCI_STATUS_REC_MASTER_ABORT`.
        const REC_MASTER_ABORT = PCI_STATUS_REC_MASTER_ABORT;
        /// `PCI_STATUS_SIG_SYSTEM_ERROR`.
        const SIG_SYSTEM_ERROR = PCI_STATUS_SIG_SYSTEM_ERROR;
        /// `PCI_STATUS_DETECTED_PARITY`.
        const DETECTED_PARITY = PCI_STATUS_DETECTED_PARITY;
    }
}

impl Status {
    /// The error bits, all RW1C: PCI 3.0, 6.2.3: "Reads to this register behave normally. Writes
    /// are slightly different in that bits can be reset, but not set. A one bit is reset (if it
    /// is not already zero) whenever the register is written, and the write data in the
    /// corresponding bit location is a 1."
    pub const ERRORS: Status = Status::PARITY
        .union(Status::SIG_TARGET_ABORT)
        .union(Status::REC_TARGET_ABORT)
        .union(Status::REC_MASTER_ABORT)
        .union(Status::SIG_SYSTEM_ERROR)
        .union(Status::DETECTED_PARITY);
}

/// The RW bits of `PCI_COMMAND`. All others (special cycles, memory write and invalidate, VGA
/// palette snoop, stepping, fast back-to-back) are optional and hardwired to 0 here: PCI 3.0,
/// 6.2.2 lets a function that does not implement a feature hardwire its bit.
pub(crate) const COMMAND_RW: u16 = PCI_COMMAND_IO
    | PCI_COMMAND_MEMORY
    | PCI_COMMAND_MASTER
    | PCI_COMMAND_PARITY
    | PCI_COMMAND_SERR
    | PCI_COMMAND_INTX_DISABLE;

/// Writes the header's defaults and masks. `pcie` hardwires the latency timer: PCI Express Base
/// Spec, Latency Timer Register: "The Latency Timer does not apply to PCI Express. This register
/// must be hardwired to 00h."
pub(crate) fn install(cs: &mut ConfigSpace, cfg: &HeaderConfig, pcie: bool) {
    cs.store_u16(PCI_VENDOR_ID, cfg.vendor_id);
    cs.store_u16(PCI_DEVICE_ID, cfg.device_id);
    // PCI 3.0, 6.2.2: "When a 0 is written to this register, the device is logically
    // disconnected from the PCI bus for all accesses except configuration accesses." 0 is also
    // the reset value.
    cs.store_u16(PCI_COMMAND, 0);
    cs.set_masks_u16(PCI_COMMAND, COMMAND_RW, 0);
    cs.store_u16(PCI_STATUS, 0);
    cs.set_masks_u16(PCI_STATUS, 0, Status::ERRORS.bits());
    cs.store_u8(PCI_REVISION_ID, cfg.revision_id);
    cs.store_u8(PCI_CLASS_PROG, cfg.class_code.prog_if);
    cs.store_u8(PCI_CLASS_DEVICE, cfg.class_code.sub);
    cs.store_u8(PCI_CLASS_DEVICE + 1, cfg.class_code.base);
    // PCI 3.0, 6.2.4: Cache Line Size is a "read/write register"; this function does not use it.
    cs.set_masks_u8(PCI_CACHE_LINE_SIZE, 0xff, 0);
    if !pcie {
        cs.set_masks_u8(PCI_LATENCY_TIMER, 0xff, 0);
    }
    let mfd = if cfg.multifunction { PCI_HEADER_TYPE_MFD } else { 0 };
    cs.store_u8(PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL | mfd);
    cs.store_u16(PCI_SUBSYSTEM_VENDOR_ID, cfg.subsystem_vendor_id);
    cs.store_u16(PCI_SUBSYSTEM_ID, cfg.subsystem_id);
    // PCI 3.0, 6.2.4: Interrupt Line "is read/write and must be implemented by any device (or
    // device function) that uses an interrupt pin"; it only records routing for software, the
    // device does not use it. RW here whether or not there is a pin (as QEMU does).
    cs.set_masks_u8(PCI_INTERRUPT_LINE, 0xff, 0);
    cs.store_u8(PCI_INTERRUPT_PIN, cfg.interrupt_pin.map_or(0, |pin| pin as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pcie: bool) -> ConfigSpace {
        let mut cs = ConfigSpace::new();
        let cfg = HeaderConfig {
            vendor_id: 0x1af4,
            device_id: 0x1041,
            revision_id: 0x01,
            class_code: ClassCode {
                base: 0x02,
                sub: 0x00,
                prog_if: 0x00,
            },
            subsystem_vendor_id: 0x1af4,
            subsystem_id: 0x1100,
            multifunction: true,
            interrupt_pin: Some(InterruptPin::IntA),
        };
        install(&mut cs, &cfg, pcie);
        cs
    }

    #[test]
    fn identification_is_read_only() {
        let mut cs = header(false);
        assert_eq!(cs.read(0, 4), Ok(0x1041_1af4));
        assert_eq!(cs.read(u64::from(PCI_CLASS_REVISION), 4), Ok(0x0200_0001));
        assert_eq!(cs.read(u64::from(PCI_HEADER_TYPE), 1), Ok(0x80));
        assert_eq!(cs.read(u64::from(PCI_SUBSYSTEM_VENDOR_ID), 4), Ok(0x1100_1af4));
        for off in [
            PCI_VENDOR_ID,
            PCI_CLASS_REVISION,
            PCI_HEADER_TYPE,
            PCI_SUBSYSTEM_VENDOR_ID,
        ] {
            let before = cs.read(u64::from(off), 2).unwrap();
            cs.write(u64::from(off), 2, 0xffff).unwrap();
            assert_eq!(cs.read(u64::from(off), 2), Ok(before));
        }
    }

    #[test]
    fn command_rw_bits_only() {
        let mut cs = header(false);
        cs.write(u64::from(PCI_COMMAND), 2, 0xffff).unwrap();
        assert_eq!(cs.load_u16(PCI_COMMAND), 0x0547);
        assert_eq!(Command::from_bits_truncate(0x0547), Command::all());
    }

    #[test]
    fn status_errors_are_w1c_and_interrupt_is_ro() {
        let mut cs = header(false);
        cs.store_u16(PCI_STATUS, Status::ERRORS.bits() | PCI_STATUS_INTERRUPT);
        cs.write(
            u64::from(PCI_STATUS),
            2,
            u32::from(PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_INTERRUPT),
        )
        .unwrap();
        let expect = (Status::ERRORS.bits() & !PCI_STATUS_SIG_TARGET_ABORT) | PCI_STATUS_INTERRUPT;
        assert_eq!(cs.load_u16(PCI_STATUS), expect);
        cs.write(u64::from(PCI_STATUS), 2, 0xffff).unwrap();
        assert_eq!(cs.load_u16(PCI_STATUS), PCI_STATUS_INTERRUPT);
    }

    #[test]
    fn scratch_registers() {
        let mut cs = header(false);
        cs.write(u64::from(PCI_CACHE_LINE_SIZE), 2, 0x4010).unwrap();
        assert_eq!(cs.load_u16(PCI_CACHE_LINE_SIZE), 0x4010);
        cs.write(u64::from(PCI_INTERRUPT_LINE), 4, 0xffff_ff0b).unwrap();
        assert_eq!(
            cs.load_u32(PCI_INTERRUPT_LINE),
            0x0000_010b,
            "pin, MIN_GNT, MAX_LAT are RO"
        );
        let mut express = header(true);
        express.write(u64::from(PCI_CACHE_LINE_SIZE), 2, 0x4010).unwrap();
        assert_eq!(
            express.load_u16(PCI_CACHE_LINE_SIZE),
            0x0010,
            "PCIe: latency timer reads 0"
        );
    }

    #[test]
    fn reserved_header_bytes_read_zero() {
        let mut cs = header(false);
        for off in [PCI_BIST, PCI_CARDBUS_CIS, 0x35, 0x38] {
            cs.write(u64::from(off), 1, 0xff).unwrap();
            assert_eq!(cs.read(u64::from(off), 1), Ok(0), "offset {off:#x}");
        }
    }
}
