//! Lock-free walks racing with writers: a walker sees either no translation or a correct one, never
//! a torn or foreign entry, and never a freed table while the unlinked frames (unmapped, or
//! replaced by a super-page) wait in the gather.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use uvfio_iommu::pgtable::testmem::TestMemory;
use uvfio_iommu::pgtable::{Gather, PageTable, PageTableConfig, WalkError};
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize};

const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
/// Every mapping in this test maps IOVA `x` to HPA `x + SHIFT`, whatever the page size.
const SHIFT: u64 = 7 * G1;

#[test]
fn walkers_see_old_or_new_never_garbage() {
    let pt = Arc::new(PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap());
    // A stable mapping that must translate throughout.
    let stable = 5 * G1;
    pt.map(Iova::new(stable), Hpa::new(stable + SHIFT), 4 * M2, Access::READ)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let walkers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (pt, stop) = (pt.clone(), stop.clone());
            thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
                let mut hits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly the churned GiBs 0..2, sometimes the stable range.
                    let iova = if x & 15 == 0 {
                        stable + (x >> 8) % (4 * M2)
                    } else {
                        (x >> 8) % (2 * G1)
                    };
                    match pt.walk(Iova::new(iova)) {
                        Ok(t) => {
                            assert_eq!(
                                t.hpa(Iova::new(iova)),
                                Some(Hpa::new(iova + SHIFT)),
                                "{iova:#x}: {t:?}"
                            );
                            let want = if iova >= stable { Access::READ } else { Access::RW };
                            assert_eq!(t.prot, want);
                            hits += 1;
                        }
                        Err(WalkError::NotPresent { .. }) => assert!(iova < stable, "stable {iova:#x} lost"),
                        Err(e) => panic!("walk {iova:#x}: {e}"),
                    }
                }
                hits
            })
        })
        .collect();

    // The writer: map GiB-, MiB- and page-sized pieces, punch holes (splitting super-pages), unmap
    // everything; the unlinked tables are released only after the walkers have stopped, since this
    // test has no IOTLB invalidation to wait for.
    let mut gather = Gather::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..1500u64 {
        let g = (round % 2) * G1;
        pt.map(Iova::new(g), Hpa::new(g + SHIFT), G1, Access::RW).unwrap();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let start = g + (((x >> 12) % (G1 >> 12)) << 12);
            let len = (1 + (x >> 40) % 600) << 12;
            let range = IovaRange::from_start_len(Iova::new(start), len.min(g + G1 - start)).unwrap();
            pt.unmap(range, &mut gather).unwrap();
        }
        let all = IovaRange::from_start_len(Iova::new(g), G1).unwrap();
        pt.unmap(all, &mut gather).unwrap();
        // Pieces of 2 MiB and 4 KiB, then gone again.
        pt.map(
            Iova::new(g + M2),
            Hpa::new(g + M2 + SHIFT),
            3 * M2 + 0x5000,
            Access::RW,
        )
        .unwrap();
        assert_eq!(pt.walk(Iova::new(g + 2 * M2)).unwrap().size, PageSize::Size2M);
        pt.unmap(all, &mut gather).unwrap();
        // A page, unmapped (its tables stay, emptied), then a 2 MiB page in their place: the
        // emptied level-1 table is unlinked while walkers may be reading it.
        let slot = g + (5 + round % 7) * M2;
        pt.map(
            Iova::new(slot + 0x3000),
            Hpa::new(slot + 0x3000 + SHIFT),
            0x1000,
            Access::RW,
        )
        .unwrap();
        pt.unmap(
            IovaRange::from_start_len(Iova::new(slot + 0x3000), 0x1000).unwrap(),
            &mut gather,
        )
        .unwrap();
        pt.map(Iova::new(slot), Hpa::new(slot + SHIFT), M2, Access::RW)
            .unwrap();
        let waiting = gather.freed_tables().len();
        pt.take_retired(&mut gather);
        assert_eq!(
            gather.freed_tables().len(),
            waiting + 1,
            "the level-1 table was replaced"
        );
        assert_eq!(pt.walk(Iova::new(slot)).unwrap().size, PageSize::Size2M);
        pt.unmap(all, &mut gather).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let hits: u64 = walkers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(hits > 0);
    gather.release(pt.memory());
    // Root, the level-3 table and the level-2 table holding the stable 2 MiB leaves.
    assert_eq!(pt.table_frames(), 3);
    assert_eq!(pt.memory().live_frames(), 3);
}
