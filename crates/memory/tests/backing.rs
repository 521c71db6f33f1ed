//! What RAM ends up on: hugetlb where the machine has free huge pages, shmem otherwise.

use rustix::io::Errno;
use uvfio_memory::{Backing, HostMemory, HugePages, MemoryConfig, MemoryError};
use uvfio_types::PageSize;

const MIB: u64 = 1 << 20;

/// `HugePages_Free` from /proc/meminfo (0 if it cannot be read).
fn free_huge_pages() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn config(huge_pages: HugePages) -> MemoryConfig {
    MemoryConfig {
        ram_bytes: 8 * MIB,
        huge_pages,
        lock_limit_bytes: None,
    }
}

#[test]
fn auto_falls_back_and_works() {
    let mem = HostMemory::new(config(HugePages::Auto)).unwrap();
    let backing = mem.backing();
    if free_huge_pages() > 0 {
        assert_eq!(backing, Backing::HugeTlb);
    } else {
        assert!(
            matches!(backing, Backing::Shmem | Backing::AnonThp),
            "{backing:?}"
        );
        // Anonymous THP only when shmem THP would not honour MADV_HUGEPAGE.
        let shmem =
            std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled").unwrap_or_default();
        let anon = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        let expect_anon = (shmem.contains("[never]") || shmem.contains("[deny]") || shmem.is_empty())
            && (anon.contains("[always]") || anon.contains("[madvise]"));
        assert_eq!(
            backing == Backing::AnonThp,
            expect_anon,
            "shmem: {shmem:?} anon: {anon:?}"
        );
    }
    let expected = backing;
    assert_eq!(mem.backing(), expected);
    assert_eq!(mem.stats().backing, expected);
    let a = mem.alloc(PageSize::Size2M).unwrap();
    let b = mem.alloc(PageSize::Size4K).unwrap();
    mem.write(a, &[1; 4096]).unwrap();
    mem.write(b, &[2; 4096]).unwrap();
    mem.free(a).unwrap();
    mem.free(b).unwrap();
    // Freed memory given back to the OS reads as zero when allocated again, on every backing.
    mem.trim().unwrap();
    let c = mem.alloc(PageSize::Size2M).unwrap();
    let mut buf = [0xffu8; 4096];
    mem.read(c, &mut buf).unwrap();
    assert!(buf.iter().all(|&x| x == 0));
}

#[test]
fn never_is_shmem() {
    let mem = HostMemory::new(config(HugePages::Never)).unwrap();
    assert_eq!(mem.backing(), Backing::Shmem);
}

#[test]
fn require_needs_free_huge_pages() {
    let result = HostMemory::new(config(HugePages::Require));
    if free_huge_pages() == 0 {
        let err = result.unwrap_err();
        assert!(matches!(err, MemoryError::HugePagesUnavailable { .. }), "{err}");
        assert_eq!(err.errno(), Errno::NOMEM);
        assert!(
            std::error::Error::source(&err).is_some(),
            "the OS error is kept as the source"
        );
    } else {
        let mem = result.unwrap();
        assert_eq!(mem.backing(), Backing::HugeTlb);
        let a = mem.alloc(PageSize::Size2M).unwrap();
        mem.free(a).unwrap();
    }
}
