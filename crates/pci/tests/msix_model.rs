//! Model-based property test of MSI-X delivery: random sequences of requests, entry masks,
//! function mask, enable and bus-master changes, checked message by message against a reference
//! model of PCI 3.0 6.8.2 (pending bits set while anything blocks, sent in vector order — and
//! cleared — as soon as nothing does).

mod common;

use common::*;
use proptest::prelude::*;
use uvfio_pci::regs::*;

#[derive(Debug, Clone, Copy)]
enum Op {
    Notify(u16),
    EntryMask(u16, bool),
    FunctionMask(bool),
    Enable(bool),
    Master(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..MSIX_VECTORS).prop_map(Op::Notify),
        3 => (0..MSIX_VECTORS, any::<bool>()).prop_map(|(v, m)| Op::EntryMask(v, m)),
        1 => any::<bool>().prop_map(Op::FunctionMask),
        1 => any::<bool>().prop_map(Op::Enable),
        1 => any::<bool>().prop_map(Op::Master),
    ]
}

#[derive(Debug, Default)]
struct Model {
    enabled: bool,
    function_masked: bool,
    master: bool,
    masked: [bool; MSIX_VECTORS as usize],
    pending: [bool; MSIX_VECTORS as usize],
}

impl Model {
    fn deliverable(&self, v: usize) -> bool {
        self.enabled && !self.function_masked && self.master && !self.masked[v]
    }

    /// Sends every pending vector nothing blocks any more, in vector order.
    fn flush(&mut self) -> Vec<Heard> {
        let mut out = Vec::new();
        for v in 0..self.pending.len() {
            if self.pending[v] && self.deliverable(v) {
                self.pending[v] = false;
                out.push(Heard::Msg(msix_message(v as u16)));
            }
        }
        out
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.enabled {
            flags |= PCI_MSIX_FLAGS_ENABLE;
        }
        if self.function_masked {
            flags |= PCI_MSIX_FLAGS_MASKALL;
        }
        flags.into()
    }

    fn pba(&self) -> u64 {
        self.pending
            .iter()
            .enumerate()
            .fold(0, |acc, (v, &p)| acc | u64::from(p) << v)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn msix_delivery_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let f = full_function();
        let rec = Recorder::attach(&f);
        let mut model = Model { masked: [true; MSIX_VECTORS as usize], ..Model::default() };
        for v in 0..MSIX_VECTORS {
            program_msix_entry(&f, v, true);
        }
        for op in ops {
            let expected = match op {
                Op::Notify(v) => {
                    f.notify_msix(v).unwrap();
                    if model.deliverable(usize::from(v)) {
                        vec![Heard::Msg(msix_message(v))]
                    } else {
                        model.pending[usize::from(v)] = true;
                        vec![]
                    }
                }
                Op::EntryMask(v, masked) => {
                    let ctrl = u64::from(v) * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL;
                    f.msix_table_write(ctrl, 4, u64::from(masked)).unwrap();
                    model.masked[usize::from(v)] = masked;
                    model.flush()
                }
                Op::FunctionMask(masked) => {
                    model.function_masked = masked;
                    write(&f, MSIX + PCI_MSIX_FLAGS, 2, model.flags());
                    model.flush()
                }
                Op::Enable(enabled) => {
                    model.enabled = enabled;
                    write(&f, MSIX + PCI_MSIX_FLAGS, 2, model.flags());
                    model.flush()
                }
                Op::Master(master) => {
                    model.master = master;
                    write(&f, PCI_COMMAND, 2, if master { u32::from(PCI_COMMAND_MASTER) } else { 0 });
                    model.flush()
                }
            };
            prop_assert_eq!(rec.take(), expected, "after {:?}", op);
            prop_assert_eq!(f.msix_pba_read(0, 8).unwrap(), model.pba(), "PBA after {:?}", op);
        }
    }
}
