//! The group, `/dev/vfio/N`: dispatch and the argument of each request, as
//! `drivers/vfio/group.c` reads it.

mod common;

use common::{bytes_of, expect_errno, u32_at};
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DEVICE_GET_INFO, VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_GET_DEVICE_FD,
    VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, VfioGroupStatus,
};
use uvfio_vfio::uapi::group::{DEVICE_NAME_MAX, DeviceName, GroupGetStatus, decode_set_container};
use uvfio_vfio::uapi::{ArgKind, GroupCmd, GroupRequest, IoctlArg, decode_group, group_command};

#[test]
fn dispatch_round_trips_every_request() {
    let all = [
        (VFIO_GROUP_GET_STATUS, GroupRequest::GetStatus, ArgKind::Pointer),
        (
            VFIO_GROUP_SET_CONTAINER,
            GroupRequest::SetContainer,
            ArgKind::Pointer,
        ),
        (
            VFIO_GROUP_UNSET_CONTAINER,
            GroupRequest::UnsetContainer,
            ArgKind::None,
        ),
        (
            VFIO_GROUP_GET_DEVICE_FD,
            GroupRequest::GetDeviceFd,
            ArgKind::Pointer,
        ),
    ];
    for (request, req, kind) in all {
        assert_eq!(group_command(request), Some(req));
        assert_eq!(req.request(), request);
        assert_eq!(req.arg_kind(), kind);
    }
    // vfio_group_fops_unl_ioctl(): default → -ENOTTY
    for request in [VFIO_DEVICE_GET_INFO, 0, u32::MAX] {
        assert_eq!(group_command(request), None);
        expect_errno(
            "unknown_request_enotty",
            decode_group(request, &IoctlArg::Value(0)),
            Errno::NOTTY,
        );
    }
}

#[test]
fn get_status_round_trip() {
    let mut user = bytes_of(&VfioGroupStatus {
        argsz: 8,
        flags: 0xffff,
    });
    let cmd = match decode_group(VFIO_GROUP_GET_STATUS, &IoctlArg::Buffer(&mut user)).unwrap() {
        GroupCmd::GetStatus(cmd) => cmd,
        other => panic!("{other:?}"),
    };
    let flags = VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET;
    cmd.encode_reply(flags, &mut user).unwrap();
    assert_eq!((u32_at(&user, 0), u32_at(&user, 4)), (8, flags));
    // A longer argsz is accepted and stays as the caller wrote it.
    let mut long = bytes_of(&VfioGroupStatus { argsz: 64, flags: 0 });
    GroupGetStatus::decode(&long)
        .unwrap()
        .encode_reply(VFIO_GROUP_FLAGS_VIABLE, &mut long)
        .unwrap();
    assert_eq!(
        (u32_at(&long, 0), u32_at(&long, 4)),
        (64, VFIO_GROUP_FLAGS_VIABLE)
    );
}

#[test]
fn get_status_errno_table() {
    let status = bytes_of(&VfioGroupStatus { argsz: 8, flags: 0 });
    // copy_from_user(&status, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        GroupGetStatus::decode(&status[..7]),
        Errno::FAULT,
    );
    // if (status.argsz < minsz) return -EINVAL;
    for argsz in [0, 4, 7] {
        let bytes = bytes_of(&VfioGroupStatus { argsz, flags: 0 });
        expect_errno("argsz_below_minsz", GroupGetStatus::decode(&bytes), Errno::INVAL);
    }
    // copy_to_user(arg, &status, minsz) → -EFAULT
    let cmd = GroupGetStatus::decode(&status).unwrap();
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(0, &mut [0u8; 4]),
        Errno::FAULT,
    );
    // A number for the pointer → -EFAULT
    expect_errno(
        "value_for_pointer",
        decode_group(VFIO_GROUP_GET_STATUS, &IoctlArg::Value(0x1000)),
        Errno::FAULT,
    );
}

#[test]
fn set_container_reads_an_int() {
    let mut fd = 7i32.to_ne_bytes();
    assert_eq!(
        decode_group(VFIO_GROUP_SET_CONTAINER, &IoctlArg::Buffer(&mut fd)).unwrap(),
        GroupCmd::SetContainer { fd: 7 }
    );
    assert_eq!(decode_set_container(&0i32.to_ne_bytes()).unwrap(), 0);
    // get_user(fd, arg) → -EFAULT
    expect_errno("get_user", decode_set_container(&[0u8; 3]), Errno::FAULT);
    // CLASS(fd, f)(fd); if (fd_empty(f)) return -EBADF;
    for fd in [-1, -2, i32::MIN] {
        expect_errno(
            "fd_empty_ebadf",
            decode_set_container(&fd.to_ne_bytes()),
            Errno::BADF,
        );
    }
}

#[test]
fn unset_container_takes_no_argument() {
    assert_eq!(
        decode_group(VFIO_GROUP_UNSET_CONTAINER, &IoctlArg::Value(0)).unwrap(),
        GroupCmd::UnsetContainer
    );
}

#[test]
fn get_device_fd_reads_a_nul_terminated_name() {
    let mut name = b"0000:00:04.0\0garbage".to_vec();
    let cmd = decode_group(VFIO_GROUP_GET_DEVICE_FD, &IoctlArg::Buffer(&mut name)).unwrap();
    let GroupCmd::GetDeviceFd(name) = cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(name.as_bytes(), b"0000:00:04.0");
    assert_eq!(name.to_str(), Some("0000:00:04.0"));
    // vfio-pci's match also takes options after the name; they are part of the string.
    let with_token =
        DeviceName::decode(b"0000:04:10.0 vf_token=bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3\0").unwrap();
    assert!(with_token.as_bytes().starts_with(b"0000:04:10.0 vf_token="));
    // An empty name decodes (the lookup then finds no device: ENODEV).
    assert_eq!(DeviceName::decode(b"\0").unwrap().as_bytes(), b"");
    // Names are bytes.
    assert_eq!(DeviceName::decode(b"\xff\xfe\0").unwrap().to_str(), None);
    // The longest accepted: PAGE_SIZE bytes with the NUL.
    let mut longest = vec![b'a'; DEVICE_NAME_MAX];
    longest[DEVICE_NAME_MAX - 1] = 0;
    assert_eq!(
        DeviceName::decode(&longest).unwrap().as_bytes().len(),
        DEVICE_NAME_MAX - 1
    );
}

#[test]
fn get_device_fd_errno_table() {
    // strndup_user(arg, PAGE_SIZE): length > n → -EINVAL
    let mut too_long = vec![b'a'; DEVICE_NAME_MAX + 1];
    too_long[DEVICE_NAME_MAX] = 0;
    expect_errno(
        "strndup_user_no_nul_in_page_size",
        DeviceName::decode(&too_long),
        Errno::INVAL,
    );
    expect_errno(
        "strndup_user_no_nul_in_page_size_exact",
        DeviceName::decode(&[b'a'; DEVICE_NAME_MAX]),
        Errno::INVAL,
    );
    // strnlen_user() faults before finding a NUL (the buffer ends): !length → -EFAULT
    expect_errno(
        "strndup_user_fault",
        DeviceName::decode(b"0000:00:04.0"),
        Errno::FAULT,
    );
    expect_errno("strndup_user_fault_empty", DeviceName::decode(b""), Errno::FAULT);
}
