//! `IoPageTable::cut_iova` (Linux `iopt_cut_iova` / `iopt_area_split`) and the large-page switch
//! (`iopt_disable_large_pages` / `iopt_enable_large_pages`, the selftests' `ioas_option_huge_pages`
//! and `ioas_align_change` steps): what a cut does, every refusal with its errno and nothing
//! changed, and DMA through the halves across a cut. Every test ends with the leak check.

mod ctx_support;
mod ioas_support;

use ioas_support::*;
use parking_lot::Mutex;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_iommu::{Domain, DomainConfig};
use uvfio_iommufd::iova_space::Placement;
use uvfio_types::{Access, Iova, IovaRange, PageSizes};

fn map_at(r: &Rig, buf: &Buffer, offset: u64, iova: u64, len: u64) -> IovaRange {
    r.ioas
        .map(
            buf.user(offset, len),
            Placement::Fixed(Iova::new(iova)),
            Access::RW,
        )
        .unwrap()
}

fn area_ranges(r: &Rig) -> Vec<IovaRange> {
    r.ioas.areas().into_iter().map(|(a, _)| a).collect()
}

fn domain_4k(r: &Rig) -> Arc<Domain> {
    let config = DomainConfig {
        page_sizes: PageSizes::SZ_4K,
        ..DomainConfig::default()
    };
    Domain::new_paging(Arc::clone(&r.mem), config).unwrap()
}

fn no_domain() -> Rig {
    rig(VARIANTS[0])
}

#[test]
fn cut_splits_an_area_over_the_same_pages() {
    let buf = Buffer::new(8);
    let r = no_domain();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    let before = r.snapshot();
    // A cut point outside every area, or at an area's edge, is nothing to do.
    r.ioas
        .cut_iova(&[
            Iova::new(BASE - 1),
            Iova::new(BASE),
            Iova::new(BASE + 8 * PAGE - 1),
        ])
        .unwrap();
    assert_eq!(area_ranges(&r), vec![range(BASE, 8 * PAGE)]);

    r.ioas.cut_iova(&[Iova::new(BASE + 4 * PAGE - 1)]).unwrap();
    assert_eq!(
        area_ranges(&r),
        vec![range(BASE, 4 * PAGE), range(BASE + 4 * PAGE, 4 * PAGE)]
    );
    let areas = r.ioas.areas();
    assert!(
        Arc::ptr_eq(&areas[0].1, &areas[1].1),
        "both halves share the pages"
    );
    assert_eq!(r.snapshot(), before, "a cut pins, charges and allocates nothing");

    // Without a domain or large pages disabled the IOVA alignment is 1: any byte may be cut.
    r.ioas.cut_iova(&[Iova::new(BASE + 100)]).unwrap();
    assert_eq!(r.ioas.area_count(), 3);
    // Each half now unmaps on its own; the whole range no longer needs to be one area.
    assert_eq!(r.ioas.unmap(range(BASE + 4 * PAGE, 4 * PAGE)).unwrap(), 4 * PAGE);
    assert_eq!(r.ioas.unmap(range(BASE, 4 * PAGE)).unwrap(), 4 * PAGE);
    r.teardown(&[]);
}

#[test]
fn two_cuts_make_three_areas_and_the_middle_unmaps() {
    let buf = Buffer::new(8);
    let r = no_domain();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    // vfio_compat's order: the last byte first, then the byte before the start; repeats and
    // the points next to an earlier cut are no-ops.
    let cuts = [
        Iova::new(BASE + 5 * PAGE - 1),
        Iova::new(BASE + 2 * PAGE - 1),
        Iova::new(BASE + 5 * PAGE - 1),
        Iova::new(BASE + 5 * PAGE),
    ];
    r.ioas.cut_iova(&cuts).unwrap();
    assert_eq!(
        area_ranges(&r),
        vec![
            range(BASE, 2 * PAGE),
            range(BASE + 2 * PAGE, 3 * PAGE),
            range(BASE + 5 * PAGE, 3 * PAGE)
        ]
    );
    assert_eq!(r.ioas.unmap(range(BASE + 2 * PAGE, 3 * PAGE)).unwrap(), 3 * PAGE);
    r.teardown(&[]);
}

#[test]
fn cut_in_a_domain_with_large_pages_enabled_is_einval() {
    for variant in &VARIANTS[1..] {
        let buf = Buffer::new(8);
        let r = rig(*variant);
        map_at(&r, &buf, 0, BASE, 8 * PAGE);
        let before = r.snapshot();
        let e = errno(r.ioas.cut_iova(&[Iova::new(BASE + 4 * PAGE - 1)]));
        assert_eq!(e, Errno::INVAL, "{}", variant.name);
        assert_eq!(area_ranges(&r), vec![range(BASE, 8 * PAGE)], "nothing changed");
        assert_eq!(r.snapshot(), before);
        // And disabling large pages now is refused: domains already map pages.
        assert_eq!(errno(r.ioas.disable_large_pages()), Errno::INVAL);
        assert!(!r.ioas.large_pages_disabled());
        r.teardown(&[]);
    }
}

#[test]
fn misaligned_cut_point_is_einval_and_nothing_is_cut() {
    let buf = Buffer::new(8);
    let r = no_domain();
    r.ioas.disable_large_pages().unwrap();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    // The first cut of the list is fine, the second is not: none is made.
    let e = errno(
        r.ioas
            .cut_iova(&[Iova::new(BASE + 4 * PAGE - 1), Iova::new(BASE + 100)]),
    );
    assert_eq!(e, Errno::INVAL);
    assert_eq!(area_ranges(&r), vec![range(BASE, 8 * PAGE)]);
    r.teardown(&[]);
}

#[test]
fn cut_of_an_area_with_access_pins_is_einval() {
    let buf = Buffer::new(8);
    let r = no_domain();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    let access = MockAccess::attach(&r.ioas, 1, true);
    access.pin(BASE, PAGE, true).unwrap();
    let before = r.snapshot();
    assert_eq!(
        errno(r.ioas.cut_iova(&[Iova::new(BASE + 4 * PAGE - 1)])),
        Errno::INVAL
    );
    assert_eq!(area_ranges(&r), vec![range(BASE, 8 * PAGE)]);
    assert_eq!(r.snapshot(), before);
    // Another area without pins cuts fine.
    let other = Buffer::new(4);
    map_at(&r, &other, 0, BASE + 16 * PAGE, 4 * PAGE);
    r.ioas.cut_iova(&[Iova::new(BASE + 18 * PAGE - 1)]).unwrap();
    access.destroy_item(BASE, PAGE).unwrap();
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

#[test]
fn cut_while_an_unmap_waits_on_accesses_is_ebusy() {
    let buf = Buffer::new(8);
    let r = no_domain();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    let access = MockAccess::attach(&r.ioas, 1, true);
    access.pin(BASE, PAGE, true).unwrap();
    let seen: Arc<Mutex<Option<Errno>>> = Arc::default();
    let (ioas, seen_in) = (Arc::downgrade(&r.ioas), Arc::clone(&seen));
    *access.on_unmap.lock() = Some(Box::new(move |_| {
        let ioas = ioas.upgrade().unwrap();
        let got = ioas.cut_iova(&[Iova::new(BASE + 4 * PAGE - 1)]);
        *seen_in.lock() = Some(got.unwrap_err().errno());
    }));
    assert_eq!(r.ioas.unmap(range(BASE, 8 * PAGE)).unwrap(), 8 * PAGE);
    assert_eq!(*seen.lock(), Some(Errno::BUSY), "area->prevent_access");
    *access.on_unmap.lock() = None;
    r.ioas.remove_access(access.id).unwrap();
    r.teardown(&[]);
}

#[test]
fn large_pages_switch_sets_the_alignment() {
    let buf = Buffer::new(8);
    let r = no_domain();
    assert!(!r.ioas.large_pages_disabled());
    assert_eq!(r.ioas.iova_ranges().1.bytes(), 1);
    r.ioas.disable_large_pages().unwrap();
    r.ioas.disable_large_pages().unwrap();
    assert!(r.ioas.large_pages_disabled());
    assert_eq!(
        r.ioas.iova_ranges().1.bytes(),
        PAGE,
        "PAGE_SIZE even without a domain"
    );
    r.ioas.enable_large_pages();
    assert_eq!(r.ioas.iova_ranges().1.bytes(), 1);

    // An area off the page alignment: the raise is EADDRINUSE, nothing changes.
    r.ioas
        .map(
            buf.user(100, PAGE),
            Placement::Fixed(Iova::new(BASE + 100)),
            Access::RW,
        )
        .unwrap();
    assert_eq!(errno(r.ioas.disable_large_pages()), Errno::ADDRINUSE);
    assert!(!r.ioas.large_pages_disabled());
    assert_eq!(r.ioas.iova_ranges().1.bytes(), 1);
    r.teardown(&[]);
}

#[test]
fn domain_without_areas_allows_disabling_and_detach_keeps_page_alignment() {
    let r = no_domain();
    let d = domain_4k(&r);
    r.ioas.attach_domain(Arc::clone(&d)).unwrap();
    r.ioas.disable_large_pages().unwrap();
    r.ioas.detach_domain(&d).unwrap();
    assert_eq!(
        r.ioas.iova_ranges().1.bytes(),
        PAGE,
        "still PAGE_SIZE after the last detach"
    );
    r.teardown(&[]);
}

#[test]
fn dma_through_both_halves_keeps_working_across_a_cut() {
    let buf = Buffer::new(8);
    let r = no_domain();
    r.ioas.disable_large_pages().unwrap();
    let d = domain_4k(&r);
    r.ioas.attach_domain(Arc::clone(&d)).unwrap();
    map_at(&r, &buf, 0, BASE, 8 * PAGE);
    let port = d.port(0x10);
    for i in 0..8u64 {
        port.write(Iova::new(BASE + i * PAGE), &[i as u8 + 1]).unwrap();
    }
    let leaves: Vec<_> = (0..8u64).map(|i| d.lookup(Iova::new(BASE + i * PAGE))).collect();
    let before = r.snapshot();

    r.ioas.cut_iova(&[Iova::new(BASE + 4 * PAGE - 1)]).unwrap();
    assert_eq!(r.snapshot(), before, "no pin, charge or table frame changed");
    let after: Vec<_> = (0..8u64).map(|i| d.lookup(Iova::new(BASE + i * PAGE))).collect();
    assert_eq!(leaves, after, "the domain was not touched");
    for i in 0..8u64 {
        let mut b = [0u8];
        port.read(Iova::new(BASE + i * PAGE), &mut b).unwrap();
        assert_eq!(b[0], i as u8 + 1);
    }

    // The right half goes: its DMA faults, its pins drop; the left half still works.
    assert_eq!(r.ioas.unmap(range(BASE + 4 * PAGE, 4 * PAGE)).unwrap(), 4 * PAGE);
    assert_eq!(r.snapshot().charged, before.charged - 4);
    let mut b = [0u8];
    assert!(port.read(Iova::new(BASE + 5 * PAGE), &mut b).is_err());
    port.write(Iova::new(BASE + PAGE), &[0xaa]).unwrap();
    assert_eq!(buf.byte(PAGE as usize), 0xaa);
    assert_eq!(
        buf.byte(5 * PAGE as usize),
        6,
        "the unmapped half's memory is as it was"
    );
    drop(port);
    r.ioas.try_unmap_all().unwrap();
    r.ioas.detach_domain(&d).unwrap();
    r.teardown(&[]);
}

#[test]
fn superpage_leaf_across_the_cut_is_einval() {
    // A domain made with super-pages allowed while large pages are disabled (the HWPT code must
    // make 4 KiB domains then): a cut inside one of its 2 MiB leaves is refused.
    const HUGE: u64 = 2 << 20;
    let r = no_domain();
    let buf = Buffer::new(2 * (HUGE / PAGE) as usize);
    r.ioas.disable_large_pages().unwrap();
    let d = domain(&r.mem);
    r.ioas.attach_domain(Arc::clone(&d)).unwrap();
    map_at(&r, &buf, 0, 4 * HUGE, 2 * HUGE);
    let cut = Iova::new(4 * HUGE + HUGE / 2 - 1);
    match d.lookup(cut) {
        Some(leaf) if leaf.size.bytes() > PAGE => {
            assert_eq!(errno(r.ioas.cut_iova(&[cut])), Errno::INVAL);
            assert_eq!(r.ioas.area_count(), 1);
        }
        // The host did not back the buffer with 2 MiB-aligned frames: 4 KiB leaves, cut fine.
        _ => r.ioas.cut_iova(&[cut]).unwrap(),
    }
    r.ioas.try_unmap_all().unwrap();
    r.ioas.detach_domain(&d).unwrap();
    r.teardown(&[]);
}

/// `IOMMU_OPTION(HUGE_PAGES)` through the raw uAPI (`iommufd_ioas_option_huge_pages`).
mod option_huge_pages {
    use super::ctx_support::{Fd, TestUser, closed_clean, ioas_alloc, ioctl, map, open};
    use rustix::io::Errno;
    use uvfio_abi::iommufd::{
        IOMMU_OPTION, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IommuOption,
    };
    use uvfio_abi::selftest::{IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, IommuTestCmd};
    use zerocopy::FromZeros;

    fn option(fd: &Fd, user: &TestUser, ioas: u32, op: u16, val64: u64) -> Result<u64, Errno> {
        let mut cmd = IommuOption {
            size: size_of::<IommuOption>() as u32,
            option_id: IOMMU_OPTION_HUGE_PAGES,
            op,
            object_id: ioas,
            val64,
            ..FromZeros::new_zeroed()
        };
        ioctl(fd, user, IOMMU_OPTION, &mut cmd).map(|()| cmd.val64)
    }

    fn mock_domain(fd: &Fd, user: &TestUser, ioas: u32) -> Result<(), Errno> {
        let mut cmd = IommuTestCmd {
            size: size_of::<IommuTestCmd>() as u32,
            op: IOMMU_TEST_OP_MOCK_DOMAIN,
            id: ioas,
            ..FromZeros::new_zeroed()
        };
        ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
    }

    /// `TEST_F(iommufd_ioas, ioas_option_huge_pages)`, and the lookups before it.
    #[test]
    fn ioas_option_huge_pages() {
        let user = TestUser::new();
        let fd = open();
        let ioas = ioas_alloc(&fd, &user);
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_GET, 3), Ok(1));
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 0), Ok(0));
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_GET, 3), Ok(0));
        assert_eq!(
            option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 2),
            Err(Errno::INVAL)
        );
        assert_eq!(
            option(&fd, &user, ioas, IOMMU_OPTION_OP_GET, 3),
            Ok(0),
            "unchanged"
        );
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 1), Ok(1));
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_GET, 3), Ok(1));
        // iommufd_get_ioas() first: ENOENT for no object, before the op is looked at.
        assert_eq!(option(&fd, &user, 0, IOMMU_OPTION_OP_GET, 0), Err(Errno::NOENT));
        assert_eq!(option(&fd, &user, ioas + 100, 7, 0), Err(Errno::NOENT));
        // An unknown op on a real IOAS: EOPNOTSUPP.
        assert_eq!(option(&fd, &user, ioas, 7, 0), Err(Errno::OPNOTSUPP));
        closed_clean(&fd);
    }

    /// `ioas_align_change`'s option steps: disabled large pages make the alignment `PAGE_SIZE`
    /// without a domain, and a domain with a mapping refuses the switch.
    #[test]
    fn disabled_large_pages_align_and_refuse_with_a_mapped_domain() {
        let user = TestUser::new();
        let fd = open();
        let ioas = ioas_alloc(&fd, &user);
        let buf = user.alloc(4 * 4096);
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 0), Ok(0));
        // Alignment is PAGE_SIZE now: an IOVA off the page is EINVAL.
        assert_eq!(
            map(&fd, &user, ioas, buf, 4096, Some((1 << 24) + 512)),
            Err(Errno::INVAL)
        );
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 1), Ok(1));
        map(&fd, &user, ioas, buf, 4 * 4096, Some(1 << 24)).unwrap();
        mock_domain(&fd, &user, ioas).unwrap();
        // "We cannot upgrade the alignment using OPTION_HUGE_PAGES when a domain and map are
        // present."
        assert_eq!(
            option(&fd, &user, ioas, IOMMU_OPTION_OP_SET, 0),
            Err(Errno::INVAL)
        );
        assert_eq!(option(&fd, &user, ioas, IOMMU_OPTION_OP_GET, 0), Ok(1));
        closed_clean(&fd);
    }
}
