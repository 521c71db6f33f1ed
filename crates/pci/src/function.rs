//! [`PciFunction`]: one PCI function — its config space with the side effects of writes, its
//! MSI-X table and PBA, and its interrupt state — shared by the device model and the VFIO layer.
//!
//! Locking: the state sits behind one `parking_lot::Mutex`. Operations that can interrupt
//! (config and MSI-X table writes, INTx and message requests, reset) first take a re-entrant
//! delivery lock, decide under the state lock what the sink must hear, release the state lock and
//! only then call the sink, in order. See [`InterruptSink`] for what a sink may do.

use crate::bar::{Bar, Bars, RomBar};
use crate::builder::PciFunctionBuilder;
use crate::cap::msi::MsiState;
use crate::cap::msix::{Hit, MsixLocation, MsixState};
use crate::cap::pm::{PmTransition, PowerState};
use crate::cap::{self, CapLayout, CapabilityEntry};
use crate::config::{ConfigError, ConfigSpace};
use crate::header::{Command, HeaderConfig, InterruptPin, Status};
use crate::interrupt::{Event, InterruptSink};
use crate::regs::*;
use crate::table::{MsixEntry, MsixTable, TableError};
use parking_lot::{Mutex, ReentrantMutex};
use std::fmt;
use std::sync::Arc;

/// What the builder decided: fixed for the function's life.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) header: HeaderConfig,
    pub(crate) bars: Bars,
    pub(crate) caps: CapLayout,
}

/// The mutable state.
pub(crate) struct State {
    pub(crate) cs: ConfigSpace,
    pub(crate) table: Option<MsixTable>,
    /// The INTx level last decided (and told to the sink, if any).
    pub(crate) intx_line: bool,
    pub(crate) sink: Option<Arc<dyn InterruptSink>>,
}

/// A PCI function: type-0 header, BARs, capabilities, MSI-X table and interrupt state.
///
/// Built by [`PciFunction::builder`]; shared as `Arc<PciFunction>` between the device model (BAR
/// handlers, [`assert_intx`](Self::assert_intx), [`notify_msi`](Self::notify_msi),
/// [`notify_msix`](Self::notify_msix)) and the VFIO layer ([`config_read`](Self::config_read),
/// [`config_write`](Self::config_write), [`reset`](Self::reset), the sink).
pub struct PciFunction {
    pub(crate) layout: Layout,
    /// The config space after reset.
    defaults: ConfigSpace,
    pub(crate) state: Mutex<State>,
    pub(crate) delivery: ReentrantMutex<()>,
}

impl fmt::Debug for PciFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PciFunction")
            .field(
                "vendor_id",
                &format_args!("{:#06x}", self.layout.header.vendor_id),
            )
            .field(
                "device_id",
                &format_args!("{:#06x}", self.layout.header.device_id),
            )
            .field("caps", &self.layout.caps)
            .finish_non_exhaustive()
    }
}

impl PciFunction {
    /// Starts declaring a function with `header`.
    pub fn builder(header: HeaderConfig) -> PciFunctionBuilder {
        PciFunctionBuilder::new(header)
    }

    pub(crate) fn from_parts(layout: Layout, defaults: ConfigSpace) -> Self {
        let table = layout.caps.msix.map(|m| MsixTable::new(m.table_size()));
        let state = State {
            cs: defaults.clone(),
            table,
            intx_line: false,
            sink: None,
        };
        Self {
            layout,
            defaults,
            state: Mutex::new(state),
            delivery: ReentrantMutex::new(()),
        }
    }

    /// Runs `f` on the state, re-evaluates interrupts, then tells the sink (without the state
    /// lock) what `f` and the re-evaluation decided.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut State, &mut Vec<Event>) -> R) -> R {
        let _order = self.delivery.lock();
        let mut events = Vec::new();
        let (result, sink) = {
            let mut st = self.state.lock();
            let result = f(&mut st, &mut events);
            self.reevaluate(&mut st, &mut events);
            let sink = if events.is_empty() { None } else { st.sink.clone() };
            (result, sink)
        };
        if let Some(sink) = sink {
            for event in events {
                event.deliver(sink.as_ref());
            }
        }
        result
    }

    // --- Config space ------------------------------------------------------------------------

    /// A driver read of config space: 1, 2 or 4 bytes, naturally aligned, below 4096.
    pub fn config_read(&self, offset: u64, len: usize) -> Result<u32, ConfigError> {
        self.state.lock().cs.read(offset, len)
    }

    /// A driver write of config space (the low `len` bytes of `value`), with its side effects:
    /// MSI Multiple Message Enable is clamped, unsupported power states are discarded, D3hot →
    /// D0 without No_Soft_Reset and `PCI_EXP_DEVCTL_BCR_FLR` reset the function, and interrupt
    /// state is re-evaluated (INTx disable, MSI/MSI-X enables and masks, bus mastering).
    pub fn config_write(&self, offset: u64, len: usize, value: u32) -> Result<(), ConfigError> {
        let start = ConfigSpace::check(offset, len)?;
        self.mutate(|st, _| {
            let caps = self.layout.caps;
            let old_pm = caps.pm.map(|pm| pm.state_bits(&st.cs));
            st.cs.write(offset, len, value)?;
            let mut reset = false;
            if let Some(msi) = caps.msi.filter(|m| m.touches_flags(start, len)) {
                msi.clamp_mme(&mut st.cs);
            }
            if let (Some(pm), Some(old)) = (caps.pm, old_pm) {
                if pm.touches(start, len) && pm.after_write(&mut st.cs, old) == PmTransition::SoftReset {
                    reset = true;
                }
            }
            if caps.pcie.is_some_and(|p| p.flr_requested(start, len, value)) {
                reset = true;
            }
            if reset {
                self.reset_locked(st);
            }
            Ok(())
        })
    }

    /// A copy of the whole config space with its masks, as it is now.
    pub fn config_snapshot(&self) -> ConfigSpace {
        self.state.lock().cs.clone()
    }

    /// The config space after reset.
    pub fn default_config(&self) -> &ConfigSpace {
        &self.defaults
    }

    /// The header the function was built with.
    pub fn header(&self) -> &HeaderConfig {
        &self.layout.header
    }

    /// `PCI_COMMAND`.
    pub fn command(&self) -> Command {
        Command::from_bits_truncate(self.state.lock().cs.load_u16(PCI_COMMAND))
    }

    /// `PCI_STATUS`.
    pub fn status(&self) -> Status {
        Status::from_bits_truncate(self.state.lock().cs.load_u16(PCI_STATUS))
    }

    /// Sets PCI_STATUS error bits (only those in [`Status::ERRORS`]), as the device does when it
    /// signals or detects an error; software clears them by writing 1s.
    pub fn set_status_errors(&self, errors: Status) {
        let bits = (errors & Status::ERRORS).bits();
        let mut st = self.state.lock();
        let status = st.cs.load_u16(PCI_STATUS);
        st.cs.store_u16(PCI_STATUS, status | bits);
    }

    /// Sets PCI Express Device Status error bits (`PCI_EXP_DEVSTA_CED`, `_NFED`, `_FED`, `_URD`;
    /// others ignored). Returns false when the function has no PCI Express capability.
    pub fn set_pcie_device_errors(&self, errors: u16) -> bool {
        let Some(pcie) = self.layout.caps.pcie else {
            return false;
        };
        let reg = pcie.off + PCI_EXP_DEVSTA;
        let mut st = self.state.lock();
        let bits = errors & st.cs.w1c_u16(reg);
        let old = st.cs.load_u16(reg);
        st.cs.store_u16(reg, old | bits);
        true
    }

    fn power_state_of(&self, cs: &ConfigSpace) -> PowerState {
        self.layout
            .caps
            .pm
            .map_or(PowerState::D0, |pm| pm.power_state(cs))
    }

    /// The power state (D0 without a PM capability).
    pub fn power_state(&self) -> PowerState {
        self.power_state_of(&self.state.lock().cs)
    }

    fn command_bit_in_d0(&self, bit: u16) -> bool {
        let st = self.state.lock();
        st.cs.load_u16(PCI_COMMAND) & bit != 0 && self.power_state_of(&st.cs) == PowerState::D0
    }

    /// Whether memory BARs (and the MSI-X table) decode: `PCI_COMMAND_MEMORY` set and D0.
    pub fn decodes_memory(&self) -> bool {
        self.command_bit_in_d0(PCI_COMMAND_MEMORY)
    }

    /// Whether I/O BARs decode: `PCI_COMMAND_IO` set and D0.
    pub fn decodes_io(&self) -> bool {
        self.command_bit_in_d0(PCI_COMMAND_IO)
    }

    /// Whether the function may master the bus (DMA, MSI/MSI-X): `PCI_COMMAND_MASTER` set and D0.
    pub fn bus_master(&self) -> bool {
        self.command_bit_in_d0(PCI_COMMAND_MASTER)
    }

    // --- BARs and capabilities ---------------------------------------------------------------

    /// BAR `index` as programmed; `None` if unused or the upper half of a 64-bit BAR.
    pub fn bar(&self, index: u8) -> Option<Bar> {
        self.layout.bars.decode(&self.state.lock().cs, index)
    }

    /// Every BAR as programmed, in index order.
    pub fn bars(&self) -> Vec<Bar> {
        self.layout.bars.decode_all(&self.state.lock().cs)
    }

    /// The expansion ROM BAR as programmed, if the function has one.
    pub fn rom(&self) -> Option<RomBar> {
        self.layout.bars.rom(&self.state.lock().cs)
    }

    /// The conventional capability list, walked from `PCI_CAPABILITY_LIST`.
    pub fn capabilities(&self) -> Vec<CapabilityEntry> {
        cap::capabilities(&self.state.lock().cs)
    }

    /// The offset of the first capability with `id`.
    pub fn find_capability(&self, id: u8) -> Option<u8> {
        self.capabilities()
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| e.offset)
    }

    /// The INTx pin, if the function has one.
    pub fn interrupt_pin(&self) -> Option<InterruptPin> {
        self.layout.header.interrupt_pin
    }

    /// The MSI registers, if the function has MSI.
    pub fn msi_state(&self) -> Option<MsiState> {
        let msi = self.layout.caps.msi?;
        Some(msi.state(&self.state.lock().cs))
    }

    /// The MSI-X control bits, if the function has MSI-X.
    pub fn msix_state(&self) -> Option<MsixState> {
        let msix = self.layout.caps.msix?;
        Some(msix.state(&self.state.lock().cs))
    }

    /// Where the MSI-X table is (BAR, offset, length).
    pub fn msix_table_location(&self) -> Option<MsixLocation> {
        self.layout.caps.msix.map(|m| m.table_location())
    }

    /// Where the MSI-X PBA is (BAR, offset, length).
    pub fn msix_pba_location(&self) -> Option<MsixLocation> {
        self.layout.caps.msix.map(|m| m.pba_location())
    }

    /// MSI-X table entry `vector` as programmed.
    pub fn msix_entry(&self, vector: u16) -> Option<MsixEntry> {
        self.state.lock().table.as_ref()?.entry(vector)
    }

    /// Whether MSI-X vector `vector`'s pending bit is set.
    pub fn msix_pending(&self, vector: u16) -> Option<bool> {
        let st = self.state.lock();
        let table = st.table.as_ref()?;
        (usize::from(vector) < table.len()).then(|| table.pending(vector))
    }

    // --- MSI-X table and PBA (device memory) -------------------------------------------------

    /// A read of the MSI-X table at `offset` from its start: 4 or 8 bytes, naturally aligned.
    pub fn msix_table_read(&self, offset: u64, len: usize) -> Result<u64, TableError> {
        self.state
            .lock()
            .table
            .as_ref()
            .ok_or(TableError::NoMsix)?
            .read(offset, len)
    }

    /// A write of the MSI-X table at `offset` from its start. Unmasking an entry whose pending
    /// bit is set sends its message (PCI Express Base Spec, per-vector masking: "When software
    /// unmasks a vector whose associated Pending bit is Set, the Function must schedule sending
    /// the associated message, and Clear the Pending bit as soon as the message has been sent").
    pub fn msix_table_write(&self, offset: u64, len: usize, value: u64) -> Result<(), TableError> {
        self.mutate(|st, _| {
            st.table
                .as_mut()
                .ok_or(TableError::NoMsix)?
                .write(offset, len, value)
        })
    }

    /// A read of the MSI-X PBA at `offset` from its start: 4 or 8 bytes, naturally aligned.
    pub fn msix_pba_read(&self, offset: u64, len: usize) -> Result<u64, TableError> {
        self.state
            .lock()
            .table
            .as_ref()
            .ok_or(TableError::NoMsix)?
            .pba_read(offset, len)
    }

    /// A write of the MSI-X PBA: checked, then discarded (the PBA is read-only).
    pub fn msix_pba_write(&self, offset: u64, len: usize) -> Result<(), TableError> {
        self.state
            .lock()
            .table
            .as_ref()
            .ok_or(TableError::NoMsix)?
            .pba_write(offset, len)
    }

    fn bar_hit(&self, bar: u8, offset: u64, len: usize) -> Result<Option<(bool, u64)>, TableError> {
        let Some(msix) = self.layout.caps.msix else {
            return Ok(None);
        };
        let straddles = Err(TableError::OutOfRange { offset, len });
        for (is_table, loc) in [(true, msix.table_location()), (false, msix.pba_location())] {
            match loc.locate(bar, offset, len as u64) {
                Hit::Inside(rel) => return Ok(Some((is_table, rel))),
                Hit::Straddles => return straddles,
                Hit::Outside => {}
            }
        }
        Ok(None)
    }

    /// For a BAR handler: a read of BAR `bar` at `offset`. `Ok(None)` when the access is not in
    /// the MSI-X table or PBA (the device handles it); an error when it is but is malformed.
    pub fn msix_bar_read(&self, bar: u8, offset: u64, len: usize) -> Result<Option<u64>, TableError> {
        match self.bar_hit(bar, offset, len)? {
            Some((true, rel)) => self.msix_table_read(rel, len).map(Some),
            Some((false, rel)) => self.msix_pba_read(rel, len).map(Some),
            None => Ok(None),
        }
    }

    /// For a BAR handler: a write of BAR `bar` at `offset`. `Ok(false)` when the access is not in
    /// the MSI-X table or PBA (the device handles it), `Ok(true)` when the function took it.
    pub fn msix_bar_write(&self, bar: u8, offset: u64, len: usize, value: u64) -> Result<bool, TableError> {
        match self.bar_hit(bar, offset, len)? {
            Some((true, rel)) => self.msix_table_write(rel, len, value).map(|()| true),
            Some((false, rel)) => self.msix_pba_write(rel, len).map(|()| true),
            None => Ok(false),
        }
    }

    // --- Reset -------------------------------------------------------------------------------

    /// Function Level Reset: the config space returns to its built defaults (command 0, BARs
    /// unprogrammed, MSI/MSI-X disabled, D0), every MSI-X entry is masked and the PBA cleared, and
    /// INTx is deasserted (the sink hears the deassertion if the line was up). The PCI Express
    /// link settings an FLR keeps (see [`cap::pcie`]) are kept.
    pub fn reset(&self) {
        self.mutate(|st, _| self.reset_locked(st));
    }

    fn reset_locked(&self, st: &mut State) {
        let pcie = self.layout.caps.pcie;
        let saved = pcie.map(|p| p.save_for_flr(&st.cs));
        st.cs.copy_from(&self.defaults);
        if let (Some(p), Some(saved)) = (pcie, saved) {
            p.restore_after_flr(&mut st.cs, saved);
        }
        if let Some(table) = st.table.as_mut() {
            table.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarConfig;
    use crate::cap::msix::MsixConfig;
    use crate::cap::pcie::PcieConfig;
    use crate::cap::pm::PmConfig;

    fn function() -> PciFunction {
        PciFunction::builder(HeaderConfig {
            vendor_id: 0x8086,
            device_id: 0x1234,
            ..HeaderConfig::default()
        })
        .bar(0, BarConfig::memory64(0x4000))
        .power_management(PmConfig::default())
        .msix(MsixConfig {
            table_size: 8,
            table_bar: 0,
            table_offset: 0x2000,
            pba_bar: 0,
            pba_offset: 0x3000,
        })
        .pcie(PcieConfig::default())
        .build()
        .unwrap()
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<PciFunction>();
    }

    #[test]
    fn decoding_follows_command_and_power_state() {
        let f = function();
        assert!(!f.decodes_memory());
        f.config_write(
            u64::from(PCI_COMMAND),
            2,
            u32::from(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
        )
        .unwrap();
        assert!(f.decodes_memory() && f.bus_master() && !f.decodes_io());
        assert_eq!(f.command(), Command::MEMORY | Command::MASTER);
        f.config_write(0x44, 2, u32::from(PCI_D3HOT)).unwrap();
        assert_eq!(f.power_state(), PowerState::D3Hot);
        assert!(
            !f.decodes_memory() && !f.bus_master(),
            "D3hot: no decoding, no mastering"
        );
        assert_eq!(
            f.command(),
            Command::MEMORY | Command::MASTER,
            "the command register keeps its value"
        );
        f.config_write(0x44, 2, u32::from(PCI_D0)).unwrap();
        assert!(f.decodes_memory());
    }

    #[test]
    fn msix_through_the_bar() {
        let f = function();
        assert_eq!(f.msix_bar_read(0, 0x1000, 4), Ok(None));
        assert_eq!(f.msix_bar_read(2, 0x2000, 4), Ok(None));
        assert_eq!(f.msix_bar_read(0, 0x200c, 4), Ok(Some(1)), "entry 0 masked");
        assert_eq!(f.msix_bar_write(0, 0x2010, 8, 0xfee0_0000), Ok(true));
        assert_eq!(f.msix_entry(1).map(|e| e.address), Some(0xfee0_0000));
        assert_eq!(
            f.msix_bar_read(0, 0x1ffc, 8),
            Err(TableError::OutOfRange {
                offset: 0x1ffc,
                len: 8
            })
        );
        assert_eq!(f.msix_bar_read(0, 0x3000, 8), Ok(Some(0)));
        assert_eq!(f.msix_bar_write(0, 0x3000, 8, u64::MAX), Ok(true));
        assert_eq!(f.msix_pba_read(0, 8), Ok(0), "PBA writes are discarded");
        assert_eq!(
            f.msix_bar_read(0, 0x3008, 4),
            Ok(None),
            "8 entries: one PBA qword"
        );
    }

    #[test]
    fn status_and_devsta_errors_set_device_side() {
        let f = function();
        f.set_status_errors(Status::all());
        assert_eq!(
            f.status(),
            Status::ERRORS | Status::CAP_LIST,
            "INTERRUPT is not an error bit"
        );
        assert!(f.set_pcie_device_errors(0xffff));
        let pcie = f.find_capability(PCI_CAP_ID_EXP).unwrap();
        let devsta = f
            .config_read(u64::from(pcie) + u64::from(PCI_EXP_DEVSTA), 2)
            .unwrap();
        assert_eq!(devsta, 0x000f);
    }
}
