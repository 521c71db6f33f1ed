//! Where an endpoint's DMA goes: [`EndpointDma`], the host's [`DmaSource`] for a device model.
//!
//! A PCI function's requests carry its requester id; which domain translates them depends on who
//! has the device: the iommufd context a cdev file bound it to, or the container its group joined
//! — the device's domain is then whatever that binding is attached to — and, with nobody, the
//! blocking domain (DMA faults). A no-IOMMU device's requests are not translated at all.

use std::sync::{Arc, OnceLock};
use uvfio_devices::DmaSource;
use uvfio_iommu::{DmaPort, Domain, FaultRecord};
use uvfio_vfio::cdev::CdevDevice;
use uvfio_vfio::group::Group;
use uvfio_vfio::noiommu::NoIommuDevice;

/// The DMA path of one endpoint.
#[derive(Debug)]
pub enum EndpointDma {
    /// Behind the IOMMU: the binding of its cdev, else of its group's container, else blocked.
    Iommu {
        /// Its group.
        group: Arc<Group>,
        /// Its cdev (set once the cdev exists).
        cdev: OnceLock<Arc<CdevDevice>>,
        /// Its requester id.
        rid: u16,
        /// Where its DMA goes while nobody has it.
        blocked: Arc<Domain>,
    },
    /// Without an IOMMU: host physical addresses.
    NoIommu(Arc<NoIommuDevice>),
}

impl EndpointDma {
    /// The domain the endpoint's DMA goes through now.
    fn domain(&self) -> Arc<Domain> {
        match self {
            EndpointDma::NoIommu(device) => Arc::clone(device.domain()),
            EndpointDma::Iommu {
                group,
                cdev,
                rid,
                blocked,
            } => cdev
                .get()
                .and_then(|c| c.bound_device())
                .or_else(|| group.bound_device(*rid))
                .map_or_else(|| Arc::clone(blocked), |d| d.current_domain()),
        }
    }

    /// The fault records of the endpoint's requester id in the domain it uses now, taken out of
    /// the domain's log (records of other requesters sharing the domain are kept).
    pub fn drain_faults(&self) -> Vec<FaultRecord> {
        let rid = match self {
            EndpointDma::NoIommu(device) => device.rid(),
            EndpointDma::Iommu { rid, .. } => *rid,
        };
        self.domain().drain_faults_of(rid)
    }
}

impl DmaSource for EndpointDma {
    fn port(&self) -> DmaPort {
        match self {
            EndpointDma::NoIommu(device) => device.port(),
            EndpointDma::Iommu {
                group,
                cdev,
                rid,
                blocked,
            } => {
                let bound = cdev
                    .get()
                    .and_then(|c| c.bound_device())
                    .or_else(|| group.bound_device(*rid));
                match bound {
                    Some(device) => device.port().0,
                    None => blocked.port(*rid),
                }
            }
        }
    }
}
