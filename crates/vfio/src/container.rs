//! The container, `/dev/vfio/vfio`, over an iommufd IOAS.
//!
//! Two Linux files make up what a driver sees here:
//!
//! - `drivers/vfio/container.c` is the container itself: a list of groups and, once
//!   `VFIO_SET_IOMMU` succeeded, one IOMMU driver. `SET_IOMMU` needs a group and no driver yet
//!   (`EINVAL`); it polls the registered drivers — those *allowed* for the container: real groups
//!   take only IOMMU drivers, no-IOMMU groups only `vfio-noiommu` — for the type, opens the first
//!   that offers it (`ENODEV` if none does) and attaches every group to it. Until then every other
//!   request is `EINVAL`; afterwards the driver serves them. Detaching the last group releases the
//!   driver ("the container is deprivileged and returns to an unset state").
//! - `drivers/iommu/iommufd/vfio_compat.c` is the IOMMU driver for type1 and type1v2: it serves
//!   `VFIO_IOMMU_GET_INFO`, `VFIO_IOMMU_MAP_DMA` and `VFIO_IOMMU_UNMAP_DMA` on one IOAS of an
//!   iommufd context, the *compat IOAS* (`ictx->vfio_ioas`): adopted if the context has one
//!   (`IOMMU_VFIO_IOAS_SET`), else made and recorded there (`iommufd_vfio_compat_ioas_create()`;
//!   "An automatically created compat IOAS is treated as a userspace created object", so it
//!   outlives the driver and goes with the context). A group joins by attaching each of its
//!   devices to that IOAS, which gives the group an automatic domain carrying every mapping.
//!
//! One type1 rule is kept on top of the compat layer: the `dma_entry_limit` of
//! `vfio_iommu_type1.c` (65 535 mappings by default; the next map is `ENOSPC`, and
//! `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL` counts down to it). [`ContainerConfig::dma_entry_limit`]
//! `None` gives the compat layer's behaviour instead (no limit, `dma_avail` = `U32_MAX`).
//!
//! The no-IOMMU driver (`vfio_noiommu_ops`) answers only `VFIO_CHECK_EXTENSION`; its devices DMA
//! to host physical addresses, and every map request is `ENOTTY`.
//!
//! Type1 (v1) and type1v2 differ in one thing, unmapping part of a mapping. v2 refuses it: an
//! unmap range that cuts a mapping is `ENOENT` (the compat layer's `iopt_unmap_iova()`; type1 proper
//! says `EINVAL`), as is a range with no mapping in it. v1 may cut: `VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)`
//! disables large pages on the compat IOAS, and with them disabled the compat layer splits the
//! areas at both ends of the range first (`iopt_cut_iova()`, [`IoPageTable::cut_iova`]).
//!
//! [`IoPageTable::cut_iova`]: uvfio_iommufd::ioas::IoPageTable::cut_iova
//!
//! Files: `context` ([`CompatContext`], [`ContainerGroup`]: the seams to the iommufd context and
//! the groups), `groups` (groups joining and leaving, `VFIO_SET_IOMMU`), `dma` (the compat driver's
//! three requests), `error` ([`ContainerError`]).

mod context;
mod dma;
mod error;
mod groups;

pub use context::{BoundDevice, CompatContext, ContainerGroup, GroupKind};
pub use error::ContainerError;

use crate::uapi::IoctlArg;
use crate::uapi::container::{ContainerRequest, Extension, IommuGetInfo, container_command};
use crate::uapi::type1::{MapDma, Type1Backend, UnmapDma};
use parking_lot::Mutex;
use std::sync::Arc;
use uvfio_abi::vfio::VFIO_API_VERSION;
use uvfio_iommufd::ctx::UserMemory;
use uvfio_iommufd::device::{Device, GroupId};
use uvfio_iommufd::object::ObjectId;

/// type1's default `dma_entry_limit` (`module_param_named(dma_entry_limit, ...)`, `U16_MAX`):
/// "Maximum number of user DMA mappings per container (65535)."
pub const DMA_ENTRY_LIMIT: u32 = u16::MAX as u32;

/// What the compat layer reports as `dma_avail` when there is no limit ("Since S390 qemu userspace
/// actually pays attention and needs a value bigger than U16_MAX return U32_MAX").
pub const DMA_AVAIL_UNLIMITED: u32 = u32::MAX;

/// The host's settings and the opener's privileges, fixed when the container is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The host was started in the unsafe no-IOMMU mode (Linux `vfio.enable_unsafe_noiommu_mode`):
    /// only then does `VFIO_CHECK_EXTENSION(VFIO_NOIOMMU_IOMMU)` answer 1 and can the no-IOMMU
    /// driver be set.
    pub noiommu_enabled: bool,
    /// The opener has `CAP_SYS_RAWIO` (needed for every use of no-IOMMU).
    pub sys_rawio: bool,
    /// type1's `dma_entry_limit`; `None` for the compat layer's unlimited mappings.
    pub dma_entry_limit: Option<u32>,
}

impl Default for ContainerConfig {
    /// No no-IOMMU mode, no `CAP_SYS_RAWIO`, type1's default limit of 65 535 mappings.
    fn default() -> Self {
        ContainerConfig {
            noiommu_enabled: false,
            sys_rawio: false,
            dma_entry_limit: Some(DMA_ENTRY_LIMIT),
        }
    }
}

/// The IOMMU driver `VFIO_SET_IOMMU` gave a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IommuDriver {
    /// `VFIO_TYPE1_IOMMU`: the compat layer with large pages off; unmaps may cut mappings.
    Type1,
    /// `VFIO_TYPE1v2_IOMMU`: the compat layer; unmaps must cover whole mappings.
    Type1v2,
    /// `VFIO_NOIOMMU_IOMMU`: no translation, no map requests.
    NoIommu,
}

impl IommuDriver {
    /// Linux's `ops->name` of the driver.
    fn name(self) -> &'static str {
        match self {
            IommuDriver::Type1 | IommuDriver::Type1v2 => "vfio-iommu-type1",
            IommuDriver::NoIommu => "vfio-noiommu",
        }
    }
}

/// The registered IOMMU drivers, in the order `vfio.iommu_drivers_list` holds them (each
/// registration is a `list_add()` at the head: type1, loaded after `vfio`, comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// `vfio_iommu_type1` (here: iommufd's compat layer).
    Type1,
    /// `vfio_noiommu_ops`.
    NoIommu,
}

const BACKENDS: [Backend; 2] = [Backend::Type1, Backend::NoIommu];

/// A group in the container and the devices its attach bound and attached.
#[derive(Debug)]
struct Member {
    group: Arc<dyn ContainerGroup>,
    attached: Vec<BoundDevice>,
}

#[derive(Debug, Default)]
struct State {
    /// `container->group_list`, in joining order.
    groups: Vec<Member>,
    /// `container->noiommu`: the kind of the groups (meaningful while there is one).
    noiommu: bool,
    /// `container->iommu_driver`.
    driver: Option<IommuDriver>,
}

/// One open `/dev/vfio/vfio`.
pub struct Container<C: CompatContext> {
    ctx: Arc<C>,
    config: ContainerConfig,
    /// Made for a group given an iommufd (see [`Container::over_iommufd`]): the driver is fixed.
    over_iommufd: bool,
    /// `container->group_lock` and type1's `iommu->lock` in one: every request is serialised.
    state: Mutex<State>,
}

impl<C: CompatContext> std::fmt::Debug for Container<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("config", &self.config)
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

impl<C: CompatContext> Container<C> {
    /// `vfio_fops_open()`: an empty container (no group, no driver) over the iommufd context `ctx`.
    pub fn new(ctx: Arc<C>, config: ContainerConfig) -> Self {
        Container {
            ctx,
            config,
            over_iommufd: false,
            state: Mutex::new(State::default()),
        }
    }

    /// What `VFIO_GROUP_SET_CONTAINER` makes of an iommufd fd (Linux's `group->iommufd`, with
    /// `CONFIG_IOMMUFD_VFIO_CONTAINER`): the group uses the context's compat IOAS directly, with
    /// no `VFIO_SET_IOMMU`. For a real group the compat IOAS is made if the context has none
    /// (`iommufd_vfio_compat_ioas_create()`) and the group's devices are attached to it when it
    /// joins; a no-IOMMU group puts the context in no-IOMMU mode, which a context with a compat
    /// IOAS refuses (`iommufd_vfio_compat_set_no_iommu()`: `EINVAL`).
    ///
    /// One difference from Linux, on purpose: Linux binds each device when its device file is
    /// opened (`vfio_df_group_open()`), here the devices are bound when the group joins, as the
    /// legacy container's type1 driver attaches a whole group.
    pub fn over_iommufd(
        ctx: Arc<C>,
        config: ContainerConfig,
        kind: GroupKind,
    ) -> Result<Self, ContainerError> {
        let mut container = Container::new(ctx, config);
        container.over_iommufd = true;
        let driver = match kind {
            GroupKind::Iommu => {
                container.compat_ioas_create()?;
                IommuDriver::Type1v2
            }
            GroupKind::NoIommu => {
                if container.ctx.vfio_ioas().is_some() {
                    return Err(ContainerError::SetIommuState);
                }
                IommuDriver::NoIommu
            }
        };
        container.state.get_mut().driver = Some(driver);
        Ok(container)
    }

    /// The iommufd context the container is built on.
    pub fn context(&self) -> &Arc<C> {
        &self.ctx
    }

    /// The settings the container was opened with.
    pub fn config(&self) -> ContainerConfig {
        self.config
    }

    /// The driver `VFIO_SET_IOMMU` set, if any.
    pub fn driver(&self) -> Option<IommuDriver> {
        self.state.lock().driver
    }

    /// The groups in the container, in joining order.
    pub fn groups(&self) -> Vec<GroupId> {
        self.state.lock().groups.iter().map(|m| m.group.id()).collect()
    }

    /// The devices of `group` bound and attached to the compat IOAS (none before `SET_IOMMU`, and
    /// none for a no-IOMMU group).
    pub fn bound_devices(&self, group: GroupId) -> Vec<Arc<Device>> {
        self.state
            .lock()
            .groups
            .iter()
            .filter(|m| m.group.id() == group)
            .flat_map(|m| m.attached.iter().map(|b| Arc::clone(&b.device)))
            .collect()
    }

    /// The compat IOAS the type1 requests act on (`ictx->vfio_ioas`), if there is one.
    pub fn compat_ioas(&self) -> Option<ObjectId> {
        self.ctx.vfio_ioas()
    }

    /// `ioctl(container_fd, request, arg)`: returns the ioctl's (non-negative) return value and
    /// writes the reply into `arg`'s buffer. Buffers the driver maps are reached through `user`.
    pub fn ioctl(
        &self,
        request: u32,
        mut arg: IoctlArg<'_>,
        user: &dyn UserMemory,
    ) -> Result<u32, ContainerError> {
        let Some(req) = container_command(request) else {
            return Err(self.not_served(request));
        };
        match req {
            // case VFIO_GET_API_VERSION: ret = VFIO_API_VERSION;
            ContainerRequest::GetApiVersion => Ok(VFIO_API_VERSION),
            // case VFIO_CHECK_EXTENSION: ret = vfio_container_ioctl_check_extension(container, arg);
            ContainerRequest::CheckExtension => Ok(self.check_extension(Extension::from_arg(arg.value()))),
            // case VFIO_SET_IOMMU: ret = vfio_ioctl_set_iommu(container, arg);
            ContainerRequest::SetIommu => self.set_iommu(Extension::from_arg(arg.value())).map(|()| 0),
            // default: if (driver) /* passthrough all unrecognized ioctls */
            //                  ret = driver->ops->ioctl(data, cmd, arg);
            ContainerRequest::IommuGetInfo
            | ContainerRequest::IommuMapDma
            | ContainerRequest::IommuUnmapDma => {
                let state = self.state.lock();
                let v2 = match state.driver {
                    Some(IommuDriver::Type1) => false,
                    Some(IommuDriver::Type1v2) => true,
                    _ => return Err(Self::not_served_by(state.driver, request)),
                };
                // The compat layer's handlers, each reading its argument first.
                let backend = Type1Backend::IommufdCompat;
                match req {
                    ContainerRequest::IommuGetInfo => {
                        let cmd = IommuGetInfo::decode(arg.bytes(req.name())?)?;
                        self.iommu_get_info(&state, &cmd, arg.bytes_mut(req.name())?)
                    }
                    ContainerRequest::IommuMapDma => {
                        let cmd = MapDma::decode(arg.bytes(req.name())?, backend)?;
                        self.map_dma(&state, &cmd, user)
                    }
                    _ => {
                        let cmd = UnmapDma::decode(arg.bytes(req.name())?, backend)?;
                        self.unmap_dma(v2, &cmd, arg.bytes_mut(req.name())?)
                    }
                }
                .map(|()| 0)
            }
        }
    }

    /// The answer to a request the container itself does not know.
    fn not_served(&self, request: u32) -> ContainerError {
        Self::not_served_by(self.state.lock().driver, request)
    }

    /// What `driver` answers to `request`: without a driver `EINVAL`; the no-IOMMU driver
    /// `ENOTTY` for everything; the compat layer `-ENOIOCTLCMD` (`ENOTTY`) for what it does not
    /// know (`VFIO_IOMMU_DIRTY_PAGES` included).
    fn not_served_by(driver: Option<IommuDriver>, request: u32) -> ContainerError {
        match driver {
            None => ContainerError::NoIommuDriver { request },
            Some(d @ IommuDriver::NoIommu) => ContainerError::NotServed {
                request,
                driver: d.name(),
            },
            Some(_) => crate::uapi::UapiError::UnknownRequest { request }.into(),
        }
    }

    /// `VFIO_CHECK_EXTENSION` (`vfio_container_ioctl_check_extension()`): with a driver set, only
    /// that driver answers; without one, the registered drivers are polled — only those allowed
    /// for the container's groups, if it has any — and the first positive answer wins.
    pub fn check_extension(&self, ext: Extension) -> u32 {
        let state = self.state.lock();
        match state.driver {
            Some(IommuDriver::NoIommu) => self.backend_check(Backend::NoIommu, ext, true),
            Some(_) => self.backend_check(Backend::Type1, ext, true),
            None => BACKENDS
                .into_iter()
                .filter(|&b| state.groups.is_empty() || Self::allowed(&state, b))
                .map(|b| self.backend_check(b, ext, false))
                .find(|&answer| answer > 0)
                .unwrap_or(0),
        }
    }

    /// A driver's `VFIO_CHECK_EXTENSION`; `open` says whether the driver is the container's (Linux
    /// passes its `iommu_data`, `NULL` while polling).
    fn backend_check(&self, backend: Backend, ext: Extension, open: bool) -> u32 {
        match backend {
            // iommufd_vfio_check_extension(): TYPE1, TYPE1v2 and UNMAP_ALL → 1; DMA_CC → whether
            // every domain of the compat IOAS enforces coherency, which every domain of uvfio's
            // IOMMU does (there is no non-coherent DMA to model); the removed nesting type,
            // UPDATE_VADDR ("It is hard to see how this could be implemented safely") and all else
            // → 0. Polled without a container, type1 answers DMA_CC with 0 (`if (!iommu) return 0`).
            Backend::Type1 => match ext {
                Extension::Type1 | Extension::Type1v2 | Extension::UnmapAll => 1,
                Extension::DmaCc => u32::from(open),
                _ => 0,
            },
            // vfio_noiommu_ioctl(): return vfio_noiommu && (arg == VFIO_NOIOMMU_IOMMU) ? 1 : 0;
            Backend::NoIommu => u32::from(self.config.noiommu_enabled && ext == Extension::NoIommu),
        }
    }

    /// `vfio_iommu_driver_allowed()`: "Only noiommu containers can use vfio-noiommu and noiommu
    /// containers can only use vfio-noiommu."
    fn allowed(state: &State, backend: Backend) -> bool {
        state.noiommu == (backend == Backend::NoIommu)
    }
}

impl<C: CompatContext> Drop for Container<C> {
    /// The container going away takes its groups with it, as if each had unset it: their devices
    /// leave the compat IOAS (whose mappings stay with the context, as the compat layer keeps them).
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut());
        for member in state.groups {
            self.release_member(member);
        }
    }
}
