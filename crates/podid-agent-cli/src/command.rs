//! The agent command: turns the agent flags into a validated [`AgentConfig`] (before any port is
//! bound), serves until SIGTERM/SIGINT, and runs `initialize`.
//!
//! The agent itself lives in `podid-agent`; this module only wires flags, environment, the state
//! directory, the runtime and exit codes.

use std::num::NonZeroU32;
use std::path::Path;

use anyhow::Context as _;
use podid_agent::{AgentConfig, ConnectionLimits, NodeCredentialSource, RateLimit, StartedAgent};
use reqwest::Url;

use crate::args::{AgentCommand, AgentServerArgs, AgentSubcommand};
use crate::exit::{Exit, error_chain};
use crate::initialize;
use crate::os::{create_private_dir, shutdown_signal};
use crate::usage;

/// The reference turns `--max-service-qps` values <= 0 into this.
const DEFAULT_SERVICE_QPS: NonZeroU32 = match NonZeroU32::new(3) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Worker threads of the agent's runtime. Tokio's default is one per CPU: 64 on a 64-core node,
/// each with its own stack and malloc arena, for a process that answers a few requests a second
/// per pod. Two keep the measured throughput of this 2-core machine (cache hits at ~0.97 × nginx,
/// docs/BENCHMARKS.md) and bound the agent's threads on every node; a current-thread runtime
/// saved only ~170 KiB more and would cap it at one core.
const AGENT_WORKER_THREADS: usize = 2;

/// The runtime the agent runs on, in both binaries.
pub fn agent_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(AGENT_WORKER_THREADS)
        .enable_all()
        .build()
}

/// Runs `podid-agent …` / `podid agent …`: serves, or sets up the link-local addresses.
pub async fn run(command: AgentCommand) -> anyhow::Result<Exit> {
    match command.command {
        Some(AgentSubcommand::Initialize(args)) => initialize::run(&args).await,
        Some(AgentSubcommand::Server(args)) => serve(*args).await.map(|()| Exit(0)),
        None => serve(command.server).await.map(|()| Exit(0)),
    }
}

async fn serve(args: AgentServerArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let node_credentials = match NodeCredentialSource::from_env(env) {
        Ok(source) => source,
        Err(e) => usage!("{e}"),
    };
    let mut config = config_from_args(args, node_credentials, env)?;
    config.state_dir = config
        .state_dir
        .take()
        .and_then(|dir| usable_state_dir(&dir));
    let started = start(config).await?;
    started
        .serve_until(shutdown_signal())
        .await
        .context("the agent stopped")
}

/// Validates `config`, binds every listener and logs the bound addresses (one event each, so a
/// `-p 0` agent can be found by whoever started it).
pub async fn start(config: AgentConfig) -> anyhow::Result<StartedAgent> {
    if let Err(e) = config.validate() {
        usage!("{e}");
    }
    let started = match podid_agent::Agent::start(config).await {
        Ok(started) => started,
        Err(
            e @ (podid_agent::Error::InvalidConfig(_)
            | podid_agent::Error::CaBundleRead { .. }
            | podid_agent::Error::CaBundleInvalid { .. }
            | podid_agent::Error::NodeCredentials(_)),
        ) => usage!("{}", error_chain(&e)),
        Err(e) => return Err(anyhow::Error::new(e).context("starting the agent")),
    };
    for addr in &started.credential_addrs {
        tracing::info!(listener = "credentials", addr = %addr, "listening");
    }
    tracing::info!(listener = "probe", addr = %started.probe_addr, "listening");
    tracing::info!(listener = "metrics", addr = %started.metrics_addr, "listening");
    Ok(started)
}

/// Builds the configuration from flags; `env` supplies the region fallbacks.
pub fn config_from_args(
    args: AgentServerArgs,
    node_credentials: NodeCredentialSource,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<AgentConfig> {
    let Some(cluster_name) = args.cluster_name else {
        usage!("--cluster-name is required");
    };
    let mut endpoints = Vec::new();
    for text in args.endpoints.iter().filter(|e| !e.is_empty()) {
        match Url::parse(text) {
            Ok(url) => endpoints.push(url),
            Err(e) => usage!("--endpoint {text:?} is not a URL: {e}"),
        }
    }
    if endpoints.is_empty() {
        usage!("--endpoint (or PODID_ENDPOINT) is required: the podid server URL");
    }
    let mut bind_hosts = Vec::new();
    for host in args.bind_hosts.iter().filter(|h| !h.is_empty()) {
        match podid_agent::parse_bind_host(host) {
            Ok(ip) => bind_hosts.push(ip),
            Err(e) => usage!("--bind-hosts: {e}"),
        }
    }
    let region = args
        .region
        .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
        .or_else(|| env("AWS_DEFAULT_REGION").filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let qps = u32::try_from(args.max_service_qps)
        .ok()
        .and_then(NonZeroU32::new)
        .unwrap_or(DEFAULT_SERVICE_QPS);
    let mut config = AgentConfig::new(cluster_name, endpoints, node_credentials);
    config.bind_hosts = bind_hosts;
    config.port = args.port;
    config.probe_port = args.probe_port;
    config.metrics_address = args.metrics_address;
    config.metrics_port = args.metrics_port;
    config.max_cache_size = args.max_cache_size;
    config.max_credential_retention_before_renewal = args.max_credential_retention_before_renewal;
    config.max_service_qps = qps;
    config.region = region;
    config.rate_limit = RateLimit {
        per_second: args.rate_limit,
        burst: args.rate_limit_burst,
    };
    config.ca_bundle = args.ca_bundle;
    config.state_dir = Some(args.state_dir);
    config.node_name = args.node_name.filter(|n| !n.is_empty());
    config.connections = ConnectionLimits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        max_connections_per_client: NonZeroU32::new(args.max_connections_per_client),
        ..config.connections
    };
    if let Err(e) = config.validate() {
        usage!("{e}");
    }
    Ok(config)
}

/// Creates `dir` (0700); `None`, with a warning, when it cannot be created or written.
pub fn usable_state_dir(dir: &Path) -> Option<std::path::PathBuf> {
    let probe = dir.join(format!(".podid-write-test-{}", std::process::id()));
    let result = create_private_dir(dir)
        .and_then(|()| std::fs::write(&probe, b"").context("writing a test file"));
    let _ = std::fs::remove_file(&probe);
    match result {
        Ok(()) => Some(dir.to_owned()),
        Err(e) => {
            tracing::warn!(state_dir = %dir.display(), error = %format!("{e:#}"), "state dir is not writable; keeping cluster keys in memory only");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use clap::Parser as _;

    use super::*;
    use crate::args::AgentCli;

    fn parse(args: &[&str]) -> AgentServerArgs {
        let command = AgentCli::try_parse_from([&["podid-agent"], args].concat())
            .unwrap()
            .command;
        match command.command {
            None => command.server,
            Some(AgentSubcommand::Server(args)) => *args,
            Some(AgentSubcommand::Initialize(_)) => panic!("initialize"),
        }
    }

    fn creds() -> NodeCredentialSource {
        NodeCredentialSource::Static(podid_aws::sigv4::SigningCredentials {
            access_key_id: "AKIA".into(),
            secret_access_key: "s".into(),
            session_token: None,
        })
    }

    fn is_usage(r: anyhow::Result<AgentConfig>) -> bool {
        r.err()
            .is_some_and(|e| e.downcast_ref::<crate::exit::UsageError>().is_some())
    }

    #[test]
    fn refuses_bad_values_as_usage_errors() {
        let base = ["-c", "dev", "--endpoint", "http://127.0.0.1:1"];
        let none = |_: &str| None;
        assert!(is_usage(config_from_args(
            parse(&["-c", "dev"]),
            creds(),
            none
        )));
        for extra in [
            &["-b", "host.example"][..],
            &["--endpoint", "::"],
            &["--region", "us east"],
            &["--idle-timeout", "0s"],
            &[
                "--max-connections",
                "8",
                "--max-connections-per-client",
                "9",
            ],
        ] {
            let args = parse(&[&base[..], extra].concat());
            assert!(is_usage(config_from_args(args, creds(), none)), "{extra:?}");
        }
        let args = parse(&["--cluster-name=-bad", "--endpoint", "http://x"]);
        assert!(is_usage(config_from_args(args, creds(), none)));
    }

    #[test]
    fn defaults_are_the_reference_agents() {
        let env = |k: &str| (k == "AWS_DEFAULT_REGION").then(|| "eu-west-1".to_owned());
        let args = parse(&["server", "-c", "dev", "--endpoint", "http://a,http://b"]);
        let c = config_from_args(args, creds(), env).unwrap();
        assert_eq!(c.bind_hosts, podid_agent::DEFAULT_BIND_HOSTS.to_vec());
        assert_eq!((c.port, c.probe_port, c.metrics_port), (80, 2703, 2705));
        assert_eq!(c.metrics_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.max_cache_size, 2000);
        assert_eq!(
            c.max_credential_retention_before_renewal,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(c.max_service_qps.get(), 3);
        assert_eq!(c.rate_limit, RateLimit::default());
        assert_eq!(c.connections, podid_agent::DEFAULT_CONNECTION_LIMITS);
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(
            c.state_dir.as_deref(),
            Some(Path::new("/var/lib/podid-agent"))
        );

        let args = parse(&[
            "-c",
            "dev",
            "--endpoint",
            "http://a",
            "-b",
            "127.0.0.1,[::1]",
            "--max-service-qps",
            "-5",
            "--max-credential-retention-before-renewal",
            "0",
            "--region",
            "us-west-2",
        ]);
        let c = config_from_args(args, creds(), env).unwrap();
        assert_eq!(c.bind_hosts.len(), 2);
        assert_eq!(c.max_service_qps.get(), 3, "values <= 0 become 3");
        assert!(c.max_credential_retention_before_renewal.is_zero());
        assert_eq!(c.region, "us-west-2");
    }
}
