//! Adopted and fd segments, and HPA access (pointers, reads, writes) across segments.

use rustix::fs::MemfdFlags;
use rustix::io::Errno;
use std::alloc::Layout;
use std::os::fd::OwnedFd;
use uvfio_memory::{HostMemory, HugePages, MemoryConfig, MemoryError, RAM_BASE, SegmentKind};
use uvfio_types::{Hpa, HpaRange, PageSize};

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

fn host() -> HostMemory {
    HostMemory::new(MemoryConfig {
        ram_bytes: 4 * MIB,
        huge_pages: HugePages::Never,
        lock_limit_bytes: None,
    })
    .unwrap()
}

/// A page-aligned heap buffer, freed on drop.
struct Buffer {
    ptr: *mut u8,
    layout: Layout,
}

impl Buffer {
    fn new(len: usize) -> Buffer {
        let layout = Layout::from_size_align(len, PAGE as usize).unwrap();
        // SAFETY: `len` is non-zero in every test.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Buffer { ptr, layout }
    }

    fn byte(&self, i: usize) -> u8 {
        assert!(i < self.layout.size());
        // SAFETY: `i` is inside the live allocation; read through a raw pointer (no reference).
        unsafe { self.ptr.wrapping_add(i).read_volatile() }
    }

    fn set(&self, i: usize, v: u8) {
        assert!(i < self.layout.size());
        // SAFETY: as in `byte`.
        unsafe { self.ptr.wrapping_add(i).write_volatile(v) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

fn memfd(len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("uvfio-test", MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

#[test]
fn adopted_buffer_is_memory_at_an_hpa() {
    let mem = host();
    let buf = Buffer::new(8 * PAGE as usize);
    // SAFETY: the buffer outlives the segment (released below before `buf` drops).
    let range = unsafe { mem.adopt(buf.ptr, 8 * PAGE) }.unwrap();
    assert_eq!(range.len(), Some(8 * PAGE));
    assert!(
        range.start() > RAM_BASE.checked_add(4 * MIB).unwrap(),
        "above RAM"
    );
    assert!(range.start().is_aligned(PageSize::Size1G));
    let at = range.start().checked_add(PAGE + 3).unwrap();
    mem.write(at, b"hello").unwrap();
    assert_eq!(
        (0..5)
            .map(|i| buf.byte(PAGE as usize + 3 + i))
            .collect::<Vec<_>>(),
        b"hello"
    );
    buf.set(100, 42);
    let mut b = [0u8; 1];
    mem.read(range.start().checked_add(100).unwrap(), &mut b).unwrap();
    assert_eq!(b, [42]);
    let p = mem.host_ptr(at, 5).unwrap();
    assert_eq!(p.as_ptr(), buf.ptr.wrapping_add(PAGE as usize + 3));
    let info = mem.segment(at).unwrap();
    assert_eq!(
        (info.range, info.kind, info.writable),
        (range, SegmentKind::Adopted, true)
    );
    let s = mem.stats();
    assert_eq!(
        (s.segments, s.adopted_segments, s.adopted_bytes),
        (2, 1, 8 * PAGE)
    );

    // Pins are per page and charged once; release waits for them.
    let page1 = HpaRange::from_start_len(range.start().checked_add(PAGE).unwrap(), 2 * PAGE).unwrap();
    mem.pin(page1).unwrap();
    mem.pin(range).unwrap();
    assert_eq!(mem.account().locked_pages, 8);
    assert_eq!(mem.pin_count(at).unwrap(), 2);
    assert_eq!(mem.release(range).unwrap_err().errno(), Errno::BUSY);
    mem.unpin(range).unwrap();
    assert_eq!(mem.unpin(range).unwrap_err().errno(), Errno::INVAL);
    mem.unpin(page1).unwrap();
    assert_eq!(mem.account().locked_pages, 0);
    // Only exactly the segment is releasable.
    assert_eq!(mem.release(page1).unwrap_err().errno(), Errno::INVAL);
    assert_eq!(
        mem.release(HpaRange::from_start_len(RAM_BASE, 4 * MIB).unwrap())
            .unwrap_err()
            .errno(),
        Errno::INVAL
    );
    mem.release(range).unwrap();
    assert_eq!(mem.read(at, &mut b).unwrap_err().errno(), Errno::FAULT);
    assert_eq!(mem.pin(range).unwrap_err().errno(), Errno::FAULT);
    assert_eq!(mem.release(range).unwrap_err().errno(), Errno::INVAL);
    // HPA ranges are not reused.
    // SAFETY: as above.
    let again = unsafe { mem.adopt(buf.ptr, 8 * PAGE) }.unwrap();
    assert!(again.start() > range.last());
    assert!(
        again.start().offset_from(range.end().unwrap()).unwrap() >= 1 << 30,
        "guard gap"
    );
    mem.release(again).unwrap();
}

#[test]
fn adopt_rejects_bad_buffers() {
    let mem = host();
    let buf = Buffer::new(2 * PAGE as usize);
    let adopt = |ptr: *mut u8, len: u64| {
        // SAFETY: every call here is refused before anything is adopted (checked below); were one
        // accepted, `buf` would still outlive `mem`'s use of it within this test.
        let result = unsafe { mem.adopt(ptr, len) };
        result.unwrap_err().errno()
    };
    assert_eq!(adopt(std::ptr::null_mut(), PAGE), Errno::FAULT);
    assert_eq!(adopt(buf.ptr.wrapping_add(1), PAGE), Errno::INVAL);
    assert_eq!(adopt(buf.ptr, 0), Errno::INVAL);
    assert_eq!(adopt(buf.ptr, 100), Errno::INVAL);
    assert_eq!(mem.stats().adopted_segments, 0);
}

#[test]
fn fd_segment_shares_memory_with_the_fd() {
    let mem = host();
    let fd = memfd(16 * PAGE);
    let other = memfd_view(&fd, 16 * PAGE);
    let range = mem.add_fd_segment(fd, 4 * PAGE, 8 * PAGE, true).unwrap();
    mem.write(range.start(), b"from the host").unwrap();
    let mut b = [0u8; 13];
    assert!(other.read_at(4 * PAGE, &mut b));
    assert_eq!(&b, b"from the host");
    other.write_at(4 * PAGE + 8 * PAGE - 1, 0x77);
    let mut last = [0u8];
    mem.read(range.last(), &mut last).unwrap();
    assert_eq!(last, [0x77]);
    mem.pin(range).unwrap();
    assert_eq!(mem.release(range).unwrap_err().errno(), Errno::BUSY);
    mem.unpin(range).unwrap();
    assert_eq!(mem.stats().fd_segments, 1);
    mem.release(range).unwrap();
    assert_eq!(mem.stats().fd_segments, 0);
}

/// A second view of a memfd, through `HostMemory` of its own (exercises the public API only).
struct View {
    mem: HostMemory,
    range: HpaRange,
}

impl View {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        self.mem
            .read(self.range.start().checked_add(off).unwrap(), buf)
            .is_ok()
    }
    fn write_at(&self, off: u64, v: u8) {
        self.mem
            .write(self.range.start().checked_add(off).unwrap(), &[v])
            .unwrap();
    }
}

fn memfd_view(fd: &OwnedFd, len: u64) -> View {
    let mem = host();
    let dup = fd.try_clone().unwrap();
    let range = mem.add_fd_segment(dup, 0, len, true).unwrap();
    View { mem, range }
}

#[test]
fn read_only_fd_segment_refuses_writes() {
    let mem = host();
    let range = mem.add_fd_segment(memfd(4 * PAGE), 0, 4 * PAGE, false).unwrap();
    let err = mem.write(range.start(), &[1]).unwrap_err();
    assert!(matches!(err, MemoryError::ReadOnly { .. }));
    assert_eq!(err.errno(), Errno::FAULT);
    assert_eq!(
        mem.host_ptr_writable(range.start(), 1).unwrap_err().errno(),
        Errno::FAULT
    );
    assert!(mem.host_ptr(range.start(), 1).is_ok());
    assert!(!mem.segment(range.start()).unwrap().writable);
    let mut b = [9u8; 4];
    mem.read(range.start(), &mut b).unwrap();
    assert_eq!(b, [0; 4]);
}

#[test]
fn fd_segment_arguments_are_checked() {
    let mem = host();
    let cases = [
        (0, 0, Errno::INVAL),
        (0, 100, Errno::INVAL),
        (100, PAGE, Errno::INVAL),
        (0, 8 * PAGE, Errno::INVAL),
        (4 * PAGE, PAGE, Errno::INVAL),
        (u64::MAX - PAGE + 1, 2 * PAGE, Errno::INVAL),
    ];
    for (offset, len, errno) in cases {
        let err = mem
            .add_fd_segment(memfd(4 * PAGE), offset, len, true)
            .unwrap_err();
        assert_eq!(err.errno(), errno, "{offset:#x}+{len:#x}: {err}");
    }
    assert!(matches!(
        mem.add_fd_segment(memfd(4 * PAGE), 0, 8 * PAGE, true),
        Err(MemoryError::FdTooShort {
            size: 16384,
            needed: 32768
        })
    ));
    assert_eq!(mem.stats().fd_segments, 0);
}

#[test]
fn access_errors_on_unknown_addresses_and_segment_ends() {
    let mem = host();
    let ram_end = RAM_BASE.checked_add(4 * MIB).unwrap();
    let mut b = [0u8; 8];
    for hpa in [
        Hpa::new(0),
        Hpa::new(RAM_BASE.raw() - 1),
        ram_end,
        Hpa::new(1 << 45),
        Hpa::MAX,
    ] {
        assert!(
            matches!(mem.read(hpa, &mut b), Err(MemoryError::BadAddress { .. })),
            "{hpa}"
        );
        assert_eq!(mem.write(hpa, &b).unwrap_err().errno(), Errno::FAULT);
        assert_eq!(mem.host_ptr(hpa, 1).unwrap_err().errno(), Errno::FAULT);
        assert_eq!(mem.segment(hpa).unwrap_err().errno(), Errno::FAULT);
    }
    // Crossing the end of RAM.
    let near_end = Hpa::new(ram_end.raw() - 4);
    assert!(matches!(mem.read(near_end, &mut b), Err(MemoryError::BadAddress { hpa }) if hpa == ram_end));
    assert!(matches!(mem.write(near_end, &b), Err(MemoryError::BadAddress { hpa }) if hpa == ram_end));
    assert_eq!(mem.host_ptr(near_end, 8).unwrap_err().errno(), Errno::FAULT);
    mem.read(near_end, &mut b[..4]).unwrap();
    // Crossing the end of a segment.
    let buf = Buffer::new(PAGE as usize);
    // SAFETY: released before `buf` drops.
    let seg = unsafe { mem.adopt(buf.ptr, PAGE) }.unwrap();
    let seg_end = seg.end().unwrap();
    let inside = Hpa::new(seg_end.raw() - 4);
    assert!(matches!(mem.read(inside, &mut b), Err(MemoryError::BadAddress { hpa }) if hpa == seg_end));
    assert!(matches!(mem.write(inside, &b), Err(MemoryError::BadAddress { hpa }) if hpa == seg_end));
    assert_eq!(mem.host_ptr(inside, 5).unwrap_err().errno(), Errno::FAULT);
    assert!(mem.host_ptr(inside, 4).is_ok());
    assert_eq!(mem.read(seg_end, &mut b).unwrap_err().errno(), Errno::FAULT);
    let two = HpaRange::from_start_len(seg.start(), 2 * PAGE).unwrap();
    assert_eq!(mem.pin(two).unwrap_err().errno(), Errno::FAULT);
    mem.release(seg).unwrap();
}

#[test]
fn ram_window_is_the_fast_path() {
    let mem = host();
    let w = mem.ram();
    let f = mem.alloc(PageSize::Size4K).unwrap();
    let p = mem.host_ptr(f, PAGE).unwrap();
    assert_eq!(Some(p), w.ptr_of(f, PAGE));
    assert_eq!(
        p.as_ptr(),
        w.ptr
            .as_ptr()
            .wrapping_add(f.offset_from(w.base).unwrap() as usize)
    );
    assert_eq!(w.ptr_of(RAM_BASE, 4 * MIB + 1), None);
    assert_eq!(w.offset_of(Hpa::new(0), 0), None);
    mem.write(f, &[1, 2, 3]).unwrap();
    let window: &(dyn Send + Sync) = &w;
    let _ = window;
    // HostMemory is shared across threads.
    let mem = std::sync::Arc::new(mem);
    let m2 = mem.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 3];
        m2.read(f, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
    })
    .join()
    .unwrap();
}

#[test]
fn probe_user_range_accepts_mapped_memory_and_refuses_the_rest() {
    use uvfio_memory::{MemoryError, probe_user_range};
    use uvfio_types::HostVa;
    let layout = std::alloc::Layout::from_size_align(4 * 4096, 4096).unwrap();
    // SAFETY: a non-zero-sized layout; freed below with the same layout.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!buf.is_null());
    let va = HostVa::from_ptr(buf);
    probe_user_range(va, 4 * 4096, true).unwrap();
    probe_user_range(va, 4096, false).unwrap();
    // Page 0 is never mapped: pin_user_pages would fail with EFAULT.
    let err = probe_user_range(HostVa::new(0), 4096, false).unwrap_err();
    assert!(matches!(err, MemoryError::BadHostAddress { .. }), "{err}");
    assert_eq!(err.errno(), rustix::io::Errno::FAULT);
    // Read-only memory is fine to read and refused for writing (the text of this test binary).
    let text = HostVa::from_ptr(probe_user_range_accepts_mapped_memory_and_refuses_the_rest as *const ())
        .align_down(uvfio_types::PageSize::Size4K);
    probe_user_range(text, 4096, false).unwrap();
    assert_eq!(
        probe_user_range(text, 4096, true).unwrap_err().errno(),
        rustix::io::Errno::FAULT
    );
    assert_eq!(
        probe_user_range(va.checked_add(1).unwrap(), 4096, false)
            .unwrap_err()
            .errno(),
        rustix::io::Errno::INVAL
    );
    // SAFETY: allocated above with this layout.
    unsafe { std::alloc::dealloc(buf, layout) };
}

#[test]
fn probe_user_range_checks_every_vma_of_the_range() {
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap, mmap_anonymous, mprotect, munmap};
    use uvfio_memory::probe_user_range;
    use uvfio_types::HostVa;
    const P: usize = 4096;
    let fault = |va: HostVa, len: usize, w: bool| probe_user_range(va, len as u64, w).map_err(|e| e.errno());
    // Four anonymous pages: read-write, read-only, none, read-write — four VMAs.
    // SAFETY: a fresh private anonymous mapping the kernel places; nothing else refers to it.
    let base = unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            4 * P,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .unwrap();
    let at = |page: usize| {
        base.cast::<u8>()
            .wrapping_add(page * P)
            .cast::<std::ffi::c_void>()
    };
    // SAFETY: page 1 of the mapping made above, which no Rust reference points into.
    unsafe { mprotect(at(1), P, MprotectFlags::READ) }.unwrap();
    // SAFETY: as above, page 2.
    unsafe { mprotect(at(2), P, MprotectFlags::empty()) }.unwrap();
    let va = HostVa::from_ptr(base.cast::<u8>());
    let page = |n: usize| HostVa::from_ptr(at(n).cast::<u8>());
    assert_eq!(fault(va, 2 * P, false), Ok(()));
    assert_eq!(
        fault(va, 2 * P, true),
        Err(Errno::FAULT),
        "the second VMA is read-only"
    );
    assert_eq!(fault(page(1), P, false), Ok(()));
    assert_eq!(
        fault(va, 3 * P, false),
        Err(Errno::FAULT),
        "the third VMA is PROT_NONE"
    );
    assert_eq!(fault(page(3), P, true), Ok(()));
    // SAFETY: the whole mapping made above, no longer used.
    unsafe { munmap(base, 4 * P).unwrap() };
    assert_eq!(fault(va, P, false), Err(Errno::FAULT), "unmapped");

    // A shared file mapping of two pages over a one-page file: the second page is past the end
    // of the file, where an access would raise SIGBUS — refused as pin_user_pages refuses it.
    let fd = rustix::fs::memfd_create("probe", MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, P as u64).unwrap();
    // SAFETY: a fresh shared mapping of our own memfd; nothing else refers to it.
    let file = unsafe {
        mmap(
            std::ptr::null_mut(),
            2 * P,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .unwrap();
    let fva = HostVa::from_ptr(file.cast::<u8>());
    assert_eq!(fault(fva, P, true), Ok(()));
    assert_eq!(fault(fva, 2 * P, true), Err(Errno::FAULT));
    // SAFETY: the mapping made above, no longer used.
    unsafe { munmap(file, 2 * P).unwrap() };
}

/// The lines of `/proc/self/maps` that map the memfd named `name`.
fn mappings_of(name: &str) -> usize {
    let needle = format!("/memfd:{name} ");
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle) || l.ends_with(&format!("/memfd:{name}")))
        .count()
}

#[test]
fn an_fd_segment_is_mapped_on_its_first_access_only() {
    let mem = host();
    let fd = rustix::fs::memfd_create("uvfio-lazy-segment", MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 4 * PAGE).unwrap();
    let before = mappings_of("uvfio-lazy-segment");
    // Made and dropped untouched: never mapped.
    let range = mem
        .add_fd_segment(fd.try_clone().unwrap(), 0, 4 * PAGE, true)
        .unwrap();
    assert_eq!(mappings_of("uvfio-lazy-segment"), before);
    mem.release(range).unwrap();
    // Touched: mapped once, for as long as the segment lives.
    let range = mem.add_fd_segment(fd, 0, 4 * PAGE, true).unwrap();
    assert_eq!(mappings_of("uvfio-lazy-segment"), before);
    mem.write(range.start(), b"x").unwrap();
    assert_eq!(mappings_of("uvfio-lazy-segment"), before + 1);
    let mut b = [0u8];
    mem.read(range.start(), &mut b).unwrap();
    assert_eq!((b, mappings_of("uvfio-lazy-segment")), ([b'x'], before + 1));
    mem.release(range).unwrap();
    assert_eq!(mappings_of("uvfio-lazy-segment"), before);
}
