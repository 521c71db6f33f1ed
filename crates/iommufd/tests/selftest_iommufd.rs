//! `FIXTURE(iommufd)` of Linux's `tools/testing/selftests/iommu/iommufd.c` through uvfio's
//! `/dev/iommu` uAPI: `simple_close`, `cmd_fail`, `cmd_length`, `cmd_ex_fail` and the
//! `IOMMU_OPTION_RLIMIT_MODE` part of `global_options`. Each test ends with uvfio's leak check
//! (objects, reservations, locked memory and adopted memory back to zero after close).
//!
//! Not here: `global_options`' `IOMMU_OPTION_HUGE_PAGES` steps (`ENOENT` for object 0) and
//! `cmd_length`'s `IOMMU_HWPT_INVALIDATE` row, which uvfio does not serve yet.

mod ctx_support;
mod selftest_support;

use ctx_support::{Fd, TestUser, closed_clean, destroy, ioctl, open, open_with};
use rustix::io::Errno;
use selftest_support::expect_errno;
use std::mem::offset_of;
use uvfio_abi::iommufd::{
    IOMMU_DESTROY, IOMMU_GET_HW_INFO, IOMMU_HWPT_ALLOC, IOMMU_IOAS_ALLOC, IOMMU_IOAS_ALLOW_IOVAS,
    IOMMU_IOAS_COPY, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_UNMAP,
    IOMMU_OPTION, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE, IOMMU_VFIO_IOAS,
    IOMMUFD_CMD_BASE, IOMMUFD_TYPE, IommuDestroy, IommuHwInfo, IommuHwptAlloc, IommuIoasAlloc,
    IommuIoasAllowIovas, IommuIoasCopy, IommuIoasIovaRanges, IommuIoasMap, IommuIoasMapFile, IommuIoasUnmap,
    IommuOption, IommuVfioIoas,
};
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IommuTestCmd};
use uvfio_iommufd::ctx::Credentials;
use zerocopy::{FromZeros, Immutable, IntoBytes};

/// `ioctl(fd, request, arg)` with the caller's raw bytes (`arg` as the kernel reads it from user
/// memory), the reply written back into them.
fn raw_ioctl(fd: &Fd, user: &TestUser, request: u32, arg: &mut [u8]) -> Result<(), Errno> {
    fd.ctx.ioctl(request, arg, user).map_err(|e| e.errno())
}

/// `offsetofend(struct, field)`.
macro_rules! offsetofend {
    ($ty:ty, $field:ident) => {{
        let zero = <$ty as FromZeros>::new_zeroed();
        offset_of!($ty, $field) + size_of_val(&zero.$field)
    }};
}

// ---- TEST_F(iommufd, simple_close) --------------------------------------------------------------------

#[test]
fn simple_close() {
    let fd = open();
    closed_clean(&fd);
}

// ---- TEST_F(iommufd, cmd_fail) ------------------------------------------------------------------------

#[test]
fn cmd_fail() {
    let user = TestUser::new();
    let fd = open();
    let mut cmd = IommuDestroy {
        size: size_of::<IommuDestroy>() as u32,
        id: 0,
    };

    // object id is invalid
    expect_errno(&fd, Errno::NOENT, "destroy id 0", || destroy(&fd, &user, 0));
    // Bad pointer: `ioctl(fd, IOMMU_DESTROY, NULL)` reads no byte of a struct.
    expect_errno(&fd, Errno::FAULT, "IOMMU_DESTROY with NULL", || {
        raw_ioctl(&fd, &user, IOMMU_DESTROY, &mut [])
    });
    // Unknown ioctl
    let unknown = uvfio_abi::io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1);
    expect_errno(
        &fd,
        Errno::NOTTY,
        "_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1)",
        || ioctl(&fd, &user, unknown, &mut cmd),
    );
    closed_clean(&fd);
}

// ---- TEST_F(iommufd, cmd_length) ----------------------------------------------------------------------

/// The kernel's `TEST_LENGTH(_struct, _ioctl, _last)`: `struct { struct _struct cmd; uint8_t extra;
/// }` with every field zero but `size`. A size of `min_size - 1` is `EINVAL`; `sizeof + 1` with a
/// non-zero `extra` is `E2BIG`; `sizeof + 1` with `extra == 0` answers exactly what `sizeof`
/// answered.
fn test_length<T: IntoBytes + FromZeros + Immutable>(
    fd: &Fd,
    user: &TestUser,
    name: &str,
    request: u32,
    min_size: usize,
) {
    let size = size_of::<T>();
    let mut bytes = T::new_zeroed().as_bytes().to_vec();
    bytes.push(u8::MAX);
    let set_size = |bytes: &mut [u8], n: usize| {
        bytes[..4].copy_from_slice(&u32::try_from(n).expect("small struct").to_ne_bytes());
    };

    set_size(&mut bytes, min_size - 1);
    expect_errno(fd, Errno::INVAL, &format!("{name}: size = min_size - 1"), || {
        raw_ioctl(fd, user, request, &mut bytes)
    });
    set_size(&mut bytes, size + 1);
    expect_errno(
        fd,
        Errno::TOOBIG,
        &format!("{name}: size = sizeof + 1, non-zero tail"),
        || raw_ioctl(fd, user, request, &mut bytes),
    );
    set_size(&mut bytes, size);
    let rc = raw_ioctl(fd, user, request, &mut bytes);
    set_size(&mut bytes, size + 1);
    bytes[size] = 0;
    match rc {
        Err(old_errno) => expect_errno(
            fd,
            old_errno,
            &format!("{name}: size = sizeof + 1, zero tail"),
            || raw_ioctl(fd, user, request, &mut bytes),
        ),
        Ok(()) => assert_eq!(
            raw_ioctl(fd, user, request, &mut bytes),
            Ok(()),
            "{name}: size = sizeof + 1, zero tail"
        ),
    }
}

#[test]
fn cmd_length() {
    let user = TestUser::new();
    let fd = open();
    macro_rules! test_length {
        ($ty:ty, $request:expr, $last:ident) => {
            test_length::<$ty>(
                &fd,
                &user,
                stringify!($request),
                $request,
                offsetofend!($ty, $last),
            )
        };
    }
    test_length!(IommuDestroy, IOMMU_DESTROY, id);
    // uvfio checks IOMMU_GET_HW_INFO's struct but serves no handler yet: both full-size calls
    // answer ENOTTY, which is all TEST_LENGTH asks of them.
    test_length!(IommuHwInfo, IOMMU_GET_HW_INFO, reserved);
    test_length!(IommuHwptAlloc, IOMMU_HWPT_ALLOC, reserved);
    test_length!(IommuIoasAlloc, IOMMU_IOAS_ALLOC, out_ioas_id);
    test_length!(IommuIoasIovaRanges, IOMMU_IOAS_IOVA_RANGES, out_iova_alignment);
    test_length!(IommuIoasAllowIovas, IOMMU_IOAS_ALLOW_IOVAS, allowed_iovas);
    test_length!(IommuIoasMap, IOMMU_IOAS_MAP, iova);
    test_length!(IommuIoasCopy, IOMMU_IOAS_COPY, src_iova);
    test_length!(IommuIoasUnmap, IOMMU_IOAS_UNMAP, length);
    test_length!(IommuOption, IOMMU_OPTION, val64);
    test_length!(IommuVfioIoas, IOMMU_VFIO_IOAS, reserved);
    // Served here, not in the kernel's list: `IOCTL_OP(IOMMU_IOAS_MAP_FILE, ...,
    // struct iommu_ioas_map_file, iova)` and `IOCTL_OP(IOMMU_TEST_CMD, iommufd_test,
    // struct iommu_test_cmd, last)` in drivers/iommu/iommufd/main.c.
    test_length!(IommuIoasMapFile, IOMMU_IOAS_MAP_FILE, iova);
    test_length!(IommuTestCmd, IOMMU_TEST_CMD, last);
    closed_clean(&fd);
}

// ---- TEST_F(iommufd, cmd_ex_fail) ---------------------------------------------------------------------

#[derive(zerocopy::FromBytes, IntoBytes, Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct DestroyEx {
    cmd: IommuDestroy,
    future: u64,
}

#[test]
fn cmd_ex_fail() {
    let user = TestUser::new();
    let fd = open();
    let mut cmd = DestroyEx {
        cmd: IommuDestroy {
            size: size_of::<DestroyEx>() as u32,
            id: 0,
        },
        future: 0,
    };

    // object id is invalid and command is longer
    expect_errno(&fd, Errno::NOENT, "longer command, id 0", || {
        ioctl(&fd, &user, IOMMU_DESTROY, &mut cmd)
    });
    // future area is non-zero
    cmd.future = 1;
    expect_errno(&fd, Errno::TOOBIG, "non-zero future area", || {
        ioctl(&fd, &user, IOMMU_DESTROY, &mut cmd)
    });
    // Original command "works"
    cmd.cmd.size = size_of::<IommuDestroy>() as u32;
    expect_errno(&fd, Errno::NOENT, "original size, id 0", || {
        ioctl(&fd, &user, IOMMU_DESTROY, &mut cmd)
    });
    // Short command fails
    cmd.cmd.size = size_of::<IommuDestroy>() as u32 - 1;
    expect_errno(&fd, Errno::INVAL, "short command", || {
        ioctl(&fd, &user, IOMMU_DESTROY, &mut cmd)
    });
    closed_clean(&fd);
}

// ---- TEST_F(iommufd, global_options) ------------------------------------------------------------------

/// Up to the kernel's `IOMMU_OPTION_HUGE_PAGES` steps (not served yet). "This requires root": the
/// context is opened with `CAP_SYS_RESOURCE`.
#[test]
fn global_options() {
    let user = TestUser::new();
    let fd = open_with(Credentials {
        sys_resource: true,
        ..Default::default()
    });
    let mut cmd = IommuOption {
        size: size_of::<IommuOption>() as u32,
        option_id: IOMMU_OPTION_RLIMIT_MODE,
        op: IOMMU_OPTION_OP_GET,
        val64: 1,
        ..FromZeros::new_zeroed()
    };

    cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
    assert_eq!(ioctl(&fd, &user, IOMMU_OPTION, &mut cmd), Ok(()), "get");
    assert_eq!(cmd.val64, 0, "the default mode charges the user");

    // This requires root
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 1;
    assert_eq!(ioctl(&fd, &user, IOMMU_OPTION, &mut cmd), Ok(()), "set 1");
    cmd.val64 = 2;
    expect_errno(&fd, Errno::INVAL, "set 2", || {
        ioctl(&fd, &user, IOMMU_OPTION, &mut cmd)
    });

    cmd.op = IOMMU_OPTION_OP_GET;
    assert_eq!(ioctl(&fd, &user, IOMMU_OPTION, &mut cmd), Ok(()), "get");
    assert_eq!(cmd.val64, 1, "the failed set of 2 left mode 1");

    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.val64 = 0;
    assert_eq!(ioctl(&fd, &user, IOMMU_OPTION, &mut cmd), Ok(()), "set 0");
    closed_clean(&fd);
}

/// `global_options`' "This requires root", the other way round: without `CAP_SYS_RESOURCE` the
/// set is `EPERM` (`iommufd_option_rlimit_mode()`: `if (!capable(CAP_SYS_RESOURCE)) return
/// -EPERM;`) and the mode stays.
#[test]
fn global_options_unprivileged() {
    let user = TestUser::new();
    let fd = open();
    let mut cmd = IommuOption {
        size: size_of::<IommuOption>() as u32,
        option_id: IOMMU_OPTION_RLIMIT_MODE,
        op: IOMMU_OPTION_OP_SET,
        val64: 1,
        ..FromZeros::new_zeroed()
    };
    expect_errno(&fd, Errno::PERM, "set without CAP_SYS_RESOURCE", || {
        ioctl(&fd, &user, IOMMU_OPTION, &mut cmd)
    });
    cmd.op = IOMMU_OPTION_OP_GET;
    assert_eq!(ioctl(&fd, &user, IOMMU_OPTION, &mut cmd), Ok(()), "get");
    assert_eq!(cmd.val64, 0);
    closed_clean(&fd);
}
