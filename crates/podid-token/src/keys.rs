//! Where a cluster's signing keys come from, and the cached, refreshed [`KeySet`] built from them.
//!
//! Refreshes are rate-limited per source: a token naming an unknown `kid` costs at most one fetch
//! per `min_refresh_interval`, so random `kid`s cannot turn the verifier into a fetch amplifier.
//! Time is the caller's `now_unix`, so tests drive it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::TokenError;
use crate::egress::EgressPolicy;
use crate::jwks::{KeySet, MAX_JWKS_BYTES};

/// Connect timeout for a `jwks_uri` fetch.
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Whole-request timeout for a `jwks_uri` fetch (the verifier may wait on it).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed: OIDC discovery documents sometimes point at a CDN or bucket.
const MAX_REDIRECTS: usize = 3;

/// `fetched_at` value meaning "never fetched".
const NEVER: i64 = i64::MIN;

/// Where a cluster's JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document given in configuration (e.g. `kubectl get --raw /openid/v1/jwks`).
    Inline(String),
    /// A `jwks_uri` fetched over HTTP(S) and refreshed.
    Uri(String),
}

/// Refresh policy for a [`KeySource::Uri`].
#[derive(Clone)]
pub struct KeysConfig {
    /// At most one fetch per this interval, whatever triggers it. Default 30 s.
    pub min_refresh_interval: Duration,
    /// Keys older than this are refetched before use (failures keep the old keys). Default 1 h.
    pub max_age: Duration,
    /// PEM certificates trusted for the fetch besides the system roots (a cluster's own CA).
    pub ca_bundle: Option<String>,
    /// Where fetches may go ([`EgressPolicy`]: https only, no loopback, link-local or metadata
    /// addresses, by default).
    pub egress: EgressPolicy,
    /// A file holding a bearer token sent with every fetch, read again each time (a projected
    /// service-account token rotates underneath): a kube-apiserver serves `/openid/v1/jwks`
    /// only to authenticated callers unless discovery is opened to anonymous users.
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            min_refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            ca_bundle: None,
            egress: EgressPolicy::default(),
            bearer_token_file: None,
        }
    }
}

impl fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeysConfig")
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("max_age", &self.max_age)
            .field("ca_bundle", &self.ca_bundle.is_some())
            .field("egress", &self.egress)
            .field("bearer_token_file", &self.bearer_token_file)
            .finish()
    }
}

/// One cluster's signing keys: an immutable [`KeySet`] snapshot, swapped on refresh.
pub struct ClusterKeys {
    fetch: Option<Fetcher>,
    snapshot: RwLock<Arc<KeySet>>,
    /// The last fetched document, as served (a remote source only): podid republishes it to
    /// node agents, which cannot reach the cluster's own endpoint.
    document: RwLock<Option<Arc<[u8]>>>,
    /// Unix seconds of the last successful fetch, or [`NEVER`]; read without locking.
    fetched_at: AtomicI64,
    /// Unix seconds of the last fetch attempt (successful or not), or [`NEVER`]. Checked without
    /// locking so rate-limited callers never queue; written only under `fetching`.
    last_attempt: AtomicI64,
    /// Serialises fetches.
    fetching: tokio::sync::Mutex<()>,
    min_interval: i64,
    max_age: i64,
}

struct Fetcher {
    url: String,
    client: reqwest::Client,
    bearer_token_file: Option<PathBuf>,
}

/// What a refresh call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// A new key set is in place (fetched by this call or by a concurrent one).
    Done,
    /// Nothing fetched: inline source, or the rate limit.
    Skipped,
}

impl ClusterKeys {
    /// Keys from `source`. An inline JWKS is parsed now (errors surface at startup); a URI is
    /// checked against the egress policy now and fetched on first use or by
    /// [`ClusterKeys::refresh`].
    pub fn new(source: KeySource, config: KeysConfig) -> Result<Self, TokenError> {
        let (fetch, set, fetched_at) = match source {
            KeySource::Inline(json) => (None, KeySet::parse(json.as_bytes())?, 0),
            KeySource::Uri(url) => {
                config
                    .egress
                    .check_url(&url)
                    .map_err(TokenError::JwksUriRefused)?;
                let fetcher = Fetcher {
                    url,
                    client: fetch_client(&config)?,
                    bearer_token_file: config.bearer_token_file,
                };
                (Some(fetcher), KeySet::empty(), NEVER)
            }
        };
        Ok(Self {
            fetch,
            snapshot: RwLock::new(Arc::new(set)),
            document: RwLock::new(None),
            fetched_at: AtomicI64::new(fetched_at),
            last_attempt: AtomicI64::new(NEVER),
            fetching: tokio::sync::Mutex::new(()),
            min_interval: secs(config.min_refresh_interval),
            max_age: secs(config.max_age),
        })
    }

    /// The current key set (cheap: an `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.snapshot.read())
    }

    /// The document of the last successful fetch of a remote source; `None` for an inline
    /// source or before the first fetch.
    pub fn fetched_document(&self) -> Option<Arc<[u8]>> {
        self.document.read().clone()
    }

    /// True for a `jwks_uri` source (one that can refresh).
    pub fn is_remote(&self) -> bool {
        self.fetch.is_some()
    }

    /// Fetch the JWKS now unless the rate limit forbids it. `Ok(true)` when a new set was
    /// installed, `Ok(false)` when skipped (inline source or rate limit). On error the previous
    /// keys stay in use.
    pub async fn refresh(&self, now_unix: i64) -> Result<bool, TokenError> {
        Ok(self.refresh_unless_changed(None, now_unix).await? == Refresh::Done)
    }

    /// True when a remote set was never fetched or is older than `max_age`.
    pub(crate) fn is_stale(&self, now_unix: i64) -> bool {
        if self.fetch.is_none() {
            return false;
        }
        let fetched_at = self.fetched_at.load(Ordering::Acquire);
        fetched_at == NEVER || now_unix.saturating_sub(fetched_at) >= self.max_age
    }

    /// Refresh, unless a concurrent caller already replaced `seen` while we waited for the lock,
    /// or the rate limit forbids it.
    pub(crate) async fn refresh_unless_changed(
        &self,
        seen: Option<&Arc<KeySet>>,
        now_unix: i64,
    ) -> Result<Refresh, TokenError> {
        let Some(fetch) = &self.fetch else {
            return Ok(Refresh::Skipped);
        };
        // Waiting here (rather than a lock-free rate-limit check first) lets callers that need
        // keys share the result of a fetch already in flight.
        let _fetching = self.fetching.lock().await;
        if seen.is_some_and(|seen| !Arc::ptr_eq(seen, &self.current())) {
            return Ok(Refresh::Done);
        }
        if !self.may_attempt(now_unix) {
            return Ok(Refresh::Skipped);
        }
        self.last_attempt.store(now_unix, Ordering::Release);
        let (set, document) = fetch.fetch().await?;
        tracing::debug!(keys = set.len(), url = %fetch.url, "fetched JWKS");
        *self.snapshot.write() = Arc::new(set);
        *self.document.write() = Some(document.into());
        self.fetched_at.store(now_unix, Ordering::Release);
        Ok(Refresh::Done)
    }

    /// Start a refresh on the current tokio runtime without waiting for it (max-age refreshes
    /// must not delay requests that the current keys can serve). Without a runtime, does nothing.
    pub(crate) fn refresh_in_background(self: &Arc<Self>, now_unix: i64) {
        if !self.may_attempt(now_unix) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let keys = Arc::clone(self);
        runtime.spawn(async move {
            if let Err(e) = keys.refresh_unless_changed(None, now_unix).await {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
            }
        });
    }

    /// The rate limit. A clock that went backwards does not block refreshes forever.
    fn may_attempt(&self, now_unix: i64) -> bool {
        let last = self.last_attempt.load(Ordering::Acquire);
        last == NEVER || now_unix < last || now_unix - last >= self.min_interval
    }
}

impl fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterKeys")
            .field("uri", &self.fetch.as_ref().map(|f| &f.url))
            .field("keys", &*self.current())
            .finish_non_exhaustive()
    }
}

/// The fetch client: timeouts, the egress fence on names and redirects, no proxy, and the CA
/// bundle. With a CA bundle or a bearer token no redirect is followed: both are meant for the
/// one endpoint configured.
fn fetch_client(config: &KeysConfig) -> Result<reqwest::Client, TokenError> {
    let pinned = config.ca_bundle.is_some() || config.bearer_token_file.is_some();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(FETCH_CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .no_proxy()
        .dns_resolver(config.egress.resolver())
        .redirect(if pinned {
            reqwest::redirect::Policy::none()
        } else {
            config.egress.redirects(MAX_REDIRECTS)
        });
    if let Some(pem) = &config.ca_bundle {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(TokenError::JwksFetch)?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(TokenError::JwksFetch)
}

impl Fetcher {
    /// GET the JWKS and parse it; returns the set and the document as served.
    async fn fetch(&self) -> Result<(KeySet, Vec<u8>), TokenError> {
        let mut request = self.client.get(&self.url).header(
            reqwest::header::ACCEPT,
            "application/json, application/jwk-set+json",
        );
        if let Some(path) = &self.bearer_token_file {
            request = request.bearer_auth(read_bearer_token(path).await?);
        }
        let fetched = fetch_jwks(request).await?;
        let set = KeySet::parse(&fetched.document)?;
        Ok((set, fetched.document))
    }
}

/// Largest bearer-token file read (service-account tokens are 1-2 KiB).
const MAX_BEARER_TOKEN_BYTES: u64 = 16 * 1024;

/// The bearer token in `path`, trimmed; refused when missing, empty or oversized.
async fn read_bearer_token(path: &Path) -> Result<String, TokenError> {
    let unreadable = |reason: String| TokenError::BearerTokenFile {
        path: path.display().to_string(),
        reason,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(
        &mut tokio::io::AsyncReadExt::take(file, MAX_BEARER_TOKEN_BYTES + 1),
        &mut text,
    )
    .await
    .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_BEARER_TOKEN_BYTES {
        return Err(unreadable(format!(
            "larger than {MAX_BEARER_TOKEN_BYTES} bytes"
        )));
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(unreadable("empty".to_owned()));
    }
    Ok(token.to_owned())
}

/// A JWKS document as fetched, with the response's headers (podid's own JWKS endpoint names
/// the cluster's issuer in one).
#[derive(Debug)]
pub struct FetchedJwks {
    pub document: Vec<u8>,
    pub headers: reqwest::header::HeaderMap,
}

/// Sends `request` and reads a JWKS body, refusing a non-success status and any body over
/// [`MAX_JWKS_BYTES`] while it streams (a declared length over the cap is refused before
/// reading). The one JWKS fetch: the server's verifiers and the node agent both use it.
pub async fn fetch_jwks(request: reqwest::RequestBuilder) -> Result<FetchedJwks, TokenError> {
    let too_large = TokenError::JwksTooLarge {
        max: MAX_JWKS_BYTES,
    };
    let mut response = request.send().await.map_err(TokenError::JwksFetch)?;
    let status = response.status();
    if !status.is_success() {
        return Err(TokenError::JwksStatus(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(too_large);
    }
    let headers = std::mem::take(response.headers_mut());
    let mut document = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(TokenError::JwksFetch)? {
        if document.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_large);
        }
        document.extend_from_slice(&chunk);
    }
    Ok(FetchedJwks { document, headers })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
