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
}

pub(crate) struct AppState {
    pub(crate) config: ServiceConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) follower: Follower,
    pub(crate) credentials: Arc<dyn CredentialResolver>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("config", &self.config).finish_non_exhaustive()
    }
}
