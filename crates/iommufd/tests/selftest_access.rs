//! The access tests of `FIXTURE(iommufd_ioas)` in Linux's `tools/testing/selftests/iommu/iommufd.c`
//! (`access_domain_destory`, `access_pin`, `access_pin_unmap`, `access_rw`, `access_rw_unaligned`)
//! over the fixture's four variants, through `IOMMU_TEST_OP_CREATE_ACCESS` and the access ops of
//! `drivers/iommu/iommufd/selftest.c`; plus each op's refusals with their exact errno and an
//! unchanged state. Every test ends with the fixture's teardown (nothing pinned, no object, no
//! access descriptor left).

mod ctx_support;
#[macro_use]
mod selftest_support;

use ctx_support::TestUser;
use rustix::io::Errno;
use selftest_support::*;
use uvfio_iommufd::ctx::UserMemory;
use uvfio_iommufd::uapi::UserPtr;

const PIN: u32 = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;

/// A small deterministic generator for the selftest's `rand()`.
struct Rand(u64);

impl Rand {
    fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

fn read_user(user: &TestUser, ptr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    user.read(UserPtr(ptr), &mut v).expect("the test's buffer");
    v
}

// ---- TEST_F(iommufd_ioas, access_domain_destory) -----------------------------------------------------

/// With a 4 MiB buffer of ordinary pages in place of the kernel's `MAP_HUGETLB` one.
fn access_domain_destory(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let buf_size = 2 * HUGEPAGE_SIZE;
    let buf = user.alloc(buf_size as usize);
    assert_eq!(f.map_fixed(buf, buf_size, f.base_iova), Ok(()), "{variant:?}");
    let access = create_access(&f.fd, f.user, f.ioas_id, PIN).expect("create_access");
    let item = access_pages(
        &f.fd,
        f.user,
        access,
        0,
        f.base_iova + PAGE_SIZE,
        PAGE_SIZE,
        buf + PAGE_SIZE,
    )
    .unwrap_or_else(|e| panic!("{variant:?}: access_pages: {e:?}"));
    // Causes a complicated unpin across a huge page boundary.
    if f.stdev_id != 0 {
        assert_eq!(f.destroy(f.stdev_id), Ok(()), "{variant:?}: destroy stdev");
    }
    // The access's pin, and the remaining domain's if there is a second one.
    let refs = 1 + u32::from(variant.mock_domains() > 1);
    assert_eq!(
        check_refs(&f.fd, f.user, buf + PAGE_SIZE, PAGE_SIZE, refs),
        Ok(()),
        "{variant:?}"
    );
    assert_eq!(
        destroy_access_pages(&f.fd, f.user, access, item),
        Ok(()),
        "{variant:?}"
    );
    assert_eq!(destroy_access(&f.fd, access), Ok(()), "{variant:?}");
    // Only the first of two mock domains is left to pin the map.
    assert_eq!(
        check_refs(&f.fd, f.user, buf, buf_size, refs - 1),
        Ok(()),
        "{variant:?}"
    );
    f.teardown();
}
for_variants!(access_domain_destory {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, access_pin) --------------------------------------------------------------

fn access_pin(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let buffer = f.buffer;
    let access = create_access(&f.fd, f.user, f.ioas_id, PIN).expect("create_access");
    let pages = |length| access_pages(&f.fd, f.user, access, 0, MOCK_APERTURE_START, length, buffer);
    let domain_refs = u32::from(variant.mock_domains() != 0);

    for npages in 1..BUFFER_SIZE / PAGE_SIZE {
        let length = npages * PAGE_SIZE;

        // Single map/unmap.
        assert_eq!(
            f.map_fixed(buffer, BUFFER_SIZE, MOCK_APERTURE_START),
            Ok(()),
            "{variant:?}"
        );
        let id = pages(length).unwrap_or_else(|e| panic!("{variant:?}: {npages} pages: {e:?}"));
        assert_eq!(check_refs(&f.fd, f.user, buffer, length, domain_refs + 1), Ok(()));
        assert_eq!(
            destroy_access_pages(&f.fd, f.user, access, id),
            Ok(()),
            "{variant:?}"
        );

        // Double user.
        let first = pages(length).expect("first user");
        let second = pages(length).expect("second user");
        assert_eq!(check_refs(&f.fd, f.user, buffer, length, domain_refs + 2), Ok(()));
        assert_eq!(destroy_access_pages(&f.fd, f.user, access, second), Ok(()));
        assert_eq!(destroy_access_pages(&f.fd, f.user, access, first), Ok(()));
        assert_eq!(check_refs(&f.fd, f.user, buffer, length, domain_refs), Ok(()));

        // Add/remove a domain with a user.
        let id = pages(length).expect("pin before the domain");
        let (stdev, hwpt, _) = mock_domain(&f.fd, f.user, f.ioas_id).expect("mock_domain");
        assert_eq!(
            check_map(&f.fd, f.user, hwpt, MOCK_APERTURE_START, BUFFER_SIZE, buffer),
            Ok(()),
            "{variant:?}: MD_CHECK_MAP"
        );
        assert_eq!(f.destroy(stdev), Ok(()));
        assert_eq!(destroy_access_pages(&f.fd, f.user, access, id), Ok(()));
        assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
    }
    assert_eq!(destroy_access(&f.fd, access), Ok(()));
    f.teardown();
}
for_variants!(access_pin {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- TEST_F(iommufd_ioas, access_pin_unmap) ----------------------------------------------------------

/// The kernel leaves the access descriptor open; the fixture's close releases it.
fn access_pin_unmap(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let access = create_access(&f.fd, f.user, f.ioas_id, PIN).expect("create_access");
    assert_eq!(f.map_fixed(f.buffer, BUFFER_SIZE, MOCK_APERTURE_START), Ok(()));
    let id = access_pages(
        &f.fd,
        f.user,
        access,
        0,
        MOCK_APERTURE_START,
        BUFFER_SIZE,
        f.buffer,
    )
    .expect("access_pages");

    // Trigger the unmap op.
    assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));

    // The kernel removed the item for us.
    f.expect_errno(Errno::NOENT, "destroy an item the unmap removed", || {
        destroy_access_pages(&f.fd, f.user, access, id)
    });
    assert_eq!(check_refs(&f.fd, f.user, f.buffer, BUFFER_SIZE, 0), Ok(()));
    assert_eq!(
        f.fd.ctx.access_fds().len(),
        1,
        "{variant:?}: the descriptor stays open"
    );
    f.teardown();
}
for_variants!(access_pin_unmap {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

// ---- check_access_rw(), access_rw, access_rw_unaligned -------------------------------------------------

fn check_access_rw(f: &IoasFixture<'_>, access: u32, iova: u64, def_flags: u32, rand: &mut Rand) {
    let user = f.user;
    let buffer = f.buffer;
    let mut fill = vec![0u8; BUFFER_SIZE as usize];
    rand.bytes(&mut fill);
    user.write(UserPtr(buffer), &fill).expect("buffer");
    let tmp = user.alloc(64);

    for at in iova + PAGE_SIZE - 50..iova + PAGE_SIZE + 50 {
        for length in 1..64u64 {
            let len = length as usize;
            assert_eq!(
                access_rw(&f.fd, user, access, at, length, tmp, def_flags),
                Ok(()),
                "read {length} at {at:#x}"
            );
            assert_eq!(
                read_user(user, buffer + (at - iova), len),
                read_user(user, tmp, len),
                "read {length} at {at:#x}"
            );
            let mut noise = vec![0u8; 64];
            rand.bytes(&mut noise);
            user.write(UserPtr(tmp), &noise).expect("tmp");
            assert_eq!(
                access_rw(
                    &f.fd,
                    user,
                    access,
                    at,
                    length,
                    tmp,
                    def_flags | MOCK_ACCESS_RW_WRITE
                ),
                Ok(()),
                "write {length} at {at:#x}"
            );
            assert_eq!(
                read_user(user, buffer + (at - iova), len),
                read_user(user, tmp, len),
                "write {length} at {at:#x}"
            );
        }
    }

    // Multi-page test.
    let tmp2 = user.alloc(BUFFER_SIZE as usize);
    assert_eq!(
        access_rw(&f.fd, user, access, iova, BUFFER_SIZE, tmp2, def_flags),
        Ok(()),
        "multi-page read"
    );
    assert_eq!(
        read_user(user, buffer, BUFFER_SIZE as usize),
        read_user(user, tmp2, BUFFER_SIZE as usize)
    );
}

fn access_rw_test(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let mut rand = Rand(1);
    let access = create_access(&f.fd, f.user, f.ioas_id, 0).expect("create_access");
    let iova = f.map(f.buffer, BUFFER_SIZE).expect("map");
    check_access_rw(&f, access, iova, 0, &mut rand);
    check_access_rw(&f, access, iova, MOCK_ACCESS_RW_SLOW_PATH, &mut rand);
    assert_eq!(f.unmap(iova, BUFFER_SIZE), Ok(BUFFER_SIZE));
    assert_eq!(destroy_access(&f.fd, access), Ok(()));
    f.teardown();
}
mod access_rw {
    #[test]
    fn no_domain() {
        super::access_rw_test(crate::selftest_support::Variant::NoDomain);
    }
    #[test]
    fn mock_domain() {
        super::access_rw_test(crate::selftest_support::Variant::MockDomain);
    }
    #[test]
    fn two_mock_domain() {
        super::access_rw_test(crate::selftest_support::Variant::TwoMockDomain);
    }
    #[test]
    fn mock_domain_limit() {
        super::access_rw_test(crate::selftest_support::Variant::MockDomainLimit);
    }
}

fn access_rw_unaligned(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let mut rand = Rand(2);
    let access = create_access(&f.fd, f.user, f.ioas_id, 0).expect("create_access");
    // Unaligned pages.
    let iova = f.base_iova + MOCK_PAGE_SIZE;
    assert_eq!(f.map_fixed(f.buffer, BUFFER_SIZE, iova), Ok(()), "{variant:?}");
    check_access_rw(&f, access, iova, 0, &mut rand);
    assert_eq!(f.unmap(iova, BUFFER_SIZE), Ok(BUFFER_SIZE));
    assert_eq!(destroy_access(&f.fd, access), Ok(()));
    f.teardown();
}
for_variants!(access_rw_unaligned {
    no_domain,
    #[ignore = "uvfio differs from Linux: a mock domain's IOVA alignment is 4096 (VT-d 4 KiB pages), so a map at base_iova + MOCK_PAGE_SIZE (2048) is EINVAL; Linux's mock domain has 2048-byte pages"]
    mock_domain,
    #[ignore = "uvfio differs from Linux: a mock domain's IOVA alignment is 4096 (VT-d 4 KiB pages), so a map at base_iova + MOCK_PAGE_SIZE (2048) is EINVAL; Linux's mock domain has 2048-byte pages"]
    two_mock_domain,
    #[ignore = "uvfio differs from Linux: a mock domain's IOVA alignment is 4096 (VT-d 4 KiB pages), so a map at base_iova + MOCK_PAGE_SIZE (2048) is EINVAL; Linux's mock domain has 2048-byte pages"]
    mock_domain_limit,
});

// ---- refusals ------------------------------------------------------------------------------------------

/// Each access op's errnos, in the order `selftest.c` checks them; nothing changes on failure.
fn access_errors(variant: Variant) {
    let user = TestUser::new();
    let f = IoasFixture::setup(&user, variant);
    let buffer = f.buffer;
    let bogus = ACCESS_FD_BASE_U32 + 1000;

    // CREATE_ACCESS: no such IOAS (`iommufd_get_ioas` → ENOENT).
    f.expect_errno(Errno::NOENT, "create_access on no IOAS", || {
        create_access(&f.fd, f.user, 9999, PIN)
    });
    // Unknown flags: EOPNOTSUPP.
    f.expect_errno(Errno::OPNOTSUPP, "create_access flags", || {
        create_access(&f.fd, f.user, f.ioas_id, 1 << 7)
    });

    let pin = create_access(&f.fd, f.user, f.ioas_id, PIN).expect("pinning access");
    let rw = create_access(&f.fd, f.user, f.ioas_id, 0).expect("rw access");
    assert_ne!(pin, rw);
    assert_eq!(f.map_fixed(buffer, BUFFER_SIZE, MOCK_APERTURE_START), Ok(()));

    // The access object and the IOAS it uses are busy.
    f.expect_errno(Errno::BUSY, "destroy the IOAS under an access", || {
        f.destroy(f.ioas_id)
    });

    // Not an access descriptor: EBADFD (`iommufd_access_get`).
    f.expect_errno(Errno::BADFD, "access_pages on a bad fd", || {
        access_pages(&f.fd, f.user, bogus, 0, MOCK_APERTURE_START, PAGE_SIZE, buffer)
    });
    f.expect_errno(Errno::BADFD, "destroy_access_pages on a bad fd", || {
        destroy_access_pages(&f.fd, f.user, bogus, 0)
    });
    f.expect_errno(Errno::BADFD, "access_rw on a bad fd", || {
        access_rw(&f.fd, f.user, bogus, MOCK_APERTURE_START, 8, buffer, 0)
    });
    f.expect_errno(Errno::BADFD, "access_replace_ioas on a bad fd", || {
        access_replace_ioas(&f.fd, f.user, bogus, f.ioas_id)
    });

    // ACCESS_PAGES: more than 16 MiB is ENOMEM, unknown flags EOPNOTSUPP, a non-pinning access
    // EOPNOTSUPP, a gap ENOENT, length 0 EINVAL, pages not the caller's EBADE.
    f.expect_errno(Errno::NOMEM, "access_pages > 16 MiB", || {
        access_pages(&f.fd, f.user, pin, 0, MOCK_APERTURE_START, (16 << 20) + 1, 0)
    });
    f.expect_errno(Errno::OPNOTSUPP, "access_pages flags", || {
        access_pages(&f.fd, f.user, pin, 1 << 9, MOCK_APERTURE_START, PAGE_SIZE, 0)
    });
    f.expect_errno(Errno::OPNOTSUPP, "access_pages without NEEDS_PIN_PAGES", || {
        access_pages(&f.fd, f.user, rw, 0, MOCK_APERTURE_START, PAGE_SIZE, buffer)
    });
    f.expect_errno(Errno::NOENT, "access_pages past the area", || {
        access_pages(
            &f.fd,
            f.user,
            pin,
            0,
            MOCK_APERTURE_START,
            BUFFER_SIZE + PAGE_SIZE,
            0,
        )
    });
    f.expect_errno(Errno::INVAL, "access_pages of 0 bytes", || {
        access_pages(&f.fd, f.user, pin, 0, MOCK_APERTURE_START, 0, 0)
    });
    f.expect_errno(Errno::BADE, "access_pages with another uptr", || {
        access_pages(
            &f.fd,
            f.user,
            pin,
            0,
            MOCK_APERTURE_START,
            PAGE_SIZE,
            buffer + PAGE_SIZE,
        )
    });
    assert_eq!(
        check_refs(&f.fd, f.user, buffer, BUFFER_SIZE, u32::from(f.stdev_id != 0)),
        Ok(())
    );
    let item = access_pages(
        &f.fd,
        f.user,
        pin,
        MOCK_FLAGS_ACCESS_WRITE,
        MOCK_APERTURE_START,
        PAGE_SIZE,
        0,
    )
    .expect("pin without a uptr check");
    f.expect_errno(Errno::NOENT, "destroy an item that never was", || {
        destroy_access_pages(&f.fd, f.user, pin, item + 1)
    });
    assert_eq!(destroy_access_pages(&f.fd, f.user, pin, item), Ok(()));
    f.expect_errno(Errno::NOENT, "destroy an item twice", || {
        destroy_access_pages(&f.fd, f.user, pin, item)
    });

    // ACCESS_RW: length 0 EINVAL, a gap ENOENT, a bad user buffer EFAULT (write: before the IOAS
    // is read; read: after).
    f.expect_errno(Errno::INVAL, "access_rw of 0 bytes", || {
        access_rw(&f.fd, f.user, rw, MOCK_APERTURE_START, 0, buffer, 0)
    });
    f.expect_errno(Errno::NOENT, "access_rw past the area", || {
        access_rw(
            &f.fd,
            f.user,
            rw,
            MOCK_APERTURE_START + BUFFER_SIZE - 4,
            8,
            buffer,
            0,
        )
    });
    f.expect_errno(Errno::FAULT, "access_rw write from a bad buffer", || {
        access_rw(&f.fd, f.user, rw, MOCK_APERTURE_START, 8, 8, MOCK_ACCESS_RW_WRITE)
    });
    f.expect_errno(Errno::FAULT, "access_rw read to a bad buffer", || {
        access_rw(&f.fd, f.user, rw, MOCK_APERTURE_START, 8, 8, 0)
    });

    // ACCESS_REPLACE_IOAS: no such IOAS ENOENT; the same IOAS is a no-op; another moves the
    // access and drops its items.
    f.expect_errno(Errno::NOENT, "replace to no IOAS", || {
        access_replace_ioas(&f.fd, f.user, pin, 9999)
    });
    assert_eq!(access_replace_ioas(&f.fd, f.user, pin, f.ioas_id), Ok(()));
    let item = access_pages(&f.fd, f.user, pin, 0, MOCK_APERTURE_START, PAGE_SIZE, buffer).expect("pin");
    let other = f.ioas_alloc();
    assert_eq!(access_replace_ioas(&f.fd, f.user, pin, other), Ok(()));
    assert_eq!(
        check_refs(&f.fd, f.user, buffer, PAGE_SIZE, u32::from(f.stdev_id != 0)),
        Ok(())
    );
    f.expect_errno(Errno::NOENT, "the replace dropped the item", || {
        destroy_access_pages(&f.fd, f.user, pin, item)
    });
    f.expect_errno(Errno::NOENT, "nothing mapped in the new IOAS", || {
        access_pages(&f.fd, f.user, pin, 0, MOCK_APERTURE_START, PAGE_SIZE, buffer)
    });
    f.expect_errno(Errno::BUSY, "destroy the new IOAS under the access", || {
        f.destroy(other)
    });

    // Closing: the descriptor goes; a second close is EBADF.
    assert_eq!(destroy_access(&f.fd, pin), Ok(()));
    assert_eq!(destroy_access(&f.fd, pin), Err(Errno::BADF));
    assert_eq!(f.destroy(other), Ok(()));
    assert_eq!(destroy_access(&f.fd, rw), Ok(()));
    assert_eq!(f.unmap(MOCK_APERTURE_START, BUFFER_SIZE), Ok(BUFFER_SIZE));
    f.teardown();
}
for_variants!(access_errors {
    no_domain,
    mock_domain,
    two_mock_domain,
    mock_domain_limit
});

const ACCESS_FD_BASE_U32: u32 = uvfio_iommufd::ctx::ACCESS_FD_BASE as u32;
