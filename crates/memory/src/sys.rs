//! Every `unsafe` of the crate, and every OS call.
//!
//! A [`Mapping`] is a live range of this process's address space that the crate may read and write
//! through raw pointers: either a `mmap` the crate made (and unmaps on drop) or a caller's buffer
//! handed over with [`Mapping::adopt`]. Every accessor checks its offset and length against the
//! mapping, so the safe functions here cannot reach outside it.
//!
//! Memory behind a mapping is plain bytes shared with other agents (devices doing DMA, a VMM on
//! the other side of a memfd, the driver that owns an adopted buffer). Concurrent accesses are the
//! behaviour being modelled, as on real hardware; no Rust reference to that memory is ever formed,
//! only raw-pointer copies.

use crate::access::check_segment_len;
use crate::segment::SegmentKind;
use crate::{HostMemory, MemoryError, RamWindow};
use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use uvfio_types::{HostVa, HpaRange};

/// The 4 KiB base page.
pub(crate) const PAGE: u64 = 4096;

// SAFETY: a `RamWindow` is an address and a length describing the RAM mapping, which lives as long
// as the `HostMemory` it came from and is valid to access from any thread (MAP_SHARED memory, no
// thread affinity); the window itself carries no ownership or thread-local state.
unsafe impl Send for RamWindow {}
// SAFETY: as for `Send`: the window is read-only data about a mapping accessible from every thread.
unsafe impl Sync for RamWindow {}

/// A hint or request for [`Mapping::advise`]. Only advice that never changes the contents of the
/// memory is offered, which is what keeps `advise` safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// `MADV_HUGEPAGE`: back with transparent huge pages where possible.
    HugePage,
    /// `MADV_POPULATE_WRITE`: fault every page in for writing (allocating it), without changing it.
    PopulateWrite,
}

/// A live range of address space the crate may access through raw pointers.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// Whether the crate made the mapping (and must `munmap` it on drop).
    owned: bool,
}

// SAFETY: the mapping is MAP_SHARED memory (or a caller's buffer the caller promised to keep valid
// while adopted); it has no thread affinity, and every access through it is a raw-pointer copy, so
// handing it to another thread cannot create an aliasing `&mut`.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads the pointer and length, and accesses the memory with raw
// pointer copies (see the module docs on concurrent access).
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED[|MAP_NORESERVE], fd, offset)`.
    pub(crate) fn map_shared(
        fd: impl AsFd,
        offset: u64,
        len: u64,
        writable: bool,
        noreserve: bool,
    ) -> Result<Mapping, Errno> {
        let len_usize = usize::try_from(len).map_err(|_| Errno::NOMEM)?;
        if len_usize == 0 {
            return Err(Errno::INVAL);
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        let flags = if noreserve {
            MapFlags::SHARED | MapFlags::NORESERVE
        } else {
            MapFlags::SHARED
        };
        // SAFETY: with a null address hint the kernel picks a fresh range that overlaps no existing
        // Rust object, so creating the mapping cannot invalidate any memory the program uses.
        let addr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len_usize, prot, flags, fd, offset) }?;
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Mapping {
            ptr,
            len: len_usize,
            writable,
            owned: true,
        })
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0)`:
    /// sparse private memory, for RAM on anonymous transparent huge pages.
    pub(crate) fn map_anon(len: u64) -> Result<Mapping, Errno> {
        let len_usize = usize::try_from(len).map_err(|_| Errno::NOMEM)?;
        if len_usize == 0 {
            return Err(Errno::INVAL);
        }
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
        // SAFETY: with a null address hint the kernel picks a fresh range that overlaps no existing
        // Rust object, so creating the mapping cannot invalidate any memory the program uses.
        let addr = unsafe { rustix::mm::mmap_anonymous(std::ptr::null_mut(), len_usize, prot, flags) }?;
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Mapping {
            ptr,
            len: len_usize,
            writable: true,
            owned: true,
        })
    }

    /// `madvise(MADV_DONTNEED)` over `[off, off + len)` of a private anonymous mapping: the pages go
    /// back to the OS and read as zero after, like a hole punched in a memfd.
    pub(crate) fn discard(&self, off: u64, len: u64) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::INVAL)?;
        let addr = self.span(off, len).ok_or(Errno::INVAL)?;
        // SAFETY: the range lies inside this live mapping, which the crate only ever accesses
        // through raw pointers and atomics (no Rust reference into it exists), so its contents
        // turning to zero cannot break an invariant a reference relies on; the caller discards only
        // free RAM, which reads as zero already.
        unsafe { rustix::mm::madvise(addr.cast::<c_void>(), len, Advice::LinuxDontNeed) }
    }

    /// Take `len` bytes at `ptr` (page-aligned, non-null) as a mapping the crate does not own.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + len)` must be readable and writable memory of this process that stays valid
    /// (not freed, unmapped or remapped) until the returned `Mapping` is dropped, and the caller must
    /// not hold Rust references to it that assume exclusive access while it is adopted.
    pub(crate) unsafe fn adopt(ptr: NonNull<u8>, len: u64) -> Option<Mapping> {
        let len = usize::try_from(len).ok().filter(|&l| l != 0)?;
        Some(Mapping {
            ptr,
            len,
            writable: true,
            owned: false,
        })
    }

    /// The first byte.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    /// Whether the memory may be written.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The pointer to `[off, off + len)` if that lies inside the mapping.
    fn span(&self, off: u64, len: usize) -> Option<*mut u8> {
        let off = usize::try_from(off).ok()?;
        let end = off.checked_add(len)?;
        (end <= self.len).then(|| self.ptr.as_ptr().wrapping_add(off))
    }

    /// The pointer to byte `off`, if `[off, off + len)` lies inside the mapping.
    pub(crate) fn ptr_at(&self, off: u64, len: u64) -> Option<NonNull<u8>> {
        let len = usize::try_from(len).ok()?;
        self.span(off, len).and_then(NonNull::new)
    }

    /// Copy `buf.len()` bytes from offset `off` into `buf`; false if the range is outside.
    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) -> bool {
        let Some(src) = self.span(off, buf.len()) else {
            return false;
        };
        // SAFETY: `span` checked that `[src, src + buf.len())` lies inside this live mapping, which is
        // readable; `buf` is a distinct Rust allocation, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copy `buf` to offset `off`; false if the range is outside or the mapping is read-only.
    pub(crate) fn write(&self, off: u64, buf: &[u8]) -> bool {
        let Some(dst) = self.span(off, buf.len()).filter(|_| self.writable) else {
            return false;
        };
        // SAFETY: `span` checked that `[dst, dst + buf.len())` lies inside this live mapping, which is
        // writable (checked above); `buf` is a distinct Rust allocation, so they cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        true
    }

    /// Fill `[off, off + len)` with zeros; false if the range is outside or read-only.
    pub(crate) fn zero(&self, off: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(dst) = self.span(off, len).filter(|_| self.writable) else {
            return false;
        };
        // SAFETY: `span` checked that `[dst, dst + len)` lies inside this live, writable mapping.
        unsafe { std::ptr::write_bytes(dst, 0, len) };
        true
    }

    /// `madvise` over `[off, off + len)` (page-aligned) with advice that never changes contents.
    pub(crate) fn advise(&self, off: u64, len: u64, hint: Hint) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::INVAL)?;
        let addr = self.span(off, len).ok_or(Errno::INVAL)?;
        let advice = match hint {
            Hint::HugePage => Advice::LinuxHugepage,
            Hint::PopulateWrite => Advice::LinuxPopulateWrite,
        };
        // SAFETY: the range lies inside this live mapping, and both advices leave the contents of
        // the memory unchanged (they only change how it is backed or make it resident), so no
        // memory the program relies on changes under it.
        unsafe { rustix::mm::madvise(addr.cast::<c_void>(), len, advice) }
    }

    /// Fault in every 4 KiB page of `[off, off + len)` for writing without changing its contents
    /// (the fallback for kernels without `MADV_POPULATE_WRITE`); false if outside or read-only.
    pub(crate) fn touch(&self, off: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(start) = self.span(off, len).filter(|_| self.writable) else {
            return false;
        };
        for page_off in (0..len).step_by(PAGE as usize) {
            let p = start.wrapping_add(page_off);
            // SAFETY: `p` lies inside this live, writable mapping (`page_off < len`, range checked by
            // `span`), is trivially aligned for a byte, and the memory is only ever accessed through
            // raw pointers or atomics, so viewing one byte as an `AtomicU8` aliases no reference.
            let byte = unsafe { AtomicU8::from_ptr(p) };
            byte.fetch_add(0, Ordering::Relaxed);
        }
        true
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // SAFETY: the crate created this mapping with `mmap` of exactly `len` bytes at `ptr` and
        // drops it once; all pointers the crate handed out into it are documented to die with the
        // segment (callers keep them only while the memory is pinned, which prevents release).
        let result = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
        // munmap of a range we mapped can only fail on a kernel bug; nothing can be done in drop.
        debug_assert!(result.is_ok(), "munmap failed: {result:?}");
    }
}

impl HostMemory {
    /// Join `len` bytes of the caller's own memory at `va` (both 4 KiB aligned) to the HPA space as
    /// a new segment at a fresh HPA range, the way `pin_user_pages()` turns a driver's buffer into
    /// physical pages. The memory is not pinned by this call; [`HostMemory::pin`] does that.
    ///
    /// # Safety
    ///
    /// `[va, va + len)` must be readable and writable memory of this process that stays valid (not
    /// freed, unmapped or remapped) until [`HostMemory::release`] of the returned range succeeds or
    /// `self` is dropped. Devices and other users of this `HostMemory` may read and write it at any
    /// time meanwhile, so the caller must not hold Rust references into it that assume no one else
    /// writes (access it through raw pointers, atomics or volatile copies).
    pub unsafe fn adopt(&self, va: *mut u8, len: u64) -> Result<HpaRange, MemoryError> {
        let addr = HostVa::from_ptr(va);
        let ptr = NonNull::new(va).ok_or(MemoryError::BadHostAddress { va: addr })?;
        if addr.raw() % PAGE != 0 {
            return Err(MemoryError::Misaligned {
                value: addr.raw(),
                align: PAGE,
            });
        }
        check_segment_len(len)?;
        if addr.checked_add(len).is_none() {
            return Err(MemoryError::InvalidLength { len });
        }
        // SAFETY: the caller's contract above is exactly `Mapping::adopt`'s: the range is live,
        // readable and writable memory until the segment (and with it the `Mapping`) is dropped.
        let map = unsafe { Mapping::adopt(ptr, len) }.ok_or(MemoryError::InvalidLength { len })?;
        self.insert_segment(map, SegmentKind::Adopted, None)
    }
}

/// A driver's buffer in this process together with its promise to keep it mapped: what
/// `IOMMU_IOAS_MAP` receives as `user_va` and `length`. Making one is the unsafe step; adopting it
/// ([`HostMemory::adopt_buffer`]) is then safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBuffer {
    va: HostVa,
    len: u64,
}

impl UserBuffer {
    /// The `len` bytes at `va`.
    ///
    /// # Safety
    ///
    /// `[va, va + len)` must be memory of this process that stays mapped, and is not remapped,
    /// for as long as any segment adopted from this buffer lives (until [`HostMemory::release`]
    /// of it succeeds or the `HostMemory` is dropped); devices may read and write it meanwhile,
    /// so no Rust reference into it may assume exclusive access. This is the promise a Linux
    /// driver makes implicitly by keeping a buffer mapped while it is DMA-mapped.
    pub unsafe fn new(va: HostVa, len: u64) -> Self {
        UserBuffer { va, len }
    }

    /// The first byte.
    pub fn va(&self) -> HostVa {
        self.va
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl HostMemory {
    /// Adopts the 4 KiB pages that hold `buf` as a new segment (see [`HostMemory::adopt`]) and
    /// returns the segment's range: its first byte is the HPA of `buf`'s first page.
    pub fn adopt_buffer(&self, buf: &UserBuffer) -> Result<HpaRange, MemoryError> {
        let start = buf.va.align_down(uvfio_types::PageSize::Size4K);
        let end = buf
            .va
            .checked_add(buf.len)
            .and_then(|e| e.align_up(uvfio_types::PageSize::Size4K))
            .ok_or(MemoryError::InvalidLength { len: buf.len })?;
        let len = end
            .offset_from(start)
            .ok_or(MemoryError::InvalidLength { len: buf.len })?;
        let addr = usize::try_from(start.raw()).map_err(|_| MemoryError::BadHostAddress { va: start })?;
        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        // SAFETY: whoever made `buf` promised (`UserBuffer::new`) that its bytes stay mapped while
        // the segment lives; the pages holding them are mapped exactly as long, since mappings
        // are made of whole pages. That is `adopt`'s contract.
        unsafe { self.adopt(ptr, len) }
    }
}

/// Checks that `[va, va + len)` (4 KiB aligned) is memory of this process that a device may read
/// (and write, if `writable`), the checks `pin_user_pages()` makes: an unmapped range, a read-only
/// one (for `writable`) or an I/O mapping fails with `EFAULT` ([`MemoryError::BadHostAddress`]).
/// The memory's contents do not change.
///
/// Anonymous memory is checked VMA by VMA with one `PROCMAP_QUERY` ioctl each (Linux 6.11+): its
/// pages need not be resident, since a device's first access faults them in as the driver's own
/// would. File-backed memory — where an access may also fail for reasons the VMA does not show (a
/// page past the end of the file, an I/O mapping) — is made resident the way `pin_user_pages()`
/// faults pages in, `madvise(MADV_POPULATE_WRITE or MADV_POPULATE_READ)`, which fails for all of
/// those; so is everything on a kernel without `PROCMAP_QUERY`.
///
/// Why: faulting in every page of a resident 1 GiB buffer costs ~40 µs here (~170 ns per 4 KiB
/// page), more than mapping it into a domain; the VMA query is about 1 µs per VMA.
pub fn probe_user_range(va: HostVa, len: u64, writable: bool) -> Result<(), MemoryError> {
    if va.raw() % PAGE != 0 {
        return Err(MemoryError::Misaligned {
            value: va.raw(),
            align: PAGE,
        });
    }
    check_segment_len(len)?;
    let end = va.checked_add(len).ok_or(MemoryError::InvalidLength { len })?;
    if usize::try_from(end.raw()).is_err() {
        return Err(MemoryError::InvalidLength { len });
    }
    let bad = |_| MemoryError::BadHostAddress { va };
    let Some(maps) = vma::maps_fd() else {
        return populate(va, len, writable).map_err(bad);
    };
    let mut cursor = va.raw();
    while cursor < end.raw() {
        let Some(found) = vma::query(&maps, cursor, writable) else {
            // The kernel does not know the ioctl: check the rest the slow way.
            let rest = end.raw() - cursor;
            return populate(HostVa::new(cursor), rest, writable).map_err(bad);
        };
        let found = found.map_err(bad)?;
        let upto = found.end.min(end.raw());
        if found.file_backed {
            populate(HostVa::new(cursor), upto - cursor, writable).map_err(bad)?;
        }
        cursor = upto;
    }
    Ok(())
}

/// `madvise(MADV_POPULATE_WRITE or MADV_POPULATE_READ)` of a 4 KiB-aligned range of this process.
fn populate(va: HostVa, len: u64, writable: bool) -> Result<(), Errno> {
    let (Ok(addr), Ok(len)) = (usize::try_from(va.raw()), usize::try_from(len)) else {
        return Err(Errno::INVAL);
    };
    let advice = if writable {
        Advice::LinuxPopulateWrite
    } else {
        Advice::LinuxPopulateRead
    };
    let ptr = std::ptr::without_provenance_mut::<c_void>(addr);
    // SAFETY: MADV_POPULATE_READ/WRITE only fault pages in (a write fault of a private page copies
    // it first): they never change what any address of the process reads, so no Rust reference or
    // invariant can be affected; for an address that is not mapped, or mapped without the needed
    // permission, the kernel fails the call (ENOMEM / EINVAL / EFAULT) and touches nothing.
    unsafe { rustix::mm::madvise(ptr, len, advice) }
}

/// `PROCMAP_QUERY` (`linux/fs.h`): the VMA covering an address of this process, from an fd of
/// `/proc/self/maps`.
mod vma {
    use rustix::io::Errno;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::{Arc, Mutex, PoisonError};

    /// `struct procmap_query`.
    #[repr(C)]
    #[derive(Default)]
    struct ProcmapQuery {
        size: u64,
        query_flags: u64,
        query_addr: u64,
        vma_start: u64,
        vma_end: u64,
        vma_flags: u64,
        vma_page_size: u64,
        vma_offset: u64,
        inode: u64,
        dev_major: u32,
        dev_minor: u32,
        vma_name_size: u32,
        build_id_size: u32,
        vma_name_addr: u64,
        build_id_addr: u64,
    }

    const PROCMAP_QUERY_VMA_READABLE: u64 = 0x01;
    const PROCMAP_QUERY_VMA_WRITABLE: u64 = 0x02;
    /// `_IOWR(PROCFS_IOCTL_MAGIC, 17, struct procmap_query)`.
    const PROCMAP_QUERY: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<ProcmapQuery>(b'f', 17);

    /// A VMA found.
    pub(super) struct Vma {
        /// One past its last byte.
        pub(super) end: u64,
        /// Whether a file (or shmem) backs it.
        pub(super) file_backed: bool,
    }

    /// The process's `/proc/self/maps`, opened once per process (a child after `fork` opens its
    /// own).
    static MAPS: Mutex<Option<(rustix::process::Pid, Arc<OwnedFd>)>> = Mutex::new(None);
    /// Set once the kernel answered `ENOTTY`: never ask again.
    static UNSUPPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// An fd of `/proc/self/maps`, or `None` where it cannot be had or the ioctl is unknown.
    pub(super) fn maps_fd() -> Option<Arc<OwnedFd>> {
        if UNSUPPORTED.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let pid = rustix::process::getpid();
        let mut slot = MAPS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((owner, fd)) = slot.as_ref()
            && *owner == pid
        {
            return Some(Arc::clone(fd));
        }
        let fd = rustix::fs::open(
            "/proc/self/maps",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        let fd = Arc::new(fd);
        *slot = Some((pid, Arc::clone(&fd)));
        Some(fd)
    }

    /// The VMA covering `addr` if it is readable (and writable, for `writable`): `Some(Err)` if
    /// there is none such (`ENOENT`), `None` if the kernel does not know `PROCMAP_QUERY` or the
    /// query failed for another reason (the caller then checks the slow way).
    pub(super) fn query(maps: &OwnedFd, addr: u64, writable: bool) -> Option<Result<Vma, Errno>> {
        let mut q = ProcmapQuery {
            size: size_of::<ProcmapQuery>() as u64,
            query_flags: PROCMAP_QUERY_VMA_READABLE | if writable { PROCMAP_QUERY_VMA_WRITABLE } else { 0 },
            query_addr: addr,
            ..ProcmapQuery::default()
        };
        // SAFETY: `Updater::new` requires that `ProcmapQuery` is the type the opcode's kernel
        // handler reads and writes: it is `struct procmap_query` of `linux/fs.h`, field for field.
        let updater = unsafe { rustix::ioctl::Updater::<PROCMAP_QUERY, _>::new(&mut q) };
        // SAFETY: the fd is open; `q` has its `size` set and no name or build-id buffer (sizes
        // 0), so the kernel reads and writes only `q` itself, which lives across the call.
        let result = unsafe { rustix::ioctl::ioctl(maps.as_fd(), updater) };
        match result {
            Ok(()) => Some(Ok(Vma {
                end: q.vma_end,
                file_backed: q.inode != 0 || q.dev_major != 0 || q.dev_minor != 0,
            })),
            Err(Errno::NOENT) => Some(Err(Errno::NOENT)),
            Err(Errno::NOTTY) => {
                UNSUPPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
            Err(_) => None,
        }
    }
}

/// `memfd_create(name, MFD_CLOEXEC [| MFD_HUGETLB | MFD_HUGE_2MB])`.
pub(crate) fn memfd(name: &str, hugetlb: bool) -> Result<OwnedFd, Errno> {
    let mut flags = MemfdFlags::CLOEXEC;
    if hugetlb {
        flags |= MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB;
    }
    rustix::fs::memfd_create(name, flags)
}

/// `ftruncate(fd, len)`.
pub(crate) fn set_len(fd: impl AsFd, len: u64) -> Result<(), Errno> {
    rustix::fs::ftruncate(fd, len)
}

/// What a later `mmap(MAP_SHARED)` of `fd` (`PROT_READ`, `| PROT_WRITE` if `writable`) would
/// refuse, checked now without mapping: a file that is not a regular file (`ENODEV`, as `mmap`
/// answers for a file without `mmap`), one not open for reading, or not for writing when
/// `writable` (`EACCES`), a memfd sealed against writes when `writable` (`EPERM`). Its size.
pub(crate) fn check_shared_mappable(fd: impl AsFd, writable: bool) -> Result<u64, Errno> {
    let fd = fd.as_fd();
    let st = rustix::fs::fstat(fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Errno::NODEV);
    }
    let mode = rustix::fs::fcntl_getfl(fd)? & rustix::fs::OFlags::RWMODE;
    let readable = mode != rustix::fs::OFlags::WRONLY;
    if !readable || (writable && mode != rustix::fs::OFlags::RDWR) {
        return Err(Errno::ACCESS);
    }
    if writable {
        // EINVAL: a file that takes no seals (not a memfd).
        match rustix::fs::fcntl_get_seals(fd) {
            Ok(seals)
                if seals.intersects(rustix::fs::SealFlags::WRITE | rustix::fs::SealFlags::FUTURE_WRITE) =>
            {
                return Err(Errno::PERM);
            }
            Ok(_) | Err(Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    u64::try_from(st.st_size).map_err(|_| Errno::INVAL)
}

/// `fallocate(fd, 0, off, len)`: allocate backing pages (a hugetlb memfd reports a shortage here
/// as an error instead of a SIGBUS at first touch).
pub(crate) fn allocate(fd: impl AsFd, off: u64, len: u64) -> Result<(), Errno> {
    rustix::fs::fallocate(fd, FallocateFlags::empty(), off, len)
}

/// `fallocate(fd, PUNCH_HOLE | KEEP_SIZE, off, len)`: give the pages back; they read as zero after.
pub(crate) fn punch_hole(fd: impl AsFd, off: u64, len: u64) -> Result<(), Errno> {
    rustix::fs::fallocate(
        fd,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        off,
        len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_check_bounds() {
        let fd = memfd("sys-test", false).unwrap();
        set_len(&fd, 2 * PAGE).unwrap();
        let m = Mapping::map_shared(&fd, 0, 2 * PAGE, true, true).unwrap();
        assert!(m.write(PAGE - 2, &[1, 2, 3, 4]));
        let mut buf = [0u8; 4];
        assert!(m.read(PAGE - 2, &mut buf));
        assert_eq!(buf, [1, 2, 3, 4]);
        assert!(!m.read(2 * PAGE - 3, &mut buf));
        assert!(!m.write(u64::MAX, &buf));
        assert!(m.ptr_at(2 * PAGE, 0).is_some());
        assert!(m.ptr_at(2 * PAGE, 1).is_none());
        assert!(m.touch(0, 2 * PAGE));
        assert!(m.zero(0, 2 * PAGE));
        assert!(m.read(PAGE - 2, &mut buf));
        assert_eq!(buf, [0; 4]);
        assert_eq!(m.advise(0, 3 * PAGE, Hint::PopulateWrite), Err(Errno::INVAL));
    }

    #[test]
    fn read_only_mappings_refuse_writes() {
        let fd = memfd("sys-ro", false).unwrap();
        set_len(&fd, PAGE).unwrap();
        let m = Mapping::map_shared(&fd, 0, PAGE, false, false).unwrap();
        assert!(!m.write(0, &[1]));
        assert!(!m.zero(0, 1));
        assert!(!m.touch(0, PAGE));
        let mut b = [9u8];
        assert!(m.read(0, &mut b));
        assert_eq!(b, [0]);
    }

    #[test]
    fn punched_pages_read_zero() {
        let fd = memfd("sys-punch", false).unwrap();
        set_len(&fd, 4 * PAGE).unwrap();
        let m = Mapping::map_shared(&fd, 0, 4 * PAGE, true, true).unwrap();
        assert!(m.write(PAGE, &[7; 16]));
        punch_hole(&fd, 0, 4 * PAGE).unwrap();
        let mut b = [1u8; 16];
        assert!(m.read(PAGE, &mut b));
        assert_eq!(b, [0; 16]);
        assert_eq!(check_shared_mappable(&fd, true), Ok(4 * PAGE));
    }

    #[test]
    fn what_a_shared_mapping_would_refuse_is_refused_without_mapping() {
        let fd = memfd("sys-check", false).unwrap();
        set_len(&fd, PAGE).unwrap();
        assert_eq!(check_shared_mappable(&fd, true), Ok(PAGE));
        // Read-only reopen: readable only.
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let ro = rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(check_shared_mappable(&ro, false), Ok(PAGE));
        assert_eq!(check_shared_mappable(&ro, true), Err(Errno::ACCESS));
        assert_eq!(
            Mapping::map_shared(&ro, 0, PAGE, true, false).err(),
            Some(Errno::ACCESS),
            "mmap agrees"
        );
        // Not a regular file.
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(check_shared_mappable(&r, false), Err(Errno::NODEV));
        assert_eq!(
            Mapping::map_shared(&r, 0, PAGE, false, false).err(),
            Some(Errno::NODEV),
            "mmap agrees"
        );
        // Sealed against writes: readable, not writable.
        let sealed = rustix::fs::memfd_create(
            "sys-sealed",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        set_len(&sealed, PAGE).unwrap();
        rustix::fs::fcntl_add_seals(&sealed, rustix::fs::SealFlags::WRITE).unwrap();
        assert_eq!(check_shared_mappable(&sealed, false), Ok(PAGE));
        assert_eq!(check_shared_mappable(&sealed, true), Err(Errno::PERM));
        assert_eq!(
            Mapping::map_shared(&sealed, 0, PAGE, true, false).err(),
            Some(Errno::PERM),
            "mmap agrees"
        );
    }
}
