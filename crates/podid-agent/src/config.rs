//! [`AgentConfig`]: everything the agent needs, typed. The `podid` binary builds it from flags;
//! this crate never reads argv, env or config files itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use podid_listener::Limits;
use reqwest::Url;

use crate::Error;
use crate::nodecreds::NodeCredentialSource;

/// The IPv4 address pods reach the agent on (reference `DefaultIpv4TargetHost`).
pub const IPV4_LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
/// The IPv6 address pods reach the agent on (reference `DefaultIpv6TargetHost`, `fd00:ec2::23`).
pub const IPV6_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
/// Default `--bind-hosts`: both link-local addresses.
pub const DEFAULT_BIND_HOSTS: [IpAddr; 2] =
    [IpAddr::V4(IPV4_LINK_LOCAL), IpAddr::V6(IPV6_LINK_LOCAL)];

/// Longest cluster name EKS accepts (`ClusterName` shape: 1–100 characters).
const MAX_CLUSTER_NAME: usize = 100;

/// Default deadlines and caps of the credential listeners (issue 10, item 5: one pod held 300
/// connections open forever and could exhaust the agent's descriptors).
pub const DEFAULT_CONNECTION_LIMITS: Limits = Limits {
    // A pod's SDK sends its whole request at once; 5 s is generous even on a loaded node.
    header_read_timeout: Duration::from_secs(5),
    // Above the 90 s idle timeout of Go's and reqwest's connection pools, so that the client,
    // not the agent, closes an idle keep-alive connection (no race with a reused connection).
    idle_timeout: Duration::from_secs(120),
    // Unused: the credential listeners are plain HTTP.
    tls_handshake_timeout: Duration::from_secs(10),
    // A node runs at most a few hundred pods; 4096 leaves room under the usual 65536-descriptor
    // limit for everything else.
    max_connections: nz(4096),
    // Each pod has its own IP: one pod may hold 64 connections, so 64 pods cannot fill the cap.
    max_connections_per_client: Some(nz(64)),
};

/// Token bucket for one credential listener (reference: `rate.NewLimiter(1000, 500)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Bucket size.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: nz(1000),
            burst: nz(500),
        }
    }
}

/// The agent's configuration. [`AgentConfig::new`] fills in the reference agent's defaults.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Sent to EKS Auth in the URI; 1–100 of `[0-9A-Za-z][A-Za-z0-9_-]*`.
    pub cluster_name: String,
    /// podid server base URLs, tried in order when one fails.
    pub endpoints: Vec<Url>,
    /// One credential listener per address. IPv6 bind failures are tolerated.
    pub bind_hosts: Vec<IpAddr>,
    /// Credential listener port (80; 0 picks one, for tests).
    pub port: u16,
    /// Probe listener port on 127.0.0.1 (2703).
    pub probe_port: u16,
    /// Metrics listener address (0.0.0.0).
    pub metrics_address: IpAddr,
    /// Metrics listener port (2705).
    pub metrics_port: u16,
    /// Cached pods at most (LRU); 0 disables caching.
    pub max_cache_size: u64,
    /// Longest time before cached credentials are renewed (3 h); zero disables caching.
    pub max_credential_retention_before_renewal: Duration,
    /// Background refreshes per second at most (3).
    pub max_service_qps: NonZeroU32,
    /// SigV4 signing region (`us-east-1`).
    pub region: String,
    /// Per-listener rate limit (1000/s, burst 500).
    pub rate_limit: RateLimit,
    /// PEM bundle that replaces the system roots for upstream TLS (like `AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
    /// Directory for the cluster JWKS disk cache; `None` keeps it in memory only.
    pub state_dir: Option<PathBuf>,
    /// Sent as `eksNodeName` when known.
    pub node_name: Option<String>,
    /// Where the node's own AWS credentials (for SigV4) come from.
    pub node_credentials: NodeCredentialSource,
    /// Deadlines and caps of the credential listeners (both addresses share the caps). The
    /// probe and metrics listeners use the same deadlines with small fixed caps.
    pub connections: Limits,
}

impl AgentConfig {
    /// The reference defaults for everything but the three required values.
    pub fn new(
        cluster_name: impl Into<String>,
        endpoints: Vec<Url>,
        node_credentials: NodeCredentialSource,
    ) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            endpoints,
            bind_hosts: DEFAULT_BIND_HOSTS.to_vec(),
            port: 80,
            probe_port: 2703,
            metrics_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            metrics_port: 2705,
            max_cache_size: 2000,
            max_credential_retention_before_renewal: Duration::from_secs(3 * 3600),
            max_service_qps: nz(3),
            region: "us-east-1".to_owned(),
            rate_limit: RateLimit::default(),
            ca_bundle: None,
            state_dir: None,
            node_name: None,
            node_credentials,
            connections: DEFAULT_CONNECTION_LIMITS,
        }
    }

    /// Cross-field checks, run by [`crate::Agent::start`] before any port is bound.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::InvalidConfig(msg));
        if !valid_cluster_name(&self.cluster_name) {
            return bad(format!(
                "cluster name {:?} must be 1-100 characters of [0-9A-Za-z][A-Za-z0-9_-]*",
                self.cluster_name
            ));
        }
        if self.endpoints.is_empty() {
            return bad("at least one podid server endpoint is required".to_owned());
        }
        if let Some(url) = self
            .endpoints
            .iter()
            .find(|u| !matches!(u.scheme(), "http" | "https"))
        {
            return bad(format!("endpoint {url} is not an http(s) URL"));
        }
        if self.bind_hosts.is_empty() {
            return bad("at least one bind host is required".to_owned());
        }
        if let Err(msg) = self.connections.validate() {
            return bad(format!("credential listener: {msg}"));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad(format!("region {:?} is not a region name", self.region));
        }
        Ok(())
    }

    /// True when the credential cache is on (reference: both knobs non-zero).
    pub(crate) fn caching_enabled(&self) -> bool {
        self.max_cache_size > 0 && !self.max_credential_retention_before_renewal.is_zero()
    }
}

/// Parse one `--bind-hosts` value: an IP, optionally in brackets (`[fd00:ec2::23]`), or
/// `localhost` (127.0.0.1).
pub fn parse_bind_host(s: &str) -> Result<IpAddr, Error> {
    if s == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| Error::InvalidConfig(format!("bind host {s:?} is not an IP address")))
}

fn valid_cluster_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_CLUSTER_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AgentConfig {
        let url = Url::parse("http://127.0.0.1:1").unwrap();
        AgentConfig::new("c1", vec![url], NodeCredentialSource::Static(test_creds()))
    }

    fn test_creds() -> podid_aws::sigv4::SigningCredentials {
        podid_aws::sigv4::SigningCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            session_token: None,
        }
    }

    #[test]
    fn refuses_bad_cluster_names_and_endpoints() {
        for name in ["", "-x", "a/b", "a b", &"a".repeat(101)] {
            let mut c = config();
            c.cluster_name = name.to_owned();
            assert!(c.validate().is_err(), "{name:?}");
        }
        let mut c = config();
        c.endpoints = vec![Url::parse("ftp://x").unwrap()];
        assert!(c.validate().is_err());
        c.endpoints.clear();
        assert!(c.validate().is_err());
        assert!(config().validate().is_ok());
    }

    #[test]
    fn parses_bind_hosts() {
        assert_eq!(
            parse_bind_host("[fd00:ec2::23]").unwrap(),
            IpAddr::V6(IPV6_LINK_LOCAL)
        );
        assert_eq!(
            parse_bind_host("fd00:ec2::23").unwrap(),
            IpAddr::V6(IPV6_LINK_LOCAL)
        );
        assert_eq!(
            parse_bind_host("169.254.170.23").unwrap(),
            IpAddr::V4(IPV4_LINK_LOCAL)
        );
        assert_eq!(
            parse_bind_host("localhost").unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert!(parse_bind_host("example.com").is_err());
        assert!(parse_bind_host("[1.2.3.4").is_err());
    }
}
