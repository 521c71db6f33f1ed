//! The iommufd selftest command, `drivers/iommu/iommufd/iommufd_test.h` (included by
//! `tools/testing/selftests/iommu/`): `IOMMU_TEST_CMD` on `/dev/iommu` drives a mock IOMMU domain
//! and mock device, checks mappings and page refcounts, creates access objects and sets a
//! temporary memory limit. uvfio serves it so the kernel's selftests can run against uvfio's host.
//!
//! `struct iommu_test_cmd` ends in an anonymous union; here it is [`IommuTestCmd::payload`], 48
//! raw bytes (the size of its largest member, `dirty`), with one struct per member
//! ([`IommuTestCheckMap`], ...) and a typed accessor pair for each ([`IommuTestCmd::check_map`],
//! [`IommuTestCmd::set_check_map`], ...). Where C pads a member implicitly, the struct here has an
//! explicit `pad` field, so every byte is accounted for.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::argsz::read_prefix;
use crate::ioctl::{Request, io};
use crate::iommufd::{IOMMUFD_CMD_BASE, IOMMUFD_TYPE};

/// `IOMMU_TEST_CMD`: `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)`.
pub const IOMMU_TEST_CMD: Request = io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);

/// Op: reserve an IOVA range in an IOAS (`add_reserved`).
pub const IOMMU_TEST_OP_ADD_RESERVED: u32 = 1;
/// Op: create a mock device attached to a mock domain of an IOAS (`mock_domain`).
pub const IOMMU_TEST_OP_MOCK_DOMAIN: u32 = 2;
/// Op: check the mock domain maps an IOVA range to a user buffer (`check_map`).
pub const IOMMU_TEST_OP_MD_CHECK_MAP: u32 = 3;
/// Op: check the pin refcount of every page of a user buffer (`check_refs`).
pub const IOMMU_TEST_OP_MD_CHECK_REFS: u32 = 4;
/// Op: create an access object (`create_access`).
pub const IOMMU_TEST_OP_CREATE_ACCESS: u32 = 5;
/// Op: unpin pages an access pinned (`destroy_access_pages`).
pub const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: u32 = 6;
/// Op: pin pages through an access (`access_pages`).
pub const IOMMU_TEST_OP_ACCESS_PAGES: u32 = 7;
/// Op: read or write IOVA through an access (`access_rw`).
pub const IOMMU_TEST_OP_ACCESS_RW: u32 = 8;
/// Op: set a temporary limit on pinned pages (`memory_limit`).
pub const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: u32 = 9;
/// Op: replace the mock device's domain (`mock_domain_replace`).
pub const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: u32 = 10;
/// Op: move an access to another IOAS (`access_replace_ioas`).
pub const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: u32 = 11;
/// Op: [`IOMMU_TEST_OP_MOCK_DOMAIN`] with device flags (`mock_domain_flags`).
pub const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: u32 = 12;
/// Op: set dirty bits in the mock domain (`dirty`).
pub const IOMMU_TEST_OP_DIRTY: u32 = 13;
/// Op: check a mock nested domain's IOTLB entry (`check_iotlb`).
pub const IOMMU_TEST_OP_MD_CHECK_IOTLB: u32 = 14;
/// Op: raise an I/O page fault from the mock device (`trigger_iopf`).
pub const IOMMU_TEST_OP_TRIGGER_IOPF: u32 = 15;
/// Op: check a mock device cache entry (`check_dev_cache`).
pub const IOMMU_TEST_OP_DEV_CHECK_CACHE: u32 = 16;
/// Op: raise a vEVENT from the mock device (`trigger_vevent`).
pub const IOMMU_TEST_OP_TRIGGER_VEVENT: u32 = 17;
/// Op: attach a PASID of the mock device (`pasid_attach`).
pub const IOMMU_TEST_OP_PASID_ATTACH: u32 = 18;
/// Op: replace a PASID's domain (`pasid_replace`).
pub const IOMMU_TEST_OP_PASID_REPLACE: u32 = 19;
/// Op: detach a PASID (`pasid_detach`).
pub const IOMMU_TEST_OP_PASID_DETACH: u32 = 20;
/// Op: check which HWPT a PASID is attached to (`pasid_check`).
pub const IOMMU_TEST_OP_PASID_CHECK_HWPT: u32 = 21;

/// First IOVA of the mock domain's aperture (`1UL << 24`).
pub const MOCK_APERTURE_START: u64 = 1 << 24;
/// Last IOVA of the mock domain's aperture, inclusive (`(1UL << 31) - 1`).
pub const MOCK_APERTURE_LAST: u64 = (1 << 31) - 1;

/// `access_pages.flags`: pin for write.
pub const MOCK_FLAGS_ACCESS_WRITE: u32 = 1 << 0;
/// `access_pages.flags`: syzkaller mode.
pub const MOCK_FLAGS_ACCESS_SYZ: u32 = 1 << 16;
/// `access_rw.flags`: write (else read).
pub const MOCK_ACCESS_RW_WRITE: u32 = 1 << 0;
/// `access_rw.flags`: take the slow path.
pub const MOCK_ACCESS_RW_SLOW_PATH: u32 = 1 << 2;
/// `create_access.flags`: the access will pin pages (needs an unmap callback).
pub const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES: u32 = 1 << 0;
/// `mock_domain_flags.dev_flags`: the mock device has no dirty tracking.
pub const MOCK_FLAGS_DEVICE_NO_DIRTY: u32 = 1 << 0;
/// `mock_domain_flags.dev_flags`: the mock device uses huge IOVA pages.
pub const MOCK_FLAGS_DEVICE_HUGE_IOVA: u32 = 1 << 1;
/// `mock_domain_flags.dev_flags`: the mock device supports PASID.
pub const MOCK_FLAGS_DEVICE_PASID: u32 = 1 << 2;
/// Largest IOTLB id of a mock nested domain.
pub const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX: u32 = 3;
/// Number of IOTLB entries of a mock nested domain.
pub const MOCK_NESTED_DOMAIN_IOTLB_NUM: u32 = 4;
/// Largest mock device cache id.
pub const MOCK_DEV_CACHE_ID_MAX: u32 = 3;
/// Number of mock device cache entries.
pub const MOCK_DEV_CACHE_NUM: u32 = 4;
/// "Reserved for special pasid replace test".
pub const IOMMU_TEST_PASID_RESERVED: u32 = 1024;
/// "Mock device/iommu PASID width".
pub const MOCK_PASID_WIDTH: u32 = 20;
/// `IOMMU_GET_HW_INFO` type of the mock IOMMU ([`IommuTestHwInfo`]).
pub const IOMMU_HW_INFO_TYPE_SELFTEST: u32 = 0xfeed_beef;
/// `test_reg` value the mock IOMMU reports.
pub const IOMMU_HW_INFO_SELFTEST_REGVAL: u32 = 0xdead_beef;
/// HWPT data type of a mock nested domain ([`IommuHwptSelftest`]): "Should not be equal to any
/// defined value in enum iommu_hwpt_data_type".
pub const IOMMU_HWPT_DATA_SELFTEST: u32 = 0xdead;
/// Initial value of every mock IOTLB entry.
pub const IOMMU_TEST_IOTLB_DEFAULT: u32 = 0x0bad_beef;
/// Initial value of every mock device cache entry.
pub const IOMMU_TEST_DEV_CACHE_DEFAULT: u32 = 0x00ba_ddad;
/// Invalidation data type for a mock nested HWPT ([`IommuHwptInvalidateSelftest`]).
pub const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST: u32 = 0xdead_beef;
/// An invalidation data type the mock driver rejects.
pub const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID: u32 = 0x0dad_beef;
/// Invalidation flag: "@iotlb_id will be ignored" (invalidate all).
pub const IOMMU_TEST_INVALIDATE_FLAG_ALL: u32 = 1 << 0;
/// vIOMMU type of the mock driver ([`IommuViommuSelftest`]).
pub const IOMMU_VIOMMU_TYPE_SELFTEST: u32 = 0xdead_beef;
/// Invalidation data type for a mock vIOMMU ([`IommuViommuInvalidateSelftest`]).
pub const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST: u32 = 0xdead_beef;
/// A vIOMMU invalidation data type the mock driver rejects.
pub const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID: u32 = 0x0dad_beef;
/// vEVENTQ type of the mock driver ([`IommuViommuEventSelftest`]).
pub const IOMMU_VEVENTQ_TYPE_SELFTEST: u32 = 0xbeef_beef;
/// HW queue type of the mock driver.
pub const IOMMU_HW_QUEUE_TYPE_SELFTEST: u32 = 0xdead_beef;
/// Number of mock HW queues.
pub const IOMMU_TEST_HW_QUEUE_MAX: u32 = 2;

/// Bytes in the union of [`IommuTestCmd`] (its largest member, `dirty`).
pub const IOMMU_TEST_PAYLOAD_SIZE: usize = 48;

/// `struct iommu_test_cmd`, the argument of [`IOMMU_TEST_CMD`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCmd {
    /// `sizeof(struct iommu_test_cmd)`, read as iommufd reads every size.
    pub size: u32,
    /// One `IOMMU_TEST_OP_*`.
    pub op: u32,
    /// Object the op works on (an IOAS, a mock device, an access, ... depending on `op`).
    pub id: u32,
    /// `__reserved`; `iommufd_test()` never reads it (a non-zero value is accepted).
    pub reserved: u32,
    /// The union, as raw native-endian words; read and write it through the member accessors.
    pub payload: [u64; IOMMU_TEST_PAYLOAD_SIZE / 8],
    /// `last`: the end marker of the struct (`IOCTL_OP(..., struct iommu_test_cmd, last)`).
    pub last: u32,
    /// The 4 bytes of tail padding C puts after `last` (the struct is 8-aligned).
    pub tail_padding: u32,
}
extensible!(IommuTestCmd, "iommu_test_cmd", last: u32);

/// A member struct of the [`IommuTestCmd`] union.
pub trait IommuTestMember: FromBytes + IntoBytes + Immutable + KnownLayout + Sized {}

impl IommuTestCmd {
    /// A command for `op` on object `id` with union member `member`; `size` is the full struct.
    pub fn new<M: IommuTestMember>(op: u32, id: u32, member: M) -> Self {
        let mut cmd = Self {
            // 72 bytes: the cast cannot truncate.
            size: size_of::<Self>() as u32,
            op,
            id,
            ..Self::default()
        };
        cmd.set_member(member);
        cmd
    }

    /// Reads the union as member `M`.
    pub fn member<M: IommuTestMember>(&self) -> M {
        read_prefix(self.payload.as_bytes())
    }

    /// Writes the union as member `M`; union bytes past `M` become zero.
    pub fn set_member<M: IommuTestMember>(&mut self, member: M) {
        let bytes = self.payload.as_mut_bytes();
        bytes.fill(0);
        let src = member.as_bytes();
        bytes[..src.len()].copy_from_slice(src);
    }
}

/// Implements [`IommuTestMember`] for each union member struct and an accessor pair for it on
/// [`IommuTestCmd`].
macro_rules! members {
    ($($get:ident / $set:ident => $name:ident,)*) => {
        $(
            impl IommuTestMember for $name {}

            const _: () = assert!(size_of::<$name>() <= IOMMU_TEST_PAYLOAD_SIZE);
        )*

        impl IommuTestCmd {
            $(
                #[doc = concat!("Reads the union as its `", stringify!($get), "` member.")]
                pub fn $get(&self) -> $name {
                    self.member()
                }

                #[doc = concat!("Writes the union as its `", stringify!($get), "` member.")]
                pub fn $set(&mut self, member: $name) {
                    self.set_member(member)
                }
            )*
        }
    };
}

members! {
    add_reserved / set_add_reserved => IommuTestAddReserved,
    mock_domain / set_mock_domain => IommuTestMockDomain,
    mock_domain_flags / set_mock_domain_flags => IommuTestMockDomainFlags,
    mock_domain_replace / set_mock_domain_replace => IommuTestMockDomainReplace,
    check_map / set_check_map => IommuTestCheckMap,
    check_refs / set_check_refs => IommuTestCheckRefs,
    create_access / set_create_access => IommuTestCreateAccess,
    destroy_access_pages / set_destroy_access_pages => IommuTestDestroyAccessPages,
    access_pages / set_access_pages => IommuTestAccessPages,
    access_rw / set_access_rw => IommuTestAccessRw,
    memory_limit / set_memory_limit => IommuTestMemoryLimit,
    access_replace_ioas / set_access_replace_ioas => IommuTestAccessReplaceIoas,
    dirty / set_dirty => IommuTestDirty,
    check_iotlb / set_check_iotlb => IommuTestCheckIotlb,
    trigger_iopf / set_trigger_iopf => IommuTestTriggerIopf,
    check_dev_cache / set_check_dev_cache => IommuTestCheckDevCache,
    trigger_vevent / set_trigger_vevent => IommuTestTriggerVevent,
    pasid_attach / set_pasid_attach => IommuTestPasidAttach,
    pasid_replace / set_pasid_replace => IommuTestPasidReplace,
    pasid_detach / set_pasid_detach => IommuTestPasidDetach,
    pasid_check / set_pasid_check => IommuTestPasidCheck,
}

/// Member `add_reserved` ([`IOMMU_TEST_OP_ADD_RESERVED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestAddReserved {
    /// First IOVA to reserve.
    pub start: u64,
    /// Bytes to reserve.
    pub length: u64,
}

/// Member `mock_domain` ([`IOMMU_TEST_OP_MOCK_DOMAIN`]); `id` is the IOAS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestMockDomain {
    /// The selftest device object.
    pub out_stdev_id: u32,
    /// The auto-created HWPT.
    pub out_hwpt_id: u32,
    /// "out_idev_id is the standard iommufd_bind object".
    pub out_idev_id: u32,
}

/// Member `mock_domain_flags` ([`IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestMockDomainFlags {
    /// The selftest device object.
    pub out_stdev_id: u32,
    /// The auto-created HWPT.
    pub out_hwpt_id: u32,
    /// The bound device object.
    pub out_idev_id: u32,
    /// "Expand mock_domain to set mock device flags" (`MOCK_FLAGS_DEVICE_*`).
    pub dev_flags: u32,
}

/// Member `mock_domain_replace` ([`IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`]); `id` is the stdev.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestMockDomainReplace {
    /// The IOAS or HWPT to attach instead.
    pub pt_id: u32,
}

/// Member `check_map` ([`IOMMU_TEST_OP_MD_CHECK_MAP`]); `id` is the IOAS or HWPT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCheckMap {
    /// First IOVA to check.
    pub iova: u64,
    /// Bytes to check.
    pub length: u64,
    /// User pointer the IOVA range must map to.
    pub uptr: u64,
}

/// Member `check_refs` ([`IOMMU_TEST_OP_MD_CHECK_REFS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCheckRefs {
    /// Bytes of the user buffer.
    pub length: u64,
    /// User buffer whose pages are checked.
    pub uptr: u64,
    /// Expected pin count of every page.
    pub refs: u32,
    /// C's implicit tail padding.
    pub pad: u32,
}

/// Member `create_access` ([`IOMMU_TEST_OP_CREATE_ACCESS`]); `id` is the IOAS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCreateAccess {
    /// The new access fd.
    pub out_access_fd: u32,
    /// `MOCK_FLAGS_ACCESS_CREATE_*`.
    pub flags: u32,
}

/// Member `destroy_access_pages` ([`IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`]); `id` is the access fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestDestroyAccessPages {
    /// Pin object returned by `access_pages`.
    pub access_pages_id: u32,
}

/// Member `access_pages` ([`IOMMU_TEST_OP_ACCESS_PAGES`]); `id` is the access fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestAccessPages {
    /// `MOCK_FLAGS_ACCESS_*`.
    pub flags: u32,
    /// Pin object to pass to `destroy_access_pages`.
    pub out_access_pages_id: u32,
    /// First IOVA to pin.
    pub iova: u64,
    /// Bytes to pin.
    pub length: u64,
    /// User buffer the pinned pages must match.
    pub uptr: u64,
}

/// Member `access_rw` ([`IOMMU_TEST_OP_ACCESS_RW`]); `id` is the access fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestAccessRw {
    /// First IOVA.
    pub iova: u64,
    /// Bytes to copy.
    pub length: u64,
    /// User buffer to copy from or to.
    pub uptr: u64,
    /// `MOCK_ACCESS_RW_*`.
    pub flags: u32,
    /// C's implicit tail padding.
    pub pad: u32,
}

/// Member `memory_limit` ([`IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestMemoryLimit {
    /// Limit in pages.
    pub limit: u32,
}

/// Member `access_replace_ioas` ([`IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`]); `id` is the access fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestAccessReplaceIoas {
    /// The IOAS to move the access to.
    pub ioas_id: u32,
}

/// Member `dirty` ([`IOMMU_TEST_OP_DIRTY`]); `id` is the HWPT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestDirty {
    /// Flags.
    pub flags: u32,
    /// C's implicit padding before `iova`.
    pub pad: u32,
    /// First IOVA.
    pub iova: u64,
    /// Bytes covered.
    pub length: u64,
    /// Bytes per bitmap bit.
    pub page_size: u64,
    /// User pointer to the bitmap of pages to mark dirty.
    pub uptr: u64,
    /// Number of pages marked dirty.
    pub out_nr_dirty: u64,
}

/// Member `check_iotlb` ([`IOMMU_TEST_OP_MD_CHECK_IOTLB`]); `id` is the nested HWPT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCheckIotlb {
    /// IOTLB entry index.
    pub id: u32,
    /// Expected value.
    pub iotlb: u32,
}

/// Member `trigger_iopf` ([`IOMMU_TEST_OP_TRIGGER_IOPF`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestTriggerIopf {
    /// Faulting device.
    pub dev_id: u32,
    /// PASID of the fault.
    pub pasid: u32,
    /// Page request group index.
    pub grpid: u32,
    /// `IOMMU_PGFAULT_PERM_*`.
    pub perm: u32,
    /// Faulting address.
    pub addr: u64,
}

/// Member `check_dev_cache` ([`IOMMU_TEST_OP_DEV_CHECK_CACHE`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestCheckDevCache {
    /// Cache entry index.
    pub id: u32,
    /// Expected value.
    pub cache: u32,
}

/// Member `trigger_vevent` ([`IOMMU_TEST_OP_TRIGGER_VEVENT`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestTriggerVevent {
    /// Device raising the event.
    pub dev_id: u32,
}

/// Member `pasid_attach` ([`IOMMU_TEST_OP_PASID_ATTACH`]); "@id is stdev_id".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestPasidAttach {
    /// PASID.
    pub pasid: u32,
    /// IOAS or HWPT to attach.
    pub pt_id: u32,
}

/// Member `pasid_replace` ([`IOMMU_TEST_OP_PASID_REPLACE`]); "@id is stdev_id".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestPasidReplace {
    /// PASID.
    pub pasid: u32,
    /// IOAS or HWPT to attach instead.
    pub pt_id: u32,
}

/// Member `pasid_detach` ([`IOMMU_TEST_OP_PASID_DETACH`]); "@id is stdev_id".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestPasidDetach {
    /// PASID.
    pub pasid: u32,
}

/// Member `pasid_check` ([`IOMMU_TEST_OP_PASID_CHECK_HWPT`]); "@id is stdev_id".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestPasidCheck {
    /// PASID.
    pub pasid: u32,
    /// Expected HWPT.
    pub hwpt_id: u32,
}

/// `struct iommu_test_hw_info`: the mock IOMMU's `IOMMU_GET_HW_INFO` data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuTestHwInfo {
    /// Flags.
    pub flags: u32,
    /// [`IOMMU_HW_INFO_SELFTEST_REGVAL`].
    pub test_reg: u32,
}

/// `struct iommu_hwpt_selftest`: data of a mock nested HWPT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptSelftest {
    /// "default mock iotlb value, IOMMU_TEST_IOTLB_DEFAULT".
    pub iotlb: u32,
}

/// `struct iommu_hwpt_invalidate_selftest`: "Invalidation data for Mock driver".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuHwptInvalidateSelftest {
    /// "Invalidate flags" ([`IOMMU_TEST_INVALIDATE_FLAG_ALL`]).
    pub flags: u32,
    /// "Invalidate iotlb entry index".
    pub iotlb_id: u32,
}

/// `struct iommu_viommu_selftest`: "vIOMMU data for Mock driver".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuViommuSelftest {
    /// "Input random data from user space".
    pub in_data: u32,
    /// "Output data (matching @in_data) to user space".
    pub out_data: u32,
    /// "The offset argument for mmap syscall".
    pub out_mmap_offset: u64,
    /// "The length argument for mmap syscall".
    pub out_mmap_length: u64,
}

/// `struct iommu_viommu_invalidate_selftest`: "Invalidation data for Mock VIOMMU".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuViommuInvalidateSelftest {
    /// "Invalidate flags".
    pub flags: u32,
    /// Virtual device id.
    pub vdev_id: u32,
    /// "Invalidate cache entry index".
    pub cache_id: u32,
}

/// `struct iommu_viommu_event_selftest`: a mock vEVENT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IommuViommuEventSelftest {
    /// Virtual device id of the event's device.
    pub virt_id: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_clear_the_rest_of_the_union() {
        let dirty = IommuTestDirty {
            flags: 1,
            pad: 0,
            iova: 2,
            length: 3,
            page_size: 4,
            uptr: 5,
            out_nr_dirty: 6,
        };
        let mut cmd = IommuTestCmd::new(IOMMU_TEST_OP_DIRTY, 7, dirty);
        assert_eq!(cmd.size, 72);
        assert_eq!(cmd.dirty(), dirty);
        cmd.set_memory_limit(IommuTestMemoryLimit { limit: 16 });
        assert_eq!(cmd.memory_limit().limit, 16);
        assert_eq!(cmd.payload[1..], [0; 5]);
    }
}
