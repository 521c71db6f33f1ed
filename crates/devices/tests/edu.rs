//! The edu device against QEMU's `docs/specs/edu.rst`, driven through its MMIO registers, with its
//! DMA going through a paging domain of the IOMMU model and its interrupts and bus mastering those
//! of a test bus.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uvfio_devices::edu::{
    DMA_IRQ, DMA_IRQ_ON_DONE, DMA_RUN, DMA_TO_RAM, EDU_DMA_MASK, EDU_DMA_START, EDU_ID, FACT_IRQ,
    STATUS_COMPUTING, STATUS_IRQFACT, reg,
};
use uvfio_devices::{DmaSource, Edu, EduBus};
use uvfio_iommu::{DmaPort, Domain, DomainConfig, FaultReason};
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::{Access, Hpa, Iova, PageSize};

const RID: u16 = 0x10;
/// Where the test maps its RAM page, read-write, and a second one read-only.
const RAM: u64 = 0x10_0000;
const RAM_RO: u64 = 0x20_0000;

#[derive(Debug, Default)]
struct Bus {
    master: AtomicBool,
    msi: AtomicBool,
    intx: AtomicBool,
    msis: Mutex<Vec<u32>>,
}

impl EduBus for Bus {
    fn bus_master(&self) -> bool {
        self.master.load(Ordering::SeqCst)
    }
    fn msi_enabled(&self) -> bool {
        self.msi.load(Ordering::SeqCst)
    }
    fn notify_msi(&self, vector: u32) {
        self.msis.lock().push(vector);
    }
    fn set_intx(&self, asserted: bool) {
        self.intx.store(asserted, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Source(Arc<Domain>);

impl DmaSource for Source {
    fn port(&self) -> DmaPort {
        self.0.port(RID)
    }
}

struct Rig {
    mem: Arc<HostMemory>,
    domain: Arc<Domain>,
    bus: Arc<Bus>,
    edu: Edu,
    rw: Hpa,
    ro: Hpa,
}

impl Rig {
    fn new() -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(16 << 20)).unwrap());
        let config = DomainConfig {
            coherent: true,
            ..DomainConfig::default()
        };
        let domain = Domain::new_paging(Arc::clone(&mem), config).unwrap();
        let rw = mem.alloc(PageSize::Size4K).unwrap();
        let ro = mem.alloc(PageSize::Size4K).unwrap();
        domain
            .map(Iova::new(RAM), rw, 4096, Access::READ | Access::WRITE)
            .unwrap();
        domain.map(Iova::new(RAM_RO), ro, 4096, Access::READ).unwrap();
        let bus = Arc::new(Bus::default());
        bus.master.store(true, Ordering::SeqCst);
        let edu = Edu::new(
            Arc::clone(&bus) as Arc<dyn EduBus>,
            Arc::new(Source(Arc::clone(&domain))),
            EDU_DMA_MASK,
        );
        Rig {
            mem,
            domain,
            bus,
            edu,
            rw,
            ro,
        }
    }

    fn r32(&self, offset: u64) -> u32 {
        self.edu.mmio_read(offset, 4) as u32
    }

    fn w32(&self, offset: u64, value: u32) {
        self.edu.mmio_write(offset, 4, u64::from(value));
    }

    fn w64(&self, offset: u64, value: u64) {
        self.edu.mmio_write(offset, 8, value);
    }

    /// Polls `reg` until `bit` clears, as the spec's driver loop does.
    fn wait_clear(&self, offset: u64, bit: u64) {
        let start = Instant::now();
        let size = if offset < 0x80 { 4 } else { 8 };
        while self.edu.mmio_read(offset, size) & bit != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "register {offset:#x} stuck"
            );
            std::thread::yield_now();
        }
    }

    fn dma(&self, src: u64, dst: u64, count: u64, cmd: u64) {
        self.w64(reg::DMA_SRC, src);
        self.w64(reg::DMA_DST, dst);
        self.w64(reg::DMA_COUNT, count);
        self.w64(reg::DMA_CMD, cmd | DMA_RUN);
        self.wait_clear(reg::DMA_CMD, DMA_RUN);
    }

    fn ram(&self, hpa: Hpa, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.mem.read(hpa, &mut b).unwrap();
        b
    }
}

#[test]
fn identification_and_liveness() {
    let rig = Rig::new();
    assert_eq!(rig.r32(reg::ID), EDU_ID);
    assert_eq!(EDU_ID & 0xffff, 0x00ed, "0xRRrr00ed");
    rig.w32(reg::LIVENESS, 0x1234_5678);
    assert_eq!(rig.r32(reg::LIVENESS), !0x1234_5678);
    // The identification register is read-only.
    rig.w32(reg::ID, 0);
    assert_eq!(rig.r32(reg::ID), EDU_ID);
}

#[test]
fn accesses_the_spec_does_not_allow_read_all_ones_and_are_ignored() {
    let rig = Rig::new();
    // "Only size == 4 accesses are allowed for addresses < 0x80."
    assert_eq!(rig.edu.mmio_read(reg::ID, 8), u64::MAX);
    assert_eq!(rig.edu.mmio_read(reg::ID, 2), 0xffff);
    assert_eq!(rig.edu.mmio_read(reg::LIVENESS + 1, 4), 0xffff_ffff);
    rig.edu.mmio_write(reg::LIVENESS, 8, 5);
    assert_eq!(rig.r32(reg::LIVENESS), 0, "the 8-byte write was ignored");
    // "size == 4 or size == 8 for the rest."
    rig.edu.mmio_write(reg::DMA_SRC, 2, 0xabcd);
    assert_eq!(rig.edu.mmio_read(reg::DMA_SRC, 8), 0);
    rig.edu.mmio_write(reg::DMA_SRC, 4, 0xabcd);
    assert_eq!(rig.edu.mmio_read(reg::DMA_SRC, 8), 0xabcd);
    assert_eq!(rig.edu.mmio_read(reg::DMA_SRC, 1), 0xff);
    // Unused registers read as all ones.
    assert_eq!(rig.r32(0x40), 0xffff_ffff);
}

#[test]
fn factorial_runs_on_the_worker_and_may_raise_an_interrupt() {
    let rig = Rig::new();
    rig.w32(reg::FACTORIAL, 10);
    rig.wait_clear(reg::STATUS, u64::from(STATUS_COMPUTING));
    assert_eq!(rig.r32(reg::FACTORIAL), 3_628_800);
    assert_eq!(rig.r32(reg::IRQ_STATUS), 0, "no interrupt unless asked for");
    // 13! wraps in 32 bits, as in QEMU's u32 arithmetic.
    rig.w32(reg::STATUS, STATUS_IRQFACT);
    rig.w32(reg::FACTORIAL, 13);
    rig.wait_clear(reg::STATUS, u64::from(STATUS_COMPUTING));
    assert_eq!(rig.r32(reg::FACTORIAL), 6_227_020_800u64 as u32);
    assert_eq!(
        rig.r32(reg::IRQ_STATUS),
        FACT_IRQ,
        "set before the computing bit clears"
    );
    // The line follows a moment later (delivery is the worker's next step), as on real hardware.
    let start = Instant::now();
    while !rig.bus.intx.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(10), "INTx by default");
        std::thread::yield_now();
    }
    rig.w32(reg::IRQ_ACK, FACT_IRQ);
    assert_eq!(rig.r32(reg::IRQ_STATUS), 0);
    assert!(!rig.bus.intx.load(Ordering::SeqCst));
    // The computing bit is read-only.
    rig.w32(reg::STATUS, STATUS_COMPUTING);
    assert_eq!(rig.r32(reg::STATUS), 0);
}

#[test]
fn interrupts_raise_and_acknowledge_over_intx_and_msi() {
    let rig = Rig::new();
    rig.w32(reg::IRQ_RAISE, 0x5);
    rig.w32(reg::IRQ_RAISE, 0x8);
    assert_eq!(rig.r32(reg::IRQ_STATUS), 0xd);
    assert!(rig.bus.intx.load(Ordering::SeqCst));
    rig.w32(reg::IRQ_ACK, 0x5);
    assert!(rig.bus.intx.load(Ordering::SeqCst), "still 0x8 pending");
    rig.w32(reg::IRQ_ACK, 0x8);
    assert!(!rig.bus.intx.load(Ordering::SeqCst));
    // With MSI enabled each raise sends vector 0 and INTx stays low.
    rig.bus.msi.store(true, Ordering::SeqCst);
    rig.w32(reg::IRQ_RAISE, 0x1);
    rig.w32(reg::IRQ_RAISE, 0x2);
    assert_eq!(*rig.bus.msis.lock(), vec![0, 0]);
    assert!(!rig.bus.intx.load(Ordering::SeqCst));
    rig.w32(reg::IRQ_ACK, 0x3);
    assert_eq!(rig.r32(reg::IRQ_STATUS), 0);
}

#[test]
fn dma_both_ways_through_the_iommu() {
    let rig = Rig::new();
    let pattern: Vec<u8> = (0..100u8).collect();
    rig.mem.write(rig.rw, &pattern).unwrap();
    // "addr -> source, 0x40000 -> destination, 100 -> count, 1 -> command".
    rig.dma(RAM, EDU_DMA_START, 100, 0);
    assert_eq!(&rig.edu.dma_buffer()[..100], &pattern[..]);
    // "0x40000 -> source, addr+100 -> destination, 3 -> command", with the interrupt.
    rig.dma(EDU_DMA_START, RAM + 100, 100, DMA_TO_RAM | DMA_IRQ_ON_DONE);
    assert_eq!(rig.ram(rig.rw, 200)[100..], pattern[..]);
    assert_eq!(rig.r32(reg::IRQ_STATUS), DMA_IRQ);
    assert_eq!(rig.edu.dma_errors(), 0);
}

#[test]
fn dma_to_an_unmapped_or_read_only_iova_faults_and_writes_nothing() {
    let rig = Rig::new();
    rig.mem.write(rig.ro, &[0x11; 64]).unwrap();
    // Into the EDU buffer from RAM first, to have something to write out.
    rig.mem.write(rig.rw, &[0xee; 64]).unwrap();
    rig.dma(RAM, EDU_DMA_START, 64, 0);
    // EDU → read-only RAM: a permission fault, the page unchanged.
    rig.dma(EDU_DMA_START, RAM_RO, 64, DMA_TO_RAM | DMA_IRQ_ON_DONE);
    assert_eq!(rig.ram(rig.ro, 64), vec![0x11; 64]);
    // EDU → unmapped IOVA, and a transfer that runs off the end of the mapped page.
    rig.dma(EDU_DMA_START, 0x30_0000, 64, DMA_TO_RAM);
    rig.dma(EDU_DMA_START, RAM + 4096 - 32, 64, DMA_TO_RAM);
    assert_eq!(rig.ram(rig.rw, 4096)[4096 - 32..], vec![0; 32], "all or nothing");
    assert_eq!(rig.edu.dma_errors(), 3);
    let faults = rig.domain.drain_faults();
    let reasons: Vec<FaultReason> = faults.iter().map(|f| f.reason).collect();
    assert!(reasons.contains(&FaultReason::NotPresent), "{faults:?}");
    assert!(reasons.len() >= 3, "{faults:?}");
    // The command still completes and raises its interrupt, as QEMU's does.
    assert_eq!(rig.r32(reg::IRQ_STATUS), DMA_IRQ);
    // And the device keeps working.
    rig.dma(EDU_DMA_START, RAM, 64, DMA_TO_RAM);
    assert_eq!(rig.ram(rig.rw, 64), vec![0xee; 64]);
}

#[test]
fn bus_mastering_off_blocks_dma() {
    let rig = Rig::new();
    rig.mem.write(rig.rw, &[7; 16]).unwrap();
    rig.bus.master.store(false, Ordering::SeqCst);
    rig.dma(RAM, EDU_DMA_START, 16, 0);
    assert_eq!(&rig.edu.dma_buffer()[..16], &[0; 16]);
    assert_eq!(rig.edu.dma_errors(), 1);
    assert!(
        rig.domain.drain_faults().is_empty(),
        "no transaction reached the IOMMU"
    );
    rig.bus.master.store(true, Ordering::SeqCst);
    rig.dma(RAM, EDU_DMA_START, 16, 0);
    assert_eq!(&rig.edu.dma_buffer()[..16], &[7; 16]);
}

#[test]
fn dma_outside_the_buffer_is_refused_and_ram_addresses_are_masked() {
    let rig = Rig::new();
    rig.mem.write(rig.rw, &[9; 8]).unwrap();
    // Past the 4 KiB buffer, or below it: refused, nothing moves.
    rig.dma(RAM, EDU_DMA_START + 4096 - 4, 8, 0);
    rig.dma(RAM, EDU_DMA_START - 8, 8, 0);
    rig.dma(RAM, u64::MAX, 8, 0);
    assert_eq!(rig.edu.dma_errors(), 3);
    assert!(rig.edu.dma_buffer().iter().all(|&b| b == 0));
    // A RAM address above the 28-bit mask is clamped to it (QEMU's edu_clamp_addr()).
    rig.dma(RAM | 1 << 40, EDU_DMA_START, 8, 0);
    assert_eq!(&rig.edu.dma_buffer()[..8], &[9; 8]);
}

#[test]
fn reset_restores_power_on_state() {
    let rig = Rig::new();
    rig.w32(reg::LIVENESS, 1);
    rig.w32(reg::IRQ_RAISE, 4);
    assert!(rig.bus.intx.load(Ordering::SeqCst));
    rig.edu.reset();
    assert_eq!(rig.r32(reg::LIVENESS), 0);
    assert_eq!(rig.r32(reg::IRQ_STATUS), 0);
    assert!(!rig.bus.intx.load(Ordering::SeqCst));
    assert_eq!(rig.r32(reg::ID), EDU_ID);
}
