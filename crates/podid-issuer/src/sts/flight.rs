//! Single flight and reuse of issued sessions, by key.
//!
//! Concurrent requests for the same key share one upstream call (the first starts it, the rest
//! await the same shared future), and a session is handed out again while more than the
//! refresh margin of its lifetime remains. Failures are shared with the requests that were
//! waiting for them, never cached. The map is bounded: expired entries are pruned every
//! [`PRUNE_EVERY`] insertions, and when it still holds `capacity` keys a new key is fetched
//! without being remembered.
//!
//! The shared future records its own result in the map, so a request that gives up (its client
//! went away) neither cancels the call for the others nor leaves a stale in-flight slot.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;
use time::OffsetDateTime;

/// Insertions between two sweeps of expired entries.
pub const PRUNE_EVERY: u64 = 1024;

/// Something with an expiry.
pub trait Expiring {
    fn expires_at(&self) -> OffsetDateTime;
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A session issued earlier, with more than the margin left.
    Reused,
    /// Another request's upstream call, in flight when this one arrived.
    Joined,
    /// This request's own upstream call.
    Fetched,
    /// Its own call, not remembered (the map is full).
    Uncached,
}

type Flight<V, E> = Shared<BoxFuture<'static, Result<Arc<V>, E>>>;

enum Slot<V, E> {
    Ready(Arc<V>),
    Flying(Flight<V, E>),
}

struct Map<K, V, E> {
    slots: HashMap<K, Slot<V, E>>,
    inserts: u64,
}

/// Single flight and reuse for values of type `V` keyed by `K`.
pub struct Flights<K, V, E> {
    map: Arc<Mutex<Map<K, V, E>>>,
    margin: Duration,
    capacity: usize,
}

impl<K, V, E> std::fmt::Debug for Flights<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("margin", &self.margin)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

enum Plan<V, E> {
    Done(Arc<V>),
    Await(Flight<V, E>, Outcome),
}

impl<K, V, E> Flights<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Expiring + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Reuse while more than `margin` of a session's life remains; remember at most `capacity`
    /// keys.
    pub fn new(margin: Duration, capacity: usize) -> Self {
        Self {
            map: Arc::new(Mutex::new(Map {
                slots: HashMap::new(),
                inserts: 0,
            })),
            margin,
            capacity,
        }
    }

    /// The session for `key`: reused, joined, or fetched with `fetch` (called at most once).
    pub async fn get<F, Fut>(
        &self,
        key: K,
        now: OffsetDateTime,
        fetch: F,
    ) -> (Result<Arc<V>, E>, Outcome)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let plan = self.plan(key, now, fetch);
        match plan {
            Plan::Done(v) => (Ok(v), Outcome::Reused),
            Plan::Await(flight, outcome) => (flight.await, outcome),
        }
    }

    /// Keys remembered (in flight or ready), for tests and metrics.
    pub fn len(&self) -> usize {
        self.map.lock().slots.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn plan<F, Fut>(&self, key: K, now: OffsetDateTime, fetch: F) -> Plan<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let mut map = self.map.lock();
        match map.slots.get(&key) {
            Some(Slot::Ready(v)) if fresh(v.as_ref(), now, self.margin) => {
                return Plan::Done(Arc::clone(v));
            }
            Some(Slot::Flying(flight)) => return Plan::Await(flight.clone(), Outcome::Joined),
            _ => {}
        }
        map.inserts = map.inserts.wrapping_add(1);
        let full = !map.slots.contains_key(&key) && map.slots.len() >= self.capacity;
        if full || map.inserts.is_multiple_of(PRUNE_EVERY) {
            let margin = self.margin;
            map.slots.retain(|_, slot| match slot {
                Slot::Ready(v) => fresh(v.as_ref(), now, margin),
                Slot::Flying(_) => true,
            });
        }
        let fetched = fetch();
        if !map.slots.contains_key(&key) && map.slots.len() >= self.capacity {
            let alone = async move { fetched.await.map(Arc::new) }.boxed().shared();
            return Plan::Await(alone, Outcome::Uncached);
        }
        let weak = Arc::downgrade(&self.map);
        let margin = self.margin;
        let slot_key = key.clone();
        let flight = async move {
            let result = fetched.await.map(Arc::new);
            if let Some(map) = weak.upgrade() {
                let mut map = map.lock();
                match &result {
                    Ok(v) if fresh(v.as_ref(), now, margin) => {
                        map.slots.insert(slot_key, Slot::Ready(Arc::clone(v)));
                    }
                    _ => {
                        map.slots.remove(&slot_key);
                    }
                }
            }
            result
        }
        .boxed()
        .shared();
        map.slots.insert(key, Slot::Flying(flight.clone()));
        Plan::Await(flight, Outcome::Fetched)
    }
}

/// More than `margin` left at `now`?
fn fresh<V: Expiring>(v: &V, now: OffsetDateTime, margin: Duration) -> bool {
    v.expires_at() - now > margin
}

#[cfg(test)]
mod tests;
