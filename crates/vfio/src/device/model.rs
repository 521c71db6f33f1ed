//! What an emulated device gives VFIO: [`VfioDeviceModel`], the part of Linux's vfio-pci that
//! depends on the device (`struct vfio_pci_core_device`'s view of its `pci_dev`: the BARs and
//! config space behind the regions, the interrupt capabilities behind the IRQ indexes, the
//! function reset), and [`IrqSink`], the way back for its interrupts.
//!
//! The VFIO layer ([`super::VfioDevice`]) does everything the uAPI decides — region offsets,
//! capability chains, bounds, the IRQ state machine of `vfio_pci_intrs.c`, eventfds — and asks the
//! model only what a device knows. A model sees accesses that lie wholly inside one of its regions
//! and refuses the ones it cannot serve (a size or alignment its registers do not take) with
//! [`ModelError`].

use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// An offset within one region of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionOffset(u64);

impl RegionOffset {
    /// The start of the region.
    pub const ZERO: RegionOffset = RegionOffset(0);

    /// The offset `raw`.
    pub const fn new(raw: u64) -> Self {
        RegionOffset(raw)
    }

    /// The offset as a plain number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + bytes`, or `None` past the end of the 64-bit space.
    pub const fn checked_add(self, bytes: u64) -> Option<Self> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(RegionOffset(v)),
            None => None,
        }
    }
}

impl std::fmt::Display for RegionOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// One mmap-able area of a region (`struct vfio_region_sparse_mmap_area`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseArea {
    /// "Offset of mmap'able area within region".
    pub offset: RegionOffset,
    /// "Size of mmap'able area".
    pub size: u64,
}

/// What a device says of one region (what `vfio_pci_ioctl_get_region_info()` reads from the
/// `pci_dev`: the BAR's length, whether it can be mmapped, whether it holds the MSI-X table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionDesc {
    /// "Region size (bytes)"; 0 for an unimplemented region (an absent BAR), which reports no
    /// flags and serves no access.
    pub size: u64,
    /// `VFIO_REGION_INFO_FLAG_READ | _WRITE | _MMAP` (`_CAPS` is the VFIO layer's).
    pub flags: u32,
    /// The areas that may be mmapped, reported as `VFIO_REGION_INFO_CAP_SPARSE_MMAP` ("the user
    /// should only mmap the offset ranges specified by the areas array"); empty: the whole
    /// region, when it has `MMAP`.
    pub sparse: Vec<SparseArea>,
    /// The region holds the MSI-X table and may be mmapped all the same
    /// (`VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`).
    pub msix_mappable: bool,
}

/// What a device hands out for an mmap of part of a region: a file and the range of it that backs
/// the part asked for. The caller maps `len` bytes of `fd` at `file_offset` (`MAP_SHARED`); the
/// host returns it to its caller, vfio-user sends the same fd over its socket.
#[derive(Debug)]
pub struct RegionMap {
    /// A duplicate of the file backing the range (a memfd), the caller's to close.
    pub fd: OwnedFd,
    /// Where the range starts in `fd`.
    pub file_offset: u64,
    /// The range's length (a whole number of pages).
    pub len: u64,
}

/// The interrupt mode the user enabled through `VFIO_DEVICE_SET_IRQS`, as vfio-pci sets it on the
/// physical function (`pci_intx()`, `pci_alloc_irq_vectors()`, `pci_free_irq_vectors()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IrqMode {
    /// No interrupts (`vdev->irq_type == VFIO_PCI_NUM_IRQS`).
    #[default]
    None,
    /// INTx (`VFIO_PCI_INTX_IRQ_INDEX`).
    Intx,
    /// MSI with this many vectors.
    Msi {
        /// Vectors enabled (`start + count` of the enabling call).
        vectors: u32,
    },
    /// MSI-X with this many vectors.
    Msix {
        /// Vectors enabled.
        vectors: u32,
    },
}

/// Where a device sends its interrupts: the VFIO layer's IRQ state, which turns them into eventfd
/// signals (or masks, or drops them) as `vfio_pci_intrs.c`'s handlers do.
pub trait IrqSink: Send + Sync {
    /// The device raises interrupt `vector` of IRQ index `index` (`VFIO_PCI_INTX_IRQ_INDEX` with
    /// vector 0, `VFIO_PCI_MSI_IRQ_INDEX` / `VFIO_PCI_MSIX_IRQ_INDEX` with a vector, or the ERR /
    /// REQ notifications). Safe to call from any thread, with the model's own locks held.
    fn trigger(&self, index: u32, vector: u32);
}

/// Why a device refused an access, an mmap or a reset.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An access the device's registers do not take: a size, an alignment, a read-only register
    /// (`EINVAL`).
    #[error("region {index}: {len}-byte access at {offset} refused: {reason}")]
    Access {
        /// The region.
        index: u32,
        /// Where the access starts.
        offset: RegionOffset,
        /// Its length.
        len: usize,
        /// Why.
        reason: &'static str,
    },
    /// A range the device cannot map (`EINVAL`).
    #[error("region {index}: {len} bytes at {offset} cannot be mapped")]
    NotMappable {
        /// The region.
        index: u32,
        /// Where the range starts.
        offset: RegionOffset,
        /// Its length.
        len: u64,
    },
    /// The function reset failed (`pci_try_reset_function()`'s errno).
    #[error("reset failed")]
    Reset(#[source] std::io::Error),
    /// An operating-system resource backing the device failed (its errno, else `EIO`).
    #[error("device backing")]
    Io(#[source] std::io::Error),
}

impl ModelError {
    /// The errno the failing syscall or ioctl returns.
    pub fn errno(&self) -> Errno {
        match self {
            ModelError::Access { .. } | ModelError::NotMappable { .. } => Errno::INVAL,
            ModelError::Reset(e) | ModelError::Io(e) => {
                e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error)
            }
        }
    }
}

/// An emulated device as VFIO serves it: what a vfio-pci adapter over a PCI function model
/// provides. Region indexes and IRQ indexes are vfio-pci's (`VFIO_PCI_BAR0_REGION_INDEX` ...
/// `VFIO_PCI_VGA_REGION_INDEX`, then device-specific ones; `VFIO_PCI_INTX_IRQ_INDEX` ...
/// `VFIO_PCI_REQ_IRQ_INDEX`).
pub trait VfioDeviceModel: Send + Sync + std::fmt::Debug {
    /// `VFIO_DEVICE_FLAGS_*` of `VFIO_DEVICE_GET_INFO`: `VFIO_DEVICE_FLAGS_PCI`, and
    /// `VFIO_DEVICE_FLAGS_RESET` when [`reset`](Self::reset) works (vfio-pci's `reset_works`).
    fn flags(&self) -> u32;

    /// The number of regions ("max region index + 1"): `VFIO_PCI_NUM_REGIONS` plus any
    /// device-specific ones.
    fn num_regions(&self) -> u32;

    /// Region `index` (below [`num_regions`](Self::num_regions)), or `None` for an index the
    /// device does not serve at all (vfio-pci's VGA index on a device without VGA: `EINVAL`). An
    /// absent BAR is `Some` with size 0.
    fn region(&self, index: u32) -> Option<RegionDesc>;

    /// Reads `buf.len()` bytes at `offset` of region `index`; the range lies within the region and
    /// the region has `VFIO_REGION_INFO_FLAG_READ`.
    fn read(&self, index: u32, offset: RegionOffset, buf: &mut [u8]) -> Result<(), ModelError>;

    /// Writes `data` at `offset` of region `index`; the range lies within the region and the
    /// region has `VFIO_REGION_INFO_FLAG_WRITE`.
    fn write(&self, index: u32, offset: RegionOffset, data: &[u8]) -> Result<(), ModelError>;

    /// The file backing `len` bytes at `offset` of region `index` (page-aligned, within the
    /// region's mmap-able areas, the region has `VFIO_REGION_INFO_FLAG_MMAP`).
    fn mmap(&self, index: u32, offset: RegionOffset, len: u64) -> Result<RegionMap, ModelError>;

    /// The IRQs of IRQ index `index` (`vfio_pci_get_irq_count()`): INTx 1 if the function has an
    /// interrupt pin, else 0; MSI and MSI-X their capabilities' vector counts; ERR 1 for a PCI
    /// Express function, else 0; REQ 1.
    fn irq_count(&self, index: u32) -> u32;

    /// Where the device sends its interrupts from now on (called once, when VFIO takes the
    /// device).
    fn set_irq_sink(&self, sink: Arc<dyn IrqSink>);

    /// The interrupt mode the user enabled (or `None` when disabled), as vfio-pci sets it on the
    /// function. Called with no VFIO lock the sink takes, so the model may raise interrupts from
    /// here.
    fn irq_mode(&self, mode: IrqMode);

    /// A function reset (`pci_try_reset_function()`): the device's state back to its power-on
    /// values. The interrupt mode is restored afterwards by a new
    /// [`irq_mode`](Self::irq_mode) call, as `pci_restore_state()` restores the MSI and INTx
    /// enables.
    fn reset(&self) -> Result<(), ModelError>;
}
