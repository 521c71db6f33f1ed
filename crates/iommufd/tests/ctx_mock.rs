//! `/dev/iommu` with the selftest's mock devices (`IOMMU_TEST_CMD`), as the Linux selftests run the
//! IOAS tests over a mock domain: attach, check what the domain maps and how often each page is
//! pinned, HWPT_ALLOC, replace, refcounted destroy.

mod ctx_support;

use ctx_support::*;
use rustix::io::Errno;
use uvfio_abi::iommufd::{IOMMU_HWPT_ALLOC, IommuHwptAlloc};
use uvfio_abi::selftest::{
    IOMMU_TEST_CMD, IOMMU_TEST_OP_MD_CHECK_MAP, IOMMU_TEST_OP_MD_CHECK_REFS, IOMMU_TEST_OP_MOCK_DOMAIN,
    IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, IommuTestCheckMap, IommuTestCheckRefs, IommuTestCmd,
    IommuTestMockDomain, IommuTestMockDomainReplace,
};
use zerocopy::FromZeros;

fn test_cmd(op: u32, id: u32) -> IommuTestCmd {
    IommuTestCmd {
        size: size_of::<IommuTestCmd>() as u32,
        op,
        id,
        ..FromZeros::new_zeroed()
    }
}

/// `(stdev_id, hwpt_id, idev_id)` of a new mock device attached to `pt_id`.
fn mock_domain(fd: &Fd, user: &TestUser, pt_id: u32) -> Result<(u32, u32, u32), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, pt_id);
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    let out: IommuTestMockDomain = cmd.member();
    Ok((out.out_stdev_id, out.out_hwpt_id, out.out_idev_id))
}

fn mock_replace(fd: &Fd, user: &TestUser, stdev: u32, pt_id: u32) -> Result<u32, Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev);
    cmd.set_member(IommuTestMockDomainReplace { pt_id });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)?;
    Ok(cmd.member::<IommuTestMockDomainReplace>().pt_id)
}

fn check_map(fd: &Fd, user: &TestUser, hwpt: u32, iova: u64, length: u64, uptr: u64) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, hwpt);
    cmd.set_member(IommuTestCheckMap { iova, length, uptr });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

fn check_refs(fd: &Fd, user: &TestUser, uptr: u64, length: u64, refs: u32) -> Result<(), Errno> {
    let mut cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0);
    cmd.set_member(IommuTestCheckRefs {
        length,
        uptr,
        refs,
        pad: 0,
    });
    ioctl(fd, user, IOMMU_TEST_CMD, &mut cmd)
}

fn hwpt_alloc(fd: &Fd, user: &TestUser, dev_id: u32, pt_id: u32) -> Result<u32, Errno> {
    let mut cmd = IommuHwptAlloc {
        size: size_of::<IommuHwptAlloc>() as u32,
        dev_id,
        pt_id,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_HWPT_ALLOC, &mut cmd)?;
    Ok(cmd.out_hwpt_id)
}

/// `FIXTURE_VARIANT(iommufd_ioas)` with one mock domain: a map reaches the domain, pins each page
/// once, and unmap takes both back.
#[test]
fn iommufd_ioas_mock_domain_map_check_refs() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let buf = user.alloc(8 * 4096);
    let (stdev, hwpt, idev) = mock_domain(&fd, &user, ioas).unwrap();
    assert!(stdev != 0 && hwpt != 0 && idev != 0 && stdev != hwpt && hwpt != idev);
    check_refs(&fd, &user, buf, 8 * 4096, 0).unwrap();
    let iova = map(&fd, &user, ioas, buf, 8 * 4096, Some(1 << 20)).unwrap();
    check_map(&fd, &user, hwpt, iova, 8 * 4096, buf).unwrap();
    check_refs(&fd, &user, buf, 8 * 4096, 1).unwrap();
    assert_eq!(check_refs(&fd, &user, buf, 8 * 4096, 2), Err(Errno::IO));
    // The wrong user page for an IOVA is a mismatch; an unmapped IOVA too.
    assert_eq!(
        check_map(&fd, &user, hwpt, iova, 4096, buf + 4096),
        Err(Errno::INVAL)
    );
    assert_eq!(check_map(&fd, &user, hwpt, 1 << 30, 4096, buf), Err(Errno::INVAL));
    assert_eq!(
        check_map(&fd, &user, hwpt, iova + 1, 4096, buf),
        Err(Errno::INVAL),
        "misaligned"
    );
    assert_eq!(
        check_map(&fd, &user, ioas, iova, 4096, buf),
        Err(Errno::NOENT),
        "not a HWPT"
    );
    // A second map of the same buffer pins each page again (a separate Pages).
    let again = map(&fd, &user, ioas, buf, 8 * 4096, None).unwrap();
    check_refs(&fd, &user, buf, 8 * 4096, 2).unwrap();
    unmap(&fd, &user, ioas, again, 8 * 4096).unwrap();
    unmap(&fd, &user, ioas, iova, 8 * 4096).unwrap();
    check_refs(&fd, &user, buf, 8 * 4096, 0).unwrap();
    assert_eq!(
        check_map(&fd, &user, hwpt, iova, 4096, buf),
        Err(Errno::INVAL),
        "gone from the domain"
    );
    // The IOAS is in use by the auto HWPT, which is in use by the device.
    assert_eq!(destroy(&fd, &user, ioas), Err(Errno::BUSY));
    assert_eq!(destroy(&fd, &user, hwpt), Err(Errno::BUSY));
    assert_eq!(
        destroy(&fd, &user, idev),
        Err(Errno::BUSY),
        "the mock device holds its device object"
    );
    destroy(&fd, &user, stdev).unwrap();
    assert_eq!(
        destroy(&fd, &user, hwpt),
        Err(Errno::NOENT),
        "the auto HWPT went with its device"
    );
    destroy(&fd, &user, ioas).unwrap();
    closed_clean(&fd);
}

/// A mapping made before the domain attaches is pinned and mapped by the attach; two mock
/// devices on one IOAS share the automatic domain; a bad `pt_id` is refused.
#[test]
fn mock_domain_attach_after_map_and_sharing() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let buf = user.alloc(4 * 4096);
    let iova = map(&fd, &user, ioas, buf, 4 * 4096, None).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 0).unwrap();
    let (s1, h1, _) = mock_domain(&fd, &user, ioas).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 1).unwrap();
    check_map(&fd, &user, h1, iova, 4 * 4096, buf).unwrap();
    let (s2, h2, _) = mock_domain(&fd, &user, ioas).unwrap();
    assert_eq!(h1, h2, "the second device reuses the automatic domain");
    check_refs(&fd, &user, buf, 4 * 4096, 1).unwrap();
    assert_eq!(mock_domain(&fd, &user, 999).unwrap_err(), Errno::NOENT);
    let objects = fd.ctx.objects().len();
    assert_eq!(
        mock_domain(&fd, &user, s1).unwrap_err(),
        Errno::INVAL,
        "a selftest object is no page table"
    );
    assert_eq!(
        fd.ctx.objects().len(),
        objects,
        "a failed MOCK_DOMAIN leaves no object behind"
    );
    destroy(&fd, &user, s1).unwrap();
    destroy(&fd, &user, s2).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 0).unwrap();
    closed_clean(&fd);
}

/// `TEST_F(iommufd_mock_domain, alloc_hwpt)` and `replace`: an explicit HWPT over an IOAS, a device
/// moved to it and back, and a HWPT that outlives its devices.
#[test]
fn hwpt_alloc_and_replace() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let other = ioas_alloc(&fd, &user);
    let buf = user.alloc(2 * 4096);
    let iova = map(&fd, &user, ioas, buf, 2 * 4096, None).unwrap();
    let (stdev, auto, idev) = mock_domain(&fd, &user, ioas).unwrap();
    let hwpt = hwpt_alloc(&fd, &user, idev, ioas).unwrap();
    assert_ne!(hwpt, auto);
    check_map(&fd, &user, hwpt, iova, 2 * 4096, buf).unwrap();
    check_refs(&fd, &user, buf, 2 * 4096, 1).unwrap();
    assert_eq!(
        hwpt_alloc(&fd, &user, ioas, ioas),
        Err(Errno::NOENT),
        "dev_id must be a device"
    );
    assert_eq!(
        hwpt_alloc(&fd, &user, idev, 999),
        Err(Errno::INVAL),
        "a missing pt_id is EINVAL"
    );
    assert_eq!(mock_replace(&fd, &user, stdev, hwpt), Ok(hwpt));
    assert_eq!(
        destroy(&fd, &user, auto),
        Err(Errno::NOENT),
        "the automatic HWPT went with its last device"
    );
    assert_eq!(destroy(&fd, &user, hwpt), Err(Errno::BUSY));
    // Move to another IOAS (a new automatic domain there), then destroy the explicit HWPT.
    let moved = mock_replace(&fd, &user, stdev, other).unwrap();
    assert_ne!(
        moved, hwpt,
        "a new automatic HWPT (ids are reused, so it may take the old one's)"
    );
    destroy(&fd, &user, hwpt).unwrap();
    check_refs(&fd, &user, buf, 2 * 4096, 0).unwrap();
    assert_eq!(destroy(&fd, &user, other), Err(Errno::BUSY));
    destroy(&fd, &user, stdev).unwrap();
    closed_clean(&fd);
}

/// Closing with devices, HWPTs and mappings in place tears it all down.
#[test]
fn close_with_everything_attached() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let buf = user.alloc(4 * 4096);
    map(&fd, &user, ioas, buf, 4 * 4096, None).unwrap();
    let (_, _, idev) = mock_domain(&fd, &user, ioas).unwrap();
    hwpt_alloc(&fd, &user, idev, ioas).unwrap();
    mock_domain(&fd, &user, ioas).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 1).unwrap();
    closed_clean(&fd);
}

fn copy(fd: &Fd, user: &TestUser, dst: u32, src: u32, src_iova: u64, len: u64) -> Result<u64, Errno> {
    use uvfio_abi::iommufd::{
        IOMMU_IOAS_COPY, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IommuIoasCopy,
    };
    let mut cmd = IommuIoasCopy {
        size: size_of::<IommuIoasCopy>() as u32,
        flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        dst_ioas_id: dst,
        src_ioas_id: src,
        length: len,
        src_iova,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_COPY, &mut cmd)?;
    Ok(cmd.dst_iova)
}

fn map_file(fd: &Fd, user: &TestUser, ioas: u32, file: i32, start: u64, len: u64) -> Result<u64, Errno> {
    use uvfio_abi::iommufd::{
        IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IommuIoasMapFile,
    };
    let mut cmd = IommuIoasMapFile {
        size: size_of::<IommuIoasMapFile>() as u32,
        flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id: ioas,
        fd: file,
        start,
        length: len,
        ..FromZeros::new_zeroed()
    };
    ioctl(fd, user, IOMMU_IOAS_MAP_FILE, &mut cmd)?;
    Ok(cmd.iova)
}

/// `TEST_F(iommufd_ioas, copy_area)` over a mock domain: the copy reaches the destination's domain,
/// shares the source's pages (pinned once), and a gap in the source is `ENOENT`.
#[test]
fn iommufd_ioas_copy_area() {
    let user = TestUser::new();
    let fd = open();
    let src = ioas_alloc(&fd, &user);
    let dst = ioas_alloc(&fd, &user);
    let (stdev, hwpt, _) = mock_domain(&fd, &user, dst).unwrap();
    let buf = user.alloc(4 * 4096);
    let at = map(&fd, &user, src, buf, 4 * 4096, Some(1 << 20)).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 0).unwrap();
    let copied = copy(&fd, &user, dst, src, at, 4 * 4096).unwrap();
    check_map(&fd, &user, hwpt, copied, 4 * 4096, buf).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 1).unwrap();
    assert_eq!(
        copy(&fd, &user, dst, src, at + 4 * 4096, 4096),
        Err(Errno::NOENT),
        "nothing mapped there"
    );
    assert_eq!(copy(&fd, &user, dst, 999, at, 4096), Err(Errno::NOENT));
    // The source may go while the copy lives: the pages are the copy's now too.
    unmap(&fd, &user, src, at, 4 * 4096).unwrap();
    check_map(&fd, &user, hwpt, copied, 4 * 4096, buf).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 1).unwrap();
    destroy(&fd, &user, stdev).unwrap();
    check_refs(&fd, &user, buf, 4 * 4096, 0).unwrap();
    closed_clean(&fd);
}

/// `IOMMU_IOAS_MAP_FILE`: a memfd range maps like memory; a bad fd is `EBADF`; a range past the end
/// of the file fails when it is pinned (at once with a domain attached).
#[test]
fn iommufd_ioas_map_file() {
    let user = TestUser::new();
    let fd = open();
    let ioas = ioas_alloc(&fd, &user);
    let file = user.memfd(4 * 4096);
    assert_eq!(map_file(&fd, &user, ioas, 12345, 0, 4096), Err(Errno::BADF));
    let lazy = map_file(&fd, &user, ioas, file, 0x1000, 3 * 4096).unwrap();
    let (stdev, _, _) = mock_domain(&fd, &user, ioas).unwrap();
    assert_eq!(
        fd.ctx.account().locked_pages(),
        3,
        "the attach pinned the file's pages"
    );
    assert_eq!(
        map_file(&fd, &user, ioas, file, 3 * 4096, 2 * 4096),
        Err(Errno::INVAL),
        "past the end"
    );
    assert_eq!(fd.ctx.account().locked_pages(), 3);
    unmap(&fd, &user, ioas, lazy, 3 * 4096).unwrap();
    destroy(&fd, &user, stdev).unwrap();
    closed_clean(&fd);
}
