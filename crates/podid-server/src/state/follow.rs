//! Keeps in-memory indexes current by following the store's change feed.
//!
//! Every replica's indexes are fed the same way: a full `range` at start, then each committed
//! change in revision order. A writer that needs read-your-writes waits until its commit revision
//! has been applied ([`Follower::wait_for`]), so there is one update path for local and remote
//! writes alike.

use std::sync::Arc;
use std::time::Duration;

use podid_store::{Event, KeyValue, Revision, Store};
use tokio::sync::{broadcast, watch};

/// An index built from the keys under one prefix.
pub(crate) trait Index: Send + Sync + 'static {
    fn prefix(&self) -> &'static str;
    /// Replaces the whole index with this snapshot of the prefix.
    fn load(&self, kvs: &[KeyValue]);
    /// Applies one change under the prefix.
    fn apply(&self, event: &Event);
}

/// Follows a store's change feed into a set of indexes.
pub(crate) struct Follower {
    applied: watch::Receiver<Revision>,
}

/// How long a writer waits for its own commit to reach the indexes before answering anyway.
const WAIT_FOR_APPLY: Duration = Duration::from_secs(5);

impl Follower {
    /// Loads every index and starts following. Subscribes before the first `range` so no change
    /// falls between the snapshot and the feed.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        indexes: Vec<Arc<dyn Index>>,
    ) -> Result<Self, podid_store::Error> {
        let rx = store.subscribe();
        let revision = load_all(store.as_ref(), &indexes).await?;
        let (tx, applied) = watch::channel(revision);
        tokio::spawn(follow(store, indexes, rx, tx));
        Ok(Self { applied })
    }

    /// Waits until the indexes reflect `revision`.
    pub(crate) async fn wait_for(&self, revision: Revision) {
        let mut rx = self.applied.clone();
        let _ = tokio::time::timeout(WAIT_FOR_APPLY, rx.wait_for(|r| *r >= revision)).await;
    }
}

async fn load_all(
    store: &dyn Store,
    indexes: &[Arc<dyn Index>],
) -> Result<Revision, podid_store::Error> {
    let (kvs, revision) = store.range("").await?;
    for index in indexes {
        let prefix = index.prefix();
        let start = kvs.partition_point(|kv| kv.key.as_str() < prefix);
        let end = start
            + kvs
                .get(start..)
                .unwrap_or_default()
                .partition_point(|kv| kv.key.starts_with(prefix));
        index.load(kvs.get(start..end).unwrap_or_default());
    }
    Ok(revision)
}

/// First wait before retrying a failed reload; doubles up to [`RELOAD_BACKOFF_MAX`].
const RELOAD_BACKOFF: Duration = Duration::from_millis(100);
const RELOAD_BACKOFF_MAX: Duration = Duration::from_secs(5);

async fn follow(
    store: Arc<dyn Store>,
    indexes: Vec<Arc<dyn Index>>,
    mut rx: broadcast::Receiver<Arc<podid_store::Change>>,
    tx: watch::Sender<Revision>,
) {
    loop {
        match rx.recv().await {
            Ok(change) => {
                if change.revision <= *tx.borrow() {
                    continue;
                }
                for event in &change.events {
                    let key = match event {
                        Event::Put(kv) => kv.key.as_str(),
                        Event::Delete { key, .. } => key.as_str(),
                    };
                    for index in indexes.iter().filter(|i| key.starts_with(i.prefix())) {
                        index.apply(event);
                    }
                }
                tx.send_replace(change.revision);
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "index follower lagged behind the store; reloading");
                let revision = reload_until_loaded(store.as_ref(), &indexes).await;
                tx.send_replace(revision);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Reloads every index from a fresh snapshot, retrying with backoff until the store answers:
/// after a lag the indexes are known to be stale, so applying later changes on top of them
/// would serve wrong answers indefinitely. Changes committed meanwhile stay queued in the
/// feed; those at or below the snapshot's revision are skipped when they arrive.
async fn reload_until_loaded(store: &dyn Store, indexes: &[Arc<dyn Index>]) -> Revision {
    let mut backoff = RELOAD_BACKOFF;
    loop {
        match load_all(store, indexes).await {
            Ok(revision) => return revision,
            Err(error) => {
                tracing::error!(%error, retry_in_ms = backoff.as_millis(), "reloading indexes failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RELOAD_BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests;
