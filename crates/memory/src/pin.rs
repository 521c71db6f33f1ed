//! Pinning host memory: pin counts per page (one count per whole folio), charged to the
//! locked-memory account once per page.

use crate::{HostMemory, MemoryError};
use uvfio_types::{Hpa, HpaRange};

impl HostMemory {
    /// Pin every page of `range` (4 KiB aligned at both ends), all or nothing. Every page must be
    /// allocated RAM or lie in one adopted or fd segment. Pages going from unpinned to pinned are
    /// charged to the account; if that would pass the limit the call fails with
    /// [`MemoryError::LimitExceeded`] and nothing is pinned or charged.
    ///
    /// Errors, in order of precedence: `Misaligned` (`EINVAL`); `BadAddress` / `NotAllocated`
    /// (`EFAULT`) for any page outside a segment or in free RAM; `PinOverflow` (`ENOMEM`);
    /// `LimitExceeded` (`ENOMEM`).
    pub fn pin(&self, range: HpaRange) -> Result<(), MemoryError> {
        let span = self.ram_span(range)?;
        let mut guard = self.state.lock();
        let st = &mut *guard;
        match span {
            Some((first, end)) => st.ram.pin(first, end, &mut st.account),
            None => st.segs.pin(range, &mut st.account),
        }
    }

    /// Drop one pin of every page of `range`, all or nothing: if any page is not pinned the call
    /// fails with [`MemoryError::NotPinned`] (`EINVAL`) and nothing changes. A page outside a
    /// segment or in free RAM is reported first (`EFAULT`), as for [`HostMemory::pin`].
    pub fn unpin(&self, range: HpaRange) -> Result<(), MemoryError> {
        let span = self.ram_span(range)?;
        let mut guard = self.state.lock();
        let st = &mut *guard;
        match span {
            Some((first, end)) => st.ram.unpin(first, end, &mut st.account),
            None => st.segs.unpin(range, &mut st.account),
        }
    }

    /// The HPAs at which the caller's address `va` appears in adopted segments (none if it was
    /// never adopted; several if its buffer was adopted more than once).
    pub fn adopted_hpas(&self, va: uvfio_types::HostVa) -> Vec<Hpa> {
        self.segments.read().adopted_hpas(va.raw())
    }

    /// The pin count of the 4 KiB page holding `hpa`.
    pub fn pin_count(&self, hpa: Hpa) -> Result<u32, MemoryError> {
        match self.window.offset_of(hpa, 0) {
            Some(off) => self.state.lock().ram.pin_count(off / crate::ram::FRAME),
            None => self.state.lock().segs.pin_count(hpa),
        }
    }
}
