//! Map + unmap of a driver's buffer through the uAPI, in 4 KiB, 2 MiB and 1 GiB pages, against the
//! foundation's direct page-table map + unmap of the same amount in the same page size
//! ([`UvfioMapUnmap`]: pin + `Domain::map` + `Domain::unmap` + invalidate + unpin) in the same run.
//!
//! Two uAPI paths, each a full ioctl on a context, decoding the argument bytes as the kernel would:
//! - `/dev/iommu`: `IOMMU_IOAS_MAP` (fixed IOVA) + `IOMMU_IOAS_UNMAP` on an IOAS with a selftest
//!   mock device attached (`IOMMU_TEST_OP_MOCK_DOMAIN`), so each map pins the buffer, adopts it
//!   into the host's physical address space and fills the mock domain; each unmap takes all back;
//! - `/dev/vfio/vfio`: `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` on a type1v2 container over
//!   uvfio's iommufd context (`Iommufd::new_legacy`), with a group of one bound device attached.
//!
//! The buffer is an anonymous mapping of this process, resident before timing (THP-backed for the
//! 2 MiB / 1 GiB rows). An adopted buffer is one contiguous, 1 GiB-aligned segment of the host's
//! physical address space, and the mock device's domain may use every page size, so the leaf size
//! follows from the IOVA alone: 1 GiB-aligned for the 1 GiB rows, 2 MiB- but not 1 GiB-aligned for
//! the 2 MiB rows, 4 KiB- but not 2 MiB-aligned for the 4 KiB rows. Each row checks (untimed, once)
//! that the domain holds leaves of its size.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare};
use crate::map_unmap::{GIB, UvfioMapUnmap};
use crate::sys::{Backing, UserRegion};
use crate::{BenchError, Measured, fixture};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uvfio_abi::iommufd::{
    IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IommuIoasAlloc, IommuIoasMap, IommuIoasUnmap,
};
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, IommuTestCmd, IommuTestMockDomain};
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
    VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VfioIommuType1DmaMap, VfioIommuType1DmaUnmap,
};
use uvfio_iommu::Domain;
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd, Object};
use uvfio_iommufd::device::GroupId;
use uvfio_iommufd::object::ObjectType;
use uvfio_memory::HostMemory;
use uvfio_types::{Iova, PageSize};
use uvfio_vfio::container::{Container, ContainerConfig, ContainerGroup, GroupKind};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromZeros, IntoBytes};

/// The ratio the uAPI path may cost over the direct map (issue 3: for ranges of 2 MiB or more).
pub const TARGET_RATIO: f64 = 1.3;
/// 1 GiB-aligned IOVA base of the mappings (above the mock aperture's start, 16 MiB).
const IOVA_BASE: u64 = 1 << 32;
/// Bytes mapped per iteration in a quick run.
pub const QUICK_LEN: u64 = 256 << 20;

/// Which uAPI a row drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `IOMMU_IOAS_MAP` + `IOMMU_IOAS_UNMAP` on `/dev/iommu`, with a mock domain attached.
    Ioas,
    /// `VFIO_IOMMU_MAP_DMA` + `VFIO_IOMMU_UNMAP_DMA` on a type1v2 container.
    Type1,
}

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![
        RowSpec {
            name: "uapi_ioas_map_unmap_1g_in_4k_pages",
            what: "IOAS_MAP+IOAS_UNMAP 1 GiB, mock domain, 4 KiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (4 KiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::None,
            measure: |s| measure(s, Path::Ioas, PageSize::Size4K),
        },
        RowSpec {
            name: "uapi_ioas_map_unmap_1g_in_2m_pages",
            what: "IOAS_MAP+IOAS_UNMAP 1 GiB, mock domain, 2 MiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (2 MiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::AtMost(TARGET_RATIO),
            measure: |s| measure(s, Path::Ioas, PageSize::Size2M),
        },
        RowSpec {
            name: "uapi_ioas_map_unmap_1g_in_1g_pages",
            what: "IOAS_MAP+IOAS_UNMAP 1 GiB, mock domain, 1 GiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (1 GiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::AtMost(TARGET_RATIO),
            measure: |s| measure(s, Path::Ioas, PageSize::Size1G),
        },
        RowSpec {
            name: "uapi_type1_map_unmap_dma_1g_in_4k_pages",
            what: "type1v2 MAP_DMA+UNMAP_DMA 1 GiB, container, 4 KiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (4 KiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::None,
            measure: |s| measure(s, Path::Type1, PageSize::Size4K),
        },
        RowSpec {
            name: "uapi_type1_map_unmap_dma_1g_in_2m_pages",
            what: "type1v2 MAP_DMA+UNMAP_DMA 1 GiB, container, 2 MiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (2 MiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::AtMost(TARGET_RATIO),
            measure: |s| measure(s, Path::Type1, PageSize::Size2M),
        },
        RowSpec {
            name: "uapi_type1_map_unmap_dma_1g_in_1g_pages",
            what: "type1v2 MAP_DMA+UNMAP_DMA 1 GiB, container, 1 GiB pages",
            peer: "direct pin+Domain::map+unmap+invalidate+unpin (1 GiB)",
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Page,
            target: Target::AtMost(TARGET_RATIO),
            measure: |s| measure(s, Path::Type1, PageSize::Size1G),
        },
    ]
}

/// Bytes a row maps: 1 GiB, or [`QUICK_LEN`] in a quick run for the 4 KiB and 2 MiB rows (a
/// 1 GiB page needs the whole 1 GiB).
pub fn row_len(s: &Settings, page: PageSize) -> u64 {
    if s.quick && page != PageSize::Size1G {
        QUICK_LEN
    } else {
        GIB
    }
}

fn measure(s: &Settings, path: Path, page: PageSize) -> Result<Measured, BenchError> {
    let len = row_len(s, page);
    let pages = (len / page.bytes()) as f64;
    let mut direct = UvfioMapUnmap::new(len, page)?;
    let mut ours = UapiMapUnmap::new(path, len, page)?;
    let c = compare(
        s,
        Side::new(pages, &mut |n| ours.time(n)),
        Side::new(pages, &mut |n| direct.time(n)),
        RatioDef::OursOverPeer,
    )?;
    let mut note = Vec::new();
    if len != GIB {
        note.push(format!("quick run: {} MiB, not 1 GiB", len >> 20));
    }
    if page == PageSize::Size4K {
        note.push("4 KiB: reported as info (issue 3's 1.3x is for 2 MiB or more)".to_string());
    }
    Ok(Measured {
        comparison: c,
        note: (!note.is_empty()).then(|| note.join("; ")),
    })
}

/// The IOVA a row maps at: aligned to the row's page size and no larger one, so the domain (which
/// may use every size) holds leaves of exactly that size.
fn row_iova(page: PageSize) -> u64 {
    match page {
        PageSize::Size4K => IOVA_BASE + PageSize::Size4K.bytes(),
        PageSize::Size2M => IOVA_BASE + PageSize::Size2M.bytes(),
        PageSize::Size1G => IOVA_BASE,
    }
}

/// A group of one bound device, for the container.
#[derive(Debug)]
struct BenchGroup {
    id: GroupId,
    rid: u16,
}

impl ContainerGroup for BenchGroup {
    fn id(&self) -> GroupId {
        self.id
    }

    fn kind(&self) -> GroupKind {
        GroupKind::Iommu
    }

    fn device_rids(&self) -> Vec<u16> {
        vec![self.rid]
    }
}

/// The context a path issues its ioctls on.
#[derive(Debug)]
enum Endpoint {
    /// `/dev/iommu` with the IOAS the maps go to.
    Iommufd { ioas: u32 },
    /// A type1v2 container.
    Container(Box<Container<Iommufd>>),
}

/// Ours: a driver's map + unmap of its buffer through the full ioctl path of `/dev/iommu` or of a
/// VFIO container, each of which pins the buffer (with locked-memory accounting), adopts it, maps
/// it into the attached domain, and on unmap unmaps, invalidates, unpins and releases it.
#[derive(Debug)]
pub struct UapiMapUnmap {
    endpoint: Endpoint,
    ctx: Arc<Iommufd>,
    mem: Arc<HostMemory>,
    domain: Arc<Domain>,
    iova: u64,
    /// The driver's buffer; dropped after the context (declared last).
    user: UserRegion,
}

impl UapiMapUnmap {
    /// A context with a device attached and a resident `len`-byte buffer (THP-backed unless
    /// `page` is 4 KiB), mapped at an IOVA aligned to `page` and no larger size.
    pub fn new(path: Path, len: u64, page: PageSize) -> Result<Self, BenchError> {
        let mem = fixture::host_memory(fixture::SMALL_RAM)?;
        let backing = if page == PageSize::Size4K {
            Backing::BasePages
        } else {
            Backing::HugePages
        };
        let len_usize = usize::try_from(len).map_err(|_| BenchError::Setup("buffer too long"))?;
        let align = usize::try_from(PageSize::Size2M.bytes()).map_err(|_| BenchError::Setup("alignment"))?;
        let user = UserRegion::new(len_usize, align, backing, Arc::clone(&mem))?;
        let accounts = Accounts::unlimited();
        let (endpoint, ctx, domain) = match path {
            Path::Ioas => {
                let ctx = Arc::new(Iommufd::new(Arc::clone(&mem), accounts, Credentials::default()));
                let (ioas, domain) = ioas_with_mock_domain(&ctx, &user)?;
                (Endpoint::Iommufd { ioas }, ctx, domain)
            }
            Path::Type1 => {
                let ctx = Arc::new(Iommufd::new_legacy(
                    Arc::clone(&mem),
                    accounts,
                    Credentials::default(),
                ));
                let (container, domain) = type1_container(&ctx, &user)?;
                (Endpoint::Container(Box::new(container)), ctx, domain)
            }
        };
        let mut ours = UapiMapUnmap {
            endpoint,
            ctx,
            mem,
            domain,
            iova: row_iova(page),
            user,
        };
        // Once, untimed: the domain must hold leaves of the row's size.
        ours.map()?;
        let leaf = ours.domain.lookup(Iova::new(ours.iova)).map(|t| t.size);
        ours.unmap()?;
        if leaf != Some(page) {
            return Err(BenchError::Setup(
                "the uAPI path did not map the buffer in the row's page size",
            ));
        }
        Ok(ours)
    }

    fn map(&mut self) -> Result<(), BenchError> {
        match &self.endpoint {
            Endpoint::Iommufd { ioas } => {
                let mut cmd = IommuIoasMap {
                    size: size_of::<IommuIoasMap>() as u32,
                    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                    ioas_id: *ioas,
                    user_va: self.user.va(),
                    length: self.user.len(),
                    iova: self.iova,
                    ..FromZeros::new_zeroed()
                };
                self.ctx
                    .ioctl(IOMMU_IOAS_MAP, cmd.as_mut_bytes(), &self.user)
                    .map_err(BenchError::Iommufd)
            }
            Endpoint::Container(container) => {
                let mut cmd = VfioIommuType1DmaMap {
                    argsz: size_of::<VfioIommuType1DmaMap>() as u32,
                    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                    vaddr: self.user.va(),
                    iova: self.iova,
                    size: self.user.len(),
                };
                container
                    .ioctl(
                        VFIO_IOMMU_MAP_DMA,
                        IoctlArg::Buffer(cmd.as_mut_bytes()),
                        &self.user,
                    )
                    .map(drop)
                    .map_err(BenchError::Container)
            }
        }
    }

    fn unmap(&mut self) -> Result<(), BenchError> {
        let unmapped = match &self.endpoint {
            Endpoint::Iommufd { ioas } => {
                let mut cmd = IommuIoasUnmap {
                    size: size_of::<IommuIoasUnmap>() as u32,
                    ioas_id: *ioas,
                    iova: self.iova,
                    length: self.user.len(),
                };
                self.ctx
                    .ioctl(IOMMU_IOAS_UNMAP, cmd.as_mut_bytes(), &self.user)
                    .map_err(BenchError::Iommufd)?;
                cmd.length
            }
            Endpoint::Container(container) => {
                let mut cmd = VfioIommuType1DmaUnmap {
                    argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
                    flags: 0,
                    iova: self.iova,
                    size: self.user.len(),
                };
                container
                    .ioctl(
                        VFIO_IOMMU_UNMAP_DMA,
                        IoctlArg::Buffer(cmd.as_mut_bytes()),
                        &self.user,
                    )
                    .map_err(BenchError::Container)?;
                cmd.size
            }
        };
        if unmapped != self.user.len() {
            return Err(BenchError::Setup("unmap returned fewer bytes than were mapped"));
        }
        Ok(())
    }

    /// One iteration: map, then unmap, through the ioctl path.
    pub fn op(&mut self) -> Result<(), BenchError> {
        self.map()?;
        self.unmap()
    }

    /// Runs `iters` iterations and returns the time they took.
    pub fn time(&mut self, iters: u64) -> Result<Duration, BenchError> {
        let start = Instant::now();
        for _ in 0..iters {
            self.op()?;
        }
        Ok(start.elapsed())
    }

    /// The domain the maps reach.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// The host memory the context adopts the buffer into.
    pub fn host_memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }
}

impl Drop for UapiMapUnmap {
    fn drop(&mut self) {
        // The container first (it detaches its group), then every object of the context, so no
        // segment adopted from the buffer outlives it (see `UserRegion`).
        if let Endpoint::Container(container) =
            std::mem::replace(&mut self.endpoint, Endpoint::Iommufd { ioas: 0 })
        {
            drop(container);
        }
        let _leaked = self.ctx.close();
    }
}

/// A new IOAS with a selftest mock device attached (`IOMMU_TEST_OP_MOCK_DOMAIN`): its id and the
/// domain of its automatic HWPT.
fn ioas_with_mock_domain(ctx: &Iommufd, user: &UserRegion) -> Result<(u32, Arc<Domain>), BenchError> {
    let mut alloc = IommuIoasAlloc {
        size: size_of::<IommuIoasAlloc>() as u32,
        ..FromZeros::new_zeroed()
    };
    ctx.ioctl(IOMMU_IOAS_ALLOC, alloc.as_mut_bytes(), user)
        .map_err(BenchError::Iommufd)?;
    let ioas = alloc.out_ioas_id;
    let mut cmd = IommuTestCmd {
        size: size_of::<IommuTestCmd>() as u32,
        op: IOMMU_TEST_OP_MOCK_DOMAIN,
        id: ioas,
        ..FromZeros::new_zeroed()
    };
    ctx.ioctl(IOMMU_TEST_CMD, cmd.as_mut_bytes(), user)
        .map_err(BenchError::Iommufd)?;
    let out: IommuTestMockDomain = cmd.member();
    let domain = match ctx.objects().get(out.out_hwpt_id, Some(ObjectType::HwptPaging)) {
        Ok(Object::HwptPaging(hwpt)) => Arc::clone(hwpt.domain()),
        _ => return Err(BenchError::Setup("the mock device has no paging HWPT")),
    };
    Ok((ioas, domain))
}

/// A type1v2 container over `ctx` with a group of one bound device attached: the container and
/// the domain the group's device is attached to.
fn type1_container(
    ctx: &Arc<Iommufd>,
    user: &UserRegion,
) -> Result<(Container<Iommufd>, Arc<Domain>), BenchError> {
    let group = GroupId(7);
    let container = Container::new(Arc::clone(ctx), ContainerConfig::default());
    container
        .attach_group(Arc::new(BenchGroup { id: group, rid: 0x38 }))
        .map_err(BenchError::Container)?;
    container
        .ioctl(
            VFIO_SET_IOMMU,
            IoctlArg::Value(u64::from(VFIO_TYPE1v2_IOMMU)),
            user,
        )
        .map_err(BenchError::Container)?;
    let device = container
        .bound_devices(group)
        .pop()
        .ok_or(BenchError::Setup("the container bound no device"))?;
    let domain = device
        .attached_hwpt()
        .map(|h| Arc::clone(h.domain()))
        .ok_or(BenchError::Setup("the container's device is not attached"))?;
    Ok((container, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_map_and_unmap_in_4k_and_2m_pages() {
        for path in [Path::Ioas, Path::Type1] {
            for page in [PageSize::Size4K, PageSize::Size2M] {
                let mut ours = UapiMapUnmap::new(path, 8 << 20, page).unwrap();
                ours.time(2).unwrap();
                assert!(
                    ours.domain().lookup(Iova::new(row_iova(page))).is_none(),
                    "{path:?} {page}: unmapped after each iteration"
                );
                assert_eq!(ours.host_memory().stats().adopted_segments, 0);
                assert_eq!(ours.host_memory().account().locked_pages, 0);
            }
        }
    }

    #[test]
    fn the_region_refuses_what_is_not_its_own() {
        use uvfio_iommufd::ctx::UserMemory;
        use uvfio_iommufd::uapi::UserPtr;
        let mem = fixture::host_memory(fixture::SMALL_RAM).unwrap();
        let user = UserRegion::new(1 << 20, 1 << 21, Backing::BasePages, mem).unwrap();
        assert_eq!(user.va() % (1 << 21), 0);
        user.write(UserPtr(user.va() + 8), &[1, 2, 3]).unwrap();
        let mut b = [0u8; 3];
        user.read(UserPtr(user.va() + 8), &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        assert!(user.read(UserPtr(user.va() + (1 << 20) - 1), &mut b).is_err());
        assert!(user.read(UserPtr(user.va() - 1), &mut b).is_err());
        let outside = user.buffer(uvfio_types::HostVa::new(user.va() + 4096), 1 << 20);
        assert_eq!(outside.va().raw(), 0);
    }
}
