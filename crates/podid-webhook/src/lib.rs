//! The podid mutating admission webhook: gives new pods whose service account has a Pod
//! Identity association what the AWS SDKs need to fetch credentials from the node agent.
//!
//! Owns: the mutation as pure functions (the reference `amazon-eks-pod-identity-webhook`'s
//! container-credentials patch, exact in content and order: [`pod_identity_patch`], [`admit`]),
//! the cached copy of the cluster's associations and its sync from the podid server's EKS API
//! ([`Associations`], [`EksLister`]), and the HTTPS server (`/mutate`, `/healthz`, `/readyz`,
//! Prometheus `/metrics`) with certificate reloading.
//!
//! Does not own: flags, env or logging setup (the `podid` binary builds [`WebhookConfig`]),
//! SigV4 and the credentials-file format (`podid-aws`), associations themselves (the podid
//! server). Admission never waits on the network: decisions read the last synced association
//! snapshot and the watched copy of the cluster's service accounts ([`ServiceAccounts`], for
//! their token-lifetime and regional-STS annotations).
#![forbid(unsafe_code)]

mod associations;
mod config;
mod credentials;
mod csv;
mod expiration;
mod metrics;
mod patch;
mod pod;
mod review;
mod server;
mod service_accounts;
mod sync;
mod tls;

use std::net::SocketAddr;

pub use associations::{AssociationSet, Associations, Readiness};
pub use config::{DEFAULT_CONNECTION_LIMITS, ServiceAccountSource, WebhookConfig};
pub use credentials::CredentialSource;
pub use expiration::{
    DEFAULT_TOKEN_EXPIRATION, JITTER_FLOOR, Jitter, MIN_TOKEN_EXPIRATION,
    TOKEN_EXPIRATION_ANNOTATION, token_expiration,
};
pub use patch::{
    AUDIENCE, FULL_URI_IPV4, FULL_URI_IPV6, MOUNT_PATH, Mutation, POD_IDENTITY_LABEL, PatchOp,
    PatchSettings, SKIP_CONTAINERS_ANNOTATION, TOKEN_PATH, VOLUME_NAME, pod_identity_patch,
};
pub use pod::{PodError, PodView};
pub use podid_listener::Limits as ConnectionLimits;
pub use review::{Admission, MutationConfig, Outcome, ReviewError, STS_REGIONAL_ANNOTATION, admit};
pub use server::{MAX_REVIEW_BYTES, StartedWebhook, Webhook};
pub use service_accounts::{ServiceAccountInfo, ServiceAccounts};
pub use sync::{EksLister, SyncError};
pub use tls::TlsError;

/// Why the webhook could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is unusable (checked before any port is bound).
    #[error("invalid webhook configuration: {0}")]
    InvalidConfig(String),
    /// The serving certificate or key did not load.
    #[error("serving certificate")]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The Kubernetes client for the service-account watch could not be built.
    #[error("building the Kubernetes client for the service-account watch")]
    Kube(#[source] kube::Error),
    /// The CA bundle could not be read.
    #[error("reading CA bundle {path}")]
    CaBundle {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
