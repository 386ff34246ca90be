//! Key-value behaviour of the SQLite store. The kill -9 test lives in `tests/kill9.rs`.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use tokio::sync::broadcast::error::TryRecvError;

use super::{SqliteStore, schema};
use crate::{Compare, Error, Event, MAX_TXN_OPS, Store, Txn, TxnOutcome};

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("podid.db"))
        .await
        .unwrap();
    (dir, store)
}

fn committed(outcome: TxnOutcome) -> u64 {
    match outcome {
        TxnOutcome::Committed { revision } => revision,
        other => panic!("expected commit, got {other:?}"),
    }
}

#[tokio::test]
async fn too_new_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podid.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let future = i64::try_from(schema::MIGRATIONS.len()).unwrap() + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    match SqliteStore::open(&path).await {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (future, future - 1));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_txn_is_refused_before_writing() {
    let (_dir, store) = fresh().await;
    let mut txn = Txn::new();
    for i in 0..=MAX_TXN_OPS {
        txn = txn.put(format!("k{i}"), "v");
    }
    assert!(matches!(store.txn(txn).await, Err(Error::TooLarge { .. })));
    let big = Txn::new().put("k", vec![0u8; crate::MAX_VALUE_BYTES + 1]);
    assert!(matches!(store.txn(big).await, Err(Error::TooLarge { .. })));
    assert_eq!(store.range("").await.unwrap(), (vec![], 0));
}

#[tokio::test]
async fn failed_compare_writes_nothing() {
    let (_dir, store) = fresh().await;
    let rev = committed(store.txn(Txn::new().put("a", "1")).await.unwrap());
    let mut feed = store.subscribe();
    let txn = Txn::new()
        .when(Compare::Present("a".into()))
        .when(Compare::Absent("a".into()))
        .put("a", "2")
        .put("b", "2")
        .delete("a");
    assert_eq!(
        store.txn(txn).await.unwrap(),
        TxnOutcome::Failed { failed_compare: 1 }
    );
    let (kvs, now) = store.range("").await.unwrap();
    assert_eq!(now, rev);
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].value.as_ref(), b"1");
    assert!(matches!(feed.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test]
async fn compares_hold_and_fail_both_ways() {
    let (_dir, store) = fresh().await;
    let absent = |k: &str| Txn::new().when(Compare::Absent(k.into()));
    let present = |k: &str| Txn::new().when(Compare::Present(k.into()));
    let at = |k: &str, r| Txn::new().when(Compare::ModRevision(k.into(), r));
    let failed = TxnOutcome::Failed { failed_compare: 0 };

    assert_eq!(store.txn(present("k")).await.unwrap(), failed);
    assert_eq!(store.txn(at("k", 0)).await.unwrap(), failed);
    let r1 = committed(store.txn(absent("k").put("k", "1")).await.unwrap());
    assert_eq!(store.txn(absent("k").put("k", "x")).await.unwrap(), failed);
    assert_eq!(
        store.txn(at("k", r1 + 1).put("k", "x")).await.unwrap(),
        failed
    );
    let r2 = committed(store.txn(at("k", r1).put("k", "2")).await.unwrap());
    assert!(r2 > r1);
    assert_eq!(store.txn(at("k", r1).put("k", "x")).await.unwrap(), failed);
    // Compares only, no ops: commits nothing, reports the current revision.
    assert_eq!(committed(store.txn(present("k")).await.unwrap()), r2);
    let r3 = committed(store.txn(present("k").delete("k")).await.unwrap());
    assert!(r3 > r2);
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(store.txn(present("k")).await.unwrap(), failed);
}

#[tokio::test]
async fn deleting_an_absent_key_changes_nothing() {
    let (_dir, store) = fresh().await;
    let rev = committed(store.txn(Txn::new().put("a", "1")).await.unwrap());
    let mut feed = store.subscribe();
    assert_eq!(
        committed(store.txn(Txn::new().delete("nope")).await.unwrap()),
        rev
    );
    assert!(matches!(feed.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test]
async fn revisions_increase_and_changes_arrive_in_order() {
    let (_dir, store) = fresh().await;
    let mut feed = store.subscribe();
    let mut revs = Vec::new();
    for i in 0..20 {
        let txn = Txn::new()
            .put(format!("k{i}"), format!("{i}"))
            .delete(format!("k{}", i + 1));
        let txn = if i % 2 == 0 {
            txn.put(format!("k{}", i + 1), "next")
        } else {
            txn
        };
        revs.push(committed(store.txn(txn).await.unwrap()));
    }
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
    for (i, rev) in revs.iter().enumerate() {
        let change = feed.recv().await.unwrap();
        assert_eq!(change.revision, *rev);
        let Event::Put(kv) = &change.events[0] else {
            panic!("first event is the put")
        };
        assert_eq!(
            (kv.key.as_str(), kv.mod_revision),
            (format!("k{i}").as_str(), *rev)
        );
        // Even i: put k{i}, delete k{i+1} (absent: no event), put k{i+1}. Odd i: put k{i}
        // (written by i-1), delete k{i+1} (absent).
        assert_eq!(change.events.len(), if i % 2 == 0 { 2 } else { 1 });
    }
    assert!(matches!(feed.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test]
async fn range_is_by_prefix_with_its_snapshot_revision() {
    let (_dir, store) = fresh().await;
    for k in ["a/1", "a/2", "a0", "a", "b/1", "a/\u{10ffff}", "a/3"] {
        store.txn(Txn::new().put(k, k)).await.unwrap();
    }
    let last = committed(store.txn(Txn::new().delete("a/3")).await.unwrap());
    let (kvs, rev) = store.range("a/").await.unwrap();
    let keys: Vec<_> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a/1", "a/2", "a/\u{10ffff}"]);
    // The delete left no row but still advanced the snapshot revision.
    assert_eq!(rev, last);
    assert_eq!(store.range("").await.unwrap().0.len(), 6);
    assert!(store.range("c").await.unwrap().0.is_empty());
}

#[tokio::test]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/podid.db");
    let store = SqliteStore::open(&path).await.unwrap();
    committed(
        store
            .txn(Txn::new().put("x", "1").put("y", "2"))
            .await
            .unwrap(),
    );
    let last = committed(store.txn(Txn::new().delete("y")).await.unwrap());
    let before = store.range("").await.unwrap();
    drop(store);

    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.range("").await.unwrap(), before);
    assert_eq!(store.schema_version().await.unwrap(), 3);
    // Revisions continue from where the old instance stopped.
    assert_eq!(
        committed(store.txn(Txn::new().put("z", "3")).await.unwrap()),
        last + 1
    );
}

#[tokio::test]
async fn conflicting_creates_exactly_one_wins() {
    let (_dir, store) = fresh().await;
    let store = Arc::new(store);
    let create = |v: &'static str| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .txn(
                    Txn::new()
                        .when(Compare::Absent("same".into()))
                        .put("same", v),
                )
                .await
        })
    };
    let (a, b) = (create("a"), create("b"));
    let outcomes = [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()];
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, TxnOutcome::Committed { .. }))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_txns_group_commit_with_unique_revisions() {
    const N: usize = 2000;
    let (_dir, store) = fresh().await;
    let store = Arc::new(store);
    let mut feed = store.subscribe();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("assoc/{i}");
                store
                    .txn(Txn::new().when(Compare::Absent(key.clone())).put(key, "v"))
                    .await
            })
        })
        .collect();
    let mut revs = Vec::with_capacity(N);
    for t in tasks {
        revs.push(committed(t.await.unwrap().unwrap()));
    }
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(revs.len(), N);
    assert_eq!(store.range("assoc/").await.unwrap().0.len(), N);
    let stats = store.writer_stats();
    assert_eq!(stats.requests, u64::try_from(N).unwrap());
    assert!(
        stats.largest_batch > 1 && stats.batches < stats.requests,
        "{stats:?}"
    );
    // The feed carries every revision once, in order.
    let mut seen = Vec::with_capacity(N);
    for _ in 0..N {
        seen.push(feed.recv().await.unwrap().revision);
    }
    assert_eq!(seen, revs);
}

#[tokio::test]
async fn bad_location_is_refused() {
    for loc in ["", "sqlite:", "etcd://x", "/var/lib/podid.db"] {
        assert!(
            matches!(crate::open(loc).await, Err(Error::BadLocation(_))),
            "{loc}"
        );
    }
}
