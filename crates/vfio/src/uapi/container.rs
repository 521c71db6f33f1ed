//! The container, `/dev/vfio/vfio`: requests, `VFIO_CHECK_EXTENSION` / `VFIO_SET_IOMMU` arguments,
//! and `VFIO_IOMMU_GET_INFO`.
//!
//! uvfio serves the container the way iommufd's compat layer does (`iommufd_vfio_ioctl()` in
//! `drivers/iommu/iommufd/vfio_compat.c`, reached when `/dev/vfio/vfio` is iommufd's):
//!
//! ```c
//! switch (cmd) {
//! case VFIO_GET_API_VERSION:  return VFIO_API_VERSION;
//! case VFIO_SET_IOMMU:        return iommufd_vfio_set_iommu(ictx, arg);
//! case VFIO_CHECK_EXTENSION:  return iommufd_vfio_check_extension(ictx, arg);
//! case VFIO_IOMMU_GET_INFO:   return iommufd_vfio_iommu_get_info(ictx, uarg);
//! case VFIO_IOMMU_MAP_DMA:    return iommufd_vfio_map_dma(ictx, cmd, uarg);
//! case VFIO_IOMMU_UNMAP_DMA:  return iommufd_vfio_unmap_dma(ictx, cmd, uarg);
//! case VFIO_IOMMU_DIRTY_PAGES:
//! default:                    return -ENOIOCTLCMD;
//! }
//! ```
//!
//! `VFIO_CHECK_EXTENSION` and `VFIO_SET_IOMMU` take their argument as a number (`unsigned long
//! arg`, no pointer): [`IoctlArg::value`]. Neither decoder can fail; which extensions are
//! supported and which types may be set depends on the container's state (see [`Extension`]).

use uvfio_abi::vfio::{
    VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU, VFIO_EEH, VFIO_GET_API_VERSION, VFIO_IOMMU_GET_INFO,
    VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_PGSIZES, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_IOMMU_UNMAP_DMA,
    VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU, VFIO_TYPE1_IOMMU,
    VFIO_TYPE1_NESTING_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR, VfioInfoCapHeader,
    VfioIommuType1Info, VfioIommuType1InfoCapIovaRange, VfioIommuType1InfoCapMigration,
    VfioIommuType1InfoDmaAvail, VfioIovaRange,
};
use uvfio_types::IovaRange;
use zerocopy::IntoBytes;

use super::type1::{DIRTY_BITMAP_SIZE_MAX, MapDma, Type1Backend, UnmapDma};
use super::{ArgKind, CapChain, IoctlArg, UapiError, copy_minsz, copy_to_user};

/// A request the container file serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerRequest {
    /// `VFIO_GET_API_VERSION`.
    GetApiVersion,
    /// `VFIO_CHECK_EXTENSION`.
    CheckExtension,
    /// `VFIO_SET_IOMMU`.
    SetIommu,
    /// `VFIO_IOMMU_GET_INFO`.
    IommuGetInfo,
    /// `VFIO_IOMMU_MAP_DMA`.
    IommuMapDma,
    /// `VFIO_IOMMU_UNMAP_DMA`.
    IommuUnmapDma,
}

/// The container request `request` names, or `None` (`ENOTTY`), as `iommufd_vfio_ioctl()` does
/// (`VFIO_IOMMU_DIRTY_PAGES` included: the compat layer does not serve it).
pub fn container_command(request: u32) -> Option<ContainerRequest> {
    Some(match request {
        VFIO_GET_API_VERSION => ContainerRequest::GetApiVersion,
        VFIO_CHECK_EXTENSION => ContainerRequest::CheckExtension,
        VFIO_SET_IOMMU => ContainerRequest::SetIommu,
        VFIO_IOMMU_GET_INFO => ContainerRequest::IommuGetInfo,
        VFIO_IOMMU_MAP_DMA => ContainerRequest::IommuMapDma,
        VFIO_IOMMU_UNMAP_DMA => ContainerRequest::IommuUnmapDma,
        _ => return None,
    })
}

impl ContainerRequest {
    /// The request number.
    pub fn request(self) -> u32 {
        match self {
            Self::GetApiVersion => VFIO_GET_API_VERSION,
            Self::CheckExtension => VFIO_CHECK_EXTENSION,
            Self::SetIommu => VFIO_SET_IOMMU,
            Self::IommuGetInfo => VFIO_IOMMU_GET_INFO,
            Self::IommuMapDma => VFIO_IOMMU_MAP_DMA,
            Self::IommuUnmapDma => VFIO_IOMMU_UNMAP_DMA,
        }
    }

    /// The short name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetApiVersion => "get_api_version",
            Self::CheckExtension => "check_extension",
            Self::SetIommu => "set_iommu",
            Self::IommuGetInfo => "iommu_get_info",
            Self::IommuMapDma => "map_dma",
            Self::IommuUnmapDma => "unmap_dma",
        }
    }

    /// How the request uses its `arg`.
    pub fn arg_kind(self) -> ArgKind {
        match self {
            Self::GetApiVersion => ArgKind::None,
            Self::CheckExtension | Self::SetIommu => ArgKind::Value,
            Self::IommuGetInfo | Self::IommuMapDma | Self::IommuUnmapDma => ArgKind::Pointer,
        }
    }
}

/// The argument of `VFIO_CHECK_EXTENSION` and `VFIO_SET_IOMMU`: an extension or IOMMU type.
///
/// The compat layer answers `VFIO_CHECK_EXTENSION` with 1 for TYPE1, TYPE1v2 and UNMAP_ALL,
/// `IS_ENABLED(CONFIG_VFIO_NOIOMMU)` for NOIOMMU, the coherency of every attached domain for
/// DMA_CC, and 0 for everything else (the removed nesting type, UPDATE_VADDR — "It is hard to see
/// how this could be implemented safely" — and unknown numbers); `VFIO_SET_IOMMU` accepts NOIOMMU
/// only in no-IOMMU mode with `CAP_SYS_RAWIO` (`EPERM` without), TYPE1 and TYPE1v2 only outside it,
/// and refuses everything else with `EINVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Extension {
    /// `VFIO_TYPE1_IOMMU`.
    Type1,
    /// `VFIO_SPAPR_TCE_IOMMU`.
    SpaprTce,
    /// `VFIO_TYPE1v2_IOMMU`.
    Type1v2,
    /// `VFIO_DMA_CC_IOMMU`.
    DmaCc,
    /// `VFIO_EEH`.
    Eeh,
    /// `__VFIO_RESERVED_TYPE1_NESTING_IOMMU` (removed from Linux; always 0).
    Type1Nesting,
    /// `VFIO_SPAPR_TCE_v2_IOMMU`.
    SpaprTceV2,
    /// `VFIO_NOIOMMU_IOMMU`.
    NoIommu,
    /// `VFIO_UNMAP_ALL`.
    UnmapAll,
    /// `VFIO_UPDATE_VADDR`.
    UpdateVaddr,
    /// Any other number.
    Unknown(u64),
}

impl Extension {
    /// The extension `arg` names (`switch (type)` on the full `unsigned long`).
    // The patterns are the header's own names, `VFIO_TYPE1v2_IOMMU` among them.
    #[allow(non_upper_case_globals)]
    pub fn from_arg(arg: u64) -> Self {
        let Ok(value) = u32::try_from(arg) else {
            return Self::Unknown(arg);
        };
        match value {
            VFIO_TYPE1_IOMMU => Self::Type1,
            VFIO_SPAPR_TCE_IOMMU => Self::SpaprTce,
            VFIO_TYPE1v2_IOMMU => Self::Type1v2,
            VFIO_DMA_CC_IOMMU => Self::DmaCc,
            VFIO_EEH => Self::Eeh,
            VFIO_TYPE1_NESTING_IOMMU => Self::Type1Nesting,
            VFIO_SPAPR_TCE_v2_IOMMU => Self::SpaprTceV2,
            VFIO_NOIOMMU_IOMMU => Self::NoIommu,
            VFIO_UNMAP_ALL => Self::UnmapAll,
            VFIO_UPDATE_VADDR => Self::UpdateVaddr,
            _ => Self::Unknown(arg),
        }
    }

    /// The number the extension has in `vfio.h`.
    pub fn to_arg(self) -> u64 {
        u64::from(match self {
            Self::Type1 => VFIO_TYPE1_IOMMU,
            Self::SpaprTce => VFIO_SPAPR_TCE_IOMMU,
            Self::Type1v2 => VFIO_TYPE1v2_IOMMU,
            Self::DmaCc => VFIO_DMA_CC_IOMMU,
            Self::Eeh => VFIO_EEH,
            Self::Type1Nesting => VFIO_TYPE1_NESTING_IOMMU,
            Self::SpaprTceV2 => VFIO_SPAPR_TCE_v2_IOMMU,
            Self::NoIommu => VFIO_NOIOMMU_IOMMU,
            Self::UnmapAll => VFIO_UNMAP_ALL,
            Self::UpdateVaddr => VFIO_UPDATE_VADDR,
            Self::Unknown(arg) => return arg,
        })
    }
}

/// A decoded container command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCmd {
    /// `VFIO_GET_API_VERSION`: answer `VFIO_API_VERSION` (0).
    GetApiVersion,
    /// `VFIO_CHECK_EXTENSION`.
    CheckExtension(Extension),
    /// `VFIO_SET_IOMMU`.
    SetIommu(Extension),
    /// `VFIO_IOMMU_GET_INFO`.
    IommuGetInfo(IommuGetInfo),
    /// `VFIO_IOMMU_MAP_DMA`.
    MapDma(MapDma),
    /// `VFIO_IOMMU_UNMAP_DMA`.
    UnmapDma(UnmapDma),
}

/// Decodes a container ioctl: the request (`ENOTTY` if unknown), then its argument as the
/// request's handler reads it, with `backend` choosing the map/unmap flag sets.
pub fn decode_container(
    request: u32,
    arg: &IoctlArg<'_>,
    backend: Type1Backend,
) -> Result<ContainerCmd, UapiError> {
    let req = container_command(request).ok_or(UapiError::UnknownRequest { request })?;
    Ok(match req {
        ContainerRequest::GetApiVersion => ContainerCmd::GetApiVersion,
        ContainerRequest::CheckExtension => ContainerCmd::CheckExtension(Extension::from_arg(arg.value())),
        ContainerRequest::SetIommu => ContainerCmd::SetIommu(Extension::from_arg(arg.value())),
        ContainerRequest::IommuGetInfo => {
            ContainerCmd::IommuGetInfo(IommuGetInfo::decode(arg.bytes(req.name())?)?)
        }
        ContainerRequest::IommuMapDma => {
            ContainerCmd::MapDma(MapDma::decode(arg.bytes(req.name())?, backend)?)
        }
        ContainerRequest::IommuUnmapDma => {
            ContainerCmd::UnmapDma(UnmapDma::decode(arg.bytes(req.name())?, backend)?)
        }
    })
}

/// A decoded `VFIO_IOMMU_GET_INFO` (`struct vfio_iommu_type1_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IommuGetInfo {
    /// The caller's `argsz`: the room for the info struct and its capability chain.
    pub argsz: u32,
}

impl IommuGetInfo {
    /// Decodes the caller's bytes as `iommufd_vfio_iommu_get_info()` and
    /// `vfio_iommu_type1_get_info()` do.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        // size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
        // if (copy_from_user(&info, arg, minsz)) return -EFAULT;
        // if (info.argsz < minsz) return -EINVAL;
        let info: VfioIommuType1Info = copy_minsz(bytes)?;
        Ok(Self { argsz: info.argsz })
    }
}

/// What the container reports in `VFIO_IOMMU_GET_INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuInfo {
    /// `iova_pgsizes`: the page sizes a map may use, as Linux's `pgsize_bitmap`.
    pub iova_pgsizes: u64,
    /// The mappings that may still be made (`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`; the compat layer
    /// reports `U32_MAX`, type1 its `dma_entry_limit` minus the mappings made, 65535 at first).
    pub dma_avail: u32,
    /// The usable IOVA ranges (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`), in order.
    pub iova_ranges: Vec<IovaRange>,
}

/// iommufd's `fill_cap_fn`: writes a capability at `at` if it fits `avail` bytes, returns its size.
type FillCapFn = fn(&IommuInfo, &mut [u8], usize, usize) -> Result<usize, UapiError>;

/// `struct_size(&cap_iovas, iova_ranges, n)`.
fn iova_cap_size(n: usize) -> usize {
    size_of::<VfioIommuType1InfoCapIovaRange>() + n * size_of::<VfioIovaRange>()
}

impl IommuInfo {
    fn vfio_range(range: &IovaRange) -> VfioIovaRange {
        VfioIovaRange {
            start: range.start().raw(),
            last: range.last().raw(),
        }
    }

    /// Writes the reply as iommufd's `iommufd_vfio_iommu_get_info()` does, byte for byte: the
    /// `DMA_AVAIL` capability then the `IOVA_RANGE` one, each 8-byte aligned, each written only if
    /// it fits the caller's `argsz` (and the IOVA ranges one by one as they fit), `argsz` set to
    /// the size of the whole chain whether or not it fit, `CAPS` always set, and `cap_offset` set
    /// only if the whole chain fit.
    pub fn encode_compat(&self, cmd: &IommuGetInfo, user: &mut [u8]) -> Result<(), UapiError> {
        let argsz = cmd.argsz as usize;
        let info_size = size_of::<VfioIommuType1Info>();
        // minsz = min_t(size_t, info.argsz, sizeof(info));
        let minsz = argsz.min(info_size);
        // static const fill_cap_fn fill_fns[] = { iommufd_fill_cap_dma_avail, iommufd_fill_cap_iova };
        let fill_fns: [FillCapFn; 2] = [Self::fill_cap_dma_avail, Self::fill_cap_iova];
        let mut last_cap: Option<usize> = None;
        // total_cap_size = sizeof(info);
        let mut total = info_size;
        for fill in fill_fns {
            // if (info.argsz > total_cap_size)
            //         cap_size = fill_fns[i](ioas, arg + total_cap_size, info.argsz - total_cap_size);
            // else
            //         cap_size = fill_fns[i](ioas, NULL, 0);
            let avail = argsz.saturating_sub(total);
            let cap_size = fill(self, user, total, avail)?;
            // cap_size = ALIGN(cap_size, sizeof(u64));
            let cap_size = cap_size.next_multiple_of(size_of::<u64>());
            // if (last_cap && info.argsz >= total_cap_size &&
            //     put_user(total_cap_size, &last_cap->next)) { rc = -EFAULT; ... }
            if let Some(last) = last_cap.filter(|_| argsz >= total) {
                let next = u32::try_from(total).unwrap_or(u32::MAX);
                copy_to_user(user, last + 4, &next.to_ne_bytes())?;
            }
            // last_cap = arg + total_cap_size;
            last_cap = Some(total);
            total += cap_size;
        }
        let mut info = VfioIommuType1Info {
            // info.flags = VFIO_IOMMU_INFO_PGSIZES;
            flags: VFIO_IOMMU_INFO_PGSIZES,
            iova_pgsizes: self.iova_pgsizes,
            ..Default::default()
        };
        // if (info.argsz >= total_cap_size) info.cap_offset = sizeof(info);
        if argsz >= total {
            info.cap_offset = u32::try_from(info_size).unwrap_or(u32::MAX);
        }
        // info.argsz = total_cap_size;
        info.argsz = u32::try_from(total).unwrap_or(u32::MAX);
        // info.flags |= VFIO_IOMMU_INFO_CAPS;
        info.flags |= VFIO_IOMMU_INFO_CAPS;
        // if (copy_to_user(arg, &info, minsz)) { rc = -EFAULT; ... }
        copy_to_user(user, 0, &info.as_bytes()[..minsz])
    }

    /// `iommufd_fill_cap_dma_avail()`: written if `avail >= sizeof(cap_dma)`.
    fn fill_cap_dma_avail(&self, user: &mut [u8], at: usize, avail: usize) -> Result<usize, UapiError> {
        let cap = VfioIommuType1InfoDmaAvail {
            header: VfioInfoCapHeader {
                id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                version: 1,
                next: 0,
            },
            avail: self.dma_avail,
        };
        // if (avail >= sizeof(cap_dma) && copy_to_user(cur, &cap_dma, sizeof(cap_dma))) return -EFAULT;
        if avail >= size_of_val(&cap) {
            copy_to_user(user, at, cap.as_bytes())?;
        }
        Ok(size_of_val(&cap))
    }

    /// `iommufd_fill_cap_iova()`: each range written if it fits, the header if all fit.
    fn fill_cap_iova(&self, user: &mut [u8], at: usize, avail: usize) -> Result<usize, UapiError> {
        let header_size = size_of::<VfioIommuType1InfoCapIovaRange>();
        let mut nr_iovas = 0usize;
        for range in &self.iova_ranges {
            // if (avail >= struct_size(&cap_iovas, iova_ranges, cap_iovas.nr_iovas + 1) &&
            //     copy_to_user(&ucap_iovas->iova_ranges[cap_iovas.nr_iovas], &range, sizeof(range)))
            //         return -EFAULT;
            if avail >= iova_cap_size(nr_iovas + 1) {
                let offset = at + header_size + nr_iovas * size_of::<VfioIovaRange>();
                copy_to_user(user, offset, Self::vfio_range(range).as_bytes())?;
            }
            nr_iovas += 1;
        }
        let cap = VfioIommuType1InfoCapIovaRange {
            header: VfioInfoCapHeader {
                id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
                version: 1,
                next: 0,
            },
            nr_iovas: u32::try_from(nr_iovas).unwrap_or(u32::MAX),
            reserved: 0,
        };
        // if (avail >= struct_size(&cap_iovas, iova_ranges, cap_iovas.nr_iovas) &&
        //     copy_to_user(ucap_iovas, &cap_iovas, sizeof(cap_iovas))) return -EFAULT;
        if avail >= iova_cap_size(nr_iovas) {
            copy_to_user(user, at, cap.as_bytes())?;
        }
        Ok(iova_cap_size(nr_iovas))
    }

    /// Writes the reply as type1's `vfio_iommu_type1_get_info()` does: a [`CapChain`] of the
    /// migration capability (smallest page size, `DIRTY_BITMAP_SIZE_MAX`), `DMA_AVAIL`, and
    /// `IOVA_RANGE` (left out when there are no ranges), placed by [`CapChain::place`].
    pub fn encode_type1(&self, cmd: &IommuGetInfo, user: &mut [u8]) -> Result<(), UapiError> {
        let info_size = size_of::<VfioIommuType1Info>();
        // minsz = min_t(size_t, info.argsz, sizeof(info));
        let minsz = (cmd.argsz as usize).min(info_size);
        let mut caps = CapChain::new();
        // vfio_iommu_migration_build_caps(): cap_mig.pgsize_bitmap = (size_t)1 << __ffs(pgsize_bitmap);
        caps.add_struct(&VfioIommuType1InfoCapMigration {
            header: VfioInfoCapHeader {
                id: VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
                version: 1,
                next: 0,
            },
            flags: 0,
            pad: 0,
            pgsize_bitmap: 1u64.checked_shl(self.iova_pgsizes.trailing_zeros()).unwrap_or(0),
            max_dirty_bitmap_size: DIRTY_BITMAP_SIZE_MAX,
        });
        // vfio_iommu_dma_avail_build_caps()
        caps.add_struct(&VfioIommuType1InfoDmaAvail {
            header: VfioInfoCapHeader {
                id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
                version: 1,
                next: 0,
            },
            avail: self.dma_avail,
        });
        // vfio_iommu_iova_build_caps(): if (!iovas) return 0;
        if !self.iova_ranges.is_empty() {
            let body = caps.add(
                iova_cap_size(self.iova_ranges.len()),
                VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
                1,
            );
            let nr = u32::try_from(self.iova_ranges.len()).unwrap_or(u32::MAX);
            body[8..12].copy_from_slice(&nr.to_ne_bytes());
            for (i, range) in self.iova_ranges.iter().enumerate() {
                let at = size_of::<VfioIommuType1InfoCapIovaRange>() + i * size_of::<VfioIovaRange>();
                body[at..at + size_of::<VfioIovaRange>()].copy_from_slice(Self::vfio_range(range).as_bytes());
            }
        }
        let placed = caps.place(info_size, cmd.argsz, user)?;
        let mut info = VfioIommuType1Info {
            argsz: placed.argsz(cmd.argsz),
            flags: VFIO_IOMMU_INFO_PGSIZES,
            iova_pgsizes: self.iova_pgsizes,
            ..Default::default()
        };
        if placed.has_caps() {
            info.flags |= VFIO_IOMMU_INFO_CAPS;
        }
        if let super::CapPlacement::Written { cap_offset } = placed {
            info.cap_offset = cap_offset;
        }
        copy_to_user(user, 0, &info.as_bytes()[..minsz])
    }
}
