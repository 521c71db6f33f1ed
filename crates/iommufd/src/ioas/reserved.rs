//! Reserved IOVA ranges added by hand: `IOMMU_TEST_OP_ADD_RESERVED` (Linux
//! `iommufd_test_add_reserved` → `iopt_reserve_iova(&ioas->iopt, start, last, NULL)`).
//!
//! Such a reservation has no owner (Linux passes `NULL`), so nothing removes it but the IOAS's
//! destruction: detaching a domain drops only the domain's own reservation.

use super::{IoPageTable, IoasError};
use crate::iova_space::ReserveOwner;
use uvfio_types::IovaRange;

/// The owner of reservations made by [`IoPageTable::add_reserved`] (Linux's `NULL` owner). Domain
/// apertures use owners with bit 63 set, so this one never collides with them.
const NO_OWNER: ReserveOwner = ReserveOwner(0);

impl IoPageTable {
    /// Reserves `range` for good (Linux `iopt_reserve_iova` with no owner): new mappings avoid it
    /// and `IOMMU_IOAS_IOVA_RANGES` no longer reports it. `EADDRINUSE` (nothing changed) if an
    /// area is mapped in `range` or an allowed range overlaps it ("When an allowed range is
    /// specified any narrowing will be refused").
    pub fn add_reserved(&self, range: IovaRange) -> Result<(), IoasError> {
        Ok(self.inner.lock().space.reserve(range, NO_OWNER)?)
    }
}
