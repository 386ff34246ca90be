//! The API modules: one per AWS API podid serves, each with its handlers and a `wire.rs` of
//! typed output shapes (one struct per botocore shape, members in the model's order).
//!
//! Handlers decode with the protocol codecs (`crate::protocol`), decide through the domain
//! (`crate::domain`), read the indexes (`crate::state`), and return the protocol's typed error;
//! they never build a wire error by hand. Routing to them happens once, in `crate::edge`.

pub(crate) mod admin;
pub(crate) mod cloudtrail;
pub(crate) mod eks;
pub(crate) mod eks_auth;
pub(crate) mod failed_calls;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod iam;
pub(crate) mod sts;

use std::sync::Arc;

use podid_store::AuditLog;

use crate::domain::assume::Issuer;
use crate::domain::audit::Audit;
use crate::domain::iam::Iam;
use crate::domain::secrets::Secrets;
use crate::domain::verifiers::Verifiers;
use crate::state::{Registry, StoreHandle};

/// Service-wide settings the handlers need (a subset of the binary's `ServerConfig`).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub region: String,
    pub account_id: String,
    pub max_associations_per_cluster: usize,
    /// Caps the lifetime of issued credentials (default: none beyond the AWS rules). Tests use it
    /// to watch SDKs refresh.
    pub max_credential_duration: Option<std::time::Duration>,
    /// How long audit events are kept.
    pub audit_retention: std::time::Duration,
    /// Also append audit events as JSON lines to this file.
    pub audit_file: Option<std::path::PathBuf>,
    /// Where `jwksUri` fetches may go (https only, no loopback, link-local or metadata
    /// addresses, by default).
    pub jwks_egress: podid_token::EgressPolicy,
    /// `sts` mode: pods of an association without session tags share one upstream session per
    /// refresh window (an association's `podid.dev/session-sharing` tag overrides this).
    pub sts_session_sharing: bool,
}

impl ServiceConfig {
    /// Defaults: us-east-1, account 000000000000, 5,000 associations per cluster (EKS's limit),
    /// 90 days of audit events (CloudTrail's event history window).
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            account_id: account_id.into(),
            max_associations_per_cluster: 5000,
            max_credential_duration: None,
            audit_retention: std::time::Duration::from_secs(90 * 24 * 3600),
            audit_file: None,
            jwks_egress: podid_token::EgressPolicy::default(),
            sts_session_sharing: false,
        }
    }

    /// `arn:aws:eks:<region>:<account>:cluster/<name>`.
    pub(crate) fn cluster_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{name}",
            self.region, self.account_id
        )
    }

    /// `arn:aws:eks:<region>:<account>:podidentityassociation/<cluster>/<id>`.
    pub(crate) fn association_arn(&self, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:eks:{}:{}:podidentityassociation/{cluster}/{id}",
            self.region, self.account_id
        )
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub(crate) config: ServiceConfig,
    pub(crate) store: StoreHandle,
    pub(crate) registry: Arc<Registry>,
    pub(crate) iam: Arc<Iam>,
    /// The KEKs that seal secret records (access keys) before they are stored.
    pub(crate) secrets: Secrets,
    pub(crate) issuer: Arc<dyn Issuer>,
    pub(crate) verifiers: Verifiers,
    pub(crate) audit: Audit,
    pub(crate) audit_log: Arc<dyn AuditLog>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A wire struct as the audit trail's JSON. Serializing these borrowed, string-and-number
/// structs cannot fail; were it to, the event keeps `null` rather than losing the record.
pub(crate) fn audit_value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}
