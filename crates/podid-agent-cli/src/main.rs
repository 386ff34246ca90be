//! `podid-agent`: the node agent alone, for the DaemonSet. The same flags, defaults and
//! behaviour as `podid agent`, in a binary that links no control-plane code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use podid_agent_cli::exit::{EXIT_USAGE, clap_failure, finish};
use podid_agent_cli::logging::{self, LogFormat, Verbosity};
use podid_agent_cli::{AgentCli, agent_runtime, run};

fn main() -> ExitCode {
    let cli = match AgentCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e),
    };
    // JSON unless told otherwise, like the reference agent (and `podid agent`).
    if let Err(e) = logging::init(&cli.global, Verbosity::Info, Some(LogFormat::Json)) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match agent_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    finish(runtime.block_on(run(cli.command)))
}
