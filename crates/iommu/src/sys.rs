//! Every `unsafe` operation of the crate: copies to and from host memory, the view of a table frame
//! through its host pointer, and the `membarrier(2)` that makes DMA readers cheap.

use crate::pgtable::TableFrame;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Copies `src` into host memory at `dst`.
///
/// Callers pass a pointer that `HostMemory::host_ptr` (or a cached copy of it) returned for at least
/// `src.len()` bytes, used inside a DMA reader section (see `quiesce`), so the translation that
/// produced it is still live and the segment is still mapped.
#[inline(always)]
pub(crate) fn copy_to_host(dst: NonNull<u8>, src: &[u8]) {
    // SAFETY: `dst` points into a mapped host-memory segment with room for `src.len()` bytes (the
    // caller's contract above); `src` is a Rust slice that cannot overlap host memory mappings
    // handed out as DMA targets... except when a driver DMAs from its own adopted buffer, which
    // `copy` (memmove) tolerates.
    unsafe { std::ptr::copy(src.as_ptr(), dst.as_ptr(), src.len()) }
}

/// Copies host memory at `src` into `dst`; same contract as [`copy_to_host`].
#[inline(always)]
pub(crate) fn copy_from_host(src: NonNull<u8>, dst: &mut [u8]) {
    // SAFETY: `src` points into a mapped host-memory segment with `dst.len()` readable bytes (the
    // caller's contract); `copy` tolerates overlap with an adopted buffer.
    unsafe { std::ptr::copy(src.as_ptr(), dst.as_mut_ptr(), dst.len()) }
}

/// RAM's host address minus its HPA base, so that a frame's host address is one add away from its
/// HPA. The pointer keeps the provenance of the RAM mapping (wrapping arithmetic only).
#[derive(Debug)]
pub(crate) struct BiasedRam(*const u8);

// SAFETY: the pointer refers to the RAM mapping of a `HostMemory` that is shared between threads
// by design; `BiasedRam` only ever reads frames of atomics through it.
unsafe impl Send for BiasedRam {}
// SAFETY: as above: shared read access to atomics only.
unsafe impl Sync for BiasedRam {}

impl BiasedRam {
    pub(crate) fn new(ram: NonNull<u8>, base: u64) -> Self {
        BiasedRam(ram.as_ptr().cast_const().wrapping_sub(base as usize))
    }

    /// The page-table frame at HPA `frame`.
    ///
    /// `frame` must be 4 KiB aligned and lie in RAM (`frame - base < len`, checked by the caller);
    /// RAM (4 KiB aligned) stays mapped as long as the `HostMemory` that `'a` borrows. The frame
    /// holds only atomics, so concurrent writers are fine and any bit pattern is valid.
    #[inline(always)]
    pub(crate) fn table_frame<'a>(&self, frame: u64) -> &'a TableFrame {
        let ptr = self.0.wrapping_add(frame as usize).cast::<TableFrame>();
        // SAFETY: `ptr` = RAM start + (frame - base), inside the RAM mapping whose provenance it
        // carries (caller's range check); it is 4 KiB aligned as RAM and `frame` are; the 4 KiB
        // behind it stay mapped for 'a; `TableFrame` (atomics) is valid for any bit pattern.
        unsafe { &*ptr }
    }
}

/// Whether `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` is registered for this process.
///
/// With it, a DMA reader needs only a compiler fence between publishing its section and reading
/// translations; the rare writer pays with one system call that makes every running thread of the
/// process execute a full memory barrier (the asymmetric-fence scheme of liburcu's `urcu-memb`).
pub(crate) fn membarrier_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        use rustix::thread::{MembarrierCommand, membarrier};
        membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
    })
}

/// Makes every running thread of this process execute a full memory barrier.
/// Returns false when the system call failed (the caller then falls back to a plain fence, and
/// readers must use full fences too, see `quiesce`).
pub(crate) fn membarrier_all_threads() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier};
    membarrier(MembarrierCommand::PrivateExpedited).is_ok()
}

// SAFETY: a `DmaPort` holds host pointers in its micro-TLB (`NonNull` is not `Send`), all of which
// point into host-memory segments owned by the `Arc<HostMemory>` the port keeps alive through its
// domain; nothing in it is tied to the creating thread. It stays `!Sync` (its `Cell`s), so only one
// thread uses a port at a time.
unsafe impl Send for crate::port::DmaPort {}
