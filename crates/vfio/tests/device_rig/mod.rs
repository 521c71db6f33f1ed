//! The vfio crate's rig for the device tests: one IOMMU group with one device backed by a
//! [`TestDevice`], reached through the group path (a container over a legacy iommufd context,
//! `GET_DEVICE_FD`) or through its cdev (bound to an iommufd context), and [`DeviceFd`] over both
//! kinds of device file.
#![allow(dead_code)]

use crate::device_support::model::TestDevice;
use crate::device_support::{DeviceFd, ProcessFds};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DEVICE_BIND_IOMMUFD, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU,
    VFIO_TYPE1v2_IOMMU, VfioDeviceBindIommufd,
};
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_vfio::cdev::{CdevDevice, CdevError, CdevFile, IommufdFds, IommufdRef};
use uvfio_vfio::container::{Container, ContainerConfig};
use uvfio_vfio::device::{DeviceOffset, RegionMap, VfioDevice};
use uvfio_vfio::group::{
    ContainerFds, DeviceFile, Group, GroupContainer, GroupDevice, GroupError, GroupFile, GroupReply,
};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromZeros, IntoBytes};

pub const NAME: &str = "0000:00:03.0";
const RID: u16 = 0x18;
const CONTAINER_FD: i32 = 3;
const IOMMUFD_FD: i32 = 5;

pub struct Rig {
    pub model: Arc<TestDevice>,
    pub vfio: Arc<VfioDevice>,
    pub group: Arc<Group>,
    pub cdev: Arc<CdevDevice>,
    legacy: Arc<Iommufd>,
    container: Arc<Container<Iommufd>>,
    iommufd: Arc<Iommufd>,
}

impl Rig {
    /// Group 3 with the device `0000:00:03.0` over `model`, bound to vfio, and its cdev `vfio0`.
    pub fn new(model: Arc<TestDevice>) -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(16 << 20)).unwrap());
        let legacy = Arc::new(Iommufd::new_legacy(
            Arc::clone(&mem),
            Accounts::unlimited(),
            Credentials::default(),
        ));
        let container = Arc::new(Container::new(Arc::clone(&legacy), ContainerConfig::default()));
        let iommufd = Arc::new(Iommufd::new(mem, Accounts::unlimited(), Credentials::default()));
        let vfio = VfioDevice::new(model.model());
        let group = Group::new(GroupId(3));
        group
            .add_vfio_device(NAME, GroupDevice::Iommu { rid: RID }, Arc::clone(&vfio))
            .unwrap();
        group.set_vfio_bound(NAME, true).unwrap();
        let cdev = CdevDevice::in_group_with_device("vfio0", &group, RID, Arc::clone(&vfio)).unwrap();
        Rig {
            model,
            vfio,
            group,
            cdev,
            legacy,
            container,
            iommufd,
        }
    }

    /// The group file with the container set and its IOMMU driver chosen.
    pub fn open_group(&self) -> GroupFile {
        let file = self.group.open(false).unwrap();
        let mut fd = CONTAINER_FD;
        file.ioctl(
            VFIO_GROUP_SET_CONTAINER,
            IoctlArg::Buffer(fd.as_mut_bytes()),
            self,
        )
        .unwrap();
        if self.container.driver().is_none() {
            self.container
                .ioctl(
                    VFIO_SET_IOMMU,
                    IoctlArg::Value(u64::from(VFIO_TYPE1v2_IOMMU)),
                    &ProcessFds,
                )
                .unwrap();
        }
        file
    }

    /// `GET_DEVICE_FD` of `name` on `group`.
    pub fn device_file(&self, group: &GroupFile, name: &str) -> Result<DeviceFile, GroupError> {
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        match group.ioctl(VFIO_GROUP_GET_DEVICE_FD, IoctlArg::Buffer(&mut bytes), self)? {
            GroupReply::Device(d) => Ok(d),
            GroupReply::Value(v) => panic!("GET_DEVICE_FD returned {v}"),
        }
    }

    /// The cdev, opened and bound to the rig's iommufd context.
    pub fn bound_cdev(&self) -> CdevFile {
        let file = self.cdev.open();
        bind(&file, self).unwrap();
        file
    }

    /// Everything released: no object left in either context.
    pub fn baseline(self) {
        drop(self.container);
        assert!(self.legacy.close().is_empty());
        assert!(self.iommufd.close().is_empty());
    }
}

/// `VFIO_DEVICE_BIND_IOMMUFD` of `file` to the rig's context.
pub fn bind(file: &CdevFile, rig: &Rig) -> Result<u32, Errno> {
    let mut b = VfioDeviceBindIommufd {
        argsz: size_of::<VfioDeviceBindIommufd>() as u32,
        iommufd: IOMMUFD_FD,
        ..FromZeros::new_zeroed()
    };
    file.ioctl(
        VFIO_DEVICE_BIND_IOMMUFD,
        IoctlArg::Buffer(b.as_mut_bytes()),
        rig,
        &ProcessFds,
    )
    .map_err(|e| e.errno())
}

impl ContainerFds for Rig {
    fn container(&self, fd: i32) -> Result<Arc<dyn GroupContainer>, GroupError> {
        match fd {
            CONTAINER_FD => Ok(Arc::clone(&self.container) as Arc<dyn GroupContainer>),
            _ => Err(GroupError::BadFd(fd)),
        }
    }
}

impl IommufdFds for Rig {
    fn iommufd(&self, fd: i32) -> Result<IommufdRef, CdevError> {
        match fd {
            IOMMUFD_FD => Ok(IommufdRef {
                ctx: Arc::clone(&self.iommufd),
                hold: Arc::new(()),
            }),
            _ => Err(CdevError::BadFd(fd)),
        }
    }
}

/// A device file of the group path, driven with raw bytes.
pub struct GroupDev(pub DeviceFile);

impl DeviceFd for GroupDev {
    fn ioctl_buf(&self, request: u32, arg: &mut [u8]) -> Result<u32, Errno> {
        self.0
            .ioctl(request, IoctlArg::Buffer(arg), &ProcessFds)
            .map_err(|e| e.errno())
    }

    fn ioctl_value(&self, request: u32, value: u64) -> Result<u32, Errno> {
        self.0
            .ioctl(request, IoctlArg::Value(value), &ProcessFds)
            .map_err(|e| e.errno())
    }

    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read(DeviceOffset::new(offset), buf).map_err(|e| e.errno())
    }

    fn pwrite(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.0
            .write(DeviceOffset::new(offset), data)
            .map_err(|e| e.errno())
    }

    fn mmap(&self, offset: u64, len: u64) -> Result<RegionMap, Errno> {
        self.0.mmap(DeviceOffset::new(offset), len).map_err(|e| e.errno())
    }
}

/// A cdev file, driven with raw bytes (the rig resolves its iommufd).
pub struct CdevDev<'r> {
    pub file: CdevFile,
    pub rig: &'r Rig,
}

impl DeviceFd for CdevDev<'_> {
    fn ioctl_buf(&self, request: u32, arg: &mut [u8]) -> Result<u32, Errno> {
        self.file
            .ioctl(request, IoctlArg::Buffer(arg), self.rig, &ProcessFds)
            .map_err(|e| e.errno())
    }

    fn ioctl_value(&self, request: u32, value: u64) -> Result<u32, Errno> {
        self.file
            .ioctl(request, IoctlArg::Value(value), self.rig, &ProcessFds)
            .map_err(|e| e.errno())
    }

    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.file
            .read(DeviceOffset::new(offset), buf)
            .map_err(|e| e.errno())
    }

    fn pwrite(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.file
            .write(DeviceOffset::new(offset), data)
            .map_err(|e| e.errno())
    }

    fn mmap(&self, offset: u64, len: u64) -> Result<RegionMap, Errno> {
        self.file
            .mmap(DeviceOffset::new(offset), len)
            .map_err(|e| e.errno())
    }
}
