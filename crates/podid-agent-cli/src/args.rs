//! The agent's command-line surface, the one definition behind both `podid-agent` and
//! `podid agent`: the reference agent's flags (`eks-pod-identity-agent server`, wire reference
//! §1.1) with their defaults, and `initialize`.
//!
//! Only shapes and per-value parsing live here; [`crate::config_from_args`] turns them into an
//! [`podid_agent::AgentConfig`] and applies the cross-field rules.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;
use crate::logging::GlobalArgs;

/// The `podid-agent` binary's command line: the shared logging flags and the agent command.
#[derive(Debug, Parser)]
#[command(
    name = "podid-agent",
    version,
    about = "The podid node agent: the credential endpoint pods call (`initialize` sets up its link-local addresses)."
)]
pub struct AgentCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub command: AgentCommand,
}

/// `podid-agent [FLAGS]` (or `podid agent [FLAGS]`) serves; `… server [FLAGS]` is the
/// reference's spelling of the same thing; `… initialize` sets up the link-local addresses.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentCommand {
    #[command(subcommand)]
    pub command: Option<AgentSubcommand>,
    #[command(flatten)]
    pub server: AgentServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentSubcommand {
    /// Serve credentials (the same as `podid agent` with no subcommand).
    Server(Box<AgentServerArgs>),
    /// Create the pod-id-link0 link with 169.254.170.23/32 and fd00:ec2::23/128 (needs
    /// CAP_NET_ADMIN; IPv6 is best effort).
    Initialize(AgentInitArgs),
}

#[derive(Debug, Args)]
pub struct AgentServerArgs {
    /// Cluster name sent to EKS Auth.
    #[arg(short = 'c', long, env = "PODID_CLUSTER", required = true)]
    pub cluster_name: Option<String>,
    /// podid server URL (repeatable or comma-separated; tried in order on failure).
    #[arg(long = "endpoint", env = "PODID_ENDPOINT", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Credential listener addresses (repeatable or comma-separated).
    #[arg(
        short = 'b',
        long,
        value_delimiter = ',',
        default_values_t = [String::from("169.254.170.23"), String::from("[fd00:ec2::23]")]
    )]
    pub bind_hosts: Vec<String>,
    /// Credential listener port (0 picks a free one).
    #[arg(short = 'p', long, default_value_t = 80)]
    pub port: u16,
    /// Health and readiness port, on 127.0.0.1.
    #[arg(long, default_value_t = 2703)]
    pub probe_port: u16,
    /// Metrics listener address.
    #[arg(long, default_value = "0.0.0.0")]
    pub metrics_address: IpAddr,
    /// Metrics listener port.
    #[arg(long, default_value_t = 2705)]
    pub metrics_port: u16,
    /// Most pods whose credentials are cached; 0 disables caching.
    #[arg(long, default_value_t = 2000)]
    pub max_cache_size: u64,
    /// Longest time cached credentials are served before renewal; 0 disables caching.
    #[arg(long, default_value = "3h", value_parser = parse_retention)]
    pub max_credential_retention_before_renewal: Duration,
    /// Background refreshes per second; values <= 0 become 3 (as in the reference).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub max_service_qps: i64,
    /// Signing region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Requests per second per credential listener.
    #[arg(long, default_value = "1000")]
    pub rate_limit: NonZeroU32,
    /// Burst size per credential listener.
    #[arg(long, default_value = "500")]
    pub rate_limit_burst: NonZeroU32,
    /// PEM bundle that replaces the system roots for HTTPS to the server.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Directory for the cluster key cache (in memory only if it cannot be written).
    #[arg(
        long,
        env = "PODID_AGENT_STATE_DIR",
        default_value = "/var/lib/podid-agent"
    )]
    pub state_dir: PathBuf,
    /// This node's name, sent to the server.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Time a new credential connection has to send its first request's headers.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a keep-alive credential connection may wait for its next request.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Open credential connections at most (both addresses together); more are closed at once.
    #[arg(long, default_value = "4096")]
    pub max_connections: NonZeroU32,
    /// Open credential connections per client IP (per pod) at most; 0 for no per-client cap.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_client: u32,
}

#[derive(Debug, Args)]
pub struct AgentInitArgs {
    /// Summary format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: InitOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitOutput {
    Text,
    Json,
}

/// A duration, or a bare `0` (the reference's way to turn caching off).
fn parse_retention(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}
