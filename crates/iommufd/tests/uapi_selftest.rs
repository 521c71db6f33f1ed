//! Decoding the selftest's `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/selftest.c`): happy round
//! trips of every op served, errno tables named after the kernel check each case trips, the
//! checks Linux makes after its lookups, and the replies.

mod uapi_support;

use rustix::io::Errno;
use uapi_support::*;
use uvfio_abi::selftest::*;
use uvfio_iommufd::uapi::selftest::{
    AccessPagesFlags, AccessRwFlags, CreateAccessFlags, MockDeviceFlags, TestCmd, TestReply,
};
use uvfio_iommufd::uapi::{IommufdCmd, UserPtr, decode};
use uvfio_types::{HostVa, Iova, IovaRange};
use zerocopy::IntoBytes;

// ---- IOMMU_TEST_CMD ----------------------------------------------------------------------------

fn test_cmd<M: IommuTestMember>(op: u32, id: u32, member: M) -> Vec<u8> {
    bytes(&IommuTestCmd::new(op, id, member))
}

#[test]
fn selftest_round_trips() {
    let page = 4096;
    let range = IovaRange::from_start_len(Iova::new(page * 4), page * 100).expect("range");
    let cases: Vec<(Vec<u8>, TestCmd)> = vec![
        (
            test_cmd(
                IOMMU_TEST_OP_ADD_RESERVED,
                1,
                IommuTestAddReserved {
                    start: page * 4,
                    length: page * 100,
                },
            ),
            TestCmd::AddReserved { ioas_id: 1, range },
        ),
        (
            test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, 2, IommuTestMockDomain::default()),
            TestCmd::MockDomain {
                pt_id: 2,
                dev_flags: MockDeviceFlags::empty(),
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
                2,
                IommuTestMockDomainFlags {
                    dev_flags: MOCK_FLAGS_DEVICE_NO_DIRTY,
                    ..Default::default()
                },
            ),
            TestCmd::MockDomain {
                pt_id: 2,
                dev_flags: MockDeviceFlags::NO_DIRTY,
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
                3,
                IommuTestMockDomainReplace { pt_id: 4 },
            ),
            TestCmd::MockDomainReplace {
                stdev_id: 3,
                pt_id: 4,
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_MD_CHECK_MAP,
                5,
                IommuTestCheckMap {
                    iova: 1 << 24,
                    length: page,
                    uptr: 0x10000,
                },
            ),
            TestCmd::CheckMap {
                mockpt_id: 5,
                iova: Iova::new(1 << 24),
                length: page,
                uptr: HostVa::new(0x10000),
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_MD_CHECK_REFS,
                0,
                IommuTestCheckRefs {
                    length: page,
                    uptr: 0x10000,
                    refs: 1,
                    pad: 0,
                },
            ),
            TestCmd::CheckRefs {
                uptr: HostVa::new(0x10000),
                length: page,
                refs: 1,
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_CREATE_ACCESS,
                6,
                IommuTestCreateAccess {
                    out_access_fd: 0,
                    flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
                },
            ),
            TestCmd::CreateAccess {
                ioas_id: 6,
                flags: CreateAccessFlags::NEEDS_PIN_PAGES,
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
                7,
                IommuTestDestroyAccessPages { access_pages_id: 8 },
            ),
            TestCmd::DestroyAccessPages {
                access_fd: 7,
                access_pages_id: 8,
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_ACCESS_PAGES,
                7,
                IommuTestAccessPages {
                    flags: MOCK_FLAGS_ACCESS_WRITE,
                    iova: page,
                    length: page,
                    uptr: 0x20000,
                    ..Default::default()
                },
            ),
            TestCmd::AccessPages {
                access_fd: 7,
                flags: AccessPagesFlags::WRITE,
                iova: Iova::new(page),
                length: page,
                uptr: Some(HostVa::new(0x20000)),
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_ACCESS_RW,
                7,
                IommuTestAccessRw {
                    iova: page + 1,
                    length: 3,
                    uptr: 0x30000,
                    flags: MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH,
                    pad: 0,
                },
            ),
            TestCmd::AccessRw {
                access_fd: 7,
                flags: AccessRwFlags::WRITE | AccessRwFlags::SLOW_PATH,
                iova: Iova::new(page + 1),
                length: 3,
                uptr: UserPtr(0x30000),
            },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
                0,
                IommuTestMemoryLimit { limit: 16 },
            ),
            TestCmd::SetTempMemoryLimit { limit: 16 },
        ),
        (
            test_cmd(
                IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
                7,
                IommuTestAccessReplaceIoas { ioas_id: 9 },
            ),
            TestCmd::AccessReplaceIoas {
                access_fd: 7,
                ioas_id: 9,
            },
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(TestCmd::decode(&raw), Ok(want));
        assert_eq!(decode(IOMMU_TEST_CMD, &raw), Ok(IommufdCmd::Test(want)));
    }
}

#[test]
fn selftest_quirks_linux_has() {
    // iommufd_test() never looks at __reserved.
    let mut cmd = IommuTestCmd::new(
        IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
        0,
        IommuTestMemoryLimit { limit: 64 },
    );
    cmd.reserved = 0xffff_ffff;
    assert_eq!(
        TestCmd::decode(cmd.as_bytes()),
        Ok(TestCmd::SetTempMemoryLimit { limit: 64 })
    );
    // MOCK_DOMAIN (without _FLAGS) ignores the dev_flags word.
    let flags = IommuTestMockDomainFlags {
        dev_flags: 0xffff,
        ..Default::default()
    };
    let mock = TestCmd::decode(&test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, 2, flags));
    assert_eq!(
        mock,
        Ok(TestCmd::MockDomain {
            pt_id: 2,
            dev_flags: MockDeviceFlags::empty()
        })
    );
    // ACCESS_PAGES: "For syzkaller allow uptr to be NULL to skip this check"; SYZ is a known flag.
    let syz = IommuTestAccessPages {
        flags: MOCK_FLAGS_ACCESS_SYZ,
        length: 1,
        ..Default::default()
    };
    let got = TestCmd::decode(&test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, 1, syz));
    assert!(matches!(
        got,
        Ok(TestCmd::AccessPages {
            uptr: None,
            flags: AccessPagesFlags::SYZ,
            ..
        })
    ));
    // The access id is an fd: `iommufd_access_get(int fd)`.
    let neg = TestCmd::decode(&test_cmd(
        IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
        u32::MAX,
        IommuTestAccessReplaceIoas::default(),
    ));
    assert_eq!(
        neg,
        Ok(TestCmd::AccessReplaceIoas {
            access_fd: -1,
            ioas_id: 0
        })
    );
    // The length limit is inclusive.
    let max = IommuTestAccessRw {
        length: 16 * 1024 * 1024,
        ..Default::default()
    };
    assert!(TestCmd::decode(&test_cmd(IOMMU_TEST_OP_ACCESS_RW, 1, max)).is_ok());
}

#[test]
fn selftest_errno_table() {
    let page = 4096;
    let cases: Vec<(&str, Vec<u8>, Errno)> = vec![
        (
            "iommufd_test(): default: op 0",
            test_cmd(0, 0, IommuTestMemoryLimit::default()),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_test(): default: op 22",
            test_cmd(22, 0, IommuTestMemoryLimit::default()),
            Errno::OPNOTSUPP,
        ),
        (
            "ops uvfio does not serve: IOMMU_TEST_OP_DIRTY",
            test_cmd(IOMMU_TEST_OP_DIRTY, 0, IommuTestDirty::default()),
            Errno::OPNOTSUPP,
        ),
        (
            "ops uvfio does not serve: PASID_ATTACH",
            test_cmd(IOMMU_TEST_OP_PASID_ATTACH, 0, IommuTestPasidAttach::default()),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_test_add_reserved(): !length",
            test_cmd(
                IOMMU_TEST_OP_ADD_RESERVED,
                1,
                IommuTestAddReserved {
                    start: page,
                    length: 0,
                },
            ),
            Errno::INVAL,
        ),
        (
            "iommufd_test_add_reserved(): check_add_overflow(start, length - 1)",
            test_cmd(
                IOMMU_TEST_OP_ADD_RESERVED,
                1,
                IommuTestAddReserved {
                    start: u64::MAX,
                    length: 2,
                },
            ),
            Errno::OVERFLOW,
        ),
        (
            "mock_dev_create(): dev_flags & ~valid_flags",
            test_cmd(
                IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
                1,
                IommuTestMockDomainFlags {
                    dev_flags: 1 << 3,
                    ..Default::default()
                },
            ),
            Errno::INVAL,
        ),
        (
            "mock_dev_create(): MOCK_FLAGS_DEVICE_HUGE_IOVA is no longer valid",
            test_cmd(
                IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
                1,
                IommuTestMockDomainFlags {
                    dev_flags: MOCK_FLAGS_DEVICE_HUGE_IOVA,
                    ..Default::default()
                },
            ),
            Errno::INVAL,
        ),
        (
            "iommufd_test_md_check_refs(): length % PAGE_SIZE",
            test_cmd(
                IOMMU_TEST_OP_MD_CHECK_REFS,
                0,
                IommuTestCheckRefs {
                    length: page + 1,
                    uptr: page,
                    ..Default::default()
                },
            ),
            Errno::INVAL,
        ),
        (
            "iommufd_test_md_check_refs(): uptr % PAGE_SIZE",
            test_cmd(
                IOMMU_TEST_OP_MD_CHECK_REFS,
                0,
                IommuTestCheckRefs {
                    length: page,
                    uptr: page + 8,
                    ..Default::default()
                },
            ),
            Errno::INVAL,
        ),
        (
            "iommufd_test_md_check_refs(): check_add_overflow(uptr, length)",
            test_cmd(
                IOMMU_TEST_OP_MD_CHECK_REFS,
                0,
                IommuTestCheckRefs {
                    length: 2 * page,
                    uptr: u64::MAX - page + 1,
                    ..Default::default()
                },
            ),
            Errno::INVAL,
        ),
        (
            "iommufd_test_create_access(): flags & ~NEEDS_PIN_PAGES",
            test_cmd(
                IOMMU_TEST_OP_CREATE_ACCESS,
                1,
                IommuTestCreateAccess {
                    out_access_fd: 0,
                    flags: 1 << 1,
                },
            ),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_test_access_pages(): length > 16*1024*1024",
            test_cmd(
                IOMMU_TEST_OP_ACCESS_PAGES,
                1,
                IommuTestAccessPages {
                    length: (16 << 20) + 1,
                    ..Default::default()
                },
            ),
            Errno::NOMEM,
        ),
        (
            "iommufd_test_access_pages(): flags & ~(WRITE | SYZ)",
            test_cmd(
                IOMMU_TEST_OP_ACCESS_PAGES,
                1,
                IommuTestAccessPages {
                    flags: 1 << 1,
                    length: 1,
                    ..Default::default()
                },
            ),
            Errno::OPNOTSUPP,
        ),
        (
            "iommufd_test_access_pages(): the length check comes first",
            test_cmd(
                IOMMU_TEST_OP_ACCESS_PAGES,
                1,
                IommuTestAccessPages {
                    flags: 1 << 1,
                    length: u64::MAX,
                    ..Default::default()
                },
            ),
            Errno::NOMEM,
        ),
        (
            "iommufd_test_access_rw(): length > 16*1024*1024",
            test_cmd(
                IOMMU_TEST_OP_ACCESS_RW,
                1,
                IommuTestAccessRw {
                    length: 17 << 20,
                    ..Default::default()
                },
            ),
            Errno::NOMEM,
        ),
        (
            "iommufd_test_access_rw(): flags & ~(WRITE | SLOW_PATH | SYZ)",
            test_cmd(
                IOMMU_TEST_OP_ACCESS_RW,
                1,
                IommuTestAccessRw {
                    flags: 1 << 1,
                    ..Default::default()
                },
            ),
            Errno::OPNOTSUPP,
        ),
        (
            "SET_TEMP_MEMORY_LIMIT: limit < sizeof(unsigned long) + sizeof(u32)",
            test_cmd(
                IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
                0,
                IommuTestMemoryLimit { limit: 11 },
            ),
            Errno::INVAL,
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(errno(TestCmd::decode(&raw)), want, "{name}");
    }
    let limit = TestCmd::decode(&test_cmd(
        IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
        0,
        IommuTestMemoryLimit { limit: 12 },
    ));
    assert_eq!(limit, Ok(TestCmd::SetTempMemoryLimit { limit: 12 }));
}

#[test]
fn selftest_check_map_alignment_after_the_lookup() {
    // iommufd_test_md_check_pa() checks alignment against the mock domain's page size, after
    // get_md_pagetable(): the command decodes whatever its alignment.
    let at = |iova: u64, length: u64, uptr: u64| {
        TestCmd::decode(&test_cmd(
            IOMMU_TEST_OP_MD_CHECK_MAP,
            1,
            IommuTestCheckMap { iova, length, uptr },
        ))
        .expect("decodes")
    };
    let mock_page = 2048;
    assert_eq!(at(1 << 24, 4096, 0x10000).check_map_alignment(mock_page), Ok(()));
    for (name, cmd) in [
        ("iova % page_size", at((1 << 24) + 8, 4096, 0x10000)),
        ("length % page_size", at(1 << 24, 100, 0x10000)),
        ("uptr % page_size", at(1 << 24, 4096, 0x10008)),
        (
            "check_add_overflow(uptr, length)",
            at(1 << 24, 4096, u64::MAX - 2047),
        ),
    ] {
        assert_eq!(errno(cmd.check_map_alignment(mock_page)), Errno::INVAL, "{name}");
    }
}

#[test]
fn selftest_replies() {
    // MOCK_DOMAIN: the three out ids; dev_flags (MOCK_DOMAIN_FLAGS) stays as written.
    let flags = IommuTestMockDomainFlags {
        dev_flags: MOCK_FLAGS_DEVICE_PASID,
        ..Default::default()
    };
    let mut cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, 1, flags);
    let reply = TestReply::MockDomain {
        stdev_id: id(2),
        hwpt_id: id(3),
        idev_id: id(4),
    };
    TestCmd::encode_reply(&mut cmd, reply).expect("reply");
    let out = IommuTestMockDomainFlags {
        out_stdev_id: 2,
        out_hwpt_id: 3,
        out_idev_id: 4,
        dev_flags: MOCK_FLAGS_DEVICE_PASID,
    };
    assert_eq!(cmd, test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, 1, out));

    let mut cmd = test_cmd(
        IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
        2,
        IommuTestMockDomainReplace { pt_id: 1 },
    );
    TestCmd::encode_reply(&mut cmd, TestReply::MockDomainReplace { pt_id: id(9) }).expect("reply");
    assert_eq!(
        cmd,
        test_cmd(
            IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
            2,
            IommuTestMockDomainReplace { pt_id: 9 }
        )
    );

    let create = IommuTestCreateAccess {
        out_access_fd: 0,
        flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
    };
    let mut cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, 1, create);
    TestCmd::encode_reply(&mut cmd, TestReply::CreateAccess { access_fd: 5 }).expect("reply");
    assert_eq!(
        cmd,
        test_cmd(
            IOMMU_TEST_OP_CREATE_ACCESS,
            1,
            IommuTestCreateAccess {
                out_access_fd: 5,
                ..create
            }
        )
    );

    let pages = IommuTestAccessPages {
        flags: MOCK_FLAGS_ACCESS_WRITE,
        iova: 4096,
        length: 4096,
        uptr: 0x1000,
        ..Default::default()
    };
    let mut cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, 3, pages);
    TestCmd::encode_reply(&mut cmd, TestReply::AccessPages { access_pages_id: 7 }).expect("reply");
    let out = IommuTestAccessPages {
        out_access_pages_id: 7,
        ..pages
    };
    assert_eq!(cmd, test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, 3, out));
}
