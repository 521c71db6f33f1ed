//! `map`: plan (overlap check + exact frame count), reserve the frames, then fill.
//!
//! Each table is visited once per pass; runs of entries are written in a loop. The page size of
//! every step is the largest allowed one that the IOVA and HPA are aligned to and the remaining
//! length holds (Linux's `iommu_pgsize`): at a given level that is exactly "the step covers a whole
//! entry's span and the HPA is aligned to it", which the fill decides per entry.

use super::pte::{self, Pte};
use super::{PageTable, PgTableError, TableFrame, TableMemory, Writer};
use std::sync::atomic::Ordering;
use uvfio_types::{Access, Hpa, Iova};

/// A validated map request.
#[derive(Debug, Clone, Copy)]
struct MapReq {
    /// `hpa - iova`, wrapping: the HPA of IOVA `x` is `x.wrapping_add(delta)`.
    delta: u64,
    /// The leaf's `R`/`W` bits.
    bits: u64,
}

impl<M: TableMemory> PageTable<M> {
    /// Maps `len` bytes at `iova` to `hpa` with `prot`, with the largest page sizes that fit.
    ///
    /// `iova`, `hpa` and `len` must be 4 KiB-aligned, `len > 0`, the IOVA range below the address
    /// width and the HPA range inside the 52-bit address field; `prot` must contain `READ` or
    /// `WRITE` (`EXEC` and `PRIV` are ignored). If any page of the range is mapped already the
    /// result is [`PgTableError::Exists`]; on any error nothing was changed.
    ///
    /// A table that maps nothing (an unmap leaves the tables it covers only in part) gives way to a
    /// super-page, as Linux's VT-d driver does: "Ensure that old small page tables are removed to
    /// make room for superpage(s)". The unlinked tables are retired, not freed: the next
    /// [`unmap`](Self::unmap) or [`take_retired`](Self::take_retired) hands them to a [`Gather`].
    ///
    /// [`Gather`]: super::Gather
    pub fn map(&self, iova: Iova, hpa: Hpa, len: u64, prot: Access) -> Result<(), PgTableError> {
        let (lo, last) = self.validate_map(iova, hpa, len, prot)?;
        let req = MapReq {
            delta: hpa.raw().wrapping_sub(lo),
            bits: pte::prot_bits(prot),
        };
        let mut w = self.writer.lock();
        let root = self.frame(self.root)?;
        let needed = self.plan(root, self.levels, lo, last, req)?;
        w.reserve(&self.mem, needed)?;
        let retired = w.retired.len();
        let result = self.fill(root, self.levels, lo, last, req, &mut w);
        w.give_back(&self.mem);
        let retired = w.retired.len() - retired;
        let made = result?;
        self.frames.fetch_add(made, Ordering::Relaxed);
        self.frames.fetch_sub(retired, Ordering::Relaxed);
        Ok(())
    }

    /// Checks a map request; returns its first and last IOVA.
    fn validate_map(&self, iova: Iova, hpa: Hpa, len: u64, prot: Access) -> Result<(u64, u64), PgTableError> {
        let Some(len_minus_one) = len.checked_sub(1) else {
            return Err(PgTableError::Empty);
        };
        if (iova.raw() | hpa.raw() | len) & 0xfff != 0 {
            return Err(PgTableError::Misaligned {
                iova,
                hpa,
                len,
                align: 0x1000,
            });
        }
        match iova.raw().checked_add(len_minus_one) {
            Some(last) if last >> self.width == 0 => {}
            _ => {
                return Err(PgTableError::BeyondAddressWidth {
                    start: iova,
                    width: self.width,
                });
            }
        }
        match hpa.raw().checked_add(len_minus_one) {
            Some(last) if last >> 52 == 0 => {}
            _ => return Err(PgTableError::HpaOutOfRange { hpa, len }),
        }
        if pte::prot_bits(prot) == 0 {
            return Err(PgTableError::NoPermission);
        }
        Ok((iova.raw(), iova.raw() + len_minus_one))
    }

    /// Whether the chunk `[cur, chunk_last]` at `level` becomes one leaf: it spans the entry's
    /// whole range, its HPA is aligned to it and the page size is allowed.
    #[inline]
    fn leaf_here(&self, level: u8, cur: u64, chunk_last: u64, delta: u64) -> bool {
        let mask = (1u64 << pte::level_shift(level)) - 1;
        self.leaf_ok[level as usize]
            && cur & mask == 0
            && chunk_last & mask == mask
            && cur.wrapping_add(delta) & mask == 0
    }

    /// Pass 1 over the existing table `frame` at `level` for `[lo, last]`: fails with `Exists` on
    /// any present leaf in the range, else returns how many new table frames the fill will need.
    fn plan(
        &self,
        frame: &TableFrame,
        level: u8,
        lo: u64,
        last: u64,
        req: MapReq,
    ) -> Result<usize, PgTableError> {
        if level == 1 {
            let (i0, i1) = (pte::level_index(lo, 1), pte::level_index(last, 1));
            return match frame.0[i0..=i1]
                .iter()
                .position(|e| Pte(e.load(Ordering::Relaxed)).is_present())
            {
                Some(k) => Err(PgTableError::Exists {
                    iova: Iova::new(lo + ((k as u64) << 12)),
                }),
                None => Ok(0),
            };
        }
        let size_mask = (1u64 << pte::level_shift(level)) - 1;
        let mut needed = 0;
        let mut cur = lo;
        loop {
            let chunk_last = (cur | size_mask).min(last);
            let p = Pte(frame.0[pte::level_index(cur, level)].load(Ordering::Relaxed));
            if p.is_present() {
                if p.is_super_page() {
                    return Err(PgTableError::Exists { iova: Iova::new(cur) });
                }
                let child = self.frame(p.addr())?;
                if self.leaf_here(level, cur, chunk_last, req.delta) {
                    // The leaf replaces the table if nothing under it is mapped.
                    if let Some(at) = self.first_present(child, level - 1, cur, chunk_last)? {
                        return Err(PgTableError::Exists { iova: Iova::new(at) });
                    }
                } else {
                    needed += self.plan(child, level - 1, cur, chunk_last, req)?;
                }
            } else if !self.leaf_here(level, cur, chunk_last, req.delta) {
                needed += self.count_new(level - 1, cur, chunk_last, req.delta);
            }
            if chunk_last == last {
                return Ok(needed);
            }
            cur = chunk_last + 1;
        }
    }

    /// How many frames a new table at `level` needs to map `[lo, last]`, itself included.
    fn count_new(&self, level: u8, lo: u64, last: u64, delta: u64) -> usize {
        if level == 1 {
            return 1;
        }
        let size_mask = (1u64 << pte::level_shift(level)) - 1;
        let mut needed = 1;
        let mut cur = lo;
        loop {
            let chunk_last = (cur | size_mask).min(last);
            if !self.leaf_here(level, cur, chunk_last, delta) {
                needed += self.count_new(level - 1, cur, chunk_last, delta);
            }
            if chunk_last == last {
                return needed;
            }
            cur = chunk_last + 1;
        }
    }

    /// The first IOVA in `[lo, last]` that the table `frame` at `level` maps, if any.
    pub(super) fn first_present(
        &self,
        frame: &TableFrame,
        level: u8,
        lo: u64,
        last: u64,
    ) -> Result<Option<u64>, PgTableError> {
        let size_mask = (1u64 << pte::level_shift(level)) - 1;
        let mut cur = lo;
        loop {
            let chunk_last = (cur | size_mask).min(last);
            let p = Pte(frame.0[pte::level_index(cur, level)].load(Ordering::Relaxed));
            if p.is_present() {
                if p.is_leaf(level) {
                    return Ok(Some(cur));
                }
                if let Some(at) = self.first_present(self.frame(p.addr())?, level - 1, cur, chunk_last)? {
                    return Ok(Some(at));
                }
            }
            if chunk_last == last {
                return Ok(None);
            }
            cur = chunk_last + 1;
        }
    }

    /// Retires the unlinked table at `table` (level `level`) and the tables under it.
    fn retire(&self, table: Hpa, level: u8, w: &mut Writer) {
        if let Some(frame) = self.mem.table(table).filter(|_| level > 1) {
            for e in &frame.0 {
                let p = Pte(e.load(Ordering::Relaxed));
                if p.is_present() && !p.is_leaf(level) {
                    self.retire(p.addr(), level - 1, w);
                }
            }
        }
        w.retired.push(table);
    }

    /// Pass 2: writes the leaves of `[lo, last]` under `frame` at `level`, linking new tables from
    /// the reserved frames once they are filled. Returns the number of new tables linked.
    fn fill(
        &self,
        frame: &TableFrame,
        level: u8,
        lo: u64,
        last: u64,
        req: MapReq,
        w: &mut Writer,
    ) -> Result<usize, PgTableError> {
        if level == 1 {
            let (i0, i1) = (pte::level_index(lo, 1), pte::level_index(last, 1));
            let mut raw =
                Pte::leaf(Hpa::new(lo.wrapping_add(req.delta)), Access::empty(), 1).raw() | req.bits;
            for e in &frame.0[i0..=i1] {
                e.store(raw, Ordering::Release);
                raw += 0x1000;
            }
            return Ok(0);
        }
        let size_mask = (1u64 << pte::level_shift(level)) - 1;
        let mut made = 0;
        let mut cur = lo;
        loop {
            let chunk_last = (cur | size_mask).min(last);
            let entry = &frame.0[pte::level_index(cur, level)];
            if self.leaf_here(level, cur, chunk_last, req.delta) {
                let leaf = Pte::leaf(Hpa::new(cur.wrapping_add(req.delta)), Access::empty(), level);
                let old = Pte(entry.load(Ordering::Relaxed));
                entry.store(leaf.raw() | req.bits, Ordering::Release);
                if old.is_present() {
                    // An emptied table (the plan checked): unlinked by the store above.
                    self.retire(old.addr(), level - 1, w);
                }
            } else {
                let p = Pte(entry.load(Ordering::Relaxed));
                if p.is_present() {
                    made += self.fill(self.frame(p.addr())?, level - 1, cur, chunk_last, req, w)?;
                } else {
                    let table = w.take(&self.mem)?;
                    made += 1 + self.fill(self.frame(table)?, level - 1, cur, chunk_last, req, w)?;
                    // Publish the table only now that it is filled.
                    entry.store(Pte::table(table).raw(), Ordering::Release);
                }
            }
            if chunk_last == last {
                return Ok(made);
            }
            cur = chunk_last + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testmem::TestMemory;
    use super::super::{Levels, PageTableConfig};
    use super::*;
    use uvfio_types::{PageSize, PageSizes};

    fn table(levels: Levels, page_sizes: PageSizes) -> PageTable<TestMemory> {
        PageTable::new(TestMemory::new(), PageTableConfig { levels, page_sizes }).unwrap()
    }

    fn leaves(pt: &PageTable<TestMemory>) -> Vec<(Iova, Hpa, PageSize)> {
        let mut v = Vec::new();
        pt.for_each_leaf(|t| v.push((t.iova_page, t.page, t.size)))
            .unwrap();
        v
    }

    #[test]
    fn aligned_gigabyte_is_one_leaf() {
        let pt = table(Levels::Four, PageSizes::all());
        pt.map(Iova::new(1 << 30), Hpa::new(3 << 30), 1 << 30, Access::RW)
            .unwrap();
        assert_eq!(
            leaves(&pt),
            vec![(Iova::new(1 << 30), Hpa::new(3 << 30), PageSize::Size1G)]
        );
        // Root + one level-3 table holding the 1 GiB leaf.
        assert_eq!(pt.table_frames(), 2);
        let t = pt.walk(Iova::new((1 << 30) + 0x1234_5678)).unwrap();
        assert_eq!(t.size, PageSize::Size1G);
        assert_eq!(
            t.hpa(Iova::new((1 << 30) + 0x1234_5678)),
            Some(Hpa::new((3 << 30) + 0x1234_5678))
        );
    }

    #[test]
    fn sizes_follow_alignment_and_the_allowed_set() {
        let pt = table(Levels::Four, PageSizes::all());
        // 4K head, 2M body, 1G, 4K tail; HPA offset keeps 2M alignment only for 2M pieces.
        let iova = (1u64 << 30) - (1 << 21) - 0x1000;
        let len = 0x1000 + (1 << 21) + (1 << 30) + 0x1000;
        pt.map(Iova::new(iova), Hpa::new(iova), len, Access::READ)
            .unwrap();
        let sizes: Vec<_> = leaves(&pt).into_iter().map(|l| l.2).collect();
        assert_eq!(
            sizes,
            vec![
                PageSize::Size4K,
                PageSize::Size2M,
                PageSize::Size1G,
                PageSize::Size4K
            ]
        );

        let pt = table(Levels::Four, PageSizes::SZ_4K | PageSizes::SZ_2M);
        pt.map(Iova::new(0), Hpa::new(0), 1 << 30, Access::READ).unwrap();
        assert_eq!(leaves(&pt).len(), 512);
        assert!(leaves(&pt).iter().all(|l| l.2 == PageSize::Size2M));

        // HPA only 4K-aligned relative to IOVA: all 4K pages.
        let pt = table(Levels::Four, PageSizes::all());
        pt.map(Iova::new(0), Hpa::new(0x1000), 4 << 20, Access::WRITE)
            .unwrap();
        assert_eq!(leaves(&pt).len(), 1024);
        assert_eq!(pt.table_frames(), 1 + 1 + 1 + 2);
    }

    #[test]
    fn five_levels_reach_57_bits() {
        let pt = table(Levels::Five, PageSizes::all());
        assert_eq!(pt.address_width(), 57);
        let top = (1u64 << 57) - 0x1000;
        pt.map(Iova::new(top), Hpa::new(0x5000), 0x1000, Access::RW)
            .unwrap();
        assert_eq!(pt.table_frames(), 5);
        let t = pt.walk(Iova::new(top + 0x10)).unwrap();
        assert_eq!((t.page, t.size), (Hpa::new(0x5000), PageSize::Size4K));
        assert!(matches!(
            pt.map(Iova::new(1 << 57), Hpa::new(0), 0x1000, Access::RW),
            Err(PgTableError::BeyondAddressWidth { width: 57, .. })
        ));
        let four = table(Levels::Four, PageSizes::all());
        assert!(matches!(
            four.map(Iova::new(top), Hpa::new(0), 0x1000, Access::RW),
            Err(PgTableError::BeyondAddressWidth { width: 48, .. })
        ));
    }

    #[test]
    fn requests_are_validated() {
        let pt = table(Levels::Four, PageSizes::all());
        let map = |iova: u64, hpa: u64, len: u64, prot| pt.map(Iova::new(iova), Hpa::new(hpa), len, prot);
        assert!(matches!(map(0, 0, 0, Access::RW), Err(PgTableError::Empty)));
        assert!(matches!(
            map(0x800, 0, 0x1000, Access::RW),
            Err(PgTableError::Misaligned { .. })
        ));
        assert!(matches!(
            map(0, 0x10, 0x1000, Access::RW),
            Err(PgTableError::Misaligned { .. })
        ));
        assert!(matches!(
            map(0, 0, 0x1800, Access::RW),
            Err(PgTableError::Misaligned { .. })
        ));
        assert!(matches!(
            map(!0xfffu64, 0, 0x2000, Access::RW),
            Err(PgTableError::BeyondAddressWidth { .. })
        ));
        assert!(matches!(
            map((1 << 48) - 0x1000, 0, 0x2000, Access::RW),
            Err(PgTableError::BeyondAddressWidth { .. })
        ));
        assert!(matches!(
            map(0, (1 << 52) - 0x1000, 0x2000, Access::RW),
            Err(PgTableError::HpaOutOfRange { .. })
        ));
        assert!(matches!(
            map(0, !0xfffu64, 0x2000, Access::RW),
            Err(PgTableError::HpaOutOfRange { .. })
        ));
        assert!(matches!(
            map(0, 0, 0x1000, Access::EXEC | Access::PRIV),
            Err(PgTableError::NoPermission)
        ));
        assert_eq!(pt.table_frames(), 1);
        assert_eq!(pt.memory().live_frames(), 1);
        map(
            (1 << 48) - 0x1000,
            (1 << 52) - 0x1000,
            0x1000,
            Access::READ | Access::EXEC,
        )
        .unwrap();
        let t = pt.walk(Iova::new((1 << 48) - 1)).unwrap();
        assert_eq!((t.page, t.prot), (Hpa::new((1 << 52) - 0x1000), Access::READ));
    }

    #[test]
    fn overlap_is_refused_and_changes_nothing() {
        let pt = table(Levels::Four, PageSizes::all());
        pt.map(Iova::new(0x40_5000), Hpa::new(0x9000), 0x1000, Access::RW)
            .unwrap();
        let frames = pt.table_frames();
        let before = leaves(&pt);
        // Spans a fresh 1G region first (would need new tables), then hits the page.
        let err = pt
            .map(Iova::new(0), Hpa::new(0), 1 << 31, Access::RW)
            .unwrap_err();
        assert!(
            matches!(err, PgTableError::Exists { iova } if iova == Iova::new(0x40_5000)),
            "{err}"
        );
        let err = pt
            .map(Iova::new(0x40_0000), Hpa::new(0), 1 << 21, Access::RW)
            .unwrap_err();
        assert!(
            matches!(err, PgTableError::Exists { iova } if iova == Iova::new(0x40_5000)),
            "{err}"
        );
        assert_eq!(leaves(&pt), before);
        assert_eq!(pt.table_frames(), frames);
        assert_eq!(pt.memory().live_frames(), frames);
        // A super-page blocks smaller maps inside it.
        pt.map(Iova::new(1 << 30), Hpa::new(0), 1 << 30, Access::RW)
            .unwrap();
        let err = pt
            .map(Iova::new((1 << 30) + 0x3000), Hpa::new(0), 0x1000, Access::RW)
            .unwrap_err();
        assert!(matches!(err, PgTableError::Exists { iova } if iova == Iova::new((1 << 30) + 0x3000)));
    }

    #[test]
    fn allocation_failure_at_every_point_changes_nothing() {
        let pt = table(Levels::Four, PageSizes::all());
        pt.map(Iova::new(0x1000), Hpa::new(0x1000), 0x1000, Access::RW)
            .unwrap();
        let before = leaves(&pt);
        let frames = pt.table_frames();
        // [1 GiB, 2 GiB + 12 KiB) with a 4 KiB-offset HPA: all 4 KiB leaves, in 2 new level-2
        // tables (under the existing level-3 one) and 512 + 1 new level-1 tables.
        let (iova, hpa, len) = (Iova::new(1 << 30), Hpa::new(0x1000), (1 << 30) + 0x3000);
        let mut n = 0;
        loop {
            pt.memory().fail_nth_alloc(n);
            match pt.map(iova, hpa, len, Access::RW) {
                Err(PgTableError::Alloc(_)) => {
                    assert_eq!(leaves(&pt), before);
                    assert_eq!(pt.table_frames(), frames);
                    assert_eq!(pt.memory().live_frames(), frames);
                    n += 1;
                }
                Ok(()) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(pt.memory().fault_pending());
        pt.memory().clear_faults();
        // 2 new L2 tables, 513 L1 tables.
        assert_eq!(n, 515);
        assert_eq!(pt.table_frames(), frames + 515);
    }
}
