//! One token verifier per cluster, built from the cluster's record and rebuilt when it changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
                    http: ca_bundle.as_deref().map(client_trusting).transpose()?,
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

/// Connect and whole-request timeouts of a JWKS fetch (as podid-token's default client).
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A fetch client trusting `pem`'s certificates besides the system roots. Redirects are not
/// followed: the bundle and token are meant for the one endpoint configured.
fn client_trusting(pem: &str) -> Result<reqwest::Client, TokenError> {
    let certs =
        reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(TokenError::JwksFetch)?;
    certs
        .into_iter()
        .fold(reqwest::Client::builder(), |builder, cert| {
            builder.add_root_certificate(cert)
        })
        .connect_timeout(FETCH_CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(TokenError::JwksFetch)
}
