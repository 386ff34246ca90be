//! One token verifier per cluster, built from the cluster's record and rebuilt when it changes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use podid_model::{Cluster, KeySource};
use podid_token::{ClusterKeys, KeysConfig, TokenError, Verifier, VerifierConfig};

/// A verifier and the cluster record it was built from.
type Built = (Arc<Cluster>, Arc<Verifier>);

/// Verifiers keyed by cluster name, each remembering the record it was built from.
#[derive(Default)]
pub(crate) struct Verifiers {
    by_cluster: RwLock<HashMap<String, Built>>,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers")
            .field("clusters", &self.by_cluster.read().len())
            .finish()
    }
}

impl Verifiers {
    /// The verifier for `cluster`'s current record (a pointer comparison on the hot path).
    pub(crate) fn get(&self, cluster: &Arc<Cluster>) -> Result<Arc<Verifier>, TokenError> {
        if let Some((record, verifier)) = self.by_cluster.read().get(&cluster.name)
            && (Arc::ptr_eq(record, cluster) || **record == **cluster)
        {
            return Ok(verifier.clone());
        }
        let source = match &cluster.keys {
            KeySource::Inline { jwks } => podid_token::KeySource::Inline(jwks.clone()),
            KeySource::Uri { jwks_uri } => podid_token::KeySource::Uri(jwks_uri.clone()),
        };
        let keys = Arc::new(ClusterKeys::new(source, KeysConfig::default())?);
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
