//! `VFIO_DEVICE_SET_IRQS`: the header, Linux's `vfio_set_irqs_validate_and_prepare()`
//! (`drivers/vfio/vfio_main.c`), and the data that follows the header.
//!
//! vfio-pci's handler (`vfio_pci_ioctl_set_irqs()`, `drivers/vfio/pci/vfio_pci_core.c`):
//!
//! ```c
//! if (copy_from_user(&hdr, arg, minsz)) return -EFAULT;
//! max = vfio_pci_get_irq_count(vdev, hdr.index);
//! ret = vfio_set_irqs_validate_and_prepare(&hdr, max, VFIO_PCI_NUM_IRQS, &data_size);
//! if (ret) return ret;
//! if (data_size) { data = memdup_user(&arg->data, data_size); ... }
//! ret = vfio_pci_set_irqs_ioctl(vdev, hdr.flags, hdr.index, hdr.start, hdr.count, data);
//! ```
//!
//! and `vfio_pci_set_irqs_ioctl()` (`vfio_pci_intrs.c`) picks a handler with
//! `switch (flags & VFIO_IRQ_SET_ACTION_TYPE_MASK)`, so anything but exactly one ACTION flag finds
//! none: `if (!func) return -ENOTTY;`. [`SetIrqs::decode`] applies all of that in this order; which
//! (index, action, data) triples a device serves is the device's business (also `ENOTTY`).

use uvfio_abi::vfio::{
    VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_TYPE_MASK,
    VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_IRQ_SET_DATA_TYPE_MASK, VfioIrqSet,
};
use uvfio_abi::{AbiError, check_min_size, read_prefix};

use super::{UapiError, copy_from_user};

/// `minsz = offsetofend(struct vfio_irq_set, count)`: where `data[]` starts.
pub const IRQ_SET_MINSZ: usize = size_of::<VfioIrqSet>();

/// Reads the header as vfio-pci does, `copy_from_user(&hdr, arg, minsz)` (`EFAULT` only: `argsz`
/// is checked by [`validate_and_prepare`]).
pub fn read_header(bytes: &[u8]) -> Result<VfioIrqSet, UapiError> {
    let head = bytes.get(..IRQ_SET_MINSZ).ok_or(AbiError::Fault {
        len: bytes.len(),
        needed: IRQ_SET_MINSZ,
    })?;
    Ok(read_prefix(head))
}

/// The kind of `data[]` a `VFIO_IRQ_SET_DATA_*` flag announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrqDataType {
    /// `VFIO_IRQ_SET_DATA_NONE`: "Data not present".
    None,
    /// `VFIO_IRQ_SET_DATA_BOOL`: one `u8` per sub-index.
    Bool,
    /// `VFIO_IRQ_SET_DATA_EVENTFD`: one `__s32` eventfd per sub-index.
    Eventfd,
}

impl IrqDataType {
    /// Bytes per sub-index.
    pub fn element_size(self) -> usize {
        match self {
            Self::None => 0,
            Self::Bool => size_of::<u8>(),
            Self::Eventfd => size_of::<i32>(),
        }
    }
}

/// What [`validate_and_prepare`] found: the data type and `*data_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// The data type of the one DATA flag.
    pub data_type: IrqDataType,
    /// `count * element_size`: the bytes of `data[]` to copy.
    pub data_size: usize,
}

/// Linux `vfio_set_irqs_validate_and_prepare(hdr, num_irqs, max_irq_type, &data_size)`, check for
/// check: `num_irqs` is the number of IRQs of `hdr.index` (the caller computes it before any
/// check, from an index that may be out of range), `max_irq_type` the number of indexes.
pub fn validate_and_prepare(
    hdr: &VfioIrqSet,
    num_irqs: u32,
    max_irq_type: u32,
) -> Result<Prepared, UapiError> {
    // minsz = offsetofend(struct vfio_irq_set, count);
    // if ((hdr->argsz < minsz) || (hdr->index >= max_irq_type) ||
    //     (hdr->count >= (U32_MAX - hdr->start)) ||
    //     (hdr->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
    //         return -EINVAL;
    check_min_size("vfio_irq_set", hdr.argsz, IRQ_SET_MINSZ)?;
    if hdr.index >= max_irq_type {
        return Err(UapiError::IrqIndex {
            index: hdr.index,
            max: max_irq_type,
        });
    }
    if hdr.count >= u32::MAX - hdr.start {
        return Err(UapiError::IrqCountOverflow {
            start: hdr.start,
            count: hdr.count,
        });
    }
    let known = VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if hdr.flags & !known != 0 {
        return Err(UapiError::UnknownFlags {
            cmd: "set_irqs",
            flags: hdr.flags & !known,
        });
    }
    // if (hdr->start >= num_irqs || hdr->start + hdr->count > num_irqs) return -EINVAL;
    // (start + count cannot wrap: count < U32_MAX - start)
    if hdr.start >= num_irqs || hdr.start + hdr.count > num_irqs {
        return Err(UapiError::IrqRange {
            start: hdr.start,
            count: hdr.count,
            num_irqs,
        });
    }
    // switch (hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    // case VFIO_IRQ_SET_DATA_NONE:    size = 0; break;
    // case VFIO_IRQ_SET_DATA_BOOL:    size = sizeof(uint8_t); break;
    // case VFIO_IRQ_SET_DATA_EVENTFD: size = sizeof(int32_t); break;
    // default: return -EINVAL;
    // }
    let data_type = match hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK {
        VFIO_IRQ_SET_DATA_NONE => IrqDataType::None,
        VFIO_IRQ_SET_DATA_BOOL => IrqDataType::Bool,
        VFIO_IRQ_SET_DATA_EVENTFD => IrqDataType::Eventfd,
        _ => return Err(UapiError::IrqDataType { flags: hdr.flags }),
    };
    let size = data_type.element_size();
    let data_size = hdr.count as usize * size;
    // if (size) {
    //         if (hdr->argsz - minsz < hdr->count * size) return -EINVAL;
    //         if (!data_size) return -EINVAL;      (vfio-pci always passes &data_size)
    //         *data_size = hdr->count * size;
    // }
    if size != 0 && (hdr.argsz as usize - IRQ_SET_MINSZ) < data_size {
        return Err(UapiError::ArgszTooSmall {
            cmd: "set_irqs",
            argsz: hdr.argsz,
            needed: (IRQ_SET_MINSZ + data_size) as u64,
        });
    }
    Ok(Prepared { data_type, data_size })
}

/// The action of a `VFIO_DEVICE_SET_IRQS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrqAction {
    /// `VFIO_IRQ_SET_ACTION_MASK`.
    Mask,
    /// `VFIO_IRQ_SET_ACTION_UNMASK`.
    Unmask,
    /// `VFIO_IRQ_SET_ACTION_TRIGGER`.
    Trigger,
}

impl IrqAction {
    /// The one ACTION flag of `flags`, or `None` for zero or several (no handler: `ENOTTY`).
    pub fn from_flags(flags: u32) -> Option<Self> {
        match flags & VFIO_IRQ_SET_ACTION_TYPE_MASK {
            VFIO_IRQ_SET_ACTION_MASK => Some(Self::Mask),
            VFIO_IRQ_SET_ACTION_UNMASK => Some(Self::Unmask),
            VFIO_IRQ_SET_ACTION_TRIGGER => Some(Self::Trigger),
            _ => None,
        }
    }
}

/// The `data[]` of a `VFIO_DEVICE_SET_IRQS`, one element per sub-index from `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqData {
    /// `DATA_NONE`: the action applies to every sub-index of the range; with `TRIGGER` and
    /// `count == 0`, "the index can be disabled as a whole".
    None,
    /// `DATA_BOOL`: one byte per sub-index; the action applies where it is non-zero.
    Bool(Vec<u8>),
    /// `DATA_EVENTFD`: one fd per sub-index; "A value of -1 can be used to either de-assign
    /// interrupts if already assigned or skip un-assigned interrupts."
    Eventfd(Vec<i32>),
}

/// A decoded `VFIO_DEVICE_SET_IRQS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetIrqs {
    /// The IRQ index, below the device's number of indexes.
    pub index: u32,
    /// The first sub-index.
    pub start: u32,
    /// The number of sub-indexes (`start + count` within the index's IRQs).
    pub count: u32,
    /// The one action.
    pub action: IrqAction,
    /// The data, `count` elements.
    pub data: IrqData,
}

impl SetIrqs {
    /// Decodes the caller's bytes as vfio-pci's `vfio_pci_ioctl_set_irqs()` does (see the module
    /// doc): `irq_count(index)` is `vfio_pci_get_irq_count()`, called with the caller's index
    /// before it is checked against `max_irq_type`.
    pub fn decode(
        bytes: &[u8],
        max_irq_type: u32,
        irq_count: impl FnOnce(u32) -> u32,
    ) -> Result<Self, UapiError> {
        let hdr = read_header(bytes)?;
        let max = irq_count(hdr.index);
        let prepared = validate_and_prepare(&hdr, max, max_irq_type)?;
        // if (data_size) { data = memdup_user(&arg->data, data_size); if (IS_ERR(data)) ...}
        let raw = copy_from_user(bytes, IRQ_SET_MINSZ, prepared.data_size)?;
        let data = match prepared.data_type {
            IrqDataType::None => IrqData::None,
            IrqDataType::Bool => IrqData::Bool(raw.to_vec()),
            IrqDataType::Eventfd => IrqData::Eventfd(
                raw.chunks_exact(size_of::<i32>())
                    .map(|c| i32::from_ne_bytes(<[u8; 4]>::try_from(c).unwrap_or_default()))
                    .collect(),
            ),
        };
        // vfio_pci_set_irqs_ioctl(): switch (flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) { ... }
        //                            if (!func) return -ENOTTY;
        let action = IrqAction::from_flags(hdr.flags).ok_or(UapiError::NoIrqHandler {
            index: hdr.index,
            flags: hdr.flags,
        })?;
        Ok(Self {
            index: hdr.index,
            start: hdr.start,
            count: hdr.count,
            action,
            data,
        })
    }
}
