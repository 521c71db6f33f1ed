//! Timing smoke test of the hot paths (run with `cargo test --release -p uvfio-memory --test perf
//! -- --ignored --nocapture`); the benchmark proper lives in the bench crate.

use std::hint::black_box;
use std::time::Instant;
use uvfio_memory::{HostMemory, HugePages, MemoryConfig};
use uvfio_types::{HpaRange, PageSize};

const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;

fn time<F: FnMut()>(what: &str, per: u64, mut f: F) {
    let t = Instant::now();
    f();
    let ns = t.elapsed().as_nanos() as f64 / per as f64;
    println!("{what:<48} {ns:>10.1} ns");
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn hot_paths() {
    let mem = HostMemory::new(MemoryConfig {
        ram_bytes: 4 * GIB,
        huge_pages: HugePages::Never,
        lock_limit_bytes: None,
    })
    .unwrap();
    let n4k = GIB / PAGE;
    let frames = mem.alloc_contiguous(GIB, PageSize::Size4K).unwrap();
    let page =
        |i: u64| HpaRange::from_start_len(frames.start().checked_add(i * PAGE).unwrap(), PAGE).unwrap();
    time("pin 4K frame, one call per page", n4k, || {
        (0..n4k).for_each(|i| mem.pin(page(i)).unwrap())
    });
    time("unpin 4K frame, one call per page", n4k, || {
        (0..n4k).for_each(|i| mem.unpin(page(i)).unwrap())
    });
    time("pin 1 GiB of 4K frames in one call (per page)", n4k, || {
        mem.pin(frames).unwrap()
    });
    time("unpin 1 GiB of 4K frames in one call (per page)", n4k, || {
        mem.unpin(frames).unwrap()
    });

    let chunks = mem.alloc_contiguous(GIB, PageSize::Size2M).unwrap();
    let chunk =
        |i: u64| HpaRange::from_start_len(chunks.start().checked_add(i << 21).unwrap(), 1 << 21).unwrap();
    time("pin 2M folio (per folio)", 512, || {
        (0..512).for_each(|i| mem.pin(chunk(i)).unwrap())
    });
    time("unpin 2M folio (per folio)", 512, || {
        (0..512).for_each(|i| mem.unpin(chunk(i)).unwrap())
    });

    let g = mem.alloc(PageSize::Size1G).unwrap();
    let whole = HpaRange::from_start_len(g, GIB).unwrap();
    time("pin 1G folio", 1, || mem.pin(whole).unwrap());
    time("unpin 1G folio", 1, || mem.unpin(whole).unwrap());
    let gpage = |i: u64| HpaRange::from_start_len(g.checked_add(i * PAGE).unwrap(), PAGE).unwrap();
    time("pin 4K inside a 1G folio (per page)", n4k, || {
        (0..n4k).for_each(|i| mem.pin(gpage(i)).unwrap())
    });
    time("unpin 4K inside a 1G folio (per page)", n4k, || {
        (0..n4k).for_each(|i| mem.unpin(gpage(i)).unwrap())
    });
    assert_eq!(mem.account().locked_pages, 0);

    let w = mem.ram();
    let hpa = frames.start().checked_add(12345 * PAGE).unwrap();
    time("host_ptr in RAM", 10_000_000, || {
        for _ in 0..10_000_000 {
            black_box(mem.host_ptr(black_box(hpa), 8).unwrap());
        }
    });
    time("RamWindow::ptr_of", 10_000_000, || {
        for _ in 0..10_000_000 {
            black_box(w.ptr_of(black_box(hpa), 8));
        }
    });
    let warm: Vec<_> = (0..1024).map(|_| mem.alloc_table_frame().unwrap()).collect();
    warm.into_iter().for_each(|f| mem.free_table_frame(f));
    time("alloc_table_frame + free_table_frame", 1_000_000, || {
        for _ in 0..1_000_000 {
            let f = mem.alloc_table_frame().unwrap();
            mem.free_table_frame(black_box(f));
        }
    });
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn big_folio_alloc_and_free() {
    let mem = HostMemory::new(MemoryConfig {
        ram_bytes: GIB,
        huge_pages: HugePages::Never,
        lock_limit_bytes: None,
    })
    .unwrap();
    for ps in [PageSize::Size1G, PageSize::Size2M] {
        for round in 0..2 {
            let t = Instant::now();
            let g = mem.alloc(ps).unwrap();
            let a = t.elapsed();
            let t = Instant::now();
            mem.free(g).unwrap();
            println!("{ps} round {round}: alloc {a:?}, free {:?}", t.elapsed());
        }
    }
    let t = Instant::now();
    mem.trim().unwrap();
    println!("trim {:?}", t.elapsed());
}
