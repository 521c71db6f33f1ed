//! DMA ownership of IOMMU groups (Linux `drivers/iommu/iommu.c`: `iommu_group_claim_dma_owner()`,
//! `iommu_device_claim_dma_owner()`, `iommu_group_release_dma_owner()`,
//! `iommu_device_release_dma_owner()`).
//!
//! "Multiple devices may be placed in the same IOMMU group because they cannot be isolated from
//! each other. These devices must either be entirely under kernel control or userspace control,
//! never a mixture." (the commit that added DMA ownership to the IOMMU core). An owner is an
//! opaque cookie — Linux passes the VFIO group file or the iommufd context — and a group has at
//! most one at a time:
//!
//! - a group claim (`iommu_group_claim_dma_owner()`, the legacy VFIO container) takes a group no
//!   one owns: `if (group->owner_cnt) { ret = -EPERM; ... }`;
//! - a device claim (`iommu_device_claim_dma_owner()`, `iommufd_device_bind()`) may share the
//!   group with claims of the same owner: `if (group->owner != owner) { ret = -EPERM; ... }
//!   group->owner_cnt++;`.
//!
//! Each claim is released once; the group is free again when its count drops to zero.
//!
//! Kernel drivers' use of a group (`owner_cnt` with no owner) is the VFIO group's own record
//! (which devices are bound to VFIO), not kept here.

use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// An owner cookie: unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerId(NonZeroU64);

impl OwnerId {
    /// A cookie no other owner has.
    pub fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // The counter starts at 1 and would take centuries to wrap.
        OwnerId(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))
    }
}

/// Why a claim failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// The group is owned (by another owner, or — for a group claim — by anyone): `EPERM`.
    #[error("IOMMU group {group}'s DMA is owned by someone else")]
    Owned {
        /// The group number.
        group: u32,
    },
}

impl OwnerError {
    /// The errno of `iommu_*_claim_dma_owner()`.
    pub fn errno(&self) -> Errno {
        match self {
            OwnerError::Owned { .. } => Errno::PERM,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Owned {
    owner: OwnerId,
    /// `group->owner_cnt`; never zero while in the map.
    count: usize,
}

/// Who owns each group's DMA, for one IOMMU.
#[derive(Debug, Default)]
pub struct DmaOwners {
    groups: Mutex<HashMap<u32, Owned>>,
}

impl DmaOwners {
    /// `iommu_group_claim_dma_owner()`: `group` must be unowned.
    pub fn claim_group(&self, group: u32, owner: OwnerId) -> Result<(), OwnerError> {
        let mut groups = self.groups.lock();
        if groups.contains_key(&group) {
            return Err(OwnerError::Owned { group });
        }
        groups.insert(group, Owned { owner, count: 1 });
        Ok(())
    }

    /// `iommu_device_claim_dma_owner()`: `group` must be unowned or owned by `owner`.
    pub fn claim_device(&self, group: u32, owner: OwnerId) -> Result<(), OwnerError> {
        let mut groups = self.groups.lock();
        match groups.get_mut(&group) {
            Some(o) if o.owner != owner => Err(OwnerError::Owned { group }),
            Some(o) => {
                o.count += 1;
                Ok(())
            }
            None => {
                groups.insert(group, Owned { owner, count: 1 });
                Ok(())
            }
        }
    }

    /// Releases one claim of `owner` on `group` (group or device claim alike). A release that
    /// matches no claim is ignored (Linux WARNs).
    pub fn release(&self, group: u32, owner: OwnerId) {
        let mut groups = self.groups.lock();
        let Some(o) = groups.get_mut(&group) else {
            debug_assert!(false, "release of unowned group {group}");
            return;
        };
        if o.owner != owner {
            debug_assert!(false, "release of group {group} by a non-owner");
            return;
        }
        o.count -= 1;
        if o.count == 0 {
            groups.remove(&group);
        }
    }

    /// The owner of `group` and its claim count, if owned.
    pub fn owner(&self, group: u32) -> Option<(OwnerId, usize)> {
        self.groups.lock().get(&group).map(|o| (o.owner, o.count))
    }

    /// How many groups are owned (zero once every user has gone).
    pub fn owned_groups(&self) -> usize {
        self.groups.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_claim_needs_an_unowned_group_and_device_claims_share_with_their_owner() {
        let owners = DmaOwners::default();
        let (a, b) = (OwnerId::unique(), OwnerId::unique());
        owners.claim_device(3, a).unwrap();
        owners.claim_device(3, a).unwrap();
        assert_eq!(owners.claim_device(3, b).unwrap_err().errno(), Errno::PERM);
        assert_eq!(owners.claim_group(3, a).unwrap_err().errno(), Errno::PERM);
        assert_eq!(owners.owner(3), Some((a, 2)));
        owners.release(3, a);
        owners.release(3, a);
        assert_eq!(owners.owned_groups(), 0);
        owners.claim_group(3, b).unwrap();
        assert_eq!(
            owners.claim_device(3, a).unwrap_err(),
            OwnerError::Owned { group: 3 }
        );
        owners.claim_device(3, b).unwrap();
        owners.release(3, b);
        owners.release(3, b);
        owners.claim_group(3, a).unwrap();
        owners.release(3, a);
        assert_eq!(owners.owned_groups(), 0);
    }
}
