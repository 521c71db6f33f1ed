//! The cdev path: `VFIO_DEVICE_BIND_IOMMUFD`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT`,
//! `VFIO_DEVICE_DETACH_IOMMUFD_PT`, as `drivers/vfio/device_cdev.c` reads them. Cases of
//! `tools/testing/selftests/vfio/vfio_iommufd_setup_test.c` that fail on the bytes alone are here.

mod common;

use common::{bytes_of, expect_errno, with_room};
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_BIND_FLAG_TOKEN, VFIO_DEVICE_DETACH_PASID,
    VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd, VfioDeviceDetachIommufdPt,
};
use uvfio_vfio::uapi::UserPtr;
use uvfio_vfio::uapi::cdev::{AttachIommufdPt, BindIommufd, DetachIommufdPt};

fn bind(argsz: u32, flags: u32, iommufd: i32) -> VfioDeviceBindIommufd {
    VfioDeviceBindIommufd {
        argsz,
        flags,
        iommufd,
        out_devid: 0xdead,
        token_uuid_ptr: 0x7000_1000,
    }
}

#[test]
fn bind_round_trip() {
    // The selftest's vfio_device_bind_iommufd_ioctl(): argsz = sizeof(bind_args).
    let mut user = bytes_of(&bind(24, 0, 3));
    let cmd = BindIommufd::decode(&user).unwrap();
    assert_eq!(
        cmd,
        BindIommufd {
            iommufd: 3,
            token: None
        }
    );
    cmd.encode_reply(1, &mut user).unwrap();
    // Only out_devid is written back.
    let want = VfioDeviceBindIommufd {
        out_devid: 1,
        ..bind(24, 0, 3)
    };
    assert_eq!(user, bytes_of(&want));
    // With the token flag, the UUID pointer comes along.
    let cmd = BindIommufd::decode(&bytes_of(&bind(24, VFIO_DEVICE_BIND_FLAG_TOKEN, 3))).unwrap();
    assert_eq!(cmd.token, Some(UserPtr(0x7000_1000)));
    // The pre-token, 16-byte struct: token_uuid_ptr reads as 0 (copy_struct_from_user zero-fills).
    let old = &bytes_of(&bind(16, VFIO_DEVICE_BIND_FLAG_TOKEN, 3))[..16];
    assert_eq!(BindIommufd::decode(old).unwrap().token, Some(UserPtr(0)));
    // A longer struct with a zero tail is accepted.
    let long = with_room(&bind(32, 0, 3), 8);
    assert_eq!(BindIommufd::decode(&long).unwrap().iommufd, 3);
}

#[test]
fn bind_errno_table() {
    // get_user(user_size, &arg->argsz) → -EFAULT
    expect_errno("get_user_argsz", BindIommufd::decode(&[24, 0, 0]), Errno::FAULT);
    // if (user_size < minsz) return -EINVAL;
    for argsz in [0, 12, 15] {
        expect_errno(
            "argsz_below_minsz",
            BindIommufd::decode(&bytes_of(&bind(argsz, 0, 3))),
            Errno::INVAL,
        );
    }
    // copy_struct_from_user(&bind, sizeof(bind), arg, user_size): non-zero tail → -E2BIG
    let mut tail = with_room(&bind(32, 0, 3), 8);
    tail[31] = 1;
    expect_errno(
        "copy_struct_from_user_nonzero_tail",
        BindIommufd::decode(&tail),
        Errno::TOOBIG,
    );
    // ... and a user_size past the caller's memory → -EFAULT
    expect_errno(
        "copy_struct_from_user_fault",
        BindIommufd::decode(&bytes_of(&bind(32, 0, 3))),
        Errno::FAULT,
    );
    // if (bind.iommufd < 0 || ...) → -EINVAL  (selftest: bind_bad_iommufd_fails, iommufd = -2)
    for fd in [-1, -2] {
        expect_errno(
            "iommufd_negative",
            BindIommufd::decode(&bytes_of(&bind(24, 0, fd))),
            Errno::INVAL,
        );
    }
    // ... || bind.flags & ~VALID_FLAGS) → -EINVAL
    for bit in 1..32 {
        expect_errno(
            &format!("unknown_flag_bit_{bit}"),
            BindIommufd::decode(&bytes_of(&bind(24, 1 << bit, 3))),
            Errno::INVAL,
        );
    }
    // copy_to_user(&arg->out_devid, ...) → -EFAULT
    let cmd = BindIommufd::decode(&bytes_of(&bind(24, 0, 3))).unwrap();
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(1, &mut [0u8; 15]),
        Errno::FAULT,
    );
}

fn attach(argsz: u32, flags: u32, pt_id: u32, pasid: u32) -> Vec<u8> {
    bytes_of(&VfioDeviceAttachIommufdPt {
        argsz,
        flags,
        pt_id,
        pasid,
    })
}

#[test]
fn attach_round_trip() {
    let mut user = attach(16, 0, 2, 0x55);
    let cmd = AttachIommufdPt::decode(&user, false).unwrap();
    assert_eq!(
        cmd,
        AttachIommufdPt {
            pt_id: 2,
            pasid: None
        }
    );
    cmd.encode_reply(5, &mut user).unwrap();
    // Only pt_id is written back: the HWPT attached (here an automatic one for IOAS 2).
    assert_eq!(user, attach(16, 0, 5, 0x55));
    // The pre-PASID 12-byte struct.
    let old = &attach(12, 0, 2, 0)[..12];
    assert_eq!(AttachIommufdPt::decode(old, true).unwrap().pt_id, 2);
    // With PASID on a capable device.
    let cmd = AttachIommufdPt::decode(&attach(16, VFIO_DEVICE_ATTACH_PASID, 2, 0x55), true).unwrap();
    assert_eq!(cmd.pasid, Some(0x55));
}

#[test]
fn attach_errno_table() {
    // copy_from_user(&attach, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        AttachIommufdPt::decode(&attach(16, 0, 2, 0)[..11], true),
        Errno::FAULT,
    );
    // if (attach.argsz < minsz) return -EINVAL;
    expect_errno(
        "argsz_below_minsz",
        AttachIommufdPt::decode(&attach(11, 0, 2, 0), true),
        Errno::INVAL,
    );
    // if (attach.flags & ~VFIO_DEVICE_ATTACH_PASID) return -EINVAL;
    for bit in 1..32 {
        expect_errno(
            &format!("unknown_flag_bit_{bit}"),
            AttachIommufdPt::decode(&attach(16, 1 << bit, 2, 0), true),
            Errno::INVAL,
        );
    }
    // if (!device->ops->pasid_attach_ioas) return -EOPNOTSUPP;
    expect_errno(
        "pasid_without_pasid_attach_ioas",
        AttachIommufdPt::decode(&attach(16, VFIO_DEVICE_ATTACH_PASID, 2, 1), false),
        Errno::OPNOTSUPP,
    );
    // Order: EOPNOTSUPP comes before the xend argsz check.
    expect_errno(
        "order_eopnotsupp_before_xend",
        AttachIommufdPt::decode(&attach(12, VFIO_DEVICE_ATTACH_PASID, 2, 1), false),
        Errno::OPNOTSUPP,
    );
    // if (attach.argsz < xend) return -EINVAL;
    expect_errno(
        "pasid_argsz_below_xend",
        AttachIommufdPt::decode(&attach(12, VFIO_DEVICE_ATTACH_PASID, 2, 1), true),
        Errno::INVAL,
    );
    // copy_from_user(&attach + minsz, arg + minsz, xend - minsz) → -EFAULT
    expect_errno(
        "pasid_copy_from_user",
        AttachIommufdPt::decode(&attach(16, VFIO_DEVICE_ATTACH_PASID, 2, 1)[..12], true),
        Errno::FAULT,
    );
    // copy_to_user(&arg->pt_id, ...) → -EFAULT
    let cmd = AttachIommufdPt::decode(&attach(16, 0, 2, 0), false).unwrap();
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(1, &mut [0u8; 11]),
        Errno::FAULT,
    );
}

fn detach(argsz: u32, flags: u32, pasid: u32) -> Vec<u8> {
    bytes_of(&VfioDeviceDetachIommufdPt { argsz, flags, pasid })
}

#[test]
fn detach_round_trip() {
    // The selftest's vfio_device_detach_iommufd_pt_ioctl(): argsz = sizeof(detach_args).
    assert_eq!(
        DetachIommufdPt::decode(&detach(12, 0, 0), false).unwrap(),
        DetachIommufdPt { pasid: None }
    );
    assert_eq!(
        DetachIommufdPt::decode(&detach(8, 0, 0)[..8], false)
            .unwrap()
            .pasid,
        None
    );
    let cmd = DetachIommufdPt::decode(&detach(12, VFIO_DEVICE_DETACH_PASID, 9), true).unwrap();
    assert_eq!(cmd.pasid, Some(9));
}

#[test]
fn detach_errno_table() {
    expect_errno(
        "copy_from_user_minsz",
        DetachIommufdPt::decode(&detach(12, 0, 0)[..7], true),
        Errno::FAULT,
    );
    expect_errno(
        "argsz_below_minsz",
        DetachIommufdPt::decode(&detach(7, 0, 0), true),
        Errno::INVAL,
    );
    for bit in 1..32 {
        expect_errno(
            &format!("unknown_flag_bit_{bit}"),
            DetachIommufdPt::decode(&detach(12, 1 << bit, 0), true),
            Errno::INVAL,
        );
    }
    expect_errno(
        "pasid_without_pasid_detach_ioas",
        DetachIommufdPt::decode(&detach(12, VFIO_DEVICE_DETACH_PASID, 1), false),
        Errno::OPNOTSUPP,
    );
    expect_errno(
        "pasid_argsz_below_xend",
        DetachIommufdPt::decode(&detach(8, VFIO_DEVICE_DETACH_PASID, 1), true),
        Errno::INVAL,
    );
    expect_errno(
        "pasid_copy_from_user",
        DetachIommufdPt::decode(&detach(12, VFIO_DEVICE_DETACH_PASID, 1)[..8], true),
        Errno::FAULT,
    );
}
