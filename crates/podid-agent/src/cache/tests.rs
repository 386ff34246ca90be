//! The repeat-token fast path against a real cache whose upstream is unreachable: whatever it
//! serves, it served without an upstream call.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use podid_aws::sigv4::SigningCredentials;
use podid_token::{ObjectRef, UnverifiedClaims};
use tokio::time::Instant;

use super::{CredentialCache, Entry, EntryState};
use crate::config::AgentConfig;
use crate::keys::ClusterKeyStore;
use crate::metrics::Metrics;
use crate::nodecreds::NodeCredentialSource;
use crate::upstream::{EksAuth, http_client};

const NOW: i64 = 1_800_000_000;
const EXP: i64 = NOW + 3_600;

fn cache() -> Arc<CredentialCache> {
    let creds = SigningCredentials {
        access_key_id: "AKIDNODE".into(),
        secret_access_key: "node-secret".into(),
        session_token: None,
    };
    // Port 9 (discard) on loopback: nothing answers, so any upstream call would fail.
    let endpoint = "http://127.0.0.1:9".parse().unwrap();
    let config = AgentConfig::new("c", vec![endpoint], NodeCredentialSource::Static(creds));
    let http = http_client(&config).unwrap();
    let metrics = Arc::new(Metrics::new());
    let upstream = Arc::new(EksAuth::new(&config, http.clone(), Arc::clone(&metrics)).unwrap());
    let keys = Arc::new(ClusterKeyStore::new(&config, http));
    Arc::new(CredentialCache::new(&config, upstream, keys, metrics))
}

fn claims(uid: &str) -> UnverifiedClaims {
    UnverifiedClaims {
        namespace: Arc::from("ns"),
        service_account: Arc::from("sa"),
        pod: Some(ObjectRef {
            name: Arc::from("pod"),
            uid: Arc::from(uid),
        }),
        issued_at: Some(NOW),
        expires_at: EXP,
        not_before: Some(NOW),
    }
}

/// Cache `body` for pod `uid` under `token`, then serve it once through the slow path (which
/// records the token for the fast path).
async fn cached(cache: &Arc<CredentialCache>, uid: &str, token: &str, body: &'static str) {
    let token_arc: Arc<str> = Arc::from(token);
    let now = Instant::now();
    let entry = Arc::new(Entry {
        body: Bytes::from_static(body.as_bytes()),
        namespace: Arc::from("ns"),
        service_account: Arc::from("sa"),
        expires_at: now + Duration::from_secs(3_600),
        refresh_period: Duration::from_secs(1_800),
        association_id: Arc::from("a-1"),
        state: Mutex::new(EntryState {
            token: token_arc,
            last_used: now,
            next_refresh: now + Duration::from_secs(1_800),
            failures: 0,
            refreshing: false,
        }),
    });
    let entries = cache.entries.as_ref().unwrap();
    entries.insert(Arc::from(uid), entry).await;
    let slow = cache.credentials(token, &claims(uid)).await.unwrap();
    assert_eq!(slow, body.as_bytes());
}

#[tokio::test]
async fn a_repeated_token_is_served_without_parsing_or_upstream() {
    let cache = cache();
    assert_eq!(
        cache.serve_repeat(b"tok-a", NOW).await,
        None,
        "nothing recorded yet"
    );
    cached(&cache, "uid-a", "tok-a", "body-a").await;
    for _ in 0..3 {
        let body = cache.serve_repeat(b"tok-a", NOW).await;
        assert_eq!(body.as_deref(), Some(&b"body-a"[..]));
    }
    assert!(
        cache
            .metrics
            .encode()
            .contains("pod_identity_cache_state_total{state=\"hit\"} 4")
    );
}

#[tokio::test]
async fn a_repeated_token_is_refused_once_expired_or_before_nbf() {
    let cache = cache();
    cached(&cache, "uid-a", "tok-a", "body-a").await;
    assert!(cache.serve_repeat(b"tok-a", EXP - 1).await.is_some());
    // The handler then takes the slow path, which answers "token is expired".
    assert_eq!(cache.serve_repeat(b"tok-a", EXP).await, None);
    assert_eq!(cache.serve_repeat(b"tok-a", NOW - 1).await, None);
}

#[tokio::test]
async fn another_pods_token_or_a_variant_is_never_served_from_the_index() {
    let cache = cache();
    cached(&cache, "uid-a", "tok-a", "body-a").await;
    cached(&cache, "uid-b", "tok-b", "body-b").await;
    assert_eq!(cache.serve_repeat(b"tok-", NOW).await, None);
    assert_eq!(cache.serve_repeat(b"tok-a ", NOW).await, None);
    assert_eq!(cache.serve_repeat(b"tok-c", NOW).await, None);
    let b = cache.serve_repeat(b"tok-b", NOW).await;
    assert_eq!(b.as_deref(), Some(&b"body-b"[..]));
}

#[tokio::test]
async fn a_replaced_token_or_an_evicted_entry_leaves_the_fast_path() {
    let cache = cache();
    cached(&cache, "uid-a", "tok-a", "body-a").await;
    // The entry now holds another token (as after a rotation): the old one must be re-checked.
    let entries = cache.entries.as_ref().unwrap();
    let entry = entries.get("uid-a").await.unwrap();
    entry.state.lock().token = Arc::from("tok-a2");
    assert_eq!(cache.serve_repeat(b"tok-a", NOW).await, None);
    entry.state.lock().token = Arc::from("tok-a");
    assert!(cache.serve_repeat(b"tok-a", NOW).await.is_some());
    entries.invalidate("uid-a").await;
    entries.run_pending_tasks().await;
    assert_eq!(cache.serve_repeat(b"tok-a", NOW).await, None);
    let repeat = cache.repeat.as_ref().unwrap();
    assert_eq!(
        repeat.lookup(repeat.hash(b"tok-a"), b"tok-a", NOW),
        None,
        "record forgotten"
    );
}
