//! The host's uAPI files and its file table: `open / ioctl / read / write / mmap / close` of
//! `/dev/iommu`, `/dev/vfio/vfio`, the groups `/dev/vfio/N` (`/dev/vfio/noiommu-N`), the device
//! cdevs `/dev/vfio/devices/vfioX`, device files from `VFIO_GROUP_GET_DEVICE_FD`, and the two
//! proc files a no-IOMMU driver reads (`/proc/self/pagemap`, `/proc/sys/kernel/tainted`),
//! taking and returning the raw bytes of the uAPI structs.
//!
//! This is the errno boundary of the host: every call returns what the Linux syscall would, an
//! [`Errno`]. The strictness of the uAPI (short `size`/`argsz` → `EINVAL`, unknown flags, non-zero
//! reserved fields, a longer struct with a non-zero tail → `E2BIG`, unknown request → `ENOTTY`)
//! is the decoders' (`uvfio-iommufd`, `uvfio-vfio`); the host passes the caller's bytes through
//! unchanged.
//!
//! Device files (from `GET_DEVICE_FD`, and bound cdevs) of devices the host was given a model for
//! ([`Host::with_devices`]) serve the device side: info, regions, IRQs with eventfds, reset, and
//! `read` / `write` / `mmap` of regions; devices without a model are bare (DMA only).
//!
//! File numbers ([`HostFd`]) start at 3 (0–2 being the standard streams) and are handed out
//! lowest-free-first, as Linux allocates descriptors.
//!
//! Files: `vfio` (the VFIO nodes the topology gives, and how fds passed in ioctls resolve),
//! `procfs` (`mlock`, the pagemap, the taint).

mod dma;
mod procfs;
mod vfio;

pub use dma::{DmaPath, EndpointDma};
pub use procfs::{PROC_PAGEMAP, PROC_TAINTED, TAINT_USER};
pub use vfio::{ModelFactory, ModelSource, device_name};

use crate::sys::ProcessMemory;
use crate::topology::{Bdf, Topology};
use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uvfio_iommu::Iommu;
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_memory::HostMemory;
use uvfio_vfio::cdev::CdevFile;
use uvfio_vfio::container::Container;
use uvfio_vfio::device::{DeviceOffset, RegionMap, VfioDeviceModel};
use uvfio_vfio::group::{DeviceFile, GroupFile, GroupReply};
use uvfio_vfio::noiommu::{NoIommuPolicy, Taint};
use uvfio_vfio::uapi::IoctlArg;
use vfio::{Fds, HostContainer, VfioNodes};

/// The path of the iommufd character device.
pub const DEV_IOMMU: &str = "/dev/iommu";
/// The path of the legacy VFIO container device.
pub const DEV_VFIO_CONTAINER: &str = "/dev/vfio/vfio";
/// Where the VFIO group nodes live (`/dev/vfio/N`, `/dev/vfio/noiommu-N`).
pub const DEV_VFIO_DIR: &str = "/dev/vfio/";
/// Where the VFIO device cdevs live (`/dev/vfio/devices/vfioX`).
pub const DEV_VFIO_DEVICES_DIR: &str = "/dev/vfio/devices/";
/// The first file number the host hands out.
pub const FIRST_FD: i32 = 3;

/// A file number of the host's file table, as `open()` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostFd(pub i32);

/// Closes an iommufd context when the last reference to its file goes
/// (`iommufd_fops_release`): every object is destroyed; objects still held elsewhere are counted
/// as leaks.
#[derive(Debug)]
struct Release {
    ctx: Arc<Iommufd>,
    leaked: Arc<AtomicUsize>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let leaks = self.ctx.close().len();
        self.leaked.fetch_add(leaks, Ordering::Relaxed);
    }
}

/// One open file.
#[derive(Debug)]
enum HostFile {
    /// An open `/dev/iommu` (its context is released with the last holder: the file, a group
    /// that joined it, a device bound to it).
    Iommufd(Arc<Release>),
    /// An open `/dev/vfio/vfio`, with the legacy iommufd context it is built on (held by the
    /// groups that joined it, too).
    Container(Arc<HostContainer>),
    /// An open VFIO group.
    Group(GroupFile),
    /// A device file from `VFIO_GROUP_GET_DEVICE_FD`.
    GroupDevice(DeviceFile),
    /// An open device cdev.
    Cdev(CdevFile),
    /// `/proc/self/pagemap`.
    Pagemap,
    /// `/proc/sys/kernel/tainted`.
    Tainted,
}

impl HostFile {
    /// Which kind of file it is, for diagnostics.
    fn path(&self) -> &'static str {
        match self {
            HostFile::Iommufd(_) => DEV_IOMMU,
            HostFile::Container(_) => DEV_VFIO_CONTAINER,
            HostFile::Group(_) => "/dev/vfio/<group>",
            HostFile::GroupDevice(_) => "anon_inode:[vfio-device]",
            HostFile::Cdev(_) => "/dev/vfio/devices/<vfioX>",
            HostFile::Pagemap => PROC_PAGEMAP,
            HostFile::Tainted => PROC_TAINTED,
        }
    }
}

/// How the host was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostOptions {
    /// The machine has an IOMMU (the default). Without one, VFIO offers its devices only in the
    /// unsafe no-IOMMU mode.
    pub iommu: bool,
    /// The explicit unsafe opt-in (Linux `vfio.enable_unsafe_noiommu_mode=1`): no-IOMMU groups
    /// for devices without an IOMMU, and `VFIO_NOIOMMU_IOMMU` offered by containers.
    pub unsafe_noiommu: bool,
}

impl Default for HostOptions {
    /// An IOMMU, no unsafe mode.
    fn default() -> Self {
        HostOptions {
            iommu: true,
            unsafe_noiommu: false,
        }
    }
}

/// The emulated machine: its memory, the locked-memory accounts of its one user and process, the
/// opener's credentials, the PCI topology, and the files open on it.
#[derive(Debug)]
pub struct Host {
    mem: Arc<HostMemory>,
    /// The machine's IOMMU: every context opened on this host allocates its domains here.
    iommu: Arc<Iommu>,
    accounts: Accounts,
    creds: Credentials,
    topology: Topology,
    options: HostOptions,
    /// The kernel's taint record.
    taint: Arc<Taint>,
    vfio: VfioNodes,
    files: Mutex<BTreeMap<i32, Arc<HostFile>>>,
    /// Ranges locked with `mlock`.
    locked: Mutex<Vec<procfs::Locked>>,
    /// Objects that were still held elsewhere when their iommufd context was closed.
    leaked: Arc<AtomicUsize>,
}

impl Host {
    /// A host over `mem` and `topology` with an IOMMU and no unsafe mode, no file open.
    pub fn new(mem: Arc<HostMemory>, accounts: Accounts, creds: Credentials, topology: Topology) -> Self {
        // Building the VFIO nodes of a valid topology with an IOMMU cannot fail: names are
        // unique PCI addresses and every device goes into a real group.
        Self::with_options(mem, accounts, creds, topology, HostOptions::default())
            .unwrap_or_else(|e| unreachable!("VFIO nodes of a valid topology: {e}"))
    }

    /// A host started with `options`: `EINVAL` if the topology's devices cannot get VFIO nodes.
    /// Its devices are bare (DMA only, no regions or IRQs).
    pub fn with_options(
        mem: Arc<HostMemory>,
        accounts: Accounts,
        creds: Credentials,
        topology: Topology,
        options: HostOptions,
    ) -> Result<Self, Errno> {
        Self::with_devices(mem, accounts, creds, topology, options, Vec::new())
    }

    /// A host started with `options` whose endpoints listed in `devices` are backed by their
    /// models: each model becomes one VFIO device (`vfio_pci_core_register_device()`), shared by
    /// its group member and its cdev, whose device files serve its regions, IRQs and reset.
    /// `EINVAL` for a model at an address that is not an endpoint of the topology, for two
    /// models at one address, or if the topology's devices cannot get VFIO nodes.
    pub fn with_devices(
        mem: Arc<HostMemory>,
        accounts: Accounts,
        creds: Credentials,
        topology: Topology,
        options: HostOptions,
        devices: Vec<(Bdf, Arc<dyn VfioDeviceModel>)>,
    ) -> Result<Self, Errno> {
        let devices = devices
            .into_iter()
            .map(|(bdf, model)| (bdf, ModelSource::Ready(model)))
            .collect();
        Self::with_device_sources(mem, accounts, creds, topology, options, devices)
    }

    /// [`Host::with_devices`] where a device may be made by the host once it knows the device's
    /// DMA path ([`ModelSource::Factory`]): the port of whatever domain the device is attached to
    /// (blocked while nobody has it; untranslated in no-IOMMU mode).
    pub fn with_device_sources(
        mem: Arc<HostMemory>,
        accounts: Accounts,
        creds: Credentials,
        topology: Topology,
        options: HostOptions,
        devices: Vec<(Bdf, ModelSource)>,
    ) -> Result<Self, Errno> {
        let taint = Arc::new(Taint::new());
        let policy = NoIommuPolicy {
            enabled: options.unsafe_noiommu,
        };
        let models = vfio::models_by_address(&topology, devices)?;
        let iommu = Arc::new(Iommu::new(Arc::clone(&mem)));
        let vfio = VfioNodes::new(&topology, &mem, options.iommu, policy, &taint, &iommu, models)
            .map_err(|e| e.errno())?;
        Ok(Host {
            iommu,
            mem,
            accounts,
            creds,
            topology,
            options,
            taint,
            vfio,
            files: Mutex::new(BTreeMap::new()),
            locked: Mutex::new(Vec::new()),
            leaked: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How the host was started.
    pub fn options(&self) -> HostOptions {
        self.options
    }

    /// The kernel's taint record (no-IOMMU groups made, no-IOMMU devices opened).
    pub fn taint(&self) -> &Arc<Taint> {
        &self.taint
    }

    /// The host's memory.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.mem
    }

    /// The machine's IOMMU.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The locked-memory accounts pins are charged to.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The PCI topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How many objects were still referenced from outside when their context was closed (a
    /// leak; zero in a correct run).
    pub fn leaked_objects(&self) -> usize {
        self.leaked.load(Ordering::Relaxed)
    }

    /// How many files are open.
    pub fn open_files(&self) -> usize {
        self.files.lock().len()
    }

    /// `open(path, O_RDWR)`: `/dev/iommu` opens a new iommufd context, `/dev/vfio/vfio` a new
    /// empty container over its own (legacy) context, `/dev/vfio/N` a group (`EBUSY` if open
    /// already or one of its devices is bound through its cdev; `EPERM` for a no-IOMMU group
    /// without `CAP_SYS_RAWIO`), `/dev/vfio/devices/vfioX` an unbound device file, and the two
    /// proc files; anything else is `ENOENT`. `EMFILE` when every file number is taken.
    pub fn open(&self, path: &str) -> Result<HostFd, Errno> {
        let file = match path {
            DEV_IOMMU => HostFile::Iommufd(Arc::new(self.release(Arc::new(Iommufd::on_iommu(
                Arc::clone(&self.iommu),
                self.accounts.clone(),
                self.creds,
            ))))),
            DEV_VFIO_CONTAINER => {
                let ctx = Arc::new(Iommufd::legacy_on_iommu(
                    Arc::clone(&self.iommu),
                    self.accounts.clone(),
                    self.creds,
                ));
                HostFile::Container(Arc::new(HostContainer {
                    container: Container::new(Arc::clone(&ctx), self.container_config()),
                    _release: Arc::new(self.release(ctx)),
                }))
            }
            procfs::PROC_PAGEMAP => HostFile::Pagemap,
            procfs::PROC_TAINTED => HostFile::Tainted,
            _ => {
                if let Some(node) = path.strip_prefix(DEV_VFIO_DEVICES_DIR) {
                    let cdev = self.vfio.cdevs.get(node).ok_or(Errno::NOENT)?;
                    HostFile::Cdev(cdev.open())
                } else {
                    let node = path.strip_prefix(DEV_VFIO_DIR).ok_or(Errno::NOENT)?;
                    let group = self.vfio.groups.get(node).ok_or(Errno::NOENT)?;
                    HostFile::Group(group.open(self.creds.sys_rawio).map_err(|e| e.errno())?)
                }
            }
        };
        self.insert(file)
    }

    /// Puts `file` in the table at the lowest free number.
    fn insert(&self, file: HostFile) -> Result<HostFd, Errno> {
        let mut files = self.files.lock();
        let mut fd = FIRST_FD;
        for &used in files.keys() {
            if used != fd {
                break;
            }
            fd = fd.checked_add(1).ok_or(Errno::MFILE)?;
        }
        files.insert(fd, Arc::new(file));
        Ok(HostFd(fd))
    }

    /// `ioctl(fd, request, arg)` with `arg` a pointer to the caller's struct, given here as its
    /// bytes: the reply is written back into `arg`; returns the ioctl's non-negative value.
    /// Memory the request points to further (arrays, buffers to map, file descriptors) is this
    /// process's, reached through [`ProcessMemory`].
    pub fn ioctl_buf(&self, fd: HostFd, request: u32, arg: &mut [u8]) -> Result<u32, Errno> {
        match &*self.file(fd)? {
            HostFile::Iommufd(release) => release
                .ctx
                .ioctl(request, arg, &ProcessMemory)
                .map(|()| 0)
                .map_err(|e| e.errno()),
            file => self.ioctl_vfio(file, request, IoctlArg::Buffer(arg)),
        }
    }

    /// `ioctl(fd, request, arg)` with `arg` a number (`VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`,
    /// `VFIO_GET_API_VERSION`, `VFIO_DEVICE_RESET`). Every iommufd request takes a pointer to a
    /// struct whose bytes this entry does not have, so `/dev/iommu` answers `EFAULT`.
    pub fn ioctl_value(&self, fd: HostFd, request: u32, value: u64) -> Result<u32, Errno> {
        match &*self.file(fd)? {
            HostFile::Iommufd(_) => Err(Errno::FAULT),
            file => self.ioctl_vfio(file, request, IoctlArg::Value(value)),
        }
    }

    /// The VFIO files' (and the proc files') ioctls.
    fn ioctl_vfio(&self, file: &HostFile, request: u32, arg: IoctlArg<'_>) -> Result<u32, Errno> {
        match file {
            HostFile::Container(c) => c
                .container
                .ioctl(request, arg, &ProcessMemory)
                .map_err(|e| e.errno()),
            HostFile::Group(g) => {
                let fds = Fds {
                    host: self,
                    kind: g.group().kind(),
                };
                match g.ioctl(request, arg, &fds).map_err(|e| e.errno())? {
                    GroupReply::Value(v) => Ok(v),
                    // The new device fd is the ioctl's return value.
                    GroupReply::Device(device) => {
                        let fd = self.insert(HostFile::GroupDevice(device))?;
                        u32::try_from(fd.0).map_err(|_| Errno::MFILE)
                    }
                }
            }
            HostFile::GroupDevice(d) => d.ioctl(request, arg, &ProcessMemory).map_err(|e| e.errno()),
            HostFile::Cdev(c) => c.ioctl(request, arg, self, &ProcessMemory).map_err(|e| e.errno()),
            // procfs files have no ioctls.
            HostFile::Pagemap | HostFile::Tainted => Err(Errno::NOTTY),
            HostFile::Iommufd(_) => Err(Errno::FAULT),
        }
    }

    /// `pread(fd, buf, offset)`: the proc files read as Linux's do; a device file (from
    /// `GET_DEVICE_FD`, or a bound cdev) reads the region `offset` names
    /// (`VFIO_PCI_OFFSET_TO_INDEX()`; `EINVAL` past the regions, outside the region, for a bare
    /// device, and for an unbound cdev); the container reads through its IOMMU driver, which has
    /// no `read` (`EINVAL`); groups and `/dev/iommu` have no `read` (`EINVAL`).
    pub fn read(&self, fd: HostFd, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let offset_in_device = DeviceOffset::new(offset);
        match &*self.file(fd)? {
            HostFile::Pagemap => self.read_pagemap(offset, buf),
            HostFile::Tainted => Ok(self.read_tainted(offset, buf)),
            HostFile::GroupDevice(d) => d.read(offset_in_device, buf).map_err(|e| e.errno()),
            HostFile::Cdev(c) => c.read(offset_in_device, buf).map_err(|e| e.errno()),
            _ => Err(Errno::INVAL),
        }
    }

    /// `pwrite(fd, buf, offset)`: a device file writes the region `offset` names (the errnos of
    /// [`Host::read`]); `EINVAL` for every other file here (the proc files are read-only:
    /// `EINVAL`, as for a file without `write`).
    pub fn write(&self, fd: HostFd, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let offset_in_device = DeviceOffset::new(offset);
        match &*self.file(fd)? {
            HostFile::GroupDevice(d) => d.write(offset_in_device, buf).map_err(|e| e.errno()),
            HostFile::Cdev(c) => c.write(offset_in_device, buf).map_err(|e| e.errno()),
            _ => Err(Errno::INVAL),
        }
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)`: for a device file, the
    /// file backing that part of an mmap-able region, for the caller to map itself (`EINVAL` for
    /// an empty or unaligned range, a region without `MMAP`, a range past the region or outside
    /// its sparse areas, a bare device, an unbound cdev). Containers answer `EINVAL` (no IOMMU
    /// driver `mmap`), files without `mmap` — groups, `/dev/iommu`, the proc files — `ENODEV`.
    pub fn mmap(&self, fd: HostFd, offset: u64, len: u64) -> Result<RegionMap, Errno> {
        let offset_in_device = DeviceOffset::new(offset);
        match &*self.file(fd)? {
            HostFile::GroupDevice(d) => d.mmap(offset_in_device, len).map_err(|e| e.errno()),
            HostFile::Cdev(c) => c.mmap(offset_in_device, len).map_err(|e| e.errno()),
            HostFile::Container(_) => Err(Errno::INVAL),
            _ => Err(Errno::NODEV),
        }
    }

    /// `close(fd)`: `EBADF` if `fd` is not open. The last reference to an iommufd context
    /// destroys all its objects (`iommufd_fops_release`) — at once, or when an ioctl still
    /// running on the file returns; objects still held elsewhere are counted in
    /// [`Host::leaked_objects`].
    pub fn close(&self, fd: HostFd) -> Result<(), Errno> {
        let file = self.files.lock().remove(&fd.0).ok_or(Errno::BADF)?;
        drop(file);
        Ok(())
    }

    /// The release of a new context `ctx`, counting its leaks in this host.
    fn release(&self, ctx: Arc<Iommufd>) -> Release {
        Release {
            ctx,
            leaked: Arc::clone(&self.leaked),
        }
    }

    /// The path `fd` was opened with (`EBADF` if it is not open).
    pub fn path(&self, fd: HostFd) -> Result<&'static str, Errno> {
        Ok(self.file(fd)?.path())
    }

    /// The open file `fd`, or `EBADF`.
    fn file(&self, fd: HostFd) -> Result<Arc<HostFile>, Errno> {
        self.file_raw(fd.0).ok_or(Errno::BADF)
    }

    /// The open file numbered `fd` (as an ioctl argument names it).
    fn file_raw(&self, fd: i32) -> Option<Arc<HostFile>> {
        self.files.lock().get(&fd).cloned()
    }
}
