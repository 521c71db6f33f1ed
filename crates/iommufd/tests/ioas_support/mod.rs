//! What the IOAS copy and access tests share: a page-aligned buffer, the kernel selftest's fixture
//! variants (no domain, one or two mock domains, a 16-page memory limit), the selftest's access
//! double (`selftest.c`'s `selftest_access`), and the leak checks run after every test and after
//! every injected failure.
// Each test crate uses part of this module.
#![allow(dead_code)]

use parking_lot::Mutex;
use rustix::io::Errno;
use std::sync::{Arc, Weak};
use uvfio_iommu::{Domain, DomainConfig};
use uvfio_iommufd::fail::FailPoints;
use uvfio_iommufd::ioas::{AccessId, AccessNotify, IoPageTable, IoasError};
use uvfio_iommufd::pages::Account;
use uvfio_memory::{HostMemory, MemoryConfig, UserBuffer};
use uvfio_types::{HostVa, Hpa, Iova, IovaRange};

/// `PAGE_SIZE`.
pub const PAGE: u64 = 4096;
/// The selftest's `MOCK_PAGE_SIZE` (`PAGE_SIZE / 2`): the unit of the sweeps.
pub const HALF_PAGE: u64 = PAGE / 2;
/// The selftest's `BUFFER_SIZE`: 16 pages.
pub const BUFFER_PAGES: usize = 16;
pub const BUFFER_SIZE: u64 = BUFFER_PAGES as u64 * PAGE;
/// The selftest's `MOCK_APERTURE_START`, used as the base IOVA in every variant.
pub const BASE: u64 = 1 << 24;

/// A page-aligned heap buffer that outlives the IOAS in each test.
pub struct Buffer {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Buffer {
    pub fn new(pages: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(pages * 4096, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Buffer { ptr, layout }
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn user(&self, offset: u64, len: u64) -> UserBuffer {
        // SAFETY: freed only when `Buffer` drops, after the IOAS and everything adopted from it.
        unsafe { UserBuffer::new(HostVa::from_ptr(self.ptr).checked_add(offset).unwrap(), len) }
    }

    pub fn byte(&self, at: usize) -> u8 {
        assert!(at < self.len());
        let p = self.ptr.wrapping_add(at);
        // SAFETY: `at` is inside the allocation; read through a raw pointer since devices write it.
        unsafe { p.read_volatile() }
    }

    pub fn set(&self, at: usize, v: u8) {
        assert!(at < self.len());
        let p = self.ptr.wrapping_add(at);
        // SAFETY: as for `byte`.
        unsafe { p.write_volatile(v) }
    }

    pub fn bytes(&self, at: usize, len: usize) -> Vec<u8> {
        (at..at + len).map(|i| self.byte(i)).collect()
    }

    /// Fills the buffer with bytes from `rng`.
    pub fn randomize(&self, rng: &mut Rng) {
        for i in 0..self.len() {
            self.set(i, rng.byte());
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// xorshift64: reproducible noise for the read/write sweeps (the selftest's `rand()`).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.byte();
        }
    }
}

/// The selftest's `FIXTURE_VARIANT(iommufd_ioas)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    pub mock_domains: usize,
    /// `SET_TEMP_MEMORY_LIMIT`, in pages.
    pub memory_limit: Option<u64>,
}

pub const VARIANTS: [Variant; 4] = [
    Variant {
        name: "no_domain",
        mock_domains: 0,
        memory_limit: None,
    },
    Variant {
        name: "mock_domain",
        mock_domains: 1,
        memory_limit: None,
    },
    Variant {
        name: "two_mock_domain",
        mock_domains: 2,
        memory_limit: None,
    },
    Variant {
        name: "mock_domain_limit",
        mock_domains: 1,
        memory_limit: Some(16),
    },
];

/// One IOAS on a fresh host, with the variant's domains attached.
pub struct Rig {
    pub mem: Arc<HostMemory>,
    pub account: Arc<Account>,
    pub fail: Arc<FailPoints>,
    pub ioas: Arc<IoPageTable>,
    pub domains: Vec<Arc<Domain>>,
    pub variant: Variant,
}

pub fn host() -> Arc<HostMemory> {
    Arc::new(
        HostMemory::new(MemoryConfig {
            ram_bytes: 64 << 20,
            ..MemoryConfig::default()
        })
        .unwrap(),
    )
}

pub fn domain(mem: &Arc<HostMemory>) -> Arc<Domain> {
    Domain::new_paging(Arc::clone(mem), DomainConfig::default()).unwrap()
}

pub fn rig(variant: Variant) -> Rig {
    let mem = host();
    let account = Arc::new(Account::new(variant.memory_limit));
    let fail = Arc::new(FailPoints::default());
    let ioas = Arc::new(IoPageTable::new(
        Arc::clone(&mem),
        Arc::clone(&account),
        Arc::clone(&fail),
    ));
    let domains: Vec<_> = (0..variant.mock_domains).map(|_| domain(&mem)).collect();
    for d in &domains {
        ioas.attach_domain(Arc::clone(d)).unwrap();
    }
    Rig {
        mem,
        account,
        fail,
        ioas,
        domains,
        variant,
    }
}

impl Rig {
    /// Another IOAS of the same context (same host, account and fault injection).
    pub fn another_ioas(&self) -> Arc<IoPageTable> {
        Arc::new(IoPageTable::new(
            Arc::clone(&self.mem),
            Arc::clone(&self.account),
            Arc::clone(&self.fail),
        ))
    }

    pub fn snapshot(&self) -> Snapshot {
        let stats = self.mem.stats();
        Snapshot {
            charged: self.account.locked_pages(),
            host_locked: self.mem.account().locked_pages,
            adopted_segments: stats.adopted_segments,
            table_frames: stats.table_frames,
        }
    }

    /// The selftest's teardown and `MD_CHECK_REFS` idea: every area and domain gone, nothing
    /// charged, pinned or adopted any more.
    pub fn teardown(self, others: &[&IoPageTable]) {
        let ioas = Arc::clone(&self.ioas);
        for t in others.iter().copied().chain([&*ioas]) {
            t.try_unmap_all().unwrap();
        }
        for d in &self.domains {
            ioas.detach_domain(d).unwrap();
        }
        let what = self.variant.name;
        assert_eq!(self.account.locked_pages(), 0, "{what}: charge left");
        assert_eq!(self.mem.account().locked_pages, 0, "{what}: host pins left");
        assert_eq!(
            self.mem.stats().adopted_segments,
            0,
            "{what}: adopted segments left"
        );
    }
}

/// Counters that every failure must leave as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub charged: u64,
    pub host_locked: u64,
    pub adopted_segments: usize,
    pub table_frames: u64,
}

pub fn range(start: u64, len: u64) -> IovaRange {
    IovaRange::from_start_len(Iova::new(start), len).unwrap()
}

pub fn errno(r: Result<impl std::fmt::Debug, IoasError>) -> Errno {
    r.unwrap_err().errno()
}

/// A look at the world from inside an access's unmap callback.
pub type UnmapHook = Box<dyn FnMut(IovaRange) + Send>;

/// The selftest's access (`selftest.c`: `struct selftest_access` with its items): it pins
/// through the IOAS, remembers each pin, and its unmap callback unpins every item that
/// intersects the range (`iommufd_test_access_unmap`).
pub struct MockAccess {
    pub id: AccessId,
    ioas: Weak<IoPageTable>,
    items: Mutex<Vec<(Iova, u64)>>,
    /// Whether the unmap callback lets go (a broken access does not).
    releases: bool,
    /// Ranges the callback was called with.
    pub calls: Mutex<Vec<IovaRange>>,
    /// Run at the start of every callback (to look at the world from inside it).
    pub on_unmap: Mutex<Option<UnmapHook>>,
}

impl MockAccess {
    /// Creates access `id` and attaches it to `ioas` (`test_cmd_create_access`).
    pub fn attach(ioas: &Arc<IoPageTable>, id: u32, needs_pin_pages: bool) -> Arc<Self> {
        let access = Self::new(ioas, id, true);
        ioas.add_access(
            access.id,
            Arc::clone(&access) as Arc<dyn AccessNotify>,
            needs_pin_pages,
        )
        .unwrap();
        access
    }

    /// An access that is not attached yet; `releases == false` makes its callback ignore unmaps.
    pub fn new(ioas: &Arc<IoPageTable>, id: u32, releases: bool) -> Arc<Self> {
        Arc::new(MockAccess {
            id: AccessId(id),
            ioas: Arc::downgrade(ioas),
            items: Mutex::new(Vec::new()),
            releases,
            calls: Mutex::new(Vec::new()),
            on_unmap: Mutex::new(None),
        })
    }

    /// `IOMMU_TEST_OP_ACCESS_PAGES`: pins and records an item.
    /// The item list stays locked across the pin, so that an unmap callback running meanwhile
    /// (it takes the list first, then the IOAS) finds the new item.
    pub fn pin(&self, iova: u64, len: u64, write: bool) -> Result<Vec<Hpa>, IoasError> {
        let ioas = self.ioas.upgrade().unwrap();
        let mut items = self.items.lock();
        let hpas = ioas.pin_for_access(Iova::new(iova), len, write, self.id)?;
        items.push((Iova::new(iova), len));
        Ok(hpas)
    }

    /// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`: unpins an item; `ENOENT` if there is none (the
    /// unmap callback removed it).
    pub fn destroy_item(&self, iova: u64, len: u64) -> Result<(), Errno> {
        // The list stays locked across the unpin: an unmap callback that finds the item gone
        // must find the pages unpinned too.
        let mut items = self.items.lock();
        let at = items
            .iter()
            .position(|&(i, l)| i == Iova::new(iova) && l == len)
            .ok_or(Errno::NOENT)?;
        items.remove(at);
        let ioas = self.ioas.upgrade().unwrap();
        ioas.unpin_for_access(Iova::new(iova), len, self.id)
            .map_err(|e| e.errno())
    }

    pub fn items(&self) -> usize {
        self.items.lock().len()
    }
}

impl AccessNotify for MockAccess {
    fn unmap(&self, range: IovaRange) {
        self.calls.lock().push(range);
        if let Some(f) = self.on_unmap.lock().as_mut() {
            f(range);
        }
        if !self.releases {
            return;
        }
        let Some(ioas) = self.ioas.upgrade() else {
            return;
        };
        let mut items = self.items.lock();
        items.retain(|&(iova, len)| {
            let item = IovaRange::from_start_len(iova, len).unwrap();
            if !item.overlaps(&range) {
                return true;
            }
            ioas.unpin_for_access(iova, len, self.id).unwrap();
            false
        });
    }
}
