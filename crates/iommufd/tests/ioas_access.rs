//! Accesses on the IOAS page table, after the kernel selftests `access_pin`, `access_pin_unmap`,
//! `access_rw`, `access_rw_unaligned` and `access_domain_destory`
//! (`tools/testing/selftests/iommu/iommufd.c`) and `iommufd_fail_nth`'s `access_rw`, `access_pin`
//! and `access_pin_domain`. The selftest's access (`selftest.c`) is [`MockAccess`]; its mock domain
//! is a paging `Domain`. Every test and every injected failure ends with pins, charge and adopted
//! segments back to baseline.

mod ioas_support;

use ioas_support::*;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_iommu::FaultReason;
use uvfio_iommufd::ioas::{AccessId, AccessNotify, IoPageTable};
use uvfio_iommufd::iova_space::Placement;
use uvfio_types::{Access, Hpa, Iova};

fn map_fixed(ioas: &IoPageTable, buf: &Buffer, offset: u64, len: u64, iova: u64, prot: Access) {
    ioas.map(buf.user(offset, len), Placement::Fixed(Iova::new(iova)), prot)
        .unwrap();
}

/// Pins and unpins every page of `len` bytes at `iova` once (for writing if `write`), so that the
/// driver's buffers are part of the host's physical address space before a baseline is taken:
/// a `Pages` adopts its buffer at its first pin and keeps it until it goes, and that is not a pin
/// a failure could leak.
fn warm_up(access: &MockAccess, iova: u64, len: u64, write: bool) {
    access.pin(iova, len, write).unwrap();
    access.destroy_item(iova, len).unwrap();
}

/// What the host's memory holds at `hpa` (a device using a pinned page reads this).
fn host_bytes(r: &Rig, hpa: Hpa, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    r.mem.read(hpa, &mut out).unwrap();
    out
}

/// The HPAs an access got name the driver's bytes.
fn check_pages(r: &Rig, buf: &Buffer, hpas: &[Hpa]) {
    for (i, &hpa) in hpas.iter().enumerate() {
        assert_eq!(host_bytes(r, hpa, 4096), buf.bytes(i * 4096, 4096), "page {i}");
    }
}

/// Selftest `access_pin`: for 1..16 pages, a pin and unpin; two users of one range; a domain
/// added and removed while a user holds pages (`MD_CHECK_MAP`).
#[test]
fn access_pin() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        buf.randomize(&mut Rng::new(3));
        let access = MockAccess::attach(&r.ioas, 1, true);
        for npages in 1..BUFFER_PAGES as u64 {
            let len = npages * PAGE;
            // Single map/unmap.
            map_fixed(&r.ioas, &buf, 0, BUFFER_SIZE, BASE, Access::RW);
            let hpas = access.pin(BASE, len, true).unwrap();
            assert_eq!(hpas.len() as u64, npages);
            check_pages(&r, &buf, &hpas);
            let charged = if variant.mock_domains > 0 {
                BUFFER_PAGES as u64
            } else {
                npages
            };
            assert_eq!(r.account.locked_pages(), charged, "{}", variant.name);
            access.destroy_item(BASE, len).unwrap();

            // Double user.
            let first = access.pin(BASE, len, true).unwrap();
            let second = access.pin(BASE, len, true).unwrap();
            assert_eq!(first, second);
            assert_eq!(r.account.locked_pages(), charged, "two users are charged once");
            access.destroy_item(BASE, len).unwrap();
            access.destroy_item(BASE, len).unwrap();

            // Add/remove a domain with a user.
            let hpas = access.pin(BASE, len, true).unwrap();
            let d = domain(&r.mem);
            r.ioas.attach_domain(Arc::clone(&d)).unwrap();
            for page in 0..BUFFER_PAGES as u64 {
                let t = d.lookup(Iova::new(BASE + page * PAGE)).unwrap();
                let hpa = t.hpa(Iova::new(BASE + page * PAGE)).unwrap();
                if let Some(&pinned) = hpas.get(page as usize) {
                    assert_eq!(hpa, pinned, "the domain maps the pages the access holds");
                }
                assert_eq!(host_bytes(&r, hpa, 4096), buf.bytes(page as usize * 4096, 4096));
            }
            r.ioas.detach_domain(&d).unwrap();
            access.destroy_item(BASE, len).unwrap();
            assert_eq!(r.ioas.unmap(range(BASE, BUFFER_SIZE)).unwrap(), BUFFER_SIZE);
            assert_eq!(r.account.locked_pages(), 0, "{}: {npages} pages", variant.name);
            assert_eq!(r.mem.stats().adopted_segments, 0);
        }
        r.ioas.remove_access(access.id).unwrap();
        r.teardown(&[]);
    }
}

/// Selftest `access_pin_unmap`: an unmap of pinned pages calls the access's unmap, which unpins;
/// the unmap then goes through and the item is gone.
#[test]
fn access_pin_unmap() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        let access = MockAccess::attach(&r.ioas, 1, true);
        map_fixed(&r.ioas, &buf, 0, BUFFER_SIZE, BASE, Access::RW);
        access.pin(BASE, BUFFER_SIZE, true).unwrap();
        // Trigger the unmap op.
        assert_eq!(r.ioas.unmap(range(BASE, BUFFER_SIZE)).unwrap(), BUFFER_SIZE);
        assert_eq!(*access.calls.lock(), vec![range(BASE, BUFFER_SIZE)]);
        // The kernel removed the item for us.
        assert_eq!(access.destroy_item(BASE, BUFFER_SIZE), Err(Errno::NOENT));
        assert!(r.ioas.access_pins(access.id).is_empty());
        r.ioas.remove_access(access.id).unwrap();
        r.teardown(&[]);
    }
}

/// An access whose unmap callback does not unpin: the unmap fails with `EDEADLK` (Linux WARNs and
/// answers `-EDEADLOCK`) and removes nothing; once the access lets go it works.
#[test]
fn an_access_that_keeps_its_pins_deadlocks_the_unmap() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(4);
    let stuck = MockAccess::new(&r.ioas, 9, false);
    r.ioas
        .add_access(stuck.id, Arc::clone(&stuck) as Arc<dyn AccessNotify>, true)
        .unwrap();
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, 2 * PAGE, 2 * PAGE, BASE + 2 * PAGE, Access::RW);
    stuck.pin(BASE + PAGE, PAGE, false).unwrap();
    let before = (r.ioas.area_count(), r.snapshot());

    assert_eq!(errno(r.ioas.unmap(range(BASE, 4 * PAGE))), Errno::DEADLK);
    assert_eq!(errno(r.ioas.try_unmap_all()), Errno::DEADLK);
    assert_eq!((r.ioas.area_count(), r.snapshot()), before, "nothing removed");
    assert_eq!(stuck.calls.lock().len(), 2, "told once per unmap");
    // The area is open to accesses again.
    stuck.pin(BASE, PAGE, true).unwrap();
    let d = &r.domains[0];
    let mut b = [0u8; 1];
    d.port(1).read(Iova::new(BASE), &mut b).unwrap();

    // The infallible full unmap takes what it can: the other area.
    assert_eq!(r.ioas.unmap_all(), 2 * PAGE);
    assert_eq!(r.ioas.area_count(), 1);
    stuck.destroy_item(BASE + PAGE, PAGE).unwrap();
    stuck.destroy_item(BASE, PAGE).unwrap();
    assert_eq!(r.ioas.unmap(range(BASE, 2 * PAGE)).unwrap(), 2 * PAGE);
    r.ioas.remove_access(stuck.id).unwrap();
    r.teardown(&[]);
}

/// `iommufd_access_pin_pages`' errnos, each leaving no pin behind.
#[test]
fn access_pin_errnos() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(8);
        let access = MockAccess::attach(&r.ioas, 1, true);
        let reader = MockAccess::attach(&r.ioas, 2, false);
        map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
        map_fixed(&r.ioas, &buf, 2 * PAGE, 2 * PAGE, BASE + 3 * PAGE, Access::READ);
        map_fixed(&r.ioas, &buf, 4 * PAGE, 2 * PAGE, BASE + 5 * PAGE, Access::WRITE);
        warm_up(&access, BASE, 2 * PAGE, true);
        warm_up(&access, BASE + 3 * PAGE, 2 * PAGE, false);
        warm_up(&access, BASE + 5 * PAGE, 2 * PAGE, true);
        let before = r.snapshot();
        let pin = |iova: u64, len: u64, write: bool| access.pin(iova, len, write);

        assert_eq!(errno(pin(BASE, 0, false)), Errno::INVAL);
        assert_eq!(errno(pin(u64::MAX - PAGE + 1, 2 * PAGE, false)), Errno::OVERFLOW);
        let unknown = r.ioas.pin_for_access(Iova::new(BASE), PAGE, false, AccessId(77));
        assert_eq!(errno(unknown), Errno::NOENT);
        assert_eq!(
            errno(reader.pin(BASE, PAGE, false)),
            Errno::INVAL,
            "created without needs_pin_pages"
        );
        // Not a page of the area's pages.
        assert_eq!(errno(pin(BASE + 0x800, PAGE, false)), Errno::INVAL);
        // A hole first, a gap after the first area (pinned, then let go), past the last area.
        assert_eq!(errno(pin(BASE - PAGE, 2 * PAGE, false)), Errno::NOENT);
        assert_eq!(errno(pin(BASE, 4 * PAGE, false)), Errno::NOENT);
        assert_eq!(errno(pin(BASE + 6 * PAGE, 2 * PAGE, true)), Errno::NOENT);
        // The area's permissions: a write of a read-only area, a read of a write-only one.
        assert_eq!(errno(pin(BASE + 3 * PAGE, PAGE, true)), Errno::PERM);
        assert_eq!(errno(pin(BASE + 5 * PAGE, PAGE, false)), Errno::PERM);
        assert_eq!(
            r.snapshot(),
            before,
            "{}: a failed pin holds nothing",
            variant.name
        );
        assert!(r.ioas.access_pins(access.id).is_empty());
        // An unpin of something never pinned.
        let never = r.ioas.unpin_for_access(Iova::new(BASE), PAGE, access.id);
        assert_eq!(errno(never), Errno::INVAL);

        // What works: a read of the read-only area, a write of the write-only one.
        pin(BASE + 3 * PAGE, 2 * PAGE, false).unwrap();
        pin(BASE + 5 * PAGE, PAGE, true).unwrap();
        for id in [access.id, reader.id] {
            r.ioas.remove_access(id).unwrap();
        }
        r.teardown(&[]);
    }
}

/// While an unmap waits for accesses, its areas refuse new access pins and reads (`EINVAL`,
/// `area->prevent_access`), and the unmap has not touched the domains yet.
#[test]
fn an_area_being_unmapped_refuses_accesses() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(2);
    buf.set(5, 0x42);
    let access = MockAccess::attach(&r.ioas, 1, true);
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    access.pin(BASE, PAGE, true).unwrap();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    {
        let (ioas, seen, d) = (Arc::clone(&r.ioas), Arc::clone(&seen), Arc::clone(&r.domains[0]));
        let id = access.id;
        *access.on_unmap.lock() = Some(Box::new(move |_| {
            let pin = ioas.pin_for_access(Iova::new(BASE + PAGE), PAGE, false, id);
            let mut b = [0u8; 1];
            let rw = ioas.access_rw(id, Iova::new(BASE), &mut b, false);
            let mut dma = [0u8; 1];
            let dma_ok = d.port(3).read(Iova::new(BASE + 5), &mut dma).is_ok();
            seen.lock().push((
                pin.map_err(|e| e.errno()),
                rw.map_err(|e| e.errno()),
                dma_ok,
                dma[0],
            ));
        }));
    }
    r.ioas.unmap(range(BASE, 2 * PAGE)).unwrap();
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let (pin, rw, dma_ok, byte) = seen[0].clone();
    assert_eq!(pin.unwrap_err(), Errno::INVAL);
    assert_eq!(rw, Err(Errno::INVAL));
    assert!(
        dma_ok && byte == 0x42,
        "the domain still maps the area while accesses are told"
    );
    let mut b = [0u8; 1];
    assert_eq!(
        r.domains[0]
            .port(3)
            .read(Iova::new(BASE + 5), &mut b)
            .unwrap_err()
            .reason,
        FaultReason::NotPresent
    );
    *access.on_unmap.lock() = None;
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

/// Selftest `check_access_rw`: reads and writes of 1..63 bytes around a page boundary, then the
/// whole buffer at once.
fn check_access_rw(r: &Rig, buf: &Buffer, access: AccessId, iova: u64) {
    let mut rng = Rng::new(iova);
    buf.randomize(&mut rng);
    let mut tmp = [0u8; 64];
    for at in iova + PAGE - 50..iova + PAGE + 50 {
        let off = (at - iova) as usize;
        for len in 1..tmp.len() {
            r.ioas
                .access_rw(access, Iova::new(at), &mut tmp[..len], false)
                .unwrap();
            assert_eq!(&tmp[..len], &buf.bytes(off, len)[..], "read {len} at {at:#x}");
            rng.fill(&mut tmp);
            r.ioas
                .access_rw(access, Iova::new(at), &mut tmp[..len], true)
                .unwrap();
            assert_eq!(&tmp[..len], &buf.bytes(off, len)[..], "write {len} at {at:#x}");
        }
    }
    // Multi-page test.
    let mut all = vec![0u8; BUFFER_SIZE as usize];
    r.ioas
        .access_rw(access, Iova::new(iova), &mut all, false)
        .unwrap();
    assert_eq!(all, buf.bytes(0, BUFFER_SIZE as usize));
}

/// Selftest `access_rw`.
#[test]
fn access_rw() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        let access = MockAccess::attach(&r.ioas, 1, false);
        let at = r
            .ioas
            .map(buf.user(0, BUFFER_SIZE), Placement::Alloc, Access::RW)
            .unwrap();
        let charged = r.account.locked_pages();
        check_access_rw(&r, &buf, access.id, at.start().raw());
        assert_eq!(
            r.account.locked_pages(),
            charged,
            "{}: no lasting pin",
            variant.name
        );
        r.ioas.unmap(at).unwrap();
        r.ioas.remove_access(access.id).unwrap();
        r.teardown(&[]);
    }
}

/// Selftest `access_rw_unaligned`: a mapping at a sub-page IOVA (an IOAS without a domain and an
/// access that does not pin keep the IOVA alignment at 1).
#[test]
fn access_rw_unaligned() {
    let r = rig(VARIANTS[0]);
    let buf = Buffer::new(BUFFER_PAGES);
    let access = MockAccess::attach(&r.ioas, 1, false);
    let iova = BASE + HALF_PAGE;
    map_fixed(&r.ioas, &buf, 0, BUFFER_SIZE, iova, Access::RW);
    check_access_rw(&r, &buf, access.id, iova);
    r.ioas.unmap(range(iova, BUFFER_SIZE)).unwrap();
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

/// `iommufd_access_rw`'s errnos; a refused write changes no byte.
#[test]
fn access_rw_errnos() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(4);
    let access = MockAccess::attach(&r.ioas, 1, false);
    map_fixed(&r.ioas, &buf, 0, PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, PAGE, PAGE, BASE + PAGE, Access::READ);
    map_fixed(&r.ioas, &buf, 2 * PAGE, PAGE, BASE + 3 * PAGE, Access::WRITE);
    let before = r.snapshot();
    let mut data = [0xeeu8; 16];
    let mut rw = |iova: u64, len: usize, write: bool| {
        r.ioas
            .access_rw(access.id, Iova::new(iova), &mut data[..len], write)
    };

    assert_eq!(errno(rw(BASE, 0, false)), Errno::INVAL);
    assert_eq!(errno(rw(u64::MAX - 7, 16, false)), Errno::OVERFLOW);
    assert_eq!(
        errno(
            r.ioas
                .access_rw(AccessId(5), Iova::new(BASE), &mut [0u8; 4], false)
        ),
        Errno::NOENT
    );
    // A write into the read-only area, a read of the write-only one.
    assert_eq!(errno(rw(BASE + PAGE - 8, 16, true)), Errno::PERM);
    assert_eq!(errno(rw(BASE + 3 * PAGE, 16, false)), Errno::PERM);
    // Running from an area into the hole: ENOENT, but a refused permission is found first.
    assert_eq!(errno(rw(BASE + 2 * PAGE - 8, 16, true)), Errno::PERM);
    assert_eq!(errno(rw(BASE + 2 * PAGE - 8, 16, false)), Errno::NOENT);
    assert_eq!(errno(rw(BASE + 4 * PAGE - 8, 16, true)), Errno::NOENT);
    assert_eq!(
        buf.bytes(3 * 4096 - 8, 8),
        vec![0; 8],
        "nothing written before the gap"
    );
    assert_eq!(r.snapshot(), before);
    // What works: a write of the write-only area, a read of the read-only one.
    rw(BASE + 3 * PAGE, 16, true).unwrap();
    assert_eq!(buf.bytes(2 * 4096, 16), vec![0xee; 16]);
    rw(BASE + PAGE, 16, false).unwrap();
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

/// Selftest `access_domain_destory`: a domain goes away while an access holds pages of its
/// areas; the access's pin stays good, and everything unwinds.
#[test]
fn access_domain_destroy() {
    for variant in VARIANTS {
        let mut r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        buf.set(4096 + 1, 0x3c);
        map_fixed(&r.ioas, &buf, 0, BUFFER_SIZE, BASE, Access::RW);
        let access = MockAccess::attach(&r.ioas, 1, true);
        let hpas = access.pin(BASE + PAGE, PAGE, true).unwrap();
        for d in std::mem::take(&mut r.domains) {
            r.ioas.detach_domain(&d).unwrap();
        }
        assert_eq!(
            r.account.locked_pages(),
            1,
            "{}: the access's page stays",
            variant.name
        );
        assert_eq!(host_bytes(&r, hpas[0], 2)[1], 0x3c);
        access.destroy_item(BASE + PAGE, PAGE).unwrap();
        r.ioas.remove_access(access.id).unwrap();
        r.teardown(&[]);
    }
}

/// Attaching and detaching accesses: the IOVA alignment follows those that pin; a detach tells
/// the access to let go of everything; one that does not stays attached (`EDEADLK`).
#[test]
fn access_attach_and_detach() {
    let r = rig(VARIANTS[0]);
    let buf = Buffer::new(4);
    let alignment = |ioas: &IoPageTable| ioas.iova_ranges().1.bytes();
    // A sub-page mapping refuses an access that pins (`iopt_calculate_iova_alignment`).
    map_fixed(&r.ioas, &buf, 0x800, PAGE, BASE + 0x800, Access::RW);
    let pinner = MockAccess::new(&r.ioas, 1, true);
    let add = |a: &Arc<MockAccess>, pins| {
        r.ioas
            .add_access(a.id, Arc::clone(a) as Arc<dyn AccessNotify>, pins)
    };
    assert_eq!(errno(add(&pinner, true)), Errno::ADDRINUSE);
    assert_eq!(errno(pinner.pin(BASE, PAGE, false)), Errno::NOENT, "not attached");
    add(&pinner, false).unwrap();
    assert_eq!(errno(add(&pinner, false)), Errno::EXIST);
    assert_eq!(alignment(&r.ioas), 1);
    r.ioas.remove_access(pinner.id).unwrap();
    assert_eq!(errno(r.ioas.remove_access(pinner.id)), Errno::NOENT);
    r.ioas.unmap(range(BASE + 0x800, PAGE)).unwrap();

    add(&pinner, true).unwrap();
    assert_eq!(alignment(&r.ioas), PAGE);
    map_fixed(&r.ioas, &buf, 0, 4 * PAGE, BASE, Access::RW);
    pinner.pin(BASE, 2 * PAGE, true).unwrap();
    pinner.pin(BASE + 3 * PAGE, PAGE, false).unwrap();
    pinner.calls.lock().clear();
    r.ioas.remove_access(pinner.id).unwrap();
    assert_eq!(*pinner.calls.lock(), vec![uvfio_types::IovaRange::full()]);
    assert_eq!(pinner.items(), 0);
    assert_eq!(r.account.locked_pages(), 0);
    assert_eq!(alignment(&r.ioas), 1);

    let stuck = MockAccess::new(&r.ioas, 2, false);
    add(&stuck, true).unwrap();
    stuck.pin(BASE + PAGE, PAGE, false).unwrap();
    assert_eq!(errno(r.ioas.remove_access(stuck.id)), Errno::DEADLK);
    assert_eq!(r.ioas.access_pins(stuck.id), vec![range(BASE + PAGE, PAGE)]);
    stuck.pin(BASE, PAGE, false).unwrap();
    stuck.destroy_item(BASE, PAGE).unwrap();
    stuck.destroy_item(BASE + PAGE, PAGE).unwrap();
    r.ioas.remove_access(stuck.id).unwrap();
    r.teardown(&[]);
}

/// An access of the IOAS that holds a copy: an unmap of the original does not involve it, an
/// unmap of the copy does.
#[test]
fn access_on_a_copy() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(2);
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    let dst = r.another_ioas();
    let access = MockAccess::attach(&dst, 1, true);
    let to = dst
        .copy_from(&r.ioas, range(BASE, 2 * PAGE), Placement::Alloc, Access::RW)
        .unwrap();
    access.pin(to.start().raw(), 2 * PAGE, true).unwrap();
    r.ioas.unmap(range(BASE, 2 * PAGE)).unwrap();
    assert!(access.calls.lock().is_empty());
    assert_eq!(r.account.locked_pages(), 2, "the access holds the shared pages");
    dst.unmap(to).unwrap();
    assert_eq!(access.calls.lock().len(), 1);
    dst.remove_access(access.id).unwrap();
    r.teardown(&[&dst]);
}

/// `iommufd_fail_nth` `access_pin` and `access_pin_domain`: every injected failure of a pin over
/// two areas leaves no pin and no charge.
#[test]
fn fail_nth_access_pin() {
    for variant in [VARIANTS[0], VARIANTS[1]] {
        let r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        map_fixed(&r.ioas, &buf, 0, BUFFER_SIZE / 2, BASE, Access::RW);
        map_fixed(
            &r.ioas,
            &buf,
            BUFFER_SIZE / 2,
            BUFFER_SIZE / 2,
            BASE + BUFFER_SIZE / 2,
            Access::RW,
        );
        let access = MockAccess::attach(&r.ioas, 1, true);
        warm_up(&access, BASE, BUFFER_SIZE, true);
        let before = r.snapshot();
        let mut n = 1;
        loop {
            r.fail.fail_nth(n);
            match access.pin(BASE, BUFFER_SIZE, true) {
                Ok(hpas) => {
                    assert_eq!(hpas.len(), BUFFER_PAGES);
                    break;
                }
                Err(e) => {
                    assert!(r.fail.fired(), "step {n}: a failure that was not injected: {e}");
                    assert_eq!(r.snapshot(), before, "{}: step {n}", variant.name);
                    assert!(r.ioas.access_pins(access.id).is_empty());
                }
            }
            n += 1;
        }
        r.fail.fail_nth(0);
        assert_eq!(n, 3, "one pin per area");
        access.destroy_item(BASE, BUFFER_SIZE).unwrap();
        r.ioas.remove_access(access.id).unwrap();
        r.teardown(&[]);
    }
}

/// `iommufd_fail_nth` `access_rw`: a failed read or write moves no byte and holds nothing.
#[test]
fn fail_nth_access_rw() {
    let r = rig(VARIANTS[0]);
    let buf = Buffer::new(4);
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, 2 * PAGE, 2 * PAGE, BASE + 2 * PAGE, Access::RW);
    let mut n = 1;
    let access = loop {
        r.fail.fail_nth(n);
        let access = MockAccess::new(&r.ioas, 1, true);
        match r
            .ioas
            .add_access(access.id, Arc::clone(&access) as Arc<dyn AccessNotify>, false)
        {
            Ok(()) => break access,
            Err(e) => assert_eq!(e.errno(), Errno::NOMEM),
        }
        n += 1;
    };
    r.fail.fail_nth(0);
    // The buffers become part of the host's memory at their first pin, for good.
    r.ioas
        .access_rw(access.id, Iova::new(BASE), &mut vec![0; 4 * 4096], false)
        .unwrap();
    let before = r.snapshot();
    for write in [false, true] {
        let mut n = 1;
        loop {
            let mut data = [0x5au8; 64];
            r.fail.fail_nth(n);
            match r
                .ioas
                .access_rw(access.id, Iova::new(BASE + 2 * PAGE - 32), &mut data, write)
            {
                Ok(()) => break,
                Err(e) => {
                    assert!(r.fail.fired(), "step {n}: {e}");
                    assert_eq!(r.snapshot(), before, "step {n}");
                    assert_eq!(buf.bytes(2 * 4096 - 32, 64), vec![0; 64], "step {n}: bytes moved");
                    if !write {
                        assert_eq!(data, [0x5a; 64], "step {n}: bytes moved");
                    }
                }
            }
            n += 1;
        }
        r.fail.fail_nth(0);
        assert_eq!(n, 3, "a temporary pin per area");
    }
    assert_eq!(buf.bytes(2 * 4096 - 32, 64), vec![0x5a; 64]);
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

/// An access pinning and unpinning on one thread while another maps and unmaps the range: every
/// unmap goes through (the callback runs without the IOAS lock and unpins), every pin either
/// works or meets an unmapped or departing area, and nothing is left at the end.
#[test]
fn pins_race_unmaps() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(4);
    let access = MockAccess::attach(&r.ioas, 1, true);
    let stop = Arc::new(AtomicBool::new(false));
    let pinned = Arc::new(AtomicU32::new(0));
    let pinner = {
        let (access, stop, pinned) = (Arc::clone(&access), Arc::clone(&stop), Arc::clone(&pinned));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match access.pin(BASE + PAGE, 2 * PAGE, true) {
                    Ok(_) => {
                        pinned.fetch_add(1, Ordering::Relaxed);
                        // The unmap callback may have taken the item already.
                        match access.destroy_item(BASE + PAGE, 2 * PAGE) {
                            Ok(()) | Err(Errno::NOENT) => {}
                            Err(e) => panic!("unpin: {e}"),
                        }
                    }
                    // Unmapped (`ENOENT`) or being unmapped (`EINVAL`).
                    Err(e) => assert!(matches!(e.errno(), Errno::NOENT | Errno::INVAL), "pin: {e}"),
                }
            }
        })
    };
    let mut rounds = 0;
    while rounds < 300 || (pinned.load(Ordering::Relaxed) < 20 && rounds < 20_000) {
        map_fixed(&r.ioas, &buf, 0, 4 * PAGE, BASE, Access::RW);
        assert_eq!(r.ioas.unmap(range(BASE, 4 * PAGE)).unwrap(), 4 * PAGE);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    pinner.join().unwrap();
    assert_eq!(access.items(), 0);
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

/// An IOAS dropped with areas, domains and an access pin left (the object layer unmaps first, as
/// Linux does; this is the safety net): the domains lose the mappings, and every pin, charge and
/// adopted segment goes.
#[test]
fn dropping_an_ioas_retires_everything() {
    let r = rig(VARIANTS[2]);
    let buf = Buffer::new(4);
    map_fixed(&r.ioas, &buf, 0, 4 * PAGE, BASE, Access::RW);
    let access = MockAccess::attach(&r.ioas, 1, true);
    access.pin(BASE, 2 * PAGE, true).unwrap();
    let Rig {
        mem,
        account,
        ioas,
        domains,
        ..
    } = r;
    assert_eq!(account.locked_pages(), 4);
    drop(ioas);
    for d in &domains {
        assert!(d.lookup(Iova::new(BASE)).is_none());
    }
    assert_eq!(account.locked_pages(), 0);
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.stats().adopted_segments, 0);
}
