//! Domain kinds, IOTLB semantics, faults and the recoverable-fault hook.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uvfio_iommu::{
    Domain, DomainConfig, DomainType, FaultHandler, FaultReason, FaultRecord, FaultResponse, Invalidation,
    Levels,
};
use uvfio_memory::HostMemory;
use uvfio_types::{Access, Hpa, Iova, IovaRange, PageSize, PageSizes};

fn range(start: u64, len: u64) -> IovaRange {
    IovaRange::from_start_len(Iova::new(start), len).unwrap()
}

#[test]
fn blocked_domain_faults_everything_and_logs_it() {
    let mem = common::memory(16);
    let domain = Domain::new_blocked(mem);
    assert_eq!(domain.domain_type(), DomainType::Blocked);
    let port = domain.port(0x0800);
    let mut buf = [0u8; 8];
    let fault = port.read(Iova::new(0x1000), &mut buf).unwrap_err();
    assert_eq!(fault.reason, FaultReason::Blocked);
    assert!(
        domain
            .map(Iova::ZERO, Hpa::new(0x4000_0000), 0x1000, Access::RW)
            .is_err()
    );
    let log = domain.drain_faults();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].requester, 0x0800);
    assert_eq!(log[0].iova, Iova::new(0x1000));
}

#[test]
fn identity_domain_passes_iova_through_as_hpa() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 2);
    let domain = Domain::new_identity(Arc::clone(&mem));
    let port = domain.port(0);
    let mut buf = vec![0u8; 4096];
    port.read(Iova::new(frames.start().raw()), &mut buf).unwrap();
    assert_eq!(buf, common::pattern(frames.start()));
    let fault = port.read(Iova::new(0x10), &mut buf).unwrap_err();
    assert_eq!(
        fault.reason,
        FaultReason::BadHostAddress,
        "HPA 0x10 is not host memory"
    );
}

#[test]
fn paging_read_write_and_permissions() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 4);
    let domain = common::paging(&mem, false);
    domain
        .map(Iova::new(0x10_0000), frames.start(), 0x2000, Access::READ)
        .unwrap();
    domain
        .map(
            Iova::new(0x10_2000),
            frames.start().checked_add(0x2000).unwrap(),
            0x2000,
            Access::RW,
        )
        .unwrap();
    let port = domain.port(1);
    // A read across the read-only/read-write boundary works.
    let mut buf = vec![0u8; 0x2000];
    port.read(Iova::new(0x10_1000), &mut buf).unwrap();
    assert_eq!(
        buf[..4096],
        common::pattern(frames.start().checked_add(0x1000).unwrap())[..]
    );
    // A write that touches the read-only page writes nothing at all, even to the writable page.
    let before = {
        let mut b = vec![0u8; 0x2000];
        mem.read(frames.start().checked_add(0x1000).unwrap(), &mut b)
            .unwrap();
        b
    };
    let fault = port.write(Iova::new(0x10_1ff0), &[0xaa; 0x20]).unwrap_err();
    assert_eq!(
        fault.reason,
        FaultReason::Permission {
            granted: Access::READ
        }
    );
    assert_eq!(fault.iova, Iova::new(0x10_1000));
    let mut after = vec![0u8; 0x2000];
    mem.read(frames.start().checked_add(0x1000).unwrap(), &mut after)
        .unwrap();
    assert_eq!(before, after);
    // Writes to the writable part land.
    port.write(Iova::new(0x10_2010), &[0x55; 16]).unwrap();
    let mut b = [0u8; 16];
    mem.read(frames.start().checked_add(0x2010).unwrap(), &mut b)
        .unwrap();
    assert_eq!(b, [0x55; 16]);
    // Beyond the 48-bit width.
    let fault = port.read(Iova::new(1 << 48), &mut b).unwrap_err();
    assert_eq!(fault.reason, FaultReason::BeyondAddressWidth);
    // A zero-length access is a no-op, an access wrapping the 64-bit space a fault.
    port.read(Iova::new(u64::MAX), &mut []).unwrap();
    let fault = port.read(Iova::new(u64::MAX - 3), &mut b).unwrap_err();
    assert_eq!(fault.reason, FaultReason::Wraps);
    assert_eq!(domain.fault_counts().total, 3);
}

#[test]
fn iotlb_keeps_stale_entries_until_invalidated() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 1);
    let domain = common::paging(&mem, false);
    domain
        .map(Iova::new(0x8000), frames.start(), 0x1000, Access::RW)
        .unwrap();
    let port = domain.port(1);
    let mut b = [0u8; 4];
    port.read(Iova::new(0x8000), &mut b).unwrap();
    assert_eq!(domain.unmap(range(0x8000, 0x1000)).unwrap(), 0x1000);
    // The driver "forgot" to invalidate: the port's cached translation still works, as on hardware.
    port.read(Iova::new(0x8000), &mut b).unwrap();
    // A second port never cached it; the shared IOTLB still did.
    let other = domain.port(2);
    other.read(Iova::new(0x8000), &mut b).unwrap();
    domain
        .invalidate(Invalidation::Range(range(0x8000, 0x1000)))
        .unwrap();
    assert_eq!(
        port.read(Iova::new(0x8000), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
    assert_eq!(
        other.read(Iova::new(0x8000), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
    let stats = domain.iotlb_stats();
    assert!(
        stats.misses >= 1 && stats.hits >= 1 && stats.utlb_hits >= 1,
        "{stats:?}"
    );
    assert_eq!(stats.invalidations, 1);
}

#[test]
fn coherent_domain_invalidates_on_unmap() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 1);
    let domain = common::paging(&mem, true);
    domain
        .map(Iova::new(0x8000), frames.start(), 0x1000, Access::RW)
        .unwrap();
    let port = domain.port(1);
    let mut b = [0u8; 4];
    port.read(Iova::new(0x8000), &mut b).unwrap();
    domain.unmap(range(0x8000, 0x1000)).unwrap();
    assert_eq!(
        port.read(Iova::new(0x8000), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
}

#[test]
fn table_frames_are_freed_only_after_invalidation() {
    let mem = common::memory(64);
    let frames = common::frames(&mem, 1);
    let domain = common::paging(&mem, false);
    let baseline = mem.stats();
    domain
        .map(Iova::new(0x4000_0000), frames.start(), 0x1000, Access::RW)
        .unwrap();
    assert_eq!(domain.table_frames(), 4, "root + 3 levels below it");
    // A 4 KiB unmap covers no table whole: they stay (Linux frees a table only when the range
    // covers it) and serve the next map.
    domain.unmap(range(0x4000_0000, 0x1000)).unwrap();
    assert_eq!(domain.table_frames(), 4);
    domain
        .map(Iova::new(0x4000_0000), frames.start(), 0x1000, Access::RW)
        .unwrap();
    assert_eq!(mem.stats().table_frames, baseline.table_frames + 3);
    // The GiB is one whole L3 entry: its L2 and L1 tables are unlinked, the L3 stays.
    domain.unmap(range(0x4000_0000, 1 << 30)).unwrap();
    assert_eq!(domain.table_frames(), 2);
    freed_by_invalidation(
        &mem,
        &domain,
        baseline.table_frames + 3,
        baseline.table_frames + 1,
    );
}

/// The host holds `waiting` table frames until the domain's next invalidation and `after` once it
/// has run: unlinked tables are freed only when no walker can still be reading them.
fn freed_by_invalidation(mem: &HostMemory, domain: &Domain, waiting: u64, after: u64) {
    assert_eq!(
        mem.stats().table_frames,
        waiting,
        "unlinked tables wait for the invalidation"
    );
    domain.invalidate(Invalidation::Domain).unwrap();
    assert_eq!(mem.stats().table_frames, after);
}

/// Maps the 2 MiB at `hpa` at IOVA 2 MiB and checks it became one 2 MiB leaf.
fn map_2m_leaf(domain: &Domain, hpa: Hpa) {
    domain
        .map(Iova::new(0x20_0000), hpa, 2 << 20, Access::RW)
        .unwrap();
    assert_eq!(
        domain.lookup(Iova::new(0x20_0000)).unwrap().size,
        PageSize::Size2M
    );
}

#[test]
fn an_emptied_table_gives_way_to_a_super_page_and_is_freed_after_invalidation() {
    let mem = common::memory(64);
    let big = mem.alloc_contiguous(2 << 20, PageSize::Size2M).unwrap();
    let domain = common::paging(&mem, false);
    let baseline = mem.stats();
    domain
        .map(Iova::new(0x20_0000), big.start(), 0x1000, Access::RW)
        .unwrap();
    domain.unmap(range(0x20_0000, 0x1000)).unwrap();
    domain.invalidate(Invalidation::Domain).unwrap();
    assert_eq!(domain.table_frames(), 4, "the emptied L1 table stays linked");
    // A 2 MiB map over it: the L1 table gives way to a 2 MiB leaf.
    map_2m_leaf(&domain, big.start());
    assert_eq!(domain.table_frames(), 3);
    freed_by_invalidation(
        &mem,
        &domain,
        baseline.table_frames + 3,
        baseline.table_frames + 2,
    );
    // A table with a mapping under it does not give way.
    domain.unmap(range(0x20_0000, 2 << 20)).unwrap();
    domain
        .map(Iova::new(0x20_3000), big.start(), 0x1000, Access::RW)
        .unwrap();
    assert!(
        domain
            .map(Iova::new(0x20_0000), big.start(), 2 << 20, Access::RW)
            .is_err()
    );
}

#[test]
fn super_pages_split_on_partial_unmap_and_stay_usable() {
    let mem = common::memory(64);
    let big = mem.alloc_contiguous(2 << 20, PageSize::Size2M).unwrap();
    for i in [0u64, 1, 511] {
        let hpa = big.start().checked_add(i << 12).unwrap();
        mem.write(hpa, &common::pattern(hpa)).unwrap();
    }
    let domain = common::paging(&mem, true);
    map_2m_leaf(&domain, big.start());
    assert_eq!(domain.unmap(range(0x20_1000, 0x1000)).unwrap(), 0x1000);
    let port = domain.port(0);
    let mut buf = vec![0u8; 4096];
    port.read(Iova::new(0x20_0000), &mut buf).unwrap();
    assert_eq!(buf, common::pattern(big.start()));
    port.read(Iova::new(0x3f_f000), &mut buf).unwrap();
    assert_eq!(buf, common::pattern(big.start().checked_add(511 << 12).unwrap()));
    assert_eq!(
        port.read(Iova::new(0x20_1000), &mut buf).unwrap_err().reason,
        FaultReason::NotPresent
    );
}

#[test]
fn five_level_tables_reach_57_bits() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 1);
    let config = DomainConfig {
        levels: Levels::Five,
        ..DomainConfig::default()
    };
    let domain = Domain::new_paging(Arc::clone(&mem), config).unwrap();
    assert_eq!(domain.address_width(), 57);
    let high = Iova::new((1 << 56) + 0x1000);
    domain.map(high, frames.start(), 0x1000, Access::READ).unwrap();
    let mut buf = vec![0u8; 4096];
    domain.port(0).read(high, &mut buf).unwrap();
    assert_eq!(buf, common::pattern(frames.start()));
    assert!(
        domain
            .map(Iova::new(1 << 57), frames.start(), 0x1000, Access::READ)
            .is_err()
    );
}

#[test]
fn restricted_page_sizes_use_small_pages() {
    let mem = common::memory(64);
    let big = mem.alloc_contiguous(2 << 20, PageSize::Size2M).unwrap();
    let config = DomainConfig {
        page_sizes: PageSizes::SZ_4K,
        ..DomainConfig::default()
    };
    let domain = Domain::new_paging(Arc::clone(&mem), config).unwrap();
    domain
        .map(Iova::new(0x20_0000), big.start(), 2 << 20, Access::RW)
        .unwrap();
    assert_eq!(
        domain.lookup(Iova::new(0x20_0000)).unwrap().size,
        PageSize::Size4K
    );
}

/// An I/O page-fault handler: maps the faulting page on demand from a pool, as seed 001's IOPF
/// handler pins and maps guest memory when the device first touches it.
#[derive(Debug)]
struct OnDemand {
    domain: std::sync::Weak<Domain>,
    backing: Hpa,
    calls: AtomicUsize,
}

impl FaultHandler for OnDemand {
    fn handle(&self, fault: &FaultRecord) -> FaultResponse {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let Some(domain) = self.domain.upgrade() else {
            return FaultResponse::Abort;
        };
        if fault.reason != FaultReason::NotPresent || fault.iova.raw() >= 0x10_0000 {
            return FaultResponse::Abort;
        }
        let page = fault.iova.align_down(PageSize::Size4K);
        let hpa = self.backing.checked_add(page.raw()).unwrap();
        match domain.map(page, hpa, 0x1000, Access::RW) {
            Ok(()) => FaultResponse::Retry,
            Err(_) => FaultResponse::Abort,
        }
    }
}

#[test]
fn recoverable_faults_map_on_demand_and_retry() {
    let mem = common::memory(64);
    let backing = mem.alloc_contiguous(0x10_0000, PageSize::Size4K).unwrap();
    let domain = common::paging(&mem, false);
    let handler = Arc::new(OnDemand {
        domain: Arc::downgrade(&domain),
        backing: backing.start(),
        calls: 0.into(),
    });
    domain.set_fault_handler(Some(handler.clone()));
    let port = domain.port(0);
    // A write spanning seven unmapped pages (more than MAX_FAULT_RETRIES): one page request each.
    port.write(Iova::new(0x3ff0), &[7u8; 0x5020]).unwrap();
    assert_eq!(handler.calls.load(Ordering::Relaxed), 7);
    let mut b = [0u8; 0x5020];
    mem.read(backing.start().checked_add(0x3ff0).unwrap(), &mut b)
        .unwrap();
    assert!(b.iter().all(|&x| x == 7));
    // The handler refuses addresses beyond its window: the fault is logged and returned.
    assert_eq!(
        port.read(Iova::new(0x20_0000), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
    assert_eq!(
        domain.fault_counts().total,
        1,
        "resolved page requests are not logged as faults"
    );
}

#[test]
fn translate_merges_contiguous_fragments() {
    let mem = common::memory(16);
    let frames = common::frames(&mem, 4);
    let domain = common::paging(&mem, false);
    domain
        .map(Iova::new(0x10000), frames.start(), 0x2000, Access::RW)
        .unwrap();
    domain
        .map(
            Iova::new(0x12000),
            frames.start().checked_add(0x3000).unwrap(),
            0x1000,
            Access::RW,
        )
        .unwrap();
    let port = domain.port(0);
    let mut out = Vec::new();
    port.translate(range(0x10800, 0x2000), Access::READ, &mut out)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].hpa, frames.start().checked_add(0x800).unwrap());
    assert_eq!(out[0].len, 0x1800);
    assert_eq!(out[1].hpa, frames.start().checked_add(0x3000).unwrap());
    assert_eq!(out[1].len, 0x800);
    // A range that runs into an unmapped page fails and leaves `out` as it was.
    let before = out.clone();
    let fault = port
        .translate(range(0x11000, 0x3000), Access::READ, &mut out)
        .unwrap_err();
    assert_eq!(fault.iova, Iova::new(0x13000));
    assert_eq!(out, before);
    let uncached = port
        .translate_uncached(Iova::new(0x12010), Access::WRITE)
        .unwrap();
    assert_eq!(uncached.hpa, frames.start().checked_add(0x3010).unwrap());
    assert_eq!(uncached.len, 0x1000 - 0x10);
}
