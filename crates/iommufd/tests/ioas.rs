//! The IOAS page table end to end: a driver's buffer mapped into an IOAS reaches devices through
//! every attached domain; unmap, detach and every failure (injected ones included) return pins,
//! charge and segments to baseline.

mod ioas_support;
use ioas_support::Buffer;

use std::sync::Arc;
use uvfio_iommu::{Domain, DomainConfig, FaultReason};
use uvfio_iommufd::fail::FailPoints;
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::iova_space::Placement;
use uvfio_iommufd::pages::Account;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::{Access, HostVa, Iova, IovaRange};

struct Rig {
    mem: Arc<HostMemory>,
    account: Arc<Account>,
    fail: Arc<FailPoints>,
    ioas: IoPageTable,
}

fn rig() -> Rig {
    let mem = Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: 64 << 20,
            ..MemoryConfig::default()
        })
        .unwrap(),
    );
    let account = Arc::new(Account::new(None));
    let fail = Arc::new(FailPoints::default());
    let ioas = IoPageTable::new(Arc::clone(&mem), Arc::clone(&account), Arc::clone(&fail));
    Rig {
        mem,
        account,
        fail,
        ioas,
    }
}

fn domain(mem: &Arc<HostMemory>) -> Arc<Domain> {
    Domain::new_paging(Arc::clone(mem), DomainConfig::default()).unwrap()
}

fn range(start: u64, len: u64) -> IovaRange {
    IovaRange::from_start_len(Iova::new(start), len).unwrap()
}

#[test]
fn a_buffer_reaches_devices_through_every_attached_domain() {
    let r = rig();
    let buf = Buffer::new(4);
    buf.set(0x1234, 0x5a);
    // Mapped before any domain: nothing pinned yet (Linux pins lazily).
    let at = r
        .ioas
        .map(
            buf.user(0, 0x4000),
            Placement::Fixed(Iova::new(0x10_0000)),
            Access::RW,
        )
        .unwrap();
    assert_eq!(at, range(0x10_0000, 0x4000));
    assert_eq!(r.account.locked_pages(), 0);
    let d1 = domain(&r.mem);
    let d2 = domain(&r.mem);
    r.ioas.attach_domain(Arc::clone(&d1)).unwrap();
    assert_eq!(r.account.locked_pages(), 4, "the first domain pins every area");
    r.ioas.attach_domain(Arc::clone(&d2)).unwrap();
    assert_eq!(r.account.locked_pages(), 4, "a second domain shares the pins");
    let (p1, p2) = (d1.port(1), d2.port(2));
    let mut b = [0u8; 1];
    p1.read(Iova::new(0x10_1234), &mut b).unwrap();
    assert_eq!(b[0], 0x5a);
    p2.write(Iova::new(0x10_3ff0), &[0xc3]).unwrap();
    assert_eq!(
        buf.byte(0x3ff0),
        0xc3,
        "DMA through the second domain lands in the driver's buffer"
    );
    // A map while domains are attached pins at once and reaches both.
    let auto = r
        .ioas
        .map(buf.user(0, 0x1000), Placement::Alloc, Access::READ)
        .unwrap();
    assert_eq!(
        r.account.locked_pages(),
        5,
        "a second map of the same page is charged again"
    );
    p2.read(auto.start(), &mut b).unwrap();
    assert_eq!(
        p2.write(auto.start(), &[1]).unwrap_err().reason,
        FaultReason::Permission {
            granted: Access::READ
        }
    );
    // Unmap: gone from both domains at once, then unpinned.
    assert_eq!(r.ioas.unmap(at).unwrap(), 0x4000);
    assert_eq!(
        p1.read(Iova::new(0x10_1234), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
    assert_eq!(
        p2.read(Iova::new(0x10_1234), &mut b).unwrap_err().reason,
        FaultReason::NotPresent
    );
    assert_eq!(r.account.locked_pages(), 1);
    r.ioas.detach_domain(&d1).unwrap();
    r.ioas.detach_domain(&d2).unwrap();
    assert_eq!(r.account.locked_pages(), 0, "the last detach unpins");
    assert_eq!(r.mem.account().locked_pages, 0);
    assert_eq!(r.ioas.unmap_all(), 0x1000);
    assert_eq!(
        r.mem.stats().adopted_segments,
        0,
        "every adopted buffer is released"
    );
    assert!(d1.lookup(Iova::new(0x10_0000)).is_none());
    // Unmapping 4 KiB areas covers no table whole: the emptied tables stay with the domain (as
    // in Linux) and go with it.
    let frames = r.mem.stats().table_frames;
    let d1_frames = d1.table_frames() as u64;
    assert!(d1_frames > 1);
    drop((p1, d1));
    assert_eq!(r.mem.stats().table_frames, frames - d1_frames);
}

#[test]
fn unmap_takes_whole_areas_only() {
    let r = rig();
    let buf = Buffer::new(4);
    let d = domain(&r.mem);
    r.ioas.attach_domain(Arc::clone(&d)).unwrap();
    r.ioas
        .map(
            buf.user(0, 0x2000),
            Placement::Fixed(Iova::new(0x4000)),
            Access::RW,
        )
        .unwrap();
    r.ioas
        .map(
            buf.user(0x2000, 0x2000),
            Placement::Fixed(Iova::new(0x6000)),
            Access::RW,
        )
        .unwrap();
    // A range that cuts the second area: ENOENT, and the first area is still there.
    let err = r.ioas.unmap(range(0x4000, 0x3000)).unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::NOENT);
    assert_eq!(r.ioas.area_count(), 2);
    assert!(d.lookup(Iova::new(0x4000)).is_some());
    assert_eq!(
        r.ioas.unmap(range(0x10_0000, 0x1000)).unwrap_err().errno(),
        rustix::io::Errno::NOENT
    );
    assert_eq!(r.ioas.unmap(range(0x3000, 0x6000)).unwrap(), 0x4000);
    assert_eq!(r.account.locked_pages(), 0);
    assert_eq!(r.ioas.unmap_all(), 0);
}

#[test]
fn a_bad_buffer_fails_when_it_is_pinned() {
    let r = rig();
    // SAFETY: page 0x1000 is never mapped, so nothing is ever adopted from it.
    let nowhere = unsafe { UserBuffer::new(HostVa::new(0x1000), 0x1000) };
    // No domain: the map only records the area, as Linux's lazy pinning does.
    r.ioas
        .map(nowhere, Placement::Fixed(Iova::new(0x1000)), Access::RW)
        .unwrap();
    let d = domain(&r.mem);
    let err = r.ioas.attach_domain(Arc::clone(&d)).unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::FAULT);
    assert_eq!(r.ioas.domain_count(), 0, "a failed attach attaches nothing");
    assert_eq!(r.ioas.unmap_all(), 0x1000);
    r.ioas.attach_domain(Arc::clone(&d)).unwrap();
    let err = r
        .ioas
        .map(nowhere, Placement::Fixed(Iova::new(0x1000)), Access::RW)
        .unwrap_err();
    assert_eq!(err.errno(), rustix::io::Errno::FAULT);
    assert_eq!(r.ioas.area_count(), 0);
    assert_eq!(r.account.locked_pages(), 0);
}

/// `iommufd_fail_nth` style: fail the n-th fallible step of a map into an IOAS with two domains,
/// for n = 1, 2, … until the map succeeds; after each failure nothing may have changed.
#[test]
fn fail_nth_map_and_attach_leave_nothing_behind() {
    let r = rig();
    let buf = Buffer::new(8);
    let before_domains = r.mem.stats().table_frames;
    let (d1, d2) = (domain(&r.mem), domain(&r.mem));
    r.ioas.attach_domain(Arc::clone(&d1)).unwrap();
    r.ioas.attach_domain(Arc::clone(&d2)).unwrap();
    let baseline = (r.mem.stats().table_frames, r.mem.stats().adopted_segments);
    let mut n = 1;
    let mapped = loop {
        r.fail.fail_nth(n);
        match r.ioas.map(buf.user(0, 0x8000), Placement::Alloc, Access::RW) {
            Ok(range) => break range,
            Err(e) => {
                assert!(r.fail.fired(), "step {n}: a failure that was not injected: {e}");
                assert_eq!(r.ioas.area_count(), 0, "step {n}");
                assert_eq!(r.account.locked_pages(), 0, "step {n}");
                assert_eq!(r.mem.account().locked_pages, 0, "step {n}");
                // A rolled-back map may leave its emptied tables linked (Linux frees a table
                // only when an unmap covers it whole): at most the root and the three levels
                // under it for this 32 KiB, and nothing mapped (checked below).
                assert!(
                    d1.table_frames() <= 4 && d2.table_frames() <= 4,
                    "step {n}: tables beyond one map's"
                );
                assert_eq!(r.mem.stats().adopted_segments, baseline.1, "step {n}");
            }
        }
        n += 1;
    };
    assert!(
        n > 3,
        "the map has at least an IOVA allocation, a pin and two domain maps"
    );
    r.fail.fail_nth(0);
    // The same for attaching a third domain to an IOAS that has the area.
    let d3 = domain(&r.mem);
    let mut n = 1;
    loop {
        r.fail.fail_nth(n);
        match r.ioas.attach_domain(Arc::clone(&d3)) {
            Ok(()) => break,
            Err(_) => {
                assert!(r.fail.fired());
                assert_eq!(r.ioas.domain_count(), 2);
                assert!(
                    d3.lookup(mapped.start()).is_none(),
                    "step {n}: a mapping left in the domain"
                );
                assert_eq!(r.account.locked_pages(), 8);
            }
        }
        n += 1;
    }
    r.fail.fail_nth(0);
    assert!(d3.lookup(mapped.start()).is_some());
    // The successful map is the only one either domain holds.
    for d in [&d1, &d2] {
        assert!(d.lookup(mapped.start()).is_some());
        assert!(
            d.lookup(mapped.start().checked_add(mapped.len_minus_one() + 1).unwrap())
                .is_none()
        );
    }
    r.ioas.unmap(mapped).unwrap();
    for d in [&d1, &d2, &d3] {
        r.ioas.detach_domain(d).unwrap();
    }
    assert_eq!(r.account.locked_pages(), 0);
    assert_eq!(r.mem.account().locked_pages, 0);
    assert_eq!(r.mem.stats().adopted_segments, baseline.1);
    // Every table frame any step made goes with the domains.
    drop((d1, d2, d3));
    assert_eq!(r.mem.stats().table_frames, before_domains);
}
