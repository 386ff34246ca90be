//! The cluster's token-signing keys, for checking rotated tokens locally.
//!
//! Fetched from the podid server at `GET {endpoint}/podid/public/clusters/{cluster}/jwks`
//! (unauthenticated; the `X-Podid-Issuer` response header names the cluster's issuer), kept on
//! disk in the state dir so a restarted agent can validate before the server answers, refreshed
//! every [`MAX_AGE`], and refetched (rate-limited) when a token names an unknown `kid`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use podid_token::{
    ClusterKeys, KeySource, KeysConfig, MAX_JWKS_BYTES, TokenError, VerifiedToken, Verifier,
    VerifierConfig,
};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::AgentConfig;

/// Keys older than this are refetched: a key rotation on the server reaches agents in minutes.
const MAX_AGE: Duration = Duration::from_secs(600);
/// At most one fetch per this interval, whatever triggers it, so tokens naming random `kid`s
/// cannot turn the agent into a fetch amplifier against the server.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Whole-request timeout of one JWKS fetch (a request may be waiting on it).
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest accepted `X-Podid-Issuer`: issuers are URLs; 2 KiB is far beyond real ones.
const MAX_ISSUER_BYTES: usize = 2048;
/// The issuer header the podid server sets on JWKS responses.
const ISSUER_HEADER: &str = "x-podid-issuer";

/// The on-disk cache document.
#[derive(Serialize, Deserialize)]
struct DiskCache {
    issuer: String,
    jwks: String,
}

/// What a rotated-token check concluded.
#[derive(Debug)]
pub(crate) enum LocalCheck {
    /// Signature and claims hold.
    Valid(VerifiedToken),
    /// The token was refused (bad signature, wrong issuer, unknown key...).
    Invalid(TokenError),
    /// No keys available: the check could not be made.
    Skipped,
}

/// The current [`Verifier`] for the agent's cluster, if keys were ever loaded.
#[derive(Debug)]
pub(crate) struct ClusterKeyStore {
    http: reqwest::Client,
    urls: Vec<Url>,
    disk_path: Option<PathBuf>,
    verifier: RwLock<Option<Arc<Verifier>>>,
    last_attempt: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
}

impl ClusterKeyStore {
    /// A store for `config`'s cluster, primed from the disk cache when one is there.
    pub(crate) fn new(config: &AgentConfig, http: reqwest::Client) -> Self {
        let urls = config
            .endpoints
            .iter()
            .filter_map(|e| {
                let base = e.as_str().trim_end_matches('/');
                Url::parse(&format!(
                    "{base}/podid/public/clusters/{}/jwks",
                    config.cluster_name
                ))
                .ok()
            })
            .collect();
        let disk_path = config
            .state_dir
            .as_ref()
            .map(|d| d.join(format!("jwks-{}.json", config.cluster_name)));
        let store = Self {
            http,
            urls,
            disk_path,
            verifier: RwLock::new(None),
            last_attempt: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        };
        store.load_disk();
        store
    }

    /// Check `token` locally. Without keys, or on an unknown `kid`, one rate-limited fetch is
    /// made first.
    pub(crate) async fn check(&self, token: &str, now_unix: i64) -> LocalCheck {
        if self.current().is_none() {
            self.refresh().await;
        }
        let Some(verifier) = self.current() else {
            return LocalCheck::Skipped;
        };
        match verifier.verify_cached(token, now_unix) {
            Ok(v) => LocalCheck::Valid(v),
            Err(TokenError::UnknownKey) if self.refresh().await => match self.current() {
                Some(v) => v
                    .verify_cached(token, now_unix)
                    .map_or_else(LocalCheck::Invalid, LocalCheck::Valid),
                None => LocalCheck::Skipped,
            },
            Err(e) => LocalCheck::Invalid(e),
        }
    }

    /// Refresh forever: every [`MAX_AGE`] after a success, every [`MIN_REFETCH`] after a failure.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let ok = self.refresh().await;
            tokio::time::sleep(if ok { MAX_AGE } else { MIN_REFETCH }).await;
        }
    }

    fn current(&self) -> Option<Arc<Verifier>> {
        self.verifier.read().clone()
    }

    /// Fetch from the endpoints in order unless rate-limited; true when new keys are installed.
    async fn refresh(&self) -> bool {
        let _fetching = self.fetching.lock().await;
        {
            let mut last = self.last_attempt.lock();
            if last.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
                return false;
            }
            *last = Some(Instant::now());
        }
        for url in &self.urls {
            match self.fetch(url).await {
                Ok(doc) => match install(&doc) {
                    Ok(verifier) => {
                        *self.verifier.write() = Some(verifier);
                        self.save_disk(&doc);
                        tracing::debug!(url = %url, "fetched cluster JWKS");
                        return true;
                    }
                    Err(e) => tracing::warn!(url = %url, error = %e, "cluster JWKS is unusable"),
                },
                Err(e) => tracing::warn!(url = %url, error = %e, "fetching cluster JWKS failed"),
            }
        }
        false
    }

    async fn fetch(&self, url: &Url) -> Result<DiskCache, String> {
        let request = self.http.get(url.clone()).timeout(FETCH_TIMEOUT);
        let fetched = podid_token::fetch_jwks(request)
            .await
            .map_err(|e| e.to_string())?;
        let issuer = fetched
            .headers
            .get(ISSUER_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_ISSUER_BYTES)
            .ok_or("missing or oversized X-Podid-Issuer header")?
            .to_owned();
        let jwks = String::from_utf8(fetched.document).map_err(|_| "not UTF-8".to_owned())?;
        Ok(DiskCache { issuer, jwks })
    }

    fn load_disk(&self) {
        let Some(path) = &self.disk_path else { return };
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.len() > (MAX_JWKS_BYTES + MAX_ISSUER_BYTES + 1024) as u64 {
            tracing::warn!(path = %path.display(), "ignoring oversized JWKS disk cache");
            return;
        }
        let loaded = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<DiskCache>(&b).map_err(|e| e.to_string()))
            .and_then(|doc| install(&doc).map_err(|e| e.to_string()));
        match loaded {
            Ok(verifier) => {
                *self.verifier.write() = Some(verifier);
                tracing::info!(path = %path.display(), "loaded cluster JWKS from disk cache");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable JWKS disk cache")
            }
        }
    }

    /// Write via a temporary file and rename, so a crash never leaves half a document.
    fn save_disk(&self, doc: &DiskCache) {
        let Some(path) = &self.disk_path else { return };
        let tmp = path.with_extension("json.tmp");
        let result = serde_json::to_vec(doc)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "writing JWKS disk cache failed");
        }
    }
}

fn install(doc: &DiskCache) -> Result<Arc<Verifier>, TokenError> {
    let keys = ClusterKeys::new(KeySource::Inline(doc.jwks.clone()), KeysConfig::default())?;
    Ok(Arc::new(Verifier::new(
        VerifierConfig::new(doc.issuer.clone()),
        Arc::new(keys),
    )))
}
