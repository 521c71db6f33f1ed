//! The handlers of the IOAS commands (Linux `drivers/iommu/iommufd/ioas.c`).

use super::{Iommufd, IommufdError, Object, UserMemory};
use crate::ioas::IoPageTable;
use crate::iova_space::Placement;
use crate::object::ObjectType;
use crate::uapi::UserPtr;
use crate::uapi::ioas::{
    IoasAlloc, IoasAllowIovas, IoasCopy, IoasIovaRanges, IoasMap, IoasMapFile, IoasUnmap, UnmapTarget,
};
use std::sync::Arc;
use uvfio_abi::iommufd::IommuIovaRange;
use zerocopy::{FromZeros, IntoBytes};

/// Bytes of one `struct iommu_iova_range`.
const RANGE_BYTES: usize = size_of::<IommuIovaRange>();

impl Iommufd {
    /// `IOMMU_IOAS_ALLOC` (`iommufd_ioas_alloc_ioctl`): a new, empty IOAS; its id goes back in
    /// `out_ioas_id`. If the reply cannot be written, the IOAS is aborted.
    pub(super) fn ioas_alloc(&self, arg: &mut [u8]) -> Result<(), IommufdError> {
        let reservation = self.objects.reserve(ObjectType::Ioas)?;
        IoasAlloc::encode_reply(arg, reservation.id())?;
        let ioas = IoPageTable::new(
            Arc::clone(&self.mem),
            Arc::clone(self.account()),
            Arc::clone(&self.fail),
        );
        reservation.finalize(Object::Ioas(Arc::new(ioas)));
        Ok(())
    }

    /// `IOMMU_IOAS_MAP` (`iommufd_ioas_map`).
    pub(super) fn ioas_map(
        &self,
        cmd: &IoasMap,
        arg: &mut [u8],
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let ioas = self.ioas(cmd.ioas_id)?;
        let placement = cmd.iova.map_or(Placement::Alloc, Placement::Fixed);
        let buf = user.buffer(cmd.user_va, cmd.length);
        let range = ioas.map(buf, placement, cmd.flags.access())?;
        IoasMap::encode_reply(arg, range.start())?;
        Ok(())
    }

    /// `IOMMU_IOAS_MAP_FILE` (`iommufd_ioas_map_file`): `fget(cmd->fd)` (`EBADF`), then as a map.
    pub(super) fn ioas_map_file(
        &self,
        cmd: &IoasMapFile,
        arg: &mut [u8],
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let ioas = self.ioas(cmd.ioas_id)?;
        let file = user.file(cmd.fd)?;
        let placement = cmd.iova.map_or(Placement::Alloc, Placement::Fixed);
        let range = ioas.map_file(file, cmd.start, cmd.length, placement, cmd.flags.access())?;
        IoasMapFile::encode_reply(arg, range.start())?;
        Ok(())
    }

    /// `IOMMU_IOAS_COPY` (`iommufd_ioas_copy`): the source range's pages mapped again in the
    /// destination, sharing them (no new charge); the new IOVA goes back in `dst_iova`.
    pub(super) fn ioas_copy(&self, cmd: &IoasCopy, arg: &mut [u8]) -> Result<(), IommufdError> {
        let src = self.ioas(cmd.src_ioas_id)?;
        let dst = self.ioas(cmd.dst_ioas_id)?;
        let src_range = crate::iova_space::range_from_user(cmd.src_iova, cmd.length)
            .map_err(crate::ioas::IoasError::from)?;
        let placement = cmd.dst_iova.map_or(Placement::Alloc, Placement::Fixed);
        let range = dst.copy_from(&src, src_range, placement, cmd.flags.access())?;
        IoasCopy::encode_reply(arg, range.start())?;
        Ok(())
    }

    /// `IOMMU_IOAS_UNMAP` (`iommufd_ioas_unmap`): the bytes unmapped go back in `length`.
    pub(super) fn ioas_unmap(&self, cmd: &IoasUnmap, arg: &mut [u8]) -> Result<(), IommufdError> {
        let ioas = self.ioas(cmd.ioas_id)?;
        let unmapped = match cmd.target()? {
            UnmapTarget::All => ioas.try_unmap_all()?,
            UnmapTarget::Range(range) => ioas.unmap(range)?,
        };
        IoasUnmap::encode_reply(arg, unmapped)?;
        Ok(())
    }

    /// `IOMMU_IOAS_IOVA_RANGES` (`iommufd_ioas_iova_ranges`): as many ranges as fit go to the
    /// caller's array, `num_iovas` says how many there are, and `EMSGSIZE` if they did not fit.
    pub(super) fn ioas_iova_ranges(
        &self,
        cmd: &IoasIovaRanges,
        arg: &mut [u8],
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let ioas = self.ioas(cmd.ioas_id)?;
        let (ranges, alignment) = ioas.iova_ranges();
        for (i, r) in ranges.iter().take(cmd.capacity as usize).enumerate() {
            let entry = IommuIovaRange {
                start: r.start().raw(),
                last: r.last().raw(),
            };
            let at = UserPtr(cmd.allowed_iovas.0.wrapping_add((i * RANGE_BYTES) as u64));
            user.write(at, entry.as_bytes())?;
        }
        let count = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        IoasIovaRanges::encode_reply(arg, count, alignment.bytes())?;
        cmd.check_fits(count)?;
        Ok(())
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS` (`iommufd_ioas_allow_iovas`): replaces the allowed list.
    pub(super) fn ioas_allow_iovas(
        &self,
        cmd: &IoasAllowIovas,
        user: &dyn UserMemory,
    ) -> Result<(), IommufdError> {
        let ioas = self.ioas(cmd.ioas_id)?;
        // One entry at a time, as `iommufd_ioas_load_iovas` copies them: the count is the caller's,
        // so nothing is allocated from it up front (and a bad pointer fails at the first entry).
        let mut raw = Vec::new();
        for i in 0..u64::from(cmd.num_iovas) {
            let mut entry = IommuIovaRange::new_zeroed();
            let at = UserPtr(cmd.allowed_iovas.0.wrapping_add(i * RANGE_BYTES as u64));
            user.read(at, entry.as_mut_bytes())?;
            raw.push(entry);
        }
        let ranges = IoasAllowIovas::load_iovas(&raw)?;
        ioas.set_allowed(&ranges)?;
        Ok(())
    }
}
