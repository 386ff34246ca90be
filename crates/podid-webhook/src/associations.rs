//! The webhook's copy of the cluster's Pod Identity associations: an immutable set swapped
//! whole behind an `Arc` after each full sync, so an admission reads it without waiting on
//! anything, and the sync state that decides readiness.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

/// The (namespace, service account) pairs that have an association.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AssociationSet {
    // Keyed by namespace so a lookup with two `&str` needs no allocation.
    by_namespace: HashMap<String, HashSet<String>>,
    len: usize,
}

impl AssociationSet {
    /// The set of these pairs (duplicates, from several associations of one service account,
    /// count once).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut set = Self::default();
        for (namespace, service_account) in pairs {
            if set
                .by_namespace
                .entry(namespace)
                .or_default()
                .insert(service_account)
            {
                set.len += 1;
            }
        }
        set
    }

    /// Whether this service account has an association.
    pub fn contains(&self, namespace: &str, service_account: &str) -> bool {
        self.by_namespace
            .get(namespace)
            .is_some_and(|s| s.contains(service_account))
    }

    /// How many distinct pairs the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether admissions can be trusted to see the cluster's associations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The last full sync is recent enough.
    Ready,
    /// No full sync has succeeded yet.
    NeverSynced,
    /// Syncs have failed for longer than the staleness bound; the last good set is still used.
    Stale { since_success: Duration },
}

/// The shared association set and its sync state.
#[derive(Debug)]
pub struct Associations {
    current: RwLock<Arc<AssociationSet>>,
    last_success: Mutex<Option<Instant>>,
    max_staleness: Duration,
}

impl Associations {
    /// An empty, not-yet-synced copy that turns stale `max_staleness` after its last good sync.
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            current: RwLock::new(Arc::new(AssociationSet::default())),
            last_success: Mutex::new(None),
            max_staleness,
        }
    }

    /// The set admissions decide with now.
    pub fn snapshot(&self) -> Arc<AssociationSet> {
        Arc::clone(&self.current.read())
    }

    /// Installs the result of a full sync that finished at `now`.
    pub fn replace(&self, set: AssociationSet, now: Instant) {
        *self.current.write() = Arc::new(set);
        *self.last_success.lock() = Some(now);
    }

    /// Time since the last good sync, if there was one.
    pub fn since_success(&self, now: Instant) -> Option<Duration> {
        self.last_success
            .lock()
            .map(|t| now.saturating_duration_since(t))
    }

    /// Readiness at `now`.
    pub fn readiness(&self, now: Instant) -> Readiness {
        match self.since_success(now) {
            None => Readiness::NeverSynced,
            Some(age) if age > self.max_staleness => Readiness::Stale { since_success: age },
            Some(_) => Readiness::Ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn set_lookup_and_len() {
        let set = AssociationSet::new([pair("ns", "a"), pair("ns", "a"), pair("other", "a")]);
        assert_eq!(set.len(), 2);
        assert!(set.contains("ns", "a"));
        assert!(set.contains("other", "a"));
        assert!(!set.contains("ns", "b"));
        assert!(!set.contains("nope", "a"));
        assert!(AssociationSet::default().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_follows_syncs_and_staleness() {
        let a = Associations::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(a.readiness(t0), Readiness::NeverSynced);
        a.replace(AssociationSet::new([pair("n", "s")]), t0);
        assert!(a.snapshot().contains("n", "s"));
        assert_eq!(a.readiness(t0 + Duration::from_secs(60)), Readiness::Ready);
        assert_eq!(
            a.readiness(t0 + Duration::from_secs(61)),
            Readiness::Stale {
                since_success: Duration::from_secs(61)
            }
        );
        // The last good set is still served while stale.
        assert!(a.snapshot().contains("n", "s"));
        a.replace(AssociationSet::default(), t0 + Duration::from_secs(70));
        assert_eq!(a.readiness(t0 + Duration::from_secs(71)), Readiness::Ready);
        assert!(!a.snapshot().contains("n", "s"));
    }
}
