//! `uvfio`: Linux VFIO + IOMMU device assignment, built in user space.
//!
//! uvfio models the kernel's VFIO and iommufd objects, a software IOMMU with VT-d page tables and
//! an IOTLB, and emulated PCI devices whose every DMA that IOMMU checks, so user-space drivers run
//! and are measured with no IOMMU hardware and no root. This binary is its command line: one
//! module under `commands/` per subcommand.

mod commands;
mod table;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Linux VFIO + IOMMU device assignment, in user space.
///
/// uvfio models the kernel's VFIO and iommufd objects over a software IOMMU (VT-d page tables in
/// host memory, an IOTLB, per-device DMA ports that check every access) and emulated PCI devices,
/// so user-space drivers run and are measured with no IOMMU hardware and no root.
#[derive(Debug, Parser)]
#[command(name = "uvfio", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure this machine: each row times uvfio against a peer or a physical limit in the same
    /// run and reports the ratio and whether the target is met.
    Bench(commands::bench::Args),
    /// Start the embedded host (one edu device behind the software IOMMU) and run the edu example
    /// driver in each mode: type1v2 container, iommufd cdev, no-IOMMU.
    Run(commands::run::Args),
    /// Serve the embedded host's edu device to a VMM over vfio-user (QEMU `-device
    /// vfio-user-pci`), until SIGINT or SIGTERM.
    Serve(commands::serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Bench(args) => commands::bench::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uvfio: {}", commands::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_flags_parse() {
        let cli = Cli::try_parse_from(["uvfio", "bench", "--quick", "--json", "--filter", "dma"]).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench");
        };
        assert!(args.quick && args.json);
        assert_eq!(args.filter.as_deref(), Some("dma"));
        assert!(Cli::try_parse_from(["uvfio", "bench", "--bogus"]).is_err());
    }
}
