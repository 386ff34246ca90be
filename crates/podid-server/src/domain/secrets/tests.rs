use std::sync::Arc;

use podid_store::envelope::{Kek, KekSet};
use podid_store::{SqliteStore, Store, Txn};

use super::*;

const KEY: &str = "iam/key/AKIAEXAMPLEEXAMPLE01";
const PLAIN: &str = r#"{"access_key_id":"AKIAEXAMPLEEXAMPLE01","user_name":"node","secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","status":"Active","create_date":"2024-01-01T00:00:00Z"}"#;

fn kek(byte: u8) -> Kek {
    Kek::from_bytes(&[byte; 32]).unwrap()
}

fn secrets(current: u8, previous: &[u8]) -> Secrets {
    let previous = previous.iter().map(|b| kek(*b)).collect();
    Secrets::new(Arc::new(KekSet::new(kek(current), previous).unwrap()))
}

async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("podid.db"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

async fn put(store: &dyn Store, key: &str, value: &[u8]) {
    store
        .txn(Txn::new().put(key, value.to_vec()))
        .await
        .unwrap();
}

async fn value(store: &dyn Store, key: &str) -> Vec<u8> {
    store.get(key).await.unwrap().unwrap().value.to_vec()
}

fn is_secret(key: &str) -> bool {
    SECRET_PREFIXES.iter().any(|p| key.starts_with(p))
}

#[test]
fn only_access_keys_and_the_key_ring_are_secret() {
    assert!(is_secret(KEY));
    assert!(is_secret(KEYRING_KEY));
    for key in [
        "iam/user/node",
        "iam/role/r",
        "iam/policy/p",
        "assoc/c/a-1",
        "cluster/c",
    ] {
        assert!(!is_secret(key), "{key}");
    }
}

#[tokio::test]
async fn plaintext_rows_of_an_older_database_are_sealed_once() {
    let (store, _dir) = store().await;
    put(store.as_ref(), KEY, PLAIN.as_bytes()).await;
    put(store.as_ref(), KEYRING_KEY, br#"{"v":1,"keys":[]}"#).await;
    put(store.as_ref(), "iam/user/node", br#"{"name":"node"}"#).await;
    let s = secrets(1, &[]);
    let prepared = prepare(store.as_ref(), &s).await.unwrap();
    assert_eq!(
        (prepared.sealed, prepared.rewrapped, prepared.unchanged),
        (2, 0, 0)
    );
    let stored = value(store.as_ref(), KEY).await;
    assert!(is_sealed(&stored));
    assert!(!String::from_utf8_lossy(&stored).contains("wJalrXUtnFEMI"));
    let kv = store.get(KEY).await.unwrap().unwrap();
    assert_eq!(s.open(&kv).unwrap().as_slice(), PLAIN.as_bytes());
    // Records that are not secret stay as they were.
    assert_eq!(
        value(store.as_ref(), "iam/user/node").await,
        br#"{"name":"node"}"#
    );
    // A second start changes nothing.
    let again = prepare(store.as_ref(), &s).await.unwrap();
    assert_eq!((again.sealed, again.rewrapped, again.unchanged), (0, 0, 2));
}

#[tokio::test]
async fn a_wrong_kek_stops_the_start_and_names_both_keys() {
    let (store, _dir) = store().await;
    put(store.as_ref(), KEY, PLAIN.as_bytes()).await;
    prepare(store.as_ref(), &secrets(1, &[])).await.unwrap();
    let err = prepare(store.as_ref(), &secrets(2, &[])).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PrepareError::Open { .. }), "{text}");
    assert!(
        text.contains(&kek(1).id().to_string()) && text.contains(&kek(2).id().to_string()),
        "{text}"
    );
    assert!(text.contains("--previous-kek-file"), "{text}");
    // The failed start left the row as it was.
    let kv = store.get(KEY).await.unwrap().unwrap();
    assert_eq!(
        secrets(1, &[]).open(&kv).unwrap().as_slice(),
        PLAIN.as_bytes()
    );
}

#[tokio::test]
async fn a_row_moved_under_another_key_stops_the_start() {
    let (store, _dir) = store().await;
    let s = secrets(1, &[]);
    let sealed = s.seal(KEY, PLAIN.as_bytes()).unwrap();
    put(store.as_ref(), "iam/key/AKIAOTHER", &sealed).await;
    let err = prepare(store.as_ref(), &s).await.unwrap_err();
    assert!(err.to_string().contains("failed authentication"), "{err}");
}

#[tokio::test]
async fn rotation_rewraps_every_row_under_the_new_kek() {
    let (store, _dir) = store().await;
    put(store.as_ref(), KEY, PLAIN.as_bytes()).await;
    put(store.as_ref(), KEYRING_KEY, b"{}").await;
    prepare(store.as_ref(), &secrets(1, &[])).await.unwrap();
    let rotating = secrets(2, &[1]);
    let prepared = prepare(store.as_ref(), &rotating).await.unwrap();
    assert_eq!(
        (prepared.sealed, prepared.rewrapped, prepared.unchanged),
        (0, 2, 0)
    );
    // The old KEK can now be dropped; it no longer opens anything.
    let new = secrets(2, &[]);
    let prepared = prepare(store.as_ref(), &new).await.unwrap();
    assert_eq!(prepared.unchanged, 2);
    let kv = store.get(KEY).await.unwrap().unwrap();
    assert_eq!(new.open(&kv).unwrap().as_slice(), PLAIN.as_bytes());
    assert!(prepare(store.as_ref(), &secrets(1, &[])).await.is_err());
}

#[tokio::test]
async fn more_rows_than_one_transaction_holds_are_all_sealed() {
    let (store, _dir) = store().await;
    let rows = MAX_TXN_OPS + 5;
    for i in 0..rows {
        put(
            store.as_ref(),
            &format!("iam/key/AKIA{i:016}"),
            PLAIN.as_bytes(),
        )
        .await;
    }
    let prepared = prepare(store.as_ref(), &secrets(1, &[])).await.unwrap();
    assert_eq!(prepared.sealed, rows);
    let (kvs, _) = store.range("iam/key/").await.unwrap();
    assert!(kvs.iter().all(|kv| is_sealed(&kv.value)));
}

#[test]
fn a_plaintext_row_appearing_later_is_not_served() {
    let s = secrets(1, &[]);
    let kv = podid_store::KeyValue {
        key: KEY.into(),
        value: PLAIN.as_bytes().to_vec().into(),
        mod_revision: 1,
    };
    assert!(matches!(s.open(&kv), Err(EnvelopeError::NotSealed)));
}
