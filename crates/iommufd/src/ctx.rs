//! One open `/dev/iommu`: the object table, the account its pins are charged to, and the ioctl
//! entry that decodes a request ([`crate::uapi`]) and hands it to its handler (one file per
//! command group under `ctx/`).
//!
//! Memory of the caller (arrays behind user pointers, the buffers it maps) is reached through the
//! [`UserMemory`] seam: the host implements it over this process's own memory; tests implement it
//! over buffers of their own.

mod hwpt_cmds;
mod ioas_cmds;
mod option_cmds;
mod test_access;
mod test_cmds;

pub use test_access::ACCESS_FD_BASE;

use crate::device::{Device, DeviceError, Groups};
use crate::fail::FailPoints;
use crate::hwpt::{HwptError, HwptObject, HwptPaging};
use crate::ioas::{IoPageTable, IoasError};
use crate::object::{ObjectError, ObjectTable, ObjectType, TableObject};
use crate::pages::Account;
use crate::uapi::{IommufdCmd, UapiError, UserPtr};
use std::sync::Arc;
use uvfio_iommu::Iommu;
use uvfio_memory::{HostMemory, UserBuffer};
use uvfio_types::HostVa;

/// The caller's memory, as the kernel reaches it with `copy_from_user` / `copy_to_user` and
/// `pin_user_pages`.
pub trait UserMemory {
    /// Copies `buf.len()` bytes from the caller's `ptr` (`EFAULT` if they are not readable).
    fn read(&self, ptr: UserPtr, buf: &mut [u8]) -> Result<(), UserFault>;
    /// Copies `buf` to the caller's `ptr` (`EFAULT` if not writable).
    fn write(&self, ptr: UserPtr, buf: &[u8]) -> Result<(), UserFault>;
    /// A duplicate of the caller's file descriptor `fd` (`fget`), for `IOMMU_IOAS_MAP_FILE`
    /// (`EBADF` if it names no open file).
    fn file(&self, fd: i32) -> Result<std::os::fd::OwnedFd, BadFd>;
    /// The caller's buffer `[va, va + len)` for `IOMMU_IOAS_MAP`, with the implementation's
    /// promise (see [`UserBuffer::new`]) that it stays mapped while mapped into an IOAS.
    fn buffer(&self, va: HostVa, len: u64) -> UserBuffer;
}

/// A copy to or from the caller's memory failed (`EFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad user address {ptr:#x} ({len} bytes)")]
pub struct UserFault {
    /// The address.
    pub ptr: u64,
    /// The length.
    pub len: usize,
}

/// A file descriptor that names no open file (`EBADF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad file descriptor {0}")]
pub struct BadFd(pub i32);

/// What an object id names.
#[derive(Debug, Clone)]
pub enum Object {
    /// An I/O address space.
    Ioas(Arc<IoPageTable>),
    /// A paging HW page table (a domain over an IOAS).
    HwptPaging(Arc<HwptPaging>),
    /// A device bound to this context.
    Device(Arc<Device>),
    /// A selftest mock device (`IOMMU_TEST_OP_MOCK_DOMAIN`).
    Selftest(Arc<test_cmds::MockDevice>),
    /// An access (`IOMMU_TEST_OP_CREATE_ACCESS`), reached through its descriptor.
    Access(Arc<test_access::TestAccess>),
}

impl TableObject for Object {
    fn object_type(&self) -> ObjectType {
        match self {
            Object::Ioas(_) => ObjectType::Ioas,
            Object::HwptPaging(_) => ObjectType::HwptPaging,
            Object::Device(_) => ObjectType::Device,
            Object::Selftest(_) => ObjectType::Selftest,
            Object::Access(_) => ObjectType::Access,
        }
    }
}

impl HwptObject for Object {
    fn as_hwpt_paging(&self) -> Option<&Arc<HwptPaging>> {
        match self {
            Object::HwptPaging(h) => Some(h),
            _ => None,
        }
    }

    fn as_ioas(&self) -> Option<&Arc<IoPageTable>> {
        match self {
            Object::Ioas(i) => Some(i),
            _ => None,
        }
    }

    fn from_hwpt_paging(hwpt: Arc<HwptPaging>) -> Self {
        Object::HwptPaging(hwpt)
    }
}

/// Errors of an ioctl on `/dev/iommu`.
#[derive(Debug, thiserror::Error)]
pub enum IommufdError {
    /// The request or its struct was refused before any object was looked up.
    #[error("bad request")]
    Uapi(#[from] UapiError),
    /// An object lookup, reservation or destroy failed.
    #[error("object")]
    Object(#[from] ObjectError),
    /// The IOAS refused.
    #[error("IOAS")]
    Ioas(#[from] IoasError),
    /// A device attach, replace or bind failed.
    #[error("device")]
    Device(#[from] DeviceError),
    /// A HWPT could not be made.
    #[error("HWPT")]
    Hwpt(#[from] HwptError),
    /// A selftest check found the model different from what the caller expected (`MD_CHECK_MAP`:
    /// `EINVAL`; `MD_CHECK_REFS`: `EIO`).
    #[error("selftest check failed: {what}")]
    CheckFailed {
        /// What differed.
        what: &'static str,
        /// The errno the kernel's selftest returns for it.
        errno: rustix::io::Errno,
    },
    /// The operation is valid but uvfio's IOMMU does not offer it (`EOPNOTSUPP`).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// An argument the command refuses after its lookups (`EINVAL`).
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// A copy from or to the caller's memory failed.
    #[error("user memory")]
    User(#[from] UserFault),
    /// There is no compat IOAS (`ENODEV`).
    #[error("no compat IOAS")]
    NoCompatIoas,
    /// A file descriptor names no open file.
    #[error("file")]
    BadFd(#[from] BadFd),
    /// The opener lacks the capability the command needs (`EPERM`).
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    /// The context is in a state that forbids the command (`EBUSY`).
    #[error("busy: {0}")]
    Busy(&'static str),
    /// A selftest access descriptor that is not open (`iommufd_access_get`: `EBADFD`).
    #[error("{0} is not an access descriptor")]
    BadAccessFd(i32),
    /// A selftest access has no pin item with this id (`ENOENT`).
    #[error("no access pages item {0}")]
    NoSuchItem(u32),
    /// A command this context does not serve yet (it answers as an unknown request would).
    #[error("{0} is not served yet")]
    NotServed(&'static str),
}

impl IommufdError {
    /// The errno the ioctl returns: the one boundary where errors become numbers.
    pub fn errno(&self) -> rustix::io::Errno {
        use rustix::io::Errno;
        match self {
            IommufdError::Uapi(e) => e.errno(),
            IommufdError::Object(e) => e.errno(),
            IommufdError::Ioas(e) => e.errno(),
            IommufdError::User(_) => Errno::FAULT,
            IommufdError::BadFd(_) => Errno::BADF,
            IommufdError::NoCompatIoas => Errno::NODEV,
            IommufdError::Device(e) => e.errno(),
            IommufdError::Hwpt(e) => e.errno(),
            IommufdError::CheckFailed { errno, .. } => *errno,
            IommufdError::Unsupported(_) => Errno::OPNOTSUPP,
            IommufdError::Invalid(_) => Errno::INVAL,
            IommufdError::NotPermitted(_) => Errno::PERM,
            IommufdError::Busy(_) => Errno::BUSY,
            IommufdError::NotServed(_) => Errno::NOTTY,
            IommufdError::BadAccessFd(_) => Errno::BADFD,
            IommufdError::NoSuchItem(_) => Errno::NOENT,
        }
    }
}

/// What the opener of `/dev/iommu` may do (the capabilities Linux checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `CAP_SYS_RESOURCE`: may change `IOMMU_OPTION_RLIMIT_MODE`.
    pub sys_resource: bool,
    /// `CAP_SYS_RAWIO`: may use the unsafe no-IOMMU mode of VFIO.
    pub sys_rawio: bool,
    /// `CAP_SYS_ADMIN`: sees page frame numbers in `/proc/self/pagemap`.
    pub sys_admin: bool,
}

/// The locked-memory accounts pins may be charged to (`enum iopt_pages_account_mode`).
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The user's `RLIMIT_MEMLOCK` account (`IOPT_PAGES_ACCOUNT_USER`, the default), shared by every
    /// context of the same user.
    pub user: Arc<Account>,
    /// The process's `mm->locked_vm` (`IOPT_PAGES_ACCOUNT_MM`, what type1 VFIO charges).
    pub mm: Arc<Account>,
}

impl Accounts {
    /// Fresh user and process accounts with no limit (a user with `CAP_IPC_LOCK`, or
    /// `RLIMIT_MEMLOCK` unlimited); they still count every charged page.
    pub fn unlimited() -> Self {
        Accounts {
            user: Arc::new(Account::new(None)),
            mm: Arc::new(Account::new(None)),
        }
    }
}

/// One iommufd context (an open `/dev/iommu`).
#[derive(Debug)]
pub struct Iommufd {
    mem: Arc<HostMemory>,
    accounts: Accounts,
    creds: Credentials,
    /// Charge the process (`mm`) rather than the user: `IOMMU_OPTION_RLIMIT_MODE` = 1.
    account_mm: parking_lot::Mutex<bool>,
    fail: Arc<FailPoints>,
    objects: ObjectTable<Object>,
    /// The IOMMU unit the context's devices sit behind (the selftest's mock IOMMU).
    iommu: Arc<Iommu>,
    /// IOMMU groups of the bound devices (`ictx->groups`).
    groups: Groups,
    /// The IOAS the VFIO compatibility layer uses (`ictx->vfio_ioas`), by id.
    vfio_ioas: parking_lot::Mutex<Option<u32>>,
    /// The selftest's temporary memory limit (`IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`).
    temp_memory_limit: std::sync::atomic::AtomicU32,
    /// The selftest's access descriptors (`IOMMU_TEST_OP_CREATE_ACCESS`).
    access_fds: test_access::AccessFds,
}

impl Iommufd {
    /// A context over `mem`, charging pins to the user's account until `IOMMU_OPTION_RLIMIT_MODE`
    /// says otherwise.
    pub fn new(mem: Arc<HostMemory>, accounts: Accounts, creds: Credentials) -> Self {
        Self::on_iommu(Arc::new(Iommu::new(mem)), accounts, creds)
    }

    /// A context whose domains the machine's IOMMU `iommu` allocates (every `/dev/iommu` of one
    /// host shares its IOMMU), over that IOMMU's memory.
    pub fn on_iommu(iommu: Arc<Iommu>, accounts: Accounts, creds: Credentials) -> Self {
        let fail = Arc::new(FailPoints::default());
        let mem = Arc::clone(iommu.memory());
        Iommufd {
            accounts,
            creds,
            account_mm: parking_lot::Mutex::new(false),
            objects: ObjectTable::new(Arc::clone(&fail)),
            iommu,
            groups: Groups::new(Arc::clone(&fail)),
            vfio_ioas: parking_lot::Mutex::new(None),
            temp_memory_limit: std::sync::atomic::AtomicU32::new(u32::MAX),
            access_fds: test_access::AccessFds::default(),
            fail,
            mem,
        }
    }

    /// The fault-injection points of this context (for `iommufd_fail_nth`-style tests).
    pub fn fail_points(&self) -> &Arc<FailPoints> {
        &self.fail
    }

    /// The object table.
    pub fn objects(&self) -> &ObjectTable<Object> {
        &self.objects
    }

    /// The account new mappings charge (the mode can change only while there are no objects).
    pub fn account(&self) -> &Arc<Account> {
        if *self.account_mm.lock() {
            &self.accounts.mm
        } else {
            &self.accounts.user
        }
    }

    /// `ioctl(fd, request, arg)`: decodes, runs the handler, writes the reply into `arg`.
    pub fn ioctl(&self, request: u32, arg: &mut [u8], user: &dyn UserMemory) -> Result<(), IommufdError> {
        match crate::uapi::decode(request, arg)? {
            IommufdCmd::Destroy(cmd) => self.destroy(cmd.id),
            IommufdCmd::IoasAlloc(_) => self.ioas_alloc(arg),
            IommufdCmd::IoasMap(cmd) => self.ioas_map(&cmd, arg, user),
            IommufdCmd::IoasUnmap(cmd) => self.ioas_unmap(&cmd, arg),
            IommufdCmd::IoasIovaRanges(cmd) => self.ioas_iova_ranges(&cmd, arg, user),
            IommufdCmd::IoasAllowIovas(cmd) => self.ioas_allow_iovas(&cmd, user),
            IommufdCmd::IoasCopy(cmd) => self.ioas_copy(&cmd, arg),
            IommufdCmd::IoasMapFile(cmd) => self.ioas_map_file(&cmd, arg, user),
            IommufdCmd::Option(cmd) => self.option(&cmd, arg),
            IommufdCmd::VfioIoas(cmd) => self.vfio_ioas(cmd, arg),
            IommufdCmd::HwptAlloc(cmd) => self.hwpt_alloc(&cmd, arg),
            IommufdCmd::GetHwInfo(_) => Err(IommufdError::NotServed("IOMMU_GET_HW_INFO")),
            IommufdCmd::Test(cmd) => self.test_cmd(&cmd, arg, user),
        }
    }

    /// The IOAS `id` (`ENOENT` if there is none or it is something else).
    fn ioas(&self, id: u32) -> Result<Arc<IoPageTable>, IommufdError> {
        match self.objects.get(id, Some(ObjectType::Ioas))? {
            Object::Ioas(ioas) => Ok(ioas),
            _ => Err(crate::object::ObjectError::NotFound(id).into()),
        }
    }

    /// `IOMMU_DESTROY`: removes the object; a selftest device is detached and unbound first, as
    /// its kernel destroy function does.
    fn destroy(&self, id: u32) -> Result<(), IommufdError> {
        let removed = self.objects.destroy(id)?;
        {
            let mut compat = self.vfio_ioas.lock();
            if *compat == Some(id) {
                *compat = None;
            }
        }
        match removed {
            Object::Selftest(mock) => self.unbind_mock(&mock),
            other => drop(other),
        }
        Ok(())
    }

    /// The compat IOAS (`get_compat_ioas`): `ENODEV` if none is set or it was destroyed.
    pub fn compat_ioas(&self) -> Result<(u32, Arc<IoPageTable>), IommufdError> {
        let mut slot = self.vfio_ioas.lock();
        let id = slot.ok_or(IommufdError::NoCompatIoas)?;
        match self.objects.get(id, Some(ObjectType::Ioas)) {
            Ok(Object::Ioas(ioas)) => Ok((id, ioas)),
            // "if (ictx->vfio_ioas && &ictx->vfio_ioas->obj == obj) ictx->vfio_ioas = NULL;" on
            // destroy: a destroyed (or reused) id is no compat IOAS any more.
            _ => {
                *slot = None;
                Err(IommufdError::NoCompatIoas)
            }
        }
    }

    /// A context opened as `/dev/vfio/vfio`: Linux's `iommufd_fops_open()` makes it charge
    /// `mm->locked_vm` (`IOPT_PAGES_ACCOUNT_MM`, "the same rlimit accounting as vfio uses").
    pub fn new_legacy(mem: Arc<HostMemory>, accounts: Accounts, creds: Credentials) -> Self {
        Self::legacy_on_iommu(Arc::new(Iommu::new(mem)), accounts, creds)
    }

    /// [`Iommufd::new_legacy`] on the machine's IOMMU `iommu` (see [`Iommufd::on_iommu`]).
    pub fn legacy_on_iommu(iommu: Arc<Iommu>, accounts: Accounts, creds: Credentials) -> Self {
        let ctx = Self::on_iommu(iommu, accounts, creds);
        *ctx.account_mm.lock() = true;
        ctx
    }

    /// A new, empty IOAS published in the object table (`iommufd_ioas_alloc()` +
    /// `iommufd_object_finalize()`), charging the context's current account; its id.
    pub fn alloc_ioas(&self) -> Result<crate::object::ObjectId, IommufdError> {
        let reservation = self.objects.reserve(ObjectType::Ioas)?;
        let id = reservation.id();
        let ioas = IoPageTable::new(
            Arc::clone(&self.mem),
            Arc::clone(self.account()),
            Arc::clone(&self.fail),
        );
        reservation.finalize(Object::Ioas(Arc::new(ioas)));
        Ok(id)
    }

    /// Binds a device to the context (`iommufd_device_bind()`, what `VFIO_DEVICE_BIND_IOMMUFD` and
    /// a VFIO group's devices do): requester id `rid` in IOMMU group `group` behind the context's
    /// IOMMU, published as a device object; it starts detached (DMA blocked).
    pub fn bind_device(
        &self,
        group: crate::device::GroupId,
        rid: u16,
    ) -> Result<(crate::object::ObjectId, Arc<Device>), IommufdError> {
        let reservation = self.objects.reserve(ObjectType::Device)?;
        let device = Arc::new(Device::bind(
            &self.groups,
            &self.iommu,
            group,
            rid,
            uvfio_iommu::DomainConfig::default(),
        )?);
        let id = reservation.id();
        reservation.finalize(Object::Device(Arc::clone(&device)));
        Ok((id, device))
    }

    /// The IOMMU the context's domains and devices are on.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The cookie the context claims DMA ownership with (Linux passes `ictx`).
    pub fn owner(&self) -> uvfio_iommu::OwnerId {
        self.groups.owner()
    }

    /// The opener's capabilities.
    pub fn credentials(&self) -> Credentials {
        self.creds
    }

    /// The compat IOAS's id as recorded, whether or not it still exists (the container checks).
    pub fn compat_ioas_id(&self) -> Option<u32> {
        *self.vfio_ioas.lock()
    }

    /// Records `id` as the compat IOAS without checking it (the container has just made it).
    pub fn record_compat_ioas(&self, id: Option<u32>) {
        *self.vfio_ioas.lock() = id;
    }

    /// Makes `id` the compat IOAS (`IOMMU_VFIO_IOAS_SET`, and what the VFIO container does when it
    /// creates one); `None` clears it.
    pub fn set_compat_ioas(&self, id: Option<u32>) -> Result<(), IommufdError> {
        if let Some(id) = id {
            self.ioas(id)?;
        }
        *self.vfio_ioas.lock() = id;
        Ok(())
    }

    /// `IOMMU_VFIO_IOAS` (`iommufd_vfio_ioas` in vfio_compat.c).
    fn vfio_ioas(&self, cmd: crate::uapi::misc::VfioIoasCmd, arg: &mut [u8]) -> Result<(), IommufdError> {
        use crate::uapi::misc::VfioIoasCmd;
        match cmd {
            VfioIoasCmd::Get => {
                let (id, _) = self.compat_ioas()?;
                let id = crate::object::ObjectId::new(id).ok_or(IommufdError::NoCompatIoas)?;
                VfioIoasCmd::encode_reply(arg, id)?;
            }
            VfioIoasCmd::Set { ioas_id } => self.set_compat_ioas(Some(ioas_id))?,
            VfioIoasCmd::Clear => self.set_compat_ioas(None)?,
        }
        Ok(())
    }

    /// Closes the context: every object goes, in dependency order. Returns the objects something
    /// outside still held (none, unless there is a leak).
    /// The selftest's access descriptors are closed first (each holds its access object).
    pub fn close(&self) -> Vec<(crate::object::ObjectId, ObjectType)> {
        self.close_all_access_fds();
        self.objects.destroy_all()
    }
}
