//! Pin counts and locked-memory accounting: fixed cases and a model-based property test.

use proptest::prelude::*;
use rustix::io::Errno;
use std::sync::OnceLock;
use uvfio_memory::{AccountSnapshot, HostMemory, HugePages, MemoryConfig, MemoryError};
use uvfio_types::{Hpa, HpaRange, PageSize};

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn host(ram_bytes: u64, limit: Option<u64>) -> HostMemory {
    HostMemory::new(MemoryConfig {
        ram_bytes,
        huge_pages: HugePages::Never,
        lock_limit_bytes: limit,
    })
    .unwrap()
}

fn pages(start: Hpa, first: u64, n: u64) -> HpaRange {
    HpaRange::from_start_len(start.checked_add(first * PAGE).unwrap(), n * PAGE).unwrap()
}

fn counts(mem: &HostMemory, start: Hpa, n: u64) -> Vec<u32> {
    (0..n)
        .map(|i| mem.pin_count(start.checked_add(i * PAGE).unwrap()).unwrap())
        .collect()
}

#[test]
fn whole_and_partial_pins_of_a_2m_folio() {
    let mem = host(8 * MIB, None);
    let f = mem.alloc(PageSize::Size2M).unwrap();
    mem.pin(pages(f, 10, 2)).unwrap();
    assert_eq!(mem.account().locked_pages, 2);
    mem.pin(pages(f, 0, 512)).unwrap();
    assert_eq!(
        mem.account().locked_pages,
        512,
        "pages 10 and 11 are charged once"
    );
    mem.pin(pages(f, 0, 512)).unwrap();
    assert_eq!(counts(&mem, f, 13)[9..], [2, 3, 3, 2]);
    // Dropping part of a whole pin.
    mem.unpin(pages(f, 100, 1)).unwrap();
    mem.unpin(pages(f, 100, 1)).unwrap();
    assert_eq!(mem.pin_count(f.checked_add(100 * PAGE).unwrap()).unwrap(), 0);
    assert_eq!(mem.account().locked_pages, 511);
    assert!(
        matches!(mem.unpin(pages(f, 0, 512)).unwrap_err(), MemoryError::NotPinned { hpa } if hpa == f.checked_add(100 * PAGE).unwrap())
    );
    mem.unpin(pages(f, 0, 100)).unwrap();
    mem.unpin(pages(f, 0, 100)).unwrap();
    mem.unpin(pages(f, 101, 411)).unwrap();
    mem.unpin(pages(f, 101, 411)).unwrap();
    assert_eq!(mem.account().locked_pages, 2);
    mem.unpin(pages(f, 10, 2)).unwrap();
    assert_eq!(mem.account().locked_pages, 0);
    mem.free(f).unwrap();
}

#[test]
fn a_range_over_many_frames_and_folios_pins_in_one_call() {
    let mem = host(16 * MIB, None);
    let big = mem.alloc_contiguous(4 * MIB, PageSize::Size2M).unwrap();
    let small = mem.alloc_contiguous(3 * MIB, PageSize::Size4K).unwrap();
    assert_eq!(small.start(), big.end().unwrap(), "runs are adjacent");
    let all = HpaRange::new(big.start(), small.last()).unwrap();
    mem.pin(all).unwrap();
    assert_eq!(mem.account().locked_pages, 7 * MIB / PAGE);
    mem.pin(all).unwrap();
    assert_eq!(mem.account().locked_pages, 7 * MIB / PAGE);
    assert_eq!(mem.pin_count(small.last()).unwrap(), 2);
    mem.unpin(all).unwrap();
    mem.unpin(all).unwrap();
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.unpin(all).unwrap_err().errno(), Errno::INVAL);
}

#[test]
fn limit_exhaustion_changes_nothing() {
    let mem = host(8 * MIB, Some(600 * PAGE));
    let f = mem.alloc(PageSize::Size2M).unwrap();
    let frames = mem.alloc_contiguous(200 * PAGE, PageSize::Size4K).unwrap();
    mem.pin(pages(frames.start(), 0, 100)).unwrap();
    mem.pin(pages(f, 0, 10)).unwrap();
    let before = mem.account();
    assert_eq!(
        before,
        AccountSnapshot {
            locked_pages: 110,
            limit_pages: Some(600)
        }
    );
    // 512 - 10 new pages in the folio + 100 new frames = 602 > 600 - 110.
    let err = mem.pin(HpaRange::new(f, frames.last()).unwrap()).unwrap_err();
    assert!(matches!(
        err,
        MemoryError::LimitExceeded {
            requested_pages: 602,
            locked_pages: 110,
            limit_pages: 600
        }
    ));
    assert_eq!(err.errno(), Errno::NOMEM);
    assert_eq!(mem.account(), before);
    assert_eq!(counts(&mem, f, 512).iter().filter(|&&c| c > 0).count(), 10);
    assert_eq!(
        counts(&mem, frames.start(), 200)
            .iter()
            .filter(|&&c| c > 0)
            .count(),
        100
    );
    // Whole-folio pin past the limit, too.
    mem.set_lock_limit(Some(300 * PAGE));
    assert_eq!(mem.pin(pages(f, 0, 512)).unwrap_err().errno(), Errno::NOMEM);
    assert_eq!(mem.account().locked_pages, 110);
    // Pinning pages that are already charged costs nothing, even over the limit.
    mem.set_lock_limit(Some(0));
    mem.pin(pages(f, 0, 10)).unwrap();
    assert_eq!(
        mem.account(),
        AccountSnapshot {
            locked_pages: 110,
            limit_pages: Some(0)
        }
    );
    mem.set_lock_limit(None);
    mem.pin(pages(f, 0, 512)).unwrap();
    assert_eq!(mem.account().locked_pages, 612);
}

#[test]
fn unpin_of_an_unpinned_page_changes_nothing() {
    let mem = host(8 * MIB, None);
    let run = mem.alloc_contiguous(8 * PAGE, PageSize::Size4K).unwrap();
    mem.pin(pages(run.start(), 0, 3)).unwrap();
    mem.pin(pages(run.start(), 4, 4)).unwrap();
    let err = mem.unpin(run).unwrap_err();
    assert!(
        matches!(err, MemoryError::NotPinned { hpa } if hpa == run.start().checked_add(3 * PAGE).unwrap())
    );
    assert_eq!(err.errno(), Errno::INVAL);
    assert_eq!(counts(&mem, run.start(), 8), [1, 1, 1, 0, 1, 1, 1, 1]);
    assert_eq!(mem.account().locked_pages, 7);
    let f = mem.alloc(PageSize::Size2M).unwrap();
    assert_eq!(mem.unpin(pages(f, 0, 512)).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(mem.unpin(pages(f, 5, 1)).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(mem.account().locked_pages, 7);
}

#[test]
fn free_while_pinned_is_busy() {
    let mem = host(8 * MIB, None);
    let frame = mem.alloc(PageSize::Size4K).unwrap();
    let folio = mem.alloc(PageSize::Size2M).unwrap();
    mem.pin(pages(frame, 0, 1)).unwrap();
    mem.pin(pages(folio, 300, 1)).unwrap();
    for hpa in [frame, folio] {
        let err = mem.free(hpa).unwrap_err();
        assert_eq!(err.errno(), Errno::BUSY, "{err}");
    }
    assert!(
        matches!(mem.free(folio).unwrap_err(), MemoryError::Busy { hpa } if hpa == folio.checked_add(300 * PAGE).unwrap())
    );
    let run = mem.alloc_contiguous(4 * PAGE, PageSize::Size4K).unwrap();
    mem.pin(pages(run.start(), 3, 1)).unwrap();
    assert_eq!(mem.free_contiguous(run).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(
        mem.stats().allocated_4k_bytes,
        5 * PAGE,
        "nothing of the run was freed"
    );
    mem.unpin(pages(run.start(), 3, 1)).unwrap();
    mem.free_contiguous(run).unwrap();
    mem.unpin(pages(frame, 0, 1)).unwrap();
    mem.unpin(pages(folio, 300, 1)).unwrap();
    mem.free(frame).unwrap();
    mem.free(folio).unwrap();
    assert_eq!(mem.account().locked_pages, 0);
}

#[test]
fn pins_outside_allocated_memory_fail() {
    let mem = host(8 * MIB, None);
    let frame = mem.alloc(PageSize::Size4K).unwrap();
    let free_neighbour = frame.checked_add(PAGE).unwrap();
    let cases = [
        (pages(frame, 0, 2), Errno::FAULT),
        (pages(free_neighbour, 0, 1), Errno::FAULT),
        (
            HpaRange::from_start_len(Hpa::new(0x1000), PAGE).unwrap(),
            Errno::FAULT,
        ),
        (
            HpaRange::from_start_len(Hpa::new(1 << 40), PAGE).unwrap(),
            Errno::FAULT,
        ),
        (HpaRange::from_start_len(frame, 100).unwrap(), Errno::INVAL),
        (
            HpaRange::from_start_len(frame.checked_add(1).unwrap(), PAGE).unwrap(),
            Errno::INVAL,
        ),
        (
            HpaRange::from_start_len(frame.checked_add(7 * MIB).unwrap(), 2 * MIB).unwrap(),
            Errno::FAULT,
        ),
        (
            HpaRange::new(Hpa::new(u64::MAX - PAGE + 1), Hpa::MAX).unwrap(),
            Errno::FAULT,
        ),
    ];
    for (range, errno) in cases {
        assert_eq!(mem.pin(range).unwrap_err().errno(), errno, "pin {range}");
        assert_eq!(mem.unpin(range).unwrap_err().errno(), errno, "unpin {range}");
    }
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.pin_count(frame).unwrap(), 0);
    assert_eq!(mem.pin_count(free_neighbour).unwrap_err().errno(), Errno::FAULT);
    assert_eq!(mem.pin_count(Hpa::new(5)).unwrap_err().errno(), Errno::FAULT);
}

// ---- model-based property test ----------------------------------------------------------------

/// An area of the fixture: `pages` pages from `start`, of which the first `allocated` are allocated.
#[derive(Debug, Clone, Copy)]
struct Area {
    start: Hpa,
    pages: u64,
    allocated: u64,
}

/// One host shared by every case: a 1 GiB folio, three 2 MiB folios followed directly by 600 4 KiB
/// frames (and 50 free frames after them), and an adopted buffer. Each case starts and ends with
/// nothing pinned.
struct Fixture {
    mem: HostMemory,
    areas: [Area; 3],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mem = host(2 * GIB, None);
        let g = mem.alloc(PageSize::Size1G).unwrap();
        let m = mem.alloc_contiguous(6 * MIB, PageSize::Size2M).unwrap();
        let s = mem.alloc_contiguous(600 * PAGE, PageSize::Size4K).unwrap();
        assert_eq!(s.start(), m.end().unwrap());
        let layout = std::alloc::Layout::from_size_align(64 * PAGE as usize, PAGE as usize).unwrap();
        // SAFETY: a non-zero-size layout; the buffer is leaked, so it outlives the fixture.
        let buf = unsafe { std::alloc::alloc_zeroed(layout) };
        // SAFETY: `buf` is 64 pages of live, page-aligned memory that is never freed or touched
        // through references.
        let a = unsafe { mem.adopt(buf, 64 * PAGE) }.unwrap();
        let areas = [
            Area {
                start: g,
                pages: GIB / PAGE,
                allocated: GIB / PAGE,
            },
            Area {
                start: m.start(),
                pages: 1536 + 650,
                allocated: 1536 + 600,
            },
            Area {
                start: a.start(),
                pages: 64,
                allocated: 64,
            },
        ];
        Fixture { mem, areas }
    })
}

#[derive(Debug, Clone)]
enum Op {
    Pin(usize, u64, u64),
    Unpin(usize, u64, u64),
    Limit(Option<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    let range = prop_oneof![
        // The whole 1 GiB folio, or a small piece near either end of it.
        Just((0usize, 0u64, GIB / PAGE)),
        (0u64..2048, 1u64..600).prop_map(|(s, n)| (0usize, s, n)),
        (0u64..2048, 1u64..600).prop_map(|(s, n)| (0usize, GIB / PAGE - 1 - s, n.min(s + 1))),
        // Anything in the mixed area (including whole 2 MiB folios and the free tail).
        (0u64..2186, 1u64..2186).prop_map(|(s, n)| (1usize, s, n.min(2186 - s))),
        (0u64..4, 1u64..4).prop_map(|(f, n)| (1usize, f * 512, (n * 512).min(2186 - f * 512))),
        (0u64..64, 1u64..64).prop_map(|(s, n)| (2usize, s, n.min(64 - s))),
    ];
    prop_oneof![
        4 => range.clone().prop_map(|(a, s, n)| Op::Pin(a, s, n)),
        3 => range.prop_map(|(a, s, n)| Op::Unpin(a, s, n)),
        1 => prop_oneof![Just(None), (0u64..3000).prop_map(Some)].prop_map(Op::Limit),
    ]
}

struct Model {
    counts: [Vec<u32>; 3],
    locked: u64,
}

impl Model {
    fn new(fx: &Fixture) -> Self {
        Model {
            counts: fx.areas.map(|a| vec![0; a.pages as usize]),
            locked: 0,
        }
    }
}

fn check_pages(fx: &Fixture, model: &Model, area: usize, first: u64, n: u64) -> Result<(), TestCaseError> {
    let a = fx.areas[area];
    for p in first..first + n {
        let hpa = a.start.checked_add(p * PAGE).unwrap();
        let got = fx.mem.pin_count(hpa);
        if p < a.allocated {
            prop_assert_eq!(
                got.unwrap(),
                model.counts[area][p as usize],
                "area {} page {}",
                area,
                p
            );
        } else {
            prop_assert_eq!(got.unwrap_err().errno(), Errno::FAULT);
        }
    }
    Ok(())
}

fn apply(fx: &Fixture, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Limit(extra) => {
            let limit = extra.map(|e| (model.locked + e) * PAGE);
            fx.mem.set_lock_limit(limit);
        }
        Op::Pin(area, first, n) | Op::Unpin(area, first, n) => {
            let a = fx.areas[area];
            let range = pages(a.start, first, n);
            let counts = &mut model.counts[area][first as usize..(first + n) as usize];
            let outside = first + n > a.allocated;
            let pin = matches!(op, Op::Pin(..));
            let result = if pin {
                fx.mem.pin(range)
            } else {
                fx.mem.unpin(range)
            };
            if outside {
                prop_assert_eq!(result.unwrap_err().errno(), Errno::FAULT);
            } else if pin {
                let fresh = counts.iter().filter(|&&c| c == 0).count() as u64;
                let limit = fx.mem.account().limit_pages;
                if fresh > 0 && limit.is_some_and(|l| model.locked + fresh > l) {
                    prop_assert_eq!(result.unwrap_err().errno(), Errno::NOMEM);
                } else {
                    result.unwrap();
                    counts.iter_mut().for_each(|c| *c += 1);
                    model.locked += fresh;
                }
            } else if counts.contains(&0) {
                prop_assert_eq!(result.unwrap_err().errno(), Errno::INVAL);
            } else {
                result.unwrap();
                counts.iter_mut().for_each(|c| *c -= 1);
                model.locked -= counts.iter().filter(|&&c| c == 0).count() as u64;
            }
            prop_assert_eq!(fx.mem.account().locked_pages, model.locked);
            // The range and its neighbours; for big ranges a sample.
            let lo = first.saturating_sub(1);
            let hi = (first + n + 1).min(a.pages);
            if hi - lo <= 4096 {
                check_pages(fx, model, area, lo, hi - lo)?;
            } else {
                for p in (lo..hi).step_by(997) {
                    check_pages(fx, model, area, p, 1)?;
                }
            }
        }
    }
    Ok(())
}

/// Unpin everything the model says is pinned, a maximal run at a time.
fn reset(fx: &Fixture, model: &mut Model) {
    fx.mem.set_lock_limit(None);
    for (area, counts) in model.counts.iter_mut().enumerate() {
        let start = fx.areas[area].start;
        while let Some(first) = counts.iter().position(|&c| c > 0) {
            let n = counts[first..]
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(counts.len() - first);
            fx.mem.unpin(pages(start, first as u64, n as u64)).unwrap();
            counts[first..first + n].iter_mut().for_each(|c| *c -= 1);
        }
    }
    model.locked = 0;
    assert_eq!(fx.mem.account().locked_pages, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pin_counts_and_account_follow_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let fx = fixture();
        let mut model = Model::new(fx);
        let outcome = ops.iter().try_for_each(|op| apply(fx, &mut model, op));
        // Whole-area comparison before cleaning up.
        if outcome.is_ok() {
            for area in 0..3 {
                let pages = fx.areas[area].allocated;
                let step = if pages > 10_000 { 61 } else { 1 };
                for p in (0..pages).step_by(step) {
                    check_pages(fx, &model, area, p, 1)?;
                }
            }
            let nonzero: u64 = model.counts.iter().map(|c| c.iter().filter(|&&x| x > 0).count() as u64).sum();
            prop_assert_eq!(nonzero, model.locked, "each page charged once");
        }
        reset(fx, &mut model);
        outcome?;
    }
}
