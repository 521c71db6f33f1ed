//! The container's own requests and its state machine: `VFIO_GET_API_VERSION`,
//! `VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`, groups joining and leaving, and what every request
//! answers before, under and after each driver. Named after the selftests of
//! `tools/testing/selftests/iommu/iommufd.c` they follow (`simple_ioctls`, `unmap_cmd`, `map_cmd`,
//! `info_cmd`, `set_iommu_cmd`) or after the `container.c` / `vfio_compat.c` rule they pin down.
//! Every test ends with the leak check.

mod container_support;

use container_support::*;
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DMA_CC_IOMMU, VFIO_DMA_MAP_FLAG_READ, VFIO_EEH, VFIO_GET_API_VERSION, VFIO_IOMMU_DIRTY_PAGES,
    VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_NOIOMMU_IOMMU, VFIO_SPAPR_TCE_IOMMU,
    VFIO_SPAPR_TCE_v2_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL,
    VFIO_UPDATE_VADDR,
};
use uvfio_iommufd::device::GroupId;
use uvfio_iommufd::hwpt::HwptObject;
use uvfio_iommufd::object::ObjectType;
use uvfio_vfio::container::{ContainerConfig, IommuDriver};

const NOIOMMU_HOST: ContainerConfig = ContainerConfig {
    noiommu_enabled: true,
    sys_rawio: true,
    dma_entry_limit: Some(65535),
};

/// Every extension number `VFIO_CHECK_EXTENSION` may be asked about, and two it cannot know.
const EXTENSIONS: [u64; 12] = [
    VFIO_TYPE1_IOMMU as u64,
    VFIO_SPAPR_TCE_IOMMU as u64,
    VFIO_TYPE1v2_IOMMU as u64,
    VFIO_DMA_CC_IOMMU as u64,
    VFIO_EEH as u64,
    VFIO_TYPE1_NESTING_IOMMU as u64,
    VFIO_SPAPR_TCE_v2_IOMMU as u64,
    VFIO_NOIOMMU_IOMMU as u64,
    VFIO_UNMAP_ALL as u64,
    VFIO_UPDATE_VADDR as u64,
    99,
    (1 << 32) | VFIO_TYPE1v2_IOMMU as u64,
];

/// The extensions (of [`EXTENSIONS`]) that answer 1.
fn supported(c: &Cont) -> Vec<u64> {
    EXTENSIONS
        .into_iter()
        .filter(|&ext| match check_extension(c, ext) {
            0 => false,
            1 => true,
            other => panic!("CHECK_EXTENSION({ext}) = {other}"),
        })
        .collect()
}

const TYPE1_SET: [u64; 3] = [
    VFIO_TYPE1_IOMMU as u64,
    VFIO_TYPE1v2_IOMMU as u64,
    VFIO_UNMAP_ALL as u64,
];

#[test]
fn simple_ioctls() {
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    assert_eq!(ioctl_value(&c, VFIO_GET_API_VERSION, 0), Ok(0));
    assert_eq!(check_extension(&c, VFIO_TYPE1v2_IOMMU.into()), 1);
    closed_clean(ctx, c);
}

#[test]
fn check_extension_follows_the_drivers() {
    let ctx = Ctx::new();
    // No group, no driver: every registered driver is polled; no-IOMMU answers only when the
    // host enabled it; DMA_CC needs a container (type1 polled with NULL answers 0).
    let c = container(&ctx, ContainerConfig::default());
    assert_eq!(supported(&c), TYPE1_SET);
    let noiommu_host = container(&ctx, NOIOMMU_HOST);
    let mut with_noiommu = TYPE1_SET.to_vec();
    with_noiommu.insert(2, VFIO_NOIOMMU_IOMMU.into());
    assert_eq!(supported(&noiommu_host), with_noiommu);

    // A real group: only IOMMU drivers are allowed, so NOIOMMU is 0 even on a no-IOMMU host.
    noiommu_host.attach_group(group(&ctx, 1, 1)).unwrap();
    assert_eq!(supported(&noiommu_host), TYPE1_SET);
    // Type1 set: only the compat driver answers, DMA_CC included.
    set_iommu(&noiommu_host, VFIO_TYPE1v2_IOMMU).unwrap();
    let mut with_cc = TYPE1_SET.to_vec();
    with_cc.insert(2, VFIO_DMA_CC_IOMMU.into());
    assert_eq!(supported(&noiommu_host), with_cc);
    noiommu_host.detach_group(GroupId(1)).unwrap();
    assert_eq!(noiommu_host.driver(), None);

    // A no-IOMMU group: only vfio-noiommu is allowed, before and after it is set.
    let n = container(&ctx, NOIOMMU_HOST);
    n.attach_group(noiommu_group(2)).unwrap();
    assert_eq!(supported(&n), [u64::from(VFIO_NOIOMMU_IOMMU)]);
    set_iommu(&n, VFIO_NOIOMMU_IOMMU).unwrap();
    assert_eq!(supported(&n), [u64::from(VFIO_NOIOMMU_IOMMU)]);
    n.detach_group(GroupId(2)).unwrap();
    drop((noiommu_host, n));
    closed_clean(ctx, c);
}

#[test]
fn set_iommu_cmd() {
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    // "only by adding a group to a container does the user get the privilege of enabling the
    // iommu": EINVAL without a group. (iommufd's own /dev/vfio/vfio answers ENODEV here, for want
    // of a compat IOAS; uvfio keeps container.c's state machine.)
    assert_eq!(set_iommu(&c, VFIO_TYPE1v2_IOMMU), Err(Errno::INVAL));
    assert_eq!(set_iommu(&c, VFIO_TYPE1_IOMMU), Err(Errno::INVAL));
    assert_eq!(c.compat_ioas(), None, "a refused SET_IOMMU makes no IOAS");

    c.attach_group(group(&ctx, 1, 1)).unwrap();
    // No allowed driver offers these: ENODEV.
    for ty in [
        VFIO_NOIOMMU_IOMMU,
        VFIO_SPAPR_TCE_IOMMU,
        VFIO_DMA_CC_IOMMU,
        VFIO_UPDATE_VADDR,
        99,
    ] {
        assert_eq!(set_iommu(&c, ty), Err(Errno::NODEV), "type {ty}");
    }
    // type1 offers UNMAP_ALL as an extension but does not open it as a type: EINVAL.
    assert_eq!(set_iommu(&c, VFIO_UNMAP_ALL), Err(Errno::INVAL));
    assert_eq!(c.driver(), None);

    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert_eq!(c.driver(), Some(IommuDriver::Type1v2));
    let ioas = c.compat_ioas().expect("SET_IOMMU made the compat IOAS");
    // Set already: EINVAL, whatever the type.
    assert_eq!(set_iommu(&c, VFIO_TYPE1v2_IOMMU), Err(Errno::INVAL));
    assert_eq!(set_iommu(&c, VFIO_TYPE1_IOMMU), Err(Errno::INVAL));
    assert_eq!(set_iommu(&c, 99), Err(Errno::INVAL));

    // The last group leaving deprivileges the container; the compat IOAS stays with the context,
    // mappings and all, and the next SET_IOMMU adopts it.
    let buf = Buffer::new(1, 0);
    map(&c, buf.va(), IOVA, PAGE).unwrap();
    c.detach_group(GroupId(1)).unwrap();
    assert_eq!(c.driver(), None);
    assert_eq!(map(&c, buf.va(), IOVA + PAGE, PAGE), Err(Errno::INVAL));
    assert_eq!(set_iommu(&c, VFIO_TYPE1v2_IOMMU), Err(Errno::INVAL));
    assert_eq!(ctx.compat_ioas().domain_count(), 0, "no device, no domain");
    assert_eq!(ctx.mm_account.locked_pages(), 0, "no domain, no pin");

    c.attach_group(group(&ctx, 2, 1)).unwrap();
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert_eq!(c.compat_ioas(), Some(ioas), "adopted");
    assert_eq!(areas(&ctx), [range(IOVA, PAGE)]);
    assert_eq!(unmap(&c, IOVA, PAGE), Ok(PAGE));
    c.detach_group(GroupId(2)).unwrap();
    closed_clean(ctx, c);
}

#[test]
fn set_iommu_adopts_the_contexts_vfio_ioas() {
    let buf = Buffer::new(2, 0x5a);
    let ctx = Ctx::new();
    // IOMMU_VFIO_IOAS_SET of an IOAS the user made (the vfio_compat_mock_domain fixture).
    let (id, ioas) = ctx.user_ioas();
    uvfio_vfio::container::CompatContext::set_vfio_ioas(&*ctx, Some(id));
    let c = container(&ctx, ContainerConfig::default());
    c.attach_group(group(&ctx, 1, 1)).unwrap();
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert_eq!(c.compat_ioas(), Some(id));
    assert_eq!(ioas.domain_count(), 1, "the group's domain is on the user's IOAS");
    map(&c, buf.va(), IOVA, 2 * PAGE).unwrap();
    assert_eq!(ioas.area_count(), 1);
    c.detach_group(GroupId(1)).unwrap();

    // Type1 (v1) must turn large pages off, which iopt_disable_large_pages() refuses once
    // domains carry mappings: adopt an IOAS with a domain (a device attached through iommufd)
    // and a mapping.
    let other = group(&ctx, 2, 1);
    let target = uvfio_iommufd::device::AttachTarget::lookup(&ctx.table, id.raw()).unwrap();
    other.devices[0].attach(&ctx.table, target).unwrap();
    c.attach_group(group(&ctx, 3, 1)).unwrap();
    assert_eq!(set_iommu(&c, VFIO_TYPE1_IOMMU), Err(Errno::INVAL));
    assert_eq!(c.driver(), None);
    // v2 does not care. The new group reuses the automatic domain already on the IOAS ("any
    // domain that is willing to attach to the device is interchangeable").
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert_eq!(ioas.domain_count(), 1);
    assert_eq!(unmap(&c, IOVA, 2 * PAGE), Ok(2 * PAGE));
    c.detach_group(GroupId(3)).unwrap();
    other.devices[0].detach(&ctx.table);
    drop(ioas);
    closed_clean(ctx, c);
}

/// The three driver requests of an argument that is fine, too short, or has unknown flags.
fn driver_requests(c: &Cont) -> [(u32, Vec<u8>); 3] {
    let mut map = vec![0u8; 32];
    map[..4].copy_from_slice(&32u32.to_ne_bytes());
    map[4..8].copy_from_slice(&VFIO_DMA_MAP_FLAG_READ.to_ne_bytes());
    let mut unmap = vec![0u8; 24];
    unmap[..4].copy_from_slice(&24u32.to_ne_bytes());
    let mut info = vec![0u8; 24];
    info[..4].copy_from_slice(&24u32.to_ne_bytes());
    let _ = c;
    [
        (VFIO_IOMMU_MAP_DMA, map),
        (VFIO_IOMMU_UNMAP_DMA, unmap),
        (VFIO_IOMMU_GET_INFO, info),
    ]
}

/// `unmap_cmd`, `map_cmd` and `info_cmd` of the selftest: a short `argsz` and unknown flags are
/// `EINVAL`; a well-formed request without a compat IOAS is `ENODEV`. Without a driver,
/// container.c answers every one of them `EINVAL` before it reads the argument.
#[test]
fn unmap_cmd_map_cmd_info_cmd() {
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    for (request, mut good) in driver_requests(&c) {
        assert_eq!(
            ioctl_buf(&c, request, &mut good),
            Err(Errno::INVAL),
            "{request:#x}, no driver"
        );
        assert_eq!(
            ioctl_value(&c, request, 0),
            Err(Errno::INVAL),
            "{request:#x}: arg not read"
        );
    }
    // A group without devices keeps no use of the compat IOAS, so it can be destroyed under the
    // driver: every request is then ENODEV (get_compat_ioas()).
    c.attach_group(group(&ctx, 1, 0)).unwrap();
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    let id = c.compat_ioas().unwrap();
    for (request, mut good) in driver_requests(&c) {
        let mut short = good.clone();
        short[..4].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(
            ioctl_buf(&c, request, &mut short),
            Err(Errno::INVAL),
            "{request:#x} argsz 1"
        );
        assert_eq!(
            ioctl_value(&c, request, 0x1000),
            Err(Errno::FAULT),
            "{request:#x} no pointer"
        );
        if request != VFIO_IOMMU_GET_INFO {
            let mut flags = good.clone();
            flags[4..8].copy_from_slice(&(1u32 << 31).to_ne_bytes());
            assert_eq!(
                ioctl_buf(&c, request, &mut flags),
                Err(Errno::INVAL),
                "{request:#x} flags"
            );
        }
        if request == VFIO_IOMMU_GET_INFO {
            assert_eq!(ioctl_buf(&c, request, &mut good), Ok(0));
        }
    }
    ctx.table.destroy(id.raw()).unwrap();
    for (request, mut good) in driver_requests(&c) {
        assert_eq!(
            ioctl_buf(&c, request, &mut good),
            Err(Errno::NODEV),
            "{request:#x}"
        );
    }
    c.detach_group(GroupId(1)).unwrap();
    closed_clean(ctx, c);
}

#[test]
fn unknown_requests_by_driver() {
    let ctx = Ctx::new();
    let c = container(&ctx, NOIOMMU_HOST);
    let mut arg = vec![0u8; 64];
    // No driver: container.c's default is EINVAL, for any number.
    assert_eq!(ioctl_buf(&c, VFIO_IOMMU_DIRTY_PAGES, &mut arg), Err(Errno::INVAL));
    assert_eq!(ioctl_buf(&c, 0xdead, &mut arg), Err(Errno::INVAL));
    // The compat driver: -ENOIOCTLCMD, seen as ENOTTY (VFIO_IOMMU_DIRTY_PAGES is not served).
    c.attach_group(group(&ctx, 1, 1)).unwrap();
    set_iommu(&c, VFIO_TYPE1_IOMMU).unwrap();
    assert_eq!(ioctl_buf(&c, VFIO_IOMMU_DIRTY_PAGES, &mut arg), Err(Errno::NOTTY));
    assert_eq!(ioctl_buf(&c, 0xdead, &mut arg), Err(Errno::NOTTY));
    c.detach_group(GroupId(1)).unwrap();
    closed_clean(ctx, c);
}

#[test]
fn noiommu_container_takes_only_the_noiommu_type_and_no_map_requests() {
    let buf = Buffer::new(1, 0);
    let ctx = Ctx::new();
    // Without CAP_SYS_RAWIO a no-IOMMU group cannot join.
    let unprivileged = container(
        &ctx,
        ContainerConfig {
            sys_rawio: false,
            ..NOIOMMU_HOST
        },
    );
    assert_eq!(
        unprivileged.attach_group(noiommu_group(7)).map_err(|e| e.errno()),
        Err(Errno::PERM)
    );
    assert!(unprivileged.groups().is_empty());

    let c = container(&ctx, NOIOMMU_HOST);
    c.attach_group(noiommu_group(7)).unwrap();
    // Real groups and fake groups cannot mix, either way round.
    assert_eq!(
        c.attach_group(group(&ctx, 1, 1)).map_err(|e| e.errno()),
        Err(Errno::PERM)
    );
    for ty in [VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU] {
        assert_eq!(set_iommu(&c, ty), Err(Errno::NODEV), "type1 is not allowed here");
    }
    set_iommu(&c, VFIO_NOIOMMU_IOMMU).unwrap();
    assert_eq!(c.driver(), Some(IommuDriver::NoIommu));
    assert_eq!(c.compat_ioas(), None, "no IOAS in no-IOMMU mode");
    // vfio_noiommu_ioctl(): everything but CHECK_EXTENSION is ENOTTY.
    for (request, mut good) in driver_requests(&c) {
        assert_eq!(
            ioctl_buf(&c, request, &mut good),
            Err(Errno::NOTTY),
            "{request:#x}"
        );
    }
    assert_eq!(map(&c, buf.va(), IOVA, PAGE), Err(Errno::NOTTY));
    c.detach_group(GroupId(7)).unwrap();
    assert_eq!(c.driver(), None);

    let real = container(&ctx, NOIOMMU_HOST);
    real.attach_group(group(&ctx, 2, 1)).unwrap();
    assert_eq!(
        real.attach_group(noiommu_group(8)).map_err(|e| e.errno()),
        Err(Errno::PERM)
    );
    real.detach_group(GroupId(2)).unwrap();

    // A host without the opt-in has no vfio-noiommu to offer (its groups would not exist; the
    // driver answers 0 to the type).
    let off = container(
        &ctx,
        ContainerConfig {
            noiommu_enabled: false,
            ..NOIOMMU_HOST
        },
    );
    off.attach_group(noiommu_group(9)).unwrap();
    assert_eq!(set_iommu(&off, VFIO_NOIOMMU_IOMMU), Err(Errno::NODEV));
    off.detach_group(GroupId(9)).unwrap();
    drop((unprivileged, real, off));
    closed_clean(ctx, c);
}

#[test]
fn groups_join_and_leave() {
    let buf = Buffer::new(1, 0x11);
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    let g1 = group(&ctx, 1, 2);
    c.attach_group(g1.clone()).unwrap();
    assert_eq!(
        c.attach_group(g1.clone()).map_err(|e| e.errno()),
        Err(Errno::INVAL)
    );
    assert_eq!(
        c.detach_group(GroupId(5)).map_err(|e| e.errno()),
        Err(Errno::INVAL)
    );
    // Nothing is attached before SET_IOMMU.
    assert!(g1.devices.iter().all(|d| !d.is_attached()));
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert!(g1.devices.iter().all(|d| d.is_attached()));
    map(&c, buf.va(), IOVA, PAGE).unwrap();

    // A group joining a set container is attached at once and sees the mappings.
    let g2 = group(&ctx, 2, 1);
    c.attach_group(g2.clone()).unwrap();
    let (port, _) = g2.devices[0].port();
    let mut byte = [0u8];
    port.read(uvfio_types::Iova::new(IOVA), &mut byte).unwrap();
    assert_eq!(byte, [0x11]);
    // The automatic domain of the first group is reused ("any domain that is willing to attach
    // to the device is interchangeable with any other").
    assert_eq!(ctx.compat_ioas().domain_count(), 1);

    // A group whose device is attached elsewhere (iommu_group_claim_dma_owner() would refuse
    // it): the device's attach is EBUSY, the group stays out, nothing else changes.
    let (other_id, _other) = ctx.user_ioas();
    let g3 = group(&ctx, 3, 2);
    let target = uvfio_iommufd::device::AttachTarget::lookup(&ctx.table, other_id.raw()).unwrap();
    g3.devices[1].attach(&ctx.table, target).unwrap();
    assert_eq!(
        c.attach_group(g3.clone()).map_err(|e| e.errno()),
        Err(Errno::INVAL)
    );
    assert!(
        !g3.devices[0].is_attached(),
        "the first device was detached again"
    );
    assert_eq!(c.groups(), [GroupId(1), GroupId(2)]);
    let hwpts = |ctx: &Ctx| {
        ctx.table
            .snapshot()
            .into_iter()
            .filter(|(_, t)| *t == ObjectType::HwptPaging)
            .count()
    };
    assert_eq!(
        hwpts(&ctx),
        2,
        "the shared automatic domain and g3's on the other IOAS"
    );

    // Leaving: the group's devices are detached; the shared domain stays while g1 uses it.
    c.detach_group(GroupId(2)).unwrap();
    assert!(!g2.devices[0].is_attached());
    assert_eq!(hwpts(&ctx), 2);
    assert_eq!(c.driver(), Some(IommuDriver::Type1v2), "a group is left");
    c.detach_group(GroupId(1)).unwrap();
    assert!(g1.devices.iter().all(|d| !d.is_attached()));
    assert_eq!(hwpts(&ctx), 1);
    g3.devices[1].detach(&ctx.table);
    let leftover = ctx
        .table
        .snapshot()
        .into_iter()
        .filter(|(_, t)| *t == ObjectType::HwptPaging)
        .count();
    assert_eq!(leftover, 0);
    closed_clean(ctx, c);
}

#[test]
fn set_iommu_unwinds_when_a_group_cannot_attach() {
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    let g1 = group(&ctx, 1, 1);
    let g2 = group(&ctx, 2, 1);
    let (other_id, _other) = ctx.user_ioas();
    let target = uvfio_iommufd::device::AttachTarget::lookup(&ctx.table, other_id.raw()).unwrap();
    g2.devices[0].attach(&ctx.table, target).unwrap();
    c.attach_group(g1.clone()).unwrap();
    c.attach_group(g2.clone()).unwrap();
    // g2's device is attached (to another IOAS) already: its attach is EBUSY (`xa_insert()` of
    // an attached device); g1 is detached again, no driver is set, and the compat IOAS this
    // SET_IOMMU made is gone again.
    assert_eq!(set_iommu(&c, VFIO_TYPE1v2_IOMMU), Err(Errno::BUSY));
    assert_eq!(c.driver(), None);
    assert!(!g1.devices[0].is_attached());
    assert_eq!(c.compat_ioas(), None);
    let ioases: Vec<_> = ctx
        .table
        .snapshot()
        .into_iter()
        .filter(|&(_, ty)| ty == uvfio_iommufd::object::ObjectType::Ioas)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ioases, vec![other_id], "only the user's IOAS");
    // Once g2 is free, it works.
    g2.devices[0].detach(&ctx.table);
    set_iommu(&c, VFIO_TYPE1v2_IOMMU).unwrap();
    assert!(g1.devices[0].is_attached() && g2.devices[0].is_attached());
    // Dropping the container takes its groups out.
    drop(c);
    assert!(!g1.devices[0].is_attached() && !g2.devices[0].is_attached());
    let hwpt_left = ctx
        .table
        .snapshot()
        .into_iter()
        .any(|(id, _)| ctx.table.get(id.raw(), None).unwrap().as_hwpt_paging().is_some());
    assert!(!hwpt_left);
    let c = container(&ctx, ContainerConfig::default());
    closed_clean(ctx, c);
}
