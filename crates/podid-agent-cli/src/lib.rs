//! The node agent's command line: the `podid-agent` binary, and `podid agent` in the all-in-one
//! `podid` binary, from one flag definition.
//!
//! Owns: the agent's flags ([`AgentCommand`], the reference agent's `server` flags and
//! `initialize`), turning them into a validated [`podid_agent::AgentConfig`] before any port is
//! bound, serving until SIGTERM/SIGINT, and the agent's async runtime ([`agent_runtime`]). Also
//! the command-line conventions every podid binary shares, so that both binaries behave alike:
//! log flags and setup ([`logging`]), usage errors and exit codes ([`exit`]), duration values
//! ([`parse_duration`]), the shutdown signal and private directories ([`os`]).
//!
//! Does not own: agent behaviour (`podid-agent`), or anything of the control plane. This crate is
//! deliberately a separate package rather than a `[[bin]]` of `podid-agent`: the library keeps
//! no flags or env (STYLE rule 12), and this package's dependency tree is exactly the
//! `podid-agent` binary's — no `podid-server`, `podid-iam`, `podid-store` or SQLite — which
//! `cargo tree -e normal -p podid-agent-cli` shows. The `podid` binary depends on this crate, never
//! the reverse.
#![forbid(unsafe_code)]

mod args;
mod command;
mod duration;
pub mod exit;
mod initialize;
pub mod logging;
pub mod os;

pub use args::{
    AgentCli, AgentCommand, AgentInitArgs, AgentServerArgs, AgentSubcommand, InitOutput,
};
pub use command::{agent_runtime, config_from_args, run, start, usable_state_dir};
pub use duration::parse_duration;
