//! Logging to stderr: human-readable on a terminal, JSON lines otherwise (the agent: always JSON
//! unless `--log-format` says otherwise).
//!
//! The level comes from `-v/--verbosity` (or `PODID_VERBOSITY`), else `RUST_LOG`, else the
//! command's default. Nothing here ever sees a secret: commands log ids and names only.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat, Verbosity};

/// Installs the global subscriber. Fails only on an unparsable `RUST_LOG`.
pub(crate) fn init(
    global: &GlobalArgs,
    default: Verbosity,
    default_format: Option<LogFormat>,
) -> Result<(), String> {
    let filter = match (global.verbosity, std::env::var("RUST_LOG")) {
        (Some(v), _) => EnvFilter::new(level_name(v)),
        (None, Ok(spec)) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| format!("invalid RUST_LOG {spec:?}: {e}"))?
        }
        (None, _) => EnvFilter::new(level_name(default)),
    };
    let format =
        global
            .log_format
            .or(default_format)
            .unwrap_or(if std::io::stderr().is_terminal() {
                LogFormat::Human
            } else {
                LogFormat::Json
            });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (never in the binary) is harmless; ignore it rather than fail.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
    Ok(())
}

fn level_name(v: Verbosity) -> &'static str {
    match v {
        Verbosity::Error => "error",
        Verbosity::Warn => "warn",
        Verbosity::Info => "info",
        Verbosity::Debug => "debug",
        Verbosity::Trace => "trace",
    }
}
