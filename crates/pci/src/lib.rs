//! The PCI function model of uvfio: what a device emulator and a VFIO layer need of one PCI
//! function.
//!
//! A [`PciFunction`] is built by [`PciFunction::builder`] from a [`HeaderConfig`], BARs
//! ([`BarConfig`]) and capabilities, and then holds:
//!
//! * a 4096-byte [`ConfigSpace`] in which every bit is RW, RW1C or RO (reserved bits read 0),
//!   per PCI Local Bus Spec 3.0 / PCI Express Base Spec and named as in Linux
//!   `include/uapi/linux/pci_regs.h` ([`regs`]);
//! * a type-0 header ([`header`]) and BARs 0–5 plus an optional expansion ROM ([`bar`]), sized the
//!   spec's way (write all-ones, read back the mask with the type bits);
//! * the conventional capability list ([`cap`]): Power Management, MSI, MSI-X, PCI Express,
//!   vendor-specific; the extended list at 0x100 is empty and has room for ATS/PRI/PASID;
//! * the MSI-X table and PBA as device memory the BAR handler forwards to;
//! * interrupt state — INTx with `PCI_COMMAND_INTX_DISABLE`, MSI and MSI-X with masking, pending
//!   bits and bus-master gating — delivered through an [`InterruptSink`];
//! * function-level [`reset`](PciFunction::reset), also reachable via `PCI_EXP_DEVCTL_BCR_FLR`.
//!
//! The side effects of config writes (MSI enable, FLR, power-state changes, INTx disable) run in
//! [`PciFunction::config_write`], so the VFIO layer forwards raw accesses and the device model
//! only calls `assert_intx` / `notify_msi` / `notify_msix` and reads the decoded state
//! ([`PciFunction::bar`], [`PciFunction::decodes_memory`], ...).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use uvfio_pci::regs::*;
//! use uvfio_pci::*;
//!
//! #[derive(Default)]
//! struct Sink(Mutex<Vec<MsiMessage>>);
//! impl InterruptSink for Sink {
//!     fn intx(&self, _asserted: bool) {}
//!     fn msi(&self, message: MsiMessage) {
//!         self.0.lock().unwrap().push(message);
//!     }
//! }
//!
//! let header = HeaderConfig { vendor_id: 0x1b36, device_id: 0x0010, ..HeaderConfig::default() };
//! let f = Arc::new(
//!     PciFunction::builder(header)
//!         .bar(0, BarConfig::memory64(0x4000))
//!         .msix(MsixConfig {
//!             table_size: 4,
//!             table_bar: 0,
//!             table_offset: 0x2000,
//!             pba_bar: 0,
//!             pba_offset: 0x3000,
//!         })
//!         .pcie(PcieConfig::default())
//!         .build()?,
//! );
//! let sink = Arc::new(Sink::default());
//! f.set_sink(sink.clone());
//!
//! // The VFIO layer forwards the driver's config accesses: size BAR 0, program it, enable it.
//! f.config_write(PCI_BASE_ADDRESS_0.into(), 4, 0xffff_ffff)?;
//! assert_eq!(f.config_read(PCI_BASE_ADDRESS_0.into(), 4)?, 0xffff_c004);
//! f.config_write(PCI_BASE_ADDRESS_0.into(), 4, 0xfebf_0000)?;
//! f.config_write(PCI_BASE_ADDRESS_1.into(), 4, 0)?;
//! f.config_write(PCI_COMMAND.into(), 2, (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER).into())?;
//! assert_eq!(f.bar(0).map(|b| b.address), Some(0xfebf_0000));
//!
//! // The device's BAR handler forwards MSI-X table accesses; the driver unmasks entry 0.
//! assert!(f.msix_bar_write(0, 0x2000, 8, 0xfee0_0000)?);
//! assert!(f.msix_bar_write(0, 0x2008, 8, 0x4021)?); // data 0x4021, vector control 0
//! let msix_cap = f.find_capability(PCI_CAP_ID_MSIX).unwrap_or(0);
//! f.config_write(u64::from(msix_cap) + u64::from(PCI_MSIX_FLAGS), 2, PCI_MSIX_FLAGS_ENABLE.into())?;
//!
//! // The device model signals vector 0.
//! assert_eq!(f.notify_msix(0)?, MessageOutcome::Sent);
//! assert_eq!(sink.0.lock().unwrap()[0].data, 0x4021);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Why hand-written: no maintained crate models a PCI function's register semantics for a device
//! emulator in this shape. rust-vmm's `vm-device` offers bus and interrupt traits but no PCI
//! configuration model; the PCI emulation of cloud-hypervisor (its `pci` crate) and of Kata's
//! Dragonball (`dbs-pci`) is tied to that VMM's bus, interrupt manager and resource allocation;
//! `pci-driver` is the driver side (it drives a real function through VFIO) and models none of a
//! device's behaviour.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bar;
mod builder;
pub mod cap;
pub mod config;
mod function;
pub mod header;
pub mod interrupt;
mod irq;
pub mod regs;
pub mod table;

pub use bar::{Bar, BarConfig, BarError, BarKind, RomBar};
pub use builder::{BuildError, PciFunctionBuilder};
pub use cap::msi::{MsiConfig, MsiError, MsiState};
pub use cap::msix::{MsixConfig, MsixError, MsixLocation, MsixState};
pub use cap::pcie::{LinkSpeed, PcieConfig, PcieError};
pub use cap::pm::{PmConfig, PowerState};
pub use cap::vendor::{VendorConfig, VendorError};
pub use cap::{CapError, Capability, CapabilityEntry};
pub use config::{CONFIG_SPACE_SIZE, ConfigError, ConfigSpace};
pub use function::PciFunction;
pub use header::{ClassCode, Command, HeaderConfig, InterruptPin, Status};
pub use interrupt::{Blocked, InterruptError, InterruptSink, MessageKind, MessageOutcome, MsiMessage};
pub use table::{MAX_TABLE_SIZE, MsixEntry, TableError};
