//! Where the two ends of a socket benchmark run. A request/reply round trip costs very different
//! amounts depending on whether the two threads share a CPU (a context switch) or not (a wake-up of
//! the other CPU, an IPI — on a virtual machine, an exit and a host wake-up), and the scheduler
//! chooses differently for different programs: unpinned, ours and a peer can end up measured under
//! different placements. The vfio-user rows therefore pin the client side (the measuring thread)
//! and the serving side (uvfio's server thread, or the peer's echoing thread) to fixed CPUs, the
//! same for ours and the peer. [`Placement::from_env`] reads `UVFIO_BENCH_PLACEMENT`: `split`
//! (the default: client on the first allowed CPU, server on the second — a VMM and a device
//! server on different cores), `shared` (both on the first), or `free` (no pinning).

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use std::sync::OnceLock;

/// The CPUs the process may use, as the first placement of the run found them: read before any
/// thread is pinned, so a server thread spawned by a pinned client (and inheriting its one CPU)
/// still picks the second CPU of the set, not of its own.
fn allowed() -> Option<CpuSet> {
    static ALLOWED: OnceLock<Option<CpuSet>> = OnceLock::new();
    *ALLOWED.get_or_init(|| sched_getaffinity(None).ok())
}

/// How the two ends are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Client and server on two different CPUs.
    Split,
    /// Both on one CPU.
    Shared,
    /// Wherever the scheduler puts them.
    Free,
}

impl Placement {
    /// From `UVFIO_BENCH_PLACEMENT` (default [`Placement::Split`]).
    pub fn from_env() -> Placement {
        match std::env::var("UVFIO_BENCH_PLACEMENT").as_deref() {
            Ok("shared") => Placement::Shared,
            Ok("free") => Placement::Free,
            _ => Placement::Split,
        }
    }

    /// Its name, for notes.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Split => "client and server on two CPUs",
            Placement::Shared => "client and server on one CPU",
            Placement::Free => "unpinned",
        }
    }

    /// The CPUs (client, server), from those the process may use ([`allowed`]); `None` to leave threads alone
    /// (free placement, or one CPU only for a split one).
    fn cpus(self) -> Option<(usize, usize)> {
        let allowed = allowed()?;
        let mut cpus = (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c));
        let first = cpus.next()?;
        match self {
            Placement::Free => None,
            Placement::Shared => Some((first, first)),
            Placement::Split => cpus.next().map(|second| (first, second)),
        }
    }

    /// Pins the calling thread as the client side until the guard drops.
    pub fn client(self) -> Pinned {
        Pinned::to(self.cpus().map(|(c, _)| c))
    }

    /// Pins the calling thread as the serving side (for the thread's life: call it first thing in
    /// a server or echo thread).
    pub fn server(self) {
        std::mem::forget(Pinned::to(self.cpus().map(|(_, s)| s)));
    }
}

/// The calling thread pinned to one CPU; its previous CPU set comes back on drop.
#[derive(Debug)]
pub struct Pinned {
    previous: Option<CpuSet>,
}

impl Pinned {
    fn to(cpu: Option<usize>) -> Pinned {
        let previous = cpu.and_then(|cpu| {
            let previous = sched_getaffinity(None).ok()?;
            let mut one = CpuSet::new();
            one.set(cpu);
            sched_setaffinity(None, &one).ok().map(|()| previous)
        });
        Pinned { previous }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            let _ = sched_setaffinity(None, previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_pin_is_undone_and_shared_placement_uses_one_cpu() {
        let before = sched_getaffinity(None).unwrap();
        {
            let _pin = Placement::Shared.client();
            let now = sched_getaffinity(None).unwrap();
            assert_eq!(now.count(), 1);
        }
        assert_eq!(sched_getaffinity(None).unwrap(), before);
        let _free = Placement::Free.client();
        assert_eq!(sched_getaffinity(None).unwrap(), before);
    }

    fn the_cpu() -> Option<usize> {
        let set = sched_getaffinity(None).ok()?;
        (set.count() == 1).then(|| (0..CpuSet::MAX_CPU).find(|&c| set.is_set(c)))?
    }

    #[test]
    fn a_server_spawned_by_a_pinned_client_runs_on_another_cpu() {
        if sched_getaffinity(None).unwrap().count() < 2 {
            eprintln!("one CPU allowed: nothing to split");
            return;
        }
        let _pin = Placement::Split.client();
        let client = the_cpu().expect("the client is on one CPU");
        let server = std::thread::spawn(|| {
            Placement::Split.server();
            the_cpu()
        })
        .join()
        .unwrap()
        .expect("the server is on one CPU");
        assert_ne!(client, server, "split placement put both ends on CPU {client}");
        let shared = std::thread::spawn(|| {
            Placement::Shared.server();
            the_cpu()
        })
        .join()
        .unwrap();
        assert_eq!(shared, Some(client));
    }
}
