//! What the webhook needs to run, built and validated by the `podid` binary from its flags.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use podid_listener::Limits;
use reqwest::Url;

use crate::credentials::CredentialSource;
use crate::review::MutationConfig;

/// Everything [`crate::Webhook::start`] needs.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The HTTPS listener (`/mutate`, `/healthz`, `/readyz`).
    pub listen: SocketAddr,
    /// The plain-HTTP metrics listener (`/metrics`, `/healthz`, `/readyz`); `None` turns it off.
    pub metrics_listen: Option<SocketAddr>,
    /// Serving certificate chain and key (PEM), reloaded when they change.
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    /// How often the certificate files are looked at.
    pub tls_reload_interval: Duration,
    /// The cluster whose associations decide which pods are mutated.
    pub cluster_name: String,
    /// The podid server (EKS API).
    pub endpoint: Url,
    /// The SigV4 signing region for the EKS API.
    pub region: String,
    /// The credentials that sign `ListPodIdentityAssociations`.
    pub credentials: CredentialSource,
    /// PEM bundle replacing the system roots for an HTTPS endpoint.
    pub ca_bundle: Option<PathBuf>,
    /// How often the associations are listed.
    pub sync_interval: Duration,
    /// How long after the last good sync the webhook stays ready while syncs fail.
    pub max_staleness: Duration,
    /// How pods are mutated.
    pub mutation: MutationConfig,
    /// Where the service accounts' annotations come from.
    pub service_accounts: ServiceAccountSource,
    /// The HTTPS listener's deadlines and caps. The metrics listener uses the same deadlines
    /// with small fixed caps.
    pub connections: Limits,
}

/// Default deadlines and caps of the HTTPS listener (`podid webhook` flags; issue 10, item 5).
pub const DEFAULT_CONNECTION_LIMITS: Limits = Limits {
    // The kube-apiserver sends a review's head at once.
    header_read_timeout: Duration::from_secs(5),
    // Above client-go's 90 s idle-connection timeout, so that the API server closes idle
    // connections first and never sends a review on one the webhook is closing (that would
    // apply the failure policy to a pod).
    idle_timeout: Duration::from_secs(120),
    tls_handshake_timeout: Duration::from_secs(10),
    // The clients are the cluster's API servers: a few connections each.
    max_connections: match NonZeroU32::new(1024) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    },
    // Off: every review comes from the API servers, and several may share one address.
    max_connections_per_client: None,
};

/// Where the service accounts' `eks.amazonaws.com/` annotations (token lifetime, regional STS)
/// come from.
#[derive(Debug, Clone)]
pub enum ServiceAccountSource {
    /// Not read: pod annotations and flags decide alone.
    Off,
    /// Watched on the API server this client configuration reaches (`list` and `watch` on
    /// `serviceaccounts` in every namespace). A pod whose service account the watch has not
    /// delivered yet waits up to `grace` for it.
    Watch {
        kube: Box<kube::Config>,
        grace: Duration,
    },
}

impl WebhookConfig {
    /// Cross-field checks made before any port is bound.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |m: String| Err(crate::Error::InvalidConfig(m));
        if self.cluster_name.is_empty() {
            return bad("the cluster name is empty".to_owned());
        }
        if !matches!(self.endpoint.scheme(), "http" | "https") {
            return bad(format!("endpoint {} is not http(s)", self.endpoint));
        }
        if self.sync_interval.is_zero() || self.tls_reload_interval.is_zero() {
            return bad("intervals must be longer than zero".to_owned());
        }
        if self.max_staleness < self.sync_interval {
            return bad(format!(
                "the staleness bound ({:?}) is shorter than the sync interval ({:?})",
                self.max_staleness, self.sync_interval
            ));
        }
        if let Err(msg) = self.connections.validate() {
            return bad(format!("connection limits: {msg}"));
        }
        // Port 0 asks for any free port, so two listeners may both say it.
        if self.listen.port() != 0 && Some(self.listen) == self.metrics_listen {
            return bad(format!(
                "the metrics listener and the webhook listener are both {}",
                self.listen
            ));
        }
        Ok(())
    }
}
