//! `Pages`: the memory behind one `IOMMU_IOAS_MAP` (Linux `struct iopt_pages`), and the
//! locked-memory account it charges.
//!
//! A `Pages` covers the 4 KiB pages of a driver's buffer (a user VA range of this process, or a
//! memfd range for `IOMMU_IOAS_MAP_FILE`). It is shared: every area of every IOAS that maps the
//! buffer (one from the map, more through `IOMMU_IOAS_COPY`) holds an `Arc` of it. Pinning is lazy,
//! as in Linux: nothing is pinned until a domain needs the pages or an access pins them; the first
//! pin checks the buffer the way `pin_user_pages()` does (`EFAULT` for memory that is not there or
//! is read-only when the mapping is writable) and adopts it into the host's physical address
//! space; when the last pin goes, it leaves it again. Each page is charged to the account once *per `Pages`* while pinned by anyone
//! (`iopt_pages_update_pinned`): two separate maps of one buffer are charged twice, a copy is not.

use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uvfio_memory::{HostMemory, MemoryError, PinRuns, UserBuffer};
use uvfio_types::{HostVa, Hpa, HpaRange, PageSize};

const PAGE: u64 = PageSize::Size4K.bytes();

/// Errors of pinning and accounting.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// The buffer is not memory a device may use (`pin_user_pages()` fails: `EFAULT`).
    #[error("buffer at {va} is not pinnable")]
    Fault {
        /// Its first page.
        va: HostVa,
        /// What the host said.
        #[source]
        source: MemoryError,
    },
    /// Pinning would pass the locked-memory limit (`ENOMEM`).
    #[error("locked-memory limit of {limit} pages reached ({locked} locked, {more} more asked)")]
    Limit {
        /// Pages locked now.
        locked: u64,
        /// More pages asked for.
        more: u64,
        /// The limit.
        limit: u64,
    },
    /// The host refused the pin or the adoption.
    #[error("host memory refused the pin")]
    Host(#[source] MemoryError),
    /// `length` is 0, or the range wraps (`iopt_alloc_pages`: `EINVAL` / `EOVERFLOW`).
    #[error("bad buffer range: {len:#x} bytes at {va}")]
    Range {
        /// Start.
        va: HostVa,
        /// Length.
        len: u64,
        /// Whether it wraps (EOVERFLOW) rather than being empty (EINVAL).
        wraps: bool,
    },
    /// A page range outside this `Pages`.
    #[error("pages {first}..={last} outside a buffer of {npages} pages")]
    OutOfRange {
        /// First page asked.
        first: u64,
        /// Last page asked.
        last: u64,
        /// Pages in the buffer.
        npages: u64,
    },
}

impl PagesError {
    /// The errno Linux returns.
    pub fn errno(&self) -> rustix::io::Errno {
        use rustix::io::Errno;
        match self {
            PagesError::Fault { .. } => Errno::FAULT,
            PagesError::Limit { .. } => Errno::NOMEM,
            PagesError::Host(e) => e.errno(),
            PagesError::Range { wraps: true, .. } => Errno::OVERFLOW,
            PagesError::Range { wraps: false, .. } | PagesError::OutOfRange { .. } => Errno::INVAL,
        }
    }
}

/// A locked-memory account (`RLIMIT_MEMLOCK` of the user the iommufd context charges).
#[derive(Debug, Default)]
pub struct Account {
    locked: AtomicU64,
    /// Limit in pages; `u64::MAX` is unlimited.
    limit: AtomicU64,
}

impl Account {
    /// An account with a limit of `limit_pages` (`None`: unlimited).
    pub fn new(limit_pages: Option<u64>) -> Self {
        Account {
            locked: AtomicU64::new(0),
            limit: AtomicU64::new(limit_pages.unwrap_or(u64::MAX)),
        }
    }

    /// Pages charged now.
    pub fn locked_pages(&self) -> u64 {
        self.locked.load(Ordering::Acquire)
    }

    /// Changes the limit (the selftest's `SET_TEMP_MEMORY_LIMIT`); charges already made stay.
    pub fn set_limit(&self, limit_pages: Option<u64>) {
        self.limit
            .store(limit_pages.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Charges `more` pages: [`PagesError::Limit`] (`ENOMEM`) past the limit, and then nothing
    /// is charged.
    pub fn charge(&self, more: u64) -> Result<(), PagesError> {
        let limit = self.limit.load(Ordering::Acquire);
        self.locked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |locked| {
                locked.checked_add(more).filter(|&n| n <= limit)
            })
            .map(drop)
            .map_err(|locked| PagesError::Limit { locked, more, limit })
    }

    /// Takes back `less` pages charged before.
    pub fn uncharge(&self, less: u64) {
        self.locked.fetch_sub(less, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct PinState {
    /// Where the buffer sits in HPA space once adopted.
    hpa: Option<HpaRange>,
    /// Pin holders per page, as runs of pages with equal counts (domains count once per area,
    /// accesses once per pin); its pinned pages (at least one holder) are what is charged.
    users: PinRuns,
}

/// Where a `Pages`' memory comes from.
#[derive(Debug)]
enum Source {
    /// A buffer of this process (`IOMMU_IOAS_MAP`), with the driver's promise to keep it mapped;
    /// `base` is its first page.
    User { buf: UserBuffer, base: HostVa },
    /// A range of a memfd (`IOMMU_IOAS_MAP_FILE`); `first_page` is the file offset of its first
    /// page. The file stays open as long as the `Pages` does, so its pages cannot go away; the
    /// host segment it is attached as shares the descriptor.
    File { fd: Arc<OwnedFd>, first_page: u64 },
}

/// The pages of one driver buffer.
#[derive(Debug)]
pub struct Pages {
    mem: Arc<HostMemory>,
    account: Arc<Account>,
    source: Source,
    npages: u64,
    writable: bool,
    state: Mutex<PinState>,
}

/// The 4 KiB pages holding `len` bytes at `start`: (first page's start, page count), or the
/// Linux errno class (`EINVAL` for empty, `EOVERFLOW` for wrapping).
fn page_cover(start: u64, len: u64) -> Result<(u64, u64), bool> {
    if len == 0 {
        return Err(false);
    }
    let end = start.checked_add(len).ok_or(true)?;
    let first = start & !(PAGE - 1);
    let end = end.checked_add(PAGE - 1).ok_or(true)? & !(PAGE - 1);
    Ok((first, (end - first) / PAGE))
}

impl Pages {
    /// The pages of `buf` (`iopt_alloc_pages`): an empty buffer → `EINVAL`, a wrapping one →
    /// `EOVERFLOW`. Nothing is checked or pinned yet.
    pub fn new(
        mem: Arc<HostMemory>,
        account: Arc<Account>,
        buf: UserBuffer,
        writable: bool,
    ) -> Result<Arc<Self>, PagesError> {
        let (va, len) = (buf.va(), buf.len());
        let (first, npages) =
            page_cover(va.raw(), len).map_err(|wraps| PagesError::Range { va, len, wraps })?;
        let source = Source::User {
            buf,
            base: HostVa::new(first),
        };
        Ok(Self::with_source(mem, account, source, npages, writable))
    }

    /// The pages of `len` bytes at `offset` of the memfd `fd` (`iopt_alloc_file_pages`), with the
    /// same range rules as [`Pages::new`]. The file is checked (size, mappable) at the first pin.
    pub fn from_file(
        mem: Arc<HostMemory>,
        account: Arc<Account>,
        fd: OwnedFd,
        offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<Arc<Self>, PagesError> {
        let (first, npages) = page_cover(offset, len).map_err(|wraps| PagesError::Range {
            va: HostVa::new(offset),
            len,
            wraps,
        })?;
        let source = Source::File {
            fd: Arc::new(fd),
            first_page: first,
        };
        Ok(Self::with_source(mem, account, source, npages, writable))
    }

    fn with_source(
        mem: Arc<HostMemory>,
        account: Arc<Account>,
        source: Source,
        npages: u64,
        writable: bool,
    ) -> Arc<Self> {
        let state = Mutex::new(PinState {
            hpa: None,
            users: PinRuns::new(),
        });
        Arc::new(Pages {
            mem,
            account,
            source,
            npages,
            writable,
            state,
        })
    }

    /// Makes the whole buffer part of the host's physical address space (its first pin).
    fn attach_to_host(&self) -> Result<HpaRange, PagesError> {
        let len = self.npages * PAGE;
        match &self.source {
            Source::User { buf, base } => {
                uvfio_memory::probe_user_range(*base, len, self.writable)
                    .map_err(|source| PagesError::Fault { va: *base, source })?;
                self.mem.adopt_buffer(buf).map_err(PagesError::Host)
            }
            Source::File { fd, first_page } => self
                .mem
                .add_fd_segment(Arc::clone(fd), *first_page, len, self.writable)
                .map_err(PagesError::Host),
        }
    }

    /// Number of 4 KiB pages.
    pub fn npages(&self) -> u64 {
        self.npages
    }

    /// Whether devices may write through mappings of it.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Pages pinned now (and charged).
    pub fn pinned(&self) -> u64 {
        self.state.lock().users.pinned()
    }

    fn check_range(&self, first: u64, last: u64) -> Result<(), PagesError> {
        if first > last || last >= self.npages {
            return Err(PagesError::OutOfRange {
                first,
                last,
                npages: self.npages,
            });
        }
        Ok(())
    }

    /// The HPA of page `page` while it is pinned by someone.
    pub fn pinned_hpa(&self, page: u64) -> Option<Hpa> {
        let st = self.state.lock();
        let base = st.hpa?;
        (page < self.npages && st.users.count(page) > 0)
            .then(|| base.start().checked_add(page * PAGE))
            .flatten()
    }

    /// Pins pages `first..=last` for one more holder and returns the HPA of page `first`; the
    /// pages behind it are physically contiguous. All or nothing: on error nothing is pinned or
    /// charged.
    pub fn pin(&self, first: u64, last: u64) -> Result<Hpa, PagesError> {
        self.check_range(first, last)?;
        let mut st = self.state.lock();
        let base = match st.hpa {
            Some(base) => base,
            None => {
                let base = self.attach_to_host()?;
                st.hpa = Some(base);
                base
            }
        };
        let r = self.hpa_range(base, first, last)?;
        // A `Pages`' holders are each one of the host's pins of these pages, which the host bounds
        // below `u32::MAX`, so the only thing to learn here is how many pages are new.
        let newly = st
            .users
            .pin_check(first, last, u32::MAX)
            .map_err(|_| PagesError::Host(MemoryError::PinOverflow { hpa: r.start() }))?;
        self.account.charge(newly)?;
        if let Err(e) = self.mem.pin(r) {
            self.account.uncharge(newly);
            return Err(PagesError::Host(e));
        }
        st.users.pin(first, last);
        Ok(r.start())
    }

    /// Drops one holder's pin of pages `first..=last` (which it must hold). The caller has made
    /// sure no device can reach them any more (unmap + invalidate returned).
    pub fn unpin(&self, first: u64, last: u64) -> Result<(), PagesError> {
        self.check_range(first, last)?;
        let mut st = self.state.lock();
        let not_held = PagesError::OutOfRange {
            first,
            last,
            npages: self.npages,
        };
        let Some(base) = st.hpa else { return Err(not_held) };
        if st.users.unpin_check(first, last).is_err() {
            return Err(not_held);
        }
        let r = self.hpa_range(base, first, last)?;
        self.mem.unpin(r).map_err(PagesError::Host)?;
        let freed = st.users.unpin(first, last);
        self.account.uncharge(freed);
        if st.users.is_empty() {
            // Nothing pinned any more: the buffer leaves the host's physical address space, as a
            // page is only a "physical page" of a device's while pinned. The next pin adopts it
            // again (at a fresh HPA; HPAs are never reused, so a stale translation cannot reach
            // anything).
            if let Some(segment) = st.hpa.take() {
                let _ = self.mem.release(segment);
            }
        }
        Ok(())
    }

    /// The HPA range of pages `first..=last` of the adopted segment at `base`.
    fn hpa_range(&self, base: HpaRange, first: u64, last: u64) -> Result<HpaRange, PagesError> {
        base.start()
            .checked_add(first * PAGE)
            .and_then(|start| HpaRange::from_start_len(start, (last - first + 1) * PAGE).ok())
            .ok_or(PagesError::OutOfRange {
                first,
                last,
                npages: self.npages,
            })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(hpa) = st.hpa.take() {
            // Every holder unpinned before the last reference went away (areas and accesses
            // unpin before they drop theirs), so the segment is free to go.
            debug_assert!(st.users.is_empty(), "Pages dropped while pinned");
            let _ = self.mem.release(hpa);
        }
    }
}
