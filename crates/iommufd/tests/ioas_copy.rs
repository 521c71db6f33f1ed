//! `IOMMU_IOAS_COPY` on the IOAS page table, after the kernel selftests `copy_area` and
//! `copy_sweep` (`tools/testing/selftests/iommu/iommufd.c`) and the copy step of
//! `iommufd_fail_nth`'s `basic`: a copy maps the source's very `Pages` (no new charge), one area per
//! source area it spans, all or nothing; every test and every injected failure ends with pins,
//! charge and adopted segments back to baseline.

mod ioas_support;

use ioas_support::*;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_iommu::{Domain, FaultReason};
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::iova_space::Placement;
use uvfio_types::{Access, Iova, IovaRange};

fn map_fixed(ioas: &IoPageTable, buf: &Buffer, offset: u64, len: u64, iova: u64, prot: Access) -> IovaRange {
    ioas.map(buf.user(offset, len), Placement::Fixed(Iova::new(iova)), prot)
        .unwrap()
}

fn fixed(iova: u64) -> Placement {
    Placement::Fixed(Iova::new(iova))
}

/// The byte a device reads at `iova` through `domain`.
fn dma_byte(domain: &Arc<uvfio_iommu::Domain>, iova: u64) -> u8 {
    let mut b = [0u8; 1];
    domain.port(7).read(Iova::new(iova), &mut b).unwrap();
    b[0]
}

/// Selftest `copy_area`: a copy inside one IOAS and a copy into another.
#[test]
fn copy_area() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(1);
        buf.set(0x123, 0xa5);
        map_fixed(&r.ioas, &buf, 0, PAGE, BASE, Access::RW);
        let charged = r.account.locked_pages();

        // Copy inside a single IOAS.
        let to = r
            .ioas
            .copy_from(&r.ioas, range(BASE, PAGE), fixed(BASE + PAGE), Access::RW)
            .unwrap();
        assert_eq!(to, range(BASE + PAGE, PAGE));
        assert_eq!(r.ioas.area_count(), 2);
        assert_eq!(
            r.account.locked_pages(),
            charged,
            "{}: a copy is not charged again",
            variant.name
        );
        let areas = r.ioas.areas();
        assert!(
            Arc::ptr_eq(&areas[0].1, &areas[1].1),
            "the copy maps the same Pages"
        );
        drop(areas);
        for d in &r.domains {
            assert_eq!(dma_byte(d, BASE + PAGE + 0x123), 0xa5);
        }

        // Copy between IOAS's.
        let dst = r.another_ioas();
        let to = dst
            .copy_from(&r.ioas, range(BASE, PAGE), fixed(0), Access::RW)
            .unwrap();
        assert_eq!(to, range(0, PAGE));
        assert_eq!(dst.area_count(), 1);
        r.teardown(&[&dst]);
    }
}

/// Selftest `copy_sweep`: a half-page window swept over a mapping in steps of 511 bytes: inside it
/// the copy works, reaching outside it `ENOENT`.
#[test]
fn copy_sweep() {
    for variant in VARIANTS {
        let r = rig(variant);
        let buf = Buffer::new(BUFFER_PAGES);
        let dst = r.another_ioas();
        let last_iova = if variant.mock_domains > 0 {
            BASE + BUFFER_SIZE - 1
        } else {
            BASE + BUFFER_SIZE - 2
        };
        map_fixed(&r.ioas, &buf, 0, last_iova - BASE + 1, BASE, Access::RW);
        let mut iova = BASE - PAGE;
        let (mut copied, mut refused) = (0, 0);
        while iova <= last_iova {
            let src = range(iova, HALF_PAGE);
            let result = dst.copy_from(&r.ioas, src, fixed(BASE), Access::RW);
            if iova < BASE || src.last().raw() > last_iova {
                assert_eq!(errno(result), Errno::NOENT, "{}: {src}", variant.name);
                assert_eq!(dst.area_count(), 0);
                refused += 1;
            } else {
                assert_eq!(result.unwrap(), range(BASE, HALF_PAGE));
                assert_eq!(dst.unmap(range(BASE, HALF_PAGE)).unwrap(), HALF_PAGE);
                copied += 1;
            }
            iova += 511;
        }
        assert!(copied > 100 && refused > 8, "{copied} copies, {refused} refusals");
        r.teardown(&[&dst]);
    }
}

/// One destination area per source area the range spans (`iopt_get_pages` builds one list element
/// per area), each over its source's `Pages`; only the pages a mapping holds stay charged.
#[test]
fn a_copy_spanning_areas_is_one_area_per_piece() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(8);
    for i in 0..buf.len() {
        buf.set(i, (i / 4096) as u8 + 1);
    }
    // Two source areas over two separate maps (two Pages): pages 0-1 and pages 4-6.
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, 4 * PAGE, 3 * PAGE, BASE + 2 * PAGE, Access::RW);
    assert_eq!(r.account.locked_pages(), 5);
    let dst = r.another_ioas();
    let d = domain(&r.mem);
    dst.attach_domain(Arc::clone(&d)).unwrap();

    let to = dst
        .copy_from(
            &r.ioas,
            range(BASE + PAGE, 3 * PAGE),
            Placement::Alloc,
            Access::READ,
        )
        .unwrap();
    assert_eq!(to.len_minus_one() + 1, 3 * PAGE);
    assert_eq!(dst.area_count(), 2);
    let (src_areas, dst_areas) = (r.ioas.areas(), dst.areas());
    assert_eq!(dst_areas[0].0, range(to.start().raw(), PAGE));
    assert_eq!(dst_areas[1].0, range(to.start().raw() + PAGE, 2 * PAGE));
    assert!(Arc::ptr_eq(&dst_areas[0].1, &src_areas[0].1));
    assert!(Arc::ptr_eq(&dst_areas[1].1, &src_areas[1].1));
    drop((src_areas, dst_areas));
    assert_eq!(
        r.account.locked_pages(),
        5,
        "the destination's domain pins nothing new"
    );
    // The bytes: source page 1, then source pages 4 and 5.
    let base = to.start().raw();
    assert_eq!(dma_byte(&d, base), 2);
    assert_eq!(dma_byte(&d, base + PAGE), 5);
    assert_eq!(dma_byte(&d, base + 2 * PAGE + 7), 6);
    assert_eq!(
        d.port(1).write(to.start(), &[0]).unwrap_err().reason,
        FaultReason::Permission {
            granted: Access::READ
        },
        "the copy is read-only"
    );

    // With the source gone, the copy's pages stay pinned: one page of the first Pages, two of the
    // second.
    assert_eq!(r.ioas.try_unmap_all().unwrap(), 5 * PAGE);
    assert_eq!(r.account.locked_pages(), 3);
    assert_eq!(dma_byte(&d, base + PAGE), 5);
    // Each piece is an area of its own: it can be unmapped alone.
    assert_eq!(dst.unmap(range(base, PAGE)).unwrap(), PAGE);
    assert_eq!(r.account.locked_pages(), 2);
    assert_eq!(dst.unmap(to).unwrap(), 2 * PAGE);
    dst.detach_domain(&d).unwrap();
    r.teardown(&[&dst]);
}

/// The copy's errnos, in Linux's order, each leaving the destination as it was.
#[test]
fn copy_errnos() {
    let r = rig(VARIANTS[0]);
    let buf = Buffer::new(8);
    map_fixed(&r.ioas, &buf, 0, 2 * PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, 2 * PAGE, 2 * PAGE, BASE + 3 * PAGE, Access::RW);
    map_fixed(&r.ioas, &buf, 4 * PAGE, 2 * PAGE, BASE + 5 * PAGE, Access::READ);
    // A sub-page source offset: mapped at an IOVA ending in 0x800.
    map_fixed(
        &r.ioas,
        &buf,
        6 * PAGE + 0x800,
        PAGE,
        BASE + 0x10_0800,
        Access::READ,
    );
    let dst = r.another_ioas();
    let d = domain(&r.mem);
    dst.attach_domain(Arc::clone(&d)).unwrap();
    map_fixed(&dst, &buf, 0, PAGE, BASE, Access::RW);
    let before = (dst.area_count(), r.snapshot());
    let copy = |src: IovaRange, at: Placement, prot: Access| dst.copy_from(&r.ioas, src, at, prot);

    // Neither read nor write.
    assert_eq!(
        errno(copy(range(BASE, PAGE), Placement::Alloc, Access::empty())),
        Errno::INVAL
    );
    // The source: a hole at the start, a gap inside, a range running past the last area.
    assert_eq!(
        errno(copy(range(BASE - PAGE, 2 * PAGE), Placement::Alloc, Access::RW)),
        Errno::NOENT
    );
    assert_eq!(
        errno(copy(range(BASE + PAGE, 3 * PAGE), Placement::Alloc, Access::RW)),
        Errno::NOENT
    );
    assert_eq!(
        errno(copy(
            range(BASE + 6 * PAGE, 2 * PAGE),
            Placement::Alloc,
            Access::READ
        )),
        Errno::NOENT
    );
    assert_eq!(
        errno(copy(range(BASE + 0x40_0000, PAGE), Placement::Alloc, Access::RW)),
        Errno::NOENT
    );
    // The destination: over a mapping, misaligned for its domain.
    assert_eq!(
        errno(copy(range(BASE, PAGE), fixed(BASE), Access::RW)),
        Errno::EXIST
    );
    assert_eq!(
        errno(copy(range(BASE, PAGE), fixed(BASE + 0x800), Access::RW)),
        Errno::INVAL
    );
    assert_eq!(
        errno(copy(range(BASE, 0x800), Placement::Alloc, Access::RW)),
        Errno::INVAL
    );
    // Read-only pages copied writable (`iopt_insert_area`), also when only the second piece is.
    assert_eq!(
        errno(copy(range(BASE + 5 * PAGE, PAGE), Placement::Alloc, Access::RW)),
        Errno::PERM
    );
    assert_eq!(
        errno(copy(
            range(BASE + 5 * PAGE, PAGE),
            fixed(BASE + PAGE),
            Access::WRITE
        )),
        Errno::PERM
    );
    assert_eq!(
        errno(copy(
            range(BASE + 4 * PAGE, 2 * PAGE),
            Placement::Alloc,
            Access::RW
        )),
        Errno::PERM
    );
    // A source offset the destination's alignment refuses: EINVAL read-only, EPERM (checked first)
    // writable.
    let odd = range(BASE + 0x10_0800, PAGE);
    assert_eq!(errno(copy(odd, Placement::Alloc, Access::READ)), Errno::INVAL);
    assert_eq!(
        errno(copy(odd, fixed(BASE + 0x20_0000), Access::READ)),
        Errno::INVAL
    );
    assert_eq!(errno(copy(odd, fixed(BASE + 0x20_0000), Access::RW)), Errno::PERM);
    assert_eq!(
        (dst.area_count(), r.snapshot()),
        before,
        "every refusal left everything as it was"
    );

    // What is allowed: read-only pages copied read-only; the sub-page offset into an IOAS
    // without a domain.
    copy(range(BASE + 5 * PAGE, 2 * PAGE), fixed(BASE + PAGE), Access::READ).unwrap();
    let third = r.another_ioas();
    let to = third
        .copy_from(&r.ioas, odd, Placement::Alloc, Access::READ)
        .unwrap();
    assert_eq!(
        to.start().raw() % PAGE,
        0x800,
        "the page offset survives the copy"
    );
    dst.detach_domain(&d).unwrap();
    r.teardown(&[&dst, &third]);
}

/// A copy inside one IOAS with its domains attached takes the IOAS's lock twice in turn, never
/// nested; the copy outlives the original.
#[test]
fn copy_inside_one_ioas_with_domains() {
    let r = rig(VARIANTS[2]);
    let buf = Buffer::new(4);
    buf.set(3 * 4096 + 9, 0x77);
    let src = map_fixed(&r.ioas, &buf, 0, 4 * PAGE, BASE, Access::RW);
    let to = r
        .ioas
        .copy_from(&r.ioas, src, Placement::Alloc, Access::RW)
        .unwrap();
    assert_eq!(r.account.locked_pages(), 4);
    r.ioas.unmap(src).unwrap();
    assert_eq!(r.account.locked_pages(), 4, "the copy holds the pages");
    for d in &r.domains {
        assert_eq!(dma_byte(d, to.start().raw() + 3 * PAGE + 9), 0x77);
        assert!(d.lookup(src.start()).is_none());
    }
    // A copy of the copy, and the pages are still charged once.
    r.ioas
        .copy_from(
            &r.ioas,
            range(to.start().raw() + PAGE, PAGE),
            Placement::Alloc,
            Access::READ,
        )
        .unwrap();
    assert_eq!(r.account.locked_pages(), 4);
    r.teardown(&[]);
}

/// After failed step `n`: every counter as `before`, except that a rolled-back map may leave the
/// tables it emptied linked (Linux frees a table only when an unmap covers it whole): at most one
/// map's worth, the three levels under the root, more in each domain than `frames` had (and they
/// go with the domain).
fn unchanged_but_tables(r: &Rig, before: Snapshot, domains: &[Arc<Domain>], frames: &[usize], n: u64) {
    let now = r.snapshot();
    assert_eq!(
        Snapshot {
            table_frames: before.table_frames,
            ..now
        },
        before,
        "step {n}"
    );
    for (d, &had) in domains.iter().zip(frames) {
        assert!(d.table_frames() <= had + 3, "step {n}: tables beyond one map's");
    }
}

/// `iommufd_fail_nth` over a copy: each injected failure (piece list, IOVA allocation, pin, each
/// domain's map) leaves the destination empty and every counter as it was.
#[test]
fn fail_nth_copy_leaves_nothing_behind() {
    let r = rig(VARIANTS[1]);
    let buf = Buffer::new(8);
    map_fixed(&r.ioas, &buf, 0, 3 * PAGE, BASE, Access::RW);
    map_fixed(&r.ioas, &buf, 3 * PAGE, 5 * PAGE, BASE + 3 * PAGE, Access::RW);
    for dst_domains in [0, 2] {
        let dst = r.another_ioas();
        let frames_before = r.mem.stats().table_frames;
        let domains: Vec<_> = (0..dst_domains).map(|_| domain(&r.mem)).collect();
        for d in &domains {
            dst.attach_domain(Arc::clone(d)).unwrap();
        }
        let before = r.snapshot();
        let mut n = 1;
        let to = loop {
            r.fail.fail_nth(n);
            match dst.copy_from(
                &r.ioas,
                range(BASE + PAGE, 6 * PAGE),
                Placement::Alloc,
                Access::RW,
            ) {
                Ok(to) => break to,
                Err(e) => {
                    assert!(r.fail.fired(), "step {n}: a failure that was not injected: {e}");
                    assert_eq!(dst.area_count(), 0, "step {n}");
                    unchanged_but_tables(&r, before, &domains, &[1, 1], n);
                }
            }
            n += 1;
        };
        r.fail.fail_nth(0);
        // Two pieces, an IOVA allocation, and with domains a pin and a map per domain per piece.
        let steps = if dst_domains == 0 { 3 } else { 3 + 2 * 3 };
        assert_eq!(n, steps + 1, "{dst_domains} domains: {n} steps");
        assert_eq!(dst.area_count(), 2);
        assert_eq!(r.account.locked_pages(), 8, "no new charge");
        for d in &domains {
            assert_eq!(dma_byte(d, to.start().raw()), 0);
        }
        dst.unmap(to).unwrap();
        for d in &domains {
            dst.detach_domain(d).unwrap();
        }
        drop(domains);
        assert_eq!(r.mem.stats().table_frames, frames_before, "tables left behind");
    }
    // The same inside the source IOAS.
    let before = r.snapshot();
    let frames: Vec<usize> = r.domains.iter().map(|d| d.table_frames()).collect();
    let areas = r.ioas.area_count();
    let mut n = 1;
    let to = loop {
        r.fail.fail_nth(n);
        match r
            .ioas
            .copy_from(&r.ioas, range(BASE, 8 * PAGE), Placement::Alloc, Access::READ)
        {
            Ok(to) => break to,
            Err(_) => {
                assert!(r.fail.fired());
                assert_eq!(r.ioas.area_count(), areas, "step {n}");
                unchanged_but_tables(&r, before, &r.domains, &frames, n);
            }
        }
        n += 1;
    };
    r.fail.fail_nth(0);
    r.ioas.unmap(to).unwrap();
    r.teardown(&[]);
}
