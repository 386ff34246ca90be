//! The `podid` binary: command-line wiring only.
//!
//! Owns: parsing and validating the flags and `PODID_*` environment variables of the server, dev,
//! webhook, token, exec and admin commands (once, here), and the small HTTP client the admin
//! commands use.
//! The agent's flags, the logging setup and the exit-code conventions come from
//! `podid-agent-cli`, which the lean `podid-agent` binary shares, so `podid agent` and
//! `podid-agent` cannot drift apart. Does not own: any AWS API, storage or token logic; those live
//! in the library crates this binary starts or calls.
//!
//! Exit codes: 0 success, 1 runtime or API failure, 64 (`EX_USAGE`) bad flags or configuration,
//! and for `podid exec` the child's own code (128 + signal when a signal killed it).
#![forbid(unsafe_code)]
// Doc comments on clap arguments are `--help` text, where `<data-dir>` is the usual placeholder
// notation, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod admin_cmd;
mod association_cmd;
mod cli;
mod client;
mod cluster_cmd;
mod dev;
mod dev_agent;
mod devenv;
mod exec;
mod iam;
mod kek;
mod kube_discovery;
mod output;
mod role_cmd;
mod server;
mod token;
mod webhook;

use std::process::ExitCode;

use clap::Parser as _;
use podid_agent_cli::exit::{EXIT_USAGE, clap_failure, finish};
use podid_agent_cli::logging;

use crate::cli::{Cli, Command};

pub(crate) use podid_agent_cli::exit::Exit;
#[cfg(test)]
pub(crate) use podid_agent_cli::exit::UsageError;
pub(crate) use podid_agent_cli::usage;

/// mimalloc instead of glibc malloc: the control plane's issuance path allocates and frees many
/// small objects across tokio workers and the store's writer thread, where glibc's arenas
/// (`malloc_consolidate`, `unlink_chunk`) cost ~15 % of the server's CPU. docs/BENCHMARKS.md
/// ("Credential issuance") has the numbers. It gives each thread its own heap, which costs the
/// all-in-one binary's `podid agent` some idle memory; the node agent's own binary (without this
/// line) is the one meant for nodes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e),
    };
    if let Err(e) = logging::init(
        &cli.global,
        cli.command.default_level(),
        cli.command.default_log_format(),
    ) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    // `podid agent` runs on the agent's own runtime, exactly as `podid-agent` does.
    let runtime = match &cli.command {
        Command::Agent(_) => podid_agent_cli::agent_runtime(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    finish(runtime.block_on(run(cli.command)))
}

async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Server(args) => server::run(args).await.map(|()| Exit(0)),
        Command::Dev(args) => dev::run(args).await.map(|()| Exit(0)),
        Command::Association { client, command } => association_cmd::run(&client, command)
            .await
            .map(|()| Exit(0)),
        Command::Admin { client, command } => {
            admin_cmd::run(&client, command).await.map(|()| Exit(0))
        }
        Command::Role { client, command } => {
            role_cmd::run(&client, command).await.map(|()| Exit(0))
        }
        Command::Cluster { client, command } => {
            cluster_cmd::run(&client, command).await.map(|()| Exit(0))
        }
        Command::Completions { shell } => {
            cli::print_completions(shell);
            Ok(Exit(0))
        }
        Command::Token(args) => token::run(args).map(|()| Exit(0)),
        Command::Exec(args) => exec::run(args).await,
        Command::Agent(command) => podid_agent_cli::run(*command).await,
        Command::Webhook(args) => webhook::run(*args).await.map(|()| Exit(0)),
    }
}
