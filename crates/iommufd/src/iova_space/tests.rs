//! Unit tests: one group per function, each failure with its exact errno and an unchanged space.

use super::*;
use rustix::io::Errno;

const P: u64 = PAGE_SIZE;
const TOP: u64 = u64::MAX;

fn iova(raw: u64) -> Iova {
    Iova::new(raw)
}

fn r(start: u64, last: u64) -> IovaRange {
    IovaRange::new(iova(start), iova(last)).unwrap()
}

fn src(raw: u64) -> SourceAddr {
    SourceAddr::new(raw)
}

fn align(bytes: u64) -> Alignment {
    Alignment::new(bytes).unwrap()
}

/// Runs `op`, which must fail with `errno`, and checks that the space did not change.
#[track_caller]
fn refused<R: std::fmt::Debug>(
    s: &mut IovaSpace<u32>,
    errno: Errno,
    op: impl FnOnce(&mut IovaSpace<u32>) -> Result<R, IovaSpaceError>,
) -> IovaSpaceError {
    let before = s.clone();
    let err = op(s).expect_err("must fail");
    assert_eq!(err.errno(), errno, "{err}");
    assert_eq!(*s, before, "a refused operation changed the space: {err}");
    err
}

fn ranges(s: &IovaSpace<u32>) -> Vec<IovaRange> {
    s.areas().map(|(_, r, _)| r).collect()
}

#[test]
fn new_space_is_empty_and_unaligned() {
    let s = IovaSpace::<u32>::default();
    assert_eq!(s.area_count(), 0);
    assert_eq!(s.iova_alignment().bytes(), 1);
    assert!(s.allowed().is_empty());
    assert_eq!(s.reserved().count(), 0);
    assert_eq!(s.usable_ranges(), vec![IovaRange::full()]);
}

#[test]
fn insert_fixed_places_the_area() {
    let mut s = IovaSpace::new();
    let (id, range) = s
        .insert_fixed(iova(0x10_000), 2 * P, src(0x7000_0000), 7)
        .unwrap();
    assert_eq!(range, r(0x10_000, 0x11_fff));
    assert_eq!(s.area(id), Some((range, &7)));
    // Unaligned is fine while the alignment is 1 (no domain).
    s.insert_fixed(iova(0x20_001), 3, src(0x5), 8).unwrap();
    // IOVA 0 and the last byte of the space are ordinary.
    s.insert_fixed(iova(0), 1, src(0), 9).unwrap();
    let (_, top) = s.insert_fixed(iova(TOP - (P - 1)), P, src(0), 10).unwrap();
    assert_eq!(top, r(TOP - (P - 1), TOP));
    assert_eq!(
        ranges(&s),
        vec![r(0, 0), r(0x10_000, 0x11_fff), r(0x20_001, 0x20_003), top]
    );
}

#[test]
fn insert_fixed_refusals() {
    let mut s = IovaSpace::new();
    s.insert_fixed(iova(16 * P), 2 * P, src(0), 1).unwrap();
    s.reserve(r(100 * P, 110 * P - 1), ReserveOwner(1)).unwrap();

    let e = refused(&mut s, Errno::INVAL, |s| s.insert_fixed(iova(0), 0, src(0), 2));
    assert_eq!(e, IovaSpaceError::ZeroLength);
    // Over an area: start inside, end inside, covering, exactly.
    for (at, len) in [
        (16 * P, P),
        (17 * P, P),
        (15 * P, 2 * P),
        (15 * P, 3 * P),
        (16 * P, 2 * P),
    ] {
        let e = refused(&mut s, Errno::EXIST, |s| s.insert_fixed(iova(at), len, src(0), 2));
        assert_eq!(
            e,
            IovaSpaceError::Exists {
                range: IovaRange::from_start_len(iova(at), len).unwrap(),
                area: r(16 * P, 18 * P - 1)
            }
        );
    }
    // Into a reserved range: EINVAL (iopt_check_iova).
    let e = refused(&mut s, Errno::INVAL, |s| {
        s.insert_fixed(iova(99 * P), 2 * P, src(0), 2)
    });
    assert!(matches!(e, IovaSpaceError::Reserved { .. }));
    // Past the end of the space.
    let e = refused(&mut s, Errno::OVERFLOW, |s| {
        s.insert_fixed(iova(TOP - P + 2), P, src(0), 2)
    });
    assert!(matches!(e, IovaSpaceError::Overflow { .. }));
    // A reservation wins over an area when both are hit (the kernel checks it first).
    s.reserve(r(18 * P, 18 * P), ReserveOwner(2)).unwrap();
    refused(&mut s, Errno::INVAL, |s| {
        s.insert_fixed(iova(17 * P), 2 * P, src(0), 2)
    });

    // Alignment: length, then IOVA, then (after the IOVA checks) the source page offset.
    s.set_iova_alignment(align(P)).unwrap();
    let e = refused(&mut s, Errno::INVAL, |s| {
        s.insert_fixed(iova(P + 1), P + 1, src(0), 2)
    });
    assert_eq!(
        e,
        IovaSpaceError::Misaligned {
            what: Misalignment::Length,
            value: P + 1,
            alignment: P
        }
    );
    let e = refused(&mut s, Errno::INVAL, |s| {
        s.insert_fixed(iova(P + 1), P, src(0), 2)
    });
    assert_eq!(
        e,
        IovaSpaceError::Misaligned {
            what: Misalignment::Iova,
            value: P + 1,
            alignment: P
        }
    );
    let e = refused(&mut s, Errno::INVAL, |s| {
        s.insert_fixed(iova(P), P, src(0x800), 2)
    });
    assert!(matches!(
        e,
        IovaSpaceError::Misaligned {
            what: Misalignment::PageOffset,
            ..
        }
    ));
    // Misalignment is reported before overflow, EEXIST before a bad page offset.
    refused(&mut s, Errno::INVAL, |s| s.insert_fixed(iova(TOP), P, src(0), 2));
    refused(&mut s, Errno::EXIST, |s| {
        s.insert_fixed(iova(16 * P), P, src(0x800), 2)
    });
}

#[test]
fn insert_ignores_the_allowed_list_for_fixed_iovas() {
    // Linux's iopt_check_iova does not consult allowed_itree.
    let mut s = IovaSpace::new();
    s.set_allowed(&[r(0x100_000, 0x1ff_fff)]).unwrap();
    s.insert_fixed(iova(0x10_000), P, src(0), 1).unwrap();
    assert_eq!(s.area_count(), 1);
}

#[test]
fn insert_pieces_back_to_back_all_or_nothing() {
    let mut s = IovaSpace::new();
    let pieces = vec![
        Piece {
            length: P,
            source: src(0x1000),
            payload: 1,
        },
        Piece {
            length: 3 * P,
            source: src(0x9000),
            payload: 2,
        },
    ];
    let out = s.insert(Placement::Fixed(iova(0x40_000)), pieces).unwrap();
    assert_eq!(
        out.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
        vec![r(0x40_000, 0x40_fff), r(0x41_000, 0x43_fff)]
    );
    // A later piece with a zero length or a bad page offset refuses the whole insert.
    s.set_iova_alignment(align(P)).unwrap();
    let bad = |po| {
        vec![
            Piece {
                length: P,
                source: src(0),
                payload: 3,
            },
            Piece {
                length: P,
                source: src(po),
                payload: 4,
            },
        ]
    };
    refused(&mut s, Errno::INVAL, |s| {
        s.insert(Placement::Fixed(iova(0)), bad(0x10))
    });
    refused(&mut s, Errno::INVAL, |s| s.insert(Placement::Alloc, bad(0x10)));
    let zero = vec![
        Piece {
            length: P,
            source: src(0),
            payload: 3,
        },
        Piece {
            length: 0,
            source: src(0),
            payload: 4,
        },
    ];
    refused(&mut s, Errno::INVAL, |s| {
        s.insert(Placement::Fixed(iova(0)), zero)
    });
    refused(&mut s, Errno::INVAL, |s| s.insert(Placement::Alloc, Vec::new()));
    let huge = vec![
        Piece {
            length: TOP - P + 1,
            source: src(0),
            payload: 3,
        },
        Piece {
            length: 2 * P,
            source: src(0),
            payload: 4,
        },
    ];
    refused(&mut s, Errno::OVERFLOW, |s| {
        s.insert(Placement::Fixed(iova(0)), huge)
    });
    let out = s.insert(Placement::Alloc, bad(0)).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.end(), Some(out[1].1.start()));
}

#[test]
fn insert_alloc_alignment_and_placement() {
    let mut s = IovaSpace::new();
    // Never IOVA 0: the first page is skipped.
    let (_, a) = s.insert_alloc(P, src(0x7f00_0000_0000), 1).unwrap();
    assert_eq!(a, r(P, 2 * P - 1));
    // Aligned to the rounded-up length while the source allows it.
    let (_, b) = s.insert_alloc(3 * P, src(0x7f00_0000_0000), 2).unwrap();
    assert_eq!(b.start().raw() % (4 * P), 0);
    assert_eq!(b, r(4 * P, 7 * P - 1));
    // Capped at MAX_ALLOC_ALIGNMENT.
    let (_, c) = s.insert_alloc(1 << 30, src(0), 3).unwrap();
    assert_eq!(c.start().raw(), MAX_ALLOC_ALIGNMENT);
    // The source's low bits limit the alignment and its page offset is kept.
    let (_, d) = s.insert_alloc(0x100, src(0x1234_5680), 4).unwrap();
    assert_eq!(d.start().raw() % 0x80, 0);
    assert_eq!(d.start().raw() % P, 0x680);
    assert!(d.start().raw() >= 2 * P && d.last() < c.start());
}

#[test]
fn insert_alloc_respects_reserved_areas_and_allowed() {
    let mut s = IovaSpace::new();
    s.reserve(r(P, 100 * P - 1), ReserveOwner(1)).unwrap();
    s.insert_fixed(iova(100 * P), 4 * P, src(0), 1).unwrap();
    let (_, a) = s.insert_alloc(P, src(0), 2).unwrap();
    assert_eq!(a.start().raw(), 104 * P);

    let mut s = IovaSpace::<u32>::new();
    s.set_allowed(&[r(0x10_0000, 0x10_3fff), r(0x20_0000, 0x2f_ffff)])
        .unwrap();
    let (_, a) = s.insert_alloc(0x4000, src(0), 1).unwrap();
    assert_eq!(a, r(0x10_0000, 0x10_3fff));
    let (_, b) = s.insert_alloc(0x4000, src(0), 2).unwrap();
    assert_eq!(b, r(0x20_0000, 0x20_3fff));
    let e = refused(&mut s, Errno::NOSPC, |s| s.insert_alloc(0x10_0000, src(0), 3));
    assert_eq!(e, IovaSpaceError::NoSpace { length: 0x10_0000 });
    // Touching allowed ranges form one window.
    let mut s = IovaSpace::<u32>::new();
    s.set_allowed(&[r(0x2000, 0x2fff), r(0x3000, 0x4fff)]).unwrap();
    let (_, a) = s.insert_alloc(0x2000, src(0x1000), 1).unwrap();
    assert_eq!(a, r(0x2000, 0x3fff));
}

#[test]
fn insert_alloc_never_touches_the_guard_pages() {
    let mut s = IovaSpace::<u32>::new();
    s.set_allowed(&[r(0, P - 1), r(TOP - P + 1, TOP)]).unwrap();
    refused(&mut s, Errno::NOSPC, |s| s.insert_alloc(1, src(0), 1));
    s.set_allowed(&[r(0, 2 * P - 1), r(TOP - 2 * P + 1, TOP)])
        .unwrap();
    let (_, a) = s.insert_alloc(P, src(0), 1).unwrap();
    assert_eq!(a, r(P, 2 * P - 1));
    let (_, b) = s.insert_alloc(P, src(0), 2).unwrap();
    assert_eq!(b, r(TOP - 2 * P + 1, TOP - P));
    refused(&mut s, Errno::NOSPC, |s| s.insert_alloc(1, src(0), 3));
}

#[test]
fn insert_alloc_refusals() {
    let mut s = IovaSpace::<u32>::new();
    refused(&mut s, Errno::INVAL, |s| s.insert_alloc(0, src(0), 1));
    let e = refused(&mut s, Errno::OVERFLOW, |s| {
        s.insert_alloc(u64::MAX / 2, src(0), 1)
    });
    assert_eq!(e, IovaSpaceError::TooLong { length: u64::MAX / 2 });
    s.insert_alloc(u64::MAX / 2 - 1, src(0), 1).unwrap();
    s.remove_all();
    s.set_iova_alignment(align(0x800)).unwrap();
    refused(&mut s, Errno::INVAL, |s| s.insert_alloc(0x400, src(0), 1));
    // The source allows only 0x400-byte alignment: below the IOAS's.
    let e = refused(&mut s, Errno::INVAL, |s| s.insert_alloc(0x800, src(0x1400), 1));
    assert_eq!(
        e,
        IovaSpaceError::SourceAlignment {
            alignment: 0x400,
            required: 0x800
        }
    );
    s.insert_alloc(0x800, src(0x1800), 1).unwrap();
}

#[test]
fn remove_range_whole_areas_only() {
    let mut s = IovaSpace::new();
    for i in 0..4u32 {
        s.insert_fixed(iova(u64::from(i) * 16 * P), 8 * P, src(0), i)
            .unwrap();
    }
    let e = refused(&mut s, Errno::NOENT, |s| s.remove_range(r(8 * P, 16 * P - 1)));
    assert_eq!(
        e,
        IovaSpaceError::NotMapped {
            range: r(8 * P, 16 * P - 1)
        }
    );
    let e = refused(&mut s, Errno::NOENT, |s| s.remove_range(r(0, 4 * P - 1)));
    assert_eq!(
        e,
        IovaSpaceError::SplitsArea {
            range: r(0, 4 * P - 1),
            area: r(0, 8 * P - 1)
        }
    );
    // Whole areas before the cut one are kept too (Linux would have removed them).
    refused(&mut s, Errno::NOENT, |s| s.remove_range(r(0, 20 * P)));
    let gone = s.remove_range(r(0, 32 * P - 1)).unwrap();
    assert_eq!(
        gone.iter().map(|(_, r, p)| (*r, *p)).collect::<Vec<_>>(),
        vec![(r(0, 8 * P - 1), 0), (r(16 * P, 24 * P - 1), 1)]
    );
    assert!(gone.iter().all(|(id, _, _)| s.area(*id).is_none()));
    assert_eq!(ranges(&s), vec![r(32 * P, 40 * P - 1), r(48 * P, 56 * P - 1)]);
}

#[test]
fn remove_at_the_top_and_remove_all() {
    let mut s = IovaSpace::new();
    s.insert_fixed(iova(TOP - P + 1), P, src(0), 1).unwrap();
    s.insert_fixed(iova(0), P, src(0), 2).unwrap();
    let gone = s.remove_range(r(TOP - 2 * P, TOP)).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, r(TOP - P + 1, TOP));
    s.insert_fixed(iova(TOP), 1, src(0), 3).unwrap();
    let all = s.remove_all();
    assert_eq!(all.iter().map(|(_, _, p)| *p).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(s.area_count(), 0);
    assert!(s.remove_all().is_empty(), "unmap all succeeds on an empty IOAS");
    refused(&mut s, Errno::NOENT, |s| s.remove_range(IovaRange::full()));
}

#[test]
fn range_from_user_errnos() {
    assert_eq!(range_from_user(iova(5), 0).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(
        range_from_user(iova(TOP), 2).unwrap_err().errno(),
        Errno::OVERFLOW
    );
    assert_eq!(range_from_user(iova(TOP), 1).unwrap(), r(TOP, TOP));
    assert_eq!(range_from_user(iova(0), TOP).unwrap(), r(0, TOP - 1));
}

#[test]
fn remove_area_and_area_mut() {
    let mut s = IovaSpace::new();
    let (a, _) = s.insert_fixed(iova(0), P, src(0), 1).unwrap();
    let (b, rb) = s.insert_fixed(iova(P), P, src(0), 2).unwrap();
    *s.area_mut(b).unwrap().1 = 20;
    assert_eq!(s.area(b), Some((rb, &20)));
    assert_eq!(s.remove_area(a), Some((r(0, P - 1), 1)));
    assert_eq!(s.remove_area(a), None);
    assert_eq!(s.area(a), None);
    assert!(s.area_mut(a).is_none());
    assert_eq!(s.area_count(), 1);
}

#[test]
fn lookups() {
    let mut s = IovaSpace::new();
    let (a, ra) = s.insert_fixed(iova(0x1000), 0x1000, src(0), 1).unwrap();
    let (b, rb) = s.insert_fixed(iova(0x2000), 0x2000, src(0), 2).unwrap();
    let (c, rc) = s.insert_fixed(iova(TOP - 0xfff), 0x1000, src(0), 3).unwrap();
    assert_eq!(s.area_at(iova(0xfff)), None);
    assert_eq!(s.area_at(iova(0x1000)), Some((a, ra, &1)));
    assert_eq!(s.area_at(iova(0x3fff)), Some((b, rb, &2)));
    assert_eq!(s.area_at(iova(0x4000)), None);
    assert_eq!(s.area_at(iova(TOP)), Some((c, rc, &3)));
    let ids = |range| s.areas_in(range).map(|(id, _, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(r(0x1fff, 0x2000)), vec![a, b]);
    assert_eq!(ids(r(0x3000, 0x3000)), vec![b]);
    assert_eq!(ids(r(0, TOP)), vec![a, b, c]);
    assert_eq!(ids(r(0x4000, TOP - 0x1000)), Vec::<AreaId>::new());
    assert_eq!(ids(r(TOP, TOP)), vec![c]);
}

#[test]
fn contiguity() {
    let mut s = IovaSpace::new();
    s.insert_fixed(iova(0x1000), 0x1000, src(0), 1).unwrap();
    s.insert_fixed(iova(0x2000), 0x2000, src(0), 2).unwrap();
    s.insert_fixed(iova(0x5000), 0x1000, src(0), 3).unwrap();
    s.insert_fixed(iova(TOP - 0x1fff), 0x1000, src(0), 4).unwrap();
    s.insert_fixed(iova(TOP - 0xfff), 0x1000, src(0), 5).unwrap();
    assert!(s.is_contiguous_mapped(r(0x1000, 0x3fff)));
    assert!(s.is_contiguous_mapped(r(0x1800, 0x2800)));
    assert!(!s.is_contiguous_mapped(r(0x1000, 0x4000)));
    assert!(!s.is_contiguous_mapped(r(0xfff, 0x1000)));
    assert!(!s.is_contiguous_mapped(r(0x3000, 0x5000)));
    assert!(s.is_contiguous_mapped(r(TOP - 0x1fff, TOP)));
    assert!(s.is_contiguous_mapped(r(TOP, TOP)));
    assert!(!s.is_contiguous_mapped(IovaRange::full()));
}

#[test]
fn set_allowed_checks_and_replaces() {
    let mut s = IovaSpace::<u32>::new();
    s.reserve(r(0x10_0000, 0x10_ffff), ReserveOwner(1)).unwrap();
    s.insert_fixed(iova(0x1000), 0x1000, src(0), 1).unwrap();
    let e = refused(&mut s, Errno::INVAL, |s| s.set_allowed(&[r(0x5000, 0x5000)]));
    assert_eq!(
        e,
        IovaSpaceError::AllowedInvalid {
            start: 0x5000,
            last: 0x5000
        }
    );
    let e = refused(&mut s, Errno::INVAL, |s| {
        s.set_allowed(&[r(0x9000, 0x9fff), r(0x2000, 0x2fff), r(0x2fff, 0x3fff)])
    });
    assert_eq!(
        e,
        IovaSpaceError::AllowedOverlap {
            range: r(0x2fff, 0x3fff),
            other: r(0x2000, 0x2fff)
        }
    );
    // The first invalid entry decides, even before an overlap later on.
    refused(&mut s, Errno::INVAL, |s| {
        s.set_allowed(&[r(7, 7), r(0, 9), r(0, 9)])
    });
    let e = refused(&mut s, Errno::ADDRINUSE, |s| {
        s.set_allowed(&[r(0x1000, 0x1fff), r(0xf_0000, 0x10_0000)])
    });
    assert_eq!(
        e,
        IovaSpaceError::AllowedReserved {
            range: r(0xf_0000, 0x10_0000),
            reserved: r(0x10_0000, 0x10_ffff)
        }
    );
    // Areas outside the allowed list are not a reason to refuse; touching entries are fine.
    s.set_allowed(&[r(0x3000, 0x3fff), r(0x2000, 0x2fff), r(TOP - 1, TOP)])
        .unwrap();
    assert_eq!(
        s.allowed(),
        &[r(0x2000, 0x2fff), r(0x3000, 0x3fff), r(TOP - 1, TOP)]
    );
    s.set_allowed(&[]).unwrap();
    assert!(s.allowed().is_empty());
}

#[test]
fn reserve_and_unreserve() {
    let mut s = IovaSpace::<u32>::new();
    s.insert_fixed(iova(0x1000), 0x1000, src(0), 1).unwrap();
    let e = refused(&mut s, Errno::ADDRINUSE, |s| {
        s.reserve(r(0x1fff, 0x2fff), ReserveOwner(1))
    });
    assert_eq!(
        e,
        IovaSpaceError::ReserveMapped {
            range: r(0x1fff, 0x2fff),
            area: r(0x1000, 0x1fff)
        }
    );
    s.set_allowed(&[r(0x10_000, 0x1f_fff)]).unwrap();
    let e = refused(&mut s, Errno::ADDRINUSE, |s| {
        s.reserve(r(0x1f_fff, 0x20_000), ReserveOwner(1))
    });
    assert_eq!(
        e,
        IovaSpaceError::ReserveAllowed {
            range: r(0x1f_fff, 0x20_000),
            allowed: r(0x10_000, 0x1f_fff)
        }
    );
    // Overlapping reservations by several owners are fine.
    s.reserve(r(0x20_000, TOP), ReserveOwner(1)).unwrap();
    s.reserve(r(0x30_000, 0x3f_fff), ReserveOwner(2)).unwrap();
    s.reserve(r(0, 0xfff), ReserveOwner(2)).unwrap();
    assert_eq!(s.usable_ranges(), vec![r(0x1000, 0x1f_fff)]);
    s.unreserve_owner(ReserveOwner(1));
    assert_eq!(
        s.reserved().collect::<Vec<_>>(),
        vec![
            (r(0, 0xfff), ReserveOwner(2)),
            (r(0x30_000, 0x3f_fff), ReserveOwner(2))
        ]
    );
    assert_eq!(s.usable_ranges(), vec![r(0x1000, 0x2f_fff), r(0x40_000, TOP)]);
    s.unreserve_owner(ReserveOwner(9));
    s.unreserve_owner(ReserveOwner(2));
    assert_eq!(s.usable_ranges(), vec![IovaRange::full()]);
}

#[test]
fn usable_ranges_merge_touching_reservations() {
    let mut s = IovaSpace::<u32>::new();
    s.reserve(r(0, 9), ReserveOwner(1)).unwrap();
    s.reserve(r(10, 19), ReserveOwner(2)).unwrap();
    s.reserve(r(30, 39), ReserveOwner(1)).unwrap();
    s.reserve(r(TOP, TOP), ReserveOwner(1)).unwrap();
    assert_eq!(s.usable_ranges(), vec![r(20, 29), r(40, TOP - 1)]);
}

#[test]
fn alignment_changes() {
    let mut s = IovaSpace::<u32>::new();
    s.insert_fixed(iova(0x1000), 0x1000, src(0x7000), 1).unwrap();
    let e = refused(&mut s, Errno::INVAL, |s| s.set_iova_alignment(align(2 * P)));
    assert_eq!(e, IovaSpaceError::AlignmentTooLarge(2 * P));
    assert_eq!(
        s.check_iova_alignment(align(2 * P)).unwrap_err().errno(),
        Errno::INVAL
    );
    s.set_iova_alignment(align(P)).unwrap();
    s.set_iova_alignment(align(1)).unwrap();
    // Each of IOVA, length and page offset can break a raise.
    for (at, len, source) in [
        (0x2800, 0x800, 0),
        (0x4000, 0x800, 0),
        (0x6000, 0x1000, 0x10_0800),
    ] {
        let (id, area) = s.insert_fixed(iova(at), len, src(source), 2).unwrap();
        let e = refused(&mut s, Errno::ADDRINUSE, |s| s.set_iova_alignment(align(P)));
        assert_eq!(e, IovaSpaceError::AreaNotAligned { area, alignment: P });
        s.set_iova_alignment(align(0x800)).unwrap();
        s.set_iova_alignment(align(1)).unwrap();
        s.remove_area(id).unwrap();
    }
    s.set_iova_alignment(align(P)).unwrap();
    assert_eq!(s.iova_alignment(), align(P));
    // A lowering needs no check.
    s.set_iova_alignment(align(0x800)).unwrap();
    // Pieces whose lengths add up past 2^64.
    let mut full = IovaSpace::<u32>::new();
    let e = refused(&mut full, Errno::OVERFLOW, |s| {
        s.insert(
            Placement::Fixed(iova(0)),
            vec![
                Piece {
                    length: 1 << 63,
                    source: src(0),
                    payload: 1,
                },
                Piece {
                    length: 1 << 63,
                    source: src(0),
                    payload: 2,
                },
            ],
        )
    });
    assert!(matches!(e, IovaSpaceError::Overflow { .. }));
    // The largest area: everything but the last byte, unaligned to anything above 1.
    full.insert_fixed(iova(0), TOP, src(0), 1).unwrap();
    refused(&mut full, Errno::ADDRINUSE, |s| s.set_iova_alignment(align(2)));
}

#[test]
fn cut_splits_like_iopt_area_split() {
    let mut s = IovaSpace::new();
    let (id, _) = s
        .insert_fixed(iova(0x10_000), 0x4000, src(0x7000_0800), 10u32)
        .unwrap();
    // Not inside an area, or on its first or last byte: nothing to do.
    assert_eq!(s.cut(iova(0x1000), |p, _| (p, p)), Ok(None));
    assert_eq!(s.cut(iova(0x10_000), |p, _| (p, p)), Ok(None));
    assert_eq!(s.cut(iova(0x13_fff), |p, _| (p, p)), Ok(None));
    assert_eq!(s.area(id).map(|(r, _)| r), Some(r(0x10_000, 0x13_fff)));
    let (left, right) = s
        .cut(iova(0x10_fff), |p, len| (p + 1, p + u32::try_from(len).unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(s.area(id), None, "the old area is gone");
    assert_eq!(s.area(left), Some((r(0x10_000, 0x10_fff), &11)));
    assert_eq!(s.area(right), Some((r(0x11_000, 0x13_fff), &(10 + 0x1000))));
    // The right part's page offset follows the source: 0x800 + 0x1000 → 0x800.
    s.set_iova_alignment(align(0x800)).unwrap();
    let e = refused(&mut s, Errno::ADDRINUSE, |s| s.set_iova_alignment(align(P)));
    assert!(matches!(e, IovaSpaceError::AreaNotAligned { .. }));
    let e = refused(&mut s, Errno::INVAL, |s| s.cut(iova(0x11_3ff), |p, _| (p, p)));
    assert!(matches!(
        e,
        IovaSpaceError::Misaligned {
            what: Misalignment::CutPoint,
            ..
        }
    ));
    s.cut(iova(0x11_7ff), |p, _| (p, p)).unwrap().unwrap();
    assert_eq!(
        ranges(&s),
        vec![
            r(0x10_000, 0x10_fff),
            r(0x11_000, 0x11_7ff),
            r(0x11_800, 0x13_fff)
        ]
    );
    // The right part's page offset: 0x400 + 0x400 → 0x800, still aligned. (Linux's second check,
    // on the right part's start byte, cannot fail while every area meets the alignment.)
    let mut s = IovaSpace::new();
    s.insert_fixed(iova(0), 0x2000, src(0x400), 1u32).unwrap();
    s.set_iova_alignment(align(0x400)).unwrap();
    let (_, right) = s.cut(iova(0x3ff), |p, _| (p, p)).unwrap().unwrap();
    s.set_iova_alignment(align(1)).unwrap();
    s.insert_fixed(iova(0x8000), 0x2000, src(0x200), 3).unwrap();
    refused(&mut s, Errno::ADDRINUSE, |s| s.set_iova_alignment(align(0x800)));
    s.remove_range(r(0x8000, 0x9fff)).unwrap();
    // The left part [0, 0x3ff] is 0x400 long: 0x800 is refused, 0x400 is fine.
    refused(&mut s, Errno::ADDRINUSE, |s| s.set_iova_alignment(align(0x800)));
    s.set_iova_alignment(align(0x400)).unwrap();
    assert!(s.area(right).is_some());
    // At the top of the space.
    let mut s = IovaSpace::new();
    s.insert_fixed(iova(TOP - 0x1fff), 0x2000, src(0), 1u32).unwrap();
    s.cut(iova(TOP - 0x1000), |p, _| (p, p)).unwrap().unwrap();
    assert_eq!(
        ranges(&s),
        vec![r(TOP - 0x1fff, TOP - 0x1000), r(TOP - 0xfff, TOP)]
    );
}

#[test]
fn errno_table() {
    let range = r(0, 1);
    let cases = [
        (IovaSpaceError::ZeroLength, Errno::INVAL),
        (
            IovaSpaceError::Misaligned {
                what: Misalignment::Iova,
                value: 1,
                alignment: 2,
            },
            Errno::INVAL,
        ),
        (IovaSpaceError::Overflow { iova: 1, length: TOP }, Errno::OVERFLOW),
        (IovaSpaceError::TooLong { length: TOP }, Errno::OVERFLOW),
        (
            IovaSpaceError::SourceAlignment {
                alignment: 1,
                required: 2,
            },
            Errno::INVAL,
        ),
        (
            IovaSpaceError::Reserved {
                range,
                reserved: range,
            },
            Errno::INVAL,
        ),
        (IovaSpaceError::Exists { range, area: range }, Errno::EXIST),
        (IovaSpaceError::NoSpace { length: 1 }, Errno::NOSPC),
        (IovaSpaceError::NotMapped { range }, Errno::NOENT),
        (IovaSpaceError::SplitsArea { range, area: range }, Errno::NOENT),
        (IovaSpaceError::AllowedInvalid { start: 1, last: 0 }, Errno::INVAL),
        (
            IovaSpaceError::AllowedOverlap { range, other: range },
            Errno::INVAL,
        ),
        (
            IovaSpaceError::AllowedReserved {
                range,
                reserved: range,
            },
            Errno::ADDRINUSE,
        ),
        (
            IovaSpaceError::ReserveMapped { range, area: range },
            Errno::ADDRINUSE,
        ),
        (
            IovaSpaceError::ReserveAllowed {
                range,
                allowed: range,
            },
            Errno::ADDRINUSE,
        ),
        (IovaSpaceError::AlignmentTooLarge(2 * P), Errno::INVAL),
        (
            IovaSpaceError::AreaNotAligned {
                area: range,
                alignment: P,
            },
            Errno::ADDRINUSE,
        ),
    ];
    for (err, errno) in cases {
        assert_eq!(err.errno(), errno, "{err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn source_addr_helpers() {
    let s = SourceAddr::from_host_va(HostVa::new(0x7f00_1234));
    assert_eq!(s.raw(), 0x7f00_1234);
    assert_eq!(s.page_offset(), 0x234);
    assert_eq!(SourceAddr::default().page_offset(), 0);
    assert!(AreaId(3).raw() == 3);
}
