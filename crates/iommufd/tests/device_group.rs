//! IOMMU groups and domain compatibility: devices of one group share one attachment (Linux
//! `struct iommufd_group`), an automatic domain is reused only by devices it suits, and a domain the
//! IOAS cannot take (an area beyond its address width) fails the attach with the IOAS's
//! `EADDRINUSE`.

mod device_common;

use device_common::{Buffer, PAGE, five_level, rig};
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_iommu::{DomainConfig, DomainType, Iommu};
use uvfio_iommufd::device::{Device, DeviceError, GroupId};
use uvfio_types::{Iova, IovaRange};

#[test]
fn devices_of_a_group_share_one_attachment() {
    let r = rig();
    let buf = Buffer::new(1, 0x42);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x1000), PAGE);
    let (a, b) = (r.device(7, 0x08), r.device(7, 0x09));
    assert!(Arc::ptr_eq(a.group(), b.group()));
    let (h1, h2) = (r.hwpt_alloc(&a, ioas_id), r.hwpt_alloc(&a, ioas_id));
    let before = b.generation();
    r.attach(&a, h1);
    // The group is the unit of attachment: b's DMA follows a's attachment though b is not attached.
    assert!(!b.is_attached());
    assert_ne!(b.generation(), before);
    assert!(Arc::ptr_eq(&b.current_domain(), &a.current_domain()));
    let mut byte = [0u8; 1];
    b.port().0.read(Iova::new(0x1000), &mut byte).unwrap();
    assert_eq!(byte[0], 0x42);
    // A second device of the group must attach to the same HWPT.
    let err = b.attach(&r.table, r.target(h2)).unwrap_err();
    assert!(
        matches!(
            err,
            DeviceError::GroupAttachedElsewhere {
                group: GroupId(7),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), Errno::INVAL);
    let err = b.attach(&r.table, r.target(ioas_id)).unwrap_err();
    assert_eq!(
        err.errno(),
        Errno::INVAL,
        "no automatic HWPT suits a group attached elsewhere"
    );
    assert_eq!(
        r.hwpts().len(),
        2,
        "the automatic HWPT tried for it was destroyed"
    );
    assert_eq!(r.attach(&b, h1), h1);
    assert_eq!(r.users(h1), 1, "one use of the HWPT per attached group");
    // Replace moves the whole group.
    let generation = b.generation();
    assert_eq!(r.replace(&a, h2), h2);
    assert_ne!(b.generation(), generation);
    assert_eq!(b.attached_hwpt().unwrap().id(), h2);
    assert!(Arc::ptr_eq(&b.current_domain(), &a.current_domain()));
    assert_eq!(r.users(h1), 0);
    drop(r.table.destroy(h1.raw()).unwrap());
    // The group stays attached while one of its devices is.
    assert!(a.detach(&r.table));
    assert_eq!(a.current_domain().domain_type(), DomainType::Paging);
    assert_eq!(a.group().attached_devices(), 1);
    assert!(b.detach(&r.table));
    assert_eq!(a.current_domain().domain_type(), DomainType::Blocked);
    assert!(a.group().hwpt().is_none());
    // Automatic domains: the group's second device finds the first one's.
    let auto = r.attach(&a, ioas_id);
    assert_eq!(r.attach(&b, ioas_id), auto);
    assert!(b.detach(&r.table));
    assert!(r.hwpts().contains(&auto), "a still uses it");
    assert!(a.detach(&r.table));
    assert!(!r.hwpts().contains(&auto));
    drop(r.table.destroy(h2.raw()).unwrap());
    assert_eq!(r.groups.live(), 1);
    drop((a, b));
    assert_eq!(r.groups.live(), 0);
    r.assert_baseline();
}

#[test]
fn an_automatic_domain_is_reused_only_by_devices_it_suits() {
    let r = rig();
    let buf = Buffer::new(2, 0x99);
    let (ioas_id, ioas) = r.ioas();
    r.map(&ioas, &buf, Iova::new(0x40_0000), 2 * PAGE);
    let wide = Device::bind(&r.groups, &r.iommu, GroupId(1), 0x08, five_level()).unwrap();
    let narrow = r.device(2, 0x10);
    let h_wide = r.attach(&wide, ioas_id);
    assert_eq!(wide.current_domain().address_width(), 57);
    // The 57-bit domain is too wide for a 48-bit IOMMU: EINVAL, so a new automatic domain.
    let h_narrow = r.attach(&narrow, ioas_id);
    assert_ne!(h_narrow, h_wide);
    assert_eq!(narrow.current_domain().address_width(), 48);
    assert_eq!(
        ioas.domain_count(),
        2,
        "one IOAS, two domains, both carry its mapping"
    );
    let err = narrow.replace(&r.table, r.target(h_wide)).unwrap_err();
    assert!(matches!(err, DeviceError::TooWide { .. }));
    // A device behind another IOMMU unit never shares a domain with these.
    let iommu2 = Arc::new(Iommu::new(Arc::clone(&r.mem)));
    let elsewhere = Device::bind(&r.groups, &iommu2, GroupId(3), 0x18, DomainConfig::default()).unwrap();
    let err = elsewhere.attach(&r.table, r.target(h_narrow)).unwrap_err();
    assert!(matches!(err, DeviceError::OtherIommu { .. }));
    assert_eq!(err.errno(), Errno::INVAL);
    let h3 = r.attach(&elsewhere, ioas_id);
    assert!(![h_wide, h_narrow].contains(&h3));
    assert_eq!(iommu2.domain_count(), 1);
    for dev in [&wide, &narrow, &elsewhere] {
        let mut byte = [0u8; 1];
        dev.port().0.read(Iova::new(0x40_1000), &mut byte).unwrap();
        assert_eq!(byte[0], 0x99);
    }
    assert_eq!(r.account.locked_pages(), 2, "three domains, pinned once");
    // A group lives behind one IOMMU.
    let err = Device::bind(&r.groups, &iommu2, GroupId(1), 0x09, DomainConfig::default()).unwrap_err();
    assert!(matches!(err, DeviceError::GroupIommu { group: GroupId(1) }));
    assert_eq!(err.errno(), Errno::INVAL);
    for dev in [&wide, &narrow, &elsewhere] {
        assert!(dev.detach(&r.table));
    }
    assert!(r.hwpts().is_empty());
    drop((wide, narrow, elsewhere));
    assert_eq!(iommu2.domain_count(), 0);
    r.assert_baseline();
}

/// `iopt_table_add_domain()` reserves the IOVA space beyond the domain's width; an area already
/// there makes the attach fail with `EADDRINUSE`, and nothing of the attempt stays.
#[test]
fn an_area_beyond_the_domain_width_refuses_the_attach() {
    let r = rig();
    let buf = Buffer::new(1, 0x17);
    let (ioas_id, ioas) = r.ioas();
    let high = r.map(&ioas, &buf, Iova::new(1 << 50), PAGE);
    let narrow = r.device(1, 0x08);
    let err = narrow.attach(&r.table, r.target(ioas_id)).unwrap_err();
    assert!(matches!(err, DeviceError::Hwpt(_)), "{err}");
    assert_eq!(err.errno(), Errno::ADDRINUSE);
    assert!(r.hwpts().is_empty());
    assert!(r.table.reserved().is_empty());
    assert_eq!(ioas.domain_count(), 0);
    assert_eq!(r.users(ioas_id), 0);
    assert_eq!(r.account.locked_pages(), 0);
    assert_eq!(narrow.current_domain().domain_type(), DomainType::Blocked);
    assert_eq!(
        ioas.iova_ranges().0,
        vec![IovaRange::full()],
        "no reservation left"
    );
    // A 5-level IOMMU's domain reaches it.
    let wide = Device::bind(&r.groups, &r.iommu, GroupId(2), 0x10, five_level()).unwrap();
    r.attach(&wide, ioas_id);
    let mut byte = [0u8; 1];
    wide.port().0.read(high.start(), &mut byte).unwrap();
    assert_eq!(byte[0], 0x17);
    assert!(wide.detach(&r.table));
    drop((wide, narrow));
    r.assert_baseline();
}
