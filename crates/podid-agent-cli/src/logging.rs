//! Logging to stderr, for both binaries: human-readable on a terminal, JSON lines otherwise,
//! unless `--log-format` (or the command's own default) says which.
//!
//! The level comes from `-v/--verbosity` (or `PODID_VERBOSITY`), else `RUST_LOG`, else the
//! command's default. Nothing here ever sees a secret: commands log ids and names only.

use std::io::IsTerminal as _;

use clap::{Args, ValueEnum};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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
///
/// `RUST_LOG` takes `level` and `target=level` directives, comma-separated (e.g.
/// `warn,podid_agent=debug`): `tracing-subscriber`'s `Targets`, not `EnvFilter`, whose span and
/// field filters need the `regex` crates (180 KB of code resident on every node for a feature
/// nobody uses on an agent).
pub fn init(
    global: &GlobalArgs,
    default: Verbosity,
    default_format: Option<LogFormat>,
) -> Result<(), String> {
    let filter = match (global.verbosity, std::env::var("RUST_LOG")) {
        (Some(v), _) => level_targets(v),
        (None, Ok(spec)) if !spec.trim().is_empty() => spec
            .parse::<Targets>()
            .map_err(|e| format!("invalid RUST_LOG {spec:?}: {e}"))?,
        (None, _) => level_targets(default),
    };
    let format = global
        .log_format
        .or(default_format)
        .unwrap_or_else(|| format_for(std::io::stderr().is_terminal()));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Human => layer.with_filter(filter).boxed(),
    };
    // A second init (never in the binary) is harmless; ignore it rather than fail.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

fn level_targets(v: Verbosity) -> Targets {
    let level = match v {
        Verbosity::Error => tracing::Level::ERROR,
        Verbosity::Warn => tracing::Level::WARN,
        Verbosity::Info => tracing::Level::INFO,
        Verbosity::Debug => tracing::Level::DEBUG,
        Verbosity::Trace => tracing::Level::TRACE,
    };
    Targets::new().with_default(level)
}
