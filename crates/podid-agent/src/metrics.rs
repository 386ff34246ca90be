//! Prometheus metrics, with the reference agent's names (§1.7) plus latency histograms, a cache
//! size gauge and an upstream call counter, and every listener's connection metrics
//! (`pod_identity_connections_refused_total`, `pod_identity_connection_timeouts_total`,
//! `pod_identity_connections_open`, labelled `listener="credentials"|"probe"|"metrics"`).
//!
//! Meanings differ from the reference where its were misleading:
//! `pod_identity_cache_state{state="hit"}` counts requests **served from the cache** (the
//! reference counted successful background refreshes under that label); refreshes are
//! `state="refresh"`. `miss` = a request that needed an upstream call; `evicted` = any removal
//! except replacement by fresher credentials. OpenMetrics exposition appends `_total` to counter
//! names (`pod_identity_http_response_total`).

use std::sync::OnceLock;

use podid_listener::ListenerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheErrorLabel {
    r#type: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Status codes the credential endpoint answers with; each gets its counter handle on first use,
/// so counting one costs no label formatting, hashing or lock (and an unused code still does not
/// appear in the exposition, as before).
const KNOWN_CODES: [u16; 9] = [200, 400, 403, 404, 429, 500, 502, 503, 504];

/// Cache states known up front; they start at zero so dashboards see them before the first event.
const STATES: [&str; 4] = ["hit", "miss", "refresh", "evicted"];

/// Every metric the agent exports, and the registry that encodes them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http_response: Family<CodeLabel, Counter>,
    /// Handles into `http_response`, one per [`KNOWN_CODES`] entry, same order.
    known_codes: [OnceLock<Counter>; KNOWN_CODES.len()],
    cache_state: Family<StateLabel, Counter>,
    /// Handles into `cache_state` for `hit`, `miss`, `refresh`, `evicted`.
    states: [Counter; 4],
    cache_errors: Family<CacheErrorLabel, Counter>,
    local_validation: Family<ResultLabel, Counter>,
    upstream_calls: Family<ResultLabel, Counter>,
    pub(crate) request_duration: Histogram,
    pub(crate) upstream_duration: Histogram,
    pub(crate) cache_size: Gauge,
    pub(crate) listeners: ListenerMetrics,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let http_response = Family::<CodeLabel, Counter>::default();
        let cache_state = Family::<StateLabel, Counter>::default();
        let cache_errors = Family::<CacheErrorLabel, Counter>::default();
        let local_validation = Family::<ResultLabel, Counter>::default();
        let upstream_calls = Family::<ResultLabel, Counter>::default();
        // 1 ms … ~8 s: a cache hit is sub-millisecond, three upstream attempts take ~3.5 s.
        let request_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let upstream_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let cache_size = Gauge::default();
        let listeners = ListenerMetrics::new();
        listeners.register(registry.sub_registry_with_prefix("pod_identity"));
        registry.register(
            "pod_identity_http_response",
            "Responses to /v1/credentials by status code",
            http_response.clone(),
        );
        registry.register(
            "pod_identity_cache_state",
            "Cache events: hit (served from cache), miss (upstream call), refresh (background renewal), evicted",
            cache_state.clone(),
        );
        registry.register(
            "pod_identity_cache_errors",
            "Background refresh failures by type and AWS error code",
            cache_errors.clone(),
        );
        registry.register(
            "pod_identity_local_validation",
            "Rotated tokens checked against the cluster JWKS: success, failure, skipped",
            local_validation.clone(),
        );
        registry.register(
            "pod_identity_upstream_calls",
            "EKS Auth HTTP attempts by result",
            upstream_calls.clone(),
        );
        registry.register(
            "pod_identity_request_duration_seconds",
            "Time to answer /v1/credentials",
            request_duration.clone(),
        );
        registry.register(
            "pod_identity_upstream_duration_seconds",
            "Time of one EKS Auth call including retries",
            upstream_duration.clone(),
        );
        registry.register(
            "pod_identity_cache_size",
            "Pods with cached credentials",
            cache_size.clone(),
        );
        // Known label values start at zero, so dashboards see them before the first event.
        let states = STATES.map(|state| cache_state.get_or_create(&StateLabel { state }).clone());
        for result in ["success", "failure", "skipped"] {
            let _ = local_validation.get_or_create(&ResultLabel { result });
        }
        Self {
            registry,
            http_response,
            known_codes: Default::default(),
            cache_state,
            states,
            cache_errors,
            local_validation,
            upstream_calls,
            request_duration,
            upstream_duration,
            cache_size,
            listeners,
        }
    }

    pub(crate) fn http_response(&self, code: u16) {
        let known = KNOWN_CODES.iter().position(|&c| c == code);
        if let Some(slot) = known.and_then(|i| self.known_codes.get(i)) {
            slot.get_or_init(|| {
                self.http_response
                    .get_or_create(&CodeLabel {
                        code: code.to_string(),
                    })
                    .clone()
            })
            .inc();
            return;
        }
        self.http_response
            .get_or_create(&CodeLabel {
                code: code.to_string(),
            })
            .inc();
    }

    /// `state` ∈ `hit`, `miss`, `refresh`, `evicted`.
    pub(crate) fn cache_state(&self, state: &'static str) {
        match STATES
            .iter()
            .position(|&s| s == state)
            .and_then(|i| self.states.get(i))
        {
            Some(counter) => counter.inc(),
            None => self.cache_state.get_or_create(&StateLabel { state }).inc(),
        };
    }

    pub(crate) fn cache_error(&self, recoverable: bool, code: &str) {
        let r#type = if recoverable {
            "Recoverable"
        } else {
            "NonRecoverable"
        };
        self.cache_errors
            .get_or_create(&CacheErrorLabel {
                r#type,
                code: code.to_owned(),
            })
            .inc();
    }

    /// `result` ∈ `success`, `failure`, `skipped`.
    pub(crate) fn local_validation(&self, result: &'static str) {
        self.local_validation
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub(crate) fn upstream_call(&self, result: &'static str) {
        self.upstream_calls
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// OpenMetrics text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
