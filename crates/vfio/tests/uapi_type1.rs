//! `VFIO_IOMMU_MAP_DMA` / `VFIO_IOMMU_UNMAP_DMA`: round trips and errno tables, each case named
//! after the check of `vfio_iommu_type1.c` or `vfio_compat.c` it exercises.

mod common;

use common::{bytes_of, expect_errno, u32_at, u64_at, with_room};
use proptest::prelude::*;
use rustix::io::Errno;
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_UNMAP_FLAG_ALL,
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_VADDR, VfioBitmap, VfioIommuType1DmaMap,
    VfioIommuType1DmaUnmap,
};
use uvfio_types::{Access, Alignment, HostVa, Iova, IovaRange};
use uvfio_vfio::uapi::type1::{
    DIRTY_BITMAP_SIZE_MAX, MapDma, MapFlags, Type1Backend, Type1MapOp, UnmapDma, UnmapFlags, UnmapTarget,
    min_pgsize,
};

const SZ_4K: u64 = 4096;
const PG: Alignment = match Alignment::new(SZ_4K) {
    Ok(a) => a,
    Err(_) => panic!("4 KiB is a power of two"),
};
const RW: u32 = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

fn map(flags: u32, vaddr: u64, iova: u64, size: u64) -> Vec<u8> {
    bytes_of(&VfioIommuType1DmaMap {
        argsz: 32,
        flags,
        vaddr,
        iova,
        size,
    })
}

fn unmap(flags: u32, iova: u64, size: u64) -> VfioIommuType1DmaUnmap {
    VfioIommuType1DmaUnmap {
        argsz: 24,
        flags,
        iova,
        size,
    }
}

fn unmap_with_bitmap(iova: u64, size: u64, bitmap: VfioBitmap) -> Vec<u8> {
    let mut v = bytes_of(&VfioIommuType1DmaUnmap {
        argsz: 48,
        ..unmap(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, iova, size)
    });
    v.extend_from_slice(bytes_of(&bitmap).as_slice());
    v
}

#[test]
fn map_round_trip_type1() {
    let cmd = MapDma::decode(
        &map(RW, 0x7f00_0000_0000, 0x10_0000, 0x20_0000),
        Type1Backend::Type1,
    )
    .unwrap();
    assert_eq!(cmd.flags, MapFlags::READ | MapFlags::WRITE);
    assert_eq!(
        (cmd.vaddr, cmd.iova, cmd.size),
        (HostVa::new(0x7f00_0000_0000), Iova::new(0x10_0000), 0x20_0000)
    );
    let checked = cmd.type1_checks().unwrap();
    assert_eq!(checked.op, Type1MapOp::Map(Access::RW));
    assert_eq!(
        checked.iova,
        IovaRange::new(Iova::new(0x10_0000), Iova::new(0x2f_ffff)).unwrap()
    );
    checked.check_alignment(PG).unwrap();
    // A longer argsz is room, not E2BIG; the bytes past minsz are not looked at.
    let mut long = with_room(
        &VfioIommuType1DmaMap {
            argsz: 64,
            flags: VFIO_DMA_MAP_FLAG_READ,
            vaddr: 0x1000,
            iova: 0x2000,
            size: 0x1000,
        },
        32,
    );
    long[40] = 0xff;
    let cmd = MapDma::decode(&long, Type1Backend::Type1).unwrap();
    assert_eq!(cmd.type1_checks().unwrap().op, Type1MapOp::Map(Access::READ));
}

#[test]
fn map_vaddr_update_round_trip() {
    let cmd = MapDma::decode(
        &map(VFIO_DMA_MAP_FLAG_VADDR, 0x5000, 0x1000, 0x1000),
        Type1Backend::Type1,
    )
    .unwrap();
    assert_eq!(cmd.type1_checks().unwrap().op, Type1MapOp::UpdateVaddr);
}

#[test]
fn map_compat_round_trip() {
    let cmd = MapDma::decode(
        &map(VFIO_DMA_MAP_FLAG_WRITE, 0x5000, 0x1000, 0x1000),
        Type1Backend::IommufdCompat,
    )
    .unwrap();
    assert_eq!(cmd.access(), Access::WRITE);
}

#[test]
fn map_errno_table() {
    let t1 = Type1Backend::Type1;
    let compat = Type1Backend::IommufdCompat;
    let mut short_argsz = map(RW, 0x1000, 0x1000, 0x1000);
    short_argsz[0] = 31;
    // copy_from_user(&map, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        MapDma::decode(&map(RW, 0, 0, 0)[..31], t1),
        Errno::FAULT,
    );
    // map.argsz < minsz → -EINVAL
    expect_errno(
        "argsz_below_minsz",
        MapDma::decode(&short_argsz, t1),
        Errno::INVAL,
    );
    expect_errno(
        "argsz_below_minsz_compat",
        MapDma::decode(&short_argsz, compat),
        Errno::INVAL,
    );
    // map.flags & ~mask → -EINVAL, every unknown bit
    for bit in 3..32 {
        let bytes = map(RW | 1 << bit, 0x1000, 0x1000, 0x1000);
        expect_errno(
            &format!("unknown_flag_bit_{bit}"),
            MapDma::decode(&bytes, t1),
            Errno::INVAL,
        );
        expect_errno(
            &format!("unknown_flag_bit_{bit}_compat"),
            MapDma::decode(&bytes, compat),
            Errno::INVAL,
        );
    }
    // compat: supported_flags = READ | WRITE
    expect_errno(
        "compat_vaddr_flag_unsupported",
        MapDma::decode(&map(VFIO_DMA_MAP_FLAG_VADDR, 0x1000, 0x1000, 0x1000), compat),
        Errno::INVAL,
    );

    let checks = |flags, vaddr, iova, size| {
        MapDma::decode(&map(flags, vaddr, iova, size), t1)
            .unwrap()
            .type1_checks()
    };
    // if (!size) return -EINVAL;
    expect_errno("do_map_size_zero", checks(RW, 0x1000, 0x1000, 0), Errno::INVAL);
    // check_add_overflow(iova, size - 1, &iova_end) → -EOVERFLOW
    expect_errno(
        "do_map_iova_overflow",
        checks(RW, 0x1000, u64::MAX - 0xfff, 0x2000),
        Errno::OVERFLOW,
    );
    // check_add_overflow(vaddr, size - 1, &vaddr_end) → -EOVERFLOW
    expect_errno(
        "do_map_vaddr_overflow",
        checks(RW, u64::MAX - 0xfff, 0x1000, 0x2000),
        Errno::OVERFLOW,
    );
    // (!prot && !set_vaddr) → -EINVAL
    expect_errno(
        "do_map_no_prot_no_vaddr",
        checks(0, 0x1000, 0x1000, 0x1000),
        Errno::INVAL,
    );
    // (prot && set_vaddr) → -EINVAL
    for prot in [VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, RW] {
        expect_errno(
            "do_map_prot_with_vaddr",
            checks(prot | VFIO_DMA_MAP_FLAG_VADDR, 0x1000, 0x1000, 0x1000),
            Errno::INVAL,
        );
    }
    // Order: size 0 comes before the prot check, overflow before it too.
    expect_errno(
        "order_size_zero_before_prot",
        checks(0, 0x1000, 0x1000, 0),
        Errno::INVAL,
    );
    expect_errno(
        "order_overflow_before_prot",
        checks(0, 0x1000, u64::MAX, 2),
        Errno::OVERFLOW,
    );
    // Order: overflow is checked before alignment (a misaligned, overflowing map is EOVERFLOW).
    expect_errno(
        "order_overflow_before_alignment",
        checks(RW, 0x1001, u64::MAX, 2),
        Errno::OVERFLOW,
    );

    // if ((size | iova | vaddr) & (pgsize - 1)) → -EINVAL
    let aligned = |vaddr, iova, size| checks(RW, vaddr, iova, size).unwrap().check_alignment(PG);
    expect_errno(
        "do_map_size_misaligned",
        aligned(0x1000, 0x1000, 0x1800),
        Errno::INVAL,
    );
    expect_errno(
        "do_map_iova_misaligned",
        aligned(0x1000, 0x1200, 0x1000),
        Errno::INVAL,
    );
    expect_errno(
        "do_map_vaddr_misaligned",
        aligned(0x1010, 0x1000, 0x1000),
        Errno::INVAL,
    );
    aligned(0x1000, 0x1000, 0x1000).unwrap();
}

#[test]
fn selftest_vfio_dma_map_limit_test() {
    // tools/testing/selftests/vfio/vfio_dma_mapping_test.c, vfio_dma_map_limit_test: a page at
    // the last IOVA maps and unmaps; two pages there overflow, for map and unmap alike.
    let last_page = !(SZ_4K - 1);
    let cmd = MapDma::decode(&map(RW, 0x7000_0000, last_page, SZ_4K), Type1Backend::Type1).unwrap();
    let checked = cmd.type1_checks().unwrap();
    checked.check_alignment(PG).unwrap();
    assert_eq!(checked.iova.last(), Iova::MAX);
    let un = UnmapDma::decode(&bytes_of(&unmap(0, last_page, SZ_4K)), Type1Backend::Type1).unwrap();
    assert_eq!(
        un.type1_target(PG).unwrap(),
        UnmapTarget::Range(IovaRange::from_start_len(Iova::new(last_page), SZ_4K).unwrap())
    );
    // overflow: region->iova = ~(iova_t)0 & ~(region->size - 1); region->size = 2 pages
    let cmd = MapDma::decode(&map(RW, 0x7000_0000, last_page, 2 * SZ_4K), Type1Backend::Type1).unwrap();
    expect_errno("limit_test_overflow_map", cmd.type1_checks(), Errno::OVERFLOW);
    let un = UnmapDma::decode(&bytes_of(&unmap(0, last_page, 2 * SZ_4K)), Type1Backend::Type1).unwrap();
    expect_errno("limit_test_overflow_unmap", un.type1_target(PG), Errno::OVERFLOW);
    let un = UnmapDma::decode(
        &bytes_of(&unmap(0, last_page, 2 * SZ_4K)),
        Type1Backend::IommufdCompat,
    )
    .unwrap();
    expect_errno(
        "limit_test_overflow_unmap_compat",
        un.compat_target(),
        Errno::OVERFLOW,
    );
}

#[test]
fn unmap_round_trip_returns_the_unmapped_size() {
    let cmd = UnmapDma::decode(&bytes_of(&unmap(0, 0x10_0000, 0x20_0000)), Type1Backend::Type1).unwrap();
    assert_eq!(cmd.flags, UnmapFlags::empty());
    assert_eq!(cmd.bitmap, None);
    assert_eq!(
        cmd.type1_target(PG).unwrap(),
        UnmapTarget::Range(IovaRange::from_start_len(Iova::new(0x10_0000), 0x20_0000).unwrap())
    );
    let mut user = with_room(&unmap(0, 0x10_0000, 0x20_0000), 8);
    user[24..].fill(0xaa);
    cmd.encode_reply(0x1000, &mut user).unwrap();
    assert_eq!((u32_at(&user, 0), u32_at(&user, 4)), (24, 0));
    assert_eq!((u64_at(&user, 8), u64_at(&user, 16)), (0x10_0000, 0x1000));
    assert_eq!(&user[24..], &[0xaa; 8], "only minsz bytes are written back");
    expect_errno(
        "reply_copy_to_user",
        cmd.encode_reply(0, &mut [0u8; 23]),
        Errno::FAULT,
    );
}

#[test]
fn unmap_all_round_trip() {
    for backend in [Type1Backend::Type1, Type1Backend::IommufdCompat] {
        let cmd = UnmapDma::decode(&bytes_of(&unmap(VFIO_DMA_UNMAP_FLAG_ALL, 0, 0)), backend).unwrap();
        assert_eq!(cmd.flags, UnmapFlags::ALL);
        let target = match backend {
            Type1Backend::Type1 => cmd.type1_target(PG),
            Type1Backend::IommufdCompat => cmd.compat_target(),
        };
        assert_eq!(target.unwrap(), UnmapTarget::All);
    }
    // ALL | VADDR invalidates every vaddr (type1 only).
    let cmd = UnmapDma::decode(
        &bytes_of(&unmap(VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR, 0, 0)),
        Type1Backend::Type1,
    )
    .unwrap();
    assert_eq!(cmd.type1_target(PG).unwrap(), UnmapTarget::All);
}

#[test]
fn unmap_dirty_bitmap_round_trip() {
    let bitmap = VfioBitmap {
        pgsize: SZ_4K,
        size: 8,
        data: 0x7000_0000,
    };
    let cmd = UnmapDma::decode(
        &unmap_with_bitmap(0x10_0000, 64 * SZ_4K, bitmap),
        Type1Backend::Type1,
    )
    .unwrap();
    let got = cmd.bitmap.unwrap();
    assert_eq!((got.pgsize, got.size, got.data.0), (SZ_4K, 8, 0x7000_0000));
}

#[test]
fn unmap_errno_table() {
    let t1 = Type1Backend::Type1;
    let compat = Type1Backend::IommufdCompat;
    let decode = |flags, iova, size, backend| UnmapDma::decode(&bytes_of(&unmap(flags, iova, size)), backend);
    // copy_from_user(&unmap, arg, minsz) → -EFAULT
    expect_errno(
        "copy_from_user_minsz",
        UnmapDma::decode(&[0u8; 23], t1),
        Errno::FAULT,
    );
    // unmap.argsz < minsz → -EINVAL
    let short = VfioIommuType1DmaUnmap {
        argsz: 23,
        ..unmap(0, 0x1000, 0x1000)
    };
    expect_errno(
        "argsz_below_minsz",
        UnmapDma::decode(&bytes_of(&short), t1),
        Errno::INVAL,
    );
    // unmap.flags & ~mask → -EINVAL
    for bit in 3..32 {
        expect_errno(
            &format!("unknown_flag_bit_{bit}"),
            decode(1 << bit, 0, 0x1000, t1),
            Errno::INVAL,
        );
    }
    // compat: supported_flags = VFIO_DMA_UNMAP_FLAG_ALL
    for flag in [VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_VADDR] {
        expect_errno(
            "compat_unsupported_flag",
            decode(flag, 0, 0x1000, compat),
            Errno::INVAL,
        );
    }
    // (GET_DIRTY_BITMAP) && (ALL | VADDR) → -EINVAL
    for other in [VFIO_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_VADDR] {
        expect_errno(
            "dirty_bitmap_with_all_or_vaddr",
            decode(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | other, 0, 0, t1),
            Errno::INVAL,
        );
    }
    // GET_DIRTY_BITMAP: unmap.argsz < minsz + sizeof(bitmap) → -EINVAL
    let good = VfioBitmap {
        pgsize: SZ_4K,
        size: 8,
        data: 0x7000_0000,
    };
    for argsz in [24, 47] {
        let mut bytes = unmap_with_bitmap(0, 64 * SZ_4K, good);
        bytes[0..4].copy_from_slice(&u32::to_ne_bytes(argsz));
        expect_errno(
            "dirty_bitmap_argsz_below_bitmap",
            UnmapDma::decode(&bytes, t1),
            Errno::INVAL,
        );
    }
    // copy_from_user(&bitmap, arg + minsz, sizeof(bitmap)) → -EFAULT
    let bytes = unmap_with_bitmap(0, 64 * SZ_4K, good);
    expect_errno(
        "dirty_bitmap_copy_from_user",
        UnmapDma::decode(&bytes[..40], t1),
        Errno::FAULT,
    );
    // !access_ok(bitmap.data, bitmap.size) → -EINVAL
    for (data, size) in [(u64::MAX - 3, 8), (1 << 47, 8)] {
        let bytes = unmap_with_bitmap(0, 64 * SZ_4K, VfioBitmap { data, size, ..good });
        expect_errno(
            "dirty_bitmap_not_access_ok",
            UnmapDma::decode(&bytes, t1),
            Errno::INVAL,
        );
    }
    // verify_bitmap_size(): !npages || !bitmap_size || > DIRTY_BITMAP_SIZE_MAX || < bytes(npages)
    let rows = [
        ("verify_bitmap_size_npages_zero", 0, 8, SZ_4K),
        ("verify_bitmap_size_bitmap_size_zero", 64 * SZ_4K, 0, SZ_4K),
        (
            "verify_bitmap_size_above_max",
            64 * SZ_4K,
            DIRTY_BITMAP_SIZE_MAX + 1,
            SZ_4K,
        ),
        ("verify_bitmap_size_too_small", 65 * SZ_4K, 8, SZ_4K),
        ("verify_bitmap_size_pgsize_zero", 64 * SZ_4K, 8, 0),
    ];
    for (case, size, bitmap_size, pgsize) in rows {
        let bytes = unmap_with_bitmap(
            0,
            size,
            VfioBitmap {
                pgsize,
                size: bitmap_size,
                ..good
            },
        );
        expect_errno(case, UnmapDma::decode(&bytes, t1), Errno::INVAL);
    }
    assert_eq!(DIRTY_BITMAP_SIZE_MAX, 0x1000_0000);

    // vfio_dma_do_unmap() under the lock, pgsize 4 KiB:
    let target = |flags, iova, size| decode(flags, iova, size, t1).unwrap().type1_target(PG);
    // if (iova & (pgsize - 1)) → -EINVAL
    expect_errno(
        "do_unmap_iova_misaligned",
        target(0, 0x1200, 0x1000),
        Errno::INVAL,
    );
    // unmap_all: if (iova || size) → -EINVAL
    expect_errno(
        "do_unmap_all_nonzero_iova",
        target(VFIO_DMA_UNMAP_FLAG_ALL, 0x1000, 0),
        Errno::INVAL,
    );
    expect_errno(
        "do_unmap_all_nonzero_size",
        target(VFIO_DMA_UNMAP_FLAG_ALL, 0, 0x1000),
        Errno::INVAL,
    );
    // if (!size || size & (pgsize - 1)) → -EINVAL
    expect_errno("do_unmap_size_zero", target(0, 0x1000, 0), Errno::INVAL);
    expect_errno(
        "do_unmap_size_misaligned",
        target(0, 0x1000, 0x1800),
        Errno::INVAL,
    );
    // check_add_overflow(iova, size - 1, &iova_end) → -EOVERFLOW
    expect_errno(
        "do_unmap_overflow",
        target(0, u64::MAX - 0xfff, 0x2000),
        Errno::OVERFLOW,
    );
    // Order: a misaligned iova is EINVAL even if the range also overflows.
    expect_errno(
        "order_alignment_before_overflow",
        target(0, u64::MAX - 0x7ff, 0x2000),
        Errno::INVAL,
    );

    // iommufd_vfio_unmap_dma() / iopt_unmap_iova():
    let compat_target = |flags, iova, size| decode(flags, iova, size, compat).unwrap().compat_target();
    // if (unmap.iova != 0 || unmap.size != 0) → -EINVAL
    expect_errno(
        "compat_all_nonzero_iova",
        compat_target(VFIO_DMA_UNMAP_FLAG_ALL, 0x1000, 0),
        Errno::INVAL,
    );
    expect_errno(
        "compat_all_nonzero_size",
        compat_target(VFIO_DMA_UNMAP_FLAG_ALL, 0, 1),
        Errno::INVAL,
    );
    // if (!length) return -EINVAL;
    expect_errno(
        "iopt_unmap_iova_length_zero",
        compat_target(0, 0x1000, 0),
        Errno::INVAL,
    );
    // check_add_overflow(iova, length - 1, &iova_last) → -EOVERFLOW
    expect_errno(
        "iopt_unmap_iova_overflow",
        compat_target(0, u64::MAX, 2),
        Errno::OVERFLOW,
    );
    // The compat layer has no page-size check of its own here.
    assert!(matches!(
        compat_target(0, 0x1200, 0x10),
        Ok(UnmapTarget::Range(_))
    ));
}

#[test]
fn min_pgsize_is_the_lowest_bit() {
    assert_eq!(min_pgsize(0x4020_1000).map(Alignment::bytes), Some(0x1000));
    assert_eq!(min_pgsize(!0xfff).map(Alignment::bytes), Some(0x1000));
    assert_eq!(min_pgsize(0), None);
}

proptest! {
    /// type1's map checks agree with a model written in 128-bit arithmetic.
    #[test]
    fn type1_map_checks_match_a_wide_model(
        vaddr in prop_oneof![any::<u64>(), (0u64..0x100).prop_map(|p| p << 12), Just(!0xfffu64)],
        iova in prop_oneof![any::<u64>(), (0u64..0x100).prop_map(|p| p << 12), Just(!0xfffu64)],
        size in prop_oneof![any::<u64>(), (0u64..4).prop_map(|p| p << 12), Just(0u64)],
        flags in 0u32..8,
    ) {
        let cmd = MapDma::decode(&map(flags, vaddr, iova, size), Type1Backend::Type1).unwrap();
        let result = cmd.type1_checks().and_then(|m| m.check_alignment(PG).map(|()| m));
        let prot = flags & RW != 0;
        let set_vaddr = flags & VFIO_DMA_MAP_FLAG_VADDR != 0;
        let wraps = |a: u64| u128::from(a) + u128::from(size) - 1 > u128::from(u64::MAX);
        let want = if size == 0 {
            Err(Errno::INVAL)
        } else if wraps(iova) || wraps(vaddr) {
            Err(Errno::OVERFLOW)
        } else if prot == set_vaddr || (size | iova | vaddr) % SZ_4K != 0 {
            Err(Errno::INVAL)
        } else {
            Ok(())
        };
        prop_assert_eq!(result.map(|_| ()).map_err(|e| e.errno()), want);
    }
}
