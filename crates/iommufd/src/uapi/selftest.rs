//! The selftest command `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/selftest.c`, `iommufd_test()`):
//! the ops uvfio serves, each with the checks its Linux handler makes before any lookup.
//!
//! `iommufd_test()` switches on `op` and nothing else: it never looks at `__reserved`, and the
//! union bytes a member does not use are ignored. An op uvfio does not serve answers `EOPNOTSUPP`,
//! as the `default:` of that switch does.

use bitflags::bitflags;
use std::mem::offset_of;
use uvfio_abi::selftest::{
    IOMMU_TEST_OP_ACCESS_PAGES, IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, IOMMU_TEST_OP_ACCESS_RW,
    IOMMU_TEST_OP_ADD_RESERVED, IOMMU_TEST_OP_CREATE_ACCESS, IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
    IOMMU_TEST_OP_MD_CHECK_MAP, IOMMU_TEST_OP_MD_CHECK_REFS, IOMMU_TEST_OP_MOCK_DOMAIN,
    IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
    IommuTestAccessPages, IommuTestCmd, IommuTestCreateAccess, IommuTestMockDomain,
    IommuTestMockDomainReplace, MOCK_ACCESS_RW_SLOW_PATH, MOCK_ACCESS_RW_WRITE,
    MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, MOCK_FLAGS_ACCESS_SYZ, MOCK_FLAGS_ACCESS_WRITE,
    MOCK_FLAGS_DEVICE_NO_DIRTY, MOCK_FLAGS_DEVICE_PASID,
};
use uvfio_types::{HostVa, Iova, IovaRange};
use zerocopy::IntoBytes;

use super::{PAGE_SIZE, UapiError, UserPtr, read_cmd, respond};
use crate::object::ObjectId;

/// Largest length an access op copies or pins in one go (`16*1024*1024`).
pub const TEST_ACCESS_MAX_LENGTH: u64 = 16 * 1024 * 1024;

/// Smallest temporary memory limit: `sizeof(unsigned long) + sizeof(u32)` on a 64-bit kernel
/// ("Protect _batch_init(), can not be less than elmsz").
pub const TEST_MIN_MEMORY_LIMIT: u32 = 8 + 4;

bitflags! {
    /// `dev_flags` of `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS` that `mock_dev_create()` accepts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MockDeviceFlags: u32 {
        /// `MOCK_FLAGS_DEVICE_NO_DIRTY`: the device cannot track dirty pages.
        const NO_DIRTY = MOCK_FLAGS_DEVICE_NO_DIRTY;
        /// `MOCK_FLAGS_DEVICE_PASID`: the device supports PASIDs.
        const PASID = MOCK_FLAGS_DEVICE_PASID;
    }
}

bitflags! {
    /// `create_access.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CreateAccessFlags: u32 {
        /// `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`: the access pins pages.
        const NEEDS_PIN_PAGES = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
    }
}

bitflags! {
    /// `access_pages.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AccessPagesFlags: u32 {
        /// `MOCK_FLAGS_ACCESS_WRITE`: pin for writing.
        const WRITE = MOCK_FLAGS_ACCESS_WRITE;
        /// `MOCK_FLAGS_ACCESS_SYZ`: syzkaller mode (the IOVA is an area index and offset).
        const SYZ = MOCK_FLAGS_ACCESS_SYZ;
    }
}

bitflags! {
    /// `access_rw.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AccessRwFlags: u32 {
        /// `MOCK_ACCESS_RW_WRITE`: write to the IOVA (else read from it).
        const WRITE = MOCK_ACCESS_RW_WRITE;
        /// `MOCK_ACCESS_RW_SLOW_PATH`: force the page-by-page path.
        const SLOW_PATH = MOCK_ACCESS_RW_SLOW_PATH;
        /// `MOCK_FLAGS_ACCESS_SYZ`: syzkaller mode.
        const SYZ = MOCK_FLAGS_ACCESS_SYZ;
    }
}

/// An `IOMMU_TEST_CMD`, by op; `id` is named after what it is for each op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCmd {
    /// `IOMMU_TEST_OP_ADD_RESERVED`: reserve `range` in an IOAS.
    AddReserved {
        /// The IOAS (`id`).
        ioas_id: u32,
        /// `start` .. `start + length - 1`.
        range: IovaRange,
    },
    /// `IOMMU_TEST_OP_MOCK_DOMAIN` and `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`: create a mock device,
    /// bind it and attach it to `pt_id`.
    MockDomain {
        /// The IOAS or HWPT to attach to (`id`).
        pt_id: u32,
        /// The device flags (empty for `IOMMU_TEST_OP_MOCK_DOMAIN`).
        dev_flags: MockDeviceFlags,
    },
    /// `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`: attach a mock device to another IOAS or HWPT.
    MockDomainReplace {
        /// The selftest device object (`id`).
        stdev_id: u32,
        /// The IOAS or HWPT to attach to instead.
        pt_id: u32,
    },
    /// `IOMMU_TEST_OP_MD_CHECK_MAP`: check that a mock domain maps `iova..+length` to the caller's
    /// memory at `uptr` (alignment is checked after the lookup: [`TestCmd::check_map_alignment`]).
    CheckMap {
        /// The IOAS's or HWPT's mock domain (`id`).
        mockpt_id: u32,
        /// First IOVA.
        iova: Iova,
        /// Bytes to check.
        length: u64,
        /// The caller's memory the IOVAs must map to.
        uptr: HostVa,
    },
    /// `IOMMU_TEST_OP_MD_CHECK_REFS`: check the pin count of every page of the caller's memory.
    CheckRefs {
        /// First byte, page aligned.
        uptr: HostVa,
        /// Bytes, a multiple of the page size.
        length: u64,
        /// The expected pin count of each page.
        refs: u32,
    },
    /// `IOMMU_TEST_OP_CREATE_ACCESS`: create an access object on an IOAS, as a new fd.
    CreateAccess {
        /// The IOAS (`id`).
        ioas_id: u32,
        /// The flags.
        flags: CreateAccessFlags,
    },
    /// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`: unpin what an `AccessPages` pinned.
    DestroyAccessPages {
        /// The access (`id`, a file descriptor).
        access_fd: i32,
        /// The pin returned by `AccessPages`.
        access_pages_id: u32,
    },
    /// `IOMMU_TEST_OP_ACCESS_PAGES`: pin IOVAs through an access.
    AccessPages {
        /// The access (`id`, a file descriptor).
        access_fd: i32,
        /// The flags.
        flags: AccessPagesFlags,
        /// First IOVA.
        iova: Iova,
        /// Bytes, at most [`TEST_ACCESS_MAX_LENGTH`].
        length: u64,
        /// The caller's memory the pinned pages must be; `None` skips the check ("For syzkaller
        /// allow uptr to be NULL to skip this check").
        uptr: Option<HostVa>,
    },
    /// `IOMMU_TEST_OP_ACCESS_RW`: copy between IOVAs and the caller's buffer through an access.
    AccessRw {
        /// The access (`id`, a file descriptor).
        access_fd: i32,
        /// The flags.
        flags: AccessRwFlags,
        /// First IOVA.
        iova: Iova,
        /// Bytes, at most [`TEST_ACCESS_MAX_LENGTH`].
        length: u64,
        /// The caller's buffer, for the host to copy from or to.
        uptr: UserPtr,
    },
    /// `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`: the size of the kernel's temporary page batches.
    SetTempMemoryLimit {
        /// The limit, at least [`TEST_MIN_MEMORY_LIMIT`].
        limit: u32,
    },
    /// `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`: move an access to another IOAS.
    AccessReplaceIoas {
        /// The access (`id`, a file descriptor).
        access_fd: i32,
        /// The IOAS to move to.
        ioas_id: u32,
    },
}

/// The out fields of the `IOMMU_TEST_CMD` ops that answer something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestReply {
    /// `MockDomain`: `mock_domain.out_stdev_id`, `out_hwpt_id`, `out_idev_id`.
    MockDomain {
        /// The selftest device object.
        stdev_id: ObjectId,
        /// The HWPT the device got attached to.
        hwpt_id: ObjectId,
        /// The bound device object.
        idev_id: ObjectId,
    },
    /// `MockDomainReplace`: `mock_domain_replace.pt_id`, the HWPT now attached.
    MockDomainReplace {
        /// The HWPT.
        pt_id: ObjectId,
    },
    /// `CreateAccess`: `create_access.out_access_fd`.
    CreateAccess {
        /// The new file descriptor.
        access_fd: i32,
    },
    /// `AccessPages`: `access_pages.out_access_pages_id`.
    AccessPages {
        /// The pin's id.
        access_pages_id: u32,
    },
}

/// `id` as `iommufd_access_get(int fd)` receives it.
fn fd_of(id: u32) -> i32 {
    i32::from_ne_bytes(id.to_ne_bytes())
}

/// "Prevent syzkaller from triggering a WARN_ON in kvzalloc()":
/// `if (length > 16*1024*1024) return -ENOMEM;`
fn check_access_length(cmd: &'static str, length: u64) -> Result<(), UapiError> {
    if length > TEST_ACCESS_MAX_LENGTH {
        return Err(UapiError::TestLengthTooLarge { cmd, length });
    }
    Ok(())
}

/// `uptr`, `length` and `uptr + length` checks of `iommufd_test_md_check_pa()` and
/// `iommufd_test_md_check_refs()`: `EINVAL` unless aligned to `align` and not wrapping.
fn check_user_range(cmd: &'static str, uptr: u64, length: u64, align: u64) -> Result<(), UapiError> {
    // `if (length % PAGE_SIZE || (uintptr_t)uptr % PAGE_SIZE ||
    //      check_add_overflow((uintptr_t)uptr, (uintptr_t)length, &end)) return -EINVAL;`
    if length % align != 0 || uptr % align != 0 || uptr.checked_add(length).is_none() {
        return Err(UapiError::Misaligned { cmd, align });
    }
    Ok(())
}

impl TestCmd {
    /// Decodes `struct iommu_test_cmd` (`iommufd_test()` and each op's checks before its lookup).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuTestCmd = read_cmd(bytes)?;
        let id = cmd.id;
        match cmd.op {
            IOMMU_TEST_OP_ADD_RESERVED => {
                let m = cmd.add_reserved();
                // iommufd_test_add_reserved(): `if (!length) return -EINVAL;`
                // `if (check_add_overflow(start, length - 1, &last)) return -EOVERFLOW;`
                let range = IovaRange::from_start_len(Iova::new(m.start), m.length).map_err(|_| {
                    if m.length == 0 {
                        UapiError::ZeroLength { cmd: "add_reserved" }
                    } else {
                        UapiError::Overflow {
                            cmd: "add_reserved",
                            field: "start + length - 1",
                        }
                    }
                })?;
                Ok(TestCmd::AddReserved { ioas_id: id, range })
            }
            IOMMU_TEST_OP_MOCK_DOMAIN => Ok(TestCmd::MockDomain {
                pt_id: id,
                dev_flags: MockDeviceFlags::empty(),
            }),
            IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS => {
                let raw = cmd.mock_domain_flags().dev_flags;
                // mock_dev_create(): `if (dev_flags & ~valid_flags) return ERR_PTR(-EINVAL);`
                let dev_flags = MockDeviceFlags::from_bits(raw).ok_or(UapiError::MockDeviceFlags {
                    flags: raw & !MockDeviceFlags::all().bits(),
                })?;
                Ok(TestCmd::MockDomain { pt_id: id, dev_flags })
            }
            IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE => Ok(TestCmd::MockDomainReplace {
                stdev_id: id,
                pt_id: cmd.mock_domain_replace().pt_id,
            }),
            IOMMU_TEST_OP_MD_CHECK_MAP => {
                let m = cmd.check_map();
                Ok(TestCmd::CheckMap {
                    mockpt_id: id,
                    iova: Iova::new(m.iova),
                    length: m.length,
                    uptr: HostVa::new(m.uptr),
                })
            }
            IOMMU_TEST_OP_MD_CHECK_REFS => {
                let m = cmd.check_refs();
                check_user_range("md_check_refs", m.uptr, m.length, PAGE_SIZE)?;
                Ok(TestCmd::CheckRefs {
                    uptr: HostVa::new(m.uptr),
                    length: m.length,
                    refs: m.refs,
                })
            }
            IOMMU_TEST_OP_CREATE_ACCESS => {
                let raw = cmd.create_access().flags;
                // `if (flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) return -EOPNOTSUPP;`
                let flags = CreateAccessFlags::from_bits(raw).ok_or(UapiError::UnsupportedFlags {
                    cmd: "create_access",
                    flags: raw & !CreateAccessFlags::all().bits(),
                })?;
                Ok(TestCmd::CreateAccess { ioas_id: id, flags })
            }
            IOMMU_TEST_OP_DESTROY_ACCESS_PAGES => Ok(TestCmd::DestroyAccessPages {
                access_fd: fd_of(id),
                access_pages_id: cmd.destroy_access_pages().access_pages_id,
            }),
            IOMMU_TEST_OP_ACCESS_PAGES => {
                let m = cmd.access_pages();
                check_access_length("access_pages", m.length)?;
                // `if (flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) return -EOPNOTSUPP;`
                let flags = AccessPagesFlags::from_bits(m.flags).ok_or(UapiError::UnsupportedFlags {
                    cmd: "access_pages",
                    flags: m.flags & !AccessPagesFlags::all().bits(),
                })?;
                Ok(TestCmd::AccessPages {
                    access_fd: fd_of(id),
                    flags,
                    iova: Iova::new(m.iova),
                    length: m.length,
                    uptr: (m.uptr != 0).then_some(HostVa::new(m.uptr)),
                })
            }
            IOMMU_TEST_OP_ACCESS_RW => {
                let m = cmd.access_rw();
                check_access_length("access_rw", m.length)?;
                // `if (flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH |
                //      MOCK_FLAGS_ACCESS_SYZ)) return -EOPNOTSUPP;`
                let flags = AccessRwFlags::from_bits(m.flags).ok_or(UapiError::UnsupportedFlags {
                    cmd: "access_rw",
                    flags: m.flags & !AccessRwFlags::all().bits(),
                })?;
                Ok(TestCmd::AccessRw {
                    access_fd: fd_of(id),
                    flags,
                    iova: Iova::new(m.iova),
                    length: m.length,
                    uptr: UserPtr(m.uptr),
                })
            }
            IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT => {
                let limit = cmd.memory_limit().limit;
                // `if (cmd->memory_limit.limit < sizeof(unsigned long) + sizeof(u32)) return -EINVAL;`
                if limit < TEST_MIN_MEMORY_LIMIT {
                    return Err(UapiError::MemoryLimitTooSmall { limit });
                }
                Ok(TestCmd::SetTempMemoryLimit { limit })
            }
            IOMMU_TEST_OP_ACCESS_REPLACE_IOAS => Ok(TestCmd::AccessReplaceIoas {
                access_fd: fd_of(id),
                ioas_id: cmd.access_replace_ioas().ioas_id,
            }),
            // `default: return -EOPNOTSUPP;`
            op => Err(UapiError::UnknownTestOp { op }),
        }
    }

    /// For `CheckMap`, the checks `iommufd_test_md_check_pa()` makes once it has the mock domain:
    /// `iova`, `length` and `uptr` aligned to its smallest page size `page_size` (`1 <<
    /// __ffs(mock->domain.pgsize_bitmap)`), `uptr + length` not wrapping (`EINVAL`). Other ops
    /// have nothing to check here.
    pub fn check_map_alignment(&self, page_size: u64) -> Result<(), UapiError> {
        let TestCmd::CheckMap {
            iova, length, uptr, ..
        } = *self
        else {
            return Ok(());
        };
        // `if (iova % page_size || length % page_size || (uintptr_t)uptr % page_size ||
        //      check_add_overflow((uintptr_t)uptr, (uintptr_t)length, &end)) { rc = -EINVAL; ...`
        if page_size == 0 || iova.raw() % page_size != 0 {
            return Err(UapiError::Misaligned {
                cmd: "md_check_map",
                align: page_size,
            });
        }
        check_user_range("md_check_map", uptr.raw(), length, page_size)
    }

    /// Writes an op's out fields back (`iommufd_ucmd_respond(ucmd, sizeof(*cmd))`). The kernel
    /// sets single fields of the union, so every other byte goes back as the caller wrote it.
    pub fn encode_reply(bytes: &mut [u8], reply: TestReply) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuTestCmd| match reply {
            TestReply::MockDomain {
                stdev_id,
                hwpt_id,
                idev_id,
            } => {
                put_u32(cmd, offset_of!(IommuTestMockDomain, out_stdev_id), stdev_id.raw());
                put_u32(cmd, offset_of!(IommuTestMockDomain, out_hwpt_id), hwpt_id.raw());
                put_u32(cmd, offset_of!(IommuTestMockDomain, out_idev_id), idev_id.raw());
            }
            TestReply::MockDomainReplace { pt_id } => {
                put_u32(cmd, offset_of!(IommuTestMockDomainReplace, pt_id), pt_id.raw());
            }
            TestReply::CreateAccess { access_fd } => {
                let fd = u32::from_ne_bytes(access_fd.to_ne_bytes());
                put_u32(cmd, offset_of!(IommuTestCreateAccess, out_access_fd), fd);
            }
            TestReply::AccessPages { access_pages_id } => {
                put_u32(
                    cmd,
                    offset_of!(IommuTestAccessPages, out_access_pages_id),
                    access_pages_id,
                );
            }
        })
    }
}

/// Stores `value` at byte `offset` of the union (`cmd->member.field = value;`).
fn put_u32(cmd: &mut IommuTestCmd, offset: usize, value: u32) {
    cmd.payload.as_mut_bytes()[offset..offset + size_of::<u32>()].copy_from_slice(&value.to_ne_bytes());
}
