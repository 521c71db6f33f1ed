//! Interrupt state and delivery: INTx with INTX_DISABLE, MSI enable / multiple message / masking /
//! pending, MSI-X table, masking, PBA and function mask, bus-master and power-state gating, reset.

mod common;

use common::*;
use std::sync::Arc;
use uvfio_pci::regs::*;
use uvfio_pci::*;

// --- INTx ----------------------------------------------------------------------------------------

#[test]
fn intx_follows_status_and_intx_disable() {
    let f = full_function();
    let rec = Recorder::attach(&f);
    f.assert_intx().unwrap();
    assert!(f.intx_asserted() && f.intx_line());
    assert_eq!(f.status() & Status::INTERRUPT, Status::INTERRUPT);
    assert_eq!(rec.take(), vec![Heard::Intx(true)]);
    f.assert_intx().unwrap();
    assert_eq!(rec.take(), vec![], "no change, no call");

    // INTX_DISABLE masks the line but not the status bit; clearing it re-raises the line.
    set16(&f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(false)]);
    assert!(f.intx_asserted() && !f.intx_line());
    clear16(&f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(true)]);

    // Deasserting while disabled: the sink hears nothing until... nothing (the line stays down).
    set16(&f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    f.deassert_intx().unwrap();
    clear16(&f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(false)]);
    assert_eq!(f.status() & Status::INTERRUPT, Status::empty());
}

#[test]
fn intx_is_suppressed_while_msi_or_msix_is_enabled() {
    let f = full_function();
    let rec = Recorder::attach(&f);
    f.assert_intx().unwrap();
    set16(&f, MSI + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(true), Heard::Intx(false)]);
    clear16(&f, MSI + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(true)]);
    set16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
    assert_eq!(rec.take(), vec![Heard::Intx(false)]);
    assert!(f.intx_asserted(), "the function still has its interrupt pending");
}

#[test]
fn intx_down_in_d3hot() {
    let f = full_function();
    let rec = Recorder::attach(&f);
    f.assert_intx().unwrap();
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D3HOT));
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D0));
    assert_eq!(
        rec.take(),
        vec![Heard::Intx(true), Heard::Intx(false), Heard::Intx(true)]
    );
}

#[test]
fn intx_without_pin_is_an_error_and_new_sinks_hear_the_level() {
    let no_pin = PciFunction::builder(HeaderConfig {
        interrupt_pin: None,
        ..header()
    })
    .build()
    .unwrap();
    assert_eq!(no_pin.assert_intx(), Err(InterruptError::NoIntx));
    assert_eq!(no_pin.config_read(u64::from(PCI_INTERRUPT_PIN), 1), Ok(0));

    let f = full_function();
    f.assert_intx().unwrap();
    assert!(f.intx_line(), "the line is tracked without a sink");
    let rec = Recorder::attach(&f);
    assert_eq!(rec.take(), vec![Heard::Intx(true)]);
    f.clear_sink();
    f.deassert_intx().unwrap();
    assert_eq!(rec.take(), vec![]);
}

// --- MSI -----------------------------------------------------------------------------------------

fn msi_message(vector: u16, data: u32) -> Heard {
    Heard::Msg(MsiMessage {
        kind: MessageKind::Msi,
        vector,
        address: 0x1_fee0_0000,
        data,
    })
}

/// MSI programmed with address 0x1_fee0_0000, data 0x4020 and `log2_vectors` enabled vectors.
fn msi_ready(log2_vectors: u16) -> (Arc<PciFunction>, Arc<Recorder>) {
    let f = full_function();
    let rec = Recorder::attach(&f);
    write(&f, MSI + PCI_MSI_ADDRESS_LO, 4, 0xfee0_0000);
    write(&f, MSI + PCI_MSI_ADDRESS_HI, 4, 1);
    write(&f, MSI + PCI_MSI_DATA_64, 2, 0x4020);
    enable_master(&f);
    write(
        &f,
        MSI + PCI_MSI_FLAGS,
        2,
        u32::from(PCI_MSI_FLAGS_ENABLE | log2_vectors << 4),
    );
    (f, rec)
}

#[test]
fn msi_enable_and_multiple_message() {
    let f = full_function();
    let rec = Recorder::attach(&f);
    assert_eq!(f.notify_msi(0), Ok(MessageOutcome::Dropped(Blocked::Disabled)));
    assert_eq!(
        f.notify_msi(4),
        Err(InterruptError::NoSuchVector { vector: 4, count: 4 })
    );
    drop(f);
    assert_eq!(rec.take(), vec![]);

    let (f, rec) = msi_ready(1); // 2 of 4 vectors enabled
    assert_eq!(f.notify_msi(0), Ok(MessageOutcome::Sent));
    assert_eq!(f.notify_msi(1), Ok(MessageOutcome::Sent));
    assert_eq!(
        f.notify_msi(2),
        Ok(MessageOutcome::Dropped(Blocked::VectorNotEnabled))
    );
    // Data's low log2(enabled) bits carry the vector: 0x4020 | 1.
    assert_eq!(rec.take(), vec![msi_message(0, 0x4020), msi_message(1, 0x4021)]);

    let none = PciFunction::builder(header()).build().unwrap();
    assert_eq!(none.notify_msi(0), Err(InterruptError::NoMsi));
    assert_eq!(none.msi_state(), None);
}

#[test]
fn msi_per_vector_masking_and_pending() {
    let (f, rec) = msi_ready(2);
    let mask = MSI + PCI_MSI_MASK_64;
    write(&f, mask, 4, 0b0101);
    assert_eq!(f.notify_msi(0), Ok(MessageOutcome::Pending(Blocked::Masked)));
    assert_eq!(f.notify_msi(2), Ok(MessageOutcome::Pending(Blocked::Masked)));
    assert_eq!(f.notify_msi(1), Ok(MessageOutcome::Sent));
    assert_eq!(read(&f, MSI + PCI_MSI_PENDING_64, 4), 0b0101);
    assert_eq!(rec.take(), vec![msi_message(1, 0x4021)]);
    // Unmask vector 2: its pending message goes out and the bit clears.
    write(&f, mask, 4, 0b0001);
    assert_eq!(rec.take(), vec![msi_message(2, 0x4022)]);
    assert_eq!(f.msi_state().and_then(|s| s.pending), Some(0b0001));
    // Pending bits are RO to software.
    write(&f, MSI + PCI_MSI_PENDING_64, 4, 0);
    assert_eq!(read(&f, MSI + PCI_MSI_PENDING_64, 4), 0b0001);
    write(&f, mask, 4, 0);
    assert_eq!(rec.take(), vec![msi_message(0, 0x4020)]);
    assert_eq!(read(&f, MSI + PCI_MSI_PENDING_64, 4), 0);
}

#[test]
fn msi_is_gated_by_bus_master() {
    let (f, rec) = msi_ready(2);
    clear16(&f, PCI_COMMAND, PCI_COMMAND_MASTER);
    assert_eq!(
        f.notify_msi(3),
        Ok(MessageOutcome::Pending(Blocked::BusMasterDisabled))
    );
    assert_eq!(rec.take(), vec![]);
    set16(&f, PCI_COMMAND, PCI_COMMAND_MASTER);
    assert_eq!(
        rec.take(),
        vec![msi_message(3, 0x4023)],
        "sent once mastering is back"
    );

    // Without per-vector masking there is no pending register: the request is dropped.
    let plain = PciFunction::builder(header())
        .msi(MsiConfig {
            vectors: 1,
            address64: false,
            per_vector_mask: false,
        })
        .build()
        .unwrap();
    let rec = Recorder::attach(&plain);
    plain
        .config_write(0x42, 2, u32::from(PCI_MSI_FLAGS_ENABLE))
        .unwrap();
    assert_eq!(
        plain.notify_msi(0),
        Ok(MessageOutcome::Dropped(Blocked::BusMasterDisabled))
    );
    plain
        .config_write(u64::from(PCI_COMMAND), 2, u32::from(PCI_COMMAND_MASTER))
        .unwrap();
    assert_eq!(rec.take(), vec![]);
    assert_eq!(plain.notify_msi(0), Ok(MessageOutcome::Sent));
    assert_eq!(rec.take().len(), 1);
}

#[test]
fn msi_blocked_in_d3hot() {
    let (f, rec) = msi_ready(0);
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D3HOT));
    assert_eq!(f.notify_msi(0), Ok(MessageOutcome::Pending(Blocked::LowPower)));
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D0));
    assert_eq!(rec.take(), vec![msi_message(0, 0x4020)]);
}

// --- MSI-X ---------------------------------------------------------------------------------------

fn msix_ready() -> (Arc<PciFunction>, Arc<Recorder>) {
    let f = full_function();
    let rec = Recorder::attach(&f);
    for v in 0..MSIX_VECTORS {
        program_msix_entry(&f, v, false);
    }
    enable_master(&f);
    set16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
    (f, rec)
}

#[test]
fn msix_table_access() {
    let f = full_function();
    for v in 0..MSIX_VECTORS {
        let ctrl = u64::from(v) * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL;
        assert_eq!(
            f.msix_table_read(ctrl, 4),
            Ok(u64::from(PCI_MSIX_ENTRY_CTRL_MASKBIT)),
            "entry {v}"
        );
    }
    f.msix_table_write(0x30 + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee0_3003)
        .unwrap();
    f.msix_table_write(0x30 + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0x1)
        .unwrap();
    f.msix_table_write(0x30 + PCI_MSIX_ENTRY_DATA, 4, 0x0000_4033)
        .unwrap();
    f.msix_table_write(0x30 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0xffff_fffe)
        .unwrap();
    assert_eq!(
        f.msix_entry(3),
        Some(MsixEntry {
            address: 0x1_fee0_3000,
            data: 0x4033,
            masked: false
        })
    );
    assert_eq!(f.msix_table_read(0x30, 8), Ok(0x1_fee0_3000));
    assert_eq!(
        f.msix_table_read(0x38, 8),
        Ok(0x4033),
        "reserved control bits read 0"
    );
    // Malformed accesses.
    assert_eq!(f.msix_table_read(0x30, 2), Err(TableError::Length { len: 2 }));
    assert_eq!(
        f.msix_table_write(0x32, 4, 0),
        Err(TableError::Unaligned { offset: 0x32, len: 4 })
    );
    assert_eq!(
        f.msix_table_read(0x34, 8),
        Err(TableError::Unaligned { offset: 0x34, len: 8 })
    );
    assert_eq!(
        f.msix_table_read(0x100, 4),
        Err(TableError::OutOfRange {
            offset: 0x100,
            len: 4
        })
    );
    assert_eq!(
        f.msix_pba_read(8, 8),
        Err(TableError::OutOfRange { offset: 8, len: 8 })
    );
    // Through the BAR, as a device's BAR handler forwards them.
    assert_eq!(f.msix_bar_read(0, TABLE + 0x38, 4), Ok(Some(0x4033)));
    assert_eq!(
        f.msix_bar_read(0, TABLE - 4, 8),
        Err(TableError::OutOfRange {
            offset: TABLE - 4,
            len: 8
        })
    );
    assert_eq!(f.msix_bar_read(0, 0x10, 4), Ok(None));
    assert_eq!(f.msix_bar_write(0, 0x10, 4, 0), Ok(false));
    let no_msix = PciFunction::builder(header()).build().unwrap();
    assert_eq!(no_msix.msix_table_read(0, 4), Err(TableError::NoMsix));
    assert_eq!(no_msix.msix_bar_read(0, 0, 4), Ok(None));
    assert_eq!(no_msix.notify_msix(0), Err(InterruptError::NoMsix));
}

#[test]
fn msix_delivery_and_entry_masking() {
    let (f, rec) = msix_ready();
    assert_eq!(f.notify_msix(5), Ok(MessageOutcome::Sent));
    assert_eq!(rec.take(), vec![Heard::Msg(msix_message(5))]);
    assert_eq!(
        f.notify_msix(MSIX_VECTORS),
        Err(InterruptError::NoSuchVector {
            vector: 16,
            count: 16
        })
    );

    // Mask entry 7: the request sets its PBA bit; unmasking sends it and clears the bit.
    let ctrl7 = 7 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL;
    f.msix_table_write(ctrl7, 4, 1).unwrap();
    assert_eq!(f.notify_msix(7), Ok(MessageOutcome::Pending(Blocked::Masked)));
    assert_eq!(f.msix_pba_read(0, 8), Ok(1 << 7));
    assert_eq!(f.msix_bar_read(0, PBA, 4), Ok(Some(1 << 7)));
    assert_eq!(f.msix_pending(7), Some(true));
    assert_eq!(rec.take(), vec![]);
    f.msix_bar_write(0, PBA, 8, 0).unwrap();
    assert_eq!(f.msix_pba_read(0, 8), Ok(1 << 7), "PBA writes are ignored");
    f.msix_table_write(ctrl7, 4, 0).unwrap();
    assert_eq!(rec.take(), vec![Heard::Msg(msix_message(7))]);
    assert_eq!(f.msix_pba_read(0, 8), Ok(0));
    // A QWORD write of data + control unmasks too.
    f.msix_table_write(ctrl7, 4, 1).unwrap();
    f.notify_msix(7).unwrap();
    f.msix_table_write(7 * 16 + 8, 8, 0x4007).unwrap();
    assert_eq!(rec.take(), vec![Heard::Msg(msix_message(7))]);
}

#[test]
fn msix_function_mask() {
    let (f, rec) = msix_ready();
    set16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_MASKALL);
    assert_eq!(
        f.notify_msix(1),
        Ok(MessageOutcome::Pending(Blocked::FunctionMasked))
    );
    assert_eq!(
        f.notify_msix(9),
        Ok(MessageOutcome::Pending(Blocked::FunctionMasked))
    );
    // Entry 9 is individually masked too: clearing the function mask sends only entry 1.
    f.msix_table_write(9 * 16 + 12, 4, 1).unwrap();
    clear16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_MASKALL);
    assert_eq!(rec.take(), vec![Heard::Msg(msix_message(1))]);
    assert_eq!(f.msix_pba_read(0, 4), Ok(1 << 9));
    f.msix_table_write(9 * 16 + 12, 4, 0).unwrap();
    assert_eq!(rec.take(), vec![Heard::Msg(msix_message(9))]);
}

#[test]
fn msix_disabled_and_bus_master_gating() {
    let f = full_function();
    let rec = Recorder::attach(&f);
    program_msix_entry(&f, 2, false);
    assert_eq!(f.notify_msix(2), Ok(MessageOutcome::Pending(Blocked::Disabled)));
    set16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
    assert_eq!(rec.take(), vec![], "enabled, but bus mastering is off");
    assert_eq!(
        f.notify_msix(2),
        Ok(MessageOutcome::Pending(Blocked::BusMasterDisabled))
    );
    set16(&f, PCI_COMMAND, PCI_COMMAND_MASTER);
    assert_eq!(
        rec.take(),
        vec![Heard::Msg(msix_message(2))],
        "one message for the pending bit"
    );
    assert_eq!(f.msix_pending(2), Some(false));
    assert_eq!(f.msix_pending(MSIX_VECTORS), None);
}

// --- Reset and concurrency -----------------------------------------------------------------------

#[test]
fn reset_returns_interrupt_state_to_defaults() {
    let (f, rec) = msix_ready();
    write(&f, MSI + PCI_MSI_FLAGS, 2, u32::from(PCI_MSI_FLAGS_ENABLE));
    f.msix_table_write(12, 4, 1).unwrap();
    f.notify_msix(0).unwrap();
    clear16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
    clear16(&f, MSI + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    f.assert_intx().unwrap();
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D3HOT));
    rec.take();
    write(&f, PM + PCI_PM_CTRL, 2, u32::from(PCI_D0));
    assert_eq!(rec.take(), vec![Heard::Intx(true)]);

    f.reset();
    assert_eq!(
        rec.take(),
        vec![Heard::Intx(false)],
        "INTx deasserted by the reset"
    );
    assert!(!f.intx_asserted());
    assert_eq!(f.command(), Command::empty());
    assert_eq!(f.power_state(), PowerState::D0);
    assert_eq!(
        f.msi_state().map(|s| (s.enabled, s.address, s.mask)),
        Some((false, 0, Some(0)))
    );
    assert_eq!(
        f.msix_state().map(|s| (s.enabled, s.function_masked)),
        Some((false, false))
    );
    assert_eq!(f.msix_pba_read(0, 8), Ok(0));
    assert!((0..MSIX_VECTORS).all(|v| f.msix_entry(v)
        == Some(MsixEntry {
            address: 0,
            data: 0,
            masked: true
        })));
    assert_eq!(f.config_snapshot(), *f.default_config());
}

/// A sink that calls back into the function: re-entrant calls must not deadlock.
struct Reentrant {
    function: std::sync::Mutex<Option<Arc<PciFunction>>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl InterruptSink for Reentrant {
    fn intx(&self, asserted: bool) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let f = self.function.lock().unwrap().clone();
        if let Some(f) = f {
            assert_eq!(f.intx_line(), asserted);
            let _ = f.config_read(u64::from(PCI_STATUS), 2);
            if asserted {
                // An edge-triggered consumer acknowledging at once.
                f.deassert_intx().unwrap();
            }
        }
    }

    fn msi(&self, _message: MsiMessage) {}
}

#[test]
fn sink_may_call_back_into_the_function() {
    let f = full_function();
    let sink = Arc::new(Reentrant {
        function: std::sync::Mutex::new(Some(f.clone())),
        calls: 0.into(),
    });
    f.set_sink(sink.clone());
    f.assert_intx().unwrap();
    assert!(!f.intx_asserted() && !f.intx_line());
    assert_eq!(sink.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    sink.function.lock().unwrap().take();
}

#[test]
fn concurrent_requests_and_config_writes_stay_consistent() {
    let (f, rec) = msix_ready();
    let threads: Vec<_> = (0..4u16)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in 0..200u16 {
                    let v = (t * 4 + i) % MSIX_VECTORS;
                    f.notify_msix(v).unwrap();
                    if i % 2 == 0 {
                        f.assert_intx().unwrap();
                    } else {
                        f.deassert_intx().unwrap();
                    }
                    if t == 0 && i % 16 == 0 {
                        set16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_MASKALL);
                        clear16(&f, MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_MASKALL);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // MSI-X is enabled throughout, so INTx never reaches the sink; every request is either sent
    // directly or left pending (requests for one vector while masked collapse into one bit) and
    // sent when the function mask cleared: nothing is left pending, every vector was heard.
    let heard = rec.take();
    assert!(
        heard
            .iter()
            .all(|h| matches!(h, Heard::Msg(m) if m.kind == MessageKind::MsiX))
    );
    assert_eq!(f.msix_pba_read(0, 8), Ok(0));
    assert!(heard.len() <= 800, "{}", heard.len());
    for v in 0..MSIX_VECTORS {
        assert!(heard.contains(&Heard::Msg(msix_message(v))), "vector {v}");
    }
}
