//! `uvfio_abi::selftest` against `drivers/iommu/iommufd/iommufd_test.h` (Linux v7.x, the header
//! `tools/testing/selftests/iommu/` includes). No bindings crate carries it, so the expected
//! values are hard-coded from the header: x86-64 / arm64 layout, where `__aligned_u64` and `__u64`
//! are 8-aligned. `struct iommu_test_cmd` is { `__u32 size, op, id, __reserved;` union; `__u32
//! last;` }: the union (largest member `dirty`, 48 bytes, 8-aligned) starts at 16, `last` at 64,
//! and tail padding makes the struct 72 bytes.

#[macro_use]
mod common;

use uvfio_abi::Extensible;
use uvfio_abi::iommufd::{IOMMUFD_CMD_BASE, IOMMUFD_TYPE};
use uvfio_abi::selftest::*;

#[test]
fn test_cmd_header() {
    layout_is!(IommuTestCmd, size 72, align 8 {
        size @ 0, op @ 4, id @ 8, reserved @ 12, payload @ 16, last @ 64, tail_padding @ 68,
    });
    assert_eq!(IOMMU_TEST_PAYLOAD_SIZE, 48);
    // IOCTL_OP(IOMMU_TEST_CMD, iommufd_test, struct iommu_test_cmd, last)
    assert_eq!(IommuTestCmd::MIN_SIZE, 68);
}

#[test]
fn union_members() {
    // Offsets within the union; sizes include C's tail padding, made explicit as `pad`.
    layout_is!(IommuTestAddReserved, size 16, align 8 { start @ 0, length @ 8 });
    layout_is!(IommuTestMockDomain, size 12, align 4 {
        out_stdev_id @ 0, out_hwpt_id @ 4, out_idev_id @ 8,
    });
    layout_is!(IommuTestMockDomainFlags, size 16, align 4 {
        out_stdev_id @ 0, out_hwpt_id @ 4, out_idev_id @ 8, dev_flags @ 12,
    });
    layout_is!(IommuTestMockDomainReplace, size 4, align 4 { pt_id @ 0 });
    layout_is!(IommuTestCheckMap, size 24, align 8 { iova @ 0, length @ 8, uptr @ 16 });
    layout_is!(IommuTestCheckRefs, size 24, align 8 {
        length @ 0, uptr @ 8, refs @ 16, pad @ 20,
    });
    layout_is!(IommuTestCreateAccess, size 8, align 4 { out_access_fd @ 0, flags @ 4 });
    layout_is!(IommuTestDestroyAccessPages, size 4, align 4 { access_pages_id @ 0 });
    layout_is!(IommuTestAccessPages, size 32, align 8 {
        flags @ 0, out_access_pages_id @ 4, iova @ 8, length @ 16, uptr @ 24,
    });
    layout_is!(IommuTestAccessRw, size 32, align 8 {
        iova @ 0, length @ 8, uptr @ 16, flags @ 24, pad @ 28,
    });
    layout_is!(IommuTestMemoryLimit, size 4, align 4 { limit @ 0 });
    layout_is!(IommuTestAccessReplaceIoas, size 4, align 4 { ioas_id @ 0 });
    layout_is!(IommuTestDirty, size 48, align 8 {
        flags @ 0, pad @ 4, iova @ 8, length @ 16, page_size @ 24, uptr @ 32,
        out_nr_dirty @ 40,
    });
    layout_is!(IommuTestCheckIotlb, size 8, align 4 { id @ 0, iotlb @ 4 });
    layout_is!(IommuTestTriggerIopf, size 24, align 8 {
        dev_id @ 0, pasid @ 4, grpid @ 8, perm @ 12, addr @ 16,
    });
    layout_is!(IommuTestCheckDevCache, size 8, align 4 { id @ 0, cache @ 4 });
    layout_is!(IommuTestTriggerVevent, size 4, align 4 { dev_id @ 0 });
    layout_is!(IommuTestPasidAttach, size 8, align 4 { pasid @ 0, pt_id @ 4 });
    layout_is!(IommuTestPasidReplace, size 8, align 4 { pasid @ 0, pt_id @ 4 });
    layout_is!(IommuTestPasidDetach, size 4, align 4 { pasid @ 0 });
    layout_is!(IommuTestPasidCheck, size 8, align 4 { pasid @ 0, hwpt_id @ 4 });
}

#[test]
fn mock_driver_data_structs() {
    layout_is!(IommuTestHwInfo, size 8, align 4 { flags @ 0, test_reg @ 4 });
    layout_is!(IommuHwptSelftest, size 4, align 4 { iotlb @ 0 });
    layout_is!(IommuHwptInvalidateSelftest, size 8, align 4 { flags @ 0, iotlb_id @ 4 });
    layout_is!(IommuViommuSelftest, size 24, align 8 {
        in_data @ 0, out_data @ 4, out_mmap_offset @ 8, out_mmap_length @ 16,
    });
    layout_is!(IommuViommuInvalidateSelftest, size 12, align 4 {
        flags @ 0, vdev_id @ 4, cache_id @ 8,
    });
    layout_is!(IommuViommuEventSelftest, size 4, align 4 { virt_id @ 0 });
}

#[test]
fn ops_in_header_order() {
    // enum { IOMMU_TEST_OP_ADD_RESERVED = 1, IOMMU_TEST_OP_MOCK_DOMAIN, ... } in header order.
    let ops = [
        IOMMU_TEST_OP_ADD_RESERVED,
        IOMMU_TEST_OP_MOCK_DOMAIN,
        IOMMU_TEST_OP_MD_CHECK_MAP,
        IOMMU_TEST_OP_MD_CHECK_REFS,
        IOMMU_TEST_OP_CREATE_ACCESS,
        IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
        IOMMU_TEST_OP_ACCESS_PAGES,
        IOMMU_TEST_OP_ACCESS_RW,
        IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
        IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
        IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
        IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
        IOMMU_TEST_OP_DIRTY,
        IOMMU_TEST_OP_MD_CHECK_IOTLB,
        IOMMU_TEST_OP_TRIGGER_IOPF,
        IOMMU_TEST_OP_DEV_CHECK_CACHE,
        IOMMU_TEST_OP_TRIGGER_VEVENT,
        IOMMU_TEST_OP_PASID_ATTACH,
        IOMMU_TEST_OP_PASID_REPLACE,
        IOMMU_TEST_OP_PASID_DETACH,
        IOMMU_TEST_OP_PASID_CHECK_HWPT,
    ];
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(*op as usize, i + 1);
    }
}

#[test]
fn constants_and_request_number() {
    // #define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)
    same_requests!(IOMMUFD_TYPE; IOMMU_TEST_CMD => u32::from(IOMMUFD_CMD_BASE) + 32);
    assert_eq!(IOMMU_TEST_CMD, 0x3ba0);
    // enum { MOCK_APERTURE_START = 1UL << 24, MOCK_APERTURE_LAST = (1UL << 31) - 1 }
    assert_eq!(MOCK_APERTURE_START, 0x100_0000);
    assert_eq!(MOCK_APERTURE_LAST, 0x7fff_ffff);
    same_consts!(
        MOCK_FLAGS_ACCESS_WRITE => 1u32,
        MOCK_FLAGS_ACCESS_SYZ => 1u32 << 16,
        MOCK_ACCESS_RW_WRITE => 1u32,
        MOCK_ACCESS_RW_SLOW_PATH => 1u32 << 2,
        MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES => 1u32,
        MOCK_FLAGS_DEVICE_NO_DIRTY => 1u32,
        MOCK_FLAGS_DEVICE_HUGE_IOVA => 1u32 << 1,
        MOCK_FLAGS_DEVICE_PASID => 1u32 << 2,
        MOCK_NESTED_DOMAIN_IOTLB_ID_MAX => 3u32,
        MOCK_NESTED_DOMAIN_IOTLB_NUM => 4u32,
        MOCK_DEV_CACHE_ID_MAX => 3u32,
        MOCK_DEV_CACHE_NUM => 4u32,
        IOMMU_TEST_PASID_RESERVED => 1024u32,
        MOCK_PASID_WIDTH => 20u32,
        IOMMU_HW_INFO_TYPE_SELFTEST => 0xfeedbeef_u32,
        IOMMU_HW_INFO_SELFTEST_REGVAL => 0xdeadbeef_u32,
        IOMMU_HWPT_DATA_SELFTEST => 0xdead_u32,
        IOMMU_TEST_IOTLB_DEFAULT => 0xbadbeef_u32,
        IOMMU_TEST_DEV_CACHE_DEFAULT => 0xbaddad_u32,
        IOMMU_HWPT_INVALIDATE_DATA_SELFTEST => 0xdeadbeef_u32,
        IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID => 0xdadbeef_u32,
        IOMMU_TEST_INVALIDATE_FLAG_ALL => 1u32,
        IOMMU_VIOMMU_TYPE_SELFTEST => 0xdeadbeef_u32,
        IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST => 0xdeadbeef_u32,
        IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID => 0xdadbeef_u32,
        IOMMU_VEVENTQ_TYPE_SELFTEST => 0xbeefbeef_u32,
        IOMMU_HW_QUEUE_TYPE_SELFTEST => 0xdeadbeef_u32,
        IOMMU_TEST_HW_QUEUE_MAX => 2u32,
    );
}

#[test]
fn a_check_refs_command_reads_back_from_raw_bytes() {
    use uvfio_abi::{Tail, read_extensible};
    use zerocopy::IntoBytes;
    let cmd = IommuTestCmd::new(
        IOMMU_TEST_OP_MD_CHECK_REFS,
        0,
        IommuTestCheckRefs {
            length: 4096,
            uptr: 0x7f00_0000_1000,
            refs: 1,
            pad: 0,
        },
    );
    let bytes = cmd.as_bytes();
    // check_refs.refs sits at union offset 16, i.e. byte 32 of the command.
    assert_eq!(&bytes[32..36], &1u32.to_ne_bytes());
    let back: IommuTestCmd = read_extensible(bytes, Tail::MustBeZero).unwrap();
    assert_eq!(back.check_refs().uptr, 0x7f00_0000_1000);
    assert_eq!(back.op, IOMMU_TEST_OP_MD_CHECK_REFS);
}
