//! The container on uvfio's own iommufd context: `/dev/vfio/vfio` and `/dev/iommu` are two views
//! of one object model, as in Linux's vfio_compat.c. A mapping made through VFIO is an area of the
//! compat IOAS that the iommufd uAPI sees, and the other way round.

mod container_support;

use container_support::{Buffer, TestUser};
use std::sync::Arc;
use uvfio_abi::iommufd::{IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS_GET, IommuVfioIoas};
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_MAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU,
    VfioIommuType1DmaMap,
};
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::Iova;
use uvfio_vfio::container::{Container, ContainerConfig, ContainerGroup, GroupKind};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

#[derive(Debug)]
struct Group {
    rids: Vec<u16>,
}

impl ContainerGroup for Group {
    fn id(&self) -> GroupId {
        GroupId(7)
    }
    fn kind(&self) -> GroupKind {
        GroupKind::Iommu
    }
    fn device_rids(&self) -> Vec<u16> {
        self.rids.clone()
    }
}

#[test]
fn a_vfio_mapping_is_an_area_of_the_iommufd_compat_ioas() {
    let buf = Buffer::new(4, 0x5a);
    let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
    let accounts = Accounts::unlimited();
    let ctx = Arc::new(Iommufd::new_legacy(
        Arc::clone(&mem),
        accounts.clone(),
        Credentials::default(),
    ));
    let container = Container::new(Arc::clone(&ctx), ContainerConfig::default());
    container
        .attach_group(Arc::new(Group { rids: vec![0x38] }))
        .unwrap();
    container
        .ioctl(
            VFIO_SET_IOMMU,
            IoctlArg::Value(u64::from(VFIO_TYPE1v2_IOMMU)),
            &TestUser,
        )
        .unwrap();
    let mut map = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.va(),
        iova: 0x10_0000,
        size: 4 * 4096,
    };
    container
        .ioctl(
            VFIO_IOMMU_MAP_DMA,
            IoctlArg::Buffer(map.as_mut_bytes()),
            &TestUser,
        )
        .unwrap();
    // The container bound the group's device to its context (a device object of the context)
    // and attached it; it DMAs through the compat IOAS's domain into the driver's buffer.
    let device = container.bound_devices(GroupId(7)).pop().unwrap();
    assert_eq!(device.rid(), 0x38);
    let (port, _) = device.port();
    let mut b = [0u8; 1];
    port.read(Iova::new(0x10_0000), &mut b).unwrap();
    assert_eq!(b[0], 0x5a);
    port.write(Iova::new(0x10_3fff), &[0xc3]).unwrap();
    assert_eq!(buf.byte(0x3fff), 0xc3);
    // /dev/vfio/vfio charges the process (mm), as type1 does.
    assert_eq!(accounts.mm.locked_pages(), 4);
    assert_eq!(accounts.user.locked_pages(), 0);
    // The iommufd uAPI sees the same IOAS: IOMMU_VFIO_IOAS GET names it, and it holds the area.
    let mut get = IommuVfioIoas {
        size: size_of::<IommuVfioIoas>() as u32,
        op: IOMMU_VFIO_IOAS_GET,
        ..FromZeros::new_zeroed()
    };
    let mut bytes = get.as_bytes().to_vec();
    ctx.ioctl(IOMMU_VFIO_IOAS, &mut bytes, &NoUser).unwrap();
    get = IommuVfioIoas::read_from_bytes(&bytes).unwrap();
    let (id, ioas) = ctx.compat_ioas().unwrap();
    assert_eq!(get.ioas_id, id);
    assert_eq!(ioas.area_count(), 1);
    drop((port, device));
    drop(container);
    assert!(ctx.close().is_empty());
    assert_eq!(accounts.mm.locked_pages(), 0);
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.stats().adopted_segments, 0);
}

/// A `UserMemory` for calls that touch no user memory.
struct NoUser;

impl uvfio_iommufd::ctx::UserMemory for NoUser {
    fn read(
        &self,
        ptr: uvfio_iommufd::uapi::UserPtr,
        buf: &mut [u8],
    ) -> Result<(), uvfio_iommufd::ctx::UserFault> {
        Err(uvfio_iommufd::ctx::UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }
    fn write(
        &self,
        ptr: uvfio_iommufd::uapi::UserPtr,
        buf: &[u8],
    ) -> Result<(), uvfio_iommufd::ctx::UserFault> {
        Err(uvfio_iommufd::ctx::UserFault {
            ptr: ptr.0,
            len: buf.len(),
        })
    }
    fn file(&self, fd: i32) -> Result<std::os::fd::OwnedFd, uvfio_iommufd::ctx::BadFd> {
        Err(uvfio_iommufd::ctx::BadFd(fd))
    }
    fn buffer(&self, va: uvfio_types::HostVa, len: u64) -> uvfio_memory::UserBuffer {
        // SAFETY: never pinned: these calls map nothing.
        unsafe { uvfio_memory::UserBuffer::new(va, len) }
    }
}
