//! HW page tables and hardware info: `IOMMU_HWPT_ALLOC` (`drivers/iommu/iommufd/hw_pagetable.c`)
//! and `IOMMU_GET_HW_INFO` (`drivers/iommu/iommufd/device.c`).

use std::num::NonZeroU32;

use bitflags::bitflags;
use uvfio_abi::check_reserved_zero;
use uvfio_abi::iommufd::{
    IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID,
    IommuHwInfo, IommuHwptAlloc,
};

use super::{UapiError, UserPtr, read_cmd, respond};
use crate::object::ObjectId;

bitflags! {
    /// `enum iommufd_hwpt_alloc_flags`. Unknown bits are kept: Linux refuses them only after it
    /// has looked the device and the parent up ([`HwptAlloc::check_paging_flags`],
    /// [`HwptAlloc::check_nested_flags`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HwptAllocFlags: u32 {
        /// `IOMMU_HWPT_ALLOC_NEST_PARENT`: the HWPT may serve as a nesting parent.
        const NEST_PARENT = IOMMU_HWPT_ALLOC_NEST_PARENT;
        /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`: dirty tracking is enforced on attach.
        const DIRTY_TRACKING = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
        /// `IOMMU_HWPT_FAULT_ID_VALID`: `fault_id` names a fault queue.
        const FAULT_ID_VALID = IOMMU_HWPT_FAULT_ID_VALID;
        /// `IOMMU_HWPT_ALLOC_PASID`: the domain may be attached to PASIDs.
        const PASID = IOMMU_HWPT_ALLOC_PASID;
    }
}

/// The driver-specific data of an `IOMMU_HWPT_ALLOC` (`struct iommu_user_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwptData {
    /// `data_type`, never `IOMMU_HWPT_DATA_NONE`.
    pub data_type: u32,
    /// The caller's buffer (`data_uptr`), for the host to read `len` bytes from.
    pub uptr: UserPtr,
    /// `data_len`.
    pub len: NonZeroU32,
}

/// `IOMMU_HWPT_ALLOC`: a paging HWPT over an IOAS, or a nested one over a paging HWPT or vIOMMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwptAlloc {
    /// The flags as given, unknown bits included (see [`HwptAllocFlags`]).
    pub flags: HwptAllocFlags,
    /// The device the HWPT is for.
    pub dev_id: u32,
    /// The IOAS, paging HWPT or vIOMMU to build on.
    pub pt_id: u32,
    /// The driver data: `Some` iff `data_type != IOMMU_HWPT_DATA_NONE` (decoding makes sure a
    /// type comes with a length and a length with a type).
    pub data: Option<HwptData>,
    /// The fault queue: `Some` iff `IOMMU_HWPT_FAULT_ID_VALID`.
    pub fault_id: Option<u32>,
}

impl HwptAlloc {
    /// Decodes `struct iommu_hwpt_alloc` (`iommufd_hwpt_alloc()`). Linux does not look at
    /// `__reserved2`; neither does this.
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuHwptAlloc = read_cmd(bytes)?;
        // `if (cmd->__reserved) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        // `if ((cmd->data_type == IOMMU_HWPT_DATA_NONE && cmd->data_len) ||
        //      (cmd->data_type != IOMMU_HWPT_DATA_NONE && !cmd->data_len)) return -EINVAL;`
        let data = match (cmd.data_type, NonZeroU32::new(cmd.data_len)) {
            (IOMMU_HWPT_DATA_NONE, None) => None,
            (data_type, Some(len)) if data_type != IOMMU_HWPT_DATA_NONE => Some(HwptData {
                data_type,
                uptr: UserPtr(cmd.data_uptr),
                len,
            }),
            _ => {
                return Err(UapiError::HwptDataMismatch {
                    data_type: cmd.data_type,
                    data_len: cmd.data_len,
                });
            }
        };
        let flags = HwptAllocFlags::from_bits_retain(cmd.flags);
        Ok(HwptAlloc {
            flags,
            dev_id: cmd.dev_id,
            pt_id: cmd.pt_id,
            data,
            fault_id: flags
                .contains(HwptAllocFlags::FAULT_ID_VALID)
                .then_some(cmd.fault_id),
        })
    }

    /// The flag checks of `iommufd_hwpt_paging_alloc()` that do not depend on the device (run
    /// when `pt_id` is an IOAS): unknown bits, and a fault queue on a nesting parent, are
    /// `EOPNOTSUPP`. (Linux refuses any flag or data first if the driver lacks
    /// `domain_alloc_paging_flags`, and `DIRTY_TRACKING` if the device cannot track: both are
    /// the device model's to check.)
    pub fn check_paging_flags(&self) -> Result<(), UapiError> {
        let refuse = Err(UapiError::HwptUnsupported {
            flags: self.flags.bits(),
        });
        // `if (flags & ~valid_flags) return ERR_PTR(-EOPNOTSUPP);`
        if !HwptAllocFlags::all().contains(self.flags) {
            return refuse;
        }
        // `if ((flags & IOMMU_HWPT_FAULT_ID_VALID) && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT))
        //      return ERR_PTR(-EOPNOTSUPP);`
        if self
            .flags
            .contains(HwptAllocFlags::FAULT_ID_VALID | HwptAllocFlags::NEST_PARENT)
        {
            return refuse;
        }
        Ok(())
    }

    /// The first check of `iommufd_hwpt_nested_alloc()` (`pt_id` is a paging HWPT) and
    /// `iommufd_viommu_alloc_hwpt_nested()` (`pt_id` is a vIOMMU): only `FAULT_ID_VALID` and
    /// `PASID` are allowed, and there must be data (`EOPNOTSUPP`).
    pub fn check_nested_flags(&self) -> Result<(), UapiError> {
        // `if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) ||
        //      !user_data->len || ...) return ERR_PTR(-EOPNOTSUPP);`
        let allowed = HwptAllocFlags::FAULT_ID_VALID | HwptAllocFlags::PASID;
        if !allowed.contains(self.flags) || self.data.is_none() {
            return Err(UapiError::HwptUnsupported {
                flags: self.flags.bits(),
            });
        }
        Ok(())
    }

    /// Writes `out_hwpt_id` back (`cmd->out_hwpt_id = hwpt->obj.id;`).
    pub fn encode_reply(bytes: &mut [u8], out_hwpt_id: ObjectId) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuHwptAlloc| {
            cmd.out_hwpt_id = out_hwpt_id.raw()
        })
    }
}

bitflags! {
    /// The flags of `struct iommu_hw_info`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HwInfoFlags: u32 {
        /// `IOMMU_HW_INFO_FLAG_INPUT_TYPE`: `in_data_type` asks for a specific info type.
        const INPUT_TYPE = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
    }
}

/// `IOMMU_GET_HW_INFO`: the IOMMU type and capabilities behind a bound device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetHwInfo {
    /// The flags, known bits only.
    pub flags: HwInfoFlags,
    /// The bound device.
    pub dev_id: u32,
    /// Bytes of the caller's info buffer (`data_len` on input).
    pub data_len: u32,
    /// The caller's info buffer (`data_uptr`); the host copies `min(data_len, the driver's
    /// length)` bytes to it and zeroes the rest.
    pub data_uptr: UserPtr,
    /// The info type asked for (`in_data_type`): `IOMMU_HW_INFO_TYPE_DEFAULT` unless
    /// `INPUT_TYPE` is set ("Clear the type field since drivers don't support a random input").
    pub in_data_type: u32,
}

/// The out fields of `IOMMU_GET_HW_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HwInfoReply {
    /// The driver's info length (may exceed the caller's `data_len`).
    pub data_len: u32,
    /// `enum iommu_hw_info_type` of the data.
    pub out_data_type: u32,
    /// Width of the device's PASIDs, 0 without PASID.
    pub out_max_pasid_log2: u8,
    /// `enum iommufd_hw_capabilities` bits.
    pub out_capabilities: u64,
}

impl GetHwInfo {
    /// Decodes `struct iommu_hw_info` (`iommufd_get_hw_info()`).
    pub fn decode(bytes: &[u8]) -> Result<Self, UapiError> {
        let cmd: IommuHwInfo = read_cmd(bytes)?;
        // `if (cmd->flags & ~SUPPORTED_FLAGS) return -EOPNOTSUPP;`
        let flags = HwInfoFlags::from_bits(cmd.flags).ok_or(UapiError::UnsupportedFlags {
            cmd: "get_hw_info",
            flags: cmd.flags & !HwInfoFlags::all().bits(),
        })?;
        // `if (cmd->__reserved[0] || cmd->__reserved[1] || cmd->__reserved[2]) return -EOPNOTSUPP;`
        check_reserved_zero("__reserved", &cmd.reserved)?;
        // `if (!(cmd->flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE))
        //      cmd->in_data_type = IOMMU_HW_INFO_TYPE_DEFAULT;`
        let in_data_type = if flags.contains(HwInfoFlags::INPUT_TYPE) {
            cmd.data_type
        } else {
            IOMMU_HW_INFO_TYPE_DEFAULT
        };
        Ok(GetHwInfo {
            flags,
            dev_id: cmd.dev_id,
            data_len: cmd.data_len,
            data_uptr: UserPtr(cmd.data_uptr),
            in_data_type,
        })
    }

    /// Writes the out fields back (`iommufd_ucmd_respond()`: only those within the caller's
    /// `size`; `out_capabilities` is past the minimum size).
    pub fn encode_reply(bytes: &mut [u8], reply: HwInfoReply) -> Result<(), UapiError> {
        respond(bytes, |cmd: &mut IommuHwInfo| {
            cmd.data_len = reply.data_len;
            cmd.data_type = reply.out_data_type;
            cmd.out_max_pasid_log2 = reply.out_max_pasid_log2;
            cmd.out_capabilities = reply.out_capabilities;
        })
    }
}
