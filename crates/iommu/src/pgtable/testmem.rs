//! A heap-backed [`TableMemory`] for tests, with fault injection and frame accounting.
//!
//! Frames live in chunks of 512 that are allocated on demand and never moved or freed before the
//! memory itself is dropped, so a reference handed out by [`TableMemory::table`] stays valid. The
//! HPA of frame *n* is [`FRAME_BASE`]` + n * 4096`, so HPA 0 is never a table. A freed frame is
//! not a table any more: `table()` returns `None` for it (a walker reading a freed table reports
//! `BadTable` instead of reading stale entries), and freeing it again panics.

use super::{PTES_PER_TABLE, TableAllocError, TableFrame, TableMemory};
use parking_lot::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use uvfio_types::Hpa;

/// The HPA of the first frame.
pub const FRAME_BASE: u64 = 0x1_0000_0000;
/// Frames per chunk.
const CHUNK: usize = PTES_PER_TABLE;

/// The reason an injected allocation failure gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TestAllocFailure {
    /// Failure injected by [`TestMemory::fail_nth_alloc`] or [`TestMemory::fail_all_allocs`].
    #[error("injected allocation failure")]
    Injected,
    /// Every frame of the capacity is in use.
    #[error("test memory capacity exhausted")]
    Exhausted,
}

struct Chunk {
    frames: Box<[TableFrame]>,
    live: Box<[AtomicBool]>,
}

#[derive(Debug, Default)]
struct State {
    /// Frames handed out from chunks so far (the next fresh frame index).
    next: usize,
    /// Freed frame indices, reused last-in first-out.
    free: Vec<usize>,
    /// Allocations still to succeed before the injected failure.
    fail_in: Option<u64>,
    /// Fail every allocation.
    fail_all: bool,
    allocations: u64,
    frees: u64,
    failures: u64,
}

/// A [`TableMemory`] of heap frames with fault injection; shipped for tests only.
pub struct TestMemory {
    chunks: Box<[OnceLock<Chunk>]>,
    capacity: usize,
    live: AtomicUsize,
    state: Mutex<State>,
}

impl Default for TestMemory {
    fn default() -> Self {
        TestMemory::new()
    }
}

impl std::fmt::Debug for TestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestMemory")
            .field("capacity", &self.capacity)
            .field("live_frames", &self.live_frames())
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl TestMemory {
    /// Room for 2^20 frames (4 GiB of tables), allocated lazily.
    pub fn new() -> Self {
        TestMemory::with_capacity(1 << 20)
    }

    /// Room for `frames` frames (rounded up to a chunk of 512), allocated lazily.
    pub fn with_capacity(frames: usize) -> Self {
        let chunks = frames.div_ceil(CHUNK).max(1);
        TestMemory {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            capacity: chunks * CHUNK,
            live: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// Makes the allocation `n` allocations from now fail (0 = the next one), once.
    pub fn fail_nth_alloc(&self, n: u64) {
        self.state.lock().fail_in = Some(n);
    }

    /// Makes every allocation fail (`true`) or stops doing so (`false`).
    pub fn fail_all_allocs(&self, on: bool) {
        self.state.lock().fail_all = on;
    }

    /// Cancels a pending [`fail_nth_alloc`](Self::fail_nth_alloc) and [`fail_all_allocs`](Self::fail_all_allocs).
    pub fn clear_faults(&self) {
        let mut st = self.state.lock();
        st.fail_in = None;
        st.fail_all = false;
    }

    /// Whether a [`fail_nth_alloc`](Self::fail_nth_alloc) failure is still to come.
    pub fn fault_pending(&self) -> bool {
        self.state.lock().fail_in.is_some()
    }

    /// Frames allocated and not yet freed.
    pub fn live_frames(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Successful allocations so far.
    pub fn allocations(&self) -> u64 {
        self.state.lock().allocations
    }

    /// Frees so far.
    pub fn frees(&self) -> u64 {
        self.state.lock().frees
    }

    /// Failed allocations so far (injected or exhausted).
    pub fn failures(&self) -> u64 {
        self.state.lock().failures
    }

    /// The frame index of `hpa`, if it is the HPA of a frame slot.
    #[inline]
    fn index_of(&self, hpa: Hpa) -> Option<usize> {
        let off = hpa.raw().checked_sub(FRAME_BASE)?;
        if off & 0xfff != 0 {
            return None;
        }
        let index = usize::try_from(off >> 12).ok()?;
        (index < self.capacity).then_some(index)
    }

    fn chunk(&self, index: usize) -> Option<&Chunk> {
        self.chunks.get(index / CHUNK)?.get()
    }

    fn fail(st: &mut State, why: TestAllocFailure) -> Result<Hpa, TableAllocError> {
        st.failures += 1;
        Err(TableAllocError {
            source: Some(Box::new(why)),
        })
    }
}

impl TableMemory for TestMemory {
    fn alloc_table(&self) -> Result<Hpa, TableAllocError> {
        let mut st = self.state.lock();
        if st.fail_all {
            return Self::fail(&mut st, TestAllocFailure::Injected);
        }
        match st.fail_in {
            Some(0) => {
                st.fail_in = None;
                return Self::fail(&mut st, TestAllocFailure::Injected);
            }
            Some(n) => st.fail_in = Some(n - 1),
            None => {}
        }
        let index = match st.free.pop() {
            Some(i) => i,
            None if st.next < self.capacity => {
                st.next += 1;
                st.next - 1
            }
            None => return Self::fail(&mut st, TestAllocFailure::Exhausted),
        };
        let chunk = self.chunks[index / CHUNK].get_or_init(|| Chunk {
            frames: (0..CHUNK).map(|_| TableFrame::new()).collect(),
            live: (0..CHUNK).map(|_| AtomicBool::new(false)).collect(),
        });
        chunk.frames[index % CHUNK].zero();
        chunk.live[index % CHUNK].store(true, Ordering::Release);
        st.allocations += 1;
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(Hpa::new(FRAME_BASE + ((index as u64) << 12)))
    }

    fn free_table(&self, table: Hpa) {
        let mut st = self.state.lock();
        let index = self.index_of(table);
        let chunk = index.and_then(|i| self.chunk(i));
        let (Some(index), Some(chunk)) = (index, chunk) else {
            panic!("TestMemory: freeing {table:?}, which is not a frame");
        };
        let was_live = chunk.live[index % CHUNK].swap(false, Ordering::AcqRel);
        assert!(was_live, "TestMemory: double free of {table:?}");
        st.free.push(index);
        st.frees += 1;
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn table(&self, table: Hpa) -> Option<&TableFrame> {
        let index = self.index_of(table)?;
        let chunk = self.chunk(index)?;
        chunk.live[index % CHUNK]
            .load(Ordering::Acquire)
            .then(|| &chunk.frames[index % CHUNK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_zeroed_and_reused() {
        let mem = TestMemory::with_capacity(2);
        let a = mem.alloc_table().unwrap();
        assert_eq!(a, Hpa::new(FRAME_BASE));
        mem.table(a).unwrap().0[7].store(0x1003, Ordering::Relaxed);
        mem.free_table(a);
        assert!(mem.table(a).is_none());
        let b = mem.alloc_table().unwrap();
        assert_eq!(a, b);
        assert!(mem.table(b).unwrap().is_empty());
        assert_eq!((mem.allocations(), mem.frees(), mem.live_frames()), (2, 1, 1));
    }

    #[test]
    fn not_frames_are_none() {
        let mem = TestMemory::new();
        assert!(mem.table(Hpa::new(0)).is_none());
        assert!(mem.table(Hpa::new(FRAME_BASE)).is_none());
        let a = mem.alloc_table().unwrap();
        assert!(mem.table(Hpa::new(a.raw() + 8)).is_none());
        assert!(mem.table(Hpa::new(!0xfffu64)).is_none());
    }

    #[test]
    fn injected_failures() {
        let mem = TestMemory::new();
        mem.fail_nth_alloc(1);
        assert!(mem.alloc_table().is_ok());
        assert!(mem.fault_pending());
        let err = mem.alloc_table().unwrap_err();
        assert!(err.source.is_some());
        assert!(!mem.fault_pending());
        assert!(mem.alloc_table().is_ok());
        mem.fail_all_allocs(true);
        assert!(mem.alloc_table().is_err());
        mem.clear_faults();
        assert!(mem.alloc_table().is_ok());
        assert_eq!(mem.failures(), 2);
        assert_eq!(mem.live_frames(), 3);
    }

    #[test]
    fn capacity_is_a_limit() {
        let mem = TestMemory::with_capacity(1);
        for _ in 0..CHUNK {
            mem.alloc_table().unwrap();
        }
        assert!(mem.alloc_table().is_err());
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_panics() {
        let mem = TestMemory::new();
        let a = mem.alloc_table().unwrap();
        mem.free_table(a);
        mem.free_table(a);
    }
}
