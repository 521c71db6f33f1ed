//! Model-based tests of the VT-d second-stage page table: random sequences of map / unmap / walk /
//! release / injected allocation failures, checked after every operation against a plain model
//! that knows every leaf (IOVA, size, HPA, permissions), and against an independent scan of the
//! table frames (entry encoding, frame accounting; an emptied table may stay linked, as in Linux,
//! until an unmap covers it whole or a super-page takes its place). The model and the scanner are
//! in `pgtable_reference.rs`.

#[path = "pgtable_reference.rs"]
mod reference;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};
use reference::{COVERAGE, G1, K4, M2, Model, Outcome, cover, outcome, scan};
use std::collections::BTreeMap;
use uvfio_iommu::pgtable::testmem::TestMemory;
use uvfio_iommu::pgtable::{Gather, Levels, PageTable, PageTableConfig, WalkError};
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSizes};
/// Each window is 4 GiB: one at the bottom of the IOVA space, one ending at the address width.
const WINDOW: u64 = 4 * G1;
const OPS: usize = 400;

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

/// Anywhere in a window, or near where the maps go.
fn walk_offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..WINDOW,
        (0u64..4, hot_m(), 0u64..M2).prop_map(|(g, m, off)| g * G1 + m * M2 + off),
    ]
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
        // Mostly R and/or W, with EXEC / PRIV thrown in; sometimes anything (no R/W: refused).
        prop_oneof![8 => (1u8..4, 0u8..4).prop_map(|(rw, xp)| rw | xp << 2), 1 => 0u8..16],
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
        20 => (any::<bool>(), walk_offset()).prop_map(|(top, off)| Op::Walk { top, off }),
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
    /// The range the current operation changed, if it succeeded and changed one.
    touched: Option<(u64, u64)>,
    /// Whether the current operation was refused or failed.
    failed: bool,
    steps: usize,
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
            touched: None,
            failed: false,
            steps: 0,
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

    /// Checks the leaves overlapping `[lo, last]` against the model, the structure of every table
    /// on the way, and the frame accounting; counts the tables too when the range is everything.
    fn check(&self, lo: u64, last: u64) -> Result<(), TestCaseError> {
        let s = scan(&self.pt, lo, last)?;
        let model = self.model.overlapping(lo, last);
        if s.leaves != model {
            let i = s
                .leaves
                .iter()
                .zip(&model)
                .position(|(a, b)| a != b)
                .unwrap_or(s.leaves.len().min(model.len()));
            prop_assert!(
                false,
                "leaves in [{lo:#x}, {last:#x}] differ at #{i}: table {:x?} model {:x?} (table {} leaves, model {})",
                s.leaves.get(i),
                model.get(i),
                s.leaves.len(),
                model.len()
            );
        }
        if (lo, last) == (0, u64::MAX) {
            prop_assert_eq!(s.tables, self.pt.table_frames());
        }
        prop_assert_eq!(
            self.pt.memory().live_frames(),
            self.pt.table_frames() + self.gather.freed_tables().len()
        );
        Ok(())
    }

    fn check_all(&self) -> Result<(), TestCaseError> {
        self.check(0, u64::MAX)
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
                cover("walk hit");
            }
            (None, Err(WalkError::NotPresent { .. })) => cover("walk miss"),
            (m, g) => prop_assert!(false, "walk {iova:#x}: model {m:x?}, table {g:?}"),
        }
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.failed = false;
        self.touched = None;
        cover("op");
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
                    4 => (!(K4 - 1) - m.p * K4, hpa, len + (m.p + 1) * K4, prot),
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
                cover("release");
                self.gathered = None;
                self.gathered_sizes = PageSizes::empty();
            }
            Op::Arm(n) => {
                self.pt.memory().fail_nth_alloc(*n);
                self.armed = true;
                return Ok(());
            }
        }
        // After a refusal or failure, and every 8th operation: everything (nothing else changed?).
        // Otherwise the GiB-aligned region around the change, which holds every entry it can touch.
        self.steps += 1;
        match (self.failed, self.touched.take()) {
            (false, Some((lo, last))) if self.steps % 8 != 0 => self.check(lo & !(G1 - 1), last | (G1 - 1)),
            _ => self.check_all(),
        }
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
        // As `Domain::map` does: emptied tables a super-page replaced join the batch.
        let waiting = self.gather.freed_tables().len();
        self.pt.take_retired(&mut self.gather);
        if self.gather.freed_tables().len() > waiting {
            cover("map replaced an emptied table");
        }
        self.failed = got != Outcome::Ok(0);
        cover(match got {
            Outcome::Ok(_) => "map ok",
            Outcome::Exists(_) => "map exists",
            Outcome::Misaligned => "map misaligned",
            Outcome::Empty => "map empty",
            Outcome::Beyond => "map beyond width",
            Outcome::HpaOutOfRange => "map hpa out of range",
            Outcome::NoPermission => "map no permission",
            Outcome::Alloc => "map alloc failure",
            _ => "map other",
        });
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
            self.touched = Some((iova, iova + len - 1));
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
        self.failed = !matches!(got, Outcome::Ok(_));
        cover(match got {
            Outcome::Ok(0) => "unmap nothing",
            Outcome::Ok(_) => "unmap bytes",
            Outcome::MisalignedRange => "unmap misaligned",
            Outcome::Beyond => "unmap beyond width",
            Outcome::Alloc => "unmap alloc failure",
            _ => "unmap other",
        });
        if self.gather.freed_tables().len() > before {
            cover("unmap frees tables");
        }
        if self.alloc_failed(got, want)? {
            prop_assert_eq!(self.gather.freed_tables().len(), before);
            return Ok(());
        }
        prop_assert_eq!(got, want, "unmap [{:#x}, {:#x}]", start, last);
        if let Outcome::Ok(_) = got {
            self.touched = Some((start, last));
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

fn run_case(levels: Levels, sizes: PageSizes, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(levels, sizes);
    for op in ops {
        h.run(op)?;
    }
    h.finish()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

/// Runs `cases` random sequences of `OPS` operations, then checks they exercised every `required`
/// path (so a change to the generators cannot quietly stop testing one).
fn run_model(levels: Levels, sizes: PageSizes, cases: u32, required: &[&str]) {
    COVERAGE.with(|c| c.borrow_mut().clear());
    let mut runner = proptest::test_runner::TestRunner::new(config(cases));
    let strategy = prop::collection::vec(op(), OPS);
    if let Err(e) = runner.run(&strategy, |ops| run_case(levels, sizes, &ops)) {
        panic!("{e}");
    }
    let coverage = COVERAGE.with(|c| c.borrow().clone());
    println!("{levels:?} {sizes:?}: {coverage:?}");
    assert_op_count(&coverage, cases);
    for what in required {
        assert!(
            coverage.get(what).copied().unwrap_or(0) > 0,
            "never exercised: {what} ({coverage:?})"
        );
    }
}

fn assert_op_count(coverage: &BTreeMap<&'static str, u64>, cases: u32) {
    assert_eq!(coverage.get("op").copied(), Some(u64::from(cases) * OPS as u64));
}

/// Paths every configuration must exercise.
const COMMON: &[&str] = &[
    "map ok",
    "map exists",
    "map misaligned",
    "map empty",
    "map beyond width",
    "map hpa out of range",
    "map no permission",
    "map alloc failure",
    "unmap bytes",
    "unmap nothing",
    "unmap misaligned",
    "unmap beyond width",
    "unmap frees tables",
    "top window",
    "last page",
    "walk hit",
    "walk miss",
    "release",
];

// 256 cases x 400 operations = 102 400 in all, in four tests that run in parallel.
#[test]
fn model_four_levels_all_sizes() {
    let extra = [
        "leaf 1G",
        "leaf 2M",
        "split 1G",
        "split 2M",
        "unmap alloc failure",
        "map replaced an emptied table",
    ];
    run_model(Levels::Four, PageSizes::all(), 96, &[COMMON, &extra].concat());
}

#[test]
fn model_five_levels_all_sizes() {
    let extra = [
        "leaf 1G",
        "leaf 2M",
        "split 1G",
        "split 2M",
        "unmap alloc failure",
        "map replaced an emptied table",
    ];
    run_model(Levels::Five, PageSizes::all(), 64, &[COMMON, &extra].concat());
}

#[test]
fn model_four_levels_no_gigabyte_pages() {
    let extra = [
        "leaf 2M",
        "split 2M",
        "unmap alloc failure",
        "map replaced an emptied table",
    ];
    run_model(
        Levels::Four,
        PageSizes::SZ_4K | PageSizes::SZ_2M,
        48,
        &[COMMON, &extra].concat(),
    );
}

#[test]
fn model_five_levels_4k_only() {
    run_model(Levels::Five, PageSizes::SZ_4K, 48, COMMON);
}
