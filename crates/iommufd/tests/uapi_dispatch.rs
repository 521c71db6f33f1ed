//! The iommufd dispatch table and the size rules every command shares, ported from
//! `tools/testing/selftests/iommu/iommufd.c` (`cmd_fail`, `cmd_length`, `cmd_ex_fail`) and
//! `iommufd_fops_ioctl()` in `drivers/iommu/iommufd/main.c`.

mod uapi_support;

use rustix::io::Errno;
use uapi_support::*;
use uvfio_abi::iommufd::*;
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IommuTestCmd};
use uvfio_abi::{Extensible, io};
use uvfio_iommufd::uapi::misc::Destroy;
use uvfio_iommufd::uapi::{Command, IommufdCmd, command_of, decode};
use zerocopy::{Immutable, IntoBytes};

/// A zeroed struct of `command` with `size` declared and `extra` bytes of `fill` after it.
fn zeroed(command: Command, size: usize, extra: usize, fill: u8) -> Vec<u8> {
    let mut v = vec![0u8; command.size()];
    v.extend(std::iter::repeat_n(fill, extra));
    let size = u32::try_from(size).expect("small size");
    v[..4].copy_from_slice(&size.to_ne_bytes());
    v
}

fn set_size(v: &mut [u8], size: usize) {
    let size = u32::try_from(size).expect("small size");
    v[..4].copy_from_slice(&size.to_ne_bytes());
}

// ---- the dispatch table ----------------------------------------------------------------------

#[test]
fn min_sizes_are_linux_ioctl_op_offsetofend() {
    // IOCTL_OP(..., _last) rows of main.c, as offsetofend(struct, last).
    let expected = [
        (Command::Destroy, IOMMU_DESTROY, 8, 8),                   // id
        (Command::IoasAlloc, IOMMU_IOAS_ALLOC, 12, 12),            // out_ioas_id
        (Command::IoasAllowIovas, IOMMU_IOAS_ALLOW_IOVAS, 24, 24), // allowed_iovas
        (Command::IoasCopy, IOMMU_IOAS_COPY, 40, 40),              // src_iova
        (Command::IoasIovaRanges, IOMMU_IOAS_IOVA_RANGES, 32, 32), // out_iova_alignment
        (Command::IoasMap, IOMMU_IOAS_MAP, 40, 40),                // iova
        (Command::IoasUnmap, IOMMU_IOAS_UNMAP, 24, 24),            // length
        (Command::Option, IOMMU_OPTION, 24, 24),                   // val64
        (Command::VfioIoas, IOMMU_VFIO_IOAS, 12, 12),              // __reserved
        (Command::HwptAlloc, IOMMU_HWPT_ALLOC, 24, 48),            // __reserved
        (Command::GetHwInfo, IOMMU_GET_HW_INFO, 32, 40),           // __reserved
        (Command::IoasMapFile, IOMMU_IOAS_MAP_FILE, 40, 40),       // iova
        (Command::TestCmd, IOMMU_TEST_CMD, 68, 72),                // last
    ];
    assert_eq!(expected.len(), Command::ALL.len());
    for (command, request, min, size) in expected {
        assert_eq!(command.request(), request, "{}", command.name());
        assert_eq!(command.min_size(), min, "{}", command.name());
        assert_eq!(command.size(), size, "{}", command.name());
        assert_eq!(command_of(request), Some(command));
    }
    assert_eq!(Command::TestCmd.min_size(), IommuTestCmd::MIN_SIZE);
}

#[test]
fn unknown_requests_are_enotty() {
    // TEST_F(iommufd, cmd_fail): `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1)` is ENOTTY.
    let destroy = bytes(&IommuDestroy { size: 8, id: 0 });
    let below = io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1);
    assert_eq!(command_of(below), None);
    assert_eq!(errno(decode(below, &destroy)), Errno::NOTTY);
    // Past the table (`>= ARRAY_SIZE(iommufd_ioctl_ops)`): iommufd_vfio_ioctl()'s ENOIOCTLCMD,
    // decided before the size word is read, so even an empty buffer is ENOTTY.
    let past = io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 33);
    assert_eq!(errno(decode(past, &[])), Errno::NOTTY);
    // A slot of the table uvfio does not serve: `op->ioctl_num != cmd` → -ENOIOCTLCMD.
    for request in [
        IOMMU_HWPT_INVALIDATE,
        IOMMU_FAULT_QUEUE_ALLOC,
        io(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 31),
    ] {
        assert_eq!(command_of(request), None);
        assert_eq!(errno(decode(request, &destroy)), Errno::NOTTY);
    }
    // The right number with another type byte, or with direction and size bits.
    let other_type = io(b'x', IOMMUFD_CMD_DESTROY);
    let with_size = IOMMU_DESTROY | (3 << 30) | (8 << 16);
    for request in [other_type, with_size] {
        assert_eq!(command_of(request), None);
        assert_eq!(errno(decode(request, &destroy)), Errno::NOTTY);
    }
}

#[test]
fn size_word_is_read_before_the_request_is_matched() {
    // TEST_F(iommufd, cmd_fail): `ioctl(fd, IOMMU_DESTROY, NULL)` is EFAULT (get_user).
    assert_eq!(errno(decode(IOMMU_DESTROY, &[])), Errno::FAULT);
    assert_eq!(errno(decode(IOMMU_DESTROY, &[8, 0, 0])), Errno::FAULT);
    // In main.c get_user() comes before `op->ioctl_num != cmd`: an unserved slot of the table
    // with no readable size word is EFAULT, not ENOTTY.
    assert_eq!(errno(decode(IOMMU_HWPT_INVALIDATE, &[])), Errno::FAULT);
    // A declared size past the caller's buffer: copy_struct_from_user() faults.
    let mut short = bytes(&IommuDestroy { size: 16, id: 1 });
    assert_eq!(errno(decode(IOMMU_DESTROY, &short)), Errno::FAULT);
    short.resize(16, 0);
    assert!(decode(IOMMU_DESTROY, &short).is_ok());
}

/// Port of `TEST_F(iommufd, cmd_length)`: for every command, `size = min_size - 1` is EINVAL,
/// `sizeof + 1` with a non-zero extra byte E2BIG, and `sizeof + 1` with a zero extra byte answers
/// what `sizeof` answers.
#[test]
fn cmd_length() {
    for command in Command::ALL {
        let name = command.name();
        let request = command.request();
        let mut cmd = zeroed(command, command.min_size() - 1, 1, u8::MAX);
        assert_eq!(errno(decode(request, &cmd)), Errno::INVAL, "{name}: min_size - 1");
        set_size(&mut cmd, command.size() + 1);
        assert_eq!(
            errno(decode(request, &cmd)),
            Errno::TOOBIG,
            "{name}: sizeof + 1, extra 0xff"
        );
        set_size(&mut cmd, command.size());
        let exact = decode(request, &cmd).map_err(|e| e.errno());
        let last = cmd.len() - 1;
        cmd[last] = 0;
        set_size(&mut cmd, command.size() + 1);
        let longer = decode(request, &cmd).map_err(|e| e.errno());
        assert_eq!(longer, exact, "{name}: sizeof + 1, extra 0");
        // The minimum itself passes the size rules: fields past it read as zero, as they are.
        set_size(&mut cmd, command.min_size());
        let at_min = decode(request, &cmd).map_err(|e| e.errno());
        assert_eq!(at_min, exact, "{name}: size == min_size");
    }
    // What the zeroed structs answer once the size rules pass: the handlers' own checks.
    let answer = |command: Command| {
        let cmd = zeroed(command, command.size(), 0, 0);
        decode(command.request(), &cmd).map(|_| ()).map_err(|e| e.errno())
    };
    assert_eq!(answer(Command::IoasMap), Err(Errno::INVAL)); // neither readable nor writeable
    assert_eq!(answer(Command::IoasMapFile), Err(Errno::INVAL));
    assert_eq!(answer(Command::IoasCopy), Err(Errno::INVAL));
    assert_eq!(answer(Command::TestCmd), Err(Errno::OPNOTSUPP)); // op 0
    for command in [
        Command::Destroy,
        Command::IoasAlloc,
        Command::IoasUnmap,
        Command::Option,
        Command::VfioIoas,
    ] {
        assert_eq!(answer(command), Ok(()), "{}", command.name());
    }
}

/// Port of `TEST_F(iommufd, cmd_ex_fail)` (the ENOENT of id 0 is the object table's: the
/// decoder accepts the command).
#[test]
fn cmd_ex_fail() {
    #[derive(IntoBytes, Immutable)]
    #[repr(C)]
    struct Longer {
        cmd: IommuDestroy,
        future: u64,
    }
    let mut cmd = Longer {
        cmd: IommuDestroy { size: 16, id: 0 },
        future: 0,
    };
    // "object id is invalid and command is longer": decodes, id 0.
    assert_eq!(
        decode(IOMMU_DESTROY, cmd.as_bytes()),
        Ok(IommufdCmd::Destroy(Destroy { id: 0 }))
    );
    // "future area is non-zero"
    cmd.future = 1;
    assert_eq!(errno(decode(IOMMU_DESTROY, cmd.as_bytes())), Errno::TOOBIG);
    // "Original command \"works\""
    cmd.cmd.size = 8;
    assert_eq!(
        decode(IOMMU_DESTROY, cmd.as_bytes()),
        Ok(IommufdCmd::Destroy(Destroy { id: 0 }))
    );
    // "Short command fails"
    cmd.cmd.size = 7;
    assert_eq!(errno(decode(IOMMU_DESTROY, cmd.as_bytes())), Errno::INVAL);
}
