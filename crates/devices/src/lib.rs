//! Emulated devices of uvfio: what sits behind a VFIO device file and does DMA through the IOMMU.
//!
//! [`edu`] is QEMU's teaching device (QEMU `docs/specs/edu.rst`): identification, liveness,
//! factorial on a worker, interrupt raise / acknowledge over INTx or MSI, and a DMA engine copying
//! between RAM and its 4 KiB buffer. Later issues add virtio-pci devices and a PRI/PASID-capable
//! DMA engine.
//!
//! A device sees the rest of the machine through two small traits: [`DmaSource`], the port its DMA
//! goes through now (the IOMMU domain its driver attached it to, a blocked one while it has none,
//! an identity one in no-IOMMU mode) and any remote memory a vfio-user client keeps to itself
//! ([`dma`]), and [`EduBus`], its PCI function's interrupt and
//! bus-master state. The host implements both; tests implement them over a domain of their own.
//!
//! [`VfioPci`] serves any such PCI device through VFIO the way Linux's vfio-pci serves a physical
//! one (regions, IRQ indexes, reset); [`edu_vfio`] builds the edu device that way.
//!
//! Why hand-written: these devices are the reference behaviour being emulated (QEMU's, in C);
//! there is no Rust crate of them to reuse.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod dma;
pub mod edu;
pub mod edu_pci;
pub mod vfio_pci;

pub use edu::Edu;
pub use edu_pci::{EDU_DEVICE, EDU_VENDOR, EduPci, edu_function, edu_vfio};
pub use vfio_pci::{PciDevice, VfioPci};

pub use dma::{DmaError, DmaSource, Piece, RemoteDma, Route, read_split, split_transfer, write_split};

/// What a device needs of its PCI function to raise interrupts and issue DMA.
pub trait EduBus: Send + Sync + std::fmt::Debug {
    /// `PCI_COMMAND_MASTER`: the device may issue memory transactions (DMA, MSI).
    fn bus_master(&self) -> bool;
    /// MSI is enabled in the function's MSI capability.
    fn msi_enabled(&self) -> bool;
    /// Sends MSI vector `vector`.
    fn notify_msi(&self, vector: u32);
    /// Drives the INTx line.
    fn set_intx(&self, asserted: bool);
}
