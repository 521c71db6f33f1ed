//! The reference model of the page table that `pgtable_model.rs` checks against (it includes this
//! file as a module), and a scanner of the table frames that is independent of the crate's own
//! walker. Compiled on its own, this file tests the model and the scanner.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use uvfio_iommu::pgtable::pte::{self, Pte};
use uvfio_iommu::pgtable::testmem::TestMemory;
use uvfio_iommu::pgtable::{PageTable, PgTableError, TableMemory};
use uvfio_types::{Access, Hpa, PageSize, PageSizes};

/// 4 KiB.
pub const K4: u64 = 1 << 12;
/// 2 MiB.
pub const M2: u64 = 1 << 21;
/// 1 GiB.
pub const G1: u64 = 1 << 30;

thread_local! {
    /// What the operations of this thread's test exercised, by name.
    pub static COVERAGE: std::cell::RefCell<BTreeMap<&'static str, u64>> = const { std::cell::RefCell::new(BTreeMap::new()) };
}

pub fn cover(what: &'static str) {
    COVERAGE.with(|c| *c.borrow_mut().entry(what).or_default() += 1);
}

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub size: PageSize,
    pub hpa: u64,
    pub prot: Access,
}

/// What an operation is expected to return, in a comparable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok(u64),
    Empty,
    Misaligned,
    MisalignedRange,
    Beyond,
    HpaOutOfRange,
    NoPermission,
    Exists(u64),
    Alloc,
    Other,
}

pub fn outcome<T>(r: &Result<T, PgTableError>, ok: impl Fn(&T) -> u64) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(ok(v)),
        Err(PgTableError::Empty) => Outcome::Empty,
        Err(PgTableError::Misaligned { .. }) => Outcome::Misaligned,
        Err(PgTableError::MisalignedRange { .. }) => Outcome::MisalignedRange,
        Err(PgTableError::BeyondAddressWidth { .. }) => Outcome::Beyond,
        Err(PgTableError::HpaOutOfRange { .. }) => Outcome::HpaOutOfRange,
        Err(PgTableError::NoPermission) => Outcome::NoPermission,
        Err(PgTableError::Exists { iova }) => Outcome::Exists(iova.raw()),
        Err(PgTableError::Alloc(_)) => Outcome::Alloc,
        Err(_) => Outcome::Other,
    }
}

#[derive(Debug)]
pub struct Model {
    pub leaves: BTreeMap<u64, Leaf>,
    pub width: u32,
    pub sizes: PageSizes,
}

impl Model {
    pub fn leaf_at(&self, iova: u64) -> Option<(u64, Leaf)> {
        let (&base, &leaf) = self.leaves.range(..=iova).next_back()?;
        (iova - base < leaf.size.bytes()).then_some((base, leaf))
    }

    /// The leaves overlapping `[lo, last]`, in order.
    pub fn overlapping(&self, lo: u64, last: u64) -> Vec<(u64, Leaf)> {
        let mut v: Vec<_> = self.leaf_at(lo).filter(|&(b, _)| b < lo).into_iter().collect();
        v.extend(self.leaves.range(lo..=last).map(|(&b, &l)| (b, l)));
        v
    }

    pub fn expect_map(&self, iova: u64, hpa: u64, len: u64, prot: Access) -> Outcome {
        if len == 0 {
            return Outcome::Empty;
        }
        if iova % K4 != 0 || hpa % K4 != 0 || len % K4 != 0 {
            return Outcome::Misaligned;
        }
        match iova.checked_add(len - 1) {
            Some(last) if last < 1 << self.width => {}
            _ => return Outcome::Beyond,
        }
        match hpa.checked_add(len - 1) {
            Some(last) if last < 1 << 52 => {}
            _ => return Outcome::HpaOutOfRange,
        }
        if !prot.intersects(Access::RW) {
            return Outcome::NoPermission;
        }
        match self.overlapping(iova, iova + len - 1).first() {
            Some(&(b, _)) => Outcome::Exists(b.max(iova)),
            None => Outcome::Ok(0),
        }
    }

    pub fn map(&mut self, mut iova: u64, mut hpa: u64, mut len: u64, prot: Access) {
        let prot = prot & Access::RW;
        if iova >> (self.width - 1) != 0 {
            cover("top window");
        }
        if iova + len == 1 << self.width {
            cover("last page");
        }
        while len > 0 {
            let size = self
                .sizes
                .largest_fitting(iova, hpa, len)
                .expect("4 KiB always fits");
            match size {
                PageSize::Size1G => cover("leaf 1G"),
                PageSize::Size2M => cover("leaf 2M"),
                PageSize::Size4K => {}
            }
            self.leaves.insert(iova, Leaf { size, hpa, prot });
            iova += size.bytes();
            hpa += size.bytes();
            len -= size.bytes();
        }
    }

    pub fn expect_unmap(&self, start: u64, last: u64) -> Outcome {
        if start % K4 != 0 || last % K4 != K4 - 1 {
            return Outcome::MisalignedRange;
        }
        if last >> self.width != 0 {
            return Outcome::Beyond;
        }
        let bytes = self
            .overlapping(start, last)
            .iter()
            .map(|&(b, l)| overlap(b, l.size, start, last))
            .sum();
        Outcome::Ok(bytes)
    }

    /// Unmaps `[lo, last]`, splitting partly covered super-pages into next-size leaves.
    /// Returns (first byte unmapped, last byte unmapped, sizes of the leaves hit).
    pub fn unmap(&mut self, lo: u64, last: u64) -> Option<(u64, u64, PageSizes)> {
        let hit = self.overlapping(lo, last);
        let mut sizes = PageSizes::empty();
        for &(base, leaf) in &hit {
            self.leaves.remove(&base);
            sizes |= leaf.size.as_set();
            if base < lo || base + leaf.size.bytes() - 1 > last {
                self.split(base, leaf, lo, last);
            }
        }
        let (&(fb, _), &(lb, ll)) = (hit.first()?, hit.last()?);
        Some((fb.max(lo), (lb + ll.size.bytes() - 1).min(last), sizes))
    }

    pub fn split(&mut self, base: u64, leaf: Leaf, lo: u64, last: u64) {
        cover(if leaf.size == PageSize::Size1G {
            "split 1G"
        } else {
            "split 2M"
        });
        let child = match leaf.size {
            PageSize::Size4K => return,
            PageSize::Size2M => PageSize::Size4K,
            PageSize::Size1G => PageSize::Size2M,
        };
        let bytes = child.bytes();
        for i in 0..512 {
            let (c, c_last) = (base + i * bytes, base + (i + 1) * bytes - 1);
            let c_leaf = Leaf {
                size: child,
                hpa: leaf.hpa + i * bytes,
                prot: leaf.prot,
            };
            if c_last < lo || c > last {
                self.leaves.insert(c, c_leaf);
            } else if c < lo || c_last > last {
                self.split(c, c_leaf, lo, last);
            }
        }
    }
}

pub fn overlap(base: u64, size: PageSize, lo: u64, last: u64) -> u64 {
    let l = (base + size.bytes() - 1).min(last);
    l - base.max(lo) + 1
}

// ---------------------------------------------------------------------------------------------
// An independent scan of the frames.

#[derive(Debug)]
pub struct Scan {
    /// Only leaves overlapping `[lo, last]` are collected, only tables overlapping it are entered.
    pub lo: u64,
    pub last: u64,
    pub leaves: Vec<(u64, Leaf)>,
    pub tables: usize,
}

/// Scans the tables overlapping `[lo, last]`, checking every entry of each table it enters.
pub fn scan(pt: &PageTable<TestMemory>, lo: u64, last: u64) -> Result<Scan, TestCaseError> {
    let mut s = Scan {
        lo,
        last,
        leaves: Vec::new(),
        tables: 0,
    };
    scan_table(pt.memory(), pt.root(), pt.levels(), 0, &mut s)?;
    Ok(s)
}

pub fn scan_table(
    mem: &TestMemory,
    table: Hpa,
    level: u8,
    base: u64,
    s: &mut Scan,
) -> Result<(), TestCaseError> {
    let Some(frame) = mem.table(table) else {
        return Err(TestCaseError::fail(format!(
            "linked table {table:?} is not a live frame"
        )));
    };
    s.tables += 1;
    let shift = 12 + 9 * (u32::from(level) - 1);
    for (i, e) in frame.0.iter().enumerate() {
        let raw = e.load(Ordering::Acquire);
        if raw == 0 {
            continue;
        }
        let p = Pte(raw);
        prop_assert!(p.is_present(), "stray bits {:#x} in a not-present entry", raw);
        prop_assert_eq!(
            raw & (pte::PTE_ACCESSED | pte::PTE_DIRTY),
            0,
            "A/D set: {:#x}",
            raw
        );
        let at = base + ((i as u64) << shift);
        let inside = at <= s.last && at + ((1 << shift) - 1) >= s.lo;
        if level == 1 || p.is_super_page() {
            let size = match level {
                1 => PageSize::Size4K,
                2 => PageSize::Size2M,
                3 => PageSize::Size1G,
                _ => return Err(TestCaseError::fail(format!("PS at level {level}: {raw:#x}"))),
            };
            let extra = if level > 1 { pte::PTE_PAGE_SIZE } else { 0 };
            let reserved = raw & !(pte::ADDR_MASK | pte::PRESENT_MASK | extra);
            prop_assert_eq!(reserved, 0, "reserved bits: {:#x}", raw);
            prop_assert_eq!(p.addr().raw() % size.bytes(), 0, "misaligned leaf {:#x}", raw);
            if inside {
                s.leaves.push((
                    at,
                    Leaf {
                        size,
                        hpa: p.addr().raw(),
                        prot: p.access(),
                    },
                ));
            }
        } else {
            let flags = raw & !pte::ADDR_MASK;
            prop_assert_eq!(
                flags,
                pte::PRESENT_MASK,
                "table entry must be R|W only: {:#x}",
                raw
            );
            if inside {
                scan_table(mem, p.addr(), level - 1, at, s)?;
            }
        }
    }
    // An emptied table may stay linked: an unmap frees only the tables it covers whole (Linux's
    // VT-d "If range covers entire pagetable, free it"), and a map reuses or replaces it.
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tests of the model and the scanner themselves.

#[cfg(test)]
mod self_tests {
    use super::*;
    use uvfio_iommu::pgtable::{Gather, PageTableConfig};
    use uvfio_types::{Iova, IovaRange};

    fn model() -> Model {
        Model {
            leaves: BTreeMap::new(),
            width: 48,
            sizes: PageSizes::all(),
        }
    }

    #[test]
    fn the_model_splits_like_io_pgtable() {
        let mut m = model();
        assert_eq!(m.expect_map(G1, 5 * G1, G1, Access::RW), Outcome::Ok(0));
        m.map(G1, 5 * G1, G1, Access::RW | Access::EXEC);
        assert_eq!(
            m.leaf_at(G1 + 77),
            Some((
                G1,
                Leaf {
                    size: PageSize::Size1G,
                    hpa: 5 * G1,
                    prot: Access::RW
                }
            ))
        );
        assert_eq!(
            m.expect_map(G1 + K4, 0, K4, Access::READ),
            Outcome::Exists(G1 + K4)
        );
        let hole = (G1 + 3 * M2 + K4, G1 + 3 * M2 + 3 * K4 - 1);
        assert_eq!(m.expect_unmap(hole.0, hole.1), Outcome::Ok(2 * K4));
        assert_eq!(
            m.unmap(hole.0, hole.1),
            Some((hole.0, hole.1, PageSize::Size1G.as_set()))
        );
        // 511 MiB-pages and 510 pages remain.
        assert_eq!(m.leaves.len(), 511 + 510);
        assert_eq!(m.leaf_at(hole.0), None);
        let (base, leaf) = m.leaf_at(hole.1 + 1).unwrap();
        assert_eq!(
            (base, leaf.size, leaf.hpa),
            (hole.1 + 1, PageSize::Size4K, 5 * G1 + 3 * M2 + 3 * K4)
        );
        assert_eq!(m.leaf_at(G1 + 4 * M2).unwrap().1.size, PageSize::Size2M);
        assert_eq!(overlap(G1, PageSize::Size1G, 0, G1 + K4 - 1), K4);
        assert_eq!(m.expect_unmap(K4, 2 * K4), Outcome::MisalignedRange);
        assert_eq!(m.expect_map(1 << 48, 0, K4, Access::READ), Outcome::Beyond);
        assert_eq!(m.expect_map(0, 1 << 52, K4, Access::READ), Outcome::HpaOutOfRange);
        assert_eq!(m.expect_map(0, 0, K4, Access::EXEC), Outcome::NoPermission);
        assert_eq!(m.expect_map(0, 0, 0, Access::READ), Outcome::Empty);
        assert_eq!(m.expect_map(0x800, 0, K4, Access::READ), Outcome::Misaligned);
    }

    #[test]
    fn the_scanner_sees_what_the_model_predicts() {
        let pt = PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap();
        let mut m = model();
        for (iova, hpa, len) in [(0, 0, G1 + M2 + K4), (3 * G1 - K4, 7 * K4, 2 * K4)] {
            let got = outcome(&pt.map(Iova::new(iova), Hpa::new(hpa), len, Access::READ), |_| 0);
            assert_eq!(got, m.expect_map(iova, hpa, len, Access::READ));
            m.map(iova, hpa, len, Access::READ);
        }
        let mut g = Gather::new();
        let r = IovaRange::new(Iova::new(M2 + K4), Iova::new(G1 + 2 * M2 - 1)).unwrap();
        assert_eq!(
            outcome(&pt.unmap(r, &mut g), |b| *b),
            m.expect_unmap(M2 + K4, G1 + 2 * M2 - 1)
        );
        m.unmap(M2 + K4, G1 + 2 * M2 - 1);
        let s = scan(&pt, 0, u64::MAX).unwrap();
        assert_eq!(s.leaves, m.overlapping(0, u64::MAX));
        assert_eq!(s.tables, pt.table_frames());
        let part = scan(&pt, 3 * G1, 3 * G1).unwrap();
        assert_eq!(part.leaves, m.overlapping(3 * G1, 3 * G1));
        assert_eq!(COVERAGE.with(|c| c.borrow().get("split 2M").copied()), Some(1));
        g.release(pt.memory());
    }
}
