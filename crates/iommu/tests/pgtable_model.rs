//! Model-based tests of the VT-d second-stage page table: random sequences of map / unmap / walk /
//! release / injected allocation failures, checked after every operation against a plain model
//! that knows every leaf (IOVA, size, HPA, permissions), and against an independent scan of the
//! table frames (entry encoding, no empty tables, frame accounting).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use uvfio_iommu::pgtable::pte::{self, Pte};
use uvfio_iommu::pgtable::testmem::TestMemory;
use uvfio_iommu::pgtable::{
    Gather, Levels, PageTable, PageTableConfig, PgTableError, TableMemory, WalkError,
};
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize, PageSizes};

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
/// Each window is 4 GiB: one at the bottom of the IOVA space, one ending at the address width.
const WINDOW: u64 = 4 * G1;
const OPS: usize = 400;

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    size: PageSize,
    hpa: u64,
    prot: Access,
}

/// What an operation is expected to return, in a comparable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok(u64),
    Empty,
    Misaligned,
    MisalignedRange,
    Beyond,
    HpaOutOfRange,
    NoPermission,
    Exists(u64),
    Alloc,
    Other,
}

fn outcome<T>(r: &Result<T, PgTableError>, ok: impl Fn(&T) -> u64) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(ok(v)),
        Err(PgTableError::Empty) => Outcome::Empty,
        Err(PgTableError::Misaligned { .. }) => Outcome::Misaligned,
        Err(PgTableError::MisalignedRange { .. }) => Outcome::MisalignedRange,
        Err(PgTableError::BeyondAddressWidth { .. }) => Outcome::Beyond,
        Err(PgTableError::HpaOutOfRange { .. }) => Outcome::HpaOutOfRange,
        Err(PgTableError::NoPermission) => Outcome::NoPermission,
        Err(PgTableError::Exists { iova }) => Outcome::Exists(iova.raw()),
        Err(PgTableError::Alloc(_)) => Outcome::Alloc,
        Err(_) => Outcome::Other,
    }
}

#[derive(Debug)]
struct Model {
    leaves: BTreeMap<u64, Leaf>,
    width: u32,
    sizes: PageSizes,
}

impl Model {
    fn leaf_at(&self, iova: u64) -> Option<(u64, Leaf)> {
        let (&base, &leaf) = self.leaves.range(..=iova).next_back()?;
        (iova - base < leaf.size.bytes()).then_some((base, leaf))
    }

    /// The leaves overlapping `[lo, last]`, in order.
    fn overlapping(&self, lo: u64, last: u64) -> Vec<(u64, Leaf)> {
        let mut v: Vec<_> = self.leaf_at(lo).filter(|&(b, _)| b < lo).into_iter().collect();
        v.extend(self.leaves.range(lo..=last).map(|(&b, &l)| (b, l)));
        v
    }

    fn expect_map(&self, iova: u64, hpa: u64, len: u64, prot: Access) -> Outcome {
        if len == 0 {
            return Outcome::Empty;
        }
        if iova % K4 != 0 || hpa % K4 != 0 || len % K4 != 0 {
            return Outcome::Misaligned;
        }
        match iova.checked_add(len - 1) {
            Some(last) if last < 1 << self.width => {}
            _ => return Outcome::Beyond,
        }
        match hpa.checked_add(len - 1) {
            Some(last) if last < 1 << 52 => {}
            _ => return Outcome::HpaOutOfRange,
        }
        if !prot.intersects(Access::RW) {
            return Outcome::NoPermission;
        }
        match self.overlapping(iova, iova + len - 1).first() {
            Some(&(b, _)) => Outcome::Exists(b.max(iova)),
            None => Outcome::Ok(0),
        }
    }

    fn map(&mut self, mut iova: u64, mut hpa: u64, mut len: u64, prot: Access) {
        let prot = prot & Access::RW;
        while len > 0 {
            let size = self
                .sizes
                .largest_fitting(iova, hpa, len)
                .expect("4 KiB always fits");
            self.leaves.insert(iova, Leaf { size, hpa, prot });
            iova += size.bytes();
            hpa += size.bytes();
            len -= size.bytes();
        }
    }

    fn expect_unmap(&self, start: u64, last: u64) -> Outcome {
        if start % K4 != 0 || last % K4 != K4 - 1 {
            return Outcome::MisalignedRange;
        }
        if last >> self.width != 0 {
            return Outcome::Beyond;
        }
        let bytes = self
            .overlapping(start, last)
            .iter()
            .map(|&(b, l)| overlap(b, l.size, start, last))
            .sum();
        Outcome::Ok(bytes)
    }

    /// Unmaps `[lo, last]`, splitting partly covered super-pages into next-size leaves.
    /// Returns (first byte unmapped, last byte unmapped, sizes of the leaves hit).
    fn unmap(&mut self, lo: u64, last: u64) -> Option<(u64, u64, PageSizes)> {
        let hit = self.overlapping(lo, last);
        let mut sizes = PageSizes::empty();
        for &(base, leaf) in &hit {
            self.leaves.remove(&base);
            sizes |= leaf.size.as_set();
            self.split(base, leaf, lo, last);
        }
        let (&(fb, _), &(lb, ll)) = (hit.first()?, hit.last()?);
        Some((fb.max(lo), (lb + ll.size.bytes() - 1).min(last), sizes))
    }

    fn split(&mut self, base: u64, leaf: Leaf, lo: u64, last: u64) {
        let child = match leaf.size {
            PageSize::Size4K => return,
            PageSize::Size2M => PageSize::Size4K,
            PageSize::Size1G => PageSize::Size2M,
        };
        for i in 0..512 {
            let (c, c_last) = (base + i * child.bytes(), base + (i + 1) * child.bytes() - 1);
            let c_leaf = Leaf {
                size: child,
                hpa: leaf.hpa + i * child.bytes(),
                prot: leaf.prot,
            };
            if c_last < lo || c > last {
                self.leaves.insert(c, c_leaf);
            } else if c < lo || c_last > last {
                self.split(c, c_leaf, lo, last);
            }
        }
    }
}

fn overlap(base: u64, size: PageSize, lo: u64, last: u64) -> u64 {
    let l = (base + size.bytes() - 1).min(last);
    l - base.max(lo) + 1
}

// ---------------------------------------------------------------------------------------------
// An independent scan of the frames.

struct Scan {
    leaves: Vec<(u64, Leaf)>,
    tables: usize,
}

fn scan(pt: &PageTable<TestMemory>) -> Scan {
    let mut s = Scan {
        leaves: Vec::new(),
        tables: 0,
    };
    scan_table(pt.memory(), pt.root(), pt.levels(), 0, true, &mut s);
    s
}

fn scan_table(mem: &TestMemory, table: Hpa, level: u8, base: u64, is_root: bool, s: &mut Scan) {
    let frame = mem
        .table(table)
        .unwrap_or_else(|| panic!("linked table {table:?} is not a live frame"));
    s.tables += 1;
    let shift = 12 + 9 * (u32::from(level) - 1);
    let mut present = 0;
    for (i, e) in frame.0.iter().enumerate() {
        let raw = e.load(Ordering::Acquire);
        if raw == 0 {
            continue;
        }
        let p = Pte(raw);
        assert!(p.is_present(), "stray bits {raw:#x} in a not-present entry");
        assert_eq!(raw & (pte::PTE_ACCESSED | pte::PTE_DIRTY), 0, "A/D set: {raw:#x}");
        present += 1;
        let at = base + ((i as u64) << shift);
        if level == 1 || p.is_super_page() {
            let size = match level {
                1 => PageSize::Size4K,
                2 => PageSize::Size2M,
                3 => PageSize::Size1G,
                _ => panic!("PS at level {level}"),
            };
            let extra = if level > 1 { pte::PTE_PAGE_SIZE } else { 0 };
            assert_eq!(
                raw & !(pte::ADDR_MASK | pte::PRESENT_MASK | extra),
                0,
                "reserved bits: {raw:#x}"
            );
            assert_eq!(p.addr().raw() % size.bytes(), 0, "misaligned leaf {raw:#x}");
            s.leaves.push((
                at,
                Leaf {
                    size,
                    hpa: p.addr().raw(),
                    prot: p.access(),
                },
            ));
        } else {
            assert_eq!(
                raw & !pte::ADDR_MASK,
                pte::PRESENT_MASK,
                "table entry must be R|W only: {raw:#x}"
            );
            scan_table(mem, p.addr(), level - 1, at, false, s);
        }
    }
    assert!(
        is_root || present > 0,
        "empty table {table:?} still linked at level {level}"
    );
}

// ---------------------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone, Copy)]
enum Unit {
    K4,
    M2,
    G1,
}

/// A map of a valid shape (alignment decided by `unit` and `skew`).
#[derive(Debug, Clone)]
struct MapOp {
    top: bool,
    unit: Unit,
    g: u64,
    m: u64,
    p: u64,
    count: u64,
    hpa_g: u64,
    skew: u64,
    prot: u8,
}

#[derive(Debug, Clone)]
enum Op {
    /// Nothing (first, so that shrinking turns the operations that do not matter into these).
    Nop,
    Map(MapOp),
    /// A map spoiled in one way: 0 misaligned IOVA, 1 misaligned HPA, 2 misaligned length,
    /// 3 zero length, 4 wrapping, 5 beyond the width, 6 HPA past 52 bits, 7 no R/W.
    MapBad(MapOp, u8),
    /// Unmap `pages` 4 KiB pages from a (possibly unaligned) position.
    Unmap {
        top: bool,
        g: u64,
        m: u64,
        p: u64,
        pages: u64,
    },
    /// Unmap a range of whole 2 MiB blocks.
    UnmapBig {
        top: bool,
        g: u64,
        m: u64,
        blocks: u64,
    },
    /// Unmap a whole window.
    UnmapWindow {
        top: bool,
    },
    /// A spoiled unmap: 0 misaligned start, 1 misaligned end, 2 beyond the width, 3 everything.
    UnmapBad {
        top: bool,
        g: u64,
        p: u64,
        kind: u8,
    },
    Walk {
        top: bool,
        off: u64,
    },
    Release,
    Arm(u64),
}

fn hot_m() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..3, 509u64..512, 0u64..512]
}

fn map_op() -> impl Strategy<Value = MapOp> {
    let unit = prop_oneof![5 => Just(Unit::K4), 3 => Just(Unit::M2), 2 => Just(Unit::G1)];
    (
        any::<bool>(),
        unit,
        0u64..4,
        hot_m(),
        0u64..512,
        1u64..48,
        0u64..(1 << 20),
        0u64..10,
        0u8..16,
    )
        .prop_map(|(top, unit, g, m, p, count, hpa_g, skew, prot)| MapOp {
            top,
            unit,
            g,
            m,
            p,
            count,
            hpa_g,
            skew,
            prot,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Nop),
        30 => map_op().prop_map(Op::Map),
        6 => (map_op(), 0u8..8).prop_map(|(m, k)| Op::MapBad(m, k)),
        16 => (any::<bool>(), 0u64..4, hot_m(), 0u64..512, prop_oneof![1u64..64, 1u64..2048])
            .prop_map(|(top, g, m, p, pages)| Op::Unmap { top, g, m, p, pages }),
        10 => (any::<bool>(), 0u64..4, hot_m(), 1u64..1024).prop_map(|(top, g, m, blocks)| Op::UnmapBig { top, g, m, blocks }),
        4 => (any::<bool>(), 0u64..4, 0u64..512, 0u8..4).prop_map(|(top, g, p, kind)| Op::UnmapBad { top, g, p, kind }),
        20 => (any::<bool>(), 0u64..WINDOW).prop_map(|(top, off)| Op::Walk { top, off }),
        4 => Just(Op::Release),
        2 => any::<bool>().prop_map(|top| Op::UnmapWindow { top }),
        4 => (0u64..6).prop_map(Op::Arm),
    ]
}

// ---------------------------------------------------------------------------------------------
// The harness.

struct Harness {
    pt: PageTable<TestMemory>,
    model: Model,
    gather: Gather,
    /// The span and sizes the gather should report since the last release.
    gathered: Option<(u64, u64)>,
    gathered_sizes: PageSizes,
    armed: bool,
}

impl Harness {
    fn new(levels: Levels, sizes: PageSizes) -> Self {
        let pt = PageTable::new(
            TestMemory::new(),
            PageTableConfig {
                levels,
                page_sizes: sizes,
            },
        )
        .unwrap();
        let width = pt.address_width();
        Harness {
            pt,
            model: Model {
                leaves: BTreeMap::new(),
                width,
                sizes,
            },
            gather: Gather::new(),
            gathered: None,
            gathered_sizes: PageSizes::empty(),
            armed: false,
        }
    }

    fn base(&self, top: bool) -> u64 {
        if top { (1 << self.model.width) - WINDOW } else { 0 }
    }

    fn map_args(&self, m: &MapOp) -> (u64, u64, u64, Access) {
        let base = self.base(m.top);
        // Without 2 MiB pages a GiB would be 262144 leaves: too slow to compare every operation.
        let unit = match m.unit {
            Unit::G1 if !self.model.sizes.contains(PageSizes::SZ_2M) => Unit::M2,
            u => u,
        };
        // Mostly the same offset within a GiB as the IOVA (super-pages possible), sometimes skewed;
        // skewed super-page-sized maps are one unit long to keep leaf counts down.
        let skew = match (unit, m.skew) {
            (Unit::G1, 0) => M2,
            (Unit::M2, 0) => K4,
            (Unit::K4, 0 | 1) => M2 + K4,
            _ => 0,
        };
        let units = if skew == 0 { 1 + m.count % 3 } else { 1 };
        let (iova, len) = match unit {
            Unit::K4 => (base + m.g * G1 + m.m * M2 + m.p * K4, m.count * K4),
            Unit::M2 => (base + m.g * G1 + m.m * M2, units * M2),
            Unit::G1 => (base + m.g * G1, units.min(2) * G1),
        };
        // Without 2 MiB pages, a 2 MiB map is 512 leaves already.
        let len = if self.model.sizes.contains(PageSizes::SZ_2M) {
            len
        } else {
            len.min(M2)
        };
        let hpa = m.hpa_g * G1 + (iova % G1) + skew;
        (iova, hpa, len, Access::from_bits_truncate(m.prot))
    }

    /// Checks the whole table against the model and the frame accounting.
    fn check_all(&self) -> Result<(), TestCaseError> {
        let s = scan(&self.pt);
        STATS.with(|c| {
            let mut c = c.borrow_mut();
            c.0 += 1;
            c.1 += s.leaves.len();
            c.2 += s.tables;
        });
        let model: Vec<(u64, Leaf)> = self.model.leaves.iter().map(|(&b, &l)| (b, l)).collect();
        if s.leaves != model {
            let i = s
                .leaves
                .iter()
                .zip(&model)
                .position(|(a, b)| a != b)
                .unwrap_or(s.leaves.len().min(model.len()));
            prop_assert!(
                false,
                "leaves differ at #{i}: table {:x?} model {:x?} (table {} leaves, model {})",
                s.leaves.get(i),
                model.get(i),
                s.leaves.len(),
                model.len()
            );
        }
        prop_assert_eq!(s.tables, self.pt.table_frames());
        prop_assert_eq!(
            self.pt.memory().live_frames(),
            s.tables + self.gather.freed_tables().len()
        );
        Ok(())
    }

    fn check_walk(&self, iova: u64) -> Result<(), TestCaseError> {
        let got = self.pt.walk(Iova::new(iova));
        if iova >> self.model.width != 0 {
            prop_assert_eq!(got, Err(WalkError::BeyondAddressWidth));
            return Ok(());
        }
        match (self.model.leaf_at(iova), got) {
            (Some((base, leaf)), Ok(t)) => {
                prop_assert_eq!(t.iova_page.raw(), base);
                prop_assert_eq!(t.size, leaf.size);
                prop_assert_eq!(t.page.raw(), leaf.hpa);
                prop_assert_eq!(t.prot, leaf.prot);
                prop_assert_eq!(t.hpa(Iova::new(iova)), Some(Hpa::new(leaf.hpa + (iova - base))));
            }
            (None, Err(WalkError::NotPresent { .. })) => {}
            (m, g) => prop_assert!(false, "walk {iova:#x}: model {m:x?}, table {g:?}"),
        }
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Nop => return Ok(()),
            Op::Map(m) => {
                let (iova, hpa, len, prot) = self.map_args(m);
                self.do_map(iova, hpa, len, prot)?;
            }
            Op::MapBad(m, kind) => {
                let (iova, hpa, len, prot) = self.map_args(m);
                let w = self.model.width;
                let (iova, hpa, len, prot) = match kind {
                    0 => (iova + 0x800, hpa, len, prot),
                    1 => (iova, hpa | 0x10, len, prot),
                    2 => (iova, hpa, len + 0x200, prot),
                    3 => (iova, hpa, 0, prot),
                    4 => ((u64::MAX & !(K4 - 1)) - m.p * K4, hpa, len + (m.p + 1) * K4, prot),
                    5 => ((1 << w) - (m.p + 1) * K4, hpa, (m.p + 2) * K4, prot),
                    6 => (iova, (1 << 52) - (m.p + 1) * K4, (m.p + 2) * K4, prot),
                    _ => (iova, hpa, len, prot - Access::RW),
                };
                self.do_map(iova, hpa, len, prot)?;
            }
            Op::Unmap { top, g, m, p, pages } => {
                let start = self.base(*top) + g * G1 + m * M2 + p * K4;
                let last = (start + pages * K4 - 1).min(self.base(*top) + WINDOW - 1);
                self.do_unmap(start, last)?;
            }
            Op::UnmapBig { top, g, m, blocks } => {
                let start = self.base(*top) + g * G1 + m * M2;
                let last = (start + blocks * M2 - 1).min(self.base(*top) + WINDOW - 1);
                self.do_unmap(start, last)?;
            }
            Op::UnmapWindow { top } => {
                let b = self.base(*top);
                self.do_unmap(b, b + WINDOW - 1)?;
            }
            Op::UnmapBad { top, g, p, kind } => {
                let start = self.base(*top) + g * G1 + p * K4;
                let (start, last) = match kind {
                    0 => (start + 0x10, start + 2 * K4 - 1),
                    1 => (start, start + K4),
                    2 => (start, (1 << self.model.width) + p * K4 + K4 - 1),
                    _ => (0, u64::MAX),
                };
                self.do_unmap(start, last)?;
            }
            Op::Walk { top, off } => {
                let iova = self.base(*top) + off;
                self.check_walk(iova)?;
                // Also just past the address width, and a few pages near the samples.
                self.check_walk(iova | (1 << self.model.width))?;
                self.check_walk(iova & !(M2 - 1))?;
                return Ok(());
            }
            Op::Release => {
                // The IOTLB invalidation of gather.range() would happen here.
                prop_assert_eq!(
                    self.gather.range().map(|r| (r.start().raw(), r.last().raw())),
                    self.gathered
                );
                prop_assert_eq!(self.gather.page_sizes(), self.gathered_sizes);
                self.gather.release(self.pt.memory());
                prop_assert!(self.gather.is_empty());
                self.gathered = None;
                self.gathered_sizes = PageSizes::empty();
            }
            Op::Arm(n) => {
                self.pt.memory().fail_nth_alloc(*n);
                self.armed = true;
                return Ok(());
            }
        }
        self.check_all()
    }

    /// Accepts an allocation failure only while one is armed; consumes it.
    fn alloc_failed(&mut self, got: Outcome, want: Outcome) -> Result<bool, TestCaseError> {
        if got == Outcome::Alloc && matches!(want, Outcome::Ok(_)) {
            prop_assert!(
                self.armed && !self.pt.memory().fault_pending(),
                "allocation failure without injection"
            );
            self.armed = false;
            return Ok(true);
        }
        Ok(false)
    }

    fn do_map(&mut self, iova: u64, hpa: u64, len: u64, prot: Access) -> Result<(), TestCaseError> {
        let want = self.model.expect_map(iova, hpa, len, prot);
        let got = outcome(&self.pt.map(Iova::new(iova), Hpa::new(hpa), len, prot), |_| 0);
        if self.alloc_failed(got, want)? {
            return Ok(());
        }
        prop_assert_eq!(
            got,
            want,
            "map {:#x} -> {:#x} len {:#x} {:?}",
            iova,
            hpa,
            len,
            prot
        );
        if got == Outcome::Ok(0) {
            self.model.map(iova, hpa, len, prot);
            // Super-pages were used where they fit: the walk of each step's start sees its size.
            let (mut i, mut h, mut l) = (iova, hpa, len);
            let mut steps = 0;
            while l > 0 && steps < 64 {
                let size = self.model.sizes.largest_fitting(i, h, l).expect("4 KiB fits");
                let t = self
                    .pt
                    .walk(Iova::new(i))
                    .map_err(|e| TestCaseError::fail(format!("walk {i:#x}: {e}")))?;
                prop_assert_eq!((t.size, t.page.raw()), (size, h));
                (i, h, l) = (i + size.bytes(), h + size.bytes(), l - size.bytes());
                steps += 1;
            }
            self.check_walk(iova + len - 1)?;
        }
        Ok(())
    }

    fn do_unmap(&mut self, start: u64, last: u64) -> Result<(), TestCaseError> {
        let want = self.model.expect_unmap(start, last);
        let before = self.gather.freed_tables().len();
        let result = match IovaRange::new(Iova::new(start), Iova::new(last)) {
            Ok(r) => self.pt.unmap(r, &mut self.gather),
            Err(e) => return Err(TestCaseError::fail(format!("bad test range: {e}"))),
        };
        let got = outcome(&result, |b| *b);
        if self.alloc_failed(got, want)? {
            prop_assert_eq!(self.gather.freed_tables().len(), before);
            return Ok(());
        }
        prop_assert_eq!(got, want, "unmap [{:#x}, {:#x}]", start, last);
        if let Outcome::Ok(_) = got {
            if let Some((first, final_, sizes)) = self.model.unmap(start, last) {
                let (s, l) = self
                    .gathered
                    .map_or((first, final_), |(s, l)| (s.min(first), l.max(final_)));
                self.gathered = Some((s, l));
                self.gathered_sizes |= sizes;
            }
            if start > 0 {
                self.check_walk(start - 1)?;
            }
            self.check_walk(start)?;
            self.check_walk(last)?;
            self.check_walk(last.wrapping_add(1))?;
        }
        Ok(())
    }

    /// Unmaps both windows, releases the gather, and checks only the root is left.
    fn finish(mut self) -> Result<(), TestCaseError> {
        self.pt.memory().clear_faults();
        self.armed = false;
        self.do_unmap(0, (1 << self.model.width) - 1)?;
        prop_assert!(self.model.leaves.is_empty());
        self.check_all()?;
        self.gather.release(self.pt.memory());
        prop_assert_eq!(self.pt.table_frames(), 1);
        prop_assert_eq!(self.pt.memory().live_frames(), 1);
        let mem_before_drop = self.pt.memory().allocations();
        prop_assert_eq!(mem_before_drop, self.pt.memory().frees() + 1);
        Ok(())
    }
}

thread_local!(static STATS: std::cell::RefCell<(usize, usize, usize)> = const { std::cell::RefCell::new((0,0,0)) });
fn run_case(levels: Levels, sizes: PageSizes, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(levels, sizes);
    for op in ops {
        h.run(op)?;
    }
    let r = h.finish();
    STATS.with(|c| {
        let c = c.borrow();
        eprintln!(
            "checks {} avg leaves {} avg tables {}",
            c.0,
            c.1 / c.0.max(1),
            c.2 / c.0.max(1)
        );
    });
    r
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

// 256 cases x 400 operations in all, in four tests that run in parallel.
proptest! {
    #![proptest_config(config(96))]
    #[test]
    fn model_four_levels_all_sizes(ops in prop::collection::vec(op(), OPS)) {
        run_case(Levels::Four, PageSizes::all(), &ops)?;
    }
}

proptest! {
    #![proptest_config(config(64))]
    #[test]
    fn model_five_levels_all_sizes(ops in prop::collection::vec(op(), OPS)) {
        run_case(Levels::Five, PageSizes::all(), &ops)?;
    }
}

proptest! {
    #![proptest_config(config(48))]
    #[test]
    fn model_four_levels_no_gigabyte_pages(ops in prop::collection::vec(op(), OPS)) {
        run_case(Levels::Four, PageSizes::SZ_4K | PageSizes::SZ_2M, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(48))]
    #[test]
    fn model_five_levels_4k_only(ops in prop::collection::vec(op(), OPS)) {
        run_case(Levels::Five, PageSizes::SZ_4K, &ops)?;
    }
}
