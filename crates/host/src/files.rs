//! The host's uAPI files and its file table: `open / ioctl / close` of `/dev/iommu` and
//! `/dev/vfio/vfio`, taking and returning the raw bytes of the uAPI structs.
//!
//! This is the errno boundary of the host: every call returns what the Linux syscall would, an
//! [`Errno`]. The strictness of the uAPI (short `size`/`argsz` → `EINVAL`, unknown flags, non-zero
//! reserved fields, a longer struct with a non-zero tail → `E2BIG`, unknown request → `ENOTTY`)
//! is the decoders' (`uvfio-iommufd`, `uvfio-vfio`); the host passes the caller's bytes through
//! unchanged.
//!
//! File numbers ([`HostFd`]) start at 3 (0–2 being the standard streams) and are handed out
//! lowest-free-first, as Linux allocates descriptors.

use crate::sys::ProcessMemory;
use crate::topology::Topology;
use parking_lot::Mutex;
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uvfio_iommu::Iommu;
use uvfio_iommufd::ctx::{Accounts, Credentials, Iommufd};
use uvfio_memory::HostMemory;
use uvfio_vfio::container::{Container, ContainerConfig};
use uvfio_vfio::uapi::IoctlArg;

/// The path of the iommufd character device.
pub const DEV_IOMMU: &str = "/dev/iommu";
/// The path of the legacy VFIO container device.
pub const DEV_VFIO_CONTAINER: &str = "/dev/vfio/vfio";
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

/// One open file. Fields drop in declaration order: a container lets go of its context's
/// objects before the context is released.
#[derive(Debug)]
enum HostFile {
    /// An open `/dev/iommu`.
    Iommufd(Release),
    /// An open `/dev/vfio/vfio`, with the legacy iommufd context it is built on.
    Container {
        container: Container<Iommufd>,
        /// Held for its drop: releases the context after the container has gone.
        _release: Release,
    },
}

impl HostFile {
    /// Which file it is, for diagnostics.
    fn path(&self) -> &'static str {
        match self {
            HostFile::Iommufd(_) => DEV_IOMMU,
            HostFile::Container { .. } => DEV_VFIO_CONTAINER,
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
    files: Mutex<BTreeMap<i32, Arc<HostFile>>>,
    /// Objects that were still held elsewhere when their iommufd context was closed.
    leaked: Arc<AtomicUsize>,
}

impl Host {
    /// A host over `mem` and `topology`, with no file open.
    pub fn new(mem: Arc<HostMemory>, accounts: Accounts, creds: Credentials, topology: Topology) -> Self {
        Host {
            iommu: Arc::new(Iommu::new(Arc::clone(&mem))),
            mem,
            accounts,
            creds,
            topology,
            files: Mutex::new(BTreeMap::new()),
            leaked: Arc::new(AtomicUsize::new(0)),
        }
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
    /// empty container over its own (legacy) context; anything else is `ENOENT`. `EMFILE` when
    /// every file number is taken.
    pub fn open(&self, path: &str) -> Result<HostFd, Errno> {
        let file = match path {
            DEV_IOMMU => HostFile::Iommufd(self.release(Arc::new(Iommufd::on_iommu(
                Arc::clone(&self.iommu),
                self.accounts.clone(),
                self.creds,
            )))),
            DEV_VFIO_CONTAINER => {
                let ctx = Arc::new(Iommufd::legacy_on_iommu(
                    Arc::clone(&self.iommu),
                    self.accounts.clone(),
                    self.creds,
                ));
                HostFile::Container {
                    container: Container::new(Arc::clone(&ctx), ContainerConfig::default()),
                    _release: self.release(ctx),
                }
            }
            _ => return Err(Errno::NOENT),
        };
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
            HostFile::Container { container, .. } => container
                .ioctl(request, IoctlArg::Buffer(arg), &ProcessMemory)
                .map_err(|e| e.errno()),
        }
    }

    /// `ioctl(fd, request, arg)` with `arg` a number (`VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`,
    /// `VFIO_GET_API_VERSION`). Every iommufd request takes a pointer to a struct whose bytes
    /// this entry does not have, so `/dev/iommu` answers `EFAULT`.
    pub fn ioctl_value(&self, fd: HostFd, request: u32, value: u64) -> Result<u32, Errno> {
        match &*self.file(fd)? {
            HostFile::Iommufd(_) => Err(Errno::FAULT),
            HostFile::Container { container, .. } => container
                .ioctl(request, IoctlArg::Value(value), &ProcessMemory)
                .map_err(|e| e.errno()),
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
        self.files.lock().get(&fd.0).cloned().ok_or(Errno::BADF)
    }
}
