//! `FIXTURE(iommufd_ioas)` of Linux's `tools/testing/selftests/iommu/iommufd.c`, through uvfio's
//! `/dev/iommu` uAPI, over the fixture's four variants as the kernel runs them: `no_domain`,
//! `mock_domain`, `two_mock_domain` and `mock_domain_limit` (one mock domain and a 16-page
//! temporary memory limit). `area::two_mock_domain` is the kernel's
//! `iommufd_ioas.two_mock_domain.area`.
//!
//! Each test mirrors the kernel's assertions (the same IOVAs, lengths and errnos) with a buffer
//! the test owns in place of the selftest's mmap'd `buffer` (16 pages aligned to 2 MiB, as
//! `posix_memalign(&buffer, HUGEPAGE_SIZE, BUFFER_SIZE)` makes it); every expected failure also
//! checks that nothing changed; every test ends with the kernel's teardown check (no page of
//! `buffer` pinned after close) and uvfio's leak check (objects, reservations, locked memory,
//! adopted memory back to zero).
//!
//! Not here: steps that need `IOMMU_OPTION_HUGE_PAGES`, access objects (`selftest_access.rs`),
//! `IOMMU_GET_HW_INFO`, nesting or fork, which uvfio does not serve yet (each test says which of
//! its kernel steps it leaves out).

mod ctx_support;
#[macro_use]
mod selftest_support;

use ctx_support::TestUser;
use rustix::io::Errno;
use selftest_support::*;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_WRITEABLE, IommuIoasIovaRanges, IommuIovaRange,
};
use zerocopy::FromZeros;

/// The selftest's copy flags. The kernel's selftest once used `IOMMU_IOAS_MAP_FIXED_IOVA` alone;
/// since "iommufd: Reject non-readable or writeable mappings" (`iommufd_ioas_copy()`: `if
/// (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -EINVAL;`) it
/// adds `IOMMU_IOAS_MAP_WRITEABLE`.
const COPY_FLAGS: u32 = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE;

// ---- TEST_F(iommufd_ioas, ioas_auto_destroy) --------------------------------------------------------

fn ioas_auto_destroy(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    f.teardown();
}
for_variants!(ioas_auto_destroy {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, ioas_destroy) -------------------------------------------------------------

fn ioas_destroy(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    if f.stdev_id != 0 {
        f.expect_errno(
            Errno::BUSY,
            "IOAS cannot be freed while a device has a HWPT using it",
            || f.destroy(f.ioas_id),
        );
    } else {
        assert_eq!(
            f.destroy(f.ioas_id),
            Ok(()),
            "{variant:?}: can allocate and manually free an IOAS table"
        );
    }
    f.teardown();
}
for_variants!(ioas_destroy {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, hwpt_attach) --------------------------------------------------------------

fn hwpt_attach(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    // Create a device attached directly to a hwpt.
    if f.stdev_id != 0 {
        let (stdev, hwpt, idev) = mock_domain(&f.fd, f.user, f.hwpt_id).expect("test_cmd_mock_domain");
        assert!(stdev != 0 && idev != 0, "{variant:?}");
        assert_eq!(hwpt, f.hwpt_id, "{variant:?}: attached to the HWPT it named");
    } else {
        f.expect_errno(Errno::NOENT, "mock_domain(hwpt_id = 0)", || {
            mock_domain(&f.fd, f.user, f.hwpt_id)
        });
    }
    f.teardown();
}
for_variants!(hwpt_attach {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, ioas_area_destroy) --------------------------------------------------------

fn ioas_area_destroy(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    // Adding an area does not change ability to destroy.
    assert_eq!(
        f.map_fixed(f.buffer, PAGE_SIZE, f.base_iova),
        Ok(()),
        "{variant:?}"
    );
    if f.stdev_id != 0 {
        f.expect_errno(Errno::BUSY, "destroy an IOAS with a HWPT and an area", || {
            f.destroy(f.ioas_id)
        });
    } else {
        assert_eq!(
            f.destroy(f.ioas_id),
            Ok(()),
            "{variant:?}: destroy an IOAS with an area"
        );
    }
    f.teardown();
}
for_variants!(ioas_area_destroy {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, ioas_area_auto_destroy) ---------------------------------------------------

fn ioas_area_auto_destroy(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    // Can allocate and automatically free an IOAS table with many areas.
    for i in 0..10 {
        assert_eq!(
            f.map_fixed(f.buffer, PAGE_SIZE, f.base_iova + i * PAGE_SIZE),
            Ok(()),
            "{variant:?}: area {i}"
        );
    }
    f.teardown();
}
for_variants!(ioas_area_auto_destroy {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, area) ---------------------------------------------------------------------

fn area(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let (buffer, base) = (f.buffer, f.base_iova);

    // Unmap fails if nothing is mapped.
    for i in 0..10 {
        f.expect_errno(Errno::NOENT, &format!("unmap {i} of nothing"), || {
            f.unmap(i * PAGE_SIZE, PAGE_SIZE)
        });
    }

    // Unmap works.
    for i in 0..10 {
        assert_eq!(
            f.map_fixed(buffer, PAGE_SIZE, base + i * PAGE_SIZE),
            Ok(()),
            "{variant:?}: map {i}"
        );
    }
    for i in 0..10 {
        assert_eq!(
            f.unmap(base + i * PAGE_SIZE, PAGE_SIZE),
            Ok(PAGE_SIZE),
            "{variant:?}: unmap {i}"
        );
    }

    // Split fails.
    assert_eq!(
        f.map_fixed(buffer, PAGE_SIZE * 2, base + 16 * PAGE_SIZE),
        Ok(()),
        "{variant:?}"
    );
    f.expect_errno(Errno::NOENT, "split the first page", || {
        f.unmap(base + 16 * PAGE_SIZE, PAGE_SIZE)
    });
    f.expect_errno(Errno::NOENT, "split the second page", || {
        f.unmap(base + 17 * PAGE_SIZE, PAGE_SIZE)
    });

    // Over map fails.
    for (length, at) in [(2, 16), (1, 16), (1, 17), (2, 15), (3, 15)] {
        f.expect_errno(
            Errno::EXIST,
            &format!("over map {length} pages at page {at}"),
            || f.map_fixed(buffer, PAGE_SIZE * length, base + at * PAGE_SIZE),
        );
    }

    // unmap all works.
    assert_eq!(f.unmap(0, u64::MAX), Ok(2 * PAGE_SIZE), "{variant:?}: unmap all");

    // Unmap all succeeds on an empty IOAS.
    assert_eq!(f.unmap(0, u64::MAX), Ok(0), "{variant:?}: unmap all of nothing");
    f.teardown();
}
for_variants!(area {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, unmap_fully_contained_areas) ----------------------------------------------

fn unmap_fully_contained_areas(variant: Variant) {
    let user = TestUser::new();
    let mut f = IoasFixture::setup(&user, variant);
    // Give no_domain some space to rewind base_iova.
    f.base_iova += 4 * PAGE_SIZE;
    let (buffer, base) = (f.buffer, f.base_iova);

    for i in 0..4 {
        assert_eq!(
            f.map_fixed(buffer, 8 * PAGE_SIZE, base + i * 16 * PAGE_SIZE),
            Ok(()),
            "{variant:?}: area {i}"
        );
    }

    // Unmap not fully contained area doesn't work.
    f.expect_errno(Errno::NOENT, "unmap cutting the first area", || {
        f.unmap(base - 4 * PAGE_SIZE, 8 * PAGE_SIZE)
    });
    f.expect_errno(Errno::NOENT, "unmap cutting the last area", || {
        f.unmap(
            base + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE,
            8 * PAGE_SIZE,
        )
    });

    // Unmap fully contained areas works.
    assert_eq!(
        f.unmap(
            base - 4 * PAGE_SIZE,
            3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE
        ),
        Ok(32 * PAGE_SIZE),
        "{variant:?}: unmap_len"
    );
    f.teardown();
}
for_variants!(unmap_fully_contained_areas {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, area_auto_iova) -----------------------------------------------------------

/// The kernel's steps in order, including the reserved region (`IOMMU_TEST_OP_ADD_RESERVED` of
/// 100 pages at page 4) that allocation avoids and that an allowed range may not cover.
fn area_auto_iova(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let buffer = f.buffer;
    let ranges = user.alloc(4096);
    let mut iovas = [0u64; 10];

    // Simple 4k pages.
    for (i, iova) in iovas.iter_mut().enumerate() {
        *iova = f
            .map(buffer, PAGE_SIZE)
            .unwrap_or_else(|e| panic!("{variant:?}: map {i}: {e:?}"));
    }
    for iova in iovas {
        assert_eq!(
            f.unmap(iova, PAGE_SIZE),
            Ok(PAGE_SIZE),
            "{variant:?}: unmap {iova:#x}"
        );
    }

    // Kernel automatically aligns IOVAs properly.
    for (i, iova) in iovas.iter_mut().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        // Without a domain nothing is pinned, so the kernel maps an address it never touches
        // (`(void *)(1UL << 31)`); uvfio does not touch it either.
        let user_va = if f.stdev_id != 0 { buffer } else { 1 << 31 };
        *iova = f
            .map(user_va, length)
            .unwrap_or_else(|e| panic!("{variant:?}: map {length:#x}: {e:?}"));
        assert_eq!(
            *iova % low_bit(length),
            0,
            "{variant:?}: iova {iova:#x} for {length:#x}"
        );
    }
    for (i, iova) in iovas.iter().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        assert_eq!(f.unmap(*iova, length), Ok(length), "{variant:?}: unmap {iova:#x}");
    }

    // Avoids a reserved region.
    let (res_start, res_length) = (PAGE_SIZE * 4, PAGE_SIZE * 100);
    assert_eq!(
        add_reserved(&f.fd, f.user, f.ioas_id, res_start, res_length),
        Ok(()),
        "{variant:?}: IOMMU_TEST_OP_ADD_RESERVED"
    );
    for (i, iova) in iovas.iter_mut().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        *iova = f
            .map(buffer, length)
            .unwrap_or_else(|e| panic!("{variant:?}: map {length:#x} beside the reserved region: {e:?}"));
        let at = *iova;
        assert_eq!(
            at % low_bit(length),
            0,
            "{variant:?}: iova {at:#x} for {length:#x}"
        );
        assert!(
            !(at > res_start && at < res_start + res_length),
            "{variant:?}: {at:#x} inside the reserved region"
        );
    }
    for (i, iova) in iovas.iter().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        assert_eq!(f.unmap(*iova, length), Ok(length), "{variant:?}: unmap {iova:#x}");
    }

    // Allowed region intersects with a reserved region.
    let over_reserved = IommuIovaRange {
        start: PAGE_SIZE,
        last: PAGE_SIZE * 600,
    };
    f.expect_errno(Errno::ADDRINUSE, "allowed over the reserved region", || {
        allow_iovas(&f.fd, f.user, f.ioas_id, ranges, &[over_reserved])
    });

    // Allocate from an allowed region.
    let allowed = if f.stdev_id != 0 {
        IommuIovaRange {
            start: MOCK_APERTURE_START + PAGE_SIZE,
            last: MOCK_APERTURE_START + PAGE_SIZE * 600 - 1,
        }
    } else {
        IommuIovaRange {
            start: PAGE_SIZE * 200,
            last: PAGE_SIZE * 600 - 1,
        }
    };
    assert_eq!(
        allow_iovas(&f.fd, f.user, f.ioas_id, ranges, &[allowed]),
        Ok(()),
        "{variant:?}: IOMMU_IOAS_ALLOW_IOVAS"
    );
    for (i, iova) in iovas.iter_mut().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        *iova = f
            .map(buffer, length)
            .unwrap_or_else(|e| panic!("{variant:?}: map {length:#x} in the allowed region: {e:?}"));
        let at = *iova;
        assert_eq!(
            at % low_bit(length),
            0,
            "{variant:?}: iova {at:#x} for {length:#x}"
        );
        assert!(
            at >= allowed.start,
            "{variant:?}: {at:#x} below the allowed region"
        );
        assert!(
            at <= allowed.last,
            "{variant:?}: {at:#x} above the allowed region"
        );
        assert!(at + length > allowed.start, "{variant:?}: {at:#x}");
        assert!(
            at + length <= allowed.last + 1,
            "{variant:?}: {at:#x} + {length:#x} runs past it"
        );
    }
    for (i, iova) in iovas.iter().enumerate() {
        let length = PAGE_SIZE * (i as u64 + 1);
        assert_eq!(f.unmap(*iova, length), Ok(length), "{variant:?}: unmap {iova:#x}");
    }
    f.teardown();
}
for_variants!(area_auto_iova {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, area_allowed) -------------------------------------------------------------

/// The kernel's test: a reservation may not narrow an allowed range, nor an allowed range cover a
/// reservation (`EADDRINUSE` both ways, `iopt_reserve_iova` and `iopt_set_allow_iova`).
fn area_allowed(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let ranges = user.alloc(4096);

    // Reserved intersects an allowed.
    let allowed = IommuIovaRange {
        start: f.base_iova,
        last: f.base_iova + PAGE_SIZE * 600,
    };
    assert_eq!(
        allow_iovas(&f.fd, f.user, f.ioas_id, ranges, &[allowed]),
        Ok(()),
        "{variant:?}: allow base_iova..=base_iova + 600 pages"
    );
    let (res_start, res_length) = (allowed.start + PAGE_SIZE, PAGE_SIZE);
    f.expect_errno(Errno::ADDRINUSE, "reserve inside the allowed range", || {
        add_reserved(&f.fd, f.user, f.ioas_id, res_start, res_length)
    });
    assert_eq!(
        allow_iovas(&f.fd, f.user, f.ioas_id, ranges, &[]),
        Ok(()),
        "{variant:?}: num_iovas = 0"
    );

    // Allowed intersects a reserved.
    assert_eq!(
        add_reserved(&f.fd, f.user, f.ioas_id, res_start, res_length),
        Ok(()),
        "{variant:?}: reserve once nothing is allowed"
    );
    f.expect_errno(Errno::ADDRINUSE, "allow over the reservation", || {
        allow_iovas(&f.fd, f.user, f.ioas_id, ranges, &[allowed])
    });
    f.teardown();
}
for_variants!(area_allowed {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, copy_area) ----------------------------------------------------------------

fn copy_area(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let mut copy = copy_cmd(COPY_FLAGS, f.ioas_id, f.ioas_id, PAGE_SIZE);

    assert_eq!(
        f.map_fixed(f.buffer, PAGE_SIZE, f.base_iova),
        Ok(()),
        "{variant:?}"
    );

    // Copy inside a single IOAS.
    copy.src_iova = f.base_iova;
    copy.dst_iova = f.base_iova + PAGE_SIZE;
    assert_eq!(
        ioas_copy(&f.fd, f.user, &mut copy),
        Ok(()),
        "{variant:?}: copy inside one IOAS"
    );

    // Copy between IOAS's.
    copy.src_iova = f.base_iova;
    copy.dst_iova = 0;
    copy.dst_ioas_id = f.ioas_alloc();
    assert_eq!(
        ioas_copy(&f.fd, f.user, &mut copy),
        Ok(()),
        "{variant:?}: copy between IOASes"
    );
    f.teardown();
}
for_variants!(copy_area {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, iova_ranges) --------------------------------------------------------------

/// The kernel's test, with its "2 ranges" step (`IOMMU_TEST_OP_ADD_RESERVED` of page 1).
fn iova_ranges(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    // `struct iommu_iova_range *ranges = buffer;`
    let ranges = f.buffer;
    let mut cmd = IommuIoasIovaRanges {
        size: size_of::<IommuIoasIovaRanges>() as u32,
        ioas_id: f.ioas_id,
        num_iovas: (BUFFER_SIZE / size_of::<IommuIovaRange>() as u64) as u32,
        allowed_iovas: ranges,
        ..FromZeros::new_zeroed()
    };

    // Range can be read.
    assert_eq!(
        selftest_support::iova_ranges(&f.fd, f.user, &mut cmd),
        Ok(()),
        "{variant:?}"
    );
    assert_eq!(cmd.num_iovas, 1, "{variant:?}: num_iovas");
    if f.stdev_id == 0 {
        assert_eq!(
            range_at(f.user, ranges, 0),
            (0, u64::MAX),
            "{variant:?}: ranges[0]"
        );
        assert_eq!(cmd.out_iova_alignment, 1, "{variant:?}: out_iova_alignment");
    } else {
        assert_eq!(
            range_at(f.user, ranges, 0),
            (MOCK_APERTURE_START, MOCK_APERTURE_LAST),
            "{variant:?}: ranges[0]"
        );
        assert_eq!(
            cmd.out_iova_alignment, MOCK_PAGE_SIZE,
            "{variant:?}: out_iova_alignment"
        );
    }

    // Buffer too small.
    memset0(f.user, ranges, BUFFER_SIZE as usize);
    cmd.num_iovas = 0;
    f.expect_errno(Errno::MSGSIZE, "num_iovas = 0", || {
        selftest_support::iova_ranges(&f.fd, f.user, &mut cmd)
    });
    assert_eq!(cmd.num_iovas, 1, "{variant:?}: num_iovas after EMSGSIZE");
    assert_eq!(
        range_at(f.user, ranges, 0),
        (0, 0),
        "{variant:?}: nothing written"
    );

    // 2 ranges.
    assert_eq!(
        add_reserved(&f.fd, f.user, f.ioas_id, PAGE_SIZE, PAGE_SIZE),
        Ok(()),
        "{variant:?}: IOMMU_TEST_OP_ADD_RESERVED"
    );
    cmd.num_iovas = (BUFFER_SIZE / size_of::<IommuIovaRange>() as u64) as u32;
    assert_eq!(
        selftest_support::iova_ranges(&f.fd, f.user, &mut cmd),
        Ok(()),
        "{variant:?}: 2 ranges"
    );
    if f.stdev_id == 0 {
        assert_eq!(cmd.num_iovas, 2, "{variant:?}: num_iovas");
        assert_eq!(range_at(f.user, ranges, 0), (0, PAGE_SIZE - 1), "{variant:?}");
        assert_eq!(
            range_at(f.user, ranges, 1),
            (PAGE_SIZE * 2, u64::MAX),
            "{variant:?}"
        );
    } else {
        assert_eq!(cmd.num_iovas, 1, "{variant:?}: num_iovas");
        assert_eq!(
            range_at(f.user, ranges, 0),
            (MOCK_APERTURE_START, MOCK_APERTURE_LAST),
            "{variant:?}"
        );
    }

    // Buffer too small.
    memset0(f.user, ranges, BUFFER_SIZE as usize);
    cmd.num_iovas = 1;
    if f.stdev_id == 0 {
        f.expect_errno(Errno::MSGSIZE, "num_iovas = 1 of 2", || {
            selftest_support::iova_ranges(&f.fd, f.user, &mut cmd)
        });
        assert_eq!(cmd.num_iovas, 2, "{variant:?}: num_iovas after EMSGSIZE");
        assert_eq!(range_at(f.user, ranges, 0), (0, PAGE_SIZE - 1), "{variant:?}");
    } else {
        assert_eq!(
            selftest_support::iova_ranges(&f.fd, f.user, &mut cmd),
            Ok(()),
            "{variant:?}"
        );
        assert_eq!(cmd.num_iovas, 1, "{variant:?}");
        assert_eq!(
            range_at(f.user, ranges, 0),
            (MOCK_APERTURE_START, MOCK_APERTURE_LAST),
            "{variant:?}"
        );
    }
    assert_eq!(range_at(f.user, ranges, 1), (0, 0), "{variant:?}: ranges[1]");
    f.teardown();
}
for_variants!(iova_ranges {
    no_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_IOVA_RANGES reports 0..=2^48-1 and alignment 4096; Linux reports MOCK_APERTURE_START..=MOCK_APERTURE_LAST and MOCK_PAGE_SIZE (2048)"]
    mock_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_IOVA_RANGES reports 0..=2^48-1 and alignment 4096; Linux reports MOCK_APERTURE_START..=MOCK_APERTURE_LAST and MOCK_PAGE_SIZE (2048)"]
    two_mock_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_IOVA_RANGES reports 0..=2^48-1 and alignment 4096; Linux reports MOCK_APERTURE_START..=MOCK_APERTURE_LAST and MOCK_PAGE_SIZE (2048)"]
    mock_domain_limit,
});

// ---- TEST_F(iommufd_ioas, ioas_iova_alloc) ----------------------------------------------------------

fn ioas_iova_alloc(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    for length in 1..PAGE_SIZE * 2 {
        if variant.mock_domains() != 0 && length % MOCK_PAGE_SIZE != 0 {
            f.expect_errno(Errno::INVAL, &format!("map {length} bytes"), || {
                f.map(f.buffer, length)
            });
        } else {
            let iova = f
                .map(f.buffer, length)
                .unwrap_or_else(|e| panic!("{variant:?}: map {length} bytes: {e:?}"));
            assert_eq!(
                f.unmap(iova, length),
                Ok(length),
                "{variant:?}: unmap {length} bytes"
            );
        }
    }
    f.teardown();
}
for_variants!(ioas_iova_alloc {
    no_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_MAP of 2048 bytes is EINVAL (IOVA alignment 4096); Linux maps every multiple of MOCK_PAGE_SIZE (2048)"]
    mock_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_MAP of 2048 bytes is EINVAL (IOVA alignment 4096); Linux maps every multiple of MOCK_PAGE_SIZE (2048)"]
    two_mock_domain,
    #[ignore = "uvfio differs from Linux: with a mock domain IOMMU_IOAS_MAP of 2048 bytes is EINVAL (IOVA alignment 4096); Linux maps every multiple of MOCK_PAGE_SIZE (2048)"]
    mock_domain_limit,
});

// ---- TEST_F(iommufd_ioas, copy_sweep) ---------------------------------------------------------------

fn copy_sweep(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let mut copy = copy_cmd(COPY_FLAGS, 0, f.ioas_id, MOCK_PAGE_SIZE);
    copy.dst_iova = MOCK_APERTURE_START;

    let dst_ioas_id = f.ioas_alloc();
    copy.dst_ioas_id = dst_ioas_id;

    let last_iova = if variant.mock_domains() != 0 {
        MOCK_APERTURE_START + BUFFER_SIZE - 1
    } else {
        MOCK_APERTURE_START + BUFFER_SIZE - 2
    };

    assert_eq!(
        f.map_fixed(f.buffer, last_iova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START),
        Ok(()),
        "{variant:?}"
    );

    let mut iova = MOCK_APERTURE_START - PAGE_SIZE;
    while iova <= last_iova {
        copy.src_iova = iova;
        if iova < MOCK_APERTURE_START || iova + copy.length - 1 > last_iova {
            f.expect_errno(Errno::NOENT, &format!("copy from {iova:#x}"), || {
                ioas_copy(&f.fd, f.user, &mut copy)
            });
        } else {
            assert_eq!(
                ioas_copy(&f.fd, f.user, &mut copy),
                Ok(()),
                "{variant:?}: copy from {iova:#x}"
            );
            assert_eq!(
                ioas_unmap(&f.fd, f.user, dst_ioas_id, copy.dst_iova, copy.length),
                Ok(copy.length),
                "{variant:?}: unmap the copy of {iova:#x}"
            );
        }
        iova += 511;
    }

    assert_eq!(f.destroy(dst_ioas_id), Ok(()), "{variant:?}");
    f.teardown();
}
for_variants!(copy_sweep {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});
