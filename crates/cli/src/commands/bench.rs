//! `uvfio bench`: measure this machine. Every row runs uvfio and its peer or limit in the same run
//! (interleaved rounds, medians) and reports the ratio against the project's target.

use super::CliError;
use crate::table;
use std::io::Write;
use std::process::ExitCode;
use uvfio_bench::Options;

/// Options of `uvfio bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fewer, shorter rounds: finishes in well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// One JSON object per row and line on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only the rows whose name contains this string.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
}

/// Runs the benchmarks, printing progress on stderr and the result on stdout. Exits non-zero only
/// if a row could not be measured; a missed target is a result, not a failure.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let opts = Options {
        quick: args.quick,
        filter: args.filter.clone(),
    };
    if !uvfio_bench::all_specs().iter().any(|s| opts.selects(s.name)) {
        return Err(CliError::NoRowMatches {
            filter: args.filter.clone().unwrap_or_default(),
        });
    }
    let mut progress = |line: &str| eprintln!("{line}");
    let rows = uvfio_bench::run(&opts, &mut progress);
    let mut out = std::io::stdout().lock();
    if args.json {
        for row in &rows {
            let line = row.to_json().map_err(CliError::Bench)?;
            writeln!(out, "{line}").map_err(CliError::Output)?;
        }
    } else {
        table::print(&mut out, &rows).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    let failed = rows.iter().any(|r| r.outcome.is_err());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
