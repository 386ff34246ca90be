//! What every handler shares: configuration, the store, the indexes, the credential resolver.

use std::sync::Arc;

use podid_store::Store;

use crate::auth::CredentialResolver;
use crate::follow::Follower;
use crate::registry::Registry;

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
        }
    }
}

pub(crate) struct AppState {
    pub(crate) config: ServiceConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) follower: Follower,
    pub(crate) credentials: Arc<dyn CredentialResolver>,
    pub(crate) iam: Arc<crate::iam::Iam>,
    pub(crate) issuer: Arc<podid_issuer::LocalIssuer>,
    pub(crate) verifiers: crate::verifiers::Verifiers,
    pub(crate) audit: crate::audit::Audit,
    pub(crate) audit_log: Arc<dyn podid_store::AuditLog>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
