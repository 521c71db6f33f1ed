//! The unmap guarantee under fire: several threads DMA into a canary page while another thread
//! unmaps it; once `unmap` + `invalidate` return, the canary is never written again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use uvfio_iommu::{DmaPort, Invalidation};
use uvfio_types::{Access, Iova, IovaRange, PageSize};

const WRITERS: usize = 3;
const ROUNDS: u64 = 200;

fn writer(port: DmaPort, target: Arc<AtomicU64>, stop: Arc<AtomicBool>, writes: Arc<AtomicU64>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let iova = Iova::new(target.load(Ordering::Acquire));
        n += 1;
        // Odd and even lengths, one page or across into the next page of the mapping.
        let len = if n % 2 == 0 { 64 } else { 4096 + 64 };
        let buf = vec![(n % 200) as u8 + 1; len];
        if port.write(iova, &buf).is_ok() {
            writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn stress(coherent: bool) {
    let mem = common::memory(64);
    let domain = common::paging(&mem, coherent);
    let target = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let base = domain.port(1);
    let handles: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (port, target, stop, writes) = (base.clone(), target.clone(), stop.clone(), writes.clone());
            thread::spawn(move || writer(port, target, stop, writes))
        })
        .collect();

    let mut dead = Vec::new(); // canary HPAs whose mapping is gone
    let mut snapshots = Vec::new();
    for round in 0..ROUNDS {
        // A fresh two-page canary at a fresh IOVA.
        let canary = mem.alloc_contiguous(2 << 12, PageSize::Size4K).unwrap();
        let iova = Iova::new((round + 1) << 24);
        domain.map(iova, canary.start(), 2 << 12, Access::RW).unwrap();
        target.store(iova.raw(), Ordering::Release);
        let before = writes.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_millis(50);
        while writes.load(Ordering::Relaxed) < before + 4 && Instant::now() < deadline {
            thread::yield_now();
        }
        let range = IovaRange::from_start_len(iova, 2 << 12).unwrap();
        assert_eq!(domain.unmap(range).unwrap(), 2 << 12);
        if !coherent {
            domain.invalidate(Invalidation::Range(range)).unwrap();
        }
        assert!(domain.lookup(iova).is_none() && domain.lookup(iova.checked_add(4096).unwrap()).is_none());
        // From here on, no write may reach the canary: snapshot it now, check it at the end.
        let mut snap = vec![0u8; 2 << 12];
        mem.read(canary.start(), &mut snap).unwrap();
        dead.push(canary);
        snapshots.push(snap);
        // Earlier canaries must be untouched too, while writers keep hammering the dead IOVA.
        if round % 20 == 19 {
            for (c, s) in dead.iter().zip(&snapshots) {
                let mut now = vec![0u8; 2 << 12];
                mem.read(c.start(), &mut now).unwrap();
                assert!(now == *s, "canary {c} written after its unmap returned");
            }
        }
    }
    thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    for (c, s) in dead.iter().zip(&snapshots) {
        let mut now = vec![0u8; 2 << 12];
        mem.read(c.start(), &mut now).unwrap();
        assert!(now == *s, "canary {c} written after its unmap returned");
    }
    assert!(
        writes.load(Ordering::Relaxed) > ROUNDS,
        "writers must actually have hit the canaries"
    );
    let faults = domain.fault_counts();
    assert!(
        faults.total > 0,
        "writers must also have faulted on dead mappings"
    );
}

#[test]
fn canary_never_written_after_unmap_and_invalidate() {
    stress(false);
}

#[test]
fn canary_never_written_after_coherent_unmap() {
    stress(true);
}
