//! The `podid agent` command-line surface: the reference agent's flags (`eks-pod-identity-agent
//! server`, wire reference §1.1) with their defaults, and `podid agent initialize`.
//!
//! Only shapes and per-value parsing live here; [`crate::agent`] turns them into an
//! [`podid_agent::AgentConfig`] and applies the cross-field rules.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::duration::parse_duration;

/// `podid agent [FLAGS]` serves; `podid agent server [FLAGS]` is the reference's spelling of the
/// same thing; `podid agent initialize` sets up the link-local addresses.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct AgentCommand {
    #[command(subcommand)]
    pub(crate) command: Option<AgentSubcommand>,
    #[command(flatten)]
    pub(crate) server: AgentServerArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentSubcommand {
    /// Serve credentials (the same as `podid agent` with no subcommand).
    Server(Box<AgentServerArgs>),
    /// Create the pod-id-link0 link with 169.254.170.23/32 and fd00:ec2::23/128 (needs
    /// CAP_NET_ADMIN; IPv6 is best effort).
    Initialize(AgentInitArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AgentServerArgs {
    /// Cluster name sent to EKS Auth.
    #[arg(short = 'c', long, env = "PODID_CLUSTER", required = true)]
    pub(crate) cluster_name: Option<String>,
    /// podid server URL (repeatable or comma-separated; tried in order on failure).
    #[arg(long = "endpoint", env = "PODID_ENDPOINT", value_delimiter = ',')]
    pub(crate) endpoints: Vec<String>,
    /// Credential listener addresses (repeatable or comma-separated).
    #[arg(
        short = 'b',
        long,
        value_delimiter = ',',
        default_values_t = [String::from("169.254.170.23"), String::from("[fd00:ec2::23]")]
    )]
    pub(crate) bind_hosts: Vec<String>,
    /// Credential listener port (0 picks a free one).
    #[arg(short = 'p', long, default_value_t = 80)]
    pub(crate) port: u16,
    /// Health and readiness port, on 127.0.0.1.
    #[arg(long, default_value_t = 2703)]
    pub(crate) probe_port: u16,
    /// Metrics listener address.
    #[arg(long, default_value = "0.0.0.0")]
    pub(crate) metrics_address: IpAddr,
    /// Metrics listener port.
    #[arg(long, default_value_t = 2705)]
    pub(crate) metrics_port: u16,
    /// Most pods whose credentials are cached; 0 disables caching.
    #[arg(long, default_value_t = 2000)]
    pub(crate) max_cache_size: u64,
    /// Longest time cached credentials are served before renewal; 0 disables caching.
    #[arg(long, default_value = "3h", value_parser = parse_retention)]
    pub(crate) max_credential_retention_before_renewal: Duration,
    /// Background refreshes per second; values <= 0 become 3 (as in the reference).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub(crate) max_service_qps: i64,
    /// Signing region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Requests per second per credential listener.
    #[arg(long, default_value = "1000")]
    pub(crate) rate_limit: NonZeroU32,
    /// Burst size per credential listener.
    #[arg(long, default_value = "500")]
    pub(crate) rate_limit_burst: NonZeroU32,
    /// PEM bundle that replaces the system roots for HTTPS to the server.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// Directory for the cluster key cache (in memory only if it cannot be written).
    #[arg(
        long,
        env = "PODID_AGENT_STATE_DIR",
        default_value = "/var/lib/podid-agent"
    )]
    pub(crate) state_dir: PathBuf,
    /// This node's name, sent to the server.
    #[arg(long, env = "NODE_NAME")]
    pub(crate) node_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AgentInitArgs {
    /// Summary format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) output: InitOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InitOutput {
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
