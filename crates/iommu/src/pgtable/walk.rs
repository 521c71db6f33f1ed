//! The lock-free walk (the hardware page walker), leaf iteration and a structural census.

use super::pte::{self, Pte};
use super::{PageTable, TableMemory, Translation, WalkError};
use std::sync::atomic::Ordering;
use uvfio_types::{Hpa, Iova};

/// Counts of what the tree holds, from [`PageTable::census`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Tables reachable from the root, by level (index 0 = level 1); the root is counted.
    pub tables: [usize; 5],
    /// Leaves by size: 4 KiB, 2 MiB, 1 GiB.
    pub leaves: [u64; 3],
    /// Reachable non-root tables without a present entry (a correct tree has none).
    pub empty_tables: usize,
    /// Entries whose `PS` bit is set at a level that cannot hold a super-page.
    pub bad_entries: usize,
}

impl Census {
    /// All reachable tables, the root included.
    pub fn total_tables(&self) -> usize {
        self.tables.iter().sum()
    }

    /// Bytes mapped by all leaves.
    pub fn mapped_bytes(&self) -> u64 {
        (self.leaves[0] << 12) + (self.leaves[1] << 21) + (self.leaves[2] << 30)
    }
}

impl<M: TableMemory> PageTable<M> {
    /// Translates `iova` as the hardware walker does: lock-free, one Acquire load per level.
    #[inline]
    pub fn walk(&self, iova: Iova) -> Result<Translation, WalkError> {
        let va = iova.raw();
        if va >> self.width != 0 {
            return Err(WalkError::BeyondAddressWidth);
        }
        let mut table = self.root;
        let mut level = self.levels;
        loop {
            let Some(frame) = self.mem.table(table) else {
                return Err(WalkError::BadTable { level });
            };
            let p = Pte(frame.0[pte::level_index(va, level)].load(Ordering::Acquire));
            if !p.is_present() {
                return Err(WalkError::NotPresent { level });
            }
            if p.is_leaf(level) {
                let Some(size) = pte::leaf_size(level) else {
                    return Err(WalkError::BadTable { level });
                };
                return Ok(Translation {
                    page: p.addr(),
                    iova_page: Iova::new(va & !size.offset_mask()),
                    size,
                    prot: p.access(),
                });
            }
            table = p.addr();
            level -= 1;
        }
    }

    /// Calls `f` for every leaf, in IOVA order. Lock-free like [`walk`](Self::walk): consistent only
    /// while no writer runs. Stops at a link to no frame.
    pub fn for_each_leaf(&self, mut f: impl FnMut(Translation)) -> Result<(), WalkError> {
        self.leaves_under(self.root, self.levels, 0, &mut f)
    }

    fn leaves_under(
        &self,
        table: Hpa,
        level: u8,
        base: u64,
        f: &mut impl FnMut(Translation),
    ) -> Result<(), WalkError> {
        let frame = self.mem.table(table).ok_or(WalkError::BadTable { level })?;
        let shift = pte::level_shift(level);
        for (i, e) in frame.0.iter().enumerate() {
            let p = Pte(e.load(Ordering::Acquire));
            if !p.is_present() {
                continue;
            }
            let at = base + ((i as u64) << shift);
            if p.is_leaf(level) {
                let size = pte::leaf_size(level).ok_or(WalkError::BadTable { level })?;
                f(Translation {
                    page: p.addr(),
                    iova_page: Iova::new(at),
                    size,
                    prot: p.access(),
                });
            } else {
                self.leaves_under(p.addr(), level - 1, at, f)?;
            }
        }
        Ok(())
    }

    /// Counts tables and leaves of the tree (a debugging and test aid; lock-free, consistent only
    /// while no writer runs).
    pub fn census(&self) -> Result<Census, WalkError> {
        let mut c = Census::default();
        self.census_under(self.root, self.levels, &mut c)?;
        Ok(c)
    }

    fn census_under(&self, table: Hpa, level: u8, c: &mut Census) -> Result<(), WalkError> {
        let frame = self.mem.table(table).ok_or(WalkError::BadTable { level })?;
        c.tables[level as usize - 1] += 1;
        let mut present = 0;
        for e in &frame.0 {
            let p = Pte(e.load(Ordering::Acquire));
            if !p.is_present() {
                continue;
            }
            present += 1;
            if p.is_leaf(level) {
                match pte::leaf_size(level) {
                    Some(size) => c.leaves[pte::level_of(size) as usize - 1] += 1,
                    None => c.bad_entries += 1,
                }
            } else {
                self.census_under(p.addr(), level - 1, c)?;
            }
        }
        if present == 0 && table != self.root {
            c.empty_tables += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testmem::TestMemory;
    use super::super::{Levels, PageTableConfig, TableMemory};
    use super::*;
    use uvfio_types::{Access, PageSize, PageSizes};

    #[test]
    fn walk_reports_the_level_of_the_miss() {
        let pt = PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap();
        assert_eq!(pt.walk(Iova::new(0)), Err(WalkError::NotPresent { level: 4 }));
        pt.map(
            Iova::new(0x20_0000),
            Hpa::new(0x40_0000),
            0x20_0000,
            Access::WRITE,
        )
        .unwrap();
        assert_eq!(
            pt.walk(Iova::new(0x1000)),
            Err(WalkError::NotPresent { level: 2 })
        );
        assert_eq!(
            pt.walk(Iova::new(1 << 30)),
            Err(WalkError::NotPresent { level: 3 })
        );
        assert_eq!(pt.walk(Iova::new(1 << 48)), Err(WalkError::BeyondAddressWidth));
        let t = pt.walk(Iova::new(0x3f_ffff)).unwrap();
        assert_eq!(
            t,
            Translation {
                page: Hpa::new(0x40_0000),
                iova_page: Iova::new(0x20_0000),
                size: PageSize::Size2M,
                prot: Access::WRITE
            }
        );
    }

    #[test]
    fn walk_reports_bad_tables_without_panicking() {
        let pt = PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap();
        let root = pt.memory().table(pt.root()).unwrap();
        root.0[1].store(Pte::table(Hpa::new(0x7000)).raw(), Ordering::Release);
        assert_eq!(pt.walk(Iova::new(1 << 39)), Err(WalkError::BadTable { level: 3 }));
        root.0[2].store(Pte::leaf(Hpa::new(0), Access::RW, 4).raw(), Ordering::Release);
        assert_eq!(pt.walk(Iova::new(2 << 39)), Err(WalkError::BadTable { level: 4 }));
        let c = pt.census();
        assert_eq!(c, Err(WalkError::BadTable { level: 3 }));
        root.0[1].store(0, Ordering::Release);
        assert_eq!(pt.census().unwrap().bad_entries, 1);
        root.0[2].store(0, Ordering::Release);
    }

    #[test]
    fn leaves_come_in_iova_order_with_a_census() {
        let cfg = PageTableConfig {
            levels: Levels::Five,
            page_sizes: PageSizes::all(),
        };
        let pt = PageTable::new(TestMemory::new(), cfg).unwrap();
        pt.map(Iova::new(1 << 50), Hpa::new(0), 1 << 30, Access::READ)
            .unwrap();
        pt.map(Iova::new(0x5000), Hpa::new(0x1000), 0x2000, Access::RW)
            .unwrap();
        pt.map(Iova::new(0x20_0000), Hpa::new(0x20_0000), 0x20_0000, Access::RW)
            .unwrap();
        let mut v = Vec::new();
        pt.for_each_leaf(|t| v.push((t.iova_page.raw(), t.size))).unwrap();
        assert_eq!(
            v,
            vec![
                (0x5000, PageSize::Size4K),
                (0x6000, PageSize::Size4K),
                (0x20_0000, PageSize::Size2M),
                (1 << 50, PageSize::Size1G)
            ]
        );
        let c = pt.census().unwrap();
        assert_eq!(c.leaves, [2, 1, 1]);
        assert_eq!(c.tables, [1, 1, 2, 2, 1]);
        assert_eq!(c.total_tables(), pt.table_frames());
        assert_eq!(c.mapped_bytes(), 0x2000 + 0x20_0000 + (1 << 30));
        assert_eq!(c.empty_tables, 0);
    }
}
