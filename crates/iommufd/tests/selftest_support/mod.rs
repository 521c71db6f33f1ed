//! What the `selftest_*` conformance suites share: the constants and helpers of Linux's
//! `tools/testing/selftests/iommu/iommufd_utils.h`, the `FIXTURE(iommufd_ioas)` setup over its four
//! variants, the kernel's teardown check (`teardown_iommufd`: after close, no page of `buffer` is
//! pinned) plus uvfio's own leak check (`closed_clean`), and a snapshot of everything a failed
//! ioctl must leave as it was.
//!
//! Each test crate declares `mod ctx_support;` next to `mod selftest_support;`; this module builds
//! on the former.
// Each test crate uses part of this module.
#![allow(dead_code, unused_imports, unused_macros)]

use crate::ctx_support::{Fd, TestUser, closed_clean, ioas_alloc, ioctl, open};
use rustix::io::Errno;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_COPY, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP,
    IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP,
    IommuIoasAllowIovas, IommuIoasCopy, IommuIoasIovaRanges, IommuIoasMap, IommuIoasUnmap, IommuIovaRange,
};
use uvfio_abi::selftest::{
    IOMMU_TEST_CMD, IOMMU_TEST_OP_ACCESS_PAGES, IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, IOMMU_TEST_OP_ACCESS_RW,
    IOMMU_TEST_OP_ADD_RESERVED, IOMMU_TEST_OP_CREATE_ACCESS, IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
    IOMMU_TEST_OP_MD_CHECK_MAP, IOMMU_TEST_OP_MD_CHECK_REFS, IOMMU_TEST_OP_MOCK_DOMAIN,
    IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, IommuTestAccessPages, IommuTestAccessReplaceIoas, IommuTestAccessRw,
    IommuTestAddReserved, IommuTestCheckMap, IommuTestCheckRefs, IommuTestCmd, IommuTestCreateAccess,
    IommuTestDestroyAccessPages, IommuTestMemoryLimit, IommuTestMockDomain,
};
pub use uvfio_abi::selftest::{
    MOCK_ACCESS_RW_SLOW_PATH, MOCK_ACCESS_RW_WRITE, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
    MOCK_FLAGS_ACCESS_WRITE,
};
use uvfio_iommufd::ctx::{Object, UserMemory};
use uvfio_iommufd::object::ObjectType;
use uvfio_iommufd::uapi::UserPtr;
use zerocopy::{FromZeros, IntoBytes};

pub use uvfio_abi::selftest::{MOCK_APERTURE_LAST, MOCK_APERTURE_START};

/// `PAGE_SIZE` of the modelled x86-64 host.
pub const PAGE_SIZE: u64 = 4096;
/// The selftest's `BUFFER_SIZE` (`PAGE_SIZE * 16`).
pub const BUFFER_SIZE: u64 = PAGE_SIZE * 16;
/// The selftest's `HUGEPAGE_SIZE` when THP reports nothing else (2 MiB): `buffer` is aligned to it.
pub const HUGEPAGE_SIZE: u64 = 2 << 20;
/// The selftest's `MOCK_PAGE_SIZE` (`PAGE_SIZE / 2`), the mock domain's `pgsize_bitmap`
/// (`MOCK_IO_PAGE_SIZE` in `drivers/iommu/iommufd/selftest.c`).
pub const MOCK_PAGE_SIZE: u64 = PAGE_SIZE / 2;
/// `test_ioctl_set_default_memory_limit()`: `test_ioctl_set_temp_memory_limit(65536)`.
pub const DEFAULT_MEMORY_LIMIT: u32 = 65536;

/// `FIXTURE_VARIANT(iommufd_ioas)`: how many mock domains the IOAS gets and the temporary memory
/// limit (0: the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `FIXTURE_VARIANT_ADD(iommufd_ioas, no_domain)`.
    NoDomain,
    /// `FIXTURE_VARIANT_ADD(iommufd_ioas, mock_domain)`: `.mock_domains = 1`.
    MockDomain,
    /// `FIXTURE_VARIANT_ADD(iommufd_ioas, two_mock_domain)`: `.mock_domains = 2`.
    TwoMockDomain,
    /// `FIXTURE_VARIANT_ADD(iommufd_ioas, mock_domain_limit)`: `.mock_domains = 1,
    /// .memory_limit = 16`.
    MockDomainLimit,
}

impl Variant {
    /// The variant by its kernel name (the test functions are named after it).
    pub fn named(name: &str) -> Variant {
        match name {
            "no_domain" => Variant::NoDomain,
            "mock_domain" => Variant::MockDomain,
            "two_mock_domain" => Variant::TwoMockDomain,
            "mock_domain_limit" => Variant::MockDomainLimit,
            other => panic!("no FIXTURE_VARIANT_ADD(iommufd_ioas, {other})"),
        }
    }

    /// `variant->mock_domains`.
    pub fn mock_domains(self) -> u32 {
        match self {
            Variant::NoDomain => 0,
            Variant::MockDomain | Variant::MockDomainLimit => 1,
            Variant::TwoMockDomain => 2,
        }
    }

    /// `variant->memory_limit`.
    pub fn memory_limit(self) -> u32 {
        match self {
            Variant::MockDomainLimit => 16,
            _ => 0,
        }
    }
}

/// Generates one `#[test]` per variant for a test function `fn name(Variant)`, in a module named
/// after the test, each function named after its variant (`area::two_mock_domain` is the kernel's
/// `iommufd_ioas.two_mock_domain.area`). Attributes before a variant (`#[ignore = "..."]`) apply
/// to that variant's test only.
macro_rules! for_variants {
    ($test:ident { $( $(#[$attr:meta])* $variant:ident ),* $(,)? }) => {
        mod $test {
            $(
                #[test]
                $(#[$attr])*
                fn $variant() {
                    super::$test(crate::selftest_support::Variant::named(stringify!($variant)));
                }
            )*
        }
    };
}

// ---- IOMMU_TEST_CMD ------------------------------------------------------------------------------

fn test_cmd(op: u32, id: u32) -> IommuTestCmd {
    IommuTestCmd {
        size: size_of::<IommuTestCmd>() as u32,
        op,
        id,
        ..FromZeros::new_zeroed()
    }
}

/// `_test_cmd_mock_domain()`: `(stdev_id, hwpt_id, idev_id)` of a new mock device attached to
/// `pt_id`.
pub fn mock_domain(fd: &Fd, user: &TestUser, pt_id: u32) -> Result<(u32, u32, u32), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, pt_id);
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    assert_ne!(cmd.id, 0, "assert(cmd.id != 0)");
    let out: IommuTestMockDomain = cmd.member();
    Ok((out.out_stdev_id, out.out_hwpt_id, out.out_idev_id))
}

/// `_test_ioctl_set_temp_memory_limit()`.
pub fn set_temp_memory_limit(fd: &Fd, user: &TestUser, limit: u32) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0);
    cmd.set_memory_limit(IommuTestMemoryLimit { limit });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `check_refs()`: every page of `uptr..+length` is pinned exactly `refs` times.
pub fn check_refs(fd: &Fd, user: &TestUser, uptr: u64, length: u64, refs: u32) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0);
    cmd.set_check_refs(IommuTestCheckRefs {
        length,
        uptr,
        refs,
        pad: 0,
    });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `IOMMU_TEST_OP_ADD_RESERVED`: reserve `start..+length` in IOAS `ioas_id`.
pub fn add_reserved(fd: &Fd, user: &TestUser, ioas_id: u32, start: u64, length: u64) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas_id);
    cmd.set_add_reserved(IommuTestAddReserved { start, length });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `_test_cmd_create_access()`: the new access descriptor.
pub fn create_access(fd: &Fd, user: &TestUser, ioas_id: u32, flags: u32) -> Result<u32, Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas_id);
    cmd.set_create_access(IommuTestCreateAccess {
        out_access_fd: 0,
        flags,
    });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    Ok(cmd.create_access().out_access_fd)
}

/// `_test_cmd_destroy_access()`: `close(access_id)`.
pub fn destroy_access(fd: &Fd, access_id: u32) -> Result<(), Errno> {
    let n = i32::try_from(access_id).map_err(|_| Errno::BADF)?;
    fd.ctx.close_access_fd(n).map_err(|e| e.errno())
}

/// `IOMMU_TEST_OP_ACCESS_PAGES`: the item id of the new pin.
pub fn access_pages(
    fd: &Fd,
    user: &TestUser,
    access_id: u32,
    flags: u32,
    iova: u64,
    length: u64,
    uptr: u64,
) -> Result<u32, Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, access_id);
    cmd.set_access_pages(IommuTestAccessPages {
        flags,
        out_access_pages_id: 0,
        iova,
        length,
        uptr,
    });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    Ok(cmd.access_pages().out_access_pages_id)
}

/// `_test_cmd_destroy_access_pages()`.
pub fn destroy_access_pages(
    fd: &Fd,
    user: &TestUser,
    access_id: u32,
    access_pages_id: u32,
) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, access_id);
    cmd.set_destroy_access_pages(IommuTestDestroyAccessPages { access_pages_id });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `IOMMU_TEST_OP_ACCESS_RW`.
pub fn access_rw(
    fd: &Fd,
    user: &TestUser,
    access_id: u32,
    iova: u64,
    length: u64,
    uptr: u64,
    flags: u32,
) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_ACCESS_RW, access_id);
    cmd.set_access_rw(IommuTestAccessRw {
        iova,
        length,
        uptr,
        flags,
        pad: 0,
    });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `_test_cmd_access_replace_ioas()`.
pub fn access_replace_ioas(fd: &Fd, user: &TestUser, access_id: u32, ioas_id: u32) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, access_id);
    cmd.set_access_replace_ioas(IommuTestAccessReplaceIoas { ioas_id });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

/// `IOMMU_TEST_OP_MD_CHECK_MAP` on HWPT `hwpt_id`.
pub fn check_map(
    fd: &Fd,
    user: &TestUser,
    hwpt_id: u32,
    iova: u64,
    length: u64,
    uptr: u64,
) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, hwpt_id);
    cmd.set_check_map(IommuTestCheckMap { iova, length, uptr });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

// ---- the IOAS ioctls with the selftest's flags ---------------------------------------------------

/// `_test_ioctl_ioas_map()`: maps with `flags`; the IOVA goes in `iova` (read too when
/// `IOMMU_IOAS_MAP_FIXED_IOVA` is set) and is written back whatever the outcome.
pub fn ioas_map_flags(
    fd: &Fd,
    user: &TestUser,
    ioas_id: u32,
    user_va: u64,
    length: u64,
    iova: &mut u64,
    flags: u32,
) -> Result<(), Errno> {
    let mut cmd = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags,
        ioas_id,
        user_va,
        length,
        ..FromZeros::new_zeroed()
    };
    if flags & IOMMU_IOAS_MAP_FIXED_IOVA != 0 {
        cmd.iova = *iova;
    }
    let rc = ioctl(fd, user, IOMMU_IOAS_MAP, &mut cmd);
    *iova = cmd.iova;
    rc
}

/// `test_ioctl_ioas_map()` / `test_err_ioctl_ioas_map()`: a readable and writeable mapping at an
/// IOVA the kernel picks.
pub fn ioas_map(fd: &Fd, user: &TestUser, ioas_id: u32, user_va: u64, length: u64) -> Result<u64, Errno> {
    let mut iova = 0;
    ioas_map_flags(
        fd,
        user,
        ioas_id,
        user_va,
        length,
        &mut iova,
        IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
    )
    .map(|()| iova)
}

/// `test_ioctl_ioas_map_fixed()` / `test_err_ioctl_ioas_map_fixed()`.
pub fn ioas_map_fixed(
    fd: &Fd,
    user: &TestUser,
    ioas_id: u32,
    user_va: u64,
    length: u64,
    iova: u64,
) -> Result<(), Errno> {
    let mut iova = iova;
    ioas_map_flags(
        fd,
        user,
        ioas_id,
        user_va,
        length,
        &mut iova,
        IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
    )
}

/// `_test_ioctl_ioas_unmap()`: the bytes unmapped (`cmd.length` after the call).
pub fn ioas_unmap(fd: &Fd, user: &TestUser, ioas_id: u32, iova: u64, length: u64) -> Result<u64, Errno> {
    let mut cmd = IommuIoasUnmap {
        size: size_of::<IommuIoasUnmap>() as u32,
        ioas_id,
        iova,
        length,
    };
    ioctl(fd, user, IOMMU_IOAS_UNMAP, &mut cmd).map(|()| cmd.length)
}

/// `ioctl(IOMMU_IOAS_COPY)` with the caller's struct (the selftest keeps one and changes fields).
pub fn ioas_copy(fd: &Fd, user: &TestUser, cmd: &mut IommuIoasCopy) -> Result<(), Errno> {
    ioctl(fd, user, IOMMU_IOAS_COPY, cmd)
}

/// A `struct iommu_ioas_copy` with `size` set.
pub fn copy_cmd(flags: u32, dst_ioas_id: u32, src_ioas_id: u32, length: u64) -> IommuIoasCopy {
    IommuIoasCopy {
        size: size_of::<IommuIoasCopy>() as u32,
        flags,
        dst_ioas_id,
        src_ioas_id,
        length,
        ..FromZeros::new_zeroed()
    }
}

/// `ioctl(IOMMU_IOAS_ALLOW_IOVAS)` with `ranges` written to the caller's array at `array` first
/// (`num_iovas` is `ranges.len()`).
pub fn allow_iovas(
    fd: &Fd,
    user: &TestUser,
    ioas_id: u32,
    array: u64,
    ranges: &[IommuIovaRange],
) -> Result<(), Errno> {
    user.write(UserPtr(array), ranges.as_bytes())
        .expect("the test's array");
    let mut cmd = IommuIoasAllowIovas {
        size: size_of::<IommuIoasAllowIovas>() as u32,
        ioas_id,
        num_iovas: u32::try_from(ranges.len()).expect("few ranges"),
        allowed_iovas: array,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_ALLOW_IOVAS, &mut cmd)
}

/// `ioctl(IOMMU_IOAS_IOVA_RANGES)` with the caller's struct.
pub fn iova_ranges(fd: &Fd, user: &TestUser, cmd: &mut IommuIoasIovaRanges) -> Result<(), Errno> {
    ioctl(fd, user, IOMMU_IOAS_IOVA_RANGES, cmd)
}

/// The `i`-th `struct iommu_iova_range` of the caller's array at `array`.
pub fn range_at(user: &TestUser, array: u64, i: u64) -> (u64, u64) {
    let mut r = IommuIovaRange::new_zeroed();
    let at = array + i * size_of::<IommuIovaRange>() as u64;
    user.read(UserPtr(at), r.as_mut_bytes())
        .expect("the test's array");
    (r.start, r.last)
}

/// `memset(ptr, 0, len)` on the caller's memory.
pub fn memset0(user: &TestUser, ptr: u64, len: usize) {
    user.write(UserPtr(ptr), &vec![0u8; len])
        .expect("the test's buffer");
}

/// `ffs(length) - 1` as a power of two: the alignment the selftest expects of an allocated IOVA.
pub fn low_bit(length: u64) -> u64 {
    1 << length.trailing_zeros()
}

// ---- "nothing changed on error" --------------------------------------------------------------------

/// Everything an ioctl that fails must leave as it was: the objects and their users, reserved
/// ids, locked-memory accounts, adopted memory and page-table frames, and each IOAS's areas, usable
/// ranges and IOVA alignment.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    objects: Vec<(u32, String, u32)>,
    reserved: usize,
    locked: u64,
    host_locked: u64,
    adopted: usize,
    table_frames: u64,
    ioas: Vec<IoasState>,
}

#[derive(Debug, PartialEq, Eq)]
struct IoasState {
    id: u32,
    areas: Vec<(u64, u64, usize)>,
    usable: Vec<(u64, u64)>,
    alignment: u64,
}

/// The state of `fd` now.
pub fn state(fd: &Fd) -> State {
    let stats = fd.mem.stats();
    let mut objects = Vec::new();
    let mut ioas = Vec::new();
    for (id, ty) in fd.ctx.objects().snapshot() {
        let users = fd.ctx.objects().users(id.raw()).unwrap_or(u32::MAX);
        objects.push((id.raw(), format!("{ty:?}"), users));
        if ty == ObjectType::Ioas
            && let Ok(Object::Ioas(table)) = fd.ctx.objects().get(id.raw(), Some(ObjectType::Ioas))
        {
            let (usable, alignment) = table.iova_ranges();
            ioas.push(IoasState {
                id: id.raw(),
                areas: table
                    .areas()
                    .into_iter()
                    .map(|(r, pages)| {
                        (
                            r.start().raw(),
                            r.last().raw(),
                            std::sync::Arc::as_ptr(&pages).addr(),
                        )
                    })
                    .collect(),
                usable: usable.iter().map(|r| (r.start().raw(), r.last().raw())).collect(),
                alignment: alignment.bytes(),
            });
        }
    }
    State {
        objects,
        reserved: fd.ctx.objects().reserved().len(),
        locked: fd.ctx.account().locked_pages(),
        host_locked: fd.mem.account().locked_pages,
        adopted: stats.adopted_segments,
        table_frames: stats.table_frames,
        ioas,
    }
}

/// `EXPECT_ERRNO(errno, op)`, and that the failed call changed nothing.
#[track_caller]
pub fn expect_errno<T: std::fmt::Debug>(
    fd: &Fd,
    errno: Errno,
    what: &str,
    op: impl FnOnce() -> Result<T, Errno>,
) {
    let before = state(fd);
    let result = op();
    assert_eq!(result.map(drop), Err(errno), "{what}");
    assert_eq!(state(fd), before, "{what}: the failed call changed state");
}

// ---- FIXTURE(iommufd_ioas) -------------------------------------------------------------------------

/// `FIXTURE(iommufd_ioas)` after `FIXTURE_SETUP`, with the selftest's global `buffer`.
pub struct IoasFixture<'u> {
    pub user: &'u TestUser,
    pub fd: Fd,
    pub variant: Variant,
    pub ioas_id: u32,
    pub stdev_id: u32,
    pub hwpt_id: u32,
    pub device_id: u32,
    pub base_iova: u64,
    /// The selftest's `buffer`: `BUFFER_SIZE` bytes aligned to `HUGEPAGE_SIZE`
    /// (`posix_memalign(&buffer, HUGEPAGE_SIZE, BUFFER_SIZE)`).
    pub buffer: u64,
}

/// `BUFFER_SIZE` bytes of `user`'s memory aligned to `HUGEPAGE_SIZE`.
pub fn selftest_buffer(user: &TestUser) -> u64 {
    let raw = user.alloc((HUGEPAGE_SIZE + BUFFER_SIZE) as usize);
    raw.next_multiple_of(HUGEPAGE_SIZE)
}

impl<'u> IoasFixture<'u> {
    /// `FIXTURE_SETUP(iommufd_ioas)`: open, an IOAS, the memory limit, the mock domains.
    pub fn setup(user: &'u TestUser, variant: Variant) -> Self {
        let buffer = selftest_buffer(user);
        let fd = open();
        let ioas_id = ioas_alloc(&fd, user);
        let limit = match variant.memory_limit() {
            0 => DEFAULT_MEMORY_LIMIT,
            limit => limit,
        };
        set_temp_memory_limit(&fd, user, limit).expect("test_ioctl_set_temp_memory_limit");
        let mut f = IoasFixture {
            user,
            fd,
            variant,
            ioas_id,
            stdev_id: 0,
            hwpt_id: 0,
            device_id: 0,
            base_iova: 0,
            buffer,
        };
        for _ in 0..variant.mock_domains() {
            let (stdev, hwpt, idev) = mock_domain(&f.fd, user, ioas_id).expect("test_cmd_mock_domain");
            f.stdev_id = stdev;
            f.hwpt_id = hwpt;
            f.device_id = idev;
            f.base_iova = MOCK_APERTURE_START;
        }
        f
    }

    /// `FIXTURE_TEARDOWN(iommufd_ioas)`: the default memory limit back, close (nothing may be
    /// left), `teardown_iommufd()`'s check that no page of `buffer` is pinned any more, and
    /// uvfio's leak check (objects, reservations, both accounts, adopted memory).
    pub fn teardown(self) {
        set_temp_memory_limit(&self.fd, self.user, DEFAULT_MEMORY_LIMIT)
            .expect("test_ioctl_set_default_memory_limit");
        assert_eq!(
            self.fd.ctx.close(),
            vec![],
            "{:?}: objects held after close",
            self.variant
        );
        assert_eq!(
            self.fd.ctx.access_fds(),
            Vec::<i32>::new(),
            "{:?}: access descriptors open after close",
            self.variant
        );
        assert_eq!(
            check_refs(&self.fd, self.user, self.buffer, BUFFER_SIZE, 0),
            Ok(()),
            "{:?}: teardown_iommufd: buffer still pinned",
            self.variant
        );
        closed_clean(&self.fd);
    }

    /// `test_ioctl_ioas_map()` on the fixture's IOAS.
    pub fn map(&self, user_va: u64, length: u64) -> Result<u64, Errno> {
        ioas_map(&self.fd, self.user, self.ioas_id, user_va, length)
    }

    /// `test_ioctl_ioas_map_fixed()` on the fixture's IOAS.
    pub fn map_fixed(&self, user_va: u64, length: u64, iova: u64) -> Result<(), Errno> {
        ioas_map_fixed(&self.fd, self.user, self.ioas_id, user_va, length, iova)
    }

    /// `_test_ioctl_ioas_unmap()` on the fixture's IOAS.
    pub fn unmap(&self, iova: u64, length: u64) -> Result<u64, Errno> {
        ioas_unmap(&self.fd, self.user, self.ioas_id, iova, length)
    }

    /// `_test_ioctl_destroy()`.
    pub fn destroy(&self, id: u32) -> Result<(), Errno> {
        crate::ctx_support::destroy(&self.fd, self.user, id)
    }

    /// `test_ioctl_ioas_alloc()`.
    pub fn ioas_alloc(&self) -> u32 {
        ioas_alloc(&self.fd, self.user)
    }

    /// [`expect_errno`] on the fixture's context, with the variant in the message.
    #[track_caller]
    pub fn expect_errno<T: std::fmt::Debug>(
        &self,
        errno: Errno,
        what: &str,
        op: impl FnOnce() -> Result<T, Errno>,
    ) {
        expect_errno(&self.fd, errno, &format!("{:?}: {what}", self.variant), op);
    }
}
