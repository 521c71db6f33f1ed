//! The device ioctls once decoded: vfio-pci's `vfio_pci_core_ioctl()` and the core's
//! `vfio_get_region_info()` (`drivers/vfio/pci/vfio_pci_core.c`, `drivers/vfio/vfio_main.c`).
//!
//! - `GET_INFO` (`vfio_pci_ioctl_get_info()`): the model's flags, its number of regions,
//!   `VFIO_PCI_NUM_IRQS`; no capability (vfio-pci's only ones are s390's zPCI).
//! - `GET_REGION_INFO` (`vfio_pci_ioctl_get_region_info()`): `EINVAL` past the regions, the
//!   region's size and flags at `VFIO_PCI_INDEX_TO_OFFSET(index)` (an absent BAR: size 0, no
//!   flags), and for an mmap-able region `VFIO_REGION_INFO_CAP_SPARSE_MMAP` then
//!   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE` as the model describes it; an `argsz` too small for the
//!   chain gets only `argsz` raised (and the `CAPS` flag), as Linux.
//! - `GET_IRQ_INFO` (`vfio_pci_ioctl_get_irq_info()`): `EINVAL` for ERR on a device without it,
//!   the index's flags and count.
//! - `SET_IRQS` (`vfio_pci_ioctl_set_irqs()`): under `igate`, the IRQ state's handler, then the
//!   model told of a mode change.
//! - `RESET` (`vfio_pci_ioctl_reset()`): `EINVAL` unless the reset works; the function reset, after
//!   which the interrupt mode is restored as `pci_restore_state()` restores it.

use super::irqs::irq_info_flags;
use super::{DeviceError, DeviceOffset, IrqMode, RegionOffset, VfioDevice};
use crate::uapi::device::{DeviceInfo, GetDeviceInfo, GetIrqInfo, GetRegionInfo, RegionInfo};
use crate::uapi::irqs::SetIrqs;
use crate::uapi::{CapChain, DeviceCmd, DeviceRequest, IoctlArg, UapiError};
use uvfio_abi::vfio::{
    VFIO_DEVICE_FLAGS_CAPS, VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
    VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, VfioInfoCapHeader, VfioRegionInfoCapSparseMmap, VfioRegionSparseMmapArea,
};
use uvfio_iommufd::ctx::UserMemory;
use zerocopy::IntoBytes;

/// The region flags a model may report (`CAPS` is set by the reply).
const REGION_FLAGS: u32 =
    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;

impl VfioDevice {
    /// Serves a decoded device command (decoded with this device as its
    /// [`DeviceLimits`](crate::uapi::DeviceLimits)), writing replies into `arg`; eventfds are
    /// taken from the caller through `user`. `BIND` / `ATTACH` / `DETACH` are the device file's:
    /// the driver does not know them (`ENOTTY`).
    pub fn ioctl(
        &self,
        cmd: DeviceCmd,
        mut arg: IoctlArg<'_>,
        user: &dyn UserMemory,
    ) -> Result<u32, DeviceError> {
        match cmd {
            DeviceCmd::GetInfo(c) => self.get_info(&c, arg.bytes_mut("device_get_info")?),
            DeviceCmd::GetRegionInfo(c) => self.get_region_info(&c, arg.bytes_mut("device_get_region_info")?),
            DeviceCmd::GetIrqInfo(c) => self.get_irq_info(&c, arg.bytes_mut("device_get_irq_info")?),
            DeviceCmd::SetIrqs(c) => self.set_irqs(&c, user),
            DeviceCmd::Reset => self.reset(),
            DeviceCmd::BindIommufd(_) => Err(not_the_drivers(DeviceRequest::BindIommufd)),
            DeviceCmd::AttachIommufdPt(_) => Err(not_the_drivers(DeviceRequest::AttachIommufdPt)),
            DeviceCmd::DetachIommufdPt(_) => Err(not_the_drivers(DeviceRequest::DetachIommufdPt)),
        }
        .map(|()| 0)
    }

    /// `vfio_pci_ioctl_get_info()`.
    fn get_info(&self, cmd: &GetDeviceInfo, user: &mut [u8]) -> Result<(), DeviceError> {
        // info.flags = VFIO_DEVICE_FLAGS_PCI; if (vdev->reset_works) info.flags |= ..._RESET;
        // info.num_regions = VFIO_PCI_NUM_REGIONS + vdev->num_regions;
        // info.num_irqs = VFIO_PCI_NUM_IRQS;
        let info = DeviceInfo {
            flags: self.model.flags() & !VFIO_DEVICE_FLAGS_CAPS,
            num_regions: self.model.num_regions(),
            num_irqs: VFIO_PCI_NUM_IRQS,
        };
        cmd.encode_reply(&info, &CapChain::new(), user)?;
        Ok(())
    }

    /// `vfio_pci_ioctl_get_region_info()`.
    fn get_region_info(&self, cmd: &GetRegionInfo, user: &mut [u8]) -> Result<(), DeviceError> {
        // if (info.index >= VFIO_PCI_NUM_REGIONS + vdev->num_regions) return -EINVAL;
        cmd.check_index(self.model.num_regions())?;
        // case VFIO_PCI_VGA_REGION_INDEX: if (!vdev->has_vga) return -EINVAL;
        let desc = self
            .model
            .region(cmd.index)
            .ok_or(DeviceError::NoRegion { index: cmd.index })?;
        // info.offset = VFIO_PCI_INDEX_TO_OFFSET(info.index);
        let offset = DeviceOffset::of_region(cmd.index, RegionOffset::ZERO).map_or(0, DeviceOffset::raw);
        // info.size = pci_resource_len(pdev, info.index); if (!info.size) { info.flags = 0; break; }
        let flags = if desc.size == 0 {
            0
        } else {
            desc.flags & REGION_FLAGS
        };
        let mut caps = CapChain::new();
        if flags & VFIO_REGION_INFO_FLAG_MMAP != 0 {
            if !desc.sparse.is_empty() {
                caps.add_capability(&sparse_mmap_cap(&desc.sparse));
            }
            // if (info.index == vdev->msix_bar) { ret = msix_mmappable_cap(vdev, &caps); ...
            if desc.msix_mappable {
                caps.add_struct(&VfioInfoCapHeader {
                    id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
                    version: 1,
                    next: 0,
                });
            }
        }
        let info = RegionInfo {
            flags,
            size: desc.size,
            offset,
        };
        cmd.encode_reply(&info, &caps, user)?;
        Ok(())
    }

    /// `vfio_pci_ioctl_get_irq_info()` after the decoder's `info.index >= VFIO_PCI_NUM_IRQS`.
    fn get_irq_info(&self, cmd: &GetIrqInfo, user: &mut [u8]) -> Result<(), DeviceError> {
        // case VFIO_PCI_ERR_IRQ_INDEX: if (pci_is_pcie(vdev->pdev)) break; fallthrough;
        // default: return -EINVAL;
        if cmd.index == VFIO_PCI_ERR_IRQ_INDEX && self.model.irq_count(cmd.index) == 0 {
            return Err(DeviceError::NoIrqIndex { index: cmd.index });
        }
        // info.count = vfio_pci_get_irq_count(vdev, info.index);
        let count = self.model.irq_count(cmd.index);
        cmd.encode_reply(irq_info_flags(cmd.index), count, user)?;
        Ok(())
    }

    /// `vfio_pci_ioctl_set_irqs()` after decoding: `mutex_lock(&vdev->igate); ret =
    /// vfio_pci_set_irqs_ioctl(...);`, the model following the mode the handler set.
    fn set_irqs(&self, cmd: &SetIrqs, user: &dyn UserMemory) -> Result<(), DeviceError> {
        let _gate = self.igate.lock();
        let has_err = self.model.irq_count(VFIO_PCI_ERR_IRQ_INDEX) > 0;
        if let Some(mode) = self.irqs.set_irqs(cmd, has_err, user)? {
            self.model.irq_mode(mode);
        }
        Ok(())
    }

    /// `vfio_pci_ioctl_reset()`.
    fn reset(&self) -> Result<(), DeviceError> {
        // if (!vdev->reset_works) return -EINVAL;
        if !self.reset_works() {
            return Err(DeviceError::NoReset);
        }
        let _gate = self.igate.lock();
        // ret = pci_try_reset_function(vdev->pdev); — which saves the function's config state
        // first and restores it after (pci_dev_save_and_disable(), pci_dev_restore()), the MSI
        // and INTx enables with it.
        self.model.reset().map_err(DeviceError::Model)?;
        let mode = self.irqs.mode();
        if mode != IrqMode::None {
            self.model.irq_mode(mode);
        }
        Ok(())
    }
}

/// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`, version 1: the header, `nr_areas`, then the areas.
fn sparse_mmap_cap(areas: &[super::SparseArea]) -> Vec<u8> {
    let head = VfioRegionInfoCapSparseMmap {
        header: VfioInfoCapHeader {
            id: VFIO_REGION_INFO_CAP_SPARSE_MMAP,
            version: 1,
            next: 0,
        },
        nr_areas: u32::try_from(areas.len()).unwrap_or(u32::MAX),
        reserved: 0,
    };
    let mut cap = head.as_bytes().to_vec();
    for a in areas {
        let area = VfioRegionSparseMmapArea {
            offset: a.offset.raw(),
            size: a.size,
        };
        cap.extend_from_slice(area.as_bytes());
    }
    cap
}

/// A cdev-only request that reached the driver: `ENOTTY`.
fn not_the_drivers(req: DeviceRequest) -> DeviceError {
    DeviceError::Uapi(UapiError::UnknownRequest {
        request: req.request(),
    })
}
