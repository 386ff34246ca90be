//! The `podid` binary: command-line wiring only.
//!
//! Owns: parsing and validating every flag and `PODID_*` environment variable (once, here), logging
//! setup, process exit codes, and the small HTTP client the admin commands use. Does not own: any
//! AWS API, storage or token logic; those live in the library crates this binary starts or calls.
//!
//! Exit codes: 0 success, 1 runtime or API failure, 64 (`EX_USAGE`) bad flags or configuration,
//! and for `podid exec` the child's own code (128 + signal when a signal killed it).
#![forbid(unsafe_code)]
// Doc comments on clap arguments are `--help` text, where `<data-dir>` is the usual placeholder
// notation, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod agent;
mod agent_args;
mod association_cmd;
mod cli;
mod client;
mod cluster_cmd;
mod dev;
mod dev_agent;
mod devenv;
mod duration;
mod exec;
mod iam;
mod logging;
mod output;
mod server;
mod token;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// mimalloc instead of glibc malloc: the control plane's issuance path allocates and frees many
/// small objects across tokio workers and the store's writer thread, where glibc's arenas
/// (`malloc_consolidate`, `unlink_chunk`) cost ~15 % of the server's CPU. docs/BENCHMARKS.md
/// ("Credential issuance") has the numbers. It gives each thread its own heap, which costs the
/// all-in-one binary's `podid agent` some idle memory; the node agent's own binary (without this
/// line) is the one meant for nodes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `EX_USAGE` from sysexits.h: the command was used incorrectly.
const EXIT_USAGE: u8 = 64;

/// A configuration or flag error: printed as one line, exit code 64.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns early with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// A command that finished with a specific exit code (a child process's, for `podid exec`).
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) u8);

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(Exit(code)) => ExitCode::from(code),
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Server(args) => server::run(args).await.map(|()| Exit(0)),
        Command::Dev(args) => dev::run(args).await.map(|()| Exit(0)),
        Command::Association { client, command } => association_cmd::run(&client, command)
            .await
            .map(|()| Exit(0)),
        Command::Cluster { client, command } => {
            cluster_cmd::run(&client, command).await.map(|()| Exit(0))
        }
        Command::Completions { shell } => {
            cli::print_completions(shell);
            Ok(Exit(0))
        }
        Command::Token(args) => token::run(args).map(|()| Exit(0)),
        Command::Exec(args) => exec::run(args).await,
        Command::Agent(command) => agent::run(*command).await,
    }
}

/// Help and version go to stdout with exit 0; every other parse error is one line and exit 64.
fn clap_failure(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines();
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // "required arguments were not provided:" lists the arguments on indented lines.
            let listed: Vec<&str> = if first.ends_with(':') {
                lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect()
            } else {
                Vec::new()
            };
            if listed.is_empty() {
                eprintln!("error: {first} (see --help)");
            } else {
                eprintln!("error: {first} {} (see --help)", listed.join(", "));
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}
