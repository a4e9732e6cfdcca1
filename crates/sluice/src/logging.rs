//! Process-wide tracing setup, done once at start-up.
//!
//! Human-readable output on a terminal, one JSON object per line with
//! `--log-format json`. The level comes from `--log-level`, else `RUST_LOG`,
//! else `info`.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Builds the filter: an explicit `--log-level` wins over `RUST_LOG`.
pub fn filter(level: Option<&str>) -> Result<EnvFilter> {
    match level {
        Some(spec) => EnvFilter::try_new(spec).with_context(|| {
            format!("invalid --log-level {spec:?} (try error, warn, info, debug or trace)")
        }),
        None => Ok(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// Installs the global subscriber. Logs go to stderr so that command output
/// on stdout (YAML, tables) stays clean.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<()> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_level_is_parsed() {
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("sluice=trace,kube=warn")).is_ok());
    }

    #[test]
    fn bad_level_names_the_flag() {
        let err = filter(Some("sluice=[")).unwrap_err().to_string();
        assert!(err.contains("--log-level"), "{err}");
    }
}
