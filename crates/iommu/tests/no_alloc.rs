//! "No heap allocation per map in steady state": pin + map + unmap + invalidate + unpin, repeated,
//! allocate nothing once two rounds have warmed the page-table frames, the gather and the
//! allocator's free lists. A counting global allocator (this test binary only) checks it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use uvfio_iommu::Invalidation;
use uvfio_types::{Access, Iova, IovaRange, PageSize};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn map_and_unmap_allocate_nothing_in_steady_state() {
    let mem = common::memory(2048);
    let domain = common::paging(&mem, false);
    let cases = [
        (
            mem.alloc_contiguous(64 << 20, PageSize::Size4K).unwrap(),
            64u64 << 20,
        ),
        (
            mem.alloc_contiguous(64 << 20, PageSize::Size2M).unwrap(),
            64 << 20,
        ),
        (mem.alloc_contiguous(1 << 30, PageSize::Size1G).unwrap(), 1 << 30),
    ];
    let iova = Iova::new(1 << 40);
    let range_of = |len| IovaRange::from_start_len(iova, len).unwrap();
    let round = || {
        for (buf, len) in &cases {
            mem.pin(*buf).unwrap();
            domain.map(iova, buf.start(), *len, Access::RW).unwrap();
            assert_eq!(domain.unmap(range_of(*len)).unwrap(), *len);
            domain.invalidate(Invalidation::Range(range_of(*len))).unwrap();
            mem.unpin(*buf).unwrap();
        }
    };
    // Warm-up: frames split, free lists grow, and both of the domain's gathers (the one unmaps fill
    // and the one an invalidation frees, which swap) reach their size.
    round();
    round();
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..5 {
        round();
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "heap allocations in steady state"
    );
    assert_eq!(mem.account().locked_pages, 0);
}
