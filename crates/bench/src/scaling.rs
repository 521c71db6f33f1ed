//! Translation throughput on 2 threads against itself on 1 thread.
//!
//! Each worker thread owns its own state (its own `DmaPort`) and runs the same loop; a round asks
//! one worker or both for the same number of operations each and times the wall clock until all
//! have finished. Both cases go through the same machinery, so its overhead cancels.

use crate::harness::{RatioDef, RowSpec, Settings, Side, Target, Unit, compare};
use crate::vm_memory_peer::{ACCESS, IOVA_BASE, Layout};
use crate::{BenchError, Measured, fixture};
use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uvfio_iommu::{DmaPort, Domain, Fragment};
use uvfio_types::{Access, Iova, IovaRange, PageSize, PageSizes};

/// Mappings the threads translate at random: fewer than the IOTLB holds, more than a port's
/// micro-TLB, so translations are shared-IOTLB hits, the path that must scale.
pub const MAPPINGS: usize = 1024;

/// The rows of this group.
pub fn specs() -> Vec<RowSpec> {
    vec![RowSpec {
        name: "translate_throughput_2_threads",
        what: "translate 64 B (IOTLB hit), 2 threads",
        peer: "itself on 1 thread",
        ratio_def: RatioDef::PeerOverOurs,
        unit: Unit::Op,
        target: Target::AtLeast(1.8),
        measure,
    }]
}

fn measure(s: &Settings) -> Result<Measured, BenchError> {
    let translators = RefCell::new(Translators::new(2)?);
    let before = translators.borrow().domain.iotlb_stats();
    let c = speedup(s, &translators, |t, threads, n| t.time(threads, n))?;
    let tlb = fixture::tlb_note(before, translators.borrow().domain.iotlb_stats());
    drop(translators);
    // The machine's own limit, for context: the same harness over a loop that shares nothing.
    let spinners = RefCell::new(Workers::new((0..2).map(|t| spinner(t as u64)).collect())?);
    let machine = speedup(s, &spinners, |w, threads, n| w.time(threads, n))?;
    let note = format!(
        "{tlb}; a loop that shares nothing scales {:.2}x on this machine",
        machine.ratio
    );
    Ok(Measured {
        comparison: c,
        note: Some(note),
    })
}

/// 2 threads against 1 on `pool`. "Ours" is both threads doing `n` operations each, "peer" one
/// thread doing `n`: with ours' per-op time taken over `2n` operations, peer/ours is the
/// throughput speed-up.
fn speedup<T>(
    s: &Settings,
    pool: &RefCell<T>,
    time: fn(&mut T, usize, u64) -> Result<Duration, BenchError>,
) -> Result<crate::Comparison, BenchError> {
    compare(
        s,
        Side::new(2.0, &mut |n| time(&mut pool.borrow_mut(), 2, n)),
        Side::new(1.0, &mut |n| time(&mut pool.borrow_mut(), 1, n)),
        RatioDef::PeerOverOurs,
    )
}

/// A loop that touches no memory another thread touches.
fn spinner(seed: u64) -> Work {
    let mut rng = crate::harness::XorShift::new(seed + 1);
    Box::new(move |iters| {
        for _ in 0..iters {
            black_box(rng.next_u64());
        }
        Ok(())
    })
}

/// Worker threads translating through one domain, each with its own port.
#[derive(Debug)]
pub struct Translators {
    workers: Workers,
    domain: Arc<Domain>,
}

impl Translators {
    /// A domain with [`MAPPINGS`] 4 KiB pages and `threads` workers, each starting at a different
    /// point of the same access sequence.
    pub fn new(threads: usize) -> Result<Self, BenchError> {
        let layout = Layout::new(MAPPINGS);
        let mem = fixture::host_memory(fixture::SMALL_RAM)?;
        let phys = fixture::alloc(&mem, layout.phys_bytes(), PageSize::Size4K)?;
        let domain = fixture::paging_domain(&mem, PageSizes::SZ_4K)?;
        layout.map_into(&domain, phys.start())?;
        let work = (0..threads)
            .map(|t| {
                let port = domain.port(t as u16);
                translator(port, layout.seq.clone(), t * layout.seq.len() / threads.max(1))
            })
            .collect();
        Ok(Translators {
            workers: Workers::new(work)?,
            domain,
        })
    }

    /// The first `threads` workers translate `iters` times each, concurrently; returns the wall
    /// time.
    pub fn time(&mut self, threads: usize, iters: u64) -> Result<Duration, BenchError> {
        self.workers.time(threads, iters)
    }
}

/// A thread's loop: translate 64 B at each IOVA of `seq` for read, starting at `pos`.
fn translator(port: DmaPort, seq: Vec<u64>, mut pos: usize) -> Work {
    // Roomy, so that the two workers' buffers (allocated side by side) never share a cache line.
    let mut out: Vec<Fragment> = Vec::with_capacity(16);
    Box::new(move |iters| {
        for _ in 0..iters {
            let iova = Iova::new(IOVA_BASE + seq[pos]);
            pos = (pos + 1) % seq.len();
            let range = IovaRange::from_start_len(iova, ACCESS as u64).map_err(BenchError::Types)?;
            out.clear();
            port.translate(range, Access::READ, &mut out)
                .map_err(BenchError::Dma)?;
            black_box(&out);
        }
        Ok(())
    })
}

/// The work one thread does: `iters` operations on its own state.
pub type Work = Box<dyn FnMut(u64) -> Result<(), BenchError> + Send>;

#[derive(Debug)]
struct Worker {
    go: Sender<u64>,
    thread: Option<JoinHandle<()>>,
}

/// A set of parked worker threads, each with its own [`Work`].
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
    done: Receiver<Result<(), BenchError>>,
}

impl Workers {
    /// One thread per element of `work`.
    pub fn new(work: Vec<Work>) -> Result<Self, BenchError> {
        let (done_tx, done) = channel();
        let mut workers = Vec::with_capacity(work.len());
        for (i, mut w) in work.into_iter().enumerate() {
            let (go, go_rx) = channel::<u64>();
            let done_tx = done_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("bench-worker-{i}"))
                .spawn(move || {
                    while let Ok(iters) = go_rx.recv() {
                        if done_tx.send(w(iters)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(BenchError::Spawn)?;
            workers.push(Worker {
                go,
                thread: Some(thread),
            });
        }
        Ok(Workers { workers, done })
    }

    /// Number of worker threads.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Has the first `active` workers run `iters` operations each, concurrently; returns the wall
    /// time until the last one finished.
    pub fn time(&mut self, active: usize, iters: u64) -> Result<Duration, BenchError> {
        let active = active.min(self.workers.len());
        let start = Instant::now();
        for w in &self.workers[..active] {
            w.go.send(iters).map_err(|_| BenchError::WorkerGone)?;
        }
        let mut first_err = None;
        for _ in 0..active {
            let outcome = self.done.recv().map_err(|_| BenchError::WorkerGone)?;
            if let (Err(e), None) = (outcome, &first_err) {
                first_err = Some(e);
            }
        }
        let took = start.elapsed();
        first_err.map_or(Ok(took), Err)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.workers {
            // Closing the channel ends the worker's loop.
            let (closed, _) = channel();
            drop(std::mem::replace(&mut w.go, closed));
            if let Some(t) = w.thread.take() {
                // A worker that panicked has nothing left to report.
                drop(t.join());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn workers_run_the_asked_number_of_ops() {
        let count = Arc::new(AtomicU64::new(0));
        let work: Vec<Work> = (0..2)
            .map(|_| {
                let count = Arc::clone(&count);
                Box::new(move |n: u64| {
                    count.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                }) as Work
            })
            .collect();
        let mut workers = Workers::new(work).unwrap();
        assert_eq!(workers.len(), 2);
        workers.time(1, 10).unwrap();
        workers.time(2, 10).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 30);
    }

    #[test]
    fn translators_run_on_two_threads() {
        let mut t = Translators::new(2).unwrap();
        t.time(1, 100).unwrap();
        t.time(2, 100).unwrap();
    }

    #[test]
    fn a_worker_error_is_reported() {
        let work: Vec<Work> = vec![Box::new(|_| Err(BenchError::WorkerGone))];
        let mut workers = Workers::new(work).unwrap();
        assert!(matches!(workers.time(1, 1), Err(BenchError::WorkerGone)));
        assert!(matches!(workers.time(1, 1), Err(BenchError::WorkerGone)));
    }
}
