//! The host's VFIO nodes: one group per IOMMU group of the topology (`/dev/vfio/N`), or per
//! device in the unsafe no-IOMMU mode (`/dev/vfio/noiommu-N`), one cdev per device
//! (`/dev/vfio/devices/vfioX`), and how a file number given to `VFIO_GROUP_SET_CONTAINER` or
//! `VFIO_DEVICE_BIND_IOMMUFD` becomes a container or an iommufd context.
//!
//! Which devices there are follows Linux's vfio-pci on the topology: every endpoint is bound to
//! `vfio-pci` when the host starts (bridges stay with `pcieport`, which is
//! `driver_managed_dma` and so never spoils a group's viability). A device is named in its group
//! by its PCI address (`0000:bb:dd.f`, what `VFIO_GROUP_GET_DEVICE_FD` takes), and its DMA carries
//! the requester id the IOMMU sees (`pci_for_each_dma_alias()`'s last alias).
//!
//! Without an IOMMU, Linux's vfio-pci refuses devices unless the unsafe no-IOMMU mode is on; then
//! each device gets a fake group of its own (`vfio_noiommu_group_alloc()`), which taints the
//! kernel, and no cdev ("cdev does not support noiommu device", `vfio_device_add()`).
//!
//! An endpoint the host was given a device model for becomes one [`VfioDevice`]
//! (`vfio_pci_core_register_device()`: one `struct vfio_device` whose group member and cdev both
//! reach it), in no-IOMMU groups too.

use super::dma::{DmaPath, EndpointDma};
use super::{Host, HostFile, Release};
use crate::topology::{Bdf, FunctionKind, Topology};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::sync::Arc;
use uvfio_devices::DmaSource;
use uvfio_iommu::DmaPort;
use uvfio_iommufd::ctx::Iommufd;
use uvfio_iommufd::device::{Device, GroupId};
use uvfio_memory::HostMemory;
use uvfio_vfio::cdev::{CdevDevice, CdevError, IommufdFds, IommufdRef};
use uvfio_vfio::container::{Container, ContainerConfig, ContainerError, ContainerGroup, GroupKind};
use uvfio_vfio::device::{VfioDevice, VfioDeviceModel};
use uvfio_vfio::group::{ContainerFds, Group, GroupContainer, GroupDevice, GroupError};
use uvfio_vfio::noiommu::{NoIommuDevice, NoIommuPolicy, Taint};

/// A container file, or the container a group made of an iommufd: the container and the context
/// it is built on, released after it (Linux's container and `group->iommufd` each hold a
/// reference on their context).
#[derive(Debug)]
pub(super) struct HostContainer {
    /// Declared first: dropped before the context's release.
    pub(super) container: Container<Iommufd>,
    pub(super) _release: Arc<Release>,
}

impl GroupContainer for HostContainer {
    fn attach_group(&self, group: Arc<dyn ContainerGroup>) -> Result<(), ContainerError> {
        self.container.attach_group(group)
    }

    fn detach_group(&self, group: GroupId) -> Result<(), ContainerError> {
        self.container.detach_group(group)
    }

    fn has_driver(&self) -> bool {
        self.container.driver().is_some()
    }

    fn bound_device(&self, group: GroupId, rid: u16) -> Option<Arc<Device>> {
        GroupContainer::bound_device(&self.container, group, rid)
    }
}

/// Makes a device model from the endpoint's DMA path.
pub type ModelFactory = Box<dyn FnOnce(Arc<dyn DmaSource>) -> Arc<dyn VfioDeviceModel> + Send>;

/// A device model given to the host: ready made, or made by the host once it knows where the
/// device's DMA goes.
pub enum ModelSource {
    /// A model whose DMA (if any) is its own business.
    Ready(Arc<dyn VfioDeviceModel>),
    /// Makes the model from the endpoint's DMA path.
    Factory(ModelFactory),
}

impl std::fmt::Debug for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Ready(m) => f.debug_tuple("Ready").field(m).finish(),
            ModelSource::Factory(_) => f.write_str("Factory"),
        }
    }
}

impl ModelSource {
    fn make(self, dma: Arc<dyn DmaSource>) -> Arc<dyn VfioDeviceModel> {
        match self {
            ModelSource::Ready(model) => model,
            ModelSource::Factory(make) => make(dma),
        }
    }
}

/// The VFIO device nodes of the host.
#[derive(Debug, Default)]
pub(super) struct VfioNodes {
    /// By node name under `/dev/vfio/` (`N` or `noiommu-N`).
    pub(super) groups: BTreeMap<String, Arc<Group>>,
    /// By node name under `/dev/vfio/devices/` (`vfioX`).
    pub(super) cdevs: BTreeMap<String, Arc<CdevDevice>>,
    /// Each endpoint's group node and cdev node.
    pub(super) by_address: BTreeMap<Bdf, (String, Option<String>)>,
    /// Each endpoint's DMA path.
    pub(super) dma: BTreeMap<Bdf, Arc<EndpointDma>>,
}

impl VfioNodes {
    /// The nodes of `topology`: with an IOMMU, a group per IOMMU group with its endpoints, each
    /// with a cdev; without one, a `noiommu-N` group per endpoint if `policy` allows, else none.
    /// The endpoints in `models` get their device side, one [`VfioDevice`] each.
    pub(super) fn new(
        topology: &Topology,
        mem: &Arc<HostMemory>,
        iommu: bool,
        policy: NoIommuPolicy,
        taint: &Arc<Taint>,
        iommu_unit: &Arc<uvfio_iommu::Iommu>,
        mut models: BTreeMap<Bdf, ModelSource>,
    ) -> Result<Self, GroupError> {
        let mut vfio_device = |bdf: Bdf, dma: Arc<dyn DmaSource>| {
            models
                .remove(&bdf)
                .map(|source| VfioDevice::new(source.make(dma)))
        };
        let mut nodes = VfioNodes::default();
        let endpoints: Vec<(Bdf, u16)> = topology
            .functions()
            .filter(|f| f.kind == FunctionKind::Endpoint)
            .filter_map(|f| Some((f.bdf, topology.dma_requester_id(f.bdf)?.0)))
            .collect();
        if iommu {
            for g in topology.groups() {
                let group = Group::new(GroupId(g.id.0));
                for &(bdf, rid) in endpoints.iter().filter(|(b, _)| g.members.contains(b)) {
                    let name = device_name(bdf);
                    let cdev_name = format!("vfio{}", nodes.cdevs.len());
                    let dma = Arc::new(EndpointDma::new(DmaPath::Iommu {
                        group: Arc::clone(&group),
                        cdev: std::sync::OnceLock::new(),
                        rid,
                        blocked: uvfio_iommu::Domain::new_blocked(Arc::clone(iommu_unit.memory())),
                    }));
                    let cdev = match vfio_device(bdf, Arc::clone(&dma) as Arc<dyn DmaSource>) {
                        Some(vfio) => {
                            group.add_vfio_device(&name, GroupDevice::Iommu { rid }, Arc::clone(&vfio))?;
                            CdevDevice::in_group_with_device(&cdev_name, &group, rid, vfio)?
                        }
                        None => {
                            group.add_device(&name, GroupDevice::Iommu { rid })?;
                            CdevDevice::in_group(&cdev_name, &group, rid)?
                        }
                    };
                    group.set_vfio_bound(&name, true)?;
                    if let DmaPath::Iommu { cdev: slot, .. } = dma.path() {
                        let _ = slot.set(Arc::clone(&cdev));
                    }
                    nodes
                        .by_address
                        .insert(bdf, (group.node_name(), Some(cdev_name.clone())));
                    nodes.dma.insert(bdf, dma);
                    nodes.cdevs.insert(cdev_name, cdev);
                }
                nodes.groups.insert(group.node_name(), group);
            }
        } else if policy.enabled {
            for (n, &(bdf, rid)) in endpoints.iter().enumerate() {
                let id = GroupId(u32::try_from(n).unwrap_or(u32::MAX));
                let group = Group::new_noiommu(id, policy, Arc::clone(taint))?;
                let noiommu = Arc::new(NoIommuDevice::new(Arc::clone(mem), rid));
                let dma = Arc::new(EndpointDma::new(DmaPath::NoIommu(Arc::clone(&noiommu))));
                let device = GroupDevice::NoIommu(noiommu);
                let name = device_name(bdf);
                nodes.by_address.insert(bdf, (group.node_name(), None));
                nodes.dma.insert(bdf, Arc::clone(&dma));
                match vfio_device(bdf, dma) {
                    Some(vfio) => group.add_vfio_device(&name, device, vfio)?,
                    None => group.add_device(&name, device)?,
                }
                group.set_vfio_bound(&name, true)?;
                nodes.groups.insert(group.node_name(), group);
            }
        }
        Ok(nodes)
    }
}

/// The device models by address: `EINVAL` for an address that is not an endpoint of `topology`
/// (only endpoints are bound to vfio-pci) and for an address given twice.
pub(super) fn models_by_address(
    topology: &Topology,
    devices: Vec<(Bdf, ModelSource)>,
) -> Result<BTreeMap<Bdf, ModelSource>, Errno> {
    let mut models = BTreeMap::new();
    for (bdf, model) in devices {
        let endpoint = topology
            .functions()
            .any(|f| f.bdf == bdf && f.kind == FunctionKind::Endpoint);
        if !endpoint || models.insert(bdf, model).is_some() {
            return Err(Errno::INVAL);
        }
    }
    Ok(models)
}

/// A device's name in its group: its PCI address on segment 0 (`dev_name()`).
pub fn device_name(bdf: Bdf) -> String {
    format!("0000:{bdf}")
}

/// Resolves `SET_CONTAINER`'s fd for a group of `kind`.
pub(super) struct Fds<'h> {
    pub(super) host: &'h Host,
    pub(super) kind: GroupKind,
}

impl ContainerFds for Fds<'_> {
    fn container(&self, fd: i32) -> Result<Arc<dyn GroupContainer>, GroupError> {
        let file = self.host.file_raw(fd).ok_or(GroupError::BadFd(fd))?;
        match &*file {
            HostFile::Container(c) => Ok(Arc::clone(c) as Arc<dyn GroupContainer>),
            HostFile::Iommufd(release) => {
                let container = Container::over_iommufd(
                    Arc::clone(&release.ctx),
                    self.host.container_config(),
                    self.kind,
                )
                .map_err(GroupError::Container)?;
                Ok(Arc::new(HostContainer {
                    container,
                    _release: Arc::clone(release),
                }))
            }
            // "The FD passed is not recognized."
            _ => Err(GroupError::NotAContainer(fd)),
        }
    }
}

impl IommufdFds for Host {
    fn iommufd(&self, fd: i32) -> Result<IommufdRef, CdevError> {
        let file = self.file_raw(fd).ok_or(CdevError::BadFd(fd))?;
        match &*file {
            HostFile::Iommufd(release) => Ok(IommufdRef {
                ctx: Arc::clone(&release.ctx),
                hold: Arc::clone(release) as Arc<dyn std::fmt::Debug + Send + Sync>,
            }),
            _ => Err(CdevError::NotAnIommufd(fd)),
        }
    }
}

impl Host {
    /// The settings every container of this host is opened with.
    pub(super) fn container_config(&self) -> ContainerConfig {
        ContainerConfig {
            noiommu_enabled: self.options.unsafe_noiommu,
            sys_rawio: self.creds.sys_rawio,
            ..ContainerConfig::default()
        }
    }

    /// The VFIO group `node` names (`N` or `noiommu-N`).
    pub fn vfio_group(&self, node: &str) -> Option<&Arc<Group>> {
        self.vfio.groups.get(node)
    }

    /// The node names of the VFIO groups, under `/dev/vfio/`.
    pub fn vfio_group_nodes(&self) -> Vec<String> {
        self.vfio.groups.keys().cloned().collect()
    }

    /// The paths of the endpoint `bdf`'s group node and cdev node (none in no-IOMMU mode), if it
    /// has VFIO nodes.
    pub fn vfio_paths(&self, bdf: Bdf) -> Option<(String, Option<String>)> {
        let (group, cdev) = self.vfio.by_address.get(&bdf)?;
        Some((
            format!("{}{group}", super::DEV_VFIO_DIR),
            cdev.as_ref()
                .map(|c| format!("{}{c}", super::DEV_VFIO_DEVICES_DIR)),
        ))
    }

    /// The DMA port the endpoint `bdf`'s device model uses now (through the domain of whatever
    /// binding has the device; blocked while nobody has it), if the endpoint has VFIO nodes: the
    /// device's own data path, for measuring it or for a device model living outside the host.
    pub fn device_dma_port(&self, bdf: Bdf) -> Option<uvfio_iommu::DmaPort> {
        self.vfio
            .dma
            .get(&bdf)
            .map(|d| uvfio_devices::DmaSource::port(&**d))
    }

    /// Installs (`Some`) or removes (`None`) remote memory for the endpoint `bdf`'s DMA: windows
    /// of its address space whose data `remote` moves (a vfio-user client's DMA regions without a
    /// file descriptor, served with `VFIO_USER_DMA_READ` / `VFIO_USER_DMA_WRITE`). Its device
    /// model's transfers then go to `remote` inside the windows and through the IOMMU elsewhere.
    /// The windows must not overlap IOMMU mappings of the device's domain: the caller (the server
    /// holding the device) keeps the two apart. Returns what was installed before; `ENODEV` if
    /// `bdf` has no VFIO nodes.
    pub fn set_remote_dma(
        &self,
        bdf: Bdf,
        remote: Option<Arc<dyn uvfio_devices::RemoteDma>>,
    ) -> Result<Option<Arc<dyn uvfio_devices::RemoteDma>>, rustix::io::Errno> {
        let dma = self.vfio.dma.get(&bdf).ok_or(rustix::io::Errno::NODEV)?;
        Ok(dma.set_remote(remote))
    }

    /// The IOMMU fault records of the endpoint `bdf` since the last call, from the domain its
    /// DMA goes through now (what Linux prints as "DMAR: [DMA Write] Request device [...] fault
    /// addr ...").
    pub fn dma_faults(&self, bdf: Bdf) -> Vec<uvfio_iommu::FaultRecord> {
        self.vfio
            .dma
            .get(&bdf)
            .map(|d| d.drain_faults())
            .unwrap_or_default()
    }

    /// The node names of the VFIO device cdevs, under `/dev/vfio/devices/`.
    pub fn vfio_cdev_nodes(&self) -> Vec<String> {
        self.vfio.cdevs.keys().cloned().collect()
    }

    /// The DMA port of the device open as `fd` (a device file from `GET_DEVICE_FD`, or a bound
    /// cdev): what the device model issues its DMA through. `EBADF` for no such file, `EINVAL`
    /// for another kind of file or an unbound cdev.
    pub fn device_port(&self, fd: super::HostFd) -> Result<DmaPort, rustix::io::Errno> {
        let file = self.file(fd)?;
        let port = match &*file {
            HostFile::GroupDevice(d) => d.port(),
            HostFile::Cdev(c) => c.iommufd_device().map(|d| d.port().0),
            _ => None,
        };
        port.ok_or(rustix::io::Errno::INVAL)
    }
}
