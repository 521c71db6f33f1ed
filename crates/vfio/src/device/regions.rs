//! Region access through the device fd: `pread` / `pwrite` (`vfio_pci_core_read()`,
//! `vfio_pci_core_write()` → `vfio_pci_rw()`, `drivers/vfio/pci/vfio_pci_core.c`, and the
//! per-region handlers of `vfio_pci_rdwr.c` and `vfio_pci_config.c`) and `mmap`
//! (`vfio_pci_core_mmap()`).
//!
//! The fd offset names the region (`VFIO_PCI_OFFSET_TO_INDEX()`, `EINVAL` at or past the number
//! of regions) and the offset within it. One deviation: an access that runs past the end of its
//! region is `EINVAL` here, as is one that starts at or past it. Linux clamps a BAR or ROM access
//! to the BAR (`count = min(count, (size_t)(end - pos))` in `vfio_pci_bar_rw()`, a short count)
//! and refuses a config access past `cfg_size` with `EFAULT` (`vfio_config_do_rw()`); the uAPI
//! promises neither, and one errno for "outside the region" is what the issue asks for.

use super::{DeviceError, DeviceOffset, RegionDesc, RegionMap, RegionOffset, VfioDevice};
use crate::uapi::PAGE_SIZE;
use uvfio_abi::vfio::{VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE};

/// An access of `len` bytes, checked against the region it falls in.
struct Access {
    index: u32,
    offset: RegionOffset,
}

impl VfioDevice {
    /// Region `index` as the model describes it: `EINVAL` at or past the number of regions
    /// (`if (index >= VFIO_PCI_NUM_REGIONS + vdev->num_regions) return -EINVAL;`) and for an
    /// index the device does not serve.
    pub(super) fn region_desc(&self, index: u32) -> Result<RegionDesc, DeviceError> {
        if index >= self.model.num_regions() {
            return Err(DeviceError::NoRegion { index });
        }
        self.model.region(index).ok_or(DeviceError::NoRegion { index })
    }

    /// The region of `offset` and the checks every access makes: the region serves `op` (its
    /// `flag`, and a size above 0: an absent BAR has neither `read` nor `write`), the access lies
    /// within it.
    fn check_access(
        &self,
        offset: DeviceOffset,
        len: usize,
        flag: u32,
        op: &'static str,
    ) -> Result<Access, DeviceError> {
        let index = offset.region_index();
        let desc = self.region_desc(index)?;
        if desc.size == 0 || desc.flags & flag == 0 {
            return Err(DeviceError::NotAccessible { index, op });
        }
        let pos = offset.region_offset();
        let len = len as u64;
        // vfio_pci_bar_rw(): if (pos >= end) return -EINVAL; then (deviation, see the module doc)
        // a run past the end is EINVAL too rather than clamped.
        let end = pos.checked_add(len);
        if pos.raw() >= desc.size || end.is_none_or(|e| e.raw() > desc.size) {
            return Err(DeviceError::OutOfRange {
                index,
                offset: pos,
                len,
                size: desc.size,
            });
        }
        Ok(Access { index, offset: pos })
    }

    /// `pread(device_fd, buf, offset)`: the bytes read (all of `buf`).
    pub fn region_read(&self, offset: DeviceOffset, buf: &mut [u8]) -> Result<usize, DeviceError> {
        // vfio_pci_core_read(): if (!count) return 0;
        if buf.is_empty() {
            return Ok(0);
        }
        let a = self.check_access(offset, buf.len(), VFIO_REGION_INFO_FLAG_READ, "read")?;
        self.model
            .read(a.index, a.offset, buf)
            .map_err(DeviceError::Model)?;
        Ok(buf.len())
    }

    /// `pwrite(device_fd, data, offset)`: the bytes written (all of `data`).
    pub fn region_write(&self, offset: DeviceOffset, data: &[u8]) -> Result<usize, DeviceError> {
        // vfio_pci_core_write(): if (!count) return 0;
        if data.is_empty() {
            return Ok(0);
        }
        let a = self.check_access(offset, data.len(), VFIO_REGION_INFO_FLAG_WRITE, "write")?;
        self.model
            .write(a.index, a.offset, data)
            .map_err(DeviceError::Model)?;
        Ok(data.len())
    }

    /// `mmap(NULL, len, ..., MAP_SHARED, device_fd, offset)` as `vfio_pci_core_mmap()` checks it,
    /// after the `mmap` syscall's own (`len` 0 and an offset that is not a page multiple:
    /// `EINVAL`; `len` rounded up to pages). Returns the file the caller maps.
    pub fn region_mmap(&self, offset: DeviceOffset, len: u64) -> Result<RegionMap, DeviceError> {
        let index = offset.region_index();
        let pos = offset.region_offset();
        let refuse = |len, reason| DeviceError::NotMappable {
            index,
            offset: pos,
            len,
            reason,
        };
        // do_mmap(): if (!len) return -EINVAL; len = PAGE_ALIGN(len); if (!len) return -ENOMEM
        // (an overflow; EINVAL here, as for any range past the region).
        if len == 0 {
            return Err(refuse(len, "empty"));
        }
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(refuse(len, "length overflows"))?;
        // ksys_mmap_pgoff(): if (offset_in_page(off) != 0) return -EINVAL;
        if offset.raw() % PAGE_SIZE != 0 {
            return Err(refuse(len, "offset is not page-aligned"));
        }
        // if (index >= VFIO_PCI_NUM_REGIONS + vdev->num_regions) return -EINVAL;
        let desc = self.region_desc(index)?;
        // if (!vdev->bar_mmap_supported[index]) return -EINVAL;
        if desc.size == 0 || desc.flags & VFIO_REGION_INFO_FLAG_MMAP == 0 {
            return Err(refuse(len, "the region has no MMAP flag"));
        }
        // phys_len = PAGE_ALIGN(pci_resource_len(pdev, index));
        // if (req_start + req_len > phys_len) return -EINVAL;
        let phys_len = desc.size.checked_next_multiple_of(PAGE_SIZE).unwrap_or(u64::MAX);
        if pos.checked_add(len).is_none_or(|end| end.raw() > phys_len) {
            return Err(refuse(len, "past the end of the region"));
        }
        // "When specified, the user should only mmap the offset ranges specified by the areas
        // array": a range must lie within one (page-rounded) area, as the drivers that report
        // sparse areas enforce.
        if !desc.sparse.is_empty() && !desc.sparse.iter().any(|a| area_covers(a, pos, len)) {
            return Err(refuse(len, "outside the sparse mmap areas"));
        }
        self.model.mmap(index, pos, len).map_err(DeviceError::Model)
    }
}

/// Whether `[pos, pos + len)` lies within `area` with its end rounded up to a page.
fn area_covers(area: &super::SparseArea, pos: RegionOffset, len: u64) -> bool {
    let start = area.offset.raw();
    let end = start
        .checked_add(area.size)
        .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
        .unwrap_or(u64::MAX);
    pos.raw() >= start && pos.raw().checked_add(len).is_some_and(|e| e <= end)
}
