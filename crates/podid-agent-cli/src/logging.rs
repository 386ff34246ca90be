//! Logging to stderr, for both binaries: human-readable on a terminal, JSON lines otherwise,
//! unless `--log-format` (or the command's own default) says which.
//!
//! The level comes from `-v/--verbosity` (or `PODID_VERBOSITY`), else `RUST_LOG`, else the
//! command's default. Nothing here ever sees a secret: commands log ids and names only.

use std::io::IsTerminal as _;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Logging flags, accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format (default: human on a terminal, else json; the agent: json).
    #[arg(long, global = true, env = "PODID_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log level (else RUST_LOG, else info for servers and warn for client commands).
    #[arg(short = 'v', long, global = true, env = "PODID_VERBOSITY", value_enum)]
    pub verbosity: Option<Verbosity>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (what log collectors parse).
    Json,
    /// `tracing`'s text format, for people.
    Human,
}

/// The least severe level written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Verbosity {
    /// Only what an operator must act on.
    Error,
    /// Degraded service.
    Warn,
    /// Lifecycle: start, listen addresses, shutdown.
    Info,
    /// Per-request decisions.
    Debug,
    /// Wire detail (never secrets).
    Trace,
}

/// The format used when neither `--log-format` nor the command chooses: human when stderr is
/// a terminal, JSON otherwise.
pub fn format_for(stderr_is_terminal: bool) -> LogFormat {
    if stderr_is_terminal {
        LogFormat::Human
    } else {
        LogFormat::Json
    }
}

/// Installs the global subscriber. Fails only on an unparsable `RUST_LOG`.
pub fn init(
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
    let format = global
        .log_format
        .or(default_format)
        .unwrap_or_else(|| format_for(std::io::stderr().is_terminal()));
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
