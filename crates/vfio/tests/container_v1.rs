//! Type1 (v1) on the compat layer: `VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)` disables large pages on the
//! compat IOAS (`iommufd_vfio_set_iommu()` → `iopt_disable_large_pages()`), and with them
//! disabled an unmap cuts the mappings at its ends first (`iommufd_vfio_unmap_dma()` →
//! `iopt_cut_iova()`), so it may take part of a mapping. The selftest `huge_map` over a device
//! whose domain maps 4 KiB pages (what Linux's domains do once large pages are disabled), DMA
//! across the cuts, and the refusal of `SET_IOMMU(TYPE1)` on an IOAS whose domains map pages.
//! Every test ends with the leak check.

mod container_support;

use container_support::*;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU};
use uvfio_iommu::{Domain, DomainConfig};
use uvfio_iommufd::ctx::UserMemory;
use uvfio_iommufd::device::GroupId;
use uvfio_iommufd::iova_space::Placement;
use uvfio_types::{Access, HostVa, Iova, PageSizes};
use uvfio_vfio::container::{CompatContext, ContainerConfig, GroupKind};

fn domain_4k() -> DomainConfig {
    DomainConfig {
        page_sizes: PageSizes::SZ_4K,
        ..DomainConfig::default()
    }
}

/// One group with one device whose IOMMU makes 4 KiB-only paging domains, set to `version`.
fn fixture(version: u32) -> (Arc<Ctx>, Cont, Arc<TestGroup>) {
    let ctx = Ctx::new();
    let c = container(&ctx, ContainerConfig::default());
    let g = Arc::new(TestGroup {
        id: GroupId(1),
        kind: GroupKind::Iommu,
        devices: vec![ctx.device(1, 8, domain_4k())],
    });
    c.attach_group(g.clone()).unwrap();
    set_iommu(&c, version).unwrap();
    (ctx, c, g)
}

fn teardown(ctx: Arc<Ctx>, c: Cont) {
    c.detach_group(GroupId(1)).unwrap();
    closed_clean(ctx, c);
}

#[test]
fn type1_disables_large_pages_type1v2_does_not() {
    for (version, disabled) in [(VFIO_TYPE1_IOMMU, true), (VFIO_TYPE1v2_IOMMU, false)] {
        let (ctx, c, _g) = fixture(version);
        assert_eq!(ctx.compat_ioas().large_pages_disabled(), disabled, "{version}");
        teardown(ctx, c);
    }
}

/// `TEST_F(vfio_compat_mock_domain, huge_map)`: "type1 mode can cut up larger mappings, type1v2
/// always fails".
#[test]
fn huge_map() {
    const HUGEPAGE: u64 = 2 << 20;
    for version in [VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU] {
        let buf_size = 2 * HUGEPAGE;
        let buffer = Buffer::aligned((buf_size / PAGE) as usize, HUGEPAGE as usize, 0);
        let (ctx, c, _g) = fixture(version);
        map(&c, buffer.va(), IOVA, buf_size).unwrap();
        let piece = buf_size / 16;
        let pinned = ctx.mm_account.locked_pages();
        let mut pieces: Vec<u64> = (0..16).map(|i| IOVA + i * piece).collect();
        // A fixed shuffle.
        pieces.swap(0, 9);
        pieces.swap(3, 14);
        pieces.swap(5, 11);
        let mut unmapped = 0;
        for iova in pieces {
            let (r, reply) = unmap_raw(&c, 0, iova, piece);
            if version == VFIO_TYPE1_IOMMU {
                assert_eq!(r, Ok(()), "v1 {iova:#x}");
                assert_eq!(reply.size, piece);
                unmapped += piece;
                assert_eq!(
                    ctx.mm_account.locked_pages(),
                    pinned - unmapped / PAGE,
                    "pins follow"
                );
            } else {
                assert_eq!(r, Err(Errno::NOENT), "v2 {iova:#x}");
                assert_eq!(reply.size, 0);
            }
        }
        if version == VFIO_TYPE1_IOMMU {
            assert!(areas(&ctx).is_empty());
        } else {
            assert_eq!(unmap(&c, IOVA, buf_size), Ok(buf_size));
        }
        teardown(ctx, c);
    }
}

/// A v1 unmap of the middle of a mapping leaves both ends mapped (and pinned) as areas of their
/// own.
#[test]
fn v1_hole_leaves_both_ends() {
    let buffer = Buffer::new(8, 0);
    let (ctx, c, _g) = fixture(VFIO_TYPE1_IOMMU);
    map(&c, buffer.va(), IOVA, 8 * PAGE).unwrap();
    assert_eq!(ctx.compat_ioas().domain_count(), 1);
    assert_eq!(unmap(&c, IOVA + 2 * PAGE, 3 * PAGE), Ok(3 * PAGE));
    assert_eq!(
        areas(&ctx),
        vec![range(IOVA, 2 * PAGE), range(IOVA + 5 * PAGE, 3 * PAGE)]
    );
    assert_eq!(ctx.mm_account.locked_pages(), 5);
    // The halves unmap one by one; the hole is ENOENT.
    assert_eq!(unmap(&c, IOVA + 2 * PAGE, 3 * PAGE), Err(Errno::NOENT));
    assert_eq!(unmap(&c, IOVA, 8 * PAGE), Ok(5 * PAGE));
    teardown(ctx, c);
}

/// `iommufd_vfio_set_iommu()`: `iopt_disable_large_pages()` fails with `EINVAL` when the compat
/// IOAS's domains already map pages ("Won't do it if domains already have pages mapped in
/// them"); type1v2 does not ask, and succeeds.
#[test]
fn set_iommu_type1_on_a_mapped_domain_is_einval() {
    for (version, want) in [
        (VFIO_TYPE1_IOMMU, Err(Errno::INVAL)),
        (VFIO_TYPE1v2_IOMMU, Ok(())),
    ] {
        let buffer = Buffer::new(4, 0);
        let ctx = Ctx::new();
        let (id, ioas) = ctx.user_ioas();
        let domain = Domain::new_paging(Arc::clone(&ctx.mem), domain_4k()).unwrap();
        ioas.attach_domain(Arc::clone(&domain)).unwrap();
        ioas.map(
            buffer_user(&buffer),
            Placement::Fixed(Iova::new(IOVA)),
            Access::RW,
        )
        .unwrap();
        ctx.set_vfio_ioas(Some(id));
        let c = container(&ctx, ContainerConfig::default());
        let g = group(&ctx, 1, 1);
        c.attach_group(g).unwrap();
        assert_eq!(set_iommu(&c, version), want, "{version}");
        assert!(!ioas.large_pages_disabled(), "nothing changed");
        ioas.try_unmap_all().unwrap();
        ioas.detach_domain(&domain).unwrap();
        drop(ioas);
        teardown(ctx, c);
    }
}

fn buffer_user(buffer: &Buffer) -> uvfio_memory::UserBuffer {
    UserMemory::buffer(&TestUser, HostVa::new(buffer.va()), buffer.len() as u64)
}
