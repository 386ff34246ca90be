//! [`ListenerMetrics`]: refused connections, expired deadlines and open connections, labelled by
//! listener. Registered without a prefix; each service puts them under its own
//! (`pod_identity_`, `podid_server_`, `podid_webhook_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::activity::Phase;
use crate::admission::Refusal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabel {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabel {
    listener: &'static str,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// The connection metrics of every listener of one service.
#[derive(Debug, Clone, Default)]
pub struct ListenerMetrics {
    refused: Family<RefusedLabel, Counter>,
    timeouts: Family<TimeoutLabel, Counter>,
    open: Family<ListenerLabel, Gauge>,
}

/// One listener's handles into [`ListenerMetrics`], created up front so that counting costs no
/// label hashing, and so that every label value shows (as 0) before its first event.
#[derive(Debug)]
pub(crate) struct Stats {
    refused_limit: Counter,
    refused_per_client: Counter,
    timeout_header: Counter,
    timeout_idle: Counter,
    timeout_tls: Counter,
    open: Gauge,
}

impl ListenerMetrics {
    /// Empty metrics; listeners appear as [`crate::Bounds`] are created.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `connections_refused` (counter, by `listener` and `reason`: `limit`,
    /// `per_client_limit`), `connection_timeouts` (counter, by `listener` and `phase`:
    /// `header`, `idle`, `tls_handshake`) and `connections_open` (gauge, by `listener`) to
    /// `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections_refused",
            "Connections closed as soon as accepted because a connection limit was reached, by reason (limit, per_client_limit)",
            self.refused.clone(),
        );
        registry.register(
            "connection_timeouts",
            "Connections closed because a deadline passed, by phase (header, idle, tls_handshake)",
            self.timeouts.clone(),
        );
        registry.register(
            "connections_open",
            "Connections currently open",
            self.open.clone(),
        );
    }

    pub(crate) fn stats(&self, listener: &'static str) -> Stats {
        let refused = |reason| {
            self.refused
                .get_or_create(&RefusedLabel { listener, reason })
                .clone()
        };
        let timeout = |phase| {
            self.timeouts
                .get_or_create(&TimeoutLabel { listener, phase })
                .clone()
        };
        Stats {
            refused_limit: refused("limit"),
            refused_per_client: refused("per_client_limit"),
            timeout_header: timeout("header"),
            timeout_idle: timeout("idle"),
            timeout_tls: timeout("tls_handshake"),
            open: self.open.get_or_create(&ListenerLabel { listener }).clone(),
        }
    }

    #[cfg(test)]
    pub(crate) fn encode_for_test(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        text
    }
}

impl Stats {
    pub(crate) fn opened(&self) {
        self.open.inc();
    }

    pub(crate) fn closed(&self) {
        self.open.dec();
    }

    pub(crate) fn refused(&self, refusal: Refusal) {
        match refusal {
            Refusal::Limit => self.refused_limit.inc(),
            Refusal::PerClientLimit => self.refused_per_client.inc(),
        };
    }

    pub(crate) fn timed_out(&self, phase: Phase) {
        match phase {
            Phase::Header => self.timeout_header.inc(),
            Phase::Idle => self.timeout_idle.inc(),
            Phase::TlsHandshake => self.timeout_tls.inc(),
        };
    }
}
