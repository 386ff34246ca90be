//! One token verifier per cluster, built from the cluster's record and rebuilt when it changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use podid_model::{Cluster, KeySource};
use podid_token::{
    ClusterKeys, EgressPolicy, EgressRefusal, KeysConfig, TokenError, Verifier, VerifierConfig,
};

/// A verifier and the cluster record it was built from.
type Built = (Arc<Cluster>, Arc<Verifier>);

/// Verifiers keyed by cluster name, each remembering the record it was built from.
#[derive(Default)]
pub(crate) struct Verifiers {
    by_cluster: RwLock<HashMap<String, Built>>,
    /// Where `jwksUri` fetches may go.
    egress: EgressPolicy,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers")
            .field("clusters", &self.by_cluster.read().len())
            .finish()
    }
}

impl Verifiers {
    /// No verifiers yet; `jwksUri` fetches fenced by `egress`.
    pub(crate) fn new(egress: EgressPolicy) -> Self {
        Self {
            by_cluster: RwLock::default(),
            egress,
        }
    }

    /// Whether a `jwksUri` is one this server may fetch (checked when a cluster is registered,
    /// so a refused URI is a 400 then rather than a failure at the first token).
    pub(crate) fn check_jwks_uri(&self, uri: &str) -> Result<(), EgressRefusal> {
        self.egress.check_url(uri).map(drop)
    }

    /// The verifier for `cluster`'s current record (a pointer comparison on the hot path).
    pub(crate) fn get(&self, cluster: &Arc<Cluster>) -> Result<Arc<Verifier>, TokenError> {
        if let Some((record, verifier)) = self.by_cluster.read().get(&cluster.name)
            && (Arc::ptr_eq(record, cluster) || **record == **cluster)
        {
            return Ok(verifier.clone());
        }
        let (source, config) = match &cluster.keys {
            KeySource::Inline { jwks } => (
                podid_token::KeySource::Inline(jwks.clone()),
                KeysConfig::default(),
            ),
            KeySource::Uri {
                jwks_uri,
                ca_bundle,
                token_file,
            } => (
                podid_token::KeySource::Uri(jwks_uri.clone()),
                KeysConfig {
                    ca_bundle: ca_bundle.clone(),
                    egress: self.egress.clone(),
                    bearer_token_file: token_file.as_ref().map(PathBuf::from),
                    ..KeysConfig::default()
                },
            ),
        };
        let keys = Arc::new(ClusterKeys::new(source, config)?);
        let verifier = Arc::new(Verifier::new(
            VerifierConfig::new(cluster.issuer.clone()),
            keys,
        ));
        self.by_cluster
            .write()
            .insert(cluster.name.clone(), (cluster.clone(), verifier.clone()));
        Ok(verifier)
    }
}
