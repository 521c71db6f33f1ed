//! What an unmap leaves for the IOTLB invalidation: the span it covered and the tables it freed.

use super::TableMemory;
use uvfio_types::{Hpa, Iova, IovaRange, PageSize, PageSizes};

/// Collects what one or more unmaps did, like Linux's `struct iommu_iotlb_gather`: the IOVA span to
/// invalidate, the page sizes whose leaves were removed, and the table frames that were unlinked.
///
/// The unlinked frames are not freed by the unmap, because a walker that started before it may
/// still be reading them; [`release`](Self::release) frees them once the IOTLB invalidation of
/// [`range`](Self::range) has completed. Dropping a `Gather` without releasing it leaks the frames.
#[derive(Debug)]
pub struct Gather {
    span: Option<(Iova, Iova)>,
    sizes: PageSizes,
    freed: Vec<Hpa>,
}

impl Default for Gather {
    fn default() -> Self {
        Gather::new()
    }
}

impl Gather {
    /// An empty gather.
    pub const fn new() -> Self {
        Gather {
            span: None,
            sizes: PageSizes::empty(),
            freed: Vec::new(),
        }
    }

    /// The smallest IOVA range covering every byte unmapped since the last release, if any.
    pub fn range(&self) -> Option<IovaRange> {
        let (start, last) = self.span?;
        IovaRange::new(start, last).ok()
    }

    /// The sizes of the leaves that were removed or split (a split 1 GiB page counts as 1 GiB: an
    /// IOTLB may hold a 1 GiB entry for it).
    pub fn page_sizes(&self) -> PageSizes {
        self.sizes
    }

    /// The table frames unlinked since the last release, waiting to be freed.
    pub fn freed_tables(&self) -> &[Hpa] {
        &self.freed
    }

    /// Whether nothing was unmapped and no table is waiting.
    pub fn is_empty(&self) -> bool {
        self.span.is_none() && self.freed.is_empty()
    }

    /// Frees the unlinked tables into `mem` and resets the gather for the next batch (the list keeps
    /// its capacity). Call only after the IOTLB invalidation of [`range`](Self::range).
    pub fn release<M: TableMemory + ?Sized>(&mut self, mem: &M) {
        for table in self.freed.drain(..) {
            mem.free_table(table);
        }
        self.span = None;
        self.sizes = PageSizes::empty();
    }

    /// Records that `[start, last]` was unmapped from a leaf of `size`.
    #[inline]
    pub(crate) fn add(&mut self, start: u64, last: u64, size: PageSize) {
        let (s, l) = match self.span {
            None => (start, last),
            Some((s, l)) => (s.raw().min(start), l.raw().max(last)),
        };
        self.span = Some((Iova::new(s), Iova::new(l)));
        self.sizes |= size.as_set();
    }

    /// Records an unlinked table.
    #[inline]
    pub(crate) fn push_table(&mut self, table: Hpa) {
        self.freed.push(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgtable::testmem::TestMemory;

    #[test]
    fn spans_merge_and_release_resets() {
        let mem = TestMemory::new();
        let mut g = Gather::new();
        assert!(g.is_empty() && g.range().is_none());
        g.add(0x5000, 0x5fff, PageSize::Size4K);
        g.add(0x20_0000, 0x3f_ffff, PageSize::Size2M);
        g.add(0x1000, 0x1fff, PageSize::Size4K);
        assert_eq!(
            g.range(),
            IovaRange::new(Iova::new(0x1000), Iova::new(0x3f_ffff)).ok()
        );
        assert_eq!(g.page_sizes(), PageSizes::SZ_4K | PageSizes::SZ_2M);
        let t = mem.alloc_table().unwrap();
        g.push_table(t);
        assert_eq!(g.freed_tables(), &[t]);
        assert_eq!(mem.live_frames(), 1);
        g.release(&mem);
        assert_eq!(mem.live_frames(), 0);
        assert!(g.is_empty() && g.freed_tables().is_empty());
        assert_eq!(g.page_sizes(), PageSizes::empty());
    }
}
