//! The Power Management capability (`PCI_CAP_ID_PM`, PCI Bus Power Management Interface Spec 1.2).
//!
//! Version 3 (PM 1.2), D0 and D3hot only (D1/D2 unsupported), no PME. `PCI_PM_CTRL_STATE_MASK` is
//! the only RW field; `PCI_PM_CTRL_NO_SOFT_RESET` is configurable and RO.

use crate::config::ConfigSpace;
use crate::regs::*;

/// How the PM capability is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmConfig {
    /// `PCI_PM_CTRL_NO_SOFT_RESET`. PM 1.2, 3.2.4: "When set ("1"), this bit indicates that
    /// devices transitioning from D3hot to D0 because of PowerState commands do not perform an
    /// internal reset. Configuration Context is preserved." When clear, a D3hot → D0 write resets
    /// the function (as [`PciFunction::reset`](crate::PciFunction::reset) does).
    pub no_soft_reset: bool,
}

impl Default for PmConfig {
    /// No_Soft_Reset set, as the PCI Express Base Spec recommends for functions.
    fn default() -> Self {
        Self { no_soft_reset: true }
    }
}

/// The power state in `PCI_PM_CTRL_STATE_MASK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Fully on.
    D0,
    /// Off with power applied. Per PM 1.2 a function in D3hot answers configuration accesses
    /// only and signals nothing but PME, so here memory and I/O decoding, bus mastering and
    /// interrupts are off while the command register keeps its value.
    D3Hot,
}

/// What a write of PMCSR asks of the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PmTransition {
    /// Nothing beyond the register change.
    None,
    /// D3hot → D0 with No_Soft_Reset clear: an internal reset.
    SoftReset,
}

/// A placed PM capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PmRegs {
    /// Offset of the capability header.
    pub(crate) off: u16,
    cfg: PmConfig,
}

impl PmRegs {
    /// Size of the structure.
    pub(crate) const SIZE: u16 = PCI_PM_SIZEOF;

    pub(crate) fn new(off: u16, cfg: PmConfig) -> Self {
        Self { off, cfg }
    }

    fn pmcsr(&self) -> u16 {
        self.off + PCI_PM_CTRL
    }

    /// Writes the defaults and masks (the header byte is written by the placement).
    pub(crate) fn install(&self, cs: &mut ConfigSpace) {
        // PM 1.2, 3.2.3: Version "A value of 011b indicates that this function complies with
        // revision 1.2"; D1/D2 support and the PME_Support field are 0.
        cs.store_u16(self.off + PCI_PM_PMC, 3 & PCI_PM_CAP_VER_MASK);
        let nsr = if self.cfg.no_soft_reset {
            PCI_PM_CTRL_NO_SOFT_RESET
        } else {
            0
        };
        cs.store_u16(self.pmcsr(), PCI_D0 | nsr);
        // PME_En / PME_Status: PM 1.2, 3.2.4 allows both hardwired to 0 when PME_Support is 0.
        cs.set_masks_u16(self.pmcsr(), PCI_PM_CTRL_STATE_MASK, 0);
    }

    /// The raw `PCI_PM_CTRL_STATE_MASK` bits.
    pub(crate) fn state_bits(&self, cs: &ConfigSpace) -> u16 {
        cs.load_u16(self.pmcsr()) & PCI_PM_CTRL_STATE_MASK
    }

    /// The current power state.
    pub(crate) fn power_state(&self, cs: &ConfigSpace) -> PowerState {
        // `after_write` keeps D1/D2 out of the register.
        if self.state_bits(cs) == PCI_D3HOT {
            PowerState::D3Hot
        } else {
            PowerState::D0
        }
    }

    /// Whether the driver access `[start, start + len)` touches PMCSR's state byte.
    pub(crate) fn touches(&self, start: usize, len: usize) -> bool {
        let at = usize::from(self.pmcsr());
        start <= at && at < start + len
    }

    /// Applies PM 1.2 rules after a driver write touched PMCSR; `old` is the state before.
    pub(crate) fn after_write(&self, cs: &mut ConfigSpace, old: u16) -> PmTransition {
        let new = self.state_bits(cs);
        if new == PCI_D1 || new == PCI_D2 {
            // PM 1.2, 3.2.4, PowerState: "If software attempts to write an unsupported, optional
            // state to this field, the write operation must complete normally on the bus; however,
            // the data is discarded and no state change occurs."
            cs.update_u16(self.pmcsr(), PCI_PM_CTRL_STATE_MASK, old);
            return PmTransition::None;
        }
        if old == PCI_D3HOT && new == PCI_D0 && !self.cfg.no_soft_reset {
            return PmTransition::SoftReset;
        }
        PmTransition::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(no_soft_reset: bool) -> (PmRegs, ConfigSpace) {
        let regs = PmRegs::new(0x40, PmConfig { no_soft_reset });
        let mut cs = ConfigSpace::new();
        regs.install(&mut cs);
        (regs, cs)
    }

    fn write_state(regs: &PmRegs, cs: &mut ConfigSpace, state: u16) -> PmTransition {
        let old = regs.state_bits(cs);
        cs.write(u64::from(regs.pmcsr()), 2, u32::from(state) | 0xfffc)
            .unwrap();
        regs.after_write(cs, old)
    }

    #[test]
    fn registers() {
        let (regs, cs) = placed(true);
        assert_eq!(cs.load_u16(0x42), 0x0003, "version 3, no D1/D2, no PME");
        assert_eq!(cs.load_u16(0x44), PCI_PM_CTRL_NO_SOFT_RESET);
        assert_eq!(regs.power_state(&cs), PowerState::D0);
    }

    #[test]
    fn d3hot_and_back_without_reset() {
        let (regs, mut cs) = placed(true);
        assert_eq!(write_state(&regs, &mut cs, PCI_D3HOT), PmTransition::None);
        assert_eq!(regs.power_state(&cs), PowerState::D3Hot);
        assert_eq!(
            cs.load_u16(0x44),
            PCI_PM_CTRL_NO_SOFT_RESET | PCI_D3HOT,
            "only the state bits are RW"
        );
        assert_eq!(write_state(&regs, &mut cs, PCI_D0), PmTransition::None);
        assert_eq!(regs.power_state(&cs), PowerState::D0);
    }

    #[test]
    fn unsupported_states_are_discarded() {
        let (regs, mut cs) = placed(true);
        write_state(&regs, &mut cs, PCI_D1);
        assert_eq!(regs.state_bits(&cs), PCI_D0);
        write_state(&regs, &mut cs, PCI_D3HOT);
        write_state(&regs, &mut cs, PCI_D2);
        assert_eq!(regs.state_bits(&cs), PCI_D3HOT);
    }

    #[test]
    fn soft_reset_without_no_soft_reset() {
        let (regs, mut cs) = placed(false);
        assert_eq!(cs.load_u16(0x44), 0);
        assert_eq!(write_state(&regs, &mut cs, PCI_D3HOT), PmTransition::None);
        assert_eq!(write_state(&regs, &mut cs, PCI_D0), PmTransition::SoftReset);
    }
}
