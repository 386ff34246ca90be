//! [`Bounds`]: which new connections a listener admits, under its global and per-client caps.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::limits::Limits;
use crate::metrics::{ListenerMetrics, Stats};

/// One listener's limits, its open-connection counts and its metric handles. Clones share the
/// counts: the agent gives its IPv4 and IPv6 credential listeners one `Bounds`, so the caps
/// cover both together.
#[derive(Debug, Clone)]
pub struct Bounds {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    counts: Mutex<Counts>,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Counts {
    open: u32,
    /// Open connections per client; an entry is removed when its count returns to zero, so
    /// the map holds at most `max_connections` entries.
    per_client: HashMap<IpAddr, u32>,
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener holds `max_connections` already.
    Limit,
    /// The client holds `max_connections_per_client` already.
    PerClientLimit,
}

/// An admitted connection's slot, given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    bounds: Bounds,
    client: IpAddr,
}

impl Bounds {
    /// Limits for the listener labelled `listener` in `metrics`.
    pub fn new(limits: Limits, metrics: &ListenerMetrics, listener: &'static str) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                counts: Mutex::new(Counts::default()),
                stats: metrics.stats(listener),
            }),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Takes a slot for a connection from `client`, or says which cap is full. Counted in the
    /// metrics either way.
    pub(crate) fn admit(&self, client: IpAddr) -> Result<Permit, Refusal> {
        // An IPv4 client of a dual-stack socket shows up as ::ffff:a.b.c.d; count it as itself.
        let client = client.to_canonical();
        let limits = &self.inner.limits;
        let admitted = {
            let mut counts = self.inner.counts.lock();
            if counts.open >= limits.max_connections.get() {
                Err(Refusal::Limit)
            } else if let Some(cap) = limits.max_connections_per_client {
                let held = counts.per_client.entry(client).or_insert(0);
                if *held >= cap.get() {
                    Err(Refusal::PerClientLimit)
                } else {
                    *held += 1;
                    counts.open += 1;
                    Ok(())
                }
            } else {
                counts.open += 1;
                Ok(())
            }
        };
        match admitted {
            Ok(()) => {
                self.inner.stats.opened();
                Ok(Permit {
                    bounds: self.clone(),
                    client,
                })
            }
            Err(refusal) => {
                self.inner.stats.refused(refusal);
                Err(refusal)
            }
        }
    }

    fn release(&self, client: IpAddr) {
        {
            let mut counts = self.inner.counts.lock();
            counts.open = counts.open.saturating_sub(1);
            if self.inner.limits.max_connections_per_client.is_some()
                && let Entry::Occupied(mut held) = counts.per_client.entry(client)
            {
                *held.get_mut() = held.get().saturating_sub(1);
                if *held.get() == 0 {
                    held.remove();
                }
            }
        }
        self.inner.stats.closed();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.bounds.release(self.client);
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use super::*;

    fn bounds(max: u32, per_client: Option<u32>) -> (Bounds, ListenerMetrics) {
        let metrics = ListenerMetrics::new();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            tls_handshake_timeout: Duration::from_secs(1),
            max_connections: NonZeroU32::new(max).unwrap(),
            max_connections_per_client: per_client.and_then(NonZeroU32::new),
        };
        (Bounds::new(limits, &metrics, "test"), metrics)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn global_cap_refuses_until_a_slot_is_given_back() {
        let (b, metrics) = bounds(2, None);
        let first = b.admit(ip("10.0.0.1")).unwrap();
        let _second = b.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(b.admit(ip("10.0.0.3")).unwrap_err(), Refusal::Limit);
        drop(first);
        assert!(b.admit(ip("10.0.0.3")).is_ok());
        let text = metrics.encode_for_test();
        assert!(
            text.contains(r#"connections_refused_total{listener="test",reason="limit"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn per_client_cap_leaves_room_for_other_clients() {
        let (b, metrics) = bounds(10, Some(2));
        let held: Vec<_> = (0..2).map(|_| b.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(
            b.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::PerClientLimit
        );
        // The same client over a dual-stack socket is the same client.
        assert_eq!(
            b.admit(ip("::ffff:10.0.0.1")).unwrap_err(),
            Refusal::PerClientLimit
        );
        let other = b.admit(ip("10.0.0.2")).unwrap();
        drop(held);
        assert!(b.admit(ip("10.0.0.1")).is_ok());
        drop(other);
        assert!(b.inner.counts.lock().per_client.len() <= 1);
        let text = metrics.encode_for_test();
        assert!(
            text.contains(
                r#"connections_refused_total{listener="test",reason="per_client_limit"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"connections_open{listener="test"} 0"#),
            "{text}"
        );
    }
}
