//! The device side of VFIO: what a device fd serves once access is granted — `GET_INFO`,
//! `GET_REGION_INFO` with its capabilities, region `read` / `write` / `mmap`, `GET_IRQ_INFO`,
//! `SET_IRQS` with eventfds, `RESET` — over an emulated device.
//!
//! Linux splits this between the core (`drivers/vfio/vfio_main.c`: one `struct vfio_device` per
//! device whatever path opened it, its `open_count`, the first-open / last-close calls into the
//! driver) and vfio-pci (`drivers/vfio/pci/vfio_pci_core.c`: the ioctls and the region
//! offsets; `vfio_pci_rdwr.c`: region access; `vfio_pci_intrs.c`: the interrupt state). Here:
//!
//! - [`model`]: [`VfioDeviceModel`], what the device provides (regions, their accesses, the
//!   backing of mmaps, IRQ counts, reset) and [`IrqSink`], where it raises interrupts;
//! - [`VfioDevice`] (this file): `struct vfio_device` + `struct vfio_pci_core_device` — the model,
//!   its IRQ state, the open count; one per device, shared by its group member and its cdev;
//! - `regions`: `vfio_pci_rw()` / `vfio_pci_core_mmap()` — fd offsets to regions, bounds;
//! - `irqs`: `vfio_pci_intrs.c` — INTx with automasking, MSI / MSI-X vectors, the ERR and REQ
//!   notifications, eventfds;
//! - `serve`: `vfio_pci_core_ioctl()` — the ioctls after decoding.
//!
//! A region's offset in the device fd is `index << VFIO_PCI_OFFSET_SHIFT` (40), as vfio-pci's
//! `VFIO_PCI_INDEX_TO_OFFSET()`: [`DeviceOffset`].

mod irqs;
pub mod model;
mod regions;
mod serve;

pub use model::{
    IrqMode, IrqSink, ModelError, RegionDesc, RegionMap, RegionOffset, SparseArea, VfioDeviceModel,
};

use crate::uapi::{DeviceLimits, UapiError};
use irqs::Irqs;
use parking_lot::Mutex;
use rustix::io::Errno;
use std::sync::Arc;
use uvfio_abi::vfio::{VFIO_DEVICE_FLAGS_RESET, VFIO_PCI_NUM_IRQS};

/// `VFIO_PCI_OFFSET_SHIFT`: the bit of a device fd offset where the region index starts.
pub const VFIO_PCI_OFFSET_SHIFT: u32 = 40;

/// `VFIO_PCI_OFFSET_MASK`: the bits of a device fd offset that are the offset within the region.
pub const VFIO_PCI_OFFSET_MASK: u64 = (1 << VFIO_PCI_OFFSET_SHIFT) - 1;

/// An offset in a device file, as `pread` / `pwrite` / `mmap` take it: the region index above
/// bit 40, the offset within the region below (`VFIO_PCI_OFFSET_TO_INDEX()`,
/// `VFIO_PCI_INDEX_TO_OFFSET()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceOffset(u64);

impl DeviceOffset {
    /// The file offset `raw`.
    pub const fn new(raw: u64) -> Self {
        DeviceOffset(raw)
    }

    /// The offset as a plain number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `VFIO_PCI_INDEX_TO_OFFSET(index) + offset`, or `None` if `offset` does not fit below
    /// bit 40.
    pub fn of_region(index: u32, offset: RegionOffset) -> Option<Self> {
        if offset.raw() > VFIO_PCI_OFFSET_MASK {
            return None;
        }
        Some(DeviceOffset(
            (u64::from(index) << VFIO_PCI_OFFSET_SHIFT) | offset.raw(),
        ))
    }

    /// `VFIO_PCI_OFFSET_TO_INDEX()`: the region index (at most 2^24 - 1).
    pub fn region_index(self) -> u32 {
        u32::try_from(self.0 >> VFIO_PCI_OFFSET_SHIFT).unwrap_or(u32::MAX)
    }

    /// `offset & VFIO_PCI_OFFSET_MASK`: the offset within the region.
    pub fn region_offset(self) -> RegionOffset {
        RegionOffset::new(self.0 & VFIO_PCI_OFFSET_MASK)
    }
}

/// Why a device request (ioctl, region access, mmap) failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The decoder refused the request or its argument, or the reply could not be written.
    #[error("bad request")]
    Uapi(#[from] UapiError),
    /// The device refused.
    #[error("the device refused")]
    Model(#[source] ModelError),
    /// A device file without a device model behind it has no regions (`EINVAL`, as for a driver
    /// without `read` / `write` / `mmap`).
    #[error("the device has no regions: {op} is not served")]
    Bare {
        /// `read`, `write` or `mmap`.
        op: &'static str,
    },
    /// A region index at or past the number of regions, or one the device does not serve
    /// (`vfio_pci_rw()`, `vfio_pci_core_mmap()`, VGA without VGA: `EINVAL`).
    #[error("no region {index}")]
    NoRegion {
        /// The index.
        index: u32,
    },
    /// A read of a region without `READ`, a write of one without `WRITE`, or an access to a
    /// region of size 0 (`EINVAL`).
    #[error("region {index} does not serve {op}")]
    NotAccessible {
        /// The region.
        index: u32,
        /// `read` or `write`.
        op: &'static str,
    },
    /// An access that starts at or runs past the end of its region (`EINVAL`).
    #[error("region {index}: {len} bytes at {offset} are past its {size} bytes")]
    OutOfRange {
        /// The region.
        index: u32,
        /// Where the access starts.
        offset: RegionOffset,
        /// Its length.
        len: u64,
        /// The region's size.
        size: u64,
    },
    /// An mmap of a region without `MMAP`, of a range not page-aligned, empty, past the region's
    /// (page-rounded) end, or outside its sparse mmap areas (`EINVAL`).
    #[error("region {index}: {len} bytes at {offset} cannot be mapped: {reason}")]
    NotMappable {
        /// The region.
        index: u32,
        /// Where the range starts.
        offset: RegionOffset,
        /// Its length.
        len: u64,
        /// Why.
        reason: &'static str,
    },
    /// `VFIO_DEVICE_RESET` on a device whose reset does not work (`if (!vdev->reset_works)
    /// return -EINVAL;`).
    #[error("the device cannot reset")]
    NoReset,
    /// `GET_IRQ_INFO` of an index the device lacks (vfio-pci: ERR on a function that is not PCI
    /// Express, `EINVAL`).
    #[error("the device has no IRQ index {index}")]
    NoIrqIndex {
        /// The index.
        index: u32,
    },
    /// A `SET_IRQS` the interrupt state refuses: another index is enabled, the index is not
    /// enabled, a sub-index range the handler does not take (`EINVAL`).
    #[error("set_irqs on index {index}: {reason}")]
    IrqState {
        /// The index.
        index: u32,
        /// Why.
        reason: &'static str,
    },
    /// A `SET_IRQS` no handler serves (`vfio_pci_set_irqs_ioctl()`'s `if (!func) return
    /// -ENOTTY;`, and the handlers' own "XXX implement me" `-ENOTTY`).
    #[error("set_irqs: no handler for index {index}: {what}")]
    NoIrqHandler {
        /// The index.
        index: u32,
        /// What is not served.
        what: &'static str,
    },
    /// MSI or MSI-X enabled with no vector (`pci_alloc_irq_vectors(pdev, 1, 0, ...)`:
    /// `-ERANGE`).
    #[error("set_irqs on index {index}: no vector to enable")]
    NoVectors {
        /// The index.
        index: u32,
    },
    /// An eventfd that names no open file (`eventfd_ctx_fdget()`: `EBADF`).
    #[error("fd {0} is not open")]
    BadFd(i32),
    /// An fd that is not an eventfd (`eventfd_ctx_fileget()`: `EINVAL`).
    #[error("fd {0} is not an eventfd")]
    NotAnEventfd(i32),
}

impl DeviceError {
    /// The errno the ioctl or syscall returns: the one place a device error becomes a number.
    pub fn errno(&self) -> Errno {
        match self {
            DeviceError::Uapi(e) => e.errno(),
            DeviceError::Model(e) => e.errno(),
            DeviceError::Bare { .. }
            | DeviceError::NoRegion { .. }
            | DeviceError::NotAccessible { .. }
            | DeviceError::OutOfRange { .. }
            | DeviceError::NotMappable { .. }
            | DeviceError::NoReset
            | DeviceError::NoIrqIndex { .. }
            | DeviceError::IrqState { .. }
            | DeviceError::NotAnEventfd(_) => Errno::INVAL,
            DeviceError::NoIrqHandler { .. } => Errno::NOTTY,
            DeviceError::NoVectors { .. } => Errno::RANGE,
            DeviceError::BadFd(_) => Errno::BADF,
        }
    }
}

/// One VFIO device over an emulated device model (Linux `struct vfio_device` with its
/// `struct vfio_pci_core_device`): the model, its interrupt state, and how many device files have
/// it open. The group member and the cdev of a device share one, so the device has one IRQ state
/// whichever path opened it.
#[derive(Debug)]
pub struct VfioDevice {
    model: Arc<dyn VfioDeviceModel>,
    /// The interrupt state; the model's [`IrqSink`].
    irqs: Arc<Irqs>,
    /// `vdev->igate`: serialises `SET_IRQS`, `RESET` and the last close, which call into the
    /// model (`irq_mode`, `reset`) without holding the lock the sink takes.
    igate: Mutex<()>,
    /// `device->open_count`.
    open_count: Mutex<usize>,
}

impl VfioDevice {
    /// VFIO takes `model` (`vfio_pci_core_register_device()`): its interrupts now go to this
    /// device's IRQ state.
    pub fn new(model: Arc<dyn VfioDeviceModel>) -> Arc<Self> {
        let irqs = Arc::new(Irqs::default());
        model.set_irq_sink(Arc::clone(&irqs) as Arc<dyn IrqSink>);
        Arc::new(VfioDevice {
            model,
            irqs,
            igate: Mutex::new(()),
            open_count: Mutex::new(0),
        })
    }

    /// The device model.
    pub fn model(&self) -> &Arc<dyn VfioDeviceModel> {
        &self.model
    }

    /// The interrupt mode enabled through `SET_IRQS` now.
    pub fn irq_mode(&self) -> IrqMode {
        self.irqs.mode()
    }

    /// How many device files have the device open (`device->open_count`).
    pub fn open_count(&self) -> usize {
        *self.open_count.lock()
    }

    /// Whether the model's reset works (`vdev->reset_works`).
    fn reset_works(&self) -> bool {
        self.model.flags() & VFIO_DEVICE_FLAGS_RESET != 0
    }

    /// `vfio_df_open()`: one more device file has the device open; the first open calls the
    /// driver's `open_device` (`vfio_pci_core_enable()`, which resets the function:
    /// `ret = pci_try_reset_function(pdev); ... vdev->reset_works = !ret;` — a failed reset does
    /// not fail the open). Dropping the [`DeviceOpen`] closes.
    pub fn open(self: &Arc<Self>) -> DeviceOpen {
        let mut count = self.open_count.lock();
        *count += 1;
        if *count == 1 && self.reset_works() {
            let _gate = self.igate.lock();
            // The outcome only decides `reset_works` in Linux; the model's flags decide it here.
            drop(self.model.reset());
        }
        DeviceOpen {
            device: Arc::clone(self),
        }
    }

    /// `vfio_df_device_last_close()` → `vfio_pci_core_close_device()`: `vfio_pci_core_disable()`
    /// disables the interrupts (`vfio_pci_set_irqs_ioctl(vdev, VFIO_IRQ_SET_DATA_NONE |
    /// VFIO_IRQ_SET_ACTION_TRIGGER, vdev->irq_type, 0, 0, NULL)`) and resets the function if its
    /// reset works; then the ERR and REQ eventfds are released.
    fn last_close(&self) {
        let _gate = self.igate.lock();
        if self.irqs.disable_all() {
            self.model.irq_mode(IrqMode::None);
        }
        if self.reset_works() {
            // A failed reset is only logged by Linux (`vdev->needs_reset` stays set).
            drop(self.model.reset());
        }
    }
}

impl DeviceLimits for VfioDevice {
    /// `VFIO_PCI_NUM_IRQS`.
    fn num_irq_indexes(&self) -> u32 {
        VFIO_PCI_NUM_IRQS
    }

    /// `vfio_pci_get_irq_count()`.
    fn irq_count(&self, index: u32) -> u32 {
        if index < VFIO_PCI_NUM_IRQS {
            self.model.irq_count(index)
        } else {
            0
        }
    }

    /// The devices here attach no PASID.
    fn pasid_capable(&self) -> bool {
        false
    }
}

/// A device file's hold on its device's open state: dropping the last one closes the device.
#[derive(Debug)]
pub struct DeviceOpen {
    device: Arc<VfioDevice>,
}

impl DeviceOpen {
    /// The device.
    pub fn device(&self) -> &Arc<VfioDevice> {
        &self.device
    }
}

impl Drop for DeviceOpen {
    /// `vfio_df_close()`: `if (!--device->open_count) vfio_df_device_last_close(df);`.
    fn drop(&mut self) {
        let mut count = self.device.open_count.lock();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.device.last_close();
        }
    }
}
