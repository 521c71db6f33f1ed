//! The host's files through their raw uAPI bytes: `/dev/iommu` and `/dev/vfio/vfio` opened,
//! driven with the request numbers and zerocopy structs a C driver would use, and closed; the
//! caller's memory is this test's own heap, reached through `ProcessMemory`.

use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IommuIoasAlloc, IommuIoasMap, IommuIoasUnmap,
};
use uvfio_abi::vfio::{VFIO_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_TYPE1v2_IOMMU};
use uvfio_host::{DEV_IOMMU, DEV_VFIO_CONTAINER, HostFd, ProcessMemory};
use uvfio_iommufd::ctx::{BadFd, UserMemory};
use uvfio_iommufd::uapi::UserPtr;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

mod support;
use support::{Buffer, IOVA, PAGE, assert_baseline, host, ioas_alloc, mock_domain};

#[test]
fn file_numbers_start_at_3_and_are_reused_lowest_first() {
    let host = host();
    let a = host.open(DEV_IOMMU).unwrap();
    let b = host.open(DEV_VFIO_CONTAINER).unwrap();
    let c = host.open(DEV_IOMMU).unwrap();
    assert_eq!((a, b, c), (HostFd(3), HostFd(4), HostFd(5)));
    assert_eq!(host.path(b), Ok(DEV_VFIO_CONTAINER));
    host.close(a).unwrap();
    host.close(b).unwrap();
    assert_eq!(host.open(DEV_VFIO_CONTAINER), Ok(HostFd(3)));
    assert_eq!(host.open(DEV_IOMMU), Ok(HostFd(4)));
    for fd in [3, 4, 5] {
        host.close(HostFd(fd)).unwrap();
    }
    assert_baseline(&host);
}

#[test]
fn unknown_paths_are_enoent_and_closed_files_ebadf() {
    let host = host();
    for path in ["/dev/foo", "/dev/vfio", "/dev/iommu/", ""] {
        assert_eq!(host.open(path), Err(Errno::NOENT), "{path}");
    }
    let fd = host.open(DEV_IOMMU).unwrap();
    host.close(fd).unwrap();
    let mut alloc = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, alloc.as_mut_bytes()),
        Err(Errno::BADF)
    );
    assert_eq!(host.ioctl_value(fd, VFIO_GET_API_VERSION, 0), Err(Errno::BADF));
    assert_eq!(host.close(fd), Err(Errno::BADF));
    assert_eq!(host.close(HostFd(0)), Err(Errno::BADF));
    assert_eq!(host.path(fd), Err(Errno::BADF));
    assert_baseline(&host);
}

#[test]
fn ioas_alloc_map_unmap_of_the_tests_own_buffer() {
    let buf = Buffer::new(4, 0x5a);
    let host = host();
    let fd = host.open(DEV_IOMMU).unwrap();
    let ioas_id = ioas_alloc(&host, fd);
    mock_domain(&host, fd, ioas_id);
    let mut map = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        ioas_id,
        user_va: buf.va(),
        length: 4 * PAGE as u64,
        iova: IOVA,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_MAP, map.as_mut_bytes()), Ok(0));
    assert_eq!(map.iova, IOVA);
    // iommufd charges the user's account, and the buffer was adopted into the HPA space.
    assert_eq!(host.accounts().user.locked_pages(), 4);
    assert_eq!(host.memory().stats().adopted_segments, 1);
    // Without FIXED_IOVA the kernel picks the IOVA and writes it back.
    let mut map2 = IommuIoasMap {
        flags: IOMMU_IOAS_MAP_READABLE,
        iova: 0,
        ..map
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_MAP, map2.as_mut_bytes()), Ok(0));
    assert_ne!(map2.iova, IOVA);
    let mut unmap = IommuIoasUnmap {
        size: size_of::<IommuIoasUnmap>() as u32,
        ioas_id,
        iova: IOVA,
        length: 4 * PAGE as u64,
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_UNMAP, unmap.as_mut_bytes()), Ok(0));
    assert_eq!(unmap.length, 4 * PAGE as u64);
    // The second mapping (the same pages, charged once) is still there; closing the file tears
    // it down.
    assert_eq!(host.accounts().user.locked_pages(), 4);
    host.close(fd).unwrap();
    assert_baseline(&host);
}

#[test]
fn the_uapi_strictness_reaches_the_caller_as_linux_errnos() {
    let host = host();
    let fd = host.open(DEV_IOMMU).unwrap();
    let ioas_id = ioas_alloc(&host, fd);
    let alloc = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    // Short size: EINVAL.
    let mut short = alloc;
    short.size = 4;
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, short.as_mut_bytes()),
        Err(Errno::INVAL)
    );
    // A longer struct: a zero tail is accepted, a non-zero tail is E2BIG.
    let mut long = alloc.as_bytes().to_vec();
    long.extend_from_slice(&[0; 8]);
    let size = long.len() as u32;
    long[..4].copy_from_slice(&size.to_ne_bytes());
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, &mut long), Ok(0));
    let last = long.len() - 1;
    long[last] = 1;
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, &mut long),
        Err(Errno::TOOBIG)
    );
    // Unknown flags: EOPNOTSUPP.
    let mut flags = alloc;
    flags.flags = 1;
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, flags.as_mut_bytes()),
        Err(Errno::OPNOTSUPP)
    );
    // Non-zero reserved field: EOPNOTSUPP.
    let mut map = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags: IOMMU_IOAS_MAP_READABLE,
        ioas_id,
        reserved: 1,
        user_va: 0x10_0000,
        length: PAGE as u64,
        iova: 0,
    };
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_MAP, map.as_mut_bytes()),
        Err(Errno::OPNOTSUPP)
    );
    // Unknown request: ENOTTY; a number where iommufd wants a pointer: EFAULT.
    let mut bytes = alloc.as_bytes().to_vec();
    assert_eq!(host.ioctl_buf(fd, 0x3b_ff, &mut bytes), Err(Errno::NOTTY));
    assert_eq!(host.ioctl_value(fd, IOMMU_IOAS_ALLOC, 0), Err(Errno::FAULT));
    // An unmapped user address: pinning (into the mock domain) fails with EFAULT, nothing is charged.
    mock_domain(&host, fd, ioas_id);
    map.reserved = 0;
    map.user_va = 0x1000;
    assert_eq!(
        host.ioctl_buf(fd, IOMMU_IOAS_MAP, map.as_mut_bytes()),
        Err(Errno::FAULT)
    );
    host.close(fd).unwrap();
    assert_baseline(&host);
}

#[test]
fn the_container_answers_version_and_extensions_by_value() {
    let host = host();
    let fd = host.open(DEV_VFIO_CONTAINER).unwrap();
    assert_eq!(
        host.ioctl_value(fd, VFIO_GET_API_VERSION, 0),
        Ok(VFIO_API_VERSION)
    );
    assert_eq!(
        host.ioctl_value(fd, VFIO_CHECK_EXTENSION, u64::from(VFIO_TYPE1v2_IOMMU)),
        Ok(1)
    );
    assert_eq!(host.ioctl_value(fd, VFIO_CHECK_EXTENSION, 0xdead), Ok(0));
    // The same requests with a pointer argument: the pointer is the "number" C passes.
    assert_eq!(
        host.ioctl_buf(fd, VFIO_GET_API_VERSION, &mut []),
        Ok(VFIO_API_VERSION)
    );
    // Without an IOMMU driver set, an unknown request is EINVAL (vfio_fops_unl_ioctl).
    assert_eq!(host.ioctl_value(fd, 0x3b_ff, 0), Err(Errno::INVAL));
    host.close(fd).unwrap();
    assert_baseline(&host);
}

#[test]
fn process_memory_copies_checked_and_faults_like_copy_from_user() {
    static READ_ONLY: [u8; 2 * PAGE] = [7; 2 * PAGE];
    let buf = Buffer::new(2, 0x11);
    let at = UserPtr(buf.va() + PAGE as u64 - 2);
    // A copy across a page boundary.
    ProcessMemory.write(at, &[1, 2, 3, 4]).unwrap();
    let mut back = [0u8; 4];
    ProcessMemory.read(at, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    ProcessMemory
        .read(UserPtr(READ_ONLY.as_ptr() as u64), &mut back)
        .unwrap();
    assert_eq!(back, [7; 4]);
    // Unmapped, overflowing, and (for writes) read-only addresses fault.
    assert!(ProcessMemory.read(UserPtr(0x10), &mut back).is_err());
    assert!(ProcessMemory.read(UserPtr(u64::MAX - 1), &mut back).is_err());
    assert!(
        ProcessMemory
            .write(UserPtr(READ_ONLY.as_ptr() as u64 + 8), &[0])
            .is_err()
    );
    assert_eq!(READ_ONLY[8], 7);
    // Empty copies touch nothing.
    ProcessMemory.read(UserPtr(0), &mut []).unwrap();
}

#[test]
fn process_memory_dups_open_files_and_rejects_closed_ones() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let dup = ProcessMemory.file(raw).unwrap();
    assert_ne!(std::os::fd::AsRawFd::as_raw_fd(&dup), raw);
    // (A file closed here could be reopened under the same number by a concurrent test, so the
    // closed numbers checked are ones no test opens.)
    assert_eq!(ProcessMemory.file(-1).err(), Some(BadFd(-1)));
    assert_eq!(ProcessMemory.file(1 << 20).err(), Some(BadFd(1 << 20)));
}

#[test]
fn ioctl_bytes_round_trip_through_zerocopy() {
    // The reply is written into the caller's bytes exactly as the kernel's copy_to_user does.
    let host = host();
    let fd = host.open(DEV_IOMMU).unwrap();
    let mut bytes = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    }
    .as_bytes()
    .to_vec();
    host.ioctl_buf(fd, IOMMU_IOAS_ALLOC, &mut bytes).unwrap();
    let reply = IommuIoasAlloc::read_from_bytes(&bytes).unwrap();
    assert_ne!(reply.out_ioas_id, 0);
    host.close(fd).unwrap();
    assert_baseline(&host);
}

#[test]
fn files_left_open_are_released_with_the_host() {
    let buf = Buffer::new(2, 0x11);
    let host = host();
    let accounts = host.accounts().clone();
    let mem = Arc::clone(host.memory());
    let fd = host.open(DEV_IOMMU).unwrap();
    host.open(DEV_VFIO_CONTAINER).unwrap();
    let ioas_id = ioas_alloc(&host, fd);
    mock_domain(&host, fd, ioas_id);
    let mut map = IommuIoasMap {
        size: size_of::<IommuIoasMap>() as u32,
        flags: IOMMU_IOAS_MAP_READABLE,
        ioas_id,
        user_va: buf.va(),
        length: 2 * PAGE as u64,
        ..FromZeros::new_zeroed()
    };
    assert_eq!(host.ioctl_buf(fd, IOMMU_IOAS_MAP, map.as_mut_bytes()), Ok(0));
    assert_eq!(accounts.user.locked_pages(), 2);
    // A process that exits without close(): its files are released all the same.
    drop(host);
    assert_eq!(accounts.user.locked_pages(), 0);
    assert_eq!(accounts.mm.locked_pages(), 0);
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.stats().adopted_segments, 0);
}

#[test]
fn every_context_of_the_host_allocates_domains_on_its_one_iommu() {
    let host = host();
    let a = host.open(DEV_IOMMU).unwrap();
    let b = host.open(DEV_IOMMU).unwrap();
    assert_eq!(host.iommu().domain_count(), 0);
    let ioas_a = ioas_alloc(&host, a);
    mock_domain(&host, a, ioas_a);
    let ioas_b = ioas_alloc(&host, b);
    mock_domain(&host, b, ioas_b);
    // One paging domain per context, both on the machine's IOMMU.
    assert_eq!(host.iommu().domain_count(), 2);
    host.close(a).unwrap();
    assert_eq!(host.iommu().domain_count(), 1);
    host.close(b).unwrap();
    assert_eq!(host.iommu().domain_count(), 0);
    assert_baseline(&host);
}
