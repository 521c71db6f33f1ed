//! The cdev path, `/dev/vfio/devices/vfioX`: access before bind, BIND_IOMMUFD, ATTACH (IOAS and
//! HWPT, replace) and DETACH, with DMA through the device's port; leak check after each test.

mod container_support;

use container_support::{Buffer, TestUser};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
    IommuIoasMap,
};
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_FLAG_TOKEN, VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_DEVICE_GET_INFO, VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd,
    VfioDeviceDetachIommufdPt,
};
use uvfio_iommu::FaultReason;
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_iommufd::object::ObjectType;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_types::Iova;
use uvfio_vfio::cdev::{CdevDevice, CdevError, CdevFile, IommufdFds, IommufdRef};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const IOMMUFD_FD: i32 = 5;
const OTHER_FD: i32 = 6;
const IOVA: u64 = 0x20_0000;

struct Rig {
    mem: Arc<HostMemory>,
    accounts: Accounts,
    ctx: Arc<Iommufd>,
}

impl IommufdFds for Rig {
    fn iommufd(&self, fd: i32) -> Result<IommufdRef, CdevError> {
        match fd {
            IOMMUFD_FD => Ok(IommufdRef {
                ctx: Arc::clone(&self.ctx),
                hold: Arc::new(()),
            }),
            OTHER_FD => Err(CdevError::NotAnIommufd(fd)),
            _ => Err(CdevError::BadFd(fd)),
        }
    }
}

impl Rig {
    fn new() -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
        let accounts = Accounts::unlimited();
        let ctx = Arc::new(Iommufd::new(
            Arc::clone(&mem),
            accounts.clone(),
            Credentials::default(),
        ));
        Rig { mem, accounts, ctx }
    }

    /// A new IOAS with `buf` mapped at `IOVA`; its id.
    fn ioas_with(&self, buf: &Buffer) -> u32 {
        let id = self.ctx.alloc_ioas().unwrap().raw();
        let mut map = IommuIoasMap {
            size: size_of::<IommuIoasMap>() as u32,
            flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id: id,
            user_va: buf.va(),
            length: buf.len() as u64,
            iova: IOVA,
            ..FromZeros::new_zeroed()
        };
        self.ctx
            .ioctl(IOMMU_IOAS_MAP, map.as_mut_bytes(), &TestUser)
            .unwrap();
        id
    }

    fn baseline(self) {
        assert!(self.ctx.close().is_empty());
        assert_eq!(self.accounts.user.locked_pages(), 0);
        assert_eq!(self.accounts.mm.locked_pages(), 0);
        assert_eq!(self.mem.account().locked_pages, 0);
        assert_eq!(self.mem.stats().adopted_segments, 0);
    }
}

fn bind_arg(fd: i32, flags: u32) -> VfioDeviceBindIommufd {
    VfioDeviceBindIommufd {
        argsz: size_of::<VfioDeviceBindIommufd>() as u32,
        flags,
        iommufd: fd,
        ..FromZeros::new_zeroed()
    }
}

fn bind(file: &CdevFile, rig: &Rig, fd: i32, flags: u32) -> Result<u32, Errno> {
    let mut arg = bind_arg(fd, flags);
    file.ioctl(
        VFIO_DEVICE_BIND_IOMMUFD,
        IoctlArg::Buffer(arg.as_mut_bytes()),
        rig,
        &TestUser,
    )
    .map_err(|e| e.errno())?;
    Ok(VfioDeviceBindIommufd::read_from_bytes(arg.as_bytes())
        .unwrap()
        .out_devid)
}

fn attach(file: &CdevFile, rig: &Rig, pt_id: u32) -> Result<u32, Errno> {
    let mut arg = VfioDeviceAttachIommufdPt {
        argsz: size_of::<VfioDeviceAttachIommufdPt>() as u32,
        pt_id,
        ..FromZeros::new_zeroed()
    };
    file.ioctl(
        VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        IoctlArg::Buffer(arg.as_mut_bytes()),
        rig,
        &TestUser,
    )
    .map_err(|e| e.errno())?;
    Ok(VfioDeviceAttachIommufdPt::read_from_bytes(arg.as_bytes())
        .unwrap()
        .pt_id)
}

fn detach(file: &CdevFile, rig: &Rig) -> Result<u32, Errno> {
    let mut arg = VfioDeviceDetachIommufdPt {
        argsz: size_of::<VfioDeviceDetachIommufdPt>() as u32,
        ..FromZeros::new_zeroed()
    };
    file.ioctl(
        VFIO_DEVICE_DETACH_IOMMUFD_PT,
        IoctlArg::Buffer(arg.as_mut_bytes()),
        rig,
        &TestUser,
    )
    .map_err(|e| e.errno())
}

#[test]
fn every_request_but_bind_is_einval_before_bind() {
    let rig = Rig::new();
    let dev = CdevDevice::new("vfio0", GroupId(3), 0x18);
    let file = dev.open();
    assert_eq!(attach(&file, &rig, 1), Err(Errno::INVAL));
    assert_eq!(detach(&file, &rig), Err(Errno::INVAL));
    let e = file.ioctl(
        VFIO_DEVICE_GET_INFO,
        IoctlArg::Buffer(&mut [0u8; 16]),
        &rig,
        &TestUser,
    );
    assert_eq!(e.unwrap_err().errno(), Errno::INVAL);
    // Even an unknown request: access_granted is checked first.
    let e = file.ioctl(0x1234, IoctlArg::Value(0), &rig, &TestUser);
    assert_eq!(e.unwrap_err().errno(), Errno::INVAL);
    assert!(rig.ctx.objects().snapshot().is_empty());
    drop(file);
    rig.baseline();
}

#[test]
fn bind_errnos_and_out_devid() {
    let rig = Rig::new();
    let dev = CdevDevice::new("vfio0", GroupId(3), 0x18);
    let file = dev.open();
    assert_eq!(bind(&file, &rig, -1, 0), Err(Errno::INVAL));
    assert_eq!(bind(&file, &rig, IOMMUFD_FD, 1 << 5), Err(Errno::INVAL));
    assert_eq!(
        bind(&file, &rig, IOMMUFD_FD, VFIO_DEVICE_BIND_FLAG_TOKEN),
        Err(Errno::INVAL)
    );
    assert_eq!(bind(&file, &rig, 9, 0), Err(Errno::BADF));
    assert_eq!(bind(&file, &rig, OTHER_FD, 0), Err(Errno::BADFD));
    // A short argsz: EINVAL; a longer struct with a non-zero tail: E2BIG.
    let mut short = bind_arg(IOMMUFD_FD, 0);
    short.argsz = 8;
    let e = file.ioctl(
        VFIO_DEVICE_BIND_IOMMUFD,
        IoctlArg::Buffer(short.as_mut_bytes()),
        &rig,
        &TestUser,
    );
    assert_eq!(e.unwrap_err().errno(), Errno::INVAL);
    let mut long = bind_arg(IOMMUFD_FD, 0).as_bytes().to_vec();
    long.extend_from_slice(&[0, 0, 0, 1]);
    let argsz = long.len() as u32;
    long[..4].copy_from_slice(&argsz.to_ne_bytes());
    let e = file.ioctl(
        VFIO_DEVICE_BIND_IOMMUFD,
        IoctlArg::Buffer(&mut long),
        &rig,
        &TestUser,
    );
    assert_eq!(e.unwrap_err().errno(), Errno::TOOBIG);
    assert!(rig.ctx.objects().snapshot().is_empty(), "nothing bound on error");
    assert!(!dev.is_open());
    let devid = bind(&file, &rig, IOMMUFD_FD, 0).unwrap();
    assert_eq!(file.devid().map(|d| d.raw()), Some(devid));
    assert_eq!(
        rig.ctx.objects().snapshot(),
        vec![(file.devid().unwrap(), ObjectType::Device)]
    );
    // Bound twice: EINVAL; another file of the same device: EINVAL.
    assert_eq!(bind(&file, &rig, IOMMUFD_FD, 0), Err(Errno::INVAL));
    let other = dev.open();
    assert_eq!(bind(&other, &rig, IOMMUFD_FD, 0), Err(Errno::INVAL));
    drop(other);
    // Detach of an unattached device: 0.
    assert_eq!(detach(&file, &rig), Ok(0));
    // Closing unbinds: the device object goes; the device can be bound again.
    drop(file);
    assert!(rig.ctx.objects().snapshot().is_empty());
    let again = dev.open();
    bind(&again, &rig, IOMMUFD_FD, 0).unwrap();
    drop(again);
    rig.baseline();
}

#[test]
fn attach_replace_detach_move_the_device_dma() {
    let buf_a = Buffer::new(2, 0xaa);
    let buf_b = Buffer::new(2, 0xbb);
    let rig = Rig::new();
    let ioas_a = rig.ioas_with(&buf_a);
    let ioas_b = rig.ioas_with(&buf_b);
    let dev = CdevDevice::new("vfio0", GroupId(3), 0x18);
    let file = dev.open();
    bind(&file, &rig, IOMMUFD_FD, 0).unwrap();
    let device = file.iommufd_device().unwrap();
    // Unknown pt_id: ENOENT; the device object itself: EINVAL; nothing attached.
    assert_eq!(attach(&file, &rig, 999), Err(Errno::NOENT));
    assert_eq!(
        attach(&file, &rig, file.devid().unwrap().raw()),
        Err(Errno::INVAL)
    );
    assert!(!device.is_attached());
    // Attach to IOAS A: an automatic HWPT, whose id comes back.
    let hwpt_a = attach(&file, &rig, ioas_a).unwrap();
    assert_ne!(hwpt_a, ioas_a);
    assert_eq!(device.attached_hwpt().unwrap().id().raw(), hwpt_a);
    let (port, _) = device.port();
    let mut b = [0u8; 1];
    port.read(Iova::new(IOVA + 5), &mut b).unwrap();
    assert_eq!(b[0], 0xaa);
    port.write(Iova::new(IOVA + 0x1fff), &[0x11]).unwrap();
    assert_eq!(buf_a.byte(0x1fff), 0x11);
    // Attach again, to IOAS B: a replace, as Linux does for an attached device.
    let hwpt_b = attach(&file, &rig, ioas_b).unwrap();
    assert_ne!(hwpt_b, hwpt_a);
    let kinds: Vec<_> = rig.ctx.objects().snapshot().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        kinds.iter().filter(|&&t| t == ObjectType::HwptPaging).count(),
        1,
        "the automatic HWPT left behind is destroyed"
    );
    let (port_b, _) = device.port();
    port_b.read(Iova::new(IOVA), &mut b).unwrap();
    assert_eq!(b[0], 0xbb);
    // Attach to the HWPT it is on: replace to the same HWPT, no change.
    assert_eq!(attach(&file, &rig, hwpt_b), Ok(hwpt_b));
    // Detach: blocked DMA, even through the port fetched before.
    assert_eq!(detach(&file, &rig), Ok(0));
    assert!(!device.is_attached());
    let (blocked, _) = device.port();
    let fault = blocked.read(Iova::new(IOVA), &mut b).unwrap_err();
    assert_eq!(fault.reason, FaultReason::Blocked);
    assert!(port_b.read(Iova::new(IOVA), &mut b).is_err());
    drop((port, port_b, blocked, device));
    // Attached when closed: the unbind detaches and destroys the automatic HWPT.
    attach(&file, &rig, ioas_a).unwrap();
    drop(file);
    let kinds: Vec<_> = rig.ctx.objects().snapshot().into_iter().map(|(_, t)| t).collect();
    assert_eq!(kinds, vec![ObjectType::Ioas, ObjectType::Ioas]);
    rig.baseline();
}
