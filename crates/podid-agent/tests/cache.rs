//! The credential cache: hits, single flight, rotated tokens, refresh-ahead, eviction, idleness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Fake, Mode, config, start};
use podid_token::DevSigner;

#[tokio::test]
async fn repeated_requests_make_one_upstream_call() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    let first = agent.get(&token).await;
    for _ in 0..20 {
        assert_eq!(agent.get(&token).await, first);
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_pod_share_one_call() {
    let fake = Fake::start().await;
    fake.set_delay(Duration::from_millis(300));
    let agent = Arc::new(start(config(vec![fake.url.clone()])).await);
    let token = fake.token("ns", "sa", "p1");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (agent, token) = (Arc::clone(&agent), token.clone());
            tokio::spawn(async move { agent.get(&token).await })
        })
        .collect();
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"AccessKeyId\":\"ASIA1\""), "{body}");
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn rotated_token_is_served_locally_after_jwks_validation() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let (status, _, first) = agent.get(&fake.token("ns", "sa", "p1")).await;
    assert_eq!(status, 200);
    // kubelet rotated the token: same pod, new jti.
    let rotated = fake.token("ns", "sa", "p1");
    assert_eq!(agent.get(&rotated).await.2, first);
    assert_eq!(
        fake.calls(),
        1,
        "rotated token served without an upstream call"
    );
    assert!(fake.state.jwks_calls.load(Ordering::SeqCst) >= 1);
    assert!(
        agent
            .metrics_text()
            .await
            .contains("pod_identity_local_validation_total{result=\"success\"} 1")
    );
    // The JWKS was written to the state dir for the next start.
    let cached =
        std::fs::read_to_string(agent.state_dir.path().join("jwks-test-cluster.json")).unwrap();
    assert!(cached.contains(common::ISSUER));
}

#[tokio::test]
async fn rotated_token_with_a_bad_signature_goes_upstream() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    assert_eq!(agent.get(&fake.token("ns", "sa", "p1")).await.0, 200);
    let forger = DevSigner::generate().unwrap();
    let forged = common::mint(&forger, "ns", "sa", "p1", common::now());
    let (status, _, body) = agent.get(&forged).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("ASIA2"),
        "forged token not served from cache: {body}"
    );
    assert_eq!(fake.calls(), 2);
    assert!(
        agent
            .metrics_text()
            .await
            .contains("pod_identity_local_validation_total{result=\"failure\"} 1")
    );
}

#[tokio::test]
async fn rotated_token_for_another_service_account_goes_upstream() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    assert_eq!(agent.get(&fake.token("ns", "sa", "p1")).await.0, 200);
    let other = fake.token("ns", "other-sa", "p1");
    assert!(agent.get(&other).await.2.contains("ASIA2"));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn client_disconnect_does_not_cancel_the_shared_fetch() {
    let fake = Fake::start().await;
    fake.set_delay(Duration::from_millis(400));
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = impatient
        .get(format!("{}/v1/credentials", agent.base))
        .header("authorization", &token)
        .send()
        .await;
    assert!(gave_up.is_err(), "client should have timed out");
    // The fetch completes anyway and lands in the cache.
    wait_for(|| fake.state.completed.load(Ordering::SeqCst) == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = agent.get(&token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn active_pods_are_refreshed_ahead() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.max_credential_retention_before_renewal = Duration::from_secs(1);
    let agent = start(cfg).await;
    let token = fake.token("ns", "sa", "p1");
    for _ in 0..14 {
        assert_eq!(agent.get(&token).await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ~2.8 s of activity with a ≤1 s refresh period: at least two background refreshes, and
    // every request was served from the cache.
    assert!(fake.calls() >= 3, "calls = {}", fake.calls());
    let text = agent.metrics_text().await;
    assert!(
        text.contains("pod_identity_cache_state_total{state=\"miss\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pod_identity_cache_state_total{state=\"refresh\"}"),
        "{text}"
    );
    let (_, _, body) = agent.get(&token).await;
    assert!(
        !body.contains("\"ASIA1\""),
        "served credentials are the refreshed ones: {body}"
    );
}

#[tokio::test]
async fn idle_pods_are_not_refreshed() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.max_credential_retention_before_renewal = Duration::from_secs(1);
    let agent = start(cfg).await;
    assert_eq!(agent.get(&fake.token("ns", "sa", "p1")).await.0, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_idle = fake.calls();
    assert!(after_idle <= 3, "calls = {after_idle}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.calls(),
        after_idle,
        "an idle pod's entry kept being refreshed"
    );
}

#[tokio::test]
async fn invalid_token_during_refresh_evicts() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.max_credential_retention_before_renewal = Duration::from_secs(1);
    let agent = start(cfg).await;
    let token = fake.token("ns", "sa", "p1");
    assert_eq!(agent.get(&token).await.0, 200);
    fake.set_mode(Mode::Error {
        status: 400,
        code: "InvalidTokenException",
        message: "token revoked",
    });
    let mut refused = None;
    for _ in 0..40 {
        let (status, _, body) = agent.get(&token).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = refused.expect("cached credentials were never evicted");
    assert_eq!(status, 400);
    assert!(
        body.contains("(InvalidTokenException): token revoked, fault: client"),
        "{body}"
    );
    let text = agent.metrics_text().await;
    assert!(
        text.contains("pod_identity_cache_errors_total{type=\"NonRecoverable\",code=\"InvalidTokenException\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pod_identity_cache_state_total{state=\"evicted\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn recoverable_refresh_errors_keep_serving_the_cache() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.max_credential_retention_before_renewal = Duration::from_secs(1);
    let agent = start(cfg).await;
    let token = fake.token("ns", "sa", "p1");
    assert_eq!(agent.get(&token).await.0, 200);
    fake.set_mode(Mode::Error {
        status: 503,
        code: "ServiceUnavailableException",
        message: "down",
    });
    for _ in 0..15 {
        let (status, _, body) = agent.get(&token).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(fake.calls() > 1, "a refresh was attempted");
    let text = agent.metrics_text().await;
    assert!(
        text.contains("type=\"Recoverable\",code=\"ServiceUnavailableException\""),
        "{text}"
    );
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached");
}

// The repeat-token fast path (src/cache/repeat.rs) must answer exactly as the full path does.

#[tokio::test]
async fn a_repeated_token_still_meets_the_host_check_first() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    for _ in 0..3 {
        assert_eq!(agent.get(&token).await.0, 200);
    }
    let response = agent
        .http
        .get(format!("{}/v1/credentials", agent.base))
        .header("host", "evil.example")
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn old_and_rotated_tokens_alternating_are_all_served_from_the_cache() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let old = fake.token("ns", "sa", "p1");
    let (status, _, first) = agent.get(&old).await;
    assert_eq!(status, 200);
    let rotated = fake.token("ns", "sa", "p1");
    let other_pod = fake.token("ns", "sa", "p2");
    for token in [&old, &rotated, &old, &rotated, &rotated, &old] {
        assert_eq!(agent.get(token).await.2, first);
    }
    let (status, _, second) = agent.get(&other_pod).await;
    assert_eq!(status, 200);
    assert_ne!(second, first, "another pod never gets p1's credentials");
    for _ in 0..3 {
        assert_eq!(agent.get(&old).await.2, first);
        assert_eq!(agent.get(&other_pod).await.2, second);
        assert_eq!(agent.get(&rotated).await.2, first);
    }
    assert_eq!(fake.calls(), 2);
}
