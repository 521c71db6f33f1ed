//! The IOMMU unit: makes domains and performs global invalidation across them.

use crate::domain::{Domain, DomainConfig, DomainType, Invalidation};
use crate::error::IommuError;
use crate::owner::DmaOwners;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use uvfio_memory::HostMemory;

/// One IOMMU: the domains it translates for share its host memory; a global invalidation reaches
/// every one of them (VT-d's global IOTLB invalidation).
#[derive(Debug)]
pub struct Iommu {
    mem: Arc<HostMemory>,
    domains: Mutex<Vec<Weak<Domain>>>,
    owners: DmaOwners,
}

impl Iommu {
    /// An IOMMU over `mem`.
    pub fn new(mem: Arc<HostMemory>) -> Self {
        Iommu {
            mem,
            domains: Mutex::new(Vec::new()),
            owners: DmaOwners::default(),
        }
    }

    /// Who owns the DMA of each IOMMU group behind this IOMMU.
    pub fn owners(&self) -> &DmaOwners {
        &self.owners
    }

    /// The host memory behind it.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }

    /// A new domain of kind `ty` (`config` matters for paging domains only).
    pub fn alloc_domain(&self, ty: DomainType, config: DomainConfig) -> Result<Arc<Domain>, IommuError> {
        let mem = Arc::clone(&self.mem);
        let domain = match ty {
            DomainType::Blocked => Domain::new_blocked(mem),
            DomainType::Identity => Domain::new_identity(mem),
            DomainType::Paging => Domain::new_paging(mem, config)?,
        };
        let mut domains = self.domains.lock();
        domains.retain(|d| d.strong_count() > 0);
        domains.push(Arc::downgrade(&domain));
        Ok(domain)
    }

    /// Live domains made by this IOMMU.
    pub fn domain_count(&self) -> usize {
        self.domains
            .lock()
            .iter()
            .filter(|d| d.strong_count() > 0)
            .count()
    }

    /// Global invalidation: every paging domain drops every cached translation.
    pub fn invalidate_global(&self) -> Result<(), IommuError> {
        let live: Vec<Arc<Domain>> = self.domains.lock().iter().filter_map(Weak::upgrade).collect();
        for domain in live.iter().filter(|d| d.domain_type() == DomainType::Paging) {
            domain.invalidate(Invalidation::Domain)?;
        }
        Ok(())
    }
}
