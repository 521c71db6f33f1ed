//! `VFIO_IOMMU_GET_INFO`, `VFIO_IOMMU_MAP_DMA` and `VFIO_IOMMU_UNMAP_DMA` on a set container,
//! run for both variants of the selftest fixture `vfio_compat_mock_domain` (`Ver1v2` =
//! `VFIO_TYPE1v2_IOMMU`, `Ver1v0` = `VFIO_TYPE1_IOMMU`): one group with one device, attached to
//! the compat IOAS. Tests named after the selftests (`simple_close`, `get_info`, `map`,
//! `huge_map`) follow them step by step; the others pin down the type1 v1/v2 unmap table,
//! `UNMAP_FLAG_ALL`, the errno table of a map, `dma_avail`, type1's 65 535-mapping limit, and DMA
//! through the device's domain. Every test ends with the leak check.

mod container_support;

use container_support::*;
// `get_info` and `map` are the selftests' names here; the helpers are called by path.
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{
    VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_UNMAP_FLAG_ALL,
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_VADDR, VFIO_IOMMU_INFO_CAPS,
    VFIO_IOMMU_INFO_PGSIZES, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
    VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
};
use uvfio_iommufd::device::GroupId;
use uvfio_types::Iova;
use uvfio_vfio::container::{ContainerConfig, DMA_AVAIL_UNLIMITED, DMA_ENTRY_LIMIT};
use uvfio_vfio::uapi::cap_headers;

/// The fixture's variants.
const VERSIONS: [u32; 2] = [VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU];

/// The selftest's `BUFFER_SIZE` in pages.
const BUFFER_PAGES: usize = 16;
const BUFFER_SIZE: u64 = BUFFER_PAGES as u64 * PAGE;

/// `FIXTURE_SETUP(vfio_compat_mock_domain)`: a group with one device, joined and set to `version`.
fn fixture_with(version: u32, config: ContainerConfig) -> (Arc<Ctx>, Cont, Arc<TestGroup>) {
    let ctx = Ctx::new();
    let c = container(&ctx, config);
    let g = group(&ctx, 1, 1);
    c.attach_group(g.clone()).unwrap();
    set_iommu(&c, version).unwrap();
    (ctx, c, g)
}

fn fixture(version: u32) -> (Arc<Ctx>, Cont, Arc<TestGroup>) {
    fixture_with(version, ContainerConfig::default())
}

/// `FIXTURE_TEARDOWN`: the group leaves, the context closes, nothing is left.
fn teardown(ctx: Arc<Ctx>, c: Cont) {
    c.detach_group(GroupId(1)).unwrap();
    closed_clean(ctx, c);
}

/// A fixed shuffle (the selftest's `shuffle_array` with a deterministic generator).
fn shuffled(mut v: Vec<u64>) -> Vec<u64> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..v.len() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let other = i + (seed % (v.len() - i) as u64) as usize;
        v.swap(i, other);
    }
    v
}

#[test]
fn simple_close() {
    for version in VERSIONS {
        let (ctx, c, _g) = fixture(version);
        teardown(ctx, c);
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap())
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap())
}

/// `check_vfio_info_cap_chain()`: every capability of the chain lies inside `argsz`, links
/// forward, and is one of the two the compat layer writes, with the selftest's checks.
fn check_cap_chain(buf: &[u8], argsz: u32, cap_offset: u32) {
    let headers = cap_headers(&buf[..argsz as usize], cap_offset);
    assert_eq!(headers.len(), 2, "both capabilities");
    for (i, (at, header)) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(argsz as usize, |(next, _)| *next);
        assert_eq!(header.version, 1);
        match header.id {
            VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL => {
                assert_eq!(end - at, 16, "sizeof(struct vfio_iommu_type1_info_dma_avail)");
                assert_eq!(u32_at(buf, at + 8), DMA_ENTRY_LIMIT);
            }
            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE => {
                assert_eq!(u32_at(buf, at + 8), 1, "nr_iovas");
                // A 4-level domain translates 48 bits; the rest is reserved.
                assert_eq!(u64_at(buf, at + 16), 0);
                assert_eq!(u64_at(buf, at + 24), (1 << 48) - 1);
            }
            other => panic!("unexpected capability {other}"),
        }
    }
}

#[test]
fn get_info() {
    const FLAGS: u32 = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
    for version in VERSIONS {
        let (ctx, c, _g) = fixture(version);
        // Pre-cap ABI: argsz = offsetof(struct vfio_iommu_type1_info, cap_offset).
        let (r, buf) = container_support::get_info(&c, 16);
        r.unwrap();
        assert!(buf[16..].iter().all(|&b| b == 0xAA), "nothing past argsz");
        // Every page size of the domain, 4 KiB, 2 MiB and 1 GiB.
        assert_eq!(u64_at(&buf, 8), (1 << 12) | (1 << 21) | (1 << 30));
        assert_eq!(u32_at(&buf, 4), FLAGS);

        // Read the cap chain size.
        let (r, buf) = container_support::get_info(&c, 24);
        r.unwrap();
        assert!(buf[24..].iter().all(|&b| b == 0xAA));
        assert_eq!(u32_at(&buf, 4), FLAGS);
        assert_eq!(u32_at(&buf, 16), 0, "cap_offset: the chain did not fit");
        let caplen = u32_at(&buf, 0);
        // 24 + DMA_AVAIL (16) + IOVA_RANGE with one range (16 + 16).
        assert_eq!(caplen, 72);

        // Read the caps: "kernel should never create a corrupted caps".
        for argsz in 24..=caplen {
            let (r, buf) = container_support::get_info(&c, argsz);
            r.unwrap();
            assert!(buf[argsz as usize..].iter().all(|&b| b == 0xAA), "argsz {argsz}");
            assert_eq!(u32_at(&buf, 4), FLAGS);
            assert_eq!(u32_at(&buf, 0), caplen, "argsz reports the whole chain");
            let cap_offset = u32_at(&buf, 16);
            if cap_offset != 0 {
                assert_eq!(argsz, caplen, "cap_offset only once everything fits");
                check_cap_chain(&buf, argsz, cap_offset);
            }
        }
        teardown(ctx, c);
    }
}

#[test]
fn map() {
    for version in VERSIONS {
        let buffer = Buffer::new(BUFFER_PAGES, 0);
        let (ctx, c, _g) = fixture(version);
        // Simple map/unmap.
        container_support::map(&c, buffer.va(), IOVA, BUFFER_SIZE).unwrap();
        assert_eq!(unmap(&c, IOVA, BUFFER_SIZE), Ok(BUFFER_SIZE));

        // UNMAP_FLAG_ALL requires 0 iova/size.
        container_support::map(&c, buffer.va(), IOVA, BUFFER_SIZE).unwrap();
        let (r, _) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, IOVA, BUFFER_SIZE);
        assert_eq!(r, Err(Errno::INVAL));
        let (r, reply) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
        r.unwrap();
        assert_eq!(reply.size, BUFFER_SIZE);

        // Small pages.
        let pages: Vec<u64> = (0..BUFFER_PAGES as u64).map(|i| IOVA + i * PAGE).collect();
        for (i, &iova) in pages.iter().enumerate() {
            container_support::map(&c, buffer.va() + i as u64 * PAGE, iova, PAGE).unwrap();
        }
        for iova in shuffled(pages) {
            assert_eq!(unmap(&c, iova, PAGE), Ok(PAGE));
        }
        assert!(areas(&ctx).is_empty());
        teardown(ctx, c);
    }
}

/// `TEST_F(vfio_compat_mock_domain, huge_map)`: "type1 mode can cut up larger mappings, type1v2
/// always fails". `VFIO_TYPE1_IOMMU` disabled large pages on the compat IOAS, so the domain maps
/// 4 KiB leaves (Linux's `batch_iommu_map_small()`) and every piece can be cut out and unmapped.
#[test]
fn huge_map() {
    for version in VERSIONS {
        const HUGEPAGE: usize = 2 << 20;
        let buf_size = 2 * HUGEPAGE as u64;
        let buffer = Buffer::aligned(2 * HUGEPAGE / PAGE as usize, HUGEPAGE, 0);
        let (ctx, c, _g) = fixture(version);
        container_support::map(&c, buffer.va(), IOVA, buf_size).unwrap();
        let before = areas(&ctx);
        let pinned = ctx.mm_account.locked_pages();

        let piece = buf_size / 16;
        let pieces: Vec<u64> = (0..16).map(|i| IOVA + i * piece).collect();
        for iova in shuffled(pieces) {
            let (r, reply) = unmap_raw(&c, 0, iova, piece);
            if version == VFIO_TYPE1_IOMMU {
                assert_eq!(r.map(|()| reply.size), Ok(piece), "v1 {iova:#x}");
            } else {
                assert_eq!(r, Err(Errno::NOENT), "v2 {iova:#x}");
                assert_eq!(reply.size, 0, "the compat layer writes the reply after the unmap");
                assert_eq!(areas(&ctx), before, "nothing changed");
                assert_eq!(ctx.mm_account.locked_pages(), pinned);
            }
        }
        if version == VFIO_TYPE1_IOMMU {
            assert!(areas(&ctx).is_empty(), "every piece was cut out and unmapped");
            assert_eq!(ctx.mm_account.locked_pages(), 0);
        } else {
            assert_eq!(unmap(&c, IOVA, buf_size), Ok(buf_size));
        }
        teardown(ctx, c);
    }
}

/// One row of the v1/v2 unmap table, against mappings A = 4 pages at `IOVA`, B = the 4 pages
/// after A, C = 1 page at `IOVA + 16 pages`.
struct UnmapRow {
    case: &'static str,
    iova: u64,
    size: u64,
    /// type1v2: the bytes unmapped or the errno.
    v2: Result<u64, Errno>,
    /// type1 (v1), which cuts, as Linux's compat layer does.
    v1: Result<u64, Errno>,
}

fn unmap_rows() -> Vec<UnmapRow> {
    let p = PAGE;
    let row = |case, iova, size, v2, v1| UnmapRow {
        case,
        iova,
        size,
        v2,
        v1,
    };
    let noent = Err(Errno::NOENT);
    let inval = Err(Errno::INVAL);
    vec![
        row("exactly A", IOVA, 4 * p, Ok(4 * p), Ok(4 * p)),
        row("A and B", IOVA, 8 * p, Ok(8 * p), Ok(8 * p)),
        row("A, B, hole, C", IOVA, 17 * p, Ok(9 * p), Ok(9 * p)),
        row("hole and C", IOVA + 12 * p, 8 * p, Ok(p), Ok(p)),
        row("B alone", IOVA + 4 * p, 4 * p, Ok(4 * p), Ok(4 * p)),
        row("first page of A", IOVA, p, noent, Ok(p)),
        row("middle of A", IOVA + p, 2 * p, noent, Ok(2 * p)),
        row(
            "last page of A, first of B",
            IOVA + 3 * p,
            2 * p,
            noent,
            Ok(2 * p),
        ),
        row("A and half of B", IOVA, 6 * p, noent, Ok(6 * p)),
        row("hole only", IOVA + 10 * p, 2 * p, noent, noent),
        row("below everything", PAGE, PAGE, noent, noent),
        // iopt_unmap_iova(): if (!length) return -EINVAL;
        row("zero size", IOVA, 0, inval, inval),
        // The cut's alignment check and the v2 split check refuse it alike.
        row("unaligned inside A", IOVA + 1, p, noent, inval),
        // check_add_overflow(iova, length - 1, &iova_last): -EOVERFLOW.
        row(
            "wraps",
            u64::MAX - p + 1,
            2 * p,
            Err(Errno::OVERFLOW),
            Err(Errno::OVERFLOW),
        ),
    ]
}

fn mapped_bytes(areas: &[uvfio_types::IovaRange]) -> u64 {
    areas.iter().map(|r| r.len_minus_one() + 1).sum()
}

fn map_abc(c: &Cont, buffer: &Buffer) {
    container_support::map(c, buffer.va(), IOVA, 4 * PAGE).unwrap();
    container_support::map(c, buffer.va() + 4 * PAGE, IOVA + 4 * PAGE, 4 * PAGE).unwrap();
    container_support::map(c, buffer.va() + 8 * PAGE, IOVA + 16 * PAGE, PAGE).unwrap();
}

#[test]
fn unmap_table_type1_v1_vs_v2() {
    for version in VERSIONS {
        let buffer = Buffer::new(9, 0);
        let (ctx, c, _g) = fixture(version);
        for row in unmap_rows() {
            let (r, _) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
            r.unwrap();
            map_abc(&c, &buffer);
            let before = areas(&ctx);
            let pinned = ctx.mm_account.locked_pages();
            let (r, reply) = unmap_raw(&c, 0, row.iova, row.size);
            let got = r.map(|()| reply.size);
            let v1 = version == VFIO_TYPE1_IOMMU;
            let want = if v1 { row.v1 } else { row.v2 };
            assert_eq!(got, want, "{} (v1: {v1})", row.case);
            match got {
                Ok(bytes) => {
                    assert_eq!(
                        mapped_bytes(&before) - mapped_bytes(&areas(&ctx)),
                        bytes,
                        "{}",
                        row.case
                    );
                }
                Err(_) => {
                    assert_eq!(areas(&ctx), before, "{}: nothing changed", row.case);
                    assert_eq!(ctx.mm_account.locked_pages(), pinned, "{}: pins", row.case);
                    // A refused cut (an unaligned cut point) skips the reply; every refusal of
                    // the unmap itself writes size 0.
                    let refused_cut = v1 && got == Err(Errno::INVAL) && row.size != 0;
                    let reply_size = if refused_cut { row.size } else { 0 };
                    assert_eq!(reply.size, reply_size, "{}: reply", row.case);
                }
            }
        }
        teardown(ctx, c);
    }
}

#[test]
fn unmap_all_only_with_zero_iova_and_size() {
    for version in VERSIONS {
        let buffer = Buffer::new(9, 0);
        let (ctx, c, _g) = fixture(version);
        // Nothing mapped: UNMAP_ALL is fine and unmaps nothing (iopt_unmap_all() takes ENOENT as 0).
        let (r, reply) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
        assert_eq!(r.map(|()| reply.size), Ok(0));
        map_abc(&c, &buffer);
        let before = areas(&ctx);
        for (iova, size) in [(IOVA, 0), (0, PAGE), (IOVA, PAGE), (u64::MAX, u64::MAX)] {
            let (r, reply) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, iova, size);
            assert_eq!(r, Err(Errno::INVAL), "{iova:#x} {size:#x}");
            assert_eq!((reply.iova, reply.size), (iova, size), "goto err_put: no reply");
            assert_eq!(areas(&ctx), before);
        }
        // The flags the compat layer does not know (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP is
        // "obsoleted by the new dirty tracking direction").
        for flags in [
            VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
            VFIO_DMA_UNMAP_FLAG_VADDR,
            VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL,
            1 << 31,
        ] {
            let (r, _) = unmap_raw(&c, flags, 0, 0);
            assert_eq!(r, Err(Errno::INVAL), "flags {flags:#x}");
        }
        // Without the flag, 0/0 is an empty range.
        assert_eq!(unmap(&c, 0, 0), Err(Errno::INVAL));
        let (r, reply) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
        assert_eq!(r.map(|()| reply.size), Ok(9 * PAGE));
        assert!(areas(&ctx).is_empty());
        assert_eq!(ctx.mm_account.locked_pages(), 0);
        teardown(ctx, c);
    }
}

#[test]
fn map_errno_table() {
    for version in VERSIONS {
        let buffer = Buffer::new(4, 0);
        let (ctx, c, _g) = fixture(version);
        container_support::map(&c, buffer.va(), IOVA, PAGE).unwrap();
        let before = areas(&ctx);
        let pinned = ctx.mm_account.locked_pages();
        let va = buffer.va() + PAGE;
        let free = IOVA + 8 * PAGE;
        let rows: [(&str, u32, u64, u64, u64, Errno); 11] = [
            ("no access", 0, va, free, PAGE, Errno::INVAL),
            ("unknown flag", RW | 1 << 31, va, free, PAGE, Errno::INVAL),
            // The compat layer does not know VFIO_DMA_MAP_FLAG_VADDR.
            (
                "vaddr update",
                VFIO_DMA_MAP_FLAG_VADDR,
                va,
                free,
                PAGE,
                Errno::INVAL,
            ),
            ("zero size", RW, va, free, 0, Errno::INVAL),
            (
                "vaddr wraps",
                RW,
                u64::MAX - PAGE + 1,
                free,
                2 * PAGE,
                Errno::OVERFLOW,
            ),
            ("iova unaligned", RW, va, free + 1, PAGE, Errno::INVAL),
            ("size unaligned", RW, va, free, PAGE + 1, Errno::INVAL),
            (
                "iova wraps",
                RW,
                va,
                u64::MAX - PAGE + 1,
                2 * PAGE,
                Errno::OVERFLOW,
            ),
            ("beyond the domain's 48 bits", RW, va, 1 << 48, PAGE, Errno::INVAL),
            ("over a mapping", RW, va, IOVA, PAGE, Errno::EXIST),
            ("not the caller's memory", RW, PAGE, free, PAGE, Errno::FAULT),
        ];
        for (case, flags, vaddr, iova, size, want) in rows {
            assert_eq!(map_flags(&c, flags, vaddr, iova, size), Err(want), "{case}");
            assert_eq!(areas(&ctx), before, "{case}: nothing changed");
            assert_eq!(ctx.mm_account.locked_pages(), pinned, "{case}: pins");
        }
        // Read-only is a mapping.
        map_flags(&c, VFIO_DMA_MAP_FLAG_READ, va, free, PAGE).unwrap();
        assert_eq!(unmap(&c, IOVA, 16 * PAGE), Ok(2 * PAGE));
        teardown(ctx, c);
    }
}

#[test]
fn map_dma_reaches_the_device() {
    for version in VERSIONS {
        let buffer = Buffer::new(4, 0);
        let ro = Buffer::new(1, 0x5c);
        let (ctx, c, g) = fixture(version);
        let device = &g.devices[0];
        container_support::map(&c, buffer.va(), IOVA, 4 * PAGE).unwrap();
        map_flags(&c, VFIO_DMA_MAP_FLAG_READ, ro.va(), IOVA + 16 * PAGE, PAGE).unwrap();
        let (port, generation) = device.port();
        // The device writes: the bytes land in the driver's buffer.
        port.write(Iova::new(IOVA + PAGE + 5), b"hello").unwrap();
        let landed: Vec<u8> = (0..5).map(|i| buffer.byte(PAGE as usize + 5 + i)).collect();
        assert_eq!(landed, b"hello");
        // The driver writes: the device reads it.
        buffer.set(3 * PAGE as usize, 0x77);
        let mut byte = [0u8];
        port.read(Iova::new(IOVA + 3 * PAGE), &mut byte).unwrap();
        assert_eq!(byte, [0x77]);
        // Read-only for the device.
        port.read(Iova::new(IOVA + 16 * PAGE), &mut byte).unwrap();
        assert_eq!(byte, [0x5c]);
        assert!(port.write(Iova::new(IOVA + 16 * PAGE), &[1]).is_err());
        assert_eq!(ro.byte(0), 0x5c);
        // Unmapped: the device faults, even through the translation it used before.
        assert_eq!(unmap(&c, IOVA, 4 * PAGE), Ok(4 * PAGE));
        assert!(port.read(Iova::new(IOVA + 3 * PAGE), &mut byte).is_err());
        assert!(port.write(Iova::new(IOVA + PAGE), &[9]).is_err());
        assert_eq!(buffer.byte(PAGE as usize), 0);
        assert_eq!(device.generation(), generation, "the domain did not change");
        drop(port);
        teardown(ctx, c);
    }
}

#[test]
fn legacy_maps_charge_the_process() {
    let buffer = Buffer::new(4, 0);
    let (ctx, c, _g) = fixture(VFIO_TYPE1v2_IOMMU);
    container_support::map(&c, buffer.va(), IOVA, 4 * PAGE).unwrap();
    // "Maps created through the legacy interface always use VFIO compatible rlimit accounting."
    assert_eq!(ctx.mm_account.locked_pages(), 4);
    assert_eq!(ctx.user_account.locked_pages(), 0);
    assert_eq!(unmap(&c, IOVA, 4 * PAGE), Ok(4 * PAGE));
    assert_eq!(ctx.mm_account.locked_pages(), 0);
    teardown(ctx, c);
}

#[test]
fn dma_avail_goes_down_and_up() {
    for version in VERSIONS {
        let buffer = Buffer::new(4, 0);
        let (ctx, c, _g) = fixture(version);
        assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT);
        for i in 0..4 {
            container_support::map(&c, buffer.va() + i * PAGE, IOVA + i * PAGE, PAGE).unwrap();
            assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT - 1 - i as u32);
        }
        assert_eq!(unmap(&c, IOVA + PAGE, PAGE), Ok(PAGE));
        assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT - 3);
        // A refused map takes nothing.
        assert_eq!(
            container_support::map(&c, buffer.va(), IOVA, PAGE),
            Err(Errno::EXIST)
        );
        assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT - 3);
        let (r, _) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
        r.unwrap();
        assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT);
        teardown(ctx, c);
    }
}

#[test]
fn dma_entry_limit_then_enospc() {
    let buffer = Buffer::new(1, 0);
    let (ctx, c, _g) = fixture(VFIO_TYPE1v2_IOMMU);
    let limit = u64::from(DMA_ENTRY_LIMIT);
    // 65 535 mappings of one page of one buffer.
    for i in 0..limit {
        container_support::map(&c, buffer.va(), IOVA + i * PAGE, PAGE).unwrap();
    }
    assert_eq!(dma_avail(&c), 0);
    let next = IOVA + limit * PAGE;
    assert_eq!(
        container_support::map(&c, buffer.va(), next, PAGE),
        Err(Errno::NOSPC)
    );
    // vfio_dma_do_map()'s earlier checks still come first.
    assert_eq!(
        container_support::map(&c, buffer.va(), next, 0),
        Err(Errno::INVAL)
    );
    assert_eq!(
        container_support::map(&c, buffer.va(), next + 1, PAGE),
        Err(Errno::INVAL)
    );
    assert_eq!(
        container_support::map(&c, buffer.va(), u64::MAX - PAGE + 1, 2 * PAGE),
        Err(Errno::OVERFLOW)
    );
    assert_eq!(
        container_support::map(&c, buffer.va(), IOVA + 7 * PAGE, PAGE),
        Err(Errno::EXIST)
    );
    assert_eq!(ctx.compat_ioas().area_count(), limit as usize);
    // One unmapped, one more may be made.
    assert_eq!(unmap(&c, IOVA, PAGE), Ok(PAGE));
    assert_eq!(dma_avail(&c), 1);
    container_support::map(&c, buffer.va(), next, PAGE).unwrap();
    assert_eq!(
        container_support::map(&c, buffer.va(), IOVA, PAGE),
        Err(Errno::NOSPC)
    );
    let (r, reply) = unmap_raw(&c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
    assert_eq!(r.map(|()| reply.size), Ok(limit * PAGE));
    assert_eq!(dma_avail(&c), DMA_ENTRY_LIMIT);
    teardown(ctx, c);
}

#[test]
fn dma_entry_limit_is_a_setting() {
    let buffer = Buffer::new(4, 0);
    // A small limit (type1's module parameter).
    let (ctx, c, _g) = fixture_with(
        VFIO_TYPE1_IOMMU,
        ContainerConfig {
            dma_entry_limit: Some(2),
            ..ContainerConfig::default()
        },
    );
    container_support::map(&c, buffer.va(), IOVA, PAGE).unwrap();
    container_support::map(&c, buffer.va(), IOVA + PAGE, PAGE).unwrap();
    assert_eq!(dma_avail(&c), 0);
    assert_eq!(
        container_support::map(&c, buffer.va(), IOVA + 2 * PAGE, PAGE),
        Err(Errno::NOSPC)
    );
    teardown(ctx, c);

    // No limit: the compat layer's U32_MAX.
    let (ctx, c, _g) = fixture_with(
        VFIO_TYPE1v2_IOMMU,
        ContainerConfig {
            dma_entry_limit: None,
            ..ContainerConfig::default()
        },
    );
    assert_eq!(dma_avail(&c), DMA_AVAIL_UNLIMITED);
    for i in 0..4 {
        container_support::map(&c, buffer.va() + i * PAGE, IOVA + i * PAGE, PAGE).unwrap();
    }
    assert_eq!(dma_avail(&c), DMA_AVAIL_UNLIMITED);
    teardown(ctx, c);
}
