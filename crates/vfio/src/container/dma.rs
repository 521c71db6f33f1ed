//! The type1 driver's requests, served as iommufd's compat layer serves them
//! (`drivers/iommu/iommufd/vfio_compat.c`: `iommufd_vfio_iommu_get_info()`,
//! `iommufd_vfio_map_dma()`, `iommufd_vfio_unmap_dma()`), plus type1's `dma_entry_limit`.

use super::{CompatContext, Container, ContainerError, DMA_AVAIL_UNLIMITED, State};
use crate::uapi::container::{IommuGetInfo, IommuInfo};
use crate::uapi::type1::{MapDma, UnmapDma, UnmapFlags, UnmapTarget, min_pgsize};
use crate::uapi::{PAGE_SIZE, UapiError};
use std::sync::Arc;
use uvfio_iommufd::ctx::UserMemory;
use uvfio_iommufd::ioas::IoPageTable;
use uvfio_iommufd::iova_space::Placement;
use uvfio_iommufd::object::UserRef;
use uvfio_types::{Alignment, Iova};

/// `PAGE_MASK`.
const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

impl<C: CompatContext> Container<C> {
    /// `get_compat_ioas()`: the IOAS `ictx->vfio_ioas` names, with a use held for the request
    /// (`ENODEV` if there is none or it was destroyed).
    fn compat_ioas_for_request(&self) -> Result<(Arc<IoPageTable>, UserRef), ContainerError> {
        let id = self.ctx.vfio_ioas().ok_or(ContainerError::NoCompatIoas)?;
        self.compat_ioas_by_id(id)
    }

    /// `VFIO_IOMMU_GET_INFO` (`iommufd_vfio_iommu_get_info()`): the page sizes, then the
    /// `DMA_AVAIL` and `IOVA_RANGE` capabilities, written as far as the caller's `argsz` has room.
    pub(super) fn iommu_get_info(
        &self,
        state: &State,
        cmd: &IommuGetInfo,
        user: &mut [u8],
    ) -> Result<(), ContainerError> {
        let (ioas, _use) = self.compat_ioas_for_request()?;
        let (iova_ranges, alignment) = ioas.iova_ranges();
        let info = IommuInfo {
            iova_pgsizes: Self::pagesizes(state, alignment),
            dma_avail: self.dma_avail(&ioas),
            iova_ranges,
        };
        Ok(info.encode_compat(cmd, user)?)
    }

    /// `iommufd_get_pagesizes()`: the page sizes every domain of the compat IOAS offers (here:
    /// the domains of the devices the container attached, each made with its device's
    /// configuration), with every size below `PAGE_SIZE` folded into `PAGE_SIZE` ("See
    /// vfio_update_pgsize_bitmap()"), and at least the IOAS's IOVA alignment.
    fn pagesizes(state: &State, alignment: Alignment) -> u64 {
        let mut bitmap = u64::MAX;
        for member in &state.groups {
            for device in &member.attached {
                bitmap &= device.device.domain_config().page_sizes.bits();
            }
        }
        if bitmap & !PAGE_MASK != 0 {
            bitmap &= PAGE_MASK;
            bitmap |= PAGE_SIZE;
        }
        bitmap.max(alignment.bytes())
    }

    /// `dma_avail`: type1's `dma_entry_limit` less the mappings of the compat IOAS (the compat
    /// layer's `U32_MAX` without a limit).
    fn dma_avail(&self, ioas: &IoPageTable) -> u32 {
        match self.config.dma_entry_limit {
            None => DMA_AVAIL_UNLIMITED,
            Some(limit) => {
                let used = u32::try_from(ioas.area_count()).unwrap_or(u32::MAX);
                limit.saturating_sub(used)
            }
        }
    }

    /// `VFIO_IOMMU_MAP_DMA` (`iommufd_vfio_map_dma()`): `size` bytes of the caller's memory at
    /// `vaddr` mapped at exactly `iova`, with the access the flags give. io_pagetable makes the
    /// checks (`iopt_map_user_pages()`: zero or wrapping sizes, alignment to the IOAS's IOVA
    /// alignment, reserved IOVA, an existing mapping, pinning). With type1's limit reached the
    /// map is `ENOSPC`, after the checks `vfio_dma_do_map()` makes before its limit check.
    pub(super) fn map_dma(
        &self,
        state: &State,
        cmd: &MapDma,
        user: &dyn UserMemory,
    ) -> Result<(), ContainerError> {
        let (ioas, _use) = self.compat_ioas_for_request()?;
        if let Some(limit) = self.config.dma_entry_limit
            && ioas.area_count() >= limit as usize
        {
            return Err(Self::at_limit(state, &ioas, cmd, limit));
        }
        // rc = iopt_map_user_pages(ictx, &ioas->iopt, &iova, u64_to_user_ptr(map.vaddr), map.size,
        //                          iommu_prot, 0);
        // (`iova` is fixed: flags 0 means IOPT_ALLOC_IOVA is not set.)
        let buf = user.buffer(cmd.vaddr, cmd.size);
        ioas.map(buf, Placement::Fixed(cmd.iova), cmd.access())?;
        Ok(())
    }

    /// The answer of a map once `limit` mappings exist, in `vfio_dma_do_map()`'s order: its
    /// argument checks (`EINVAL`, `EOVERFLOW`), the alignment to the smallest page size
    /// (`EINVAL`), an existing mapping in the range (`EEXIST`), and only then `ENOSPC`.
    fn at_limit(state: &State, ioas: &IoPageTable, cmd: &MapDma, limit: u32) -> ContainerError {
        let checked = match cmd.type1_checks() {
            Ok(checked) => checked,
            Err(e) => return e.into(),
        };
        let (_, alignment) = ioas.iova_ranges();
        let pgsize = min_pgsize(Self::pagesizes(state, alignment)).unwrap_or(alignment);
        if let Err(e) = checked.check_alignment(pgsize) {
            return e.into();
        }
        // else if (vfio_find_dma(iommu, iova, size)) { ret = -EEXIST; goto out_unlock; }
        if let Some((existing, _)) = ioas.areas().into_iter().find(|(r, _)| r.overlaps(&checked.iova)) {
            return ContainerError::Exists {
                range: checked.iova,
                existing,
            };
        }
        // if (!iommu->dma_avail) { ret = -ENOSPC; goto out_unlock; }
        ContainerError::DmaLimit { limit }
    }

    /// `VFIO_IOMMU_UNMAP_DMA` (`iommufd_vfio_unmap_dma()`): `FLAG_ALL` (with `iova` and `size` 0)
    /// unmaps everything; otherwise every mapping inside the range goes, and a range that cuts a
    /// mapping or holds none is `ENOENT` (`iopt_unmap_iova()`). When the compat IOAS has large
    /// pages disabled (type1 (v1): `VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)` disabled them) the areas are
    /// first cut at `iova - 1` and `iova + size - 1` (`iopt_cut_iova()`), so the unmap may take
    /// part of a mapping; a refused cut is its own errno, with no reply written. Otherwise the
    /// reply carries the bytes unmapped and is written after the unmap whether it failed or not,
    /// as the compat layer does. Linux's compat layer does not look at the driver (v1 or v2) here,
    /// only at `disable_large_pages`; neither does this.
    pub(super) fn unmap_dma(&self, _v2: bool, cmd: &UnmapDma, user: &mut [u8]) -> Result<(), ContainerError> {
        let (ioas, _use) = self.compat_ioas_for_request()?;
        let target = cmd.compat_target();
        // if (unmap.iova != 0 || unmap.size != 0) { rc = -EINVAL; goto err_put; }
        if let Err(e @ UapiError::UnmapAllNotZero { .. }) = target {
            return Err(e.into());
        }
        if !cmd.flags.contains(UnmapFlags::ALL) && ioas.large_pages_disabled() {
            // unsigned long iovas[] = { unmap.iova + unmap.size - 1, unmap.iova - 1 };
            // rc = iopt_cut_iova(&ioas->iopt, iovas, unmap.iova ? 2 : 1);
            // if (rc) goto err_put;
            // Before iopt_unmap_iova()'s own checks, in C's unsigned arithmetic: a zero size or
            // a wrapping range still cuts at the wrapped points.
            let start = cmd.iova.raw();
            let last = Iova::new(start.wrapping_add(cmd.size).wrapping_sub(1));
            let before = Iova::new(start.wrapping_sub(1));
            let cuts = if cmd.iova == Iova::ZERO {
                &[last][..]
            } else {
                &[last, before][..]
            };
            ioas.cut_iova(cuts)?;
        }
        let target = match target {
            Ok(target) => target,
            // iopt_unmap_iova()'s own refusals (`!length`, overflow) reach the reply.
            Err(e) => {
                cmd.encode_reply(0, user)?;
                return Err(e.into());
            }
        };
        let result = match target {
            // rc = iopt_unmap_all(&ioas->iopt, &unmapped);
            UnmapTarget::All => ioas.try_unmap_all(),
            // rc = iopt_unmap_iova(&ioas->iopt, unmap.iova, unmap.size, &unmapped);
            UnmapTarget::Range(range) => ioas.unmap(range),
        };
        // unmap.size = unmapped; if (copy_to_user(arg, &unmap, minsz)) rc = -EFAULT;
        let unmapped = result.as_ref().map_or(0, |bytes| *bytes);
        cmd.encode_reply(unmapped, user)?;
        result?;
        Ok(())
    }
}
