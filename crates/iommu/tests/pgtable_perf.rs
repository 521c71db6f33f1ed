//! Rough timings of the page table over the test memory (not a benchmark: those live in
//! `crates/bench`). Ignored by default; run with
//! `cargo test --release -p uvfio-iommu --test pgtable_perf -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;
use uvfio_iommu::pgtable::testmem::TestMemory;
use uvfio_iommu::pgtable::{Gather, PageTable, PageTableConfig};
use uvfio_types::{Access, Hpa, Iova, IovaRange};

const G1: u64 = 1 << 30;

#[test]
#[ignore = "timing; run in release"]
fn map_unmap_walk_timings() {
    let pt = PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap();
    let mut gather = Gather::new();
    let range = IovaRange::from_start_len(Iova::new(G1), G1).unwrap();
    // HPA 4 KiB off a 2 MiB boundary: every page is a 4 KiB leaf.
    let (iova, hpa) = (Iova::new(G1), Hpa::new(0x1000));
    let pages = G1 >> 12;
    for round in 0..3 {
        let t = Instant::now();
        pt.map(iova, hpa, G1, Access::RW).unwrap();
        let map_ns = t.elapsed().as_nanos() as f64 / pages as f64;

        let mut x = 0x1234_5678_9abc_def1u64;
        let n = 10_000_000u64;
        let t = Instant::now();
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = Iova::new(G1 + (x & (G1 - 1)));
            black_box(pt.walk(a).ok());
        }
        let walk_ns = t.elapsed().as_nanos() as f64 / n as f64;

        let t = Instant::now();
        assert_eq!(pt.unmap(range, &mut gather).unwrap(), G1);
        let unmap_ns = t.elapsed().as_nanos() as f64 / pages as f64;
        gather.release(pt.memory());
        println!(
            "round {round}: map 1 GiB of 4 KiB pages {map_ns:.2} ns/page, unmap {unmap_ns:.2} ns/page, \
             random walk {walk_ns:.1} ns"
        );
    }
    let t = Instant::now();
    for i in 0..512u64 {
        pt.map(Iova::new(i * G1), Hpa::new(i * G1), G1, Access::RW)
            .unwrap();
    }
    println!(
        "map 512 x 1 GiB super-pages: {:.0} ns each",
        t.elapsed().as_nanos() as f64 / 512.0
    );
    assert_eq!(pt.table_frames(), 2);
}
