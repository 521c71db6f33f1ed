//! A tiny leveled logger to stderr: `uvfio-vfio-user: LEVEL: message`, one line each.
//!
//! The level comes from the server's options, else from the `UVFIO_LOG` environment variable
//! (`off`, `error`, `warn`, `info`, `debug`, `trace`; case-insensitive), else `warn`. Nothing a
//! client sends is logged verbatim beyond numbers (libvfio-user's rule: "No client-supplied
//! strings in the log for release build").

use std::fmt;
use std::io::Write;

/// The environment variable read for the level.
pub const LOG_ENV: &str = "UVFIO_LOG";

/// How much is logged: each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Nothing.
    Off,
    /// Failures of the server itself (a host call that should not fail, a socket error).
    Error,
    /// A client misbehaving: malformed messages, a connection closed mid-message.
    Warn,
    /// Connections and disconnections, negotiated capabilities.
    Info,
    /// Every command and its outcome.
    Debug,
    /// Message headers as received and sent.
    Trace,
}

impl Level {
    /// Parses a level name (`off`, `error`, `warn`, `info`, `debug`, `trace`).
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Level::Off,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }

    /// The level `UVFIO_LOG` names, or `warn` when it is unset or unknown.
    pub fn from_env() -> Level {
        std::env::var(LOG_ENV)
            .ok()
            .and_then(|v| Level::parse(&v))
            .unwrap_or(Level::Warn)
    }

    fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Writes lines of at most its level to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logger {
    level: Level,
}

impl Logger {
    /// A logger at `level`.
    pub fn new(level: Level) -> Self {
        Logger { level }
    }

    /// Its level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Whether a line at `level` is written.
    pub fn enabled(&self, level: Level) -> bool {
        level != Level::Off && level <= self.level
    }

    /// Writes one line at `level` (a write error on stderr is ignored: there is nowhere to
    /// report it).
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if self.enabled(level) {
            let line = format!("uvfio-vfio-user: {level}: {args}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// `log!(logger, Level::Info, "format", args...)`.
macro_rules! log {
    ($logger:expr, $level:expr, $($arg:tt)+) => {{
        let logger: &$crate::log::Logger = &$logger;
        if logger.enabled($level) {
            logger.log($level, format_args!($($arg)+));
        }
    }};
}
pub(crate) use log;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse(" warn "), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        let l = Logger::new(Level::Info);
        assert!(l.enabled(Level::Error) && l.enabled(Level::Info));
        assert!(!l.enabled(Level::Debug) && !l.enabled(Level::Off));
        assert!(!Logger::new(Level::Off).enabled(Level::Error));
    }
}
