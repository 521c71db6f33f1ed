//! Frame allocation: every folio size, exhaustion, zeroing on reuse, contiguous runs, table frames.

use rustix::io::Errno;
use uvfio_memory::{HostMemory, HugePages, MemoryConfig, MemoryError, RAM_BASE};
use uvfio_types::{Hpa, HpaRange, PageSize};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn host(ram_bytes: u64) -> HostMemory {
    HostMemory::new(MemoryConfig {
        ram_bytes,
        huge_pages: HugePages::Never,
        lock_limit_bytes: None,
    })
    .unwrap()
}

fn range(start: Hpa, len: u64) -> HpaRange {
    HpaRange::from_start_len(start, len).unwrap()
}

fn fill(mem: &HostMemory, hpa: Hpa, len: u64, byte: u8) {
    mem.write(hpa, &vec![byte; len as usize]).unwrap();
}

fn is_zero(mem: &HostMemory, hpa: Hpa, len: u64) -> bool {
    let mut buf = vec![1u8; len as usize];
    mem.read(hpa, &mut buf).unwrap();
    buf.iter().all(|&b| b == 0)
}

#[test]
fn config_is_validated() {
    let bad = |ram_bytes| {
        HostMemory::new(MemoryConfig {
            ram_bytes,
            ..MemoryConfig::default()
        })
        .unwrap_err()
    };
    assert_eq!(bad(0).errno(), Errno::INVAL);
    assert_eq!(bad(3 * MIB).errno(), Errno::INVAL);
    assert!(matches!(
        bad(u64::MAX - (2 * MIB - 1)),
        MemoryError::InvalidLength { .. }
    ));
    let d = MemoryConfig::default();
    assert_eq!(
        (d.ram_bytes, d.huge_pages, d.lock_limit_bytes),
        (64 * GIB, HugePages::Auto, None)
    );
}

#[test]
fn default_config_reserves_64_gib_sparsely() {
    let mem = HostMemory::new(MemoryConfig::default()).unwrap();
    let w = mem.ram();
    assert_eq!((w.base, w.len), (RAM_BASE, 64 * GIB));
    let a = mem.alloc(PageSize::Size4K).unwrap();
    let b = mem.alloc(PageSize::Size2M).unwrap();
    assert!(a.is_aligned(PageSize::Size4K) && b.is_aligned(PageSize::Size2M));
    mem.free(a).unwrap();
    mem.free(b).unwrap();
}

#[test]
fn every_size_allocates_aligned_zeroed_and_frees() {
    let mem = host(GIB + 4 * MIB);
    for ps in PageSize::ALL {
        let hpa = mem.alloc(ps).unwrap();
        assert!(hpa.is_aligned(ps), "{ps}: {hpa}");
        assert!(is_zero(&mem, hpa, ps.bytes().min(4 * MIB)));
        mem.write(hpa.checked_add(ps.bytes() - 1).unwrap(), &[0xaa])
            .unwrap();
        assert_eq!(mem.pin_count(hpa).unwrap(), 0);
        mem.free(hpa).unwrap();
        assert_eq!(
            mem.free(hpa).unwrap_err().errno(),
            Errno::FAULT,
            "double free of {ps}"
        );
    }
    let s = mem.stats();
    assert_eq!(
        (s.allocated_4k_bytes, s.allocated_2m_bytes, s.allocated_1g_bytes),
        (0, 0, 0)
    );
}

#[test]
fn small_ram_exhausts_cleanly_and_leaks_nothing() {
    let mem = host(4 * MIB);
    assert!(matches!(
        mem.alloc(PageSize::Size1G),
        Err(MemoryError::OutOfFrames {
            folio: PageSize::Size1G,
            ..
        })
    ));
    let a = mem.alloc(PageSize::Size2M).unwrap();
    let b = mem.alloc(PageSize::Size2M).unwrap();
    let err = mem.alloc(PageSize::Size2M).unwrap_err();
    assert_eq!(err.errno(), Errno::NOMEM);
    assert_eq!(mem.alloc(PageSize::Size4K).unwrap_err().errno(), Errno::NOMEM);
    mem.free(a).unwrap();
    // 2 MiB of 4 KiB frames, then nothing.
    let frames: Vec<Hpa> = (0..512).map(|_| mem.alloc(PageSize::Size4K).unwrap()).collect();
    assert_eq!(mem.alloc_table_frame().unwrap_err().errno(), Errno::NOMEM);
    assert_eq!(mem.alloc(PageSize::Size2M).unwrap_err().errno(), Errno::NOMEM);
    assert_eq!(mem.stats().allocated_4k_bytes, 2 * MIB);
    for f in &frames {
        mem.free(*f).unwrap();
    }
    mem.free(b).unwrap();
    // Everything came back: both chunks can be 2 MiB folios again (the split one is reclaimed).
    let x = mem.alloc(PageSize::Size2M).unwrap();
    let y = mem.alloc(PageSize::Size2M).unwrap();
    assert_ne!(x, y);
    let s = mem.stats();
    assert_eq!(
        (s.allocated_4k_bytes, s.allocated_2m_bytes, s.split_chunks),
        (0, 4 * MIB, 0)
    );
    mem.free(x).unwrap();
    mem.free(y).unwrap();
    assert_eq!(
        mem.alloc_contiguous(4 * MIB, PageSize::Size2M).unwrap().len(),
        Some(4 * MIB)
    );
}

#[test]
fn one_gib_folios_come_back_after_splits() {
    let mem = host(GIB);
    let f = mem.alloc(PageSize::Size4K).unwrap();
    assert_eq!(mem.alloc(PageSize::Size1G).unwrap_err().errno(), Errno::NOMEM);
    mem.free(f).unwrap();
    let g = mem.alloc(PageSize::Size1G).unwrap();
    assert_eq!(g, RAM_BASE);
    assert_eq!(mem.alloc(PageSize::Size4K).unwrap_err().errno(), Errno::NOMEM);
    mem.free(g).unwrap();
    assert_eq!(mem.stats().free_regions, 1);
}

#[test]
fn reused_folios_are_zeroed() {
    let mem = host(8 * MIB);
    for ps in [PageSize::Size4K, PageSize::Size2M] {
        let a = mem.alloc(ps).unwrap();
        fill(&mem, a, ps.bytes(), 0x5a);
        mem.free(a).unwrap();
        let b = mem.alloc(ps).unwrap();
        assert_eq!(a, b, "{ps} folio reused");
        assert!(is_zero(&mem, b, ps.bytes()), "{ps} folio zeroed on reuse");
        mem.free(b).unwrap();
    }
    let t = mem.alloc_table_frame().unwrap();
    fill(&mem, t, 4096, 0xff);
    mem.free_table_frame(t);
    let u = mem.alloc_table_frame().unwrap();
    assert_eq!(t, u);
    assert!(is_zero(&mem, u, 4096));
    // A reclaimed split chunk is zero when it comes back as a 2 MiB folio.
    let frames: Vec<Hpa> = (0..3).map(|_| mem.alloc(PageSize::Size4K).unwrap()).collect();
    for f in &frames {
        fill(&mem, *f, 4096, 0x11);
    }
    let big: Vec<Hpa> = (0..3).map(|_| mem.alloc(PageSize::Size2M).unwrap()).collect();
    assert_eq!(mem.alloc(PageSize::Size2M).unwrap_err().errno(), Errno::NOMEM);
    mem.free_table_frame(u);
    for f in frames {
        mem.free(f).unwrap();
    }
    let c = mem.alloc(PageSize::Size2M).unwrap();
    assert!(is_zero(&mem, c, 2 * MIB));
    for b in big.into_iter().chain([c]) {
        mem.free(b).unwrap();
    }
}

#[test]
fn contiguous_runs_of_every_size() {
    let mem = host(2 * GIB);
    let r4 = mem.alloc_contiguous(3 * MIB, PageSize::Size4K).unwrap();
    assert_eq!(r4.len(), Some(3 * MIB));
    assert!(is_zero(&mem, r4.start(), 3 * MIB));
    let r2 = mem.alloc_contiguous(6 * MIB, PageSize::Size2M).unwrap();
    assert!(r2.start().is_aligned(PageSize::Size2M));
    let s = mem.stats();
    assert_eq!((s.allocated_4k_bytes, s.allocated_2m_bytes), (3 * MIB, 6 * MIB));
    // Each folio of a run can be freed alone; the run's remainder then frees as a range.
    let second = r2.start().checked_add(2 * MIB).unwrap();
    mem.free(second).unwrap();
    assert!(matches!(
        mem.free_contiguous(r2).unwrap_err(),
        MemoryError::NotAllocated { hpa } if hpa == second
    ));
    mem.free_contiguous(range(r2.start(), 2 * MIB)).unwrap();
    mem.free_contiguous(range(r2.start().checked_add(4 * MIB).unwrap(), 2 * MIB))
        .unwrap();
    // A range that splits a folio, or starts inside one, is refused with nothing freed.
    let big = mem.alloc(PageSize::Size2M).unwrap();
    assert_eq!(
        mem.free_contiguous(range(big, MIB)).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(
        mem.free(big.checked_add(4096).unwrap()).unwrap_err().errno(),
        Errno::INVAL
    );
    mem.free(big).unwrap();
    mem.free_contiguous(r4).unwrap();
    assert_eq!(mem.stats().allocated_4k_bytes, 0);
    // Bad lengths.
    assert_eq!(
        mem.alloc_contiguous(0, PageSize::Size4K).unwrap_err().errno(),
        Errno::INVAL
    );
    assert_eq!(
        mem.alloc_contiguous(3 * MIB, PageSize::Size2M)
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
    assert_eq!(
        mem.alloc_contiguous(4 * GIB, PageSize::Size1G)
            .unwrap_err()
            .errno(),
        Errno::NOMEM
    );
}

#[test]
fn contiguous_gib_run() {
    let mem = host(3 * GIB);
    let hole = mem.alloc(PageSize::Size2M).unwrap();
    assert_eq!(
        mem.alloc_contiguous(3 * GIB, PageSize::Size1G)
            .unwrap_err()
            .errno(),
        Errno::NOMEM
    );
    let run = mem.alloc_contiguous(2 * GIB, PageSize::Size1G).unwrap();
    assert_eq!(run.start(), RAM_BASE.checked_add(GIB).unwrap());
    assert_eq!(mem.stats().allocated_1g_bytes, 2 * GIB);
    mem.free_contiguous(run).unwrap();
    mem.free(hole).unwrap();
    assert_eq!(mem.stats().free_regions, 2, "regions merge back lazily");
}

#[test]
fn table_frames_are_counted_and_checked() {
    let mem = host(4 * MIB);
    let frames: Vec<Hpa> = (0..1000).map(|_| mem.alloc_table_frame().unwrap()).collect();
    assert_eq!(mem.stats().table_frames, 1000);
    let data = mem.alloc(PageSize::Size4K).unwrap();
    // Not a table frame, not allocated, not in RAM: refused and counted.
    assert!(mem.try_free_table_frame(data).is_err());
    mem.free_table_frame(data);
    mem.free_table_frame(Hpa::new(0x10));
    mem.free_table_frame(frames[0].checked_add(1).unwrap());
    assert_eq!(mem.stats().bad_table_frees, 3);
    for f in &frames {
        mem.free_table_frame(*f);
    }
    let s = mem.stats();
    assert_eq!(
        (s.table_frames, s.bad_table_frees, s.allocated_4k_bytes),
        (0, 3, 4096)
    );
    mem.free(data).unwrap();
}

#[test]
fn free_outside_ram_is_efault() {
    let mem = host(4 * MIB);
    for hpa in [Hpa::new(0), Hpa::new(RAM_BASE.raw() + 4 * MIB), Hpa::MAX] {
        assert_eq!(mem.free(hpa).unwrap_err().errno(), Errno::FAULT, "{hpa}");
    }
    assert_eq!(mem.free(RAM_BASE).unwrap_err().errno(), Errno::FAULT, "free RAM");
}

#[test]
fn concurrent_allocation_is_consistent() {
    let mem = std::sync::Arc::new(host(64 * MIB));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mem = mem.clone();
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let ps = if i % 10 == 0 {
                        PageSize::Size2M
                    } else {
                        PageSize::Size4K
                    };
                    let a = mem.alloc(ps).unwrap();
                    mem.write(a, &[t as u8; 64]).unwrap();
                    let mut b = [0u8; 64];
                    mem.read(a, &mut b).unwrap();
                    assert_eq!(b, [t as u8; 64]);
                    mem.free(a).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = mem.stats();
    assert_eq!((s.allocated_4k_bytes, s.allocated_2m_bytes), (0, 0));
}

#[test]
fn trim_gives_free_memory_back_and_keeps_it_zero() {
    let mem = host(8 * MIB);
    let keep = mem.alloc(PageSize::Size4K).unwrap();
    fill(&mem, keep, 4096, 0x33);
    let frames: Vec<Hpa> = (0..600).map(|_| mem.alloc(PageSize::Size4K).unwrap()).collect();
    let big = mem.alloc(PageSize::Size2M).unwrap();
    fill(&mem, big, 2 * MIB, 0x44);
    for f in &frames {
        fill(&mem, *f, 4096, 0x55);
        mem.free(*f).unwrap();
    }
    mem.free(big).unwrap();
    mem.trim().unwrap();
    let s = mem.stats();
    assert_eq!(
        (s.split_chunks, s.allocated_4k_bytes, s.free_chunks),
        (1, 4096, 3),
        "the frames' second chunk merged"
    );
    let mut b = [0u8; 4096];
    mem.read(keep, &mut b).unwrap();
    assert_eq!(b, [0x33; 4096], "allocated memory is untouched by a trim");
    let again = mem.alloc_contiguous(6 * MIB, PageSize::Size2M).unwrap();
    assert!(is_zero(&mem, again.start(), 6 * MIB));
    let frame = mem.alloc(PageSize::Size4K).unwrap();
    assert!(is_zero(&mem, frame, 4096));
}
