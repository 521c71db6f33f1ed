//! The unsafe no-IOMMU mode (Linux `vfio.enable_unsafe_noiommu_mode`, `drivers/vfio/group.c` and
//! `vfio_main.c`).
//!
//! Linux makes a VFIO group for a device that has no IOMMU group only when the module option
//! `vfio_noiommu` is set (`vfio_group_find_or_alloc()`: otherwise `if (!iommu_group) return
//! ERR_PTR(-EINVAL)`), names its device node `/dev/vfio/noiommu-N`
//! (`dev_set_name(&group->dev, "%s%d", group->type == VFIO_NO_IOMMU ? "noiommu-" : "", ...)`),
//! and taints the kernel as it does ("Taint the kernel because we're about to give a DMA capable
//! device to a user without IOMMU protection": `add_taint(TAINT_USER, LOCKDEP_STILL_OK)`). Every
//! use needs `CAP_SYS_RAWIO` (`EPERM`): opening the group file, attaching it to a container,
//! opening a device. Opening a device is logged ("vfio-noiommu device opened by user").
//!
//! Here the host owns a [`NoIommuPolicy`] (off unless started with the explicit unsafe opt-in)
//! and a [`Taint`] it reports. A no-IOMMU device is a [`NoIommuDevice`]: nothing translates its
//! DMA, so its DMA view is an identity domain it holds itself (`Domain::new_identity`: IOVA =
//! HPA). It is not an iommufd device: the container's no-IOMMU driver attaches nothing
//! (`vfio_noiommu_attach_group()` returns 0), so there is no HWPT, no IOAS and no pin behind it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use uvfio_iommu::{DmaPort, Domain};
use uvfio_memory::HostMemory;

/// Whether the host offers the unsafe no-IOMMU mode (Linux's `vfio_noiommu`, set by the module
/// option `enable_unsafe_noiommu_mode`). The default is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoIommuPolicy {
    /// The host was started with the explicit unsafe opt-in.
    pub enabled: bool,
}

/// The host's taint record (Linux `TAINT_USER` and the no-IOMMU warnings).
#[derive(Debug, Default)]
pub struct Taint {
    user: AtomicBool,
    noiommu_groups: AtomicU64,
    noiommu_opens: AtomicU64,
}

impl Taint {
    /// A clean record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `TAINT_USER` is set (sticky, as a kernel taint is).
    pub fn is_tainted(&self) -> bool {
        self.user.load(Ordering::Acquire)
    }

    /// How many no-IOMMU groups were made ("Adding kernel taint for vfio-noiommu group on
    /// device").
    pub fn noiommu_groups(&self) -> u64 {
        self.noiommu_groups.load(Ordering::Acquire)
    }

    /// How many times a no-IOMMU device was opened ("vfio-noiommu device opened by user").
    pub fn noiommu_opens(&self) -> u64 {
        self.noiommu_opens.load(Ordering::Acquire)
    }

    /// `add_taint(TAINT_USER, ...)` for a new no-IOMMU group.
    pub(crate) fn group_made(&self) {
        self.noiommu_groups.fetch_add(1, Ordering::AcqRel);
        self.user.store(true, Ordering::Release);
    }

    /// A no-IOMMU device was opened.
    pub(crate) fn device_opened(&self) {
        self.noiommu_opens.fetch_add(1, Ordering::AcqRel);
    }
}

/// The device node name of a group: `N` or `noiommu-N` (under `/dev/vfio/`).
pub fn group_node_name(id: u32, noiommu: bool) -> String {
    if noiommu {
        format!("noiommu-{id}")
    } else {
        id.to_string()
    }
}

/// A device without an IOMMU: its DMA reaches host physical addresses directly.
#[derive(Debug)]
pub struct NoIommuDevice {
    rid: u16,
    domain: Arc<Domain>,
}

impl NoIommuDevice {
    /// A device with requester id `rid` whose DMA goes untranslated into `mem`.
    pub fn new(mem: Arc<HostMemory>, rid: u16) -> Self {
        NoIommuDevice {
            rid,
            domain: Domain::new_identity(mem),
        }
    }

    /// The requester id its DMA carries.
    pub fn rid(&self) -> u16 {
        self.rid
    }

    /// Its DMA view: an identity domain (IOVA = HPA).
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// A DMA port (IOVA = HPA).
    pub fn port(&self) -> DmaPort {
        self.domain.port(self.rid)
    }
}
