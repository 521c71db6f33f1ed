//! DMA faults: the typed error a failed access returns, the record an IOMMU logs, and the hook for
//! recoverable faults (I/O page faults, seed 001).
//!
//! VT-d reports a non-recoverable fault by writing a fault record (source id, address, reason) into
//! its fault-recording registers; when they are full it sets the overflow bit and drops further
//! records. The log here keeps the newest [`FAULT_LOG_CAPACITY`] records and counts what it dropped.
//! A domain may also carry a [`FaultHandler`]: a faulting access then leaves its reader section,
//! asks the handler (which may map the page, as an IOPF handler pins and maps on demand) and retries.

use parking_lot::Mutex;
use std::collections::VecDeque;
use uvfio_types::{Access, Iova};

/// Records a domain's fault log keeps before it counts overflow.
pub const FAULT_LOG_CAPACITY: usize = 256;

/// Why a DMA access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// No present entry translates the address (VT-d: "the present field is clear").
    NotPresent,
    /// An entry is present but does not grant the access.
    Permission {
        /// What the entry grants.
        granted: Access,
    },
    /// The address lies above the domain's address width.
    BeyondAddressWidth,
    /// The device is attached to a blocking domain (or detached): every access fails.
    Blocked,
    /// The translation leads to an HPA that is not host memory.
    BadHostAddress,
    /// The access itself wraps past the end of the 64-bit space.
    Wraps,
}

impl FaultReason {
    /// Whether a fault handler may resolve it (a page request): missing or too-weak mappings.
    pub fn is_recoverable(self) -> bool {
        matches!(self, FaultReason::NotPresent | FaultReason::Permission { .. })
    }
}

impl std::fmt::Display for FaultReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultReason::NotPresent => f.write_str("no translation present"),
            FaultReason::Permission { granted } => {
                write!(f, "permission denied (mapping grants {granted:?})")
            }
            FaultReason::BeyondAddressWidth => f.write_str("address beyond the domain's address width"),
            FaultReason::Blocked => f.write_str("DMA blocked"),
            FaultReason::BadHostAddress => f.write_str("translation leads outside host memory"),
            FaultReason::Wraps => f.write_str("access wraps past the end of the address space"),
        }
    }
}

/// One fault as the IOMMU records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultRecord {
    /// The faulting page, 4 KiB aligned: VT-d's fault records carry the page address ("FI"),
    /// not the byte. For a wrapping access, its first byte.
    pub iova: Iova,
    /// What the device tried.
    pub access: Access,
    /// Why it failed.
    pub reason: FaultReason,
    /// The requester (PCI bus/device/function) of the port that faulted.
    pub requester: u16,
}

/// A failed DMA access. Nothing was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA fault: {access:?} at {iova}: {reason}")]
pub struct DmaFault {
    /// The faulting page (4 KiB aligned), as in [`FaultRecord::iova`].
    pub iova: Iova,
    /// What the device tried.
    pub access: Access,
    /// Why it failed.
    pub reason: FaultReason,
}

/// What a [`FaultHandler`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultResponse {
    /// The handler fixed the mapping (and invalidated as needed): retry the access.
    Retry,
    /// Fail the access with the fault.
    Abort,
}

/// A handler for recoverable faults, called outside any reader section so it may map, unmap and
/// invalidate. It must not block on the faulting access itself.
pub trait FaultHandler: Send + Sync + std::fmt::Debug {
    /// Handles one fault.
    fn handle(&self, fault: &FaultRecord) -> FaultResponse;
}

/// A bounded fault log.
#[derive(Debug, Default)]
pub(crate) struct FaultLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    records: VecDeque<FaultRecord>,
    overflowed: u64,
    total: u64,
}

/// Counts of a fault log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Records held now.
    pub pending: usize,
    /// Records dropped because the log was full.
    pub overflowed: u64,
    /// Faults recorded since the domain was made.
    pub total: u64,
}

impl FaultLog {
    pub(crate) fn record(&self, rec: FaultRecord) {
        let mut log = self.inner.lock();
        log.total += 1;
        if log.records.len() == FAULT_LOG_CAPACITY {
            log.records.pop_front();
            log.overflowed += 1;
        }
        log.records.push_back(rec);
    }

    pub(crate) fn drain(&self) -> Vec<FaultRecord> {
        self.inner.lock().records.drain(..).collect()
    }

    /// Takes the records of `requester`, keeping the others in order.
    pub(crate) fn drain_requester(&self, requester: u16) -> Vec<FaultRecord> {
        let mut log = self.inner.lock();
        let mut mine = Vec::new();
        log.records.retain(|r| {
            let take = r.requester == requester;
            if take {
                mine.push(*r);
            }
            !take
        });
        mine
    }

    pub(crate) fn counts(&self) -> FaultCounts {
        let log = self.inner.lock();
        FaultCounts {
            pending: log.records.len(),
            overflowed: log.overflowed,
            total: log.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keeps_newest_and_counts_overflow() {
        let log = FaultLog::default();
        for i in 0..(FAULT_LOG_CAPACITY as u64 + 10) {
            log.record(FaultRecord {
                iova: Iova::new(i << 12),
                access: Access::READ,
                reason: FaultReason::NotPresent,
                requester: 0,
            });
        }
        let counts = log.counts();
        assert_eq!(counts.pending, FAULT_LOG_CAPACITY);
        assert_eq!(counts.overflowed, 10);
        let recs = log.drain();
        assert_eq!(recs[0].iova, Iova::new(10 << 12));
        assert_eq!(log.counts().pending, 0);
        assert_eq!(log.counts().total, FAULT_LOG_CAPACITY as u64 + 10);
        for requester in [1, 2, 1] {
            log.record(FaultRecord {
                iova: Iova::new(0),
                access: Access::WRITE,
                reason: FaultReason::NotPresent,
                requester,
            });
        }
        assert_eq!(log.drain_requester(1).len(), 2);
        assert_eq!(
            log.drain().iter().map(|r| r.requester).collect::<Vec<_>>(),
            vec![2]
        );
    }
}
