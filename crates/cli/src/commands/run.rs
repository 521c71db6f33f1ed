//! `uvfio run`: the embedded default host (one edu device behind the software IOMMU) and the edu
//! example driver (`examples/edu_driver.rs`, the very file) in each mode — the type1v2 container,
//! the iommufd cdev, and the unsafe no-IOMMU mode on the same machine without an IOMMU — printing
//! what it did and the host's pins and locked memory before and after.

use super::CliError;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use uvfio_driver::{Device, HostBackend, Mode};
use uvfio_host::{EDU_BDF, Host, HostOptions, embedded_host};

#[path = "../../../../examples/edu_driver.rs"]
#[allow(dead_code)]
mod edu_driver;

/// `uvfio run` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only this mode: `type1v2`, `cdev` or `noiommu`.
    #[arg(long, value_parser = ["type1v2", "cdev", "noiommu"])]
    pub mode: Option<String>,
}

/// One mode's run.
struct ModeRun {
    name: &'static str,
    how: &'static str,
    mode: Mode,
    options: HostOptions,
    msi: bool,
}

const MODES: [ModeRun; 3] = [
    ModeRun {
        name: "type1v2",
        how: "/dev/vfio/vfio + /dev/vfio/0, VFIO_TYPE1v2_IOMMU",
        mode: Mode::Type1v2,
        options: HostOptions {
            iommu: true,
            unsafe_noiommu: false,
        },
        msi: false,
    },
    ModeRun {
        name: "cdev",
        how: "/dev/iommu + /dev/vfio/devices/vfio0, IOAS",
        mode: Mode::IommufdCdev,
        options: HostOptions {
            iommu: true,
            unsafe_noiommu: false,
        },
        msi: true,
    },
    ModeRun {
        name: "noiommu",
        how: "no IOMMU, unsafe opt-in: /dev/vfio/noiommu-0",
        mode: Mode::NoIommu,
        options: HostOptions {
            iommu: false,
            unsafe_noiommu: true,
        },
        msi: false,
    },
];

/// Pins and locked memory of a host, in 4 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    host_pinned: u64,
    locked_vm: u64,
    rlimit_user: u64,
}

fn held(host: &Host) -> Held {
    Held {
        host_pinned: host.memory().account().locked_pages,
        locked_vm: host.accounts().mm.locked_pages(),
        rlimit_user: host.accounts().user.locked_pages(),
    }
}

/// Runs the modes and prints what each did; fails if a mode failed or left anything behind.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    let w = CliError::Output;
    writeln!(
        out,
        "uvfio run: the embedded host (one edu device, 1234:11e8, at {EDU_BDF}) driven by examples/edu_driver.rs\n"
    )
    .map_err(w)?;
    let mut failures = 0;
    for m in MODES
        .iter()
        .filter(|m| args.mode.as_deref().is_none_or(|only| only == m.name))
    {
        writeln!(out, "{}: {}", m.name, m.how).map_err(w)?;
        match run_mode(m) {
            Ok(lines) => {
                for (what, text) in lines {
                    writeln!(out, "  {what:<14} {text}").map_err(w)?;
                }
            }
            Err(e) => {
                failures += 1;
                writeln!(out, "  FAILED: {}", super::error_chain(&*e)).map_err(w)?;
            }
        }
        writeln!(out).map_err(w)?;
    }
    writeln!(
        out,
        "pinned = host pages pinned / mm->locked_vm pages / user RLIMIT_MEMLOCK pages, before → while the driver ran → after it closed the device"
    )
    .map_err(w)?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_mode(m: &ModeRun) -> Result<Vec<(&'static str, String)>, Box<dyn std::error::Error>> {
    let host = Arc::new(embedded_host(m.options).map_err(|e| format!("starting the host: {e}"))?);
    let before = held(&host);
    let device = Device::new(Arc::new(HostBackend::open(Arc::clone(&host), EDU_BDF, m.mode)?))?;
    let mut report = edu_driver::drive(&device, m.msi, m.mode != Mode::NoIommu)?;
    let during = held(&host);
    let taint = (host.tainted(), host.taint().noiommu_opens());
    if let Some(buffer) = report.buffer.take() {
        buffer.free()?;
    }
    drop(device);
    let after = held(&host);
    if after != before {
        return Err(format!("pins or locked memory not back to baseline: {before:?} → {after:?}").into());
    }
    if host.open_files() != 0 {
        return Err("files left open".into());
    }
    if !report.alive || report.factorial != 3_628_800 || report.dma_verified == 0 {
        return Err(format!("the device misbehaved: {report:?}").into());
    }
    let bad = match (m.mode, report.fault) {
        (Mode::NoIommu, _) => "not tried: without an IOMMU nothing would stop it".to_owned(),
        (_, Some((iova, write))) if report.fault_wrote_nothing => format!(
            "{} to IOVA {:#x} (never mapped) faulted in the IOMMU; nothing written",
            if write { "write" } else { "read" },
            iova.raw()
        ),
        (_, fault) => return Err(format!("the bad DMA was not caught cleanly: {fault:?}").into()),
    };
    let addr = match m.mode {
        Mode::NoIommu => format!(
            "host physical address {:#x} (from /proc/self/pagemap)",
            report.dma_addr
        ),
        _ => format!("IOVA {:#x}", report.dma_addr),
    };
    let pins = |h: Held| format!("{}/{}/{}", h.host_pinned, h.locked_vm, h.rlimit_user);
    Ok(vec![
        (
            "identification",
            format!(
                "{:#010x}, liveness {}",
                report.id,
                if report.alive { "ok" } else { "FAILED" }
            ),
        ),
        (
            "factorial",
            format!("10! = {}, announced by {}", report.factorial, report.irq_kind),
        ),
        (
            "DMA",
            format!(
                "{} B RAM → edu → RAM verified, buffer at {addr}",
                report.dma_verified
            ),
        ),
        ("bad DMA", bad),
        (
            "interrupts",
            format!("{} received ({})", report.interrupts, report.irq_kind),
        ),
        (
            "pinned",
            format!("{} → {} → {}", pins(before), pins(during), pins(after)),
        ),
        (
            "taint",
            match taint {
                (0, _) => "none".to_owned(),
                (mask, opens) => format!(
                    "/proc/sys/kernel/tainted = {mask} (TAINT_USER); {opens} no-IOMMU device open recorded"
                ),
            },
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_runs_the_example_driver_and_leaves_nothing_behind() {
        for m in &MODES {
            let lines = run_mode(m).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k} {v}")).collect();
            assert!(text.iter().any(|l| l.contains("10! = 3628800")), "{text:?}");
            assert!(
                text.iter().any(|l| l.contains("1024 B RAM → edu → RAM verified")),
                "{text:?}"
            );
            let bad = text.iter().find(|l| l.starts_with("bad DMA")).unwrap();
            if m.mode == Mode::NoIommu {
                assert!(bad.contains("not tried"), "{bad}");
                assert!(text.iter().any(|l| l.contains("tainted = 64")), "{text:?}");
            } else {
                assert!(bad.contains("faulted in the IOMMU; nothing written"), "{bad}");
            }
        }
    }
}
