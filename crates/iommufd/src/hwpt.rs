//! Paging HW page tables (Linux `struct iommufd_hwpt_paging`, `drivers/iommu/iommufd/hw_pagetable.c`):
//! one paging [`Domain`] bound to one IOAS for its whole life.
//!
//! A [`HwptPaging`] is made over an IOAS and attaches its domain to the IOAS's page table at once, so
//! the domain carries every mapping of the IOAS from birth ("The HWPT will be linked to the given ioas
//! and upon return the underlying iommu_domain is fully populated", `iommufd_hwpt_paging_alloc`); it
//! holds a long-term use of the IOAS object ("Pairs with iommufd_hw_pagetable_destroy():
//! `refcount_inc(&ioas->obj.users)`"), so `IOMMU_DESTROY` of the IOAS is `EBUSY` while it lives, and
//! dropping the last handle detaches the domain from the IOAS (its mappings go, its IOTLB is flushed,
//! and the pins go back when it was the last domain) before the use of the IOAS is released. Many
//! HWPTs may share one IOAS (seed 004's domain sharing). An *automatic* HWPT is one that attaching a
//! device to an IOAS created (`auto_domain`): "Automatic domain selection will never pick a manually
//! created domain", and the last device to leave one destroys it (`iommufd_hw_pagetable_put`:
//! `if (hwpt_paging->auto_domain) iommufd_object_put_and_try_destroy(...)`) — the device module does
//! that through [`HwptObject`], the view of the object table it needs.

use crate::device::Device;
use crate::fail::{FailPoints, Site};
use crate::ioas::{IoPageTable, IoasError};
use crate::object::{ObjectId, TableObject, UserRef};
use std::sync::Arc;
use uvfio_iommu::{Domain, DomainType, Iommu, IommuError};

/// Errors of making a paging HWPT.
#[derive(Debug, thiserror::Error)]
pub enum HwptError {
    /// A fault-injection point failed this step.
    #[error("injected failure at {0:?}")]
    Injected(Site),
    /// The IOMMU could not allocate the domain (its root table frame).
    #[error("allocating the paging domain")]
    Domain(#[source] IommuError),
    /// The IOAS refused the domain (an area outside its aperture, a pin that failed, ...).
    #[error("attaching the domain to the IOAS")]
    Ioas(#[source] IoasError),
}

impl HwptError {
    /// The errno Linux returns: `ENOMEM` for a failed allocation, the IOAS's errno otherwise
    /// (`EADDRINUSE` when an area lies beyond the domain's address width, `EFAULT`/`ENOMEM` from
    /// pinning).
    pub fn errno(&self) -> rustix::io::Errno {
        match self {
            HwptError::Injected(_) => rustix::io::Errno::NOMEM,
            HwptError::Domain(e) => e.errno(),
            HwptError::Ioas(e) => e.errno(),
        }
    }
}

/// A paging HW page table: a paging domain that carries every mapping of one IOAS.
#[derive(Debug)]
pub struct HwptPaging {
    id: ObjectId,
    domain: Arc<Domain>,
    iommu: Arc<Iommu>,
    ioas: Arc<IoPageTable>,
    auto_domain: bool,
    /// Released after `Drop::drop` has detached the domain (fields drop after it).
    ioas_use: UserRef,
}

impl HwptPaging {
    /// `iommufd_hwpt_paging_alloc()`: allocates a paging domain as `device`'s IOMMU makes them
    /// (its IOMMU unit and [`DomainConfig`]) and attaches it to `ioas`, whose object `ioas_use`
    /// holds. `id` is the object id reserved for the HWPT. On failure nothing is left: the domain
    /// is freed and `ioas_use` released.
    pub fn new(
        id: ObjectId,
        device: &Device,
        ioas: Arc<IoPageTable>,
        ioas_use: UserRef,
        auto_domain: bool,
        fail: &FailPoints,
    ) -> Result<Arc<Self>, HwptError> {
        let iommu = Arc::clone(device.iommu());
        // The domain's root table is a host frame.
        fail.step(Site::FrameAlloc).map_err(HwptError::Injected)?;
        let domain = iommu
            .alloc_domain(DomainType::Paging, device.domain_config())
            .map_err(HwptError::Domain)?;
        // `rc = iopt_table_add_domain(&ioas->iopt, hwpt->domain);`
        ioas.attach_domain(Arc::clone(&domain)).map_err(HwptError::Ioas)?;
        Ok(Arc::new(HwptPaging {
            id,
            domain,
            iommu,
            ioas,
            auto_domain,
            ioas_use,
        }))
    }

    /// The HWPT's object id (what `IOMMU_HWPT_ALLOC` and an attach report as `pt_id`).
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The paging domain.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// The IOMMU unit that made the domain.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The IOAS whose mappings the domain carries.
    pub fn ioas(&self) -> &Arc<IoPageTable> {
        &self.ioas
    }

    /// The IOAS's object id.
    pub fn ioas_id(&self) -> ObjectId {
        self.ioas_use.id()
    }

    /// Whether attaching a device to an IOAS created it (Linux `auto_domain`).
    pub fn is_auto(&self) -> bool {
        self.auto_domain
    }

    /// The domain's IOVA width in bits (what attach compatibility looks at).
    pub fn address_width(&self) -> u32 {
        self.domain.address_width()
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        // `iopt_table_remove_domain()`: the mappings leave the domain and its IOTLB before the
        // pins can go. It cannot fail for a domain `new` attached.
        let _ = self.ioas.detach_domain(&self.domain);
    }
}

/// The object table's view that device attach needs: the iommufd context's object type
/// implements it so that [`Device`] can find IOASes and paging HWPTs by id, list the automatic
/// HWPTs of an IOAS and publish new ones.
pub trait HwptObject: TableObject {
    /// The paging HWPT this object is, if it is one.
    fn as_hwpt_paging(&self) -> Option<&Arc<HwptPaging>>;
    /// The IOAS page table this object is, if it is an IOAS.
    fn as_ioas(&self) -> Option<&Arc<IoPageTable>>;
    /// Wraps a new paging HWPT for the table.
    fn from_hwpt_paging(hwpt: Arc<HwptPaging>) -> Self;
}
