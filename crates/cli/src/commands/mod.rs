//! One module per subcommand, and the error they share.

pub mod bench;
pub mod run;
pub mod serve;

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Writing the output failed (e.g. a closed pipe).
    #[error("could not write the output")]
    Output(#[source] std::io::Error),
    /// `--filter` matched no benchmark row.
    #[error("no benchmark row name contains {filter:?}")]
    NoRowMatches {
        /// The filter given.
        filter: String,
    },
    /// `uvfio serve` could not start or failed.
    #[error("serve: {0}")]
    Serve(String),
    /// A benchmark row could not be encoded.
    #[error("benchmark")]
    Bench(#[source] uvfio_bench::BenchError),
}

/// `e` and its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
