//! The dispatch table: request number → command, with Linux's minimum size per command, and
//! [`decode`], which runs `iommufd_fops_ioctl()`'s steps in its order.
//!
//! From `drivers/iommu/iommufd/main.c`:
//!
//! ```c
//! nr = _IOC_NR(cmd);
//! if (nr < IOMMUFD_CMD_BASE ||
//!     (nr - IOMMUFD_CMD_BASE) >= ARRAY_SIZE(iommufd_ioctl_ops))
//!         return iommufd_vfio_ioctl(ictx, cmd, arg);
//! ret = get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer);   // EFAULT
//! op = &iommufd_ioctl_ops[nr - IOMMUFD_CMD_BASE];
//! if (op->ioctl_num != cmd)
//!         return -ENOIOCTLCMD;                                  // ENOTTY
//! if (ucmd.user_size < op->min_size)
//!         return -EINVAL;
//! ret = copy_struct_from_user(ucmd.cmd, op->size, ucmd.ubuffer, ucmd.user_size);  // E2BIG
//! ret = op->execute(&ucmd);
//! ```
//!
//! Numbers outside the table go to the VFIO container compatibility ioctls
//! (`iommufd_vfio_ioctl()`, the `vfio` crate's business); here they are [`UapiError::UnknownRequest`],
//! as are table slots without a command and iommufd commands uvfio does not serve (dirty tracking,
//! invalidation, fault queues, vIOMMU objects): a kernel without them answers the same.

use uvfio_abi::iommufd::{
    IOMMU_DESTROY, IOMMU_GET_HW_INFO, IOMMU_HWPT_ALLOC, IOMMU_IOAS_ALLOC, IOMMU_IOAS_ALLOW_IOVAS,
    IOMMU_IOAS_COPY, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_UNMAP,
    IOMMU_OPTION, IOMMU_VFIO_IOAS, IOMMUFD_CMD_BASE, IommuDestroy, IommuHwInfo, IommuHwptAlloc,
    IommuIoasAlloc, IommuIoasAllowIovas, IommuIoasCopy, IommuIoasIovaRanges, IommuIoasMap, IommuIoasMapFile,
    IommuIoasUnmap, IommuOption, IommuVfioIoas,
};
use uvfio_abi::selftest::{IOMMU_TEST_CMD, IommuTestCmd};
use uvfio_abi::{Extensible, Request, declared_size, ioc_nr};

use super::UapiError;
use super::hwpt::{GetHwInfo, HwptAlloc};
use super::ioas::{IoasAlloc, IoasAllowIovas, IoasCopy, IoasIovaRanges, IoasMap, IoasMapFile, IoasUnmap};
use super::misc::{Destroy, IommuOptionCmd, VfioIoasCmd};
use super::selftest::TestCmd;

/// Entries of Linux's `iommufd_ioctl_ops[]` with `CONFIG_IOMMUFD_TEST`: the last one is
/// `IOMMU_TEST_CMD` at `IOMMUFD_CMD_BASE + 32`.
pub const IOCTL_TABLE_LEN: u8 = 33;

/// An iommufd command served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `IOMMU_DESTROY`.
    Destroy,
    /// `IOMMU_IOAS_ALLOC`.
    IoasAlloc,
    /// `IOMMU_IOAS_ALLOW_IOVAS`.
    IoasAllowIovas,
    /// `IOMMU_IOAS_COPY`.
    IoasCopy,
    /// `IOMMU_IOAS_IOVA_RANGES`.
    IoasIovaRanges,
    /// `IOMMU_IOAS_MAP`.
    IoasMap,
    /// `IOMMU_IOAS_UNMAP`.
    IoasUnmap,
    /// `IOMMU_OPTION`.
    Option,
    /// `IOMMU_VFIO_IOAS`.
    VfioIoas,
    /// `IOMMU_HWPT_ALLOC`.
    HwptAlloc,
    /// `IOMMU_GET_HW_INFO`.
    GetHwInfo,
    /// `IOMMU_IOAS_MAP_FILE`.
    IoasMapFile,
    /// `IOMMU_TEST_CMD`.
    TestCmd,
}

/// One row of Linux's table: `IOCTL_OP(_ioctl, _fn, _struct, _last)`.
struct Op {
    request: Request,
    name: &'static str,
    /// `offsetofend(_struct, _last)`.
    min_size: usize,
    /// `sizeof(_struct)`.
    size: usize,
}

const fn op<T: Extensible>(request: Request, name: &'static str) -> Op {
    Op {
        request,
        name,
        min_size: T::MIN_SIZE,
        size: size_of::<T>(),
    }
}

impl Command {
    /// Every command served, in request-number order.
    pub const ALL: [Command; 13] = [
        Command::Destroy,
        Command::IoasAlloc,
        Command::IoasAllowIovas,
        Command::IoasCopy,
        Command::IoasIovaRanges,
        Command::IoasMap,
        Command::IoasUnmap,
        Command::Option,
        Command::VfioIoas,
        Command::HwptAlloc,
        Command::GetHwInfo,
        Command::IoasMapFile,
        Command::TestCmd,
    ];

    const fn op(self) -> Op {
        match self {
            Command::Destroy => op::<IommuDestroy>(IOMMU_DESTROY, "IOMMU_DESTROY"),
            Command::IoasAlloc => op::<IommuIoasAlloc>(IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC"),
            Command::IoasAllowIovas => {
                op::<IommuIoasAllowIovas>(IOMMU_IOAS_ALLOW_IOVAS, "IOMMU_IOAS_ALLOW_IOVAS")
            }
            Command::IoasCopy => op::<IommuIoasCopy>(IOMMU_IOAS_COPY, "IOMMU_IOAS_COPY"),
            Command::IoasIovaRanges => {
                op::<IommuIoasIovaRanges>(IOMMU_IOAS_IOVA_RANGES, "IOMMU_IOAS_IOVA_RANGES")
            }
            Command::IoasMap => op::<IommuIoasMap>(IOMMU_IOAS_MAP, "IOMMU_IOAS_MAP"),
            Command::IoasUnmap => op::<IommuIoasUnmap>(IOMMU_IOAS_UNMAP, "IOMMU_IOAS_UNMAP"),
            Command::Option => op::<IommuOption>(IOMMU_OPTION, "IOMMU_OPTION"),
            Command::VfioIoas => op::<IommuVfioIoas>(IOMMU_VFIO_IOAS, "IOMMU_VFIO_IOAS"),
            Command::HwptAlloc => op::<IommuHwptAlloc>(IOMMU_HWPT_ALLOC, "IOMMU_HWPT_ALLOC"),
            Command::GetHwInfo => op::<IommuHwInfo>(IOMMU_GET_HW_INFO, "IOMMU_GET_HW_INFO"),
            Command::IoasMapFile => op::<IommuIoasMapFile>(IOMMU_IOAS_MAP_FILE, "IOMMU_IOAS_MAP_FILE"),
            Command::TestCmd => op::<IommuTestCmd>(IOMMU_TEST_CMD, "IOMMU_TEST_CMD"),
        }
    }

    /// The request number (`_IO(IOMMUFD_TYPE, IOMMUFD_CMD_*)`).
    pub const fn request(self) -> Request {
        self.op().request
    }

    /// The C name of the request.
    pub const fn name(self) -> &'static str {
        self.op().name
    }

    /// The smallest `size` accepted: `offsetofend` of the last field named in Linux's
    /// `IOCTL_OP()` row (`EINVAL` below it).
    pub const fn min_size(self) -> usize {
        self.op().min_size
    }

    /// The size of the struct as known here (`sizeof`; bytes past it must be zero, else `E2BIG`).
    pub const fn size(self) -> usize {
        self.op().size
    }
}

/// The command of `request`, if it is one served here (Linux: `op->ioctl_num == cmd`).
pub fn command_of(request: u32) -> Option<Command> {
    Command::ALL.into_iter().find(|c| c.request() == request)
}

/// A decoded iommufd command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IommufdCmd {
    /// `IOMMU_DESTROY`.
    Destroy(Destroy),
    /// `IOMMU_IOAS_ALLOC`.
    IoasAlloc(IoasAlloc),
    /// `IOMMU_IOAS_ALLOW_IOVAS`.
    IoasAllowIovas(IoasAllowIovas),
    /// `IOMMU_IOAS_COPY`.
    IoasCopy(IoasCopy),
    /// `IOMMU_IOAS_IOVA_RANGES`.
    IoasIovaRanges(IoasIovaRanges),
    /// `IOMMU_IOAS_MAP`.
    IoasMap(IoasMap),
    /// `IOMMU_IOAS_UNMAP`.
    IoasUnmap(IoasUnmap),
    /// `IOMMU_OPTION`.
    Option(IommuOptionCmd),
    /// `IOMMU_VFIO_IOAS`.
    VfioIoas(VfioIoasCmd),
    /// `IOMMU_HWPT_ALLOC`.
    HwptAlloc(HwptAlloc),
    /// `IOMMU_GET_HW_INFO`.
    GetHwInfo(GetHwInfo),
    /// `IOMMU_IOAS_MAP_FILE`.
    IoasMapFile(IoasMapFile),
    /// `IOMMU_TEST_CMD`.
    Test(TestCmd),
}

/// Decodes the raw bytes of `ioctl(fd, request, bytes)` on `/dev/iommu`, with
/// `iommufd_fops_ioctl()`'s checks in its order, then the handler's (see the module doc).
pub fn decode(request: u32, bytes: &[u8]) -> Result<IommufdCmd, UapiError> {
    let unknown = UapiError::UnknownRequest { request };
    // `if (nr < IOMMUFD_CMD_BASE || (nr - IOMMUFD_CMD_BASE) >= ARRAY_SIZE(iommufd_ioctl_ops))
    //      return iommufd_vfio_ioctl(ictx, cmd, arg);`
    let nr = ioc_nr(request);
    if nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= IOCTL_TABLE_LEN {
        return Err(unknown);
    }
    // `ret = get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer); if (ret) return ret;`
    declared_size(bytes)?;
    // `if (op->ioctl_num != cmd) return -ENOIOCTLCMD;`
    let command = command_of(request).ok_or(unknown)?;
    // The min_size check and copy_struct_from_user() run inside each decoder, then its handler's.
    Ok(match command {
        Command::Destroy => IommufdCmd::Destroy(Destroy::decode(bytes)?),
        Command::IoasAlloc => IommufdCmd::IoasAlloc(IoasAlloc::decode(bytes)?),
        Command::IoasAllowIovas => IommufdCmd::IoasAllowIovas(IoasAllowIovas::decode(bytes)?),
        Command::IoasCopy => IommufdCmd::IoasCopy(IoasCopy::decode(bytes)?),
        Command::IoasIovaRanges => IommufdCmd::IoasIovaRanges(IoasIovaRanges::decode(bytes)?),
        Command::IoasMap => IommufdCmd::IoasMap(IoasMap::decode(bytes)?),
        Command::IoasUnmap => IommufdCmd::IoasUnmap(IoasUnmap::decode(bytes)?),
        Command::Option => IommufdCmd::Option(IommuOptionCmd::decode(bytes)?),
        Command::VfioIoas => IommufdCmd::VfioIoas(VfioIoasCmd::decode(bytes)?),
        Command::HwptAlloc => IommufdCmd::HwptAlloc(HwptAlloc::decode(bytes)?),
        Command::GetHwInfo => IommufdCmd::GetHwInfo(GetHwInfo::decode(bytes)?),
        Command::IoasMapFile => IommufdCmd::IoasMapFile(IoasMapFile::decode(bytes)?),
        Command::TestCmd => IommufdCmd::Test(TestCmd::decode(bytes)?),
    })
}
