//! Lifetimes: `iommufd_fail_nth`-style loops over attach and replace (every failure leaves nothing
//! behind), unbinding an attached device, and closing the context with devices still attached.

mod device_common;

use device_common::{Buffer, Obj, PAGE, Rig, rig};
use std::sync::Arc;
use uvfio_iommu::DomainType;
use uvfio_iommufd::device::Device;
use uvfio_iommufd::object::{ObjectId, ObjectType};
use uvfio_types::Iova;

/// What must not change when an attach or a replace fails.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    objects: Vec<(ObjectId, ObjectType)>,
    reserved: usize,
    users: Vec<u32>,
    ioas_domains: Vec<usize>,
    domains: usize,
    locked: u64,
    host_locked: u64,
    attached: Option<ObjectId>,
    generation: u64,
    frames: u64,
}

fn snapshot(r: &Rig, ioases: &[&uvfio_iommufd::ioas::IoPageTable], dev: &Device) -> Snapshot {
    let objects = r.table.snapshot();
    Snapshot {
        users: objects
            .iter()
            .map(|(id, _)| r.table.users(id.raw()).unwrap())
            .collect(),
        objects,
        reserved: r.table.reserved().len(),
        ioas_domains: ioases.iter().map(|i| i.domain_count()).collect(),
        domains: r.iommu.domain_count(),
        locked: r.account.locked_pages(),
        host_locked: r.mem.account().locked_pages,
        attached: dev.attached_hwpt().map(|h| h.id()),
        generation: dev.generation(),
        frames: r.mem.stats().table_frames,
    }
}

#[test]
fn fail_nth_attach_and_replace_leave_nothing_behind() {
    let r = rig();
    let buf = Buffer::new(8, 0x21);
    let (a_id, a) = r.ioas();
    let (b_id, b) = r.ioas();
    r.map(&a, &buf, Iova::new(0x10_0000), 4 * PAGE);
    a.map(
        buf.user(4 * PAGE, 4 * PAGE),
        uvfio_iommufd::iova_space::Placement::Alloc,
        uvfio_types::Access::READ,
    )
    .unwrap();
    r.map(&b, &buf, Iova::new(0x20_0000), 8 * PAGE);
    let d = r.device(1, 0x08);

    // Attach to IOAS A: a new automatic HWPT (object, domain, pins, maps, attach handle).
    let before = snapshot(&r, &[&a, &b], &d);
    let mut n = 1;
    let h = loop {
        r.fail.fail_nth(n);
        match d.attach(&r.table, r.target(a_id)) {
            Ok(h) => break h,
            Err(e) => {
                assert!(r.fail.fired(), "step {n}: a failure that was not injected: {e}");
                assert_eq!(snapshot(&r, &[&a, &b], &d), before, "step {n}: {e}");
                assert_eq!(d.current_domain().domain_type(), DomainType::Blocked);
            }
        }
        n += 1;
    };
    r.fail.fail_nth(0);
    assert!(n > 5, "the attach has at least 5 fallible steps, took {n}");
    assert_eq!(r.account.locked_pages(), 8);

    // Replace by IOAS B: on failure the old attachment stays, DMA still reaches A's pages.
    let before = snapshot(&r, &[&a, &b], &d);
    let mut n = 1;
    let hb = loop {
        r.fail.fail_nth(n);
        match d.replace(&r.table, r.target(b_id)) {
            Ok(hb) => break hb,
            Err(e) => {
                assert!(r.fail.fired(), "step {n}: {e}");
                assert_eq!(snapshot(&r, &[&a, &b], &d), before, "step {n}: {e}");
                let mut byte = [0u8; 1];
                d.port().0.read(Iova::new(0x10_0000), &mut byte).unwrap();
                assert_eq!(byte[0], 0x21);
            }
        }
        n += 1;
    };
    r.fail.fail_nth(0);
    assert_ne!(hb, h);
    assert!(
        !r.table.snapshot().iter().any(|&(id, _)| id == h),
        "A's automatic HWPT went"
    );
    assert_eq!(a.domain_count(), 0);

    // A second device joining the automatic HWPT: only its own slot can fail.
    let d2 = r.device(2, 0x10);
    let before = snapshot(&r, &[&a, &b], &d2);
    let mut n = 1;
    loop {
        r.fail.fail_nth(n);
        match d2.attach(&r.table, r.target(b_id)) {
            Ok(h2) => {
                assert_eq!(h2, hb);
                break;
            }
            Err(e) => {
                assert!(r.fail.fired(), "step {n}: {e}");
                assert_eq!(snapshot(&r, &[&a, &b], &d2), before, "step {n}: {e}");
            }
        }
        n += 1;
    }
    r.fail.fail_nth(0);
    assert!(d.detach(&r.table) && d2.detach(&r.table));
    drop((d, d2));
    r.assert_baseline();
    assert!(r.table.destroy_all().is_empty());
    drop((a, b));
    assert_eq!(r.mem.stats().adopted_segments, 0);
}

#[test]
fn unbinding_an_attached_device_lets_go_of_its_hwpt() {
    let r = rig();
    let buf = Buffer::new(1, 0);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x1000), PAGE);
    let d = r.device(1, 0x08);
    let explicit = r.hwpt_alloc(&d, ioas_id);
    r.attach(&d, explicit);
    drop(d);
    assert_eq!(r.users(explicit), 0, "the unbound device no longer uses the HWPT");
    drop(r.table.destroy(explicit.raw()).unwrap());
    // An automatic HWPT left by an unbound device stays until it is destroyed (or the file closes).
    let d = r.device(1, 0x08);
    let auto = r.attach(&d, ioas_id);
    drop(d);
    assert_eq!(r.hwpts(), vec![auto]);
    assert_eq!(r.account.locked_pages(), 1);
    drop(r.table.destroy(auto.raw()).unwrap());
    r.assert_baseline();
}

/// Closing `/dev/iommu` with devices still attached: `destroy_all` tears down devices first (they
/// use the HWPTs), then HWPTs (they use the IOAS), then the IOAS.
#[test]
fn closing_with_attached_devices_tears_down_in_order() {
    let r = rig();
    let buf = Buffer::new(2, 0);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x1000), 2 * PAGE);
    let d1 = Arc::new(r.device(1, 0x08));
    let d2 = Arc::new(r.device(2, 0x10));
    r.attach(&d1, ioas_id);
    let explicit = r.hwpt_alloc(&d2, ioas_id);
    r.attach(&d2, explicit);
    for d in [d1, d2] {
        r.table
            .reserve(ObjectType::Device)
            .unwrap()
            .finalize(Obj::Device(d));
    }
    drop(ioas);
    assert_eq!(r.table.destroy_all(), vec![], "nothing left behind");
    r.assert_baseline();
    assert_eq!(r.groups.live(), 0);
    assert_eq!(r.mem.stats().adopted_segments, 0);
}
