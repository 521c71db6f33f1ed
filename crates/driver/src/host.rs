//! [`HostBackend`]: a device of the in-process emulated host (`uvfio_host::Host`), opened and
//! driven through the host's files with the raw uAPI bytes, exactly as a C driver drives
//! `/dev/vfio` — which is what keeps the driver API honest about the uAPI.
//!
//! Three ways in, as `Documentation/driver-api/vfio.rst` describes them:
//! - [`Mode::Type1v2`]: open `/dev/vfio/vfio` and the group, `VFIO_GROUP_SET_CONTAINER`,
//!   `VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)`, `VFIO_GROUP_GET_DEVICE_FD`; DMA with
//!   `VFIO_IOMMU_MAP_DMA` / `UNMAP_DMA`.
//! - [`Mode::IommufdCdev`]: open `/dev/iommu`, `IOMMU_IOAS_ALLOC`, open the device cdev,
//!   `VFIO_DEVICE_BIND_IOMMUFD`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT`; DMA with `IOMMU_IOAS_MAP` /
//!   `IOMMU_IOAS_UNMAP`.
//! - [`Mode::NoIommu`]: the container and the `noiommu-N` group with `VFIO_NOIOMMU_IOMMU`; DMA
//!   memory is `mlock`ed and its physical address read from `/proc/self/pagemap`.

use crate::backend::{DeviceBackend, DeviceInfo, IrqInfo, RegionInfo};
use crate::error::{DriverError, uapi};
use crate::sys::DmaMemory;
use parking_lot::Mutex;
use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use uvfio_abi::iommufd::{
    IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IommuIoasAlloc, IommuIoasMap, IommuIoasUnmap,
};
use uvfio_abi::vfio::{
    VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO,
    VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET, VFIO_DEVICE_SET_IRQS, VFIO_DMA_MAP_FLAG_READ,
    VFIO_DMA_MAP_FLAG_WRITE, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_IOMMU_MAP_DMA,
    VFIO_IOMMU_UNMAP_DMA, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU,
    VfioDeviceAttachIommufdPt, VfioDeviceBindIommufd, VfioDeviceInfo, VfioIommuType1DmaMap,
    VfioIommuType1DmaUnmap, VfioIrqInfo, VfioIrqSet, VfioRegionInfo,
};
use uvfio_host::{Bdf, DEV_IOMMU, DEV_VFIO_CONTAINER, Host, HostFd, PROC_PAGEMAP, device_name};
use uvfio_types::{Access, Iova};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// How the driver reaches the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The legacy container with the type1v2 IOMMU driver.
    Type1v2,
    /// The device cdev bound to an iommufd, attached to an IOAS.
    IommufdCdev,
    /// The unsafe no-IOMMU mode: no translation, physical addresses.
    NoIommu,
}

/// Where a region's bytes start in the device file (`VFIO_PCI_INDEX_TO_OFFSET`).
const fn region_offset(index: u32) -> u64 {
    (index as u64) << 40
}

const PAGE: u64 = 4096;

#[derive(Debug)]
enum Files {
    Container { container: HostFd, group: HostFd },
    Iommufd { iommufd: HostFd, ioas: u32 },
}

/// A device of the in-process host, open in one [`Mode`].
#[derive(Debug)]
pub struct HostBackend {
    host: Arc<Host>,
    mode: Mode,
    files: Files,
    device: HostFd,
    /// No-IOMMU: the pagemap, opened once.
    pagemap: Option<HostFd>,
    /// The device's PCI address, when opened by it (for its IOMMU fault records).
    bdf: Option<Bdf>,
    /// Serialises SET_IRQS and the DMA calls.
    lock: Mutex<()>,
}

impl HostBackend {
    /// Opens the device named `name` (its PCI address, `0000:bb:dd.f`) of the group node `group`
    /// (`/dev/vfio/N`, or `/dev/vfio/noiommu-N` for [`Mode::NoIommu`]) through the container.
    pub fn open_group(host: Arc<Host>, group: &str, name: &str, mode: Mode) -> Result<Self, DriverError> {
        let container = host
            .open(DEV_VFIO_CONTAINER)
            .map_err(uapi("open /dev/vfio/vfio"))?;
        let opened = Self::group_steps(&host, container, group, name, mode);
        match opened {
            Ok((group_fd, device, pagemap)) => Ok(HostBackend {
                host,
                mode,
                files: Files::Container {
                    container,
                    group: group_fd,
                },
                device,
                pagemap,
                bdf: None,
                lock: Mutex::new(()),
            }),
            Err(e) => {
                let _ = host.close(container);
                Err(e)
            }
        }
    }

    fn group_steps(
        host: &Host,
        container: HostFd,
        group: &str,
        name: &str,
        mode: Mode,
    ) -> Result<(HostFd, HostFd, Option<HostFd>), DriverError> {
        let group_fd = host.open(group).map_err(uapi("open the group"))?;
        let steps = || -> Result<(HostFd, Option<HostFd>), DriverError> {
            host.ioctl_buf(group_fd, VFIO_GROUP_SET_CONTAINER, &mut container.0.to_ne_bytes())
                .map_err(uapi("VFIO_GROUP_SET_CONTAINER"))?;
            let ty = if mode == Mode::NoIommu {
                VFIO_NOIOMMU_IOMMU
            } else {
                VFIO_TYPE1v2_IOMMU
            };
            host.ioctl_value(container, VFIO_SET_IOMMU, u64::from(ty))
                .map_err(uapi("VFIO_SET_IOMMU"))?;
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(0);
            let device = host
                .ioctl_buf(group_fd, VFIO_GROUP_GET_DEVICE_FD, &mut bytes)
                .map_err(uapi("VFIO_GROUP_GET_DEVICE_FD"))?;
            let device =
                HostFd(i32::try_from(device).map_err(|_| uapi("VFIO_GROUP_GET_DEVICE_FD")(Errno::MFILE))?);
            let pagemap = match mode {
                Mode::NoIommu => Some(host.open(PROC_PAGEMAP).map_err(uapi("open /proc/self/pagemap"))?),
                _ => None,
            };
            Ok((device, pagemap))
        };
        match steps() {
            Ok((device, pagemap)) => Ok((group_fd, device, pagemap)),
            Err(e) => {
                let _ = host.close(group_fd);
                Err(e)
            }
        }
    }

    /// Opens the device cdev `cdev` (`/dev/vfio/devices/vfioX`) bound to a new iommufd context,
    /// attached to a new IOAS.
    pub fn open_cdev(host: Arc<Host>, cdev: &str) -> Result<Self, DriverError> {
        let iommufd = host.open(DEV_IOMMU).map_err(uapi("open /dev/iommu"))?;
        let steps = || -> Result<(u32, HostFd), DriverError> {
            let mut alloc = IommuIoasAlloc {
                size: size_of::<IommuIoasAlloc>() as u32,
                ..FromZeros::new_zeroed()
            };
            host.ioctl_buf(iommufd, IOMMU_IOAS_ALLOC, alloc.as_mut_bytes())
                .map_err(uapi("IOMMU_IOAS_ALLOC"))?;
            let device = host.open(cdev).map_err(uapi("open the device cdev"))?;
            let bound = || -> Result<(), DriverError> {
                let mut bind = VfioDeviceBindIommufd {
                    argsz: size_of::<VfioDeviceBindIommufd>() as u32,
                    iommufd: iommufd.0,
                    ..FromZeros::new_zeroed()
                };
                host.ioctl_buf(device, VFIO_DEVICE_BIND_IOMMUFD, bind.as_mut_bytes())
                    .map_err(uapi("VFIO_DEVICE_BIND_IOMMUFD"))?;
                let mut attach = VfioDeviceAttachIommufdPt {
                    argsz: size_of::<VfioDeviceAttachIommufdPt>() as u32,
                    pt_id: alloc.out_ioas_id,
                    ..FromZeros::new_zeroed()
                };
                host.ioctl_buf(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach.as_mut_bytes())
                    .map_err(uapi("VFIO_DEVICE_ATTACH_IOMMUFD_PT"))?;
                Ok(())
            };
            match bound() {
                Ok(()) => Ok((alloc.out_ioas_id, device)),
                Err(e) => {
                    let _ = host.close(device);
                    Err(e)
                }
            }
        };
        match steps() {
            Ok((ioas, device)) => Ok(HostBackend {
                host,
                mode: Mode::IommufdCdev,
                files: Files::Iommufd { iommufd, ioas },
                device,
                pagemap: None,
                bdf: None,
                lock: Mutex::new(()),
            }),
            Err(e) => {
                let _ = host.close(iommufd);
                Err(e)
            }
        }
    }

    /// Opens the device at PCI address `bdf` in `mode`: through its group (`/dev/vfio/N`, or
    /// `noiommu-N`) for [`Mode::Type1v2`] and [`Mode::NoIommu`], through its cdev for
    /// [`Mode::IommufdCdev`]. `ENODEV` if the host has no VFIO node for it (or no cdev).
    pub fn open(host: Arc<Host>, bdf: Bdf, mode: Mode) -> Result<Self, DriverError> {
        let missing = || uapi("finding the device's VFIO nodes")(Errno::NODEV);
        let (group, cdev) = host.vfio_paths(bdf).ok_or_else(missing)?;
        let mut backend = match mode {
            Mode::IommufdCdev => Self::open_cdev(host, &cdev.ok_or_else(missing)?)?,
            Mode::Type1v2 | Mode::NoIommu => Self::open_group(host, &group, &device_name(bdf), mode)?,
        };
        backend.bdf = Some(bdf);
        Ok(backend)
    }

    /// The mode it was opened in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The device file.
    pub fn device_fd(&self) -> HostFd {
        self.device
    }

    fn ioctl(&self, what: &'static str, request: u32, arg: &mut [u8]) -> Result<u32, DriverError> {
        self.host.ioctl_buf(self.device, request, arg).map_err(uapi(what))
    }

    fn set_irqs(
        &self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        data: &[u8],
    ) -> Result<(), DriverError> {
        let mut bytes = VfioIrqSet {
            argsz: (size_of::<VfioIrqSet>() + data.len()) as u32,
            flags,
            index,
            start,
            count,
        }
        .as_bytes()
        .to_vec();
        bytes.extend_from_slice(data);
        self.ioctl("VFIO_DEVICE_SET_IRQS", VFIO_DEVICE_SET_IRQS, &mut bytes)
            .map(drop)
    }

    /// No-IOMMU: the physical address of `va`'s page from the pagemap.
    fn physical(&self, pagemap: HostFd, va: u64) -> Result<u64, DriverError> {
        let mut entry = [0u8; 8];
        self.host
            .read(pagemap, va / PAGE * 8, &mut entry)
            .map_err(uapi("read /proc/self/pagemap"))?;
        let entry = u64::from_ne_bytes(entry);
        // "Bit 63 page present", "Bits 0-54 page frame number (PFN) if present".
        let pfn = entry & ((1 << 55) - 1);
        if entry & (1 << 63) == 0 || pfn == 0 {
            return Err(DriverError::NoFrames);
        }
        Ok(pfn * PAGE + va % PAGE)
    }
}

impl DeviceBackend for HostBackend {
    fn info(&self) -> Result<DeviceInfo, DriverError> {
        let mut info = VfioDeviceInfo {
            argsz: size_of::<VfioDeviceInfo>() as u32,
            ..FromZeros::new_zeroed()
        };
        self.ioctl("VFIO_DEVICE_GET_INFO", VFIO_DEVICE_GET_INFO, info.as_mut_bytes())?;
        Ok(DeviceInfo {
            flags: info.flags,
            num_regions: info.num_regions,
            num_irqs: info.num_irqs,
        })
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, DriverError> {
        let mut info = VfioRegionInfo {
            argsz: size_of::<VfioRegionInfo>() as u32,
            index,
            ..FromZeros::new_zeroed()
        };
        self.ioctl(
            "VFIO_DEVICE_GET_REGION_INFO",
            VFIO_DEVICE_GET_REGION_INFO,
            info.as_mut_bytes(),
        )?;
        Ok(RegionInfo {
            index,
            flags: info.flags,
            size: info.size,
            offset: info.offset,
        })
    }

    fn read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), DriverError> {
        let at = region_offset(index) | offset;
        let n = self
            .host
            .read(self.device, at, buf)
            .map_err(uapi("pread of a region"))?;
        if n != buf.len() {
            return Err(uapi("pread of a region")(Errno::IO));
        }
        Ok(())
    }

    fn write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), DriverError> {
        let at = region_offset(index) | offset;
        let n = self
            .host
            .write(self.device, at, data)
            .map_err(uapi("pwrite of a region"))?;
        if n != data.len() {
            return Err(uapi("pwrite of a region")(Errno::IO));
        }
        Ok(())
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, DriverError> {
        let mut info = VfioIrqInfo {
            argsz: size_of::<VfioIrqInfo>() as u32,
            index,
            ..FromZeros::new_zeroed()
        };
        self.ioctl(
            "VFIO_DEVICE_GET_IRQ_INFO",
            VFIO_DEVICE_GET_IRQ_INFO,
            info.as_mut_bytes(),
        )?;
        Ok(IrqInfo {
            index,
            flags: info.flags,
            count: info.count,
        })
    }

    fn set_irq_eventfds(
        &self,
        index: u32,
        start: u32,
        fds: &[Option<BorrowedFd<'_>>],
    ) -> Result<(), DriverError> {
        let _guard = self.lock.lock();
        let data: Vec<u8> = fds
            .iter()
            .flat_map(|fd| fd.map_or(-1, |fd| fd.as_raw_fd()).to_ne_bytes())
            .collect();
        let count = u32::try_from(fds.len()).map_err(|_| uapi("VFIO_DEVICE_SET_IRQS")(Errno::INVAL))?;
        let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        self.set_irqs(index, flags, start, count, &data)
    }

    fn disable_irq(&self, index: u32) -> Result<(), DriverError> {
        let _guard = self.lock.lock();
        self.set_irqs(
            index,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            0,
            &[],
        )
    }

    fn unmask_irq(&self, index: u32, vector: u32) -> Result<(), DriverError> {
        let _guard = self.lock.lock();
        self.set_irqs(
            index,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
            vector,
            1,
            &[],
        )
    }

    fn reset(&self) -> Result<(), DriverError> {
        self.host
            .ioctl_value(self.device, VFIO_DEVICE_RESET, 0)
            .map(drop)
            .map_err(uapi("VFIO_DEVICE_RESET"))
    }

    fn dma_map(&self, mem: &DmaMemory, iova: Iova, access: Access) -> Result<Iova, DriverError> {
        let _guard = self.lock.lock();
        let len = mem.len() as u64;
        match (&self.files, self.pagemap) {
            (Files::Container { .. }, Some(pagemap)) => {
                self.host.mlock(mem.va(), len).map_err(uapi("mlock"))?;
                // The locked pages are one contiguous segment of the host's physical memory.
                self.physical(pagemap, mem.va()).map(Iova::new).inspect_err(|_| {
                    let _ = self.host.munlock(mem.va(), len);
                })
            }
            (Files::Container { container, .. }, None) => {
                let mut flags = 0;
                if access.contains(Access::READ) {
                    flags |= VFIO_DMA_MAP_FLAG_READ;
                }
                if access.contains(Access::WRITE) {
                    flags |= VFIO_DMA_MAP_FLAG_WRITE;
                }
                let mut map = VfioIommuType1DmaMap {
                    argsz: size_of::<VfioIommuType1DmaMap>() as u32,
                    flags,
                    vaddr: mem.va(),
                    iova: iova.raw(),
                    size: len,
                };
                self.host
                    .ioctl_buf(*container, VFIO_IOMMU_MAP_DMA, map.as_mut_bytes())
                    .map_err(uapi("VFIO_IOMMU_MAP_DMA"))?;
                Ok(iova)
            }
            (Files::Iommufd { iommufd, ioas }, _) => {
                let mut flags = IOMMU_IOAS_MAP_FIXED_IOVA;
                if access.contains(Access::READ) {
                    flags |= IOMMU_IOAS_MAP_READABLE;
                }
                if access.contains(Access::WRITE) {
                    flags |= IOMMU_IOAS_MAP_WRITEABLE;
                }
                let mut map = IommuIoasMap {
                    size: size_of::<IommuIoasMap>() as u32,
                    flags,
                    ioas_id: *ioas,
                    user_va: mem.va(),
                    length: len,
                    iova: iova.raw(),
                    ..FromZeros::new_zeroed()
                };
                self.host
                    .ioctl_buf(*iommufd, IOMMU_IOAS_MAP, map.as_mut_bytes())
                    .map_err(uapi("IOMMU_IOAS_MAP"))?;
                Ok(Iova::new(map.iova))
            }
        }
    }

    fn dma_unmap(&self, mem: &DmaMemory, addr: Iova) -> Result<(), DriverError> {
        let _guard = self.lock.lock();
        let len = mem.len() as u64;
        match (&self.files, self.pagemap) {
            (Files::Container { .. }, Some(_)) => self.host.munlock(mem.va(), len).map_err(uapi("munlock")),
            (Files::Container { container, .. }, None) => {
                let mut unmap = VfioIommuType1DmaUnmap {
                    argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
                    iova: addr.raw(),
                    size: len,
                    ..FromZeros::new_zeroed()
                };
                self.host
                    .ioctl_buf(*container, VFIO_IOMMU_UNMAP_DMA, unmap.as_mut_bytes())
                    .map_err(uapi("VFIO_IOMMU_UNMAP_DMA"))?;
                let done = VfioIommuType1DmaUnmap::read_from_bytes(unmap.as_bytes()).map_or(0, |u| u.size);
                if done != len {
                    return Err(uapi("VFIO_IOMMU_UNMAP_DMA")(Errno::NOENT));
                }
                Ok(())
            }
            (Files::Iommufd { iommufd, ioas }, _) => {
                let mut unmap = IommuIoasUnmap {
                    size: size_of::<IommuIoasUnmap>() as u32,
                    ioas_id: *ioas,
                    iova: addr.raw(),
                    length: len,
                };
                self.host
                    .ioctl_buf(*iommufd, IOMMU_IOAS_UNMAP, unmap.as_mut_bytes())
                    .map_err(uapi("IOMMU_IOAS_UNMAP"))
                    .map(drop)
            }
        }
    }

    fn dma_faults(&self) -> Option<Vec<(Iova, bool)>> {
        let bdf = self.bdf?;
        let faults = self.host.dma_faults(bdf);
        Some(
            faults
                .into_iter()
                .map(|f| (f.iova, f.access.contains(Access::WRITE)))
                .collect(),
        )
    }
}

impl Drop for HostBackend {
    /// Closes the device first, then the group and container (or the iommufd), as a driver that
    /// exits does.
    fn drop(&mut self) {
        let _ = self.host.close(self.device);
        if let Some(pagemap) = self.pagemap {
            let _ = self.host.close(pagemap);
        }
        match self.files {
            Files::Container { container, group } => {
                let _ = self.host.close(group);
                let _ = self.host.close(container);
            }
            Files::Iommufd { iommufd, .. } => {
                let _ = self.host.close(iommufd);
            }
        }
    }
}
