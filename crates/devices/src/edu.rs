//! QEMU's `edu` device (QEMU `docs/specs/edu.rst`, `hw/misc/edu.c`): the teaching device a
//! user-space driver is written against first.
//!
//! PCI id `1234:11e8`, region 0 "I/O memory, 1 MB in size", INTx and MSI. Its MMIO registers:
//!
//! | offset | access | what |
//! |---|---|---|
//! | 0x00 | RO | identification `0xRRrr00ed` (here version 1.0: `0x010000ed`) |
//! | 0x04 | RW | liveness check: reads back the inverse of what was written |
//! | 0x08 | RW | factorial: the written value's factorial is put back, computed on the worker |
//! | 0x20 | RW | status: 0x01 computing (RO), 0x80 raise interrupt 0x01 after the factorial |
//! | 0x24 | RO | interrupt status |
//! | 0x60 | WO | interrupt raise: ORed into the interrupt status |
//! | 0x64 | WO | interrupt acknowledge: cleared from the interrupt status |
//! | 0x80, 0x88, 0x90 | RW | DMA source, destination, count |
//! | 0x98 | RW | DMA command: 0x01 start, 0x02 direction (1: EDU → RAM), 0x04 raise 0x100 when done |
//!
//! "Only `size == 4` accesses are allowed for addresses `< 0x80`. `size == 4` or `size == 8` for
//! the rest": other accesses read as all ones and are ignored, as in QEMU. "One 4096 bytes long
//! buffer at offset 0x40000 is available in the EDU device"; DMA addresses outside it are a
//! programming error that QEMU answers with `hw_error()` (it stops the machine) — here the
//! transfer is refused, nothing moves, and the command completes (with its interrupt, if asked
//! for). RAM addresses are clamped to the DMA mask ("the device supports only 28 bits (256 MiB)
//! by default"), and every DMA goes through the device's [`DmaSource`]: an address the IOMMU does
//! not map faults and moves nothing. With bus mastering off no DMA is issued at all.
//!
//! The factorial and the DMA run on a worker thread, as QEMU runs them on a thread and a timer; the
//! driver polls the status or command register, or waits for the interrupt.
//!
//! Interrupts follow `edu_raise_irq()` / `edu_lower_irq()`: MSI vector 0 when the function's MSI
//! is enabled, else INTx asserted while the interrupt status is non-zero. "Even if the driver
//! disabled INTx and only uses MSI, it still needs to update the acknowledge register."

use crate::{DmaSource, EduBus};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::thread::JoinHandle;
use uvfio_types::Iova;

/// The identification register: version 1.0, `0xRRrr00ed`.
pub const EDU_ID: u32 = 0x0100_00ed;
/// The size of region 0.
pub const EDU_BAR0_SIZE: u64 = 1 << 20;
/// Where the device's DMA buffer sits in its own address space.
pub const EDU_DMA_START: u64 = 0x40000;
/// The size of the DMA buffer.
pub const EDU_DMA_SIZE: u64 = 4096;
/// The default DMA mask: 28 bits.
pub const EDU_DMA_MASK: u64 = (1 << 28) - 1;

/// Register offsets.
pub mod reg {
    /// Identification (RO).
    pub const ID: u64 = 0x00;
    /// Liveness check (RW).
    pub const LIVENESS: u64 = 0x04;
    /// Factorial (RW).
    pub const FACTORIAL: u64 = 0x08;
    /// Status (RW).
    pub const STATUS: u64 = 0x20;
    /// Interrupt status (RO).
    pub const IRQ_STATUS: u64 = 0x24;
    /// Interrupt raise (WO).
    pub const IRQ_RAISE: u64 = 0x60;
    /// Interrupt acknowledge (WO).
    pub const IRQ_ACK: u64 = 0x64;
    /// DMA source address (RW).
    pub const DMA_SRC: u64 = 0x80;
    /// DMA destination address (RW).
    pub const DMA_DST: u64 = 0x88;
    /// DMA transfer count (RW).
    pub const DMA_COUNT: u64 = 0x90;
    /// DMA command (RW).
    pub const DMA_CMD: u64 = 0x98;
}

/// Status register: "computing factorial (RO)".
pub const STATUS_COMPUTING: u32 = 0x01;
/// Status register: "raise interrupt after finishing factorial computation".
pub const STATUS_IRQFACT: u32 = 0x80;
/// The interrupt status value the factorial raises.
pub const FACT_IRQ: u32 = 0x001;
/// The interrupt status value a finished DMA raises (with [`DMA_IRQ_ON_DONE`]).
pub const DMA_IRQ: u32 = 0x100;
/// DMA command: start transfer (reads 1 while running).
pub const DMA_RUN: u64 = 0x01;
/// DMA command: direction EDU → RAM.
pub const DMA_TO_RAM: u64 = 0x02;
/// DMA command: raise interrupt 0x100 after finishing.
pub const DMA_IRQ_ON_DONE: u64 = 0x04;

#[derive(Debug, Default, Clone, Copy)]
struct Dma {
    src: u64,
    dst: u64,
    count: u64,
    cmd: u64,
}

#[derive(Debug)]
struct State {
    liveness: u32,
    fact: u32,
    status: u32,
    irq_status: u32,
    dma: Dma,
    buf: Box<[u8; EDU_DMA_SIZE as usize]>,
    /// A factorial waits for the worker.
    fact_pending: bool,
    /// A DMA waits for the worker.
    dma_pending: bool,
    /// DMAs refused or faulted since the device was made (diagnostics).
    dma_errors: u64,
    stop: bool,
}

impl State {
    fn new() -> Self {
        State {
            liveness: 0,
            fact: 0,
            status: 0,
            irq_status: 0,
            dma: Dma::default(),
            buf: Box::new([0; EDU_DMA_SIZE as usize]),
            fact_pending: false,
            dma_pending: false,
            dma_errors: 0,
            stop: false,
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    bus: Arc<dyn EduBus>,
    dma: Arc<dyn DmaSource>,
    dma_mask: u64,
}

/// One edu device: its registers, DMA buffer and worker.
#[derive(Debug)]
pub struct Edu {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Edu {
    /// An edu device whose interrupts and bus-master state are `bus`'s and whose DMA goes through
    /// `dma`, with DMA mask `dma_mask` (QEMU's `dma_mask` property; [`EDU_DMA_MASK`] by default).
    pub fn new(bus: Arc<dyn EduBus>, dma: Arc<dyn DmaSource>, dma_mask: u64) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            work: Condvar::new(),
            bus,
            dma,
            dma_mask,
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("edu-worker".into())
            .spawn(move || worker_shared.run())
            .ok();
        Edu { shared, worker }
    }

    /// An MMIO read of `size` bytes at `offset` of region 0; all ones for an access the spec does
    /// not allow.
    pub fn mmio_read(&self, offset: u64, size: usize) -> u64 {
        if !allowed(offset, size) {
            return all_ones(size);
        }
        let st = self.shared.state.lock();
        let value = match offset {
            reg::ID => u64::from(EDU_ID),
            reg::LIVENESS => u64::from(st.liveness),
            reg::FACTORIAL => u64::from(st.fact),
            reg::STATUS => u64::from(st.status),
            reg::IRQ_STATUS => u64::from(st.irq_status),
            reg::DMA_SRC => st.dma.src,
            reg::DMA_DST => st.dma.dst,
            reg::DMA_COUNT => st.dma.count,
            reg::DMA_CMD => st.dma.cmd,
            _ => return all_ones(size),
        };
        value & all_ones(size)
    }

    /// An MMIO write of the low `size` bytes of `value` at `offset` of region 0; ignored for an
    /// access the spec does not allow.
    pub fn mmio_write(&self, offset: u64, size: usize, value: u64) {
        if !allowed(offset, size) {
            return;
        }
        // Registers below 0x80 take 4-byte accesses only: the value is 32 bits wide.
        let val32 = value as u32;
        let mut st = self.shared.state.lock();
        match offset {
            // addr4 = ~val
            reg::LIVENESS => st.liveness = !val32,
            reg::FACTORIAL => {
                // "This happens only after factorial bit in the status register (0x20 below) is
                // cleared": a write while computing is ignored.
                if st.status & STATUS_COMPUTING != 0 {
                    return;
                }
                st.fact = val32;
                st.status |= STATUS_COMPUTING;
                st.fact_pending = true;
                self.shared.work.notify_one();
            }
            reg::STATUS => {
                if val32 & STATUS_IRQFACT != 0 {
                    st.status |= STATUS_IRQFACT;
                } else {
                    st.status &= !STATUS_IRQFACT;
                }
            }
            reg::IRQ_RAISE => {
                drop(st);
                self.shared.raise_irq(val32);
            }
            reg::IRQ_ACK => {
                drop(st);
                self.shared.lower_irq(val32);
            }
            // A DMA register does not change while a transfer runs (`dma_rw()`).
            reg::DMA_SRC | reg::DMA_DST | reg::DMA_COUNT if st.dma.cmd & DMA_RUN != 0 => {}
            reg::DMA_SRC => st.dma.src = value,
            reg::DMA_DST => st.dma.dst = value,
            reg::DMA_COUNT => st.dma.count = value,
            reg::DMA_CMD => {
                // case 0x98: if (!(val & EDU_DMA_RUN)) break; ... start it.
                if value & DMA_RUN == 0 || st.dma.cmd & DMA_RUN != 0 {
                    return;
                }
                st.dma.cmd = value;
                st.dma_pending = true;
                self.shared.work.notify_one();
            }
            _ => {}
        }
    }

    /// The device's DMA buffer (what `0x40000` .. `0x40fff` hold), for tests and diagnostics.
    pub fn dma_buffer(&self) -> Vec<u8> {
        self.shared.state.lock().buf.to_vec()
    }

    /// DMAs refused (out of the buffer, bus mastering off) or faulted by the IOMMU so far.
    pub fn dma_errors(&self) -> u64 {
        self.shared.state.lock().dma_errors
    }

    /// Whether the worker has nothing to do (no factorial, no DMA pending).
    pub fn idle(&self) -> bool {
        let st = self.shared.state.lock();
        !st.fact_pending && !st.dma_pending
    }

    /// Device reset: registers, buffer and interrupt status back to their power-on values (a
    /// computation or transfer in flight is abandoned).
    pub fn reset(&self) {
        let mut st = self.shared.state.lock();
        let had_irq = st.irq_status != 0;
        let errors = st.dma_errors;
        *st = State::new();
        st.dma_errors = errors;
        drop(st);
        if had_irq {
            self.shared.bus.set_intx(false);
        }
    }
}

impl Drop for Edu {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.work.notify_all();
        if let Some(worker) = self.worker.take() {
            // The worker only loops on the state; it cannot panic.
            let _ = worker.join();
        }
    }
}

impl Shared {
    /// The worker: one factorial or DMA at a time, as they are asked for.
    fn run(&self) {
        let mut st = self.state.lock();
        loop {
            if st.stop {
                return;
            }
            if st.fact_pending {
                st.fact_pending = false;
                // fact = 1; for (i = 1; i <= val; i++) fact *= i;  (32-bit, wrapping)
                let n = st.fact;
                let fact = (1..=n).fold(1u32, |acc, i| acc.wrapping_mul(i));
                st.fact = fact;
                // The interrupt status is set before the computing bit clears, so a driver that
                // polls the status sees the result and its interrupt together.
                let irq = st.status & STATUS_IRQFACT != 0;
                if irq {
                    st.irq_status |= FACT_IRQ;
                }
                st.status &= !STATUS_COMPUTING;
                if irq {
                    drop(st);
                    self.deliver_irq();
                    st = self.state.lock();
                }
                continue;
            }
            if st.dma_pending {
                st.dma_pending = false;
                let dma = st.dma;
                drop(st);
                let ok = self.transfer(dma);
                st = self.state.lock();
                if !ok {
                    st.dma_errors += 1;
                }
                let irq = dma.cmd & DMA_IRQ_ON_DONE != 0;
                if irq {
                    st.irq_status |= DMA_IRQ;
                }
                st.dma.cmd &= !DMA_RUN;
                if irq {
                    drop(st);
                    self.deliver_irq();
                    st = self.state.lock();
                }
                continue;
            }
            self.work.wait(&mut st);
        }
    }

    /// One transfer (`edu_dma_timer()`); whether it moved the bytes.
    fn transfer(&self, dma: Dma) -> bool {
        let to_ram = dma.cmd & DMA_TO_RAM != 0;
        // edu_check_range(): the EDU side must lie inside the buffer.
        let edu_addr = if to_ram { dma.src } else { dma.dst };
        let Some(at) = buffer_offset(edu_addr, dma.count) else {
            return false;
        };
        // pci_dma_read/write: no bus mastering, no transaction.
        if !self.bus.bus_master() {
            return false;
        }
        let count = dma.count as usize;
        let ram = Iova::new((if to_ram { dma.dst } else { dma.src }) & self.dma_mask);
        if to_ram {
            let bytes = self.state.lock().buf[at..at + count].to_vec();
            self.dma.write(ram, &bytes).is_ok()
        } else {
            let mut bytes = vec![0u8; count];
            if self.dma.read(ram, &mut bytes).is_err() {
                return false;
            }
            self.state.lock().buf[at..at + count].copy_from_slice(&bytes);
            true
        }
    }

    /// `edu_raise_irq()`.
    fn raise_irq(&self, value: u32) {
        self.state.lock().irq_status |= value;
        self.deliver_irq();
    }

    /// The second half of `edu_raise_irq()`: MSI vector 0, or INTx asserted, while the interrupt
    /// status is non-zero.
    fn deliver_irq(&self) {
        if self.state.lock().irq_status == 0 {
            return;
        }
        if self.bus.msi_enabled() {
            self.bus.notify_msi(0);
        } else {
            self.bus.set_intx(true);
        }
    }

    /// `edu_lower_irq()`.
    fn lower_irq(&self, value: u32) {
        let mut st = self.state.lock();
        st.irq_status &= !value;
        let clear = st.irq_status == 0;
        drop(st);
        if clear && !self.bus.msi_enabled() {
            self.bus.set_intx(false);
        }
    }
}

/// Whether the spec allows an access of `size` bytes at `offset`.
fn allowed(offset: u64, size: usize) -> bool {
    if offset < 0x80 {
        size == 4 && offset % 4 == 0
    } else {
        (size == 4 || size == 8) && offset % size as u64 == 0 && offset < EDU_BAR0_SIZE
    }
}

fn all_ones(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

/// The offset into the DMA buffer of `[addr, addr + count)`, if it lies inside the buffer.
fn buffer_offset(addr: u64, count: u64) -> Option<usize> {
    let off = addr.checked_sub(EDU_DMA_START)?;
    let end = off.checked_add(count)?;
    (end <= EDU_DMA_SIZE).then_some(off as usize)
}
