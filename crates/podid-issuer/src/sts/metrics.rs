//! Prometheus metrics of the `sts` mode: upstream calls by result, sessions by how they were
//! served (fetched, joined, reused), and calls the token bucket queued or refused.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::UpstreamError;
use super::flight::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The counters; cheap to clone (each is an `Arc`).
#[derive(Debug, Clone)]
pub struct StsMetrics {
    calls: Family<ResultLabel, Counter>,
    sessions: Family<OutcomeLabel, Counter>,
    queued: Counter,
    throttled: Counter,
    latency: Histogram,
}

const RESULTS: [&str; 7] = [
    "ok",
    "access_denied",
    "throttled",
    "unavailable",
    "malformed",
    "too_large",
    "refused",
];
const OUTCOMES: [&str; 4] = ["fetched", "joined", "reused", "uncached"];

impl Default for StsMetrics {
    fn default() -> Self {
        let m = Self {
            calls: Family::default(),
            sessions: Family::default(),
            queued: Counter::default(),
            throttled: Counter::default(),
            latency: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        };
        // Every label starts at zero, so dashboards and alerts see them before the first event.
        for result in RESULTS {
            m.calls.get_or_create(&ResultLabel { result }).get();
        }
        for outcome in OUTCOMES {
            m.sessions.get_or_create(&OutcomeLabel { outcome }).get();
        }
        m
    }
}

impl StsMetrics {
    /// Adds the metrics to `registry` (under its prefix, e.g. `podid_sts_…`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "upstream_calls",
            "AssumeRole calls sent to upstream STS, by result",
            self.calls.clone(),
        );
        registry.register(
            "sessions",
            "Role sessions handed out, by how: fetched (own upstream call), joined (another request's call in flight), reused (issued earlier, more than the refresh margin left), uncached",
            self.sessions.clone(),
        );
        registry.register(
            "bucket_queued",
            "Upstream calls that waited for the account's token bucket",
            self.queued.clone(),
        );
        registry.register(
            "bucket_throttled",
            "Requests refused with ThrottlingException by the account's token bucket",
            self.throttled.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Duration of AssumeRole calls to upstream STS, retries included",
            self.latency.clone(),
        );
    }

    pub(crate) fn call(&self, result: &Result<(), &UpstreamError>, seconds: f64) {
        let result = match result {
            Ok(()) => "ok",
            Err(UpstreamError::AccessDenied { .. }) => "access_denied",
            Err(UpstreamError::Throttled { .. } | UpstreamError::RateLimited) => "throttled",
            Err(UpstreamError::Unavailable { .. }) => "unavailable",
            Err(UpstreamError::Malformed { .. }) => "malformed",
            Err(UpstreamError::PackedPolicyTooLarge { .. }) => "too_large",
            Err(UpstreamError::Refused { .. }) => "refused",
        };
        self.calls.get_or_create(&ResultLabel { result }).inc();
        self.latency.observe(seconds);
    }

    pub(crate) fn session(&self, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Fetched => "fetched",
            Outcome::Joined => "joined",
            Outcome::Reused => "reused",
            Outcome::Uncached => "uncached",
        };
        self.sessions.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub(crate) fn queued(&self) {
        self.queued.inc();
    }

    pub(crate) fn throttled(&self) {
        self.throttled.inc();
    }

    /// Upstream calls made so far, whatever their result (for tests and benchmarks).
    pub fn upstream_calls(&self) -> u64 {
        RESULTS
            .iter()
            .map(|result| self.calls.get_or_create(&ResultLabel { result }).get())
            .sum()
    }

    /// Sessions handed out with `outcome` (`fetched`, `joined`, `reused`, `uncached`).
    pub fn sessions(&self, outcome: &'static str) -> u64 {
        self.sessions.get_or_create(&OutcomeLabel { outcome }).get()
    }

    /// Requests the bucket refused.
    pub fn bucket_throttled(&self) -> u64 {
        self.throttled.get()
    }
}
