//! The Intel VT-d second-stage IO page-table format, kept in host-memory frames and walked by HPA.
//!
//! A [`PageTable`] is a radix tree of 4 KiB frames of 512 entries each, 4 levels deep (48-bit IOVA
//! width) or 5 levels deep (57-bit), exactly as VT-d second-stage ("second-level") tables are laid
//! out: level 1 entries map 4 KiB pages, level 2 and 3 entries may map 2 MiB and 1 GiB super-pages
//! (bit 7, PS), every other present entry points to the next table. The frames come from a
//! [`TableMemory`], the seam to the emulated host's physical memory; [`testmem::TestMemory`] is a
//! heap-backed double with fault injection for tests.
//!
//! Concurrency: [`PageTable::walk`] is lock-free (Acquire loads of the entries), like the hardware
//! walker it models. Writers ([`PageTable::map`], [`PageTable::unmap`]) serialize on an internal
//! mutex and publish a table only once it is filled (Release). Tables that an unmap empties are
//! unlinked and handed to a [`Gather`] instead of being freed, because a concurrent walker may still
//! be reading them; they are freed by [`Gather::release`] once the IOTLB has been invalidated, as
//! Linux's `iommu_iotlb_gather` freelist does.
//!
//! Failure is atomic: a `map` or `unmap` that fails leaves the table exactly as it was. Writers plan
//! first (overlap check and the exact number of frames needed), reserve the frames, and only then
//! touch entries, so no walker ever sees a mapping of a call that failed.
//!
//! There is no `unsafe` here: the memory seam hands out references to atomics.

mod error;
mod gather;
mod map;
pub mod pte;
pub mod testmem;
mod unmap;
mod walk;

pub use error::{PgTableError, WalkError};
pub use gather::Gather;
pub use walk::Census;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use uvfio_types::{Access, Hpa, Iova, PageSize, PageSizes};

/// Number of entries in one table frame.
pub const PTES_PER_TABLE: usize = 512;

/// A 4 KiB page-table frame: 512 PTEs.
#[repr(C, align(4096))]
pub struct TableFrame(pub [AtomicU64; PTES_PER_TABLE]);

impl TableFrame {
    /// A frame with every entry zero (not present).
    pub const fn new() -> Self {
        TableFrame([const { AtomicU64::new(0) }; PTES_PER_TABLE])
    }

    /// Whether no entry of the frame is present.
    pub fn is_empty(&self) -> bool {
        self.0
            .iter()
            .all(|e| !pte::Pte(e.load(Ordering::Relaxed)).is_present())
    }

    /// Sets every entry to zero.
    pub fn zero(&self) {
        for e in &self.0 {
            e.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for TableFrame {
    fn default() -> Self {
        TableFrame::new()
    }
}

impl std::fmt::Debug for TableFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = self
            .0
            .iter()
            .filter(|e| pte::Pte(e.load(Ordering::Relaxed)).is_present())
            .count();
        write!(f, "TableFrame {{ present: {present} }}")
    }
}

/// The seam to host memory: where page-table frames come from and how an HPA becomes a frame.
pub trait TableMemory: Send + Sync {
    /// A ZEROED 4 KiB frame for a page table, by its HPA.
    fn alloc_table(&self) -> Result<Hpa, TableAllocError>;
    /// Returns a frame that [`alloc_table`](Self::alloc_table) handed out.
    fn free_table(&self, table: Hpa);
    /// The frame at `table`, or `None` when no page-table frame lives there (the walker then
    /// reports [`WalkError::BadTable`], never panics).
    fn table(&self, table: Hpa) -> Option<&TableFrame>;
}

impl<T: TableMemory + ?Sized> TableMemory for std::sync::Arc<T> {
    #[inline]
    fn alloc_table(&self) -> Result<Hpa, TableAllocError> {
        (**self).alloc_table()
    }
    #[inline]
    fn free_table(&self, table: Hpa) {
        (**self).free_table(table)
    }
    #[inline]
    fn table(&self, table: Hpa) -> Option<&TableFrame> {
        (**self).table(table)
    }
}

impl<T: TableMemory + ?Sized> TableMemory for &T {
    #[inline]
    fn alloc_table(&self) -> Result<Hpa, TableAllocError> {
        (**self).alloc_table()
    }
    #[inline]
    fn free_table(&self, table: Hpa) {
        (**self).free_table(table)
    }
    #[inline]
    fn table(&self, table: Hpa) -> Option<&TableFrame> {
        (**self).table(table)
    }
}

/// No frame could be allocated for a page table.
#[derive(Debug, thiserror::Error)]
#[error("no frame for a page table")]
pub struct TableAllocError {
    /// Why the memory could not provide one, when it knows.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// How many levels of tables a [`PageTable`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Levels {
    /// 4-level tables: a 48-bit IOVA width (VT-d SAGAW bit 2, AGAW 48).
    #[default]
    Four,
    /// 5-level tables: a 57-bit IOVA width (VT-d SAGAW bit 3, AGAW 57).
    Five,
}

impl Levels {
    /// The number of levels, 4 or 5.
    pub const fn count(self) -> u8 {
        match self {
            Levels::Four => 4,
            Levels::Five => 5,
        }
    }

    /// The IOVA width in bits the tables translate: 48 or 57.
    pub const fn address_width(self) -> u32 {
        pte::level_shift(self.count()) + 9
    }
}

/// The shape of a [`PageTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageTableConfig {
    /// 4 or 5 levels.
    pub levels: Levels,
    /// The page sizes `map` may use (Linux's `pgsize_bitmap`). VT-d always supports 4 KiB, and
    /// hardware with 1 GiB super-pages also has 2 MiB ones, so the set must contain `SZ_4K`, and
    /// `SZ_1G` only together with `SZ_2M`.
    pub page_sizes: PageSizes,
}

impl Default for PageTableConfig {
    fn default() -> Self {
        PageTableConfig {
            levels: Levels::Four,
            page_sizes: PageSizes::all(),
        }
    }
}

/// The result of a successful walk: the leaf entry that maps an IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translation {
    /// The host-physical start of the leaf page.
    pub page: Hpa,
    /// The IOVA at which the leaf page starts.
    pub iova_page: Iova,
    /// The size of the leaf page.
    pub size: PageSize,
    /// The permissions the leaf grants (`READ` and/or `WRITE`).
    pub prot: Access,
}

impl Translation {
    /// The HPA that `iova` translates to through this leaf, or `None` if `iova` lies outside it.
    #[inline]
    pub fn hpa(&self, iova: Iova) -> Option<Hpa> {
        let off = iova.offset_from(self.iova_page)?;
        if off > self.size.offset_mask() {
            return None;
        }
        self.page.checked_add(off)
    }
}

/// Writer-side scratch state, guarded by the writer mutex.
#[derive(Debug, Default)]
struct Writer {
    /// Frames reserved for the current operation; empty between operations (capacity is kept).
    spare: Vec<Hpa>,
    /// Emptied tables a map unlinked to put a super-page in their place: a walker that started
    /// before may still read them, so they wait for the next unmap's [`Gather`] (or
    /// [`PageTable::take_retired`]) and are freed after an IOTLB invalidation like any other.
    retired: Vec<Hpa>,
}

impl Writer {
    /// Reserves `n` frames up front; on failure returns the ones obtained and reports the error.
    fn reserve<M: TableMemory>(&mut self, mem: &M, n: usize) -> Result<(), PgTableError> {
        self.spare.reserve(n);
        while self.spare.len() < n {
            match mem.alloc_table() {
                Ok(hpa) => self.spare.push(hpa),
                Err(e) => {
                    self.give_back(mem);
                    return Err(PgTableError::Alloc(e));
                }
            }
        }
        Ok(())
    }

    /// A reserved frame; falls back to allocating if the plan under-counted (it does not).
    fn take<M: TableMemory>(&mut self, mem: &M) -> Result<Hpa, PgTableError> {
        debug_assert!(!self.spare.is_empty(), "page-table plan under-counted frames");
        match self.spare.pop() {
            Some(hpa) => Ok(hpa),
            None => Ok(mem.alloc_table()?),
        }
    }

    /// Frees every reserved frame that was not used.
    fn give_back<M: TableMemory>(&mut self, mem: &M) {
        for hpa in self.spare.drain(..) {
            mem.free_table(hpa);
        }
    }
}

/// A VT-d second-stage IO page table in host memory.
///
/// Generic over its [`TableMemory`] so the walk is statically dispatched and inlined.
pub struct PageTable<M: TableMemory> {
    mem: M,
    root: Hpa,
    levels: u8,
    width: u32,
    page_sizes: PageSizes,
    /// `leaf_ok[level]`: whether `map` may put a leaf at that level (index 0 unused).
    leaf_ok: [bool; 6],
    /// Table frames linked into the tree, the root included.
    frames: AtomicUsize,
    writer: Mutex<Writer>,
}

impl<M: TableMemory> PageTable<M> {
    /// An empty page table: allocates the root frame.
    pub fn new(mem: M, config: PageTableConfig) -> Result<Self, PgTableError> {
        let sizes = config.page_sizes;
        let valid = sizes.bits() & !PageSizes::all().bits() == 0
            && sizes.contains(PageSizes::SZ_4K)
            && (!sizes.contains(PageSizes::SZ_1G) || sizes.contains(PageSizes::SZ_2M));
        if !valid {
            return Err(PgTableError::UnsupportedPageSizes { sizes });
        }
        let root = mem.alloc_table()?;
        if mem.table(root).is_none() {
            mem.free_table(root);
            return Err(PgTableError::BadTable { table: root });
        }
        let mut leaf_ok = [false; 6];
        for ps in PageSize::ALL {
            leaf_ok[pte::level_of(ps) as usize] = sizes.contains(ps.as_set());
        }
        let levels = config.levels.count();
        Ok(PageTable {
            mem,
            root,
            levels,
            width: config.levels.address_width(),
            page_sizes: sizes,
            leaf_ok,
            frames: AtomicUsize::new(1),
            writer: Mutex::new(Writer::default()),
        })
    }

    /// The HPA of the root table (what a VT-d context / PASID entry points to).
    pub fn root(&self) -> Hpa {
        self.root
    }

    /// The IOVA width in bits: 48 with 4 levels, 57 with 5.
    pub fn address_width(&self) -> u32 {
        self.width
    }

    /// The number of levels, 4 or 5.
    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// The page sizes `map` may use.
    pub fn page_sizes(&self) -> PageSizes {
        self.page_sizes
    }

    /// The memory the tables live in.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Table frames linked into the tree, the root included (frames handed to a [`Gather`] are no
    /// longer counted).
    pub fn table_frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }

    /// The frame at `table`, or the error a writer reports for a link to no frame.
    #[inline]
    fn frame(&self, table: Hpa) -> Result<&TableFrame, PgTableError> {
        self.mem.table(table).ok_or(PgTableError::BadTable { table })
    }

    /// Hands the tables that maps unlinked since the last unmap (see [`PageTable::map`]) to
    /// `gather`, to be freed after its invalidation.
    pub fn take_retired(&self, gather: &mut Gather) {
        let mut w = self.writer.lock();
        for table in w.retired.drain(..) {
            gather.push_table(table);
        }
    }

    /// Frees the subtree under the table at `table` (a table at `level`), the table included.
    fn free_subtree(&self, table: Hpa, level: u8) {
        if let Some(frame) = self.mem.table(table) {
            if level > 1 {
                for e in &frame.0 {
                    let p = pte::Pte(e.load(Ordering::Acquire));
                    if p.is_present() && !p.is_super_page() {
                        self.free_subtree(p.addr(), level - 1);
                    }
                }
            }
        }
        self.mem.free_table(table);
    }
}

impl<M: TableMemory> Drop for PageTable<M> {
    fn drop(&mut self) {
        self.free_subtree(self.root, self.levels);
        for table in self.writer.get_mut().retired.drain(..) {
            self.mem.free_table(table);
        }
    }
}

impl<M: TableMemory> std::fmt::Debug for PageTable<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTable")
            .field("root", &self.root)
            .field("levels", &self.levels)
            .field("page_sizes", &self.page_sizes)
            .field("table_frames", &self.table_frames())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::testmem::TestMemory;
    use super::*;

    #[test]
    fn levels_give_the_address_width() {
        assert_eq!(Levels::Four.address_width(), 48);
        assert_eq!(Levels::Five.address_width(), 57);
        assert_eq!(Levels::Five.count(), 5);
    }

    #[test]
    fn new_allocates_only_the_root() {
        let pt = PageTable::new(TestMemory::new(), PageTableConfig::default()).unwrap();
        assert_eq!(pt.table_frames(), 1);
        assert_eq!(pt.memory().live_frames(), 1);
        assert!(pt.memory().table(pt.root()).unwrap().is_empty());
        assert_eq!(pt.address_width(), 48);
        assert_eq!(pt.levels(), 4);
    }

    #[test]
    fn new_rejects_page_size_sets_vtd_cannot_have() {
        for sizes in [
            PageSizes::SZ_2M,
            PageSizes::SZ_4K | PageSizes::SZ_1G,
            PageSizes::empty(),
        ] {
            let cfg = PageTableConfig {
                levels: Levels::Four,
                page_sizes: sizes,
            };
            let err = PageTable::new(TestMemory::new(), cfg).unwrap_err();
            assert!(
                matches!(err, PgTableError::UnsupportedPageSizes { .. }),
                "{sizes:?}: {err}"
            );
        }
        let odd = PageSizes::from_bits_retain(PageSizes::SZ_4K.bits() | 1 << 16);
        let cfg = PageTableConfig {
            levels: Levels::Four,
            page_sizes: odd,
        };
        assert!(PageTable::new(TestMemory::new(), cfg).is_err());
    }

    #[test]
    fn new_reports_a_failed_root_allocation() {
        let mem = TestMemory::new();
        mem.fail_nth_alloc(0);
        let err = PageTable::new(mem, PageTableConfig::default()).unwrap_err();
        assert!(matches!(err, PgTableError::Alloc(_)));
    }

    #[test]
    fn drop_frees_every_frame() {
        let mem = std::sync::Arc::new(TestMemory::new());
        {
            let pt = PageTable::new(mem.clone(), PageTableConfig::default()).unwrap();
            pt.map(Iova::new(0x1000), Hpa::new(0x1000), 0x1000, Access::RW)
                .unwrap();
            pt.map(Iova::new(1 << 40), Hpa::new(0), 1 << 21, Access::READ)
                .unwrap();
            assert_eq!(mem.live_frames(), 6);
        }
        assert_eq!(mem.live_frames(), 0);
    }

    #[test]
    fn translation_hpa_stays_inside_the_leaf() {
        let t = Translation {
            page: Hpa::new(0x20_0000),
            iova_page: Iova::new(0x40_0000),
            size: PageSize::Size2M,
            prot: Access::READ,
        };
        assert_eq!(t.hpa(Iova::new(0x40_1234)), Some(Hpa::new(0x20_1234)));
        assert_eq!(t.hpa(Iova::new(0x60_0000)), None);
        assert_eq!(t.hpa(Iova::new(0x3f_ffff)), None);
    }
}
