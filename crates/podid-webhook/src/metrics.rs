//! Prometheus metrics: admissions by outcome, association syncs by result, the number of
//! associations known and the age of the last good sync, the service-account watch, and both
//! listeners' connections (`podid_webhook_connections_refused_total`,
//! `podid_webhook_connection_timeouts_total`, `podid_webhook_connections_open`).

use podid_listener::ListenerMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::review::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Every metric the webhook exports, and the registry that encodes them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    admissions: Family<OutcomeLabel, Counter>,
    syncs: Family<ResultLabel, Counter>,
    pub(crate) associations: Gauge,
    /// Seconds since the last good sync (−1 before the first), set just before each scrape.
    pub(crate) last_sync_age: Gauge<f64, AtomicU64>,
    /// Service accounts in the watched copy.
    pub(crate) service_accounts: Gauge,
    /// Failed lists and watches of service accounts (each retried with backoff).
    pub(crate) service_account_watch_errors: Counter,
    /// Pods mutated without their service account's annotations (not delivered in time).
    pub(crate) service_account_unknown: Counter,
    /// Both listeners' connection metrics (`listener="https"|"metrics"`).
    pub(crate) listeners: ListenerMetrics,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("podid_webhook");
        let admissions = Family::<OutcomeLabel, Counter>::default();
        let syncs = Family::<ResultLabel, Counter>::default();
        let associations = Gauge::default();
        let last_sync_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "admissions",
            "Admission reviews answered, by outcome (mutated, untouched, error)",
            admissions.clone(),
        );
        registry.register(
            "association_syncs",
            "Full syncs of the cluster's Pod Identity associations, by result",
            syncs.clone(),
        );
        registry.register(
            "associations",
            "Service accounts with an association in the last good sync",
            associations.clone(),
        );
        registry.register(
            "association_sync_age_seconds",
            "Seconds since the last good association sync (-1: none yet)",
            last_sync_age.clone(),
        );
        let service_accounts = Gauge::default();
        let service_account_watch_errors = Counter::default();
        let service_account_unknown = Counter::default();
        registry.register(
            "service_accounts",
            "Service accounts in the webhook's watched copy",
            service_accounts.clone(),
        );
        registry.register(
            "service_account_watch_errors",
            "Failed lists or watches of service accounts (each is retried with backoff)",
            service_account_watch_errors.clone(),
        );
        registry.register(
            "service_account_unknown",
            "Pods mutated without their service account's annotations because the watch had not delivered it within the grace period",
            service_account_unknown.clone(),
        );
        // Start every label at zero so dashboards and alerts see them before the first event.
        for outcome in [Outcome::Mutated, Outcome::Untouched, Outcome::Error] {
            admissions
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.as_str(),
                })
                .get();
        }
        for result in ["success", "failure"] {
            syncs.get_or_create(&ResultLabel { result }).get();
        }
        last_sync_age.set(-1.0);
        let listeners = ListenerMetrics::new();
        listeners.register(&mut registry);
        Self {
            registry,
            admissions,
            syncs,
            associations,
            last_sync_age,
            service_accounts,
            service_account_watch_errors,
            service_account_unknown,
            listeners,
        }
    }

    pub(crate) fn admission(&self, outcome: Outcome) {
        self.admissions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub(crate) fn sync(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.syncs.get_or_create(&ResultLabel { result }).inc();
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
