//! The follower against a scripted store: a lagged feed must end in a full reload, even when
//! the first reloads fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use podid_store::{Change, Event, KeyValue, Revision, Store, Txn, TxnOutcome};
use tokio::sync::broadcast;

use super::{Follower, Index};

/// A store whose snapshot and feed the test sets by hand; `range` fails while `failures` > 0.
#[derive(Debug)]
struct ScriptedStore {
    snapshot: Mutex<(Vec<KeyValue>, Revision)>,
    feed: broadcast::Sender<Arc<Change>>,
    failures: AtomicUsize,
    ranges: AtomicUsize,
}

impl ScriptedStore {
    fn new(feed_capacity: usize) -> Self {
        Self {
            snapshot: Mutex::new((Vec::new(), 0)),
            feed: broadcast::channel(feed_capacity).0,
            failures: AtomicUsize::new(0),
            ranges: AtomicUsize::new(0),
        }
    }

    /// Commits `key` at `revision`: the snapshot changes and the change is published.
    fn put(&self, key: &str, revision: Revision) {
        let kv = KeyValue {
            key: key.to_owned(),
            value: Bytes::from_static(b"v"),
            mod_revision: revision,
        };
        {
            let mut snapshot = self.snapshot.lock();
            snapshot.0.push(kv.clone());
            snapshot.1 = revision;
        }
        let _ = self.feed.send(Arc::new(Change {
            revision,
            events: vec![Event::Put(kv)],
        }));
    }
}

#[async_trait::async_trait]
impl Store for ScriptedStore {
    async fn get(&self, _key: &str) -> podid_store::Result<Option<KeyValue>> {
        Ok(None)
    }
    async fn range(&self, _prefix: &str) -> podid_store::Result<(Vec<KeyValue>, Revision)> {
        self.ranges.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(podid_store::Error::ReaderFailed);
        }
        Ok(self.snapshot.lock().clone())
    }
    async fn txn(&self, _txn: Txn) -> podid_store::Result<TxnOutcome> {
        Err(podid_store::Error::WriterGone)
    }
    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.feed.subscribe()
    }
}

/// Counts keys: `load` replaces, `apply` adds.
#[derive(Default)]
struct Keys(Mutex<Vec<String>>);

impl Index for Keys {
    fn prefix(&self) -> &'static str {
        "k/"
    }
    fn load(&self, kvs: &[KeyValue]) {
        *self.0.lock() = kvs.iter().map(|kv| kv.key.clone()).collect();
    }
    fn apply(&self, event: &Event) {
        if let Event::Put(kv) = event {
            self.0.lock().push(kv.key.clone());
        }
    }
}

#[tokio::test]
async fn changes_in_order_reach_the_index() {
    let store = Arc::new(ScriptedStore::new(16));
    let keys = Arc::new(Keys::default());
    let follower = Follower::start(store.clone(), vec![keys.clone()])
        .await
        .unwrap();
    store.put("k/a", 1);
    store.put("other/x", 2);
    follower.wait_for(2).await;
    assert_eq!(*keys.0.lock(), vec!["k/a".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn a_lagged_feed_reloads_until_the_store_answers() {
    // A feed of 2 slots and 6 changes published before the follower runs: it lags.
    let store = Arc::new(ScriptedStore::new(2));
    let keys = Arc::new(Keys::default());
    let follower = Follower::start(store.clone(), vec![keys.clone()])
        .await
        .unwrap();
    store.failures.store(3, Ordering::SeqCst);
    for revision in 1..=6 {
        store.put(&format!("k/{revision}"), revision);
    }
    follower.wait_for(6).await;
    let loaded = keys.0.lock().clone();
    assert_eq!(
        loaded.len(),
        6,
        "every key is in the index after the reload: {loaded:?}"
    );
    // One range at start, three failed reloads, one that succeeded.
    assert_eq!(store.ranges.load(Ordering::SeqCst), 5);
}
