//! The interrupt side of [`PciFunction`]: INTx, MSI and MSI-X requests from the device model,
//! and the re-evaluation every state change ends with.
//!
//! Rules, in the order they are applied:
//!
//! * **INTx.** The function's interrupt state is `PCI_STATUS_INTERRUPT`, set and cleared by
//!   [`PciFunction::assert_intx`] / [`PciFunction::deassert_intx`]. PCI 3.0, 6.2.3: "Only when the
//!   Interrupt Disable bit in the command register is a 0 and this Interrupt Status bit is a 1,
//!   will the device's/function's INTx# signal be asserted. Setting the Interrupt Disable bit to a
//!   1 has no effect on the state of this bit." The line is also down while MSI or MSI-X is
//!   enabled (6.8: MSI, MSI-X and INTx are mutually exclusive) and outside D0. The sink hears
//!   every change of the line, whatever caused it (a request, a command write, an MSI enable,
//!   a reset).
//! * **MSI.** Sent when MSI is enabled, the vector is below the enabled count, its mask bit is
//!   clear, bus mastering is on and the function is in D0. A masked vector — or, with per-vector
//!   masking, any vector blocked by bus mastering or power state — sets its pending bit instead,
//!   and is sent (and the bit cleared) as soon as nothing blocks it. Without a pending register
//!   a blocked request is dropped.
//! * **MSI-X.** Sent when MSI-X is enabled, the function mask is clear, the entry is unmasked, bus
//!   mastering is on and the function is in D0; otherwise the PBA bit is set, and the message is
//!   sent (and the bit cleared) once nothing blocks it — on unmasking the entry, clearing the
//!   function mask, enabling MSI-X or bus mastering, or returning to D0.

use crate::cap::pm::PowerState;
use crate::config::ConfigSpace;
use crate::function::{PciFunction, State};
use crate::interrupt::{
    Blocked, Event, InterruptError, InterruptSink, MessageKind, MessageOutcome, MsiMessage,
};
use crate::regs::*;
use std::sync::Arc;

impl PciFunction {
    /// Sends interrupts to `sink` from now on. If the INTx line is up, the new sink hears
    /// `intx(true)` at once.
    pub fn set_sink(&self, sink: Arc<dyn InterruptSink>) {
        self.mutate(|st, events| {
            st.sink = Some(sink);
            if st.intx_line {
                events.push(Event::Intx(true));
            }
        });
    }

    /// Stops sending interrupts anywhere (the state keeps evolving). Waits for deliveries in
    /// flight on other threads, so once this returns the old sink hears nothing more.
    pub fn clear_sink(&self) {
        let _order = self.delivery.lock();
        self.state.lock().sink = None;
    }

    /// The device raises its interrupt: sets `PCI_STATUS_INTERRUPT`.
    pub fn assert_intx(&self) -> Result<(), InterruptError> {
        self.set_intx(true)
    }

    /// The device withdraws its interrupt: clears `PCI_STATUS_INTERRUPT`.
    pub fn deassert_intx(&self) -> Result<(), InterruptError> {
        self.set_intx(false)
    }

    fn set_intx(&self, asserted: bool) -> Result<(), InterruptError> {
        if self.layout.header.interrupt_pin.is_none() {
            return Err(InterruptError::NoIntx);
        }
        self.mutate(|st, _| {
            let value = if asserted { PCI_STATUS_INTERRUPT } else { 0 };
            st.cs.update_u16(PCI_STATUS, PCI_STATUS_INTERRUPT, value);
        });
        Ok(())
    }

    /// Whether the device's interrupt is raised (`PCI_STATUS_INTERRUPT`), delivered or not.
    pub fn intx_asserted(&self) -> bool {
        self.state.lock().cs.load_u16(PCI_STATUS) & PCI_STATUS_INTERRUPT != 0
    }

    /// The INTx line as the sink sees it.
    pub fn intx_line(&self) -> bool {
        self.state.lock().intx_line
    }

    /// The device signals MSI vector `vector` (0 .. Multiple Message Capable).
    pub fn notify_msi(&self, vector: u16) -> Result<MessageOutcome, InterruptError> {
        let msi = self.layout.caps.msi.ok_or(InterruptError::NoMsi)?;
        let count = u16::from(msi.vectors_capable());
        if vector >= count {
            return Err(InterruptError::NoSuchVector { vector, count });
        }
        Ok(self.mutate(|st, events| {
            let cs = &mut st.cs;
            if !msi.enabled(cs) {
                return MessageOutcome::Dropped(Blocked::Disabled);
            }
            if vector >= u16::from(msi.vectors_enabled(cs)) {
                return MessageOutcome::Dropped(Blocked::VectorNotEnabled);
            }
            let blocked = if msi.masked(cs, vector) {
                Some(Blocked::Masked)
            } else {
                self.message_block(cs)
            };
            match blocked {
                None => {
                    events.push(Event::Message(msi.message(cs, vector)));
                    MessageOutcome::Sent
                }
                Some(why) if msi.set_pending(cs, vector, true) => MessageOutcome::Pending(why),
                Some(why) => MessageOutcome::Dropped(why),
            }
        }))
    }

    /// The device signals MSI-X vector `vector` (a table entry).
    pub fn notify_msix(&self, vector: u16) -> Result<MessageOutcome, InterruptError> {
        let msix = self.layout.caps.msix.ok_or(InterruptError::NoMsix)?;
        let count = msix.table_size();
        if vector >= count {
            return Err(InterruptError::NoSuchVector { vector, count });
        }
        Ok(self.mutate(|st, events| {
            let State { cs, table, .. } = st;
            let Some(table) = table.as_mut() else {
                return MessageOutcome::Dropped(Blocked::Disabled);
            };
            let entry = table.entry(vector);
            let blocked = if !msix.enabled(cs) {
                Some(Blocked::Disabled)
            } else if msix.function_masked(cs) {
                Some(Blocked::FunctionMasked)
            } else if entry.is_none_or(|e| e.masked) {
                Some(Blocked::Masked)
            } else {
                self.message_block(cs)
            };
            match (blocked, entry) {
                (None, Some(e)) => {
                    let message = MsiMessage {
                        kind: MessageKind::MsiX,
                        vector,
                        address: e.address,
                        data: e.data,
                    };
                    events.push(Event::Message(message));
                    MessageOutcome::Sent
                }
                (why, _) => {
                    table.set_pending(vector, true);
                    MessageOutcome::Pending(why.unwrap_or(Blocked::Masked))
                }
            }
        }))
    }

    /// What blocks every message regardless of capability: bus mastering and power state.
    fn message_block(&self, cs: &ConfigSpace) -> Option<Blocked> {
        if self
            .layout
            .caps
            .pm
            .is_some_and(|pm| pm.power_state(cs) != PowerState::D0)
        {
            Some(Blocked::LowPower)
        } else if cs.load_u16(PCI_COMMAND) & PCI_COMMAND_MASTER == 0 {
            Some(Blocked::BusMasterDisabled)
        } else {
            None
        }
    }

    /// The INTx level the current state calls for.
    fn intx_level(&self, cs: &ConfigSpace) -> bool {
        let caps = &self.layout.caps;
        self.layout.header.interrupt_pin.is_some()
            && cs.load_u16(PCI_STATUS) & PCI_STATUS_INTERRUPT != 0
            && cs.load_u16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE == 0
            && !caps.msi.is_some_and(|m| m.enabled(cs))
            && !caps.msix.is_some_and(|m| m.enabled(cs))
            && !caps.pm.is_some_and(|pm| pm.power_state(cs) != PowerState::D0)
    }

    /// After any change: updates the INTx line and sends every pending message nothing blocks
    /// any more.
    pub(crate) fn reevaluate(&self, st: &mut State, events: &mut Vec<Event>) {
        let line = self.intx_level(&st.cs);
        if line != st.intx_line {
            st.intx_line = line;
            events.push(Event::Intx(line));
        }
        if self.message_block(&st.cs).is_some() {
            return;
        }
        if let Some(msi) = self.layout.caps.msi.filter(|m| m.enabled(&st.cs)) {
            let pending = msi.pending_bits(&st.cs);
            for vector in 0..u16::from(msi.vectors_enabled(&st.cs)) {
                if pending >> vector & 1 != 0 && !msi.masked(&st.cs, vector) {
                    msi.set_pending(&mut st.cs, vector, false);
                    events.push(Event::Message(msi.message(&st.cs, vector)));
                }
            }
        }
        let State { cs, table, .. } = st;
        let Some(msix) = self.layout.caps.msix else { return };
        let Some(table) = table.as_mut() else { return };
        if !msix.enabled(cs) || msix.function_masked(cs) {
            return;
        }
        for vector in table.pending_vectors() {
            let Some(entry) = table.entry(vector).filter(|e| !e.masked) else {
                continue;
            };
            table.set_pending(vector, false);
            let message = MsiMessage {
                kind: MessageKind::MsiX,
                vector,
                address: entry.address,
                data: entry.data,
            };
            events.push(Event::Message(message));
        }
    }
}
