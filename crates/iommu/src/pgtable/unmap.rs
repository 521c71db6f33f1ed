//! `unmap`: clear leaves, split super-pages that stick out of the range, unlink the tables the range
//! covers whole.
//!
//! Splitting follows Linux io-pgtable's `arm_lpae_split_blk_unmap`: a super-page only partly inside
//! the range is replaced by a next-level table that maps the part outside the range with the same
//! HPA offsets and permissions (recursively, 1 GiB → 2 MiB → 4 KiB). Only the super-pages holding
//! the range's first or last byte can need that, so at most four frames; they are reserved before
//! any entry changes, which makes the whole unmap atomic with respect to allocation failure.

use super::pte::{self, Pte};
use super::{Gather, PageTable, PgTableError, TableFrame, TableMemory, WalkError, Writer};
use std::sync::atomic::Ordering;
use uvfio_types::{Hpa, IovaRange, PageSize};

/// Mutable state of one unmap.
struct Ctx<'a> {
    gather: &'a mut Gather,
    writer: &'a mut Writer,
    /// Tables linked by splits.
    made: usize,
    /// Tables unlinked into the gather.
    unlinked: usize,
}

impl<M: TableMemory> PageTable<M> {
    /// Unmaps every leaf inside `range`, skipping holes; returns the number of bytes unmapped.
    ///
    /// `range` must start and end on 4 KiB boundaries and lie below the address width. The tables
    /// the range covers whole are unlinked into `gather` (one it covers in part stays, even if it
    /// maps nothing any more: Linux's VT-d driver frees a table only "If range covers entire
    /// pagetable"), with any a map retired, to be freed by [`Gather::release`] after the IOTLB
    /// invalidation; `gather` also records the span and page sizes unmapped. On error nothing was
    /// changed and `gather` is untouched.
    pub fn unmap(&self, range: IovaRange, gather: &mut Gather) -> Result<u64, PgTableError> {
        if !range.is_aligned(PageSize::Size4K) {
            return Err(PgTableError::MisalignedRange { range, align: 0x1000 });
        }
        let (lo, last) = (range.start().raw(), range.last().raw());
        if last >> self.width != 0 {
            return Err(PgTableError::BeyondAddressWidth {
                start: range.start(),
                width: self.width,
            });
        }
        let mut w = self.writer.lock();
        let needed = self.split_plan(lo, last)?;
        w.reserve(&self.mem, needed)?;
        let mut ctx = Ctx {
            gather,
            writer: &mut w,
            made: 0,
            unlinked: 0,
        };
        let root = self.frame(self.root);
        let result = root.and_then(|root| self.unmap_level(root, self.levels, lo, last, &mut ctx));
        let (made, unlinked) = (ctx.made, ctx.unlinked);
        w.give_back(&self.mem);
        if result.is_ok() {
            // Tables maps retired (counted out when they were unlinked) go with this batch.
            for table in w.retired.drain(..) {
                gather.push_table(table);
            }
        }
        if made >= unlinked {
            self.frames.fetch_add(made - unlinked, Ordering::Relaxed);
        } else {
            self.frames.fetch_sub(unlinked - made, Ordering::Relaxed);
        }
        result
    }

    /// How many frames the splits of an unmap of `[lo, last]` need.
    fn split_plan(&self, lo: u64, last: u64) -> Result<usize, PgTableError> {
        // Tables a split creates, by (level, first IOVA); at most two per boundary.
        let mut keys = [(0u8, 0u64); 4];
        let mut n = 0;
        for b in [lo, last] {
            let t = match self.walk(uvfio_types::Iova::new(b)) {
                Ok(t) => t,
                Err(WalkError::NotPresent { .. }) => continue,
                Err(WalkError::BadTable { .. } | WalkError::BeyondAddressWidth) => {
                    return Err(PgTableError::BadTable { table: self.root });
                }
            };
            let base = t.iova_page.raw();
            let page_last = base + t.size.offset_mask();
            if t.size == PageSize::Size4K || (lo <= base && page_last <= last) {
                continue;
            }
            let level = pte::level_of(t.size);
            let mut add = |key: (u8, u64)| {
                if !keys[..n].contains(&key) {
                    keys[n] = key;
                    n += 1;
                }
            };
            add((level - 1, base));
            if level == 3 {
                let block = b & !PageSize::Size2M.offset_mask();
                let block_last = block + PageSize::Size2M.offset_mask();
                if block < lo || block_last > last {
                    add((1, block));
                }
            }
        }
        Ok(n)
    }

    /// Unmaps `[lo, last]` under the table `frame` at `level`; returns the bytes unmapped.
    fn unmap_level(
        &self,
        frame: &TableFrame,
        level: u8,
        lo: u64,
        last: u64,
        ctx: &mut Ctx<'_>,
    ) -> Result<u64, PgTableError> {
        if level == 1 {
            let (i0, i1) = (pte::level_index(lo, 1), pte::level_index(last, 1));
            let mut bytes = 0;
            let (mut first, mut final_) = (u64::MAX, 0);
            for (k, e) in frame.0[i0..=i1].iter().enumerate() {
                if Pte(e.load(Ordering::Relaxed)).is_present() {
                    e.store(0, Ordering::Release);
                    let at = lo + ((k as u64) << 12);
                    first = first.min(at);
                    final_ = at;
                    bytes += 0x1000;
                }
            }
            if bytes != 0 {
                ctx.gather.add(first, final_ + 0xfff, PageSize::Size4K);
            }
            return Ok(bytes);
        }
        let size_mask = (1u64 << pte::level_shift(level)) - 1;
        let mut bytes = 0;
        let mut cur = lo;
        loop {
            let chunk_last = (cur | size_mask).min(last);
            let entry = &frame.0[pte::level_index(cur, level)];
            let p = Pte(entry.load(Ordering::Relaxed));
            let whole = cur & size_mask == 0 && chunk_last & size_mask == size_mask;
            if p.is_present() {
                if p.is_super_page() {
                    let Some(size) = pte::leaf_size(level) else {
                        return Err(PgTableError::BadTable { table: p.addr() });
                    };
                    if !whole {
                        let table = self.split(p, level - 1, cur & !size_mask, cur, chunk_last, ctx)?;
                        entry.store(Pte::table(table).raw(), Ordering::Release);
                    } else {
                        entry.store(0, Ordering::Release);
                    }
                    ctx.gather.add(cur, chunk_last, size);
                    bytes += chunk_last - cur + 1;
                } else if whole {
                    entry.store(0, Ordering::Release);
                    bytes += self.detach(p.addr(), level - 1, cur, ctx);
                } else {
                    // A table the range covers only in part stays, even if it is empty now: it
                    // goes with the domain, or with an unmap that covers all of it (as above).
                    let child = self.frame(p.addr())?;
                    bytes += self.unmap_level(child, level - 1, cur, chunk_last, ctx)?;
                }
            }
            if chunk_last == last {
                return Ok(bytes);
            }
            cur = chunk_last + 1;
        }
    }

    /// Hands the already-unlinked table at `table` (level `level`, mapping from IOVA `base`) and
    /// every table under it to the gather; returns the bytes its leaves mapped. The entries are
    /// left as they are: a walker that read the old link still sees the old translation until the
    /// IOTLB invalidation, and the frames are zeroed when they are allocated again.
    fn detach(&self, table: Hpa, level: u8, base: u64, ctx: &mut Ctx<'_>) -> u64 {
        ctx.gather.push_table(table);
        ctx.unlinked += 1;
        let Some(frame) = self.mem.table(table) else {
            return 0;
        };
        let shift = pte::level_shift(level);
        let mut bytes = 0;
        for (i, e) in frame.0.iter().enumerate() {
            let p = Pte(e.load(Ordering::Relaxed));
            if !p.is_present() {
                continue;
            }
            let at = base + ((i as u64) << shift);
            match pte::leaf_size(level) {
                Some(size) if p.is_leaf(level) => {
                    ctx.gather.add(at, at + size.offset_mask(), size);
                    bytes += size.bytes();
                }
                _ => bytes += self.detach(p.addr(), level - 1, at, ctx),
            }
        }
        bytes
    }

    /// Builds the table at `level` that replaces the super-page `p` (at `level + 1`, first IOVA
    /// `base`) minus `[lo, last]`: leaves for the parts outside, tables for parts cut in two.
    fn split(
        &self,
        p: Pte,
        level: u8,
        base: u64,
        lo: u64,
        last: u64,
        ctx: &mut Ctx<'_>,
    ) -> Result<Hpa, PgTableError> {
        let table = ctx.writer.take(&self.mem)?;
        let frame = self.frame(table)?;
        ctx.made += 1;
        let shift = pte::level_shift(level);
        let child_mask = (1u64 << shift) - 1;
        let prot = p.access();
        for (i, e) in frame.0.iter().enumerate() {
            let off = (i as u64) << shift;
            let (c_lo, c_last) = (base + off, base + off + child_mask);
            let page = Hpa::new(p.addr().raw() + off);
            if c_last < lo || c_lo > last {
                e.store(Pte::leaf(page, prot, level).raw(), Ordering::Relaxed);
            } else if c_lo < lo || c_last > last {
                let sub = self.split(Pte::leaf(page, prot, level), level - 1, c_lo, lo, last, ctx)?;
                e.store(Pte::table(sub).raw(), Ordering::Relaxed);
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PageTableConfig;
    use super::super::testmem::TestMemory;
    use super::*;
    use uvfio_types::{Access, Iova};

    fn range(start: u64, len: u64) -> IovaRange {
        IovaRange::from_start_len(Iova::new(start), len).unwrap()
    }

    fn new_table() -> PageTable<TestMemory> {
        PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap()
    }

    #[test]
    fn unmap_returns_bytes_and_frees_into_the_gather() {
        let pt = new_table();
        pt.map(Iova::new(0x1000), Hpa::new(0x8000), 0x3000, Access::RW)
            .unwrap();
        let mut g = Gather::new();
        assert_eq!(pt.unmap(range(0x2000, 0x1000), &mut g).unwrap(), 0x1000);
        assert!(g.freed_tables().is_empty());
        assert_eq!(g.range(), Some(range(0x2000, 0x1000)));
        // The first GiB is all of one L3 entry: its L2 table and the L1 under it go; the L3 table,
        // covered in part, stays though it is empty now.
        assert_eq!(pt.unmap(range(0, 1 << 30), &mut g).unwrap(), 0x2000);
        assert_eq!(g.range(), Some(range(0x1000, 0x3000)));
        assert_eq!(g.freed_tables().len(), 2);
        assert_eq!(pt.table_frames(), 2);
        assert_eq!(pt.memory().live_frames(), 4);
        g.release(pt.memory());
        assert_eq!(pt.memory().live_frames(), 2);
        // Nothing mapped in the second GiB: nothing to unmap, nothing freed.
        assert_eq!(pt.unmap(range(1 << 30, 1 << 30), &mut g).unwrap(), 0);
        assert!(g.is_empty());
        // 1 TiB covers the root entry holding the L3 table whole: it goes too.
        assert_eq!(pt.unmap(range(0, 1 << 40), &mut g).unwrap(), 0);
        assert_eq!(g.freed_tables().len(), 1);
        assert_eq!(pt.table_frames(), 1);
    }

    #[test]
    fn a_table_covered_in_part_stays_when_emptied_and_serves_the_next_map() {
        let pt = new_table();
        let map = |iova: u64| {
            pt.map(Iova::new(iova), Hpa::new(0x8000), 0x1000, Access::RW)
                .unwrap();
        };
        map(0x5000);
        // Root, L3, L2, L1.
        assert_eq!(pt.table_frames(), 4);
        let mut g = Gather::new();
        assert_eq!(pt.unmap(range(0x5000, 0x1000), &mut g).unwrap(), 0x1000);
        assert!(
            g.freed_tables().is_empty(),
            "Linux frees a table only when the range covers it"
        );
        assert_eq!(pt.table_frames(), 4);
        // The next map into the same 2 MiB allocates nothing.
        let live = pt.memory().live_frames();
        map(0x9000);
        assert_eq!((pt.table_frames(), pt.memory().live_frames()), (4, live));
        assert_eq!(pt.unmap(range(0x9000, 0x1000), &mut g).unwrap(), 0x1000);
    }

    #[test]
    fn splitting_a_gigabyte_page_keeps_the_rest() {
        let pt = new_table();
        let (iova, hpa) = (3u64 << 30, 5u64 << 30);
        pt.map(Iova::new(iova), Hpa::new(hpa), 1 << 30, Access::READ)
            .unwrap();
        let mut g = Gather::new();
        let hole = range(iova + (5 << 21) + 0x3000, 0x2000);
        assert_eq!(pt.unmap(hole, &mut g).unwrap(), 0x2000);
        assert_eq!(g.page_sizes(), PageSize::Size1G.as_set());
        // Root, L3, the new L2 and L1 tables.
        assert_eq!(pt.table_frames(), 4);
        for off in [
            0u64,
            0x1000,
            (5 << 21) + 0x2000,
            (5 << 21) + 0x5000,
            (6 << 21),
            (1 << 30) - 1,
        ] {
            let t = pt.walk(Iova::new(iova + off)).unwrap();
            assert_eq!(
                t.hpa(Iova::new(iova + off)),
                Some(Hpa::new(hpa + off)),
                "{off:#x}"
            );
            assert_eq!(t.prot, Access::READ);
        }
        assert_eq!(
            pt.walk(Iova::new(iova + (6 << 21))).unwrap().size,
            PageSize::Size2M
        );
        assert_eq!(
            pt.walk(Iova::new(iova + (5 << 21))).unwrap().size,
            PageSize::Size4K
        );
        assert!(matches!(
            pt.walk(hole.start()),
            Err(WalkError::NotPresent { level: 1 })
        ));
        assert!(matches!(
            pt.walk(hole.last()),
            Err(WalkError::NotPresent { level: 1 })
        ));
    }

    #[test]
    fn split_failure_changes_nothing() {
        let pt = new_table();
        pt.map(Iova::new(0), Hpa::new(0), 1 << 30, Access::RW).unwrap();
        let mut g = Gather::new();
        for n in 0..2 {
            pt.memory().fail_nth_alloc(n);
            let err = pt.unmap(range(0x1000, 0x1000), &mut g).unwrap_err();
            assert!(matches!(err, PgTableError::Alloc(_)));
            assert!(g.is_empty());
            assert_eq!(pt.table_frames(), 2);
            assert_eq!(pt.memory().live_frames(), 2);
            assert_eq!(pt.walk(Iova::new(0x1000)).unwrap().size, PageSize::Size1G);
        }
        assert_eq!(pt.unmap(range(0x1000, 0x1000), &mut g).unwrap(), 0x1000);
        assert_eq!(pt.table_frames(), 4);
    }

    #[test]
    fn misaligned_and_too_wide_ranges_are_refused() {
        let pt = new_table();
        let mut g = Gather::new();
        let bad = IovaRange::new(Iova::new(0x1000), Iova::new(0x1ffe)).unwrap();
        assert!(matches!(
            pt.unmap(bad, &mut g),
            Err(PgTableError::MisalignedRange { .. })
        ));
        assert!(matches!(
            pt.unmap(range(0x800, 0x1000), &mut g),
            Err(PgTableError::MisalignedRange { .. })
        ));
        assert!(matches!(
            pt.unmap(range(0, 1 << 49), &mut g),
            Err(PgTableError::BeyondAddressWidth { .. })
        ));
        assert!(matches!(
            pt.unmap(IovaRange::full(), &mut g),
            Err(PgTableError::BeyondAddressWidth { .. })
        ));
        assert_eq!(pt.unmap(range(0, 1 << 48), &mut g).unwrap(), 0);
    }

    #[test]
    fn a_split_of_both_ends_of_one_page_shares_tables() {
        let pt = new_table();
        pt.map(Iova::new(0), Hpa::new(0), 1 << 30, Access::RW).unwrap();
        assert_eq!(pt.split_plan(0x1000, 0x2fff).unwrap(), 2);
        assert_eq!(pt.split_plan(0x1000, (4 << 21) + 0x2fff).unwrap(), 3);
        assert_eq!(pt.split_plan(0, (4 << 21) - 1).unwrap(), 1);
        assert_eq!(pt.split_plan(0, (1 << 30) - 1).unwrap(), 0);
        pt.map(Iova::new(1 << 30), Hpa::new(0), 1 << 30, Access::RW)
            .unwrap();
        assert_eq!(pt.split_plan(0x1000, (1 << 30) + 0x2fff).unwrap(), 4);
        let mut g = Gather::new();
        pt.memory().fail_nth_alloc(4);
        assert_eq!(
            pt.unmap(range(0x1000, (1 << 30) + 0x2000), &mut g).unwrap(),
            (1 << 30) + 0x2000
        );
        assert!(pt.memory().fault_pending());
    }
}
