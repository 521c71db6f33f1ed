//! [`PciFunctionBuilder`]: declares a function's header, BARs and capabilities, validates them
//! together and lays out the config space.

use crate::bar::{BarConfig, BarError, Bars};
use crate::cap::msi::MsiConfig;
use crate::cap::msix::MsixConfig;
use crate::cap::pcie::PcieConfig;
use crate::cap::pm::PmConfig;
use crate::cap::vendor::VendorConfig;
use crate::cap::{self, CapError, Capability};
use crate::config::ConfigSpace;
use crate::function::{Layout, PciFunction};
use crate::header::{self, HeaderConfig};

/// A function the builder refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The BAR layout is invalid.
    #[error("invalid BAR layout")]
    Bars(#[source] BarError),
    /// The capability list is invalid.
    #[error("invalid capability list")]
    Capabilities(#[source] CapError),
}

/// Declares a function. Nothing is validated until [`build`](Self::build), so declarations may
/// come in any order (an MSI-X capability before the BAR holding its table, say). Capabilities are
/// placed in the order declared.
#[derive(Debug, Clone)]
pub struct PciFunctionBuilder {
    header: HeaderConfig,
    bars: Vec<(u8, BarConfig)>,
    rom: Option<u32>,
    caps: Vec<Capability>,
}

impl PciFunctionBuilder {
    /// A function with `header` and nothing else: no BARs, no ROM, no capabilities.
    pub fn new(header: HeaderConfig) -> Self {
        Self {
            header,
            bars: Vec::new(),
            rom: None,
            caps: Vec::new(),
        }
    }

    /// Declares BAR `index` (for a 64-bit BAR, the lower of its two slots).
    pub fn bar(mut self, index: u8, bar: BarConfig) -> Self {
        self.bars.push((index, bar));
        self
    }

    /// Declares an expansion ROM BAR of `size` bytes (a power of two, 2 KiB ..= 16 MiB).
    pub fn rom(mut self, size: u32) -> Self {
        self.rom = Some(size);
        self
    }

    /// Appends a capability to the list.
    pub fn capability(mut self, cap: Capability) -> Self {
        self.caps.push(cap);
        self
    }

    /// Appends a Power Management capability.
    pub fn power_management(self, cfg: PmConfig) -> Self {
        self.capability(Capability::PowerManagement(cfg))
    }

    /// Appends an MSI capability.
    pub fn msi(self, cfg: MsiConfig) -> Self {
        self.capability(Capability::Msi(cfg))
    }

    /// Appends an MSI-X capability (its table and PBA must lie in memory BARs declared here).
    pub fn msix(self, cfg: MsixConfig) -> Self {
        self.capability(Capability::MsiX(cfg))
    }

    /// Appends a PCI Express (endpoint) capability; this also hardwires the latency timer to 0.
    pub fn pcie(self, cfg: PcieConfig) -> Self {
        self.capability(Capability::PciExpress(cfg))
    }

    /// Appends a vendor-specific capability with read-only `data`.
    pub fn vendor(self, data: Vec<u8>) -> Self {
        self.capability(Capability::Vendor(VendorConfig { data }))
    }

    /// Validates the declarations and builds the function in its reset state.
    pub fn build(self) -> Result<PciFunction, BuildError> {
        let bars = Bars::new(&self.bars, self.rom).map_err(BuildError::Bars)?;
        let pcie = self.caps.iter().any(|c| matches!(c, Capability::PciExpress(_)));
        let mut cs = ConfigSpace::new();
        header::install(&mut cs, &self.header, pcie);
        bars.install(&mut cs);
        let caps = cap::place(&self.caps, &bars, &mut cs).map_err(BuildError::Capabilities)?;
        Ok(PciFunction::from_parts(
            Layout {
                header: self.header,
                bars,
                caps,
            },
            cs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarError;
    use crate::cap::msix::MsixError;
    use std::error::Error;

    #[test]
    fn errors_carry_their_cause() {
        let err = PciFunctionBuilder::new(HeaderConfig::default())
            .bar(7, BarConfig::io(4))
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::Bars(BarError::NoSuchBar { index: 7 }));
        assert!(err.source().is_some_and(|s| s.to_string().contains("BAR 7")));

        let msix = MsixConfig {
            table_size: 4,
            table_bar: 0,
            table_offset: 0,
            pba_bar: 0,
            pba_offset: 0x800,
        };
        let err = PciFunctionBuilder::new(HeaderConfig::default())
            .msix(msix)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            BuildError::Capabilities(CapError::Msix(MsixError::NotMemoryBar { bar: 0 }))
        );
        let mut chain = vec![err.to_string()];
        let mut cause = err.source();
        while let Some(e) = cause {
            chain.push(e.to_string());
            cause = e.source();
        }
        assert_eq!(chain.len(), 3, "{chain:?}");
    }

    #[test]
    fn declaration_order_does_not_matter_for_validation() {
        let msix = MsixConfig {
            table_size: 4,
            table_bar: 0,
            table_offset: 0,
            pba_bar: 0,
            pba_offset: 0x800,
        };
        let built = PciFunctionBuilder::new(HeaderConfig::default())
            .msix(msix)
            .bar(0, BarConfig::memory32(0x1000))
            .build();
        assert!(built.is_ok());
    }
}
