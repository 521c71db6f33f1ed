//! `IOMMU_DESTROY` and `IOMMU_OPTION` (`drivers/iommu/iommufd/main.c`, `ioas.c`) and
//! `IOMMU_VFIO_IOAS` (`drivers/iommu/iommufd/vfio_compat.c`).

use uvfio_abi::iommufd::{
    IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE,
    IOMMU_VFIO_IOAS_CLEAR, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET, IommuDestroy, IommuOption,
    IommuVfioIoas,
};
use uvfio_abi::{AbiError, check_reserved_zero, declared_size};

use super::{UapiError, read_cmd, respond};
use crate::object::ObjectId;

/// `IOMMU_DESTROY`: destroy any object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destroy {
    /// The object to destroy (0 never names one: `ENOENT` is the object table's).
    pub id: u32,
}

impl Destroy {
    /// Decodes `struct iommu_destroy` (`iommufd_destroy()` checks nothing but the size rules).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuDestroy = read_cmd(bytes)?;
        Ok(Destroy { id: cmd.id })
    }
}

/// The op of an `IOMMU_OPTION`, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionOp {
    /// `IOMMU_OPTION_OP_GET`.
    Get,
    /// `IOMMU_OPTION_OP_SET` with the raw `val64`; see [`option_bool`] for the value check.
    Set(u64),
}

impl OptionOp {
    /// The op `op`: get, set, or `EOPNOTSUPP` (`return -EOPNOTSUPP;` after the get and set
    /// branches of `iommufd_option_rlimit_mode()` and `iommufd_ioas_option_huge_pages()`).
    pub fn from_raw(op: u16, val64: u64) -> Result<Self, UapiError> {
        match op {
            IOMMU_OPTION_OP_GET => Ok(OptionOp::Get),
            IOMMU_OPTION_OP_SET => Ok(OptionOp::Set(val64)),
            op => Err(UapiError::UnknownOptionOp { op }),
        }
    }
}

/// The value of a boolean option being set: `val64` 0 or 1, anything else `EINVAL`
/// (`if (cmd->val64 == 0) ... else if (cmd->val64 == 1) ... else rc = -EINVAL;`). Linux checks
/// it last: after `CAP_SYS_RESOURCE` (`EPERM`) and an empty object table (`EBUSY`) for
/// `RLIMIT_MODE`, after the IOAS lookup for `HUGE_PAGES`.
pub fn option_bool(val64: u64) -> Result<bool, UapiError> {
    match val64 {
        0 => Ok(false),
        1 => Ok(true),
        val64 => Err(UapiError::OptionValue { val64 }),
    }
}

/// `IOMMU_OPTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IommuOptionCmd {
    /// `IOMMU_OPTION_RLIMIT_MODE`, global (`object_id` was 0, the op is known).
    RlimitMode(OptionOp),
    /// `IOMMU_OPTION_HUGE_PAGES` of an IOAS. Linux looks the IOAS up before it looks at the op,
    /// so the op stays raw here: [`IommuOptionCmd::huge_pages_op`] checks it.
    HugePages {
        /// The IOAS (`object_id`).
        ioas_id: u32,
        /// `op`, unchecked.
        op: u16,
        /// `val64`.
        val64: u64,
    },
}

impl IommuOptionCmd {
    /// Decodes `struct iommu_option` (`iommufd_option()`, then `iommufd_option_rlimit_mode()`
    /// up to its first state-dependent check).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuOption = read_cmd(bytes)?;
        // `if (cmd->__reserved) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        match cmd.option_id {
            IOMMU_OPTION_RLIMIT_MODE => {
                // iommufd_option_rlimit_mode(): `if (cmd->object_id) return -EOPNOTSUPP;`
                if cmd.object_id != 0 {
                    return Err(UapiError::OptionObject {
                        option_id: cmd.option_id,
                        object_id: cmd.object_id,
                    });
                }
                Ok(IommuOptionCmd::RlimitMode(OptionOp::from_raw(cmd.op, cmd.val64)?))
            }
            IOMMU_OPTION_HUGE_PAGES => Ok(IommuOptionCmd::HugePages {
                ioas_id: cmd.object_id,
                op: cmd.op,
                val64: cmd.val64,
            }),
            // `default: return -EOPNOTSUPP;`
            option_id => Err(UapiError::UnknownOption { option_id }),
        }
    }

    /// For `HugePages`, the op check of `iommufd_ioas_option_huge_pages()`, to run after the IOAS
    /// lookup; for `RlimitMode`, the op decoding already checked.
    pub fn huge_pages_op(&self) -> Result<OptionOp, UapiError> {
        match *self {
            IommuOptionCmd::RlimitMode(op) => Ok(op),
            IommuOptionCmd::HugePages { op, val64, .. } => OptionOp::from_raw(op, val64),
        }
    }

    /// Writes `val64` back: Linux copies only that field (`copy_to_user(&((struct iommu_option
    /// __user *)ucmd->ubuffer)->val64, &cmd->val64, sizeof(cmd->val64))`), after a get or a set.
    pub fn encode_reply(bytes: &mut [u8], val64: u64) -> Result<(), UapiError> {
        // The decoder checked `size >= offsetofend(struct iommu_option, val64)`: the field is
        // inside the caller's struct whatever size it declares.
        declared_size(bytes)?;
        let at = std::mem::offset_of!(IommuOption, val64);
        let have = bytes.len();
        let end = at + size_of::<u64>();
        let field = bytes.get_mut(at..end).ok_or(AbiError::Fault {
            len: have,
            needed: end,
        })?;
        field.copy_from_slice(&val64.to_ne_bytes());
        Ok(())
    }
}

/// `IOMMU_VFIO_IOAS`: get, set or clear the IOAS the VFIO compatibility layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfioIoasCmd {
    /// `IOMMU_VFIO_IOAS_GET`: report the compat IOAS (`ENODEV` if none is the handler's).
    Get,
    /// `IOMMU_VFIO_IOAS_SET`: make `ioas_id` the compat IOAS.
    Set {
        /// The IOAS.
        ioas_id: u32,
    },
    /// `IOMMU_VFIO_IOAS_CLEAR`: no compat IOAS.
    Clear,
}

impl VfioIoasCmd {
    /// Decodes `struct iommu_vfio_ioas` (`iommufd_vfio_ioas()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuVfioIoas = read_cmd(bytes)?;
        // `if (cmd->__reserved) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        match cmd.op {
            IOMMU_VFIO_IOAS_GET => Ok(VfioIoasCmd::Get),
            IOMMU_VFIO_IOAS_SET => Ok(VfioIoasCmd::Set { ioas_id: cmd.ioas_id }),
            IOMMU_VFIO_IOAS_CLEAR => Ok(VfioIoasCmd::Clear),
            // `default: return -EOPNOTSUPP;`
            op => Err(UapiError::UnknownVfioIoasOp { op }),
        }
    }

    /// Writes `ioas_id` back after a get (`cmd->ioas_id = ioas->obj.id;
    /// iommufd_ucmd_respond()`); set and clear answer nothing.
    pub fn encode_reply(bytes: &mut [u8], ioas_id: ObjectId) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuVfioIoas| cmd.ioas_id = ioas_id.raw())
    }
}
