//! The server's hold on the host device, through the host's files with the raw uAPI bytes — the
//! iommufd cdev path of `Documentation/driver-api/vfio.rst`: open `/dev/iommu`, open the device
//! cdev, `VFIO_DEVICE_BIND_IOMMUFD`. The hold lasts as long as the server, so the device is opened
//! (and, on the last close, reset) once, and its state outlives each client.
//!
//! Each connection gets an IOAS of its own ([`HostDevice::attach_ioas`]: `IOMMU_IOAS_ALLOC`, then
//! `VFIO_DEVICE_ATTACH_IOMMUFD_PT`). Every DMA of the device then goes through that IOAS's domain
//! in the IOMMU model: client memory is mapped into it with `IOMMU_IOAS_MAP_FILE`, and an address
//! the client did not map faults. When the client goes, [`HostDevice::release_ioas`] detaches the
//! device (`VFIO_DEVICE_DETACH_IOMMUFD_PT`: back to blocked DMA), unmaps everything and destroys
//! the IOAS, dropping every mapping and pin; [`HostDevice::disable_irqs`] releases the client's
//! eventfds.
//!
//! Dropping the hold closes the device file and then the iommufd, as a process that exits does:
//! the device's last close disables its interrupts and resets it (`vfio_pci_core_close_device()`),
//! and the iommufd's release destroys whatever is left.

use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IommuDestroy, IommuIoasAlloc, IommuIoasMapFile,
    IommuIoasUnmap,
};
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT,
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET,
    VFIO_DEVICE_SET_IRQS, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_NONE, VfioDeviceAttachIommufdPt,
    VfioDeviceBindIommufd, VfioDeviceDetachIommufdPt, VfioDeviceInfo, VfioIrqInfo, VfioIrqSet,
    VfioRegionInfo,
};
use uvfio_host::{DEV_IOMMU, Host, HostFd};
use uvfio_types::{Access, IovaRange};
use uvfio_vfio::device::{RegionMap, VFIO_PCI_OFFSET_SHIFT};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// The most bytes a region's info with its capability chain may take.
const MAX_REGION_INFO: usize = 64 << 10;

/// A host call that failed, with the errno the host returned.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A uAPI call on one of the host's files.
    #[error("{op}")]
    Call {
        /// The call.
        op: &'static str,
        /// What the host answered.
        #[source]
        errno: Errno,
    },
}

impl HostError {
    /// The host's errno.
    pub fn errno(&self) -> Errno {
        match self {
            HostError::Call { errno, .. } => *errno,
        }
    }
}

fn call(op: &'static str) -> impl Fn(Errno) -> HostError {
    move |errno| HostError::Call { op, errno }
}

/// The server's files: an iommufd, and the device cdev bound to it. The device is attached to a
/// connection's IOAS while that connection lasts, and to nothing (blocked DMA) between them.
#[derive(Debug)]
pub(crate) struct HostDevice {
    host: Arc<Host>,
    iommufd: HostFd,
    device: HostFd,
}

impl HostDevice {
    /// Opens the cdev `cdev` (`/dev/vfio/devices/vfioX`) and binds it to a new iommufd.
    pub(crate) fn open(host: Arc<Host>, cdev: &str) -> Result<HostDevice, HostError> {
        let iommufd = host.open(DEV_IOMMU).map_err(call("open /dev/iommu"))?;
        match Self::bind(&host, iommufd, cdev) {
            Ok(device) => Ok(HostDevice {
                host,
                iommufd,
                device,
            }),
            Err(e) => {
                let _ = host.close(iommufd);
                Err(e)
            }
        }
    }

    fn bind(host: &Host, iommufd: HostFd, cdev: &str) -> Result<HostFd, HostError> {
        let device = host.open(cdev).map_err(call("open the device cdev"))?;
        let mut bind = VfioDeviceBindIommufd {
            argsz: size_of::<VfioDeviceBindIommufd>() as u32,
            iommufd: iommufd.0,
            ..FromZeros::new_zeroed()
        };
        match host.ioctl_buf(device, VFIO_DEVICE_BIND_IOMMUFD, bind.as_mut_bytes()) {
            Ok(_) => Ok(device),
            Err(errno) => {
                let _ = host.close(device);
                Err(call("VFIO_DEVICE_BIND_IOMMUFD")(errno))
            }
        }
    }

    /// The host.
    pub(crate) fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// A new IOAS with the device attached to it (`IOMMU_IOAS_ALLOC`,
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`, which replaces an attachment the device has): its id.
    pub(crate) fn attach_ioas(&self) -> Result<u32, HostError> {
        let mut alloc = IommuIoasAlloc {
            size: size_of::<IommuIoasAlloc>() as u32,
            ..FromZeros::new_zeroed()
        };
        self.host
            .ioctl_buf(self.iommufd, IOMMU_IOAS_ALLOC, alloc.as_mut_bytes())
            .map_err(call("IOMMU_IOAS_ALLOC"))?;
        let ioas = alloc.out_ioas_id;
        let mut attach = VfioDeviceAttachIommufdPt {
            argsz: size_of::<VfioDeviceAttachIommufdPt>() as u32,
            pt_id: ioas,
            ..FromZeros::new_zeroed()
        };
        if let Err(errno) =
            self.host
                .ioctl_buf(self.device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach.as_mut_bytes())
        {
            let _ = self.destroy(ioas);
            return Err(call("VFIO_DEVICE_ATTACH_IOMMUFD_PT")(errno));
        }
        Ok(ioas)
    }

    /// Undoes [`attach_ioas`](Self::attach_ioas): detaches the device (blocked DMA), unmaps all of
    /// `ioas` (`IOMMU_IOAS_UNMAP` of `iova == 0, length == U64_MAX`) and destroys it. Every step
    /// is tried; the first failure is returned.
    pub(crate) fn release_ioas(&self, ioas: u32) -> Result<(), HostError> {
        let mut detach = VfioDeviceDetachIommufdPt {
            argsz: size_of::<VfioDeviceDetachIommufdPt>() as u32,
            ..FromZeros::new_zeroed()
        };
        let detached = self
            .host
            .ioctl_buf(self.device, VFIO_DEVICE_DETACH_IOMMUFD_PT, detach.as_mut_bytes())
            .map(drop)
            .map_err(call("VFIO_DEVICE_DETACH_IOMMUFD_PT"));
        let unmapped = self.unmap_raw(ioas, 0, u64::MAX);
        let destroyed = self.destroy(ioas);
        detached.and(unmapped).and(destroyed)
    }

    /// `IOMMU_DESTROY` of `id`.
    fn destroy(&self, id: u32) -> Result<(), HostError> {
        let mut destroy = IommuDestroy {
            size: size_of::<IommuDestroy>() as u32,
            id,
        };
        self.host
            .ioctl_buf(self.iommufd, IOMMU_DESTROY, destroy.as_mut_bytes())
            .map(drop)
            .map_err(call("IOMMU_DESTROY"))
    }

    /// `VFIO_DEVICE_SET_IRQS` with `DATA_NONE | ACTION_TRIGGER` and `count` 0 on `index`: "the
    /// index can be disabled as a whole", releasing its eventfds.
    pub(crate) fn disable_irqs(&self, index: u32) -> Result<(), HostError> {
        let mut set = VfioIrqSet {
            argsz: size_of::<VfioIrqSet>() as u32,
            flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: 0,
        };
        self.set_irqs(set.as_mut_bytes())
    }

    /// `VFIO_DEVICE_GET_INFO`.
    pub(crate) fn info(&self) -> Result<VfioDeviceInfo, HostError> {
        let mut info = VfioDeviceInfo {
            argsz: size_of::<VfioDeviceInfo>() as u32,
            ..FromZeros::new_zeroed()
        };
        self.host
            .ioctl_buf(self.device, VFIO_DEVICE_GET_INFO, info.as_mut_bytes())
            .map_err(call("VFIO_DEVICE_GET_INFO"))?;
        Ok(info)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` with room for the whole capability chain: the bytes the host
    /// wrote back (`struct vfio_region_info` and the chain).
    pub(crate) fn region_info(&self, index: u32) -> Result<Vec<u8>, HostError> {
        let mut len = size_of::<VfioRegionInfo>();
        loop {
            let mut bytes = vec![0u8; len];
            let head = VfioRegionInfo {
                argsz: len as u32,
                index,
                ..FromZeros::new_zeroed()
            };
            bytes[..size_of::<VfioRegionInfo>()].copy_from_slice(head.as_bytes());
            self.host
                .ioctl_buf(self.device, VFIO_DEVICE_GET_REGION_INFO, &mut bytes)
                .map_err(call("VFIO_DEVICE_GET_REGION_INFO"))?;
            let need = VfioRegionInfo::read_from_prefix(&bytes).map_or(0, |(i, _)| i.argsz as usize);
            if need <= len {
                return Ok(bytes);
            }
            if need > MAX_REGION_INFO {
                return Err(HostError::Call {
                    op: "VFIO_DEVICE_GET_REGION_INFO (capability chain too long)",
                    errno: Errno::NOMEM,
                });
            }
            len = need;
        }
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    pub(crate) fn irq_info(&self, index: u32) -> Result<VfioIrqInfo, HostError> {
        let mut info = VfioIrqInfo {
            argsz: size_of::<VfioIrqInfo>() as u32,
            index,
            ..FromZeros::new_zeroed()
        };
        self.host
            .ioctl_buf(self.device, VFIO_DEVICE_GET_IRQ_INFO, info.as_mut_bytes())
            .map_err(call("VFIO_DEVICE_GET_IRQ_INFO"))?;
        Ok(info)
    }

    /// `VFIO_DEVICE_SET_IRQS` with the caller's `struct vfio_irq_set` and data; eventfd numbers in
    /// it are this process's descriptors, which the host duplicates.
    pub(crate) fn set_irqs(&self, irq_set: &mut [u8]) -> Result<(), HostError> {
        self.host
            .ioctl_buf(self.device, VFIO_DEVICE_SET_IRQS, irq_set)
            .map(drop)
            .map_err(call("VFIO_DEVICE_SET_IRQS"))
    }

    /// `VFIO_DEVICE_RESET`.
    pub(crate) fn reset(&self) -> Result<(), HostError> {
        self.host
            .ioctl_value(self.device, VFIO_DEVICE_RESET, 0)
            .map(drop)
            .map_err(call("VFIO_DEVICE_RESET"))
    }

    /// Where `offset` of region `index` lies in the device file (`VFIO_PCI_INDEX_TO_OFFSET`); the
    /// caller keeps `offset` below `1 << 40` and `index` below the number of regions.
    fn file_offset(index: u32, offset: u64) -> u64 {
        (u64::from(index) << VFIO_PCI_OFFSET_SHIFT) | offset
    }

    /// `pread` of region `index`: all of `buf` or an error (`EIO` for a short read).
    pub(crate) fn read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let n = self
            .host
            .read(self.device, Self::file_offset(index, offset), buf)
            .map_err(call("pread of a region"))?;
        if n != buf.len() {
            return Err(HostError::Call {
                op: "pread of a region (short)",
                errno: Errno::IO,
            });
        }
        Ok(())
    }

    /// `pwrite` of region `index`: all of `data` or an error (`EIO` for a short write).
    pub(crate) fn write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), HostError> {
        let n = self
            .host
            .write(self.device, Self::file_offset(index, offset), data)
            .map_err(call("pwrite of a region"))?;
        if n != data.len() {
            return Err(HostError::Call {
                op: "pwrite of a region (short)",
                errno: Errno::IO,
            });
        }
        Ok(())
    }

    /// `mmap` of `len` bytes at `offset` of region `index`: the file backing them.
    pub(crate) fn mmap(&self, index: u32, offset: u64, len: u64) -> Result<RegionMap, HostError> {
        self.host
            .mmap(self.device, Self::file_offset(index, offset), len)
            .map_err(call("mmap of a region"))
    }

    /// `IOMMU_IOAS_MAP_FILE` into `ioas` of `range.len()` bytes of `fd` at `offset`, at the fixed IOVA
    /// `range.start()`. `fd` is a descriptor of this process: the host takes its own reference.
    pub(crate) fn map_file(
        &self,
        ioas: u32,
        fd: BorrowedFd<'_>,
        offset: u64,
        range: IovaRange,
        access: Access,
    ) -> Result<(), HostError> {
        let mut flags = IOMMU_IOAS_MAP_FIXED_IOVA;
        if access.contains(Access::READ) {
            flags |= IOMMU_IOAS_MAP_READABLE;
        }
        if access.contains(Access::WRITE) {
            flags |= IOMMU_IOAS_MAP_WRITEABLE;
        }
        let mut map = IommuIoasMapFile {
            size: size_of::<IommuIoasMapFile>() as u32,
            flags,
            ioas_id: ioas,
            fd: fd.as_raw_fd(),
            start: offset,
            length: range.len().unwrap_or(u64::MAX),
            iova: range.start().raw(),
        };
        self.host
            .ioctl_buf(self.iommufd, IOMMU_IOAS_MAP_FILE, map.as_mut_bytes())
            .map(drop)
            .map_err(call("IOMMU_IOAS_MAP_FILE"))
    }

    /// `IOMMU_IOAS_UNMAP` of `range` (exactly one earlier map) from `ioas`.
    pub(crate) fn unmap(&self, ioas: u32, range: IovaRange) -> Result<(), HostError> {
        self.unmap_raw(ioas, range.start().raw(), range.len().unwrap_or(u64::MAX))
    }

    fn unmap_raw(&self, ioas: u32, iova: u64, length: u64) -> Result<(), HostError> {
        let mut unmap = IommuIoasUnmap {
            size: size_of::<IommuIoasUnmap>() as u32,
            ioas_id: ioas,
            iova,
            length,
        };
        self.host
            .ioctl_buf(self.iommufd, IOMMU_IOAS_UNMAP, unmap.as_mut_bytes())
            .map(drop)
            .map_err(call("IOMMU_IOAS_UNMAP"))
    }
}

impl Drop for HostDevice {
    /// Closes the device file, then the iommufd.
    fn drop(&mut self) {
        let _ = self.host.close(self.device);
        let _ = self.host.close(self.iommufd);
    }
}
