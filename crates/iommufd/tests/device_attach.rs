//! Devices attached to IOASes and HWPTs, after the selftests' `iommufd_mock_domain` (`replace`,
//! `alloc_hwpt`) and `iommufd_ioas` (`ioas_destroy`, `hwpt_attach`) cases: automatic domains and
//! their reuse, explicit HWPTs, replace, detach to a blocked domain, the errnos of each, and seed
//! 004's domain sharing (every domain attached to an IOAS carries every mapping).

mod device_common;

use device_common::{Buffer, Obj, PAGE, rig};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_iommu::{DomainType, FaultReason};
use uvfio_iommufd::device::{AttachTarget, DeviceError};
use uvfio_iommufd::object::ObjectType;
use uvfio_types::Iova;

fn read_byte(port: &uvfio_iommu::DmaPort, iova: Iova) -> Result<u8, FaultReason> {
    let mut b = [0u8; 1];
    port.read(iova, &mut b).map_err(|f| f.reason)?;
    Ok(b[0])
}

#[test]
fn devices_on_one_ioas_share_its_automatic_domain() {
    let r = rig();
    let buf = Buffer::new(4, 0x11);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x10_0000), 4 * PAGE);
    let (d1, d2) = (r.device(1, 0x08), r.device(2, 0x10));
    assert_eq!(d1.current_domain().domain_type(), DomainType::Blocked);
    let h = r.attach(&d1, ioas_id);
    assert_eq!(r.hwpts(), vec![h], "attaching to an IOAS made one automatic HWPT");
    assert_eq!(r.account.locked_pages(), 4, "its domain pinned the IOAS's pages");
    assert_eq!(r.attach(&d2, ioas_id), h, "the second device reuses it");
    assert_eq!(ioas.domain_count(), 1);
    assert!(Arc::ptr_eq(&d1.current_domain(), &d2.current_domain()));
    let (p1, _) = d1.port();
    let (p2, _) = d2.port();
    assert_eq!(read_byte(&p1, Iova::new(0x10_0123)), Ok(0x11));
    p2.write(Iova::new(0x10_3000), &[0x77]).unwrap();
    assert_eq!(buf.byte(0x3000), 0x77);
    assert_eq!(
        r.users(ioas_id),
        1,
        "the HWPT holds the IOAS; the devices hold the HWPT"
    );
    assert_eq!(
        r.table.destroy(ioas_id.raw()).unwrap_err().errno(),
        Errno::BUSY,
        "ioas_destroy: EBUSY while a device has a HWPT using it"
    );
    // Refcounted: the first detach leaves the HWPT to the other device.
    assert!(d1.detach(&r.table));
    assert_eq!(r.hwpts(), vec![h]);
    assert_eq!(d1.current_domain().domain_type(), DomainType::Blocked);
    assert_eq!(read_byte(&p2, Iova::new(0x10_0123)), Ok(0x11));
    drop((p1, p2));
    // The last device takes the automatic HWPT with it; the pins go back.
    assert!(d2.detach(&r.table));
    assert!(r.hwpts().is_empty());
    assert_eq!(ioas.domain_count(), 0);
    assert_eq!(r.users(ioas_id), 0);
    drop((d1, d2));
    r.assert_baseline();
    drop(r.table.destroy(ioas_id.raw()).unwrap());
    drop(ioas);
    assert_eq!(r.mem.stats().adopted_segments, 0);
}

#[test]
fn explicit_hwpts_are_never_picked_and_outlive_their_devices() {
    let r = rig();
    let (ioas_id, ioas) = r.ioas();
    let d = r.device(1, 0x08);
    // alloc_hwpt: a HWPT allocated for the device, then a device attached to it.
    let h = r.hwpt_alloc(&d, ioas_id);
    assert_eq!(
        ioas.domain_count(),
        1,
        "a new HWPT's domain is attached to the IOAS at once"
    );
    assert_eq!(r.table.destroy(ioas_id.raw()).unwrap_err().errno(), Errno::BUSY);
    let other = r.device(2, 0x10);
    assert_ne!(
        r.attach(&other, ioas_id),
        h,
        "automatic domain selection will never pick a manually created domain"
    );
    assert_eq!(ioas.domain_count(), 2);
    assert_eq!(r.attach(&d, h), h);
    assert_eq!(
        r.table.destroy(h.raw()).unwrap_err().errno(),
        Errno::BUSY,
        "the HWPT of an attached device cannot be destroyed from under it"
    );
    assert!(d.detach(&r.table));
    assert!(
        r.hwpts().contains(&h),
        "an explicit HWPT stays when its last device leaves"
    );
    drop(r.table.destroy(h.raw()).unwrap());
    assert!(other.detach(&r.table));
    assert!(r.hwpts().is_empty());
    drop((d, other));
    r.assert_baseline();
    assert!(r.table.destroy_all().is_empty());
}

/// `iommufd_mock_domain.replace`: between IOASes and HWPTs; DMA follows the new page table at once.
#[test]
fn replace_switches_dma_to_the_new_page_table() {
    let r = rig();
    let (buf_a, buf_b) = (Buffer::new(1, 0xaa), Buffer::new(1, 0xbb));
    let (a_id, a) = r.ioas();
    let (b_id, b) = r.ioas();
    r.map(&a, &buf_a, Iova::new(0x4000), PAGE);
    r.map(&b, &buf_b, Iova::new(0x4000), PAGE);
    let d = r.device(1, 0x08);
    let auto_a = r.attach(&d, a_id);
    let (old_port, gen_a) = d.port();
    assert_eq!(read_byte(&old_port, Iova::new(0x4000)), Ok(0xaa));

    let auto_b = r.replace(&d, b_id);
    assert_ne!(
        d.generation(),
        gen_a,
        "a replace is a change the device model can see"
    );
    let (port, gen_b) = d.port();
    assert_eq!(
        read_byte(&port, Iova::new(0x4000)),
        Ok(0xbb),
        "DMA reaches the new IOAS's mapping"
    );
    // "Replacing the IOAS causes the prior HWPT to be deallocated, thus we should get enoent".
    assert_eq!(
        AttachTarget::lookup(&r.table, auto_a.raw()).unwrap_err().errno(),
        Errno::NOENT
    );
    assert_eq!(a.domain_count(), 0);
    assert_eq!(
        read_byte(&old_port, Iova::new(0x4000)),
        Err(FaultReason::NotPresent),
        "a stale port finds the old domain emptied before its pages were unpinned"
    );
    drop(old_port);
    // Replacing with the page table already attached changes nothing.
    assert_eq!(r.replace(&d, b_id), auto_b);
    assert_eq!(r.replace(&d, auto_b), auto_b);
    assert_eq!(d.generation(), gen_b);

    // Rotation over explicit HWPTs of IOAS A (alloc_hwpt's "hw_pagetable rotation test").
    let h0 = r.hwpt_alloc(&d, a_id);
    let h1 = r.hwpt_alloc(&d, a_id);
    assert_eq!(r.replace(&d, h0), h0);
    assert!(
        !r.hwpts().contains(&auto_b),
        "the automatic HWPT of B went with its last device"
    );
    assert_eq!(read_byte(&d.port().0, Iova::new(0x4000)), Ok(0xaa));
    assert_eq!(r.table.destroy(h0.raw()).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(r.replace(&d, h1), h1);
    assert_eq!(r.table.destroy(h1.raw()).unwrap_err().errno(), Errno::BUSY);
    assert_eq!(r.users(h0), 0, "replace moved the use to the new HWPT");
    let back = r.replace(&d, b_id);
    assert_eq!(read_byte(&d.port().0, Iova::new(0x4000)), Ok(0xbb));
    drop(r.table.destroy(h1.raw()).unwrap());
    drop(r.table.destroy(h0.raw()).unwrap());
    assert_eq!(r.hwpts(), vec![back]);
    assert!(d.detach(&r.table));
    drop((d, port));
    r.assert_baseline();
    assert!(r.table.destroy_all().is_empty());
}

#[test]
fn a_failed_replace_keeps_the_old_attachment() {
    let r = rig();
    let buf = Buffer::new(1, 0x5c);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x8000), PAGE);
    let d = r.device(1, 0x08);
    // Replace needs an attached device.
    let err = d.replace(&r.table, r.target(ioas_id)).unwrap_err();
    assert!(matches!(err, DeviceError::NotAttached));
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(
        r.hwpts().is_empty(),
        "the automatic HWPT made for the replace was destroyed"
    );
    assert_eq!(ioas.domain_count(), 0);
    assert_eq!(r.account.locked_pages(), 0);

    let h = r.attach(&d, ioas_id);
    let generation = d.generation();
    // A HWPT whose domain is wider than the device's IOMMU translates: EINVAL, nothing changes.
    let wide_dev = uvfio_iommufd::device::Device::bind(
        &r.groups,
        &r.iommu,
        uvfio_iommufd::device::GroupId(9),
        0x20,
        device_common::five_level(),
    )
    .unwrap();
    let wide = r.hwpt_alloc(&wide_dev, ioas_id);
    let err = d.replace(&r.table, r.target(wide)).unwrap_err();
    assert!(
        matches!(
            err,
            DeviceError::TooWide {
                width: 57,
                max: 48,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), Errno::INVAL);
    assert_eq!(d.generation(), generation);
    assert_eq!(d.attached_hwpt().unwrap().id(), h);
    assert_eq!(read_byte(&d.port().0, Iova::new(0x8000)), Ok(0x5c));
    assert_eq!(
        r.users(wide),
        0,
        "the failed replace released its use of the target"
    );
    assert!(d.detach(&r.table));
    drop(r.table.destroy(wide.raw()).unwrap());
    drop((d, wide_dev));
    r.assert_baseline();
}

#[test]
fn detach_blocks_dma() {
    let r = rig();
    let buf = Buffer::new(2, 0x3c);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x20_0000), 2 * PAGE);
    let d = r.device(3, 0x18);
    r.attach(&d, ioas_id);
    let (port, generation) = d.port();
    assert_eq!(read_byte(&port, Iova::new(0x20_1000)), Ok(0x3c));
    drop(port);
    assert!(d.detach(&r.table));
    assert_ne!(d.generation(), generation);
    let (port, _) = d.port();
    assert_eq!(port.domain().domain_type(), DomainType::Blocked);
    let fault = port.write(Iova::new(0x20_1000), &[1]).unwrap_err();
    assert_eq!(fault.reason, FaultReason::Blocked);
    assert_eq!(buf.byte(0x1000), 0x3c, "nothing was written");
    let records = port.domain().drain_faults();
    assert_eq!(records.len(), 1, "the blocked access was recorded");
    assert_eq!(records[0].requester, 0x18);
    // Detaching a detached device is a no-op (VFIO_DEVICE_DETACH_IOMMUFD_PT returns 0).
    assert!(!d.detach(&r.table));
    assert!(!d.is_attached());
    drop((port, d));
    r.assert_baseline();
}

#[test]
fn attach_errnos() {
    let r = rig();
    let (ioas_id, _ioas) = r.ioas();
    let (other_id, _other) = r.ioas();
    let d = r.device(1, 0x08);
    let h = r.attach(&d, ioas_id);
    // Already attached: `xa_insert()` of the device finds it, whatever the target.
    for pt in [ioas_id, h, other_id] {
        let err = d.attach(&r.table, r.target(pt)).unwrap_err();
        assert!(matches!(err, DeviceError::AlreadyAttached), "{pt}: {err}");
        assert_eq!(err.errno(), Errno::BUSY);
    }
    assert_eq!(
        r.hwpts(),
        vec![h],
        "the HWPT tried for the other IOAS was destroyed again"
    );
    assert_eq!(_other.domain_count(), 0);
    // pt_id lookup (`iommufd_device_change_pt`): no object → ENOENT; not a page table → EINVAL.
    assert_eq!(
        AttachTarget::lookup(&r.table, 0).unwrap_err().errno(),
        Errno::NOENT
    );
    assert_eq!(
        AttachTarget::lookup(&r.table, 999).unwrap_err().errno(),
        Errno::NOENT
    );
    let dev_obj = r.table.reserve(ObjectType::Device).unwrap();
    let dev_id = dev_obj.id();
    dev_obj.finalize(Obj::Device(Arc::new(r.device(4, 0x40))));
    let err = AttachTarget::lookup(&r.table, dev_id.raw()).unwrap_err();
    assert!(matches!(err, DeviceError::NotAPageTable { .. }));
    assert_eq!(err.errno(), Errno::INVAL);
    assert!(d.detach(&r.table));
    drop(d);
    assert!(r.table.destroy_all().is_empty());
    r.assert_baseline();
}

/// Seed 004's domain sharing with two explicit HWPTs over one IOAS: every mapping, made before or
/// after the attach, is in both domains; the pages are pinned once; an unmap leaves both.
#[test]
fn two_hwpts_on_one_ioas_both_carry_every_mapping() {
    let r = rig();
    let buf = Buffer::new(8, 0);
    for i in 0..8 {
        buf.set(i * 4096, i as u8 + 1);
    }
    let (ioas_id, ioas) = r.ioas();
    let early = r.map(&ioas, &buf, Iova::new(0x10_0000), 4 * PAGE);
    let (d1, d2) = (r.device(1, 0x08), r.device(2, 0x10));
    let (h1, h2) = (r.hwpt_alloc(&d1, ioas_id), r.hwpt_alloc(&d2, ioas_id));
    r.attach(&d1, h1);
    r.attach(&d2, h2);
    assert!(!Arc::ptr_eq(&d1.current_domain(), &d2.current_domain()));
    let late = ioas
        .map(
            buf.user(4 * PAGE, 4 * PAGE),
            uvfio_iommufd::iova_space::Placement::Alloc,
            uvfio_types::Access::RW,
        )
        .unwrap();
    assert_eq!(r.account.locked_pages(), 8, "two domains, one pin per area");
    let (p1, p2) = (d1.port().0, d2.port().0);
    for i in 0..4u64 {
        let at = early.start().checked_add(i * PAGE).unwrap();
        assert_eq!(read_byte(&p1, at), Ok(i as u8 + 1));
        assert_eq!(read_byte(&p2, at), Ok(i as u8 + 1));
        let at = late.start().checked_add(i * PAGE).unwrap();
        assert_eq!(read_byte(&p1, at), Ok(i as u8 + 5));
        assert_eq!(read_byte(&p2, at), Ok(i as u8 + 5));
    }
    p1.write(early.start().checked_add(8).unwrap(), &[0xee]).unwrap();
    assert_eq!(
        read_byte(&p2, early.start().checked_add(8).unwrap()),
        Ok(0xee),
        "one memory behind both"
    );
    ioas.unmap(early).unwrap();
    assert_eq!(read_byte(&p1, early.start()), Err(FaultReason::NotPresent));
    assert_eq!(read_byte(&p2, early.start()), Err(FaultReason::NotPresent));
    assert_eq!(r.account.locked_pages(), 4);
    drop((p1, p2));
    assert!(d1.detach(&r.table) && d2.detach(&r.table));
    assert_eq!(
        r.account.locked_pages(),
        4,
        "the explicit HWPTs still hold the pages"
    );
    drop(r.table.destroy(h1.raw()).unwrap());
    assert_eq!(r.account.locked_pages(), 4);
    drop(r.table.destroy(h2.raw()).unwrap());
    assert_eq!(r.account.locked_pages(), 0, "the last domain's detach unpins");
    drop((d1, d2));
    r.assert_baseline();
    ioas.unmap_all();
    assert_eq!(r.mem.stats().adopted_segments, 0);
}
