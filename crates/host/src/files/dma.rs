//! Where an endpoint's DMA goes: [`EndpointDma`], the host's [`DmaSource`] for a device model.
//!
//! A PCI function's requests carry its requester id; which domain translates them depends on who
//! has the device: the iommufd context a cdev file bound it to, or the container its group joined
//! — the device's domain is then whatever that binding is attached to — and, with nobody, the
//! blocking domain (DMA faults). A no-IOMMU device's requests are not translated at all.
//!
//! An endpoint may also have remote memory ([`RemoteDma`]): windows whose data a vfio-user client
//! holds, installed by the server that serves the device ([`crate::Host::set_remote_dma`]). Each
//! transfer is then split between the windows and the IOMMU (`uvfio_devices::dma`).

use parking_lot::RwLock;
use std::sync::{Arc, OnceLock};
use uvfio_devices::{DmaError, DmaSource, RemoteDma, read_split, write_split};
use uvfio_iommu::{DmaPort, Domain, FaultRecord};
use uvfio_types::Iova;
use uvfio_vfio::cdev::CdevDevice;
use uvfio_vfio::group::Group;
use uvfio_vfio::noiommu::NoIommuDevice;

/// The DMA of one endpoint: its path through the IOMMU (or around it), and its remote memory.
#[derive(Debug)]
pub struct EndpointDma {
    path: DmaPath,
    remote: RwLock<Option<Arc<dyn RemoteDma>>>,
}

/// The path of an endpoint's DMA.
#[derive(Debug)]
pub enum DmaPath {
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
    /// An endpoint whose DMA takes `path`, without remote memory.
    pub fn new(path: DmaPath) -> EndpointDma {
        EndpointDma {
            path,
            remote: RwLock::new(None),
        }
    }

    /// Its path.
    pub fn path(&self) -> &DmaPath {
        &self.path
    }

    /// Installs (`Some`) or removes (`None`) the endpoint's remote memory; the one it had.
    pub fn set_remote(&self, remote: Option<Arc<dyn RemoteDma>>) -> Option<Arc<dyn RemoteDma>> {
        std::mem::replace(&mut *self.remote.write(), remote)
    }

    /// The domain the endpoint's DMA goes through now.
    fn domain(&self) -> Arc<Domain> {
        match &self.path {
            DmaPath::NoIommu(device) => Arc::clone(device.domain()),
            DmaPath::Iommu {
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
        let rid = match &self.path {
            DmaPath::NoIommu(device) => device.rid(),
            DmaPath::Iommu { rid, .. } => *rid,
        };
        self.domain().drain_faults_of(rid)
    }
}

impl DmaSource for EndpointDma {
    fn port(&self) -> DmaPort {
        match &self.path {
            DmaPath::NoIommu(device) => device.port(),
            DmaPath::Iommu {
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

    fn read(&self, iova: Iova, buf: &mut [u8]) -> Result<(), DmaError> {
        // A clone, so that the lock is not held while the remote holder answers.
        let remote = self.remote.read().clone();
        read_split(&self.port(), remote.as_deref(), iova, buf)
    }

    fn write(&self, iova: Iova, data: &[u8]) -> Result<(), DmaError> {
        let remote = self.remote.read().clone();
        write_split(&self.port(), remote.as_deref(), iova, data)
    }
}
