//! [`IovaSpace`] against a plain reference model: random sequences of map (fixed and allocated,
//! single and multi-piece), unmap, unmap-all, allow, reserve, unreserve, alignment changes and cuts,
//! with addresses crowded near 0 and near the top of the 64-bit space.
//!
//! The reference keeps sorted `Vec`s and computes in `u128`, re-deriving Linux's rules
//! (`io_pagetable.c`, `ioas.c`) independently. After every operation: the same result or errno;
//! the same areas, allowed list, reservations, alignment and `IOVA_RANGES`; a refused operation
//! leaves the space exactly as it was; areas never overlap each other or reservations,
//! reservations never overlap allowed ranges, every area of a single-piece map meets the alignment
//! (Linux lets the pieces of a copy be unaligned inside an aligned whole); an allocated IOVA is
//! aligned as Linux aligns it, away from both guard pages and inside one allowed range.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rustix::io::Errno;
use std::sync::atomic::{AtomicUsize, Ordering};
use uvfio_iommufd::iova_space::{
    IovaSpace, IovaSpaceError, PAGE_SIZE, Piece, Placement, ReserveOwner, SourceAddr, range_from_user,
};
use uvfio_types::{Alignment, Iova, IovaRange};

const MAX: u64 = u64::MAX;
const MAX_ALIGN: u64 = 2 << 20;
const BUFFER: u64 = 0x7f12_3440_0000;

// ----- the reference ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MArea {
    start: u64,
    last: u64,
    page_offset: u64,
    tag: u32,
    /// From a single-piece insert (or a cut of one). Pieces of a multi-piece insert (an
    /// `IOMMU_IOAS_COPY`) need not meet the alignment: Linux checks the total length and each
    /// piece's page offset only.
    whole: bool,
}

#[derive(Debug, Clone)]
struct Model {
    areas: Vec<MArea>,
    allowed: Vec<(u64, u64)>,
    reserved: Vec<(u64, u64, u64)>,
    align: u64,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn last_of(start: u64, len: u64) -> Option<u64> {
    let last = u128::from(start) + u128::from(len) - 1;
    u64::try_from(last).ok()
}

/// Maximal holes of `used` inside `[lo, hi]`, in u128.
fn holes(mut used: Vec<(u64, u64)>, lo: u64, hi: u64) -> Vec<(u64, u64)> {
    used.sort();
    let mut out = Vec::new();
    let mut cursor = u128::from(lo);
    for (s, l) in used {
        if u128::from(l) < cursor {
            continue;
        }
        if u128::from(s) > u128::from(hi) {
            break;
        }
        if u128::from(s) > cursor {
            out.push((cursor as u64, s - 1));
        }
        cursor = cursor.max(u128::from(l) + 1);
    }
    if cursor <= u128::from(hi) {
        out.push((cursor as u64, hi));
    }
    out
}

/// Linux's `__alloc_iova_check_range`, in u128.
fn fit(start: u64, last: u64, len: u64, align: u64, po: u64) -> Option<u64> {
    let sum = u128::from(start) + u128::from(align) - 1;
    if sum > u128::from(MAX) {
        return None;
    }
    let aligned = (sum as u64 & !(align - 1)) | po;
    if aligned >= last || last - aligned < len - 1 {
        return None;
    }
    Some(aligned)
}

fn alloc_align(src: u64, len: u64) -> u64 {
    let mut a = len.next_power_of_two();
    if src != 0 {
        a = a.min(1 << src.trailing_zeros());
    }
    a.min(MAX_ALIGN)
}

impl Model {
    fn new() -> Self {
        Model {
            areas: Vec::new(),
            allowed: Vec::new(),
            reserved: Vec::new(),
            align: 1,
        }
    }

    fn hit_reserved(&self, r: (u64, u64)) -> bool {
        self.reserved.iter().any(|&(s, l, _)| overlaps((s, l), r))
    }

    fn hit_area(&self, r: (u64, u64)) -> bool {
        self.areas.iter().any(|a| overlaps((a.start, a.last), r))
    }

    /// Where `pieces` go, or the errno (the kernel's order of checks).
    fn place(&self, at: Option<u64>, pieces: &[(u64, u64)]) -> Result<u64, Errno> {
        let total: u128 = pieces.iter().map(|p| u128::from(p.0)).sum();
        let Ok(total) = u64::try_from(total) else {
            return Err(Errno::OVERFLOW);
        };
        if total == 0 || total % self.align != 0 {
            return Err(Errno::INVAL);
        }
        let start = match at {
            Some(iova) => {
                if iova % self.align != 0 {
                    return Err(Errno::INVAL);
                }
                let last = last_of(iova, total).ok_or(Errno::OVERFLOW)?;
                if self.hit_reserved((iova, last)) {
                    return Err(Errno::INVAL);
                }
                if self.hit_area((iova, last)) {
                    return Err(Errno::EXIST);
                }
                iova
            }
            None => self.alloc(pieces[0].1, total)?,
        };
        for &(len, src) in pieces {
            if len == 0 || (src % PAGE_SIZE) % self.align != 0 {
                return Err(Errno::INVAL);
            }
        }
        Ok(start)
    }

    /// Where allocation may look: the allowed ranges with touching ones merged (or everything),
    /// clipped to `[PAGE_SIZE, MAX - PAGE_SIZE]`.
    fn windows(&self) -> Vec<(u64, u64)> {
        let (lo, hi) = (PAGE_SIZE, MAX - PAGE_SIZE);
        if self.allowed.is_empty() {
            return vec![(lo, hi)];
        }
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for &(s, l) in &self.allowed {
            match merged.last_mut() {
                Some(m) if u128::from(s) <= u128::from(m.1) + 1 => m.1 = m.1.max(l),
                _ => merged.push((s, l)),
            }
        }
        merged
            .into_iter()
            .filter(|&(s, l)| s <= hi && l >= lo)
            .map(|(s, l)| (s.max(lo), l.min(hi)))
            .collect()
    }

    fn alloc(&self, src: u64, len: u64) -> Result<u64, Errno> {
        if len >= MAX / 2 {
            return Err(Errno::OVERFLOW);
        }
        let a = alloc_align(src, len);
        if a < self.align {
            return Err(Errno::INVAL);
        }
        let po = src % PAGE_SIZE;
        let windows = self.windows();
        for (ws, wl) in windows {
            let Some(s) = fit(ws, wl, len, a, po) else {
                continue;
            };
            let used: Vec<(u64, u64)> = self
                .reserved
                .iter()
                .map(|&(s, l, _)| (s, l))
                .chain(self.areas.iter().map(|a| (a.start, a.last)))
                .collect();
            for (hs, hl) in holes(used, s, wl) {
                if let Some(iova) = fit(hs, hl, len, a, po) {
                    return Ok(iova);
                }
            }
        }
        Err(Errno::NOSPC)
    }

    fn insert(&mut self, start: u64, pieces: &[(u64, u64)], tag: u32) -> Vec<(u64, u64)> {
        let mut at = start;
        let mut out = Vec::new();
        for &(len, src) in pieces {
            let last = at + (len - 1);
            self.areas.push(MArea {
                start: at,
                last,
                page_offset: src % PAGE_SIZE,
                tag,
                whole: pieces.len() == 1,
            });
            out.push((at, last));
            at = last.wrapping_add(1);
        }
        self.areas.sort_by_key(|a| a.start);
        out
    }

    fn remove(&mut self, iova: u64, len: u64) -> Result<Vec<MArea>, Errno> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        let last = last_of(iova, len).ok_or(Errno::OVERFLOW)?;
        let hits: Vec<MArea> = self
            .areas
            .iter()
            .copied()
            .filter(|a| overlaps((a.start, a.last), (iova, last)))
            .collect();
        if hits.is_empty() || hits.iter().any(|a| a.start < iova || a.last > last) {
            return Err(Errno::NOENT);
        }
        self.areas.retain(|a| !hits.contains(a));
        Ok(hits)
    }

    fn allow(&mut self, list: &[(u64, u64)]) -> Result<(), Errno> {
        for (i, &r) in list.iter().enumerate() {
            if r.0 >= r.1 || list[..i].iter().any(|&o| overlaps(o, r)) {
                return Err(Errno::INVAL);
            }
        }
        if list.iter().any(|&r| self.hit_reserved(r)) {
            return Err(Errno::ADDRINUSE);
        }
        self.allowed = list.to_vec();
        self.allowed.sort();
        Ok(())
    }

    fn reserve(&mut self, r: (u64, u64), owner: u64) -> Result<(), Errno> {
        if self.hit_area(r) || self.allowed.iter().any(|&a| overlaps(a, r)) {
            return Err(Errno::ADDRINUSE);
        }
        self.reserved.push((r.0, r.1, owner));
        Ok(())
    }

    fn set_align(&mut self, a: u64) -> Result<(), Errno> {
        if a > PAGE_SIZE {
            return Err(Errno::INVAL);
        }
        if a > self.align
            && self.areas.iter().any(|x| {
                let len = u128::from(x.last - x.start) + 1;
                x.start % a != 0 || len % u128::from(a) != 0 || x.page_offset % a != 0
            })
        {
            return Err(Errno::ADDRINUSE);
        }
        self.align = a;
        Ok(())
    }

    fn cut(&mut self, iova: u64) -> Result<bool, Errno> {
        let Some(i) = self.areas.iter().position(|a| a.start <= iova && iova <= a.last) else {
            return Ok(false);
        };
        let a = self.areas[i];
        if iova == a.start || iova == a.last {
            return Ok(false);
        }
        let ns = iova + 1;
        let rpo = (a.page_offset + (ns - a.start) % PAGE_SIZE) % PAGE_SIZE;
        if ns % self.align != 0 || rpo % self.align != 0 {
            return Err(Errno::INVAL);
        }
        self.areas[i].last = iova;
        self.areas.push(MArea {
            start: ns,
            last: a.last,
            page_offset: rpo,
            tag: a.tag,
            whole: a.whole,
        });
        self.areas.sort_by_key(|a| a.start);
        Ok(true)
    }

    fn usable(&self) -> Vec<(u64, u64)> {
        holes(self.reserved.iter().map(|&(s, l, _)| (s, l)).collect(), 0, MAX)
    }

    fn contiguous(&self, r: (u64, u64)) -> bool {
        let mut cursor = u128::from(r.0);
        while cursor <= u128::from(r.1) {
            match self
                .areas
                .iter()
                .find(|a| u128::from(a.start) <= cursor && cursor <= u128::from(a.last))
            {
                Some(a) => cursor = u128::from(a.last) + 1,
                None => return false,
            }
        }
        true
    }
}

// ----- operations ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Fixed { iova: u64, pieces: Vec<(u64, u64)> },
    FixedAfter { pick: Index, len: u64, src: u64 },
    Alloc { pieces: Vec<(u64, u64)> },
    Remove { iova: u64, len: u64 },
    RemovePicked { pick: Index, mode: u8 },
    RemoveAll,
    Allow(Vec<(u64, u64)>),
    Reserve { start: u64, len: u64, owner: u64 },
    Unreserve(u64),
    Align(u64),
    Cut { pick: Index, offset: u64 },
    Query { iova: u64, len: u64 },
}

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..48).prop_map(|p| p * PAGE_SIZE),
        3 => (0u64..48).prop_map(|p| MAX - (PAGE_SIZE - 1) - p * PAGE_SIZE),
        1 => 0u64..48 * PAGE_SIZE,
        1 => (0u64..48 * PAGE_SIZE).prop_map(|o| MAX - o),
        1 => (0u64..64).prop_map(|p| (1 << 40) + p * 2048),
        1 => any::<u64>(),
    ]
}

fn len() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (1u64..8).prop_map(|p| p * PAGE_SIZE),
        2 => (1u64..6).prop_map(|p| p * 2048),
        2 => 1u64..10_000,
        1 => Just(0u64),
        1 => prop_oneof![Just(MAX), Just(MAX / 2), Just(MAX / 2 - 1), Just(1u64 << 40), Just(MAX_ALIGN)],
    ]
}

fn src() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(BUFFER),
        1 => Just(0u64),
        2 => (0u64..64).prop_map(|p| BUFFER + p * 2048),
        1 => 0u64..100_000,
        1 => any::<u64>(),
    ]
}

fn pieces() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop_oneof![
        6 => (len(), src()).prop_map(|p| vec![p]),
        1 => prop::collection::vec(((1u64..4).prop_map(|p| p * PAGE_SIZE), src()), 1..4),
        1 => prop::collection::vec((len(), src()), 0..3),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (addr(), pieces()).prop_map(|(iova, pieces)| Op::Fixed { iova, pieces }),
        2 => (any::<Index>(), len(), src()).prop_map(|(pick, len, src)| Op::FixedAfter { pick, len, src }),
        5 => pieces().prop_map(|pieces| Op::Alloc { pieces }),
        3 => (addr(), len()).prop_map(|(iova, len)| Op::Remove { iova, len }),
        4 => (any::<Index>(), 0u8..4).prop_map(|(pick, mode)| Op::RemovePicked { pick, mode }),
        1 => Just(Op::RemoveAll),
        2 => prop::collection::vec((addr(), len()), 0..4)
            .prop_map(|v| Op::Allow(v.into_iter().map(|(s, l)| (s, last_of(s, l.max(1)).unwrap_or(MAX))).collect())),
        3 => (addr(), len(), 0u64..3).prop_map(|(start, len, owner)| Op::Reserve { start, len, owner }),
        1 => (0u64..3).prop_map(Op::Unreserve),
        2 => prop_oneof![Just(1u64), Just(2), Just(512), Just(2048), Just(PAGE_SIZE), Just(2 * PAGE_SIZE)].prop_map(Op::Align),
        2 => (any::<Index>(), any::<u64>()).prop_map(|(pick, offset)| Op::Cut { pick, offset }),
        2 => (addr(), len()).prop_map(|(iova, len)| Op::Query { iova, len }),
    ]
}

// ----- the check ----------------------------------------------------------------------------------

fn range(s: u64, l: u64) -> IovaRange {
    IovaRange::new(Iova::new(s), Iova::new(l)).unwrap()
}

fn pair(r: IovaRange) -> (u64, u64) {
    (r.start().raw(), r.last().raw())
}

fn errno<T>(r: Result<T, IovaSpaceError>) -> Result<T, Errno> {
    r.map_err(|e| e.errno())
}

fn to_pieces(pieces: &[(u64, u64)], tag: u32) -> Vec<Piece<u32>> {
    pieces
        .iter()
        .map(|&(length, src)| Piece {
            length,
            source: SourceAddr::new(src),
            payload: tag,
        })
        .collect()
}

fn check_state(s: &IovaSpace<u32>, m: &Model) -> Result<(), TestCaseError> {
    let areas: Vec<(u64, u64, u32)> = s
        .areas()
        .map(|(_, r, t)| (r.start().raw(), r.last().raw(), *t))
        .collect();
    let model: Vec<(u64, u64, u32)> = m.areas.iter().map(|a| (a.start, a.last, a.tag)).collect();
    prop_assert_eq!(areas, model);
    prop_assert_eq!(
        s.allowed().iter().map(|r| pair(*r)).collect::<Vec<_>>(),
        m.allowed.clone()
    );
    let mut res: Vec<(u64, u64, u64)> = s
        .reserved()
        .map(|(r, o)| (r.start().raw(), r.last().raw(), o.0))
        .collect();
    let mut mres = m.reserved.clone();
    res.sort();
    mres.sort();
    prop_assert_eq!(res, mres);
    prop_assert_eq!(s.iova_alignment().bytes(), m.align);
    prop_assert_eq!(
        s.usable_ranges().into_iter().map(pair).collect::<Vec<_>>(),
        m.usable()
    );
    // Invariants.
    for w in m.areas.windows(2) {
        prop_assert!(w[0].last < w[1].start, "areas overlap: {:?}", w);
    }
    for a in &m.areas {
        prop_assert!(
            !m.hit_reserved((a.start, a.last)),
            "area over a reservation: {:?}",
            a
        );
        let len = u128::from(a.last - a.start) + 1;
        prop_assert!(
            !a.whole
                || a.start % m.align == 0 && len % u128::from(m.align) == 0 && a.page_offset % m.align == 0,
            "area {:?} does not meet the alignment {:#x}",
            a,
            m.align
        );
    }
    for &r in &m.allowed {
        prop_assert!(!m.hit_reserved(r), "allowed range over a reservation: {:?}", r);
    }
    Ok(())
}

static OPS: AtomicUsize = AtomicUsize::new(0);

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut s = IovaSpace::<u32>::new();
    let mut m = Model::new();
    for (n, op) in ops.into_iter().enumerate() {
        OPS.fetch_add(1, Ordering::Relaxed);
        let tag = u32::try_from(n).unwrap();
        let before = s.clone();
        let failed = match &op {
            Op::Fixed { iova, pieces } => insert(&mut s, &mut m, Some(*iova), pieces, tag)?,
            Op::FixedAfter { pick, len, src } => {
                let iova = if m.areas.is_empty() {
                    0
                } else {
                    m.areas[pick.index(m.areas.len())].last.wrapping_add(1)
                };
                insert(&mut s, &mut m, Some(iova), &[(*len, *src)], tag)?
            }
            Op::Alloc { pieces } => insert(&mut s, &mut m, None, pieces, tag)?,
            Op::Remove { iova, len } => remove(&mut s, &mut m, *iova, *len)?,
            Op::RemovePicked { pick, mode } => {
                let (iova, len) = picked_range(&m, *pick, *mode);
                remove(&mut s, &mut m, iova, len)?
            }
            Op::RemoveAll => {
                let got: Vec<(u64, u64, u32)> = s
                    .remove_all()
                    .into_iter()
                    .map(|(_, r, t)| (r.start().raw(), r.last().raw(), t))
                    .collect();
                let want: Vec<(u64, u64, u32)> =
                    m.areas.drain(..).map(|a| (a.start, a.last, a.tag)).collect();
                prop_assert_eq!(got, want);
                false
            }
            Op::Allow(list) => {
                let ranges: Vec<IovaRange> = list.iter().map(|&(a, b)| range(a, b)).collect();
                let got = errno(s.set_allowed(&ranges));
                prop_assert_eq!(got, m.allow(list));
                got.is_err()
            }
            Op::Reserve { start, len, owner } => {
                let last = last_of(*start, (*len).max(1)).unwrap_or(MAX);
                let got = errno(s.reserve(range(*start, last), ReserveOwner(*owner)));
                prop_assert_eq!(got, m.reserve((*start, last), *owner));
                got.is_err()
            }
            Op::Unreserve(owner) => {
                s.unreserve_owner(ReserveOwner(*owner));
                m.reserved.retain(|r| r.2 != *owner);
                false
            }
            Op::Align(a) => {
                let got = errno(s.set_iova_alignment(Alignment::new(*a).unwrap()));
                prop_assert_eq!(got, m.set_align(*a));
                got.is_err()
            }
            Op::Cut { pick, offset } => {
                let iova = match m.areas.len() {
                    0 => *offset,
                    n => {
                        let a = m.areas[pick.index(n)];
                        a.start + offset % (a.last - a.start).saturating_add(1).max(1)
                    }
                };
                let got = errno(s.cut(Iova::new(iova), |t, _| (t, t)).map(|r| r.is_some()));
                prop_assert_eq!(got, m.cut(iova));
                got.is_err()
            }
            Op::Query { iova, len } => {
                if let Ok(r) = range_from_user(Iova::new(*iova), *len) {
                    prop_assert_eq!(s.is_contiguous_mapped(r), m.contiguous(pair(r)));
                    let got: Vec<(u64, u64)> = s.areas_in(r).map(|(_, a, _)| pair(a)).collect();
                    let want: Vec<(u64, u64)> = m
                        .areas
                        .iter()
                        .filter(|a| overlaps((a.start, a.last), pair(r)))
                        .map(|a| (a.start, a.last))
                        .collect();
                    prop_assert_eq!(got, want);
                    let at = s.area_at(r.start()).map(|(_, a, _)| pair(a));
                    let want_at = m
                        .areas
                        .iter()
                        .find(|a| a.start <= *iova && *iova <= a.last)
                        .map(|a| (a.start, a.last));
                    prop_assert_eq!(at, want_at);
                }
                false
            }
        };
        if failed {
            prop_assert!(s == before, "a refused {:?} changed the space", op);
        }
        check_state(&s, &m)?;
    }
    Ok(())
}

/// Runs one insert on both; answers whether it failed.
fn insert(
    s: &mut IovaSpace<u32>,
    m: &mut Model,
    at: Option<u64>,
    pieces: &[(u64, u64)],
    tag: u32,
) -> Result<bool, TestCaseError> {
    let placement = at.map_or(Placement::Alloc, |iova| Placement::Fixed(Iova::new(iova)));
    let got = errno(s.insert(placement, to_pieces(pieces, tag)));
    let want = if pieces.is_empty() {
        Err(Errno::INVAL)
    } else {
        m.place(at, pieces)
    };
    match (&got, want) {
        (Ok(out), Ok(start)) => {
            let want = m.insert(start, pieces, tag);
            prop_assert_eq!(
                out.iter().map(|(_, r)| pair(*r)).collect::<Vec<_>>(),
                want.clone()
            );
            if at.is_none() {
                let (len, src): (u64, u64) = (pieces.iter().map(|p| p.0).sum(), pieces[0].1);
                let a = alloc_align(src, len);
                let (first, last) = (want[0].0, want[want.len() - 1].1);
                prop_assert_eq!(first & (a - 1), (src % PAGE_SIZE) & (a - 1));
                prop_assert!(first >= PAGE_SIZE && last <= MAX - PAGE_SIZE);
                prop_assert!(m.windows().iter().any(|&(s, l)| s <= first && last <= l));
            }
            Ok(false)
        }
        (Err(e), Err(w)) => {
            prop_assert_eq!(*e, w);
            Ok(true)
        }
        (got, want) => Err(TestCaseError::fail(format!(
            "insert at {at:?} {pieces:?}: got {got:?}, model {want:?}"
        ))),
    }
}

fn remove(s: &mut IovaSpace<u32>, m: &mut Model, iova: u64, len: u64) -> Result<bool, TestCaseError> {
    let got = errno(range_from_user(Iova::new(iova), len).and_then(|r| s.remove_range(r)));
    let want = m.remove(iova, len);
    match (got, want) {
        (Ok(got), Ok(want)) => {
            let got: Vec<(u64, u64, u32)> = got
                .into_iter()
                .map(|(_, r, t)| (r.start().raw(), r.last().raw(), t))
                .collect();
            let want: Vec<(u64, u64, u32)> = want.into_iter().map(|a| (a.start, a.last, a.tag)).collect();
            prop_assert_eq!(got, want);
            Ok(false)
        }
        (Err(e), Err(w)) => {
            prop_assert_eq!(e, w);
            Ok(true)
        }
        (got, want) => Err(TestCaseError::fail(format!(
            "remove {iova:#x}+{len:#x}: got {got:?}, model {want:?}"
        ))),
    }
}

/// A range around an existing area: exactly it, a page more below, all but its last byte, or it
/// through the next area.
fn picked_range(m: &Model, pick: Index, mode: u8) -> (u64, u64) {
    if m.areas.is_empty() {
        return (0, PAGE_SIZE);
    }
    let i = pick.index(m.areas.len());
    let a = m.areas[i];
    let (s, l) = match mode {
        0 => (a.start, a.last),
        1 => (a.start.saturating_sub(PAGE_SIZE), a.last),
        2 => (a.start, a.last.saturating_sub(1).max(a.start)),
        _ => (a.start, m.areas.get(i + 1).map_or(a.last, |b| b.last)),
    };
    // Lengths of 2^64 bytes do not exist in the uAPI; stop one byte short.
    (s, (l - s).saturating_add(1))
}

#[test]
fn iova_space_matches_the_model() {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(op(), 80..=120);
    OPS.store(0, Ordering::Relaxed);
    if let Err(e) = runner.run(&strategy, run) {
        panic!("{e}");
    }
    let ops = OPS.load(Ordering::Relaxed);
    assert!(ops >= 20_000, "only {ops} operations ran");
}
