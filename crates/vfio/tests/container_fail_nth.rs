//! `iommufd_fail_nth` for the legacy container: a group joining (`SET_CONTAINER`), the type1v2
//! driver opening and binding + attaching the group's devices (`SET_IOMMU`), and `MAP_DMA` /
//! `UNMAP_DMA`, each with its 1st, 2nd, … fallible step failing (object id, IOVA allocation, pin,
//! frame allocation) until it passes untouched. After every failure the context, the group's DMA
//! ownership, the accounts and host memory look exactly as before the call, and the call succeeds
//! afterwards.

mod container_support;

use container_support::{Buffer, TestUser};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
    VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VfioIommuType1DmaMap, VfioIommuType1DmaUnmap,
};
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_iommufd::device::GroupId;
use uvfio_memory::{HostMemory, MemoryConfig};
use uvfio_vfio::container::{Container, ContainerConfig, ContainerGroup, GroupKind};
use uvfio_vfio::uapi::IoctlArg;
use zerocopy::{FromZeros, IntoBytes};

const GROUP: GroupId = GroupId(7);
const IOVA: u64 = 0x40_0000;
const PAGES: u64 = 8;

/// A group of two devices (requester ids `8 * id`, `8 * id + 1`).
#[derive(Debug)]
struct Group(GroupId);

impl ContainerGroup for Group {
    fn id(&self) -> GroupId {
        self.0
    }
    fn kind(&self) -> GroupKind {
        GroupKind::Iommu
    }
    fn device_rids(&self) -> Vec<u16> {
        let base = u16::try_from(self.0.0 * 8).unwrap();
        vec![base, base + 1]
    }
}

/// A second group, joining once the driver is set (so its devices are bound and attached at once).
const LATE: GroupId = GroupId(8);

struct Rig {
    mem: Arc<HostMemory>,
    accounts: Accounts,
    ctx: Arc<Iommufd>,
    container: Container<Iommufd>,
}

/// Everything a failed call must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    objects: Vec<(u32, String)>,
    reserved: usize,
    owners: [Option<usize>; 2],
    groups: Vec<GroupId>,
    driver: bool,
    mm_locked: u64,
    host_locked: u64,
    adopted: usize,
    table_frames: u64,
}

impl Rig {
    fn new() -> Self {
        let mem = Arc::new(HostMemory::new(MemoryConfig::with_ram(64 << 20)).unwrap());
        let accounts = Accounts::unlimited();
        let ctx = Arc::new(Iommufd::new_legacy(
            Arc::clone(&mem),
            accounts.clone(),
            Credentials::default(),
        ));
        let container = Container::new(Arc::clone(&ctx), ContainerConfig::default());
        Rig {
            mem,
            accounts,
            ctx,
            container,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let stats = self.mem.stats();
        Snapshot {
            objects: self
                .ctx
                .objects()
                .snapshot()
                .into_iter()
                .map(|(id, ty)| (id.raw(), format!("{ty:?}")))
                .collect(),
            reserved: self.ctx.objects().reserved().len(),
            owners: [GROUP, LATE].map(|g| self.ctx.iommu().owners().owner(g.0).map(|(_, n)| n)),
            groups: self.container.groups(),
            driver: self.container.driver().is_some(),
            mm_locked: self.accounts.mm.locked_pages(),
            host_locked: self.mem.account().locked_pages,
            adopted: stats.adopted_segments,
            table_frames: stats.table_frames,
        }
    }

    /// Runs `op` with its n-th fallible step failing, n = 1, 2, … until it succeeds; each failure
    /// must leave the snapshot unchanged. Returns how many failures were injected.
    fn fail_nth(&self, what: &str, mut op: impl FnMut(&Self) -> Result<u32, Errno>) -> u64 {
        for n in 1..1000 {
            let before = self.snapshot();
            self.ctx.fail_points().fail_nth(n);
            let result = op(self);
            let fired = self.ctx.fail_points().fired();
            self.ctx.fail_points().fail_nth(0);
            match result {
                Ok(_) => {
                    assert!(!fired, "{what}: step {n} fired but the call succeeded");
                    return n - 1;
                }
                Err(e) => {
                    assert!(fired, "{what}: failed with {e:?} without an injected failure");
                    assert_eq!(
                        self.snapshot(),
                        before,
                        "{what}: failing step {n} left state behind"
                    );
                }
            }
        }
        panic!("{what}: never succeeded");
    }
}

fn map(rig: &Rig, buf: &Buffer) -> Result<u32, Errno> {
    let mut map = VfioIommuType1DmaMap {
        argsz: size_of::<VfioIommuType1DmaMap>() as u32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.va(),
        iova: IOVA,
        size: PAGES * 4096,
    };
    rig.container
        .ioctl(
            VFIO_IOMMU_MAP_DMA,
            IoctlArg::Buffer(map.as_mut_bytes()),
            &TestUser,
        )
        .map_err(|e| e.errno())
}

fn unmap(rig: &Rig) -> Result<u32, Errno> {
    let mut unmap = VfioIommuType1DmaUnmap {
        argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
        iova: IOVA,
        size: PAGES * 4096,
        ..FromZeros::new_zeroed()
    };
    rig.container
        .ioctl(
            VFIO_IOMMU_UNMAP_DMA,
            IoctlArg::Buffer(unmap.as_mut_bytes()),
            &TestUser,
        )
        .map_err(|e| e.errno())
}

#[test]
fn every_failing_step_of_the_legacy_flow_leaves_nothing_behind() {
    let buf = Buffer::new(PAGES as usize, 0x5a);
    let rig = Rig::new();
    rig.fail_nth("SET_CONTAINER", |r| {
        r.container
            .attach_group(Arc::new(Group(GROUP)))
            .map(|()| 0)
            .map_err(|e| e.errno())
    });
    let opened = rig.fail_nth("SET_IOMMU", |r| {
        r.container
            .ioctl(
                VFIO_SET_IOMMU,
                IoctlArg::Value(u64::from(VFIO_TYPE1v2_IOMMU)),
                &TestUser,
            )
            .map_err(|e| e.errno())
    });
    // SET_IOMMU made the compat IOAS, an automatic HWPT and bound both devices.
    assert!(opened >= 4, "SET_IOMMU took only {opened} fallible steps");
    assert_eq!(rig.container.bound_devices(GROUP).len(), 2);
    let late = rig.fail_nth("SET_CONTAINER after SET_IOMMU", |r| {
        r.container
            .attach_group(Arc::new(Group(LATE)))
            .map(|()| 0)
            .map_err(|e| e.errno())
    });
    assert!(late >= 2, "a late group's join took only {late} fallible steps");
    assert_eq!(rig.container.bound_devices(LATE).len(), 2);
    let mapped = rig.fail_nth("MAP_DMA", |r| map(r, &buf));
    assert!(mapped >= 2, "MAP_DMA took only {mapped} fallible steps");
    assert_eq!(rig.accounts.mm.locked_pages(), PAGES);
    rig.fail_nth("UNMAP_DMA", unmap);
    assert_eq!(rig.accounts.mm.locked_pages(), 0);
    rig.container.detach_group(LATE).unwrap();
    rig.container.detach_group(GROUP).unwrap();
    assert_eq!(rig.ctx.iommu().owners().owned_groups(), 0);
    let Rig {
        mem,
        accounts,
        ctx,
        container,
    } = rig;
    drop(container);
    assert!(ctx.close().is_empty());
    assert_eq!(accounts.mm.locked_pages(), 0);
    assert_eq!(mem.account().locked_pages, 0);
    assert_eq!(mem.stats().adopted_segments, 0);
}
