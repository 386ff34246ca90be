//! The credential cache: one for all listeners, keyed by the token's pod UID (the token itself
//! when it names no pod), holding the already-serialised answer.
//!
//! Read path: same token → served; a rotated token for a cached pod → checked locally against
//! the cluster JWKS and served when it names the same namespace and service account; otherwise
//! one upstream call per key, run in a spawned task that every waiter awaits (a pod hanging up
//! never cancels a fetch others share; no polling). Nothing with ≤ [`MIN_TTL`] left is served.
//! Refresh-ahead lives in [`refresh`]; the fast path for a byte-identical repeated token, which
//! skips claim parsing, in [`repeat`].

mod intern;
mod refresh;
mod repeat;

pub(crate) use repeat::claims_failure;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use parking_lot::Mutex;
use podid_token::UnverifiedClaims;
use rand::Rng;
use tokio::time::Instant;

use crate::config::AgentConfig;
use crate::keys::{ClusterKeyStore, LocalCheck};
use crate::metrics::Metrics;
use crate::upstream::{EksAuth, FetchError};
use crate::wire::Fetched;
use intern::Names;
use repeat::RepeatIndex;

/// Credentials with this little left are never handed out nor cached (reference
/// `minCredentialTtl`): an SDK needs time to use them before they lapse.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(15);

/// How many times a request waits on another token's fetch for its pod before fetching itself.
const MAX_ROUNDS: usize = 2;

/// One pod's cached credentials.
#[derive(Debug)]
pub(crate) struct Entry {
    body: Bytes,
    namespace: Arc<str>,
    service_account: Arc<str>,
    expires_at: Instant,
    refresh_period: Duration,
    association_id: Arc<str>,
    state: Mutex<EntryState>,
}

#[derive(Debug)]
struct EntryState {
    /// The newest token known good for this pod; refreshes send it.
    token: Arc<str>,
    last_used: Instant,
    next_refresh: Instant,
    failures: u32,
    refreshing: bool,
}

type FlightResult = Shared<BoxFuture<'static, Result<Arc<Entry>, FetchError>>>;

struct Flight {
    id: u64,
    token: Arc<str>,
    result: FlightResult,
}

/// The cache, the in-flight map and what they need to fill themselves.
pub(crate) struct CredentialCache {
    /// `None` when caching is disabled (fetches are still de-duplicated).
    entries: Option<Cache<Arc<str>, Arc<Entry>>>,
    /// Present exactly when `entries` is.
    repeat: Option<Arc<RepeatIndex>>,
    /// Names shared by entries; purged by the refresh scan.
    names: Names,
    flights: Mutex<HashMap<Arc<str>, Flight>>,
    next_flight: AtomicU64,
    upstream: Arc<EksAuth>,
    keys: Arc<ClusterKeyStore>,
    metrics: Arc<Metrics>,
    retention: Duration,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("entries", &self.entries.as_ref().map(Cache::entry_count))
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub(crate) fn new(
        config: &AgentConfig,
        upstream: Arc<EksAuth>,
        keys: Arc<ClusterKeyStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let repeat = config
            .caching_enabled()
            .then(|| Arc::new(RepeatIndex::new(config.max_cache_size)));
        let entries = repeat.clone().map(|listener_repeat| {
            let listener_metrics = Arc::clone(&metrics);
            Cache::builder()
                .max_capacity(config.max_cache_size)
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(Expiry)
                .eviction_listener(move |_key, value: Arc<Entry>, cause| {
                    // Also on replacement (a refresh keeps the token): costs one slow request.
                    listener_repeat.forget(&value.state.lock().token);
                    if cause != RemovalCause::Replaced {
                        listener_metrics.cache_state("evicted");
                    }
                })
                .build()
        });
        Self {
            entries,
            repeat,
            names: Names::default(),
            flights: Mutex::new(HashMap::new()),
            next_flight: AtomicU64::new(0),
            upstream,
            keys,
            metrics,
            retention: config.max_credential_retention_before_renewal,
        }
    }

    /// Fast path: the cached answer when `token` repeats, byte for byte, a token already served
    /// from the entry that still holds it, and its `exp`/`nbf` pass at `now_secs`. `None` means
    /// "take the slow path", which gives the same answer, only later; nothing is allocated.
    pub(crate) async fn serve_repeat(&self, token: &[u8], now_secs: i64) -> Option<Bytes> {
        let repeat = self.repeat.as_deref()?;
        let key = repeat.lookup(repeat.hash(token), token, now_secs)?;
        let entry = self.entries.as_ref()?.get(&key).await?;
        let now = Instant::now();
        if entry.expires_at.saturating_duration_since(now) <= MIN_TTL {
            return None;
        }
        {
            let mut state = entry.state.lock();
            // The entry moved on to a rotated token: this one needs the slow path's checks.
            if state.token.as_bytes() != token {
                return None;
            }
            state.last_used = now;
        }
        self.metrics.cache_state("hit");
        Some(entry.body.clone())
    }

    /// The serialised credentials for the pod that `token` (with its peeked `claims`) names.
    pub(crate) async fn credentials(
        self: &Arc<Self>,
        token: &str,
        claims: &UnverifiedClaims,
    ) -> Result<Bytes, FetchError> {
        let key: Arc<str> = claims
            .pod
            .as_ref()
            .map_or_else(|| Arc::from(token), |p| Arc::clone(&p.uid));
        let token: Arc<str> = Arc::from(token);
        for _ in 0..MAX_ROUNDS {
            if let Some(body) = self.serve_cached(&key, &token).await {
                self.metrics.cache_state("hit");
                if let Some(repeat) = &self.repeat {
                    repeat.record(repeat.hash(token.as_bytes()), &token, &key, claims);
                }
                return Ok(body);
            }
            let (token_in_flight, result, own) = self.join_or_start(&key, &token, claims);
            if own {
                self.metrics.cache_state("miss");
            }
            if own || token_in_flight == token {
                return result.await.map(|entry| entry.body.clone());
            }
            // Another token's fetch for this pod: its result may serve us after local validation.
            let _ = result.await;
        }
        self.metrics.cache_state("miss");
        let result = self.start(&mut self.flights.lock(), &key, &token, claims);
        result.await.map(|entry| entry.body.clone())
    }

    /// Number of cached pods (approximate; for the gauge).
    pub(crate) async fn len(&self) -> u64 {
        match &self.entries {
            Some(entries) => {
                entries.run_pending_tasks().await;
                entries.entry_count()
            }
            None => 0,
        }
    }

    async fn serve_cached(&self, key: &Arc<str>, token: &Arc<str>) -> Option<Bytes> {
        let entry = self.entries.as_ref()?.get(key).await?;
        let now = Instant::now();
        if entry.expires_at.saturating_duration_since(now) <= MIN_TTL {
            return None;
        }
        let cached_token = Arc::clone(&entry.state.lock().token);
        if cached_token != *token {
            if !self.rotated_token_matches(key, token, &entry).await {
                return None;
            }
            let old = std::mem::replace(&mut entry.state.lock().token, Arc::clone(token));
            if let Some(repeat) = &self.repeat {
                repeat.forget(&old);
            }
        }
        entry.state.lock().last_used = now;
        Some(entry.body.clone())
    }

    /// A different token for a cached pod is served from cache only when it verifies against
    /// the cluster keys and names the same pod, namespace and service account.
    async fn rotated_token_matches(&self, key: &str, token: &str, entry: &Entry) -> bool {
        match self.keys.check(token, unix_now_secs()).await {
            LocalCheck::Valid(v)
                if v.namespace == entry.namespace
                    && v.service_account == entry.service_account
                    && v.pod.as_ref().is_some_and(|p| &*p.uid == key) =>
            {
                self.metrics.local_validation("success");
                true
            }
            LocalCheck::Valid(_) => {
                self.metrics.local_validation("failure");
                tracing::debug!("rotated token names another identity than the cached entry");
                false
            }
            LocalCheck::Invalid(e) => {
                self.metrics.local_validation("failure");
                tracing::debug!(error = %e, "rotated token failed local validation");
                false
            }
            LocalCheck::Skipped => {
                self.metrics.local_validation("skipped");
                false
            }
        }
    }

    /// The fetch in flight for `key`, or a new one for `token`; `true` when it is new.
    fn join_or_start(
        self: &Arc<Self>,
        key: &Arc<str>,
        token: &Arc<str>,
        claims: &UnverifiedClaims,
    ) -> (Arc<str>, FlightResult, bool) {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(key) {
            return (Arc::clone(&flight.token), flight.result.clone(), false);
        }
        let result = self.start(&mut flights, key, token, claims);
        (Arc::clone(token), result, true)
    }

    /// Spawn the fetch (so no waiter's disconnect cancels it) and register it under `key`.
    fn start(
        self: &Arc<Self>,
        flights: &mut HashMap<Arc<str>, Flight>,
        key: &Arc<str>,
        token: &Arc<str>,
        claims: &UnverifiedClaims,
    ) -> FlightResult {
        let id = self.next_flight.fetch_add(1, Ordering::Relaxed);
        let (this, task_key, task_token) = (Arc::clone(self), Arc::clone(key), Arc::clone(token));
        let identity = (
            Arc::clone(&claims.namespace),
            Arc::clone(&claims.service_account),
        );
        let task = tokio::spawn(async move {
            let result = this
                .fetch_entry(&task_token, identity, Instant::now())
                .await;
            if let (Ok(entry), Some(entries)) = (&result, &this.entries) {
                entries
                    .insert(Arc::clone(&task_key), Arc::clone(entry))
                    .await;
            }
            let mut flights = this.flights.lock();
            if flights.get(&task_key).is_some_and(|f| f.id == id) {
                flights.remove(&task_key);
            }
            result
        });
        let result = async move {
            task.await.unwrap_or_else(|_| {
                Err(FetchError::Internal(
                    "credential fetch task failed".to_owned(),
                ))
            })
        }
        .boxed()
        .shared();
        flights.insert(
            Arc::clone(key),
            Flight {
                id,
                token: Arc::clone(token),
                result: result.clone(),
            },
        );
        result
    }

    /// Call EKS Auth and build an entry. `identity` (from the token) names the entry when the
    /// response has no `subject`.
    async fn fetch_entry(
        &self,
        token: &Arc<str>,
        identity: (Arc<str>, Arc<str>),
        last_used: Instant,
    ) -> Result<Arc<Entry>, FetchError> {
        let fetched = self.upstream.assume(token).await?;
        tracing::info!(
            association_id = %fetched.association_id,
            association_arn = %fetched.association_arn,
            role_arn = %fetched.role_arn,
            namespace = fetched.namespace.as_deref().unwrap_or(&identity.0),
            service_account = fetched.service_account.as_deref().unwrap_or(&identity.1),
            "fetched credentials for pod identity association"
        );
        self.build_entry(fetched, token, identity, last_used)
    }

    fn build_entry(
        &self,
        fetched: Fetched,
        token: &Arc<str>,
        identity: (Arc<str>, Arc<str>),
        last_used: Instant,
    ) -> Result<Arc<Entry>, FetchError> {
        let lifetime_ms = fetched.expiration_ms.saturating_sub(unix_now_ms());
        let lifetime = Duration::from_millis(u64::try_from(lifetime_ms).unwrap_or(0));
        if lifetime <= MIN_TTL {
            return Err(FetchError::Internal(format!(
                "fetched credentials are expired or will expire within the next {} seconds",
                MIN_TTL.as_secs()
            )));
        }
        // Refresh ahead at min(retention, half the lifetime), minus up to 20% jitter so pods
        // started together do not refresh together.
        let period = self
            .retention
            .min(lifetime / 2)
            .mul_f64(rand::rng().random_range(0.8..=1.0));
        let now = Instant::now();
        Ok(Arc::new(Entry {
            body: fetched.body,
            namespace: self.name(fetched.namespace.as_deref().unwrap_or(&identity.0)),
            service_account: self.name(fetched.service_account.as_deref().unwrap_or(&identity.1)),
            expires_at: now + lifetime,
            refresh_period: period,
            association_id: self.name(&fetched.association_id),
            state: Mutex::new(EntryState {
                token: Arc::clone(token),
                last_used,
                next_refresh: now + period,
                failures: 0,
                refreshing: false,
            }),
        }))
    }

    /// `name` shared with the other cached entries; only interned while caching is on, as
    /// only the refresh scan that then runs purges the set.
    fn name(&self, name: &str) -> Arc<str> {
        if self.entries.is_some() {
            self.names.intern(name)
        } else {
            Arc::from(name)
        }
    }
}

/// moka expiry: drop an entry once it can no longer be served.
struct Expiry;

impl moka::Expiry<Arc<str>, Arc<Entry>> for Expiry {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        value: &Arc<Entry>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            value
                .expires_at
                .saturating_duration_since(Instant::now())
                .saturating_sub(MIN_TTL),
        )
    }

    fn expire_after_update(
        &self,
        key: &Arc<str>,
        value: &Arc<Entry>,
        at: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, at)
    }
}

fn unix_now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn unix_now_secs() -> i64 {
    unix_now_ms() / 1000
}

#[cfg(test)]
mod tests;
