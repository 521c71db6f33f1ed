//! Fault injection in the style of Linux's `iommufd_fail_nth` selftest: every fallible step of an
//! operation (an object allocation, a pin, an IOVA allocation, a frame allocation) asks
//! [`FailPoints::step`]; a test arms "fail the n-th step from now" and runs an operation for
//! n = 1, 2, … until one passes untouched, checking after each failure that nothing leaked and no
//! partial state is left.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where a fallible step happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// Reserving an object id.
    ObjectAlloc,
    /// Allocating an IOVA range.
    IovaAlloc,
    /// Pinning pages and charging locked memory.
    Pin,
    /// Allocating a host frame (page tables, buffers).
    FrameAlloc,
    /// Any other allocation of bookkeeping memory.
    Alloc,
}

/// The injection state of one iommufd context. Disarmed by default: every step succeeds.
#[derive(Debug, Default)]
pub struct FailPoints {
    /// Steps left before the one that fails; 0 = disarmed.
    countdown: AtomicU64,
    /// Steps taken since the last `fail_nth`.
    steps: AtomicU64,
    /// Whether the armed failure has happened.
    fired: AtomicU64,
}

impl FailPoints {
    /// Arms the `n`-th fallible step from now (1 = the next one) to fail; `n == 0` disarms.
    pub fn fail_nth(&self, n: u64) {
        self.steps.store(0, Ordering::SeqCst);
        self.fired.store(0, Ordering::SeqCst);
        self.countdown.store(n, Ordering::SeqCst);
    }

    /// One fallible step at `site`: `Err(site)` if it is the armed one.
    pub fn step(&self, site: Site) -> Result<(), Site> {
        self.steps.fetch_add(1, Ordering::Relaxed);
        let armed = self
            .countdown
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match armed {
            Ok(1) => {
                self.fired.fetch_add(1, Ordering::SeqCst);
                Err(site)
            }
            _ => Ok(()),
        }
    }

    /// Whether the armed step failed.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst) > 0
    }

    /// Fallible steps taken since the last [`fail_nth`](Self::fail_nth).
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nth_step_fails_once() {
        let f = FailPoints::default();
        assert!(f.step(Site::Pin).is_ok(), "disarmed by default");
        f.fail_nth(3);
        assert!(f.step(Site::Pin).is_ok());
        assert!(f.step(Site::Alloc).is_ok());
        assert_eq!(f.step(Site::IovaAlloc), Err(Site::IovaAlloc));
        assert!(f.fired());
        assert!(f.step(Site::Pin).is_ok(), "fires once");
        assert_eq!(f.steps(), 4);
        f.fail_nth(0);
        assert!(!f.fired());
        assert!(f.step(Site::Pin).is_ok());
    }
}
