use serde_json::{Value, json};

use super::*;
use crate::signer::{DevSigner, MintRequest};
use crate::testkit::{ISSUER, JwksServer, NOW, jwks, loopback_egress};
use crate::verify::{Verifier, VerifierConfig};

fn jwk_of(signer: &DevSigner) -> Value {
    serde_json::from_str::<Value>(signer.jwks()).unwrap()["keys"][0].clone()
}

fn remote_verifier(url: &str) -> Verifier {
    let keys = ClusterKeys::new(KeySource::Uri(url.to_owned()), loopback()).unwrap();
    Verifier::new(VerifierConfig::new(ISSUER), Arc::new(keys))
}

fn loopback() -> KeysConfig {
    KeysConfig {
        egress: loopback_egress(),
        ..KeysConfig::default()
    }
}

fn token(signer: &DevSigner) -> String {
    signer
        .mint(&MintRequest::new(ISSUER, "default", "app", NOW).with_pod("p", None))
        .unwrap()
}

#[tokio::test]
async fn unknown_kid_refreshes_once_per_interval() {
    let old = DevSigner::generate().unwrap();
    let new = DevSigner::generate().unwrap();
    let other = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&old)])).await;
    let v = remote_verifier(&server.url);

    // First use fetches the keys.
    v.verify(&token(&old), NOW).await.unwrap();
    assert_eq!(server.hits(), 1);

    // The cluster rotates its key: an unknown kid triggers one refresh, which finds it.
    server.set(200, jwks(&[jwk_of(&old), jwk_of(&new)]));
    v.verify(&token(&new), NOW + 30).await.unwrap();
    assert_eq!(server.hits(), 2);

    // A second unknown kid within 30 s of the last fetch is refused without fetching.
    for i in 0..5 {
        let err = v
            .verify(&token(&other), NOW + 31 + i * 7)
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey), "{err:?}");
    }
    assert_eq!(server.hits(), 2);
    // Known keys keep working meanwhile, without fetches.
    v.verify(&token(&new), NOW + 40).await.unwrap();
    assert_eq!(server.hits(), 2);

    // After the interval, one more fetch is allowed.
    server.set(200, jwks(&[jwk_of(&new), jwk_of(&other)]));
    v.verify(&token(&other), NOW + 60).await.unwrap();
    assert_eq!(server.hits(), 3);
    // The retired key is gone now.
    assert!(matches!(
        v.verify_cached(&token(&old), NOW + 61),
        Err(TokenError::UnknownKey)
    ));
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch() {
    let key = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&key)])).await;
    let v = Arc::new(remote_verifier(&server.url));
    let t = token(&key);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (v, t) = (Arc::clone(&v), t.clone());
            tokio::spawn(async move { v.verify(&t, NOW).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 1);
}

/// Wait (bounded) until a background refresh has been attempted `hits` times in total.
async fn wait_for_hits(server: &JwksServer, hits: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.hits() < hits {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn keys_are_refetched_in_the_background_after_max_age() {
    let old = DevSigner::generate().unwrap();
    let new = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&old)])).await;
    let v = remote_verifier(&server.url);
    v.verify(&token(&old), NOW).await.unwrap();
    v.verify(&token(&old), NOW + 3599).await.unwrap();
    assert_eq!(server.hits(), 1);
    // At max age the request is served from the current keys, and a refresh starts.
    server.set(200, jwks(&[jwk_of(&new)]));
    let before = v.keys().current();
    v.verify(&token(&old), NOW + 3600).await.unwrap();
    wait_for_hits(&server, 2).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while Arc::ptr_eq(&before, &v.keys().current()) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(v.verify_cached(&token(&new), NOW + 3601).is_ok());
    assert!(matches!(
        v.verify_cached(&token(&old), NOW + 3601),
        Err(TokenError::UnknownKey)
    ));
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys() {
    let key = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&key)])).await;
    let v = remote_verifier(&server.url);
    v.verify(&token(&key), NOW).await.unwrap();
    server.set(500, "oops".into());
    v.verify(&token(&key), NOW + 4000).await.unwrap();
    wait_for_hits(&server, 2).await;
    // The failed background fetch counts against the rate limit but leaves the keys in place.
    let stranger = DevSigner::generate().unwrap();
    let t = stranger
        .mint(&MintRequest::new(ISSUER, "default", "app", NOW))
        .unwrap();
    assert!(matches!(
        v.verify(&t, NOW + 4001).await,
        Err(TokenError::UnknownKey)
    ));
    assert!(v.verify(&token(&key), NOW + 4002).await.is_ok());
    assert_eq!(server.hits(), 2);
    // After the interval an unknown kid may fetch again; the fetch fails, the old keys remain.
    assert!(matches!(
        v.verify(&t, NOW + 4100).await,
        Err(TokenError::UnknownKey)
    ));
    assert_eq!(server.hits(), 3);
    assert!(v.verify_cached(&token(&key), NOW + 4100).is_ok());
}

#[tokio::test]
async fn unreachable_keys_are_reported_as_unavailable() {
    let key = DevSigner::generate().unwrap();
    let server = JwksServer::start(String::new()).await;
    server.set(503, "down".into());
    let v = remote_verifier(&server.url);
    let err = v.verify(&token(&key), NOW).await.unwrap_err();
    assert!(matches!(err, TokenError::JwksStatus(503)), "{err:?}");
    assert!(err.is_keys_unavailable());
    // Within the rate limit no fetch happens, and the answer is still "unavailable".
    let err = v.verify(&token(&key), NOW + 1).await.unwrap_err();
    assert!(matches!(err, TokenError::KeysUnavailable), "{err:?}");
    assert_eq!(server.hits(), 1);

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let err = remote_verifier(&url)
        .verify(&token(&key), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::JwksFetch(_)), "{err:?}");
    // The message names the real cause, not only "fetching failed".
    let message = err.to_string();
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
}

#[tokio::test]
async fn bearer_token_file_is_sent_and_reread_on_every_fetch() {
    let key = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&key)])).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "first-token\n").unwrap();
    let config = KeysConfig {
        bearer_token_file: Some(path.clone()),
        egress: loopback_egress(),
        ..KeysConfig::default()
    };
    let keys = ClusterKeys::new(KeySource::Uri(server.url.clone()), config).unwrap();
    assert!(keys.refresh(NOW).await.unwrap());
    assert_eq!(
        server.last_header("authorization").as_deref(),
        Some("Bearer first-token")
    );
    assert_eq!(
        keys.fetched_document().as_deref(),
        Some(jwks(&[jwk_of(&key)]).as_bytes())
    );

    // The kubelet rotates the projected token: the next fetch sends the new one.
    std::fs::write(&path, "second-token").unwrap();
    assert!(keys.refresh(NOW + 60).await.unwrap());
    assert_eq!(
        server.last_header("authorization").as_deref(),
        Some("Bearer second-token")
    );

    // A missing or empty file is an unavailable-keys error naming the file, and sends nothing.
    for (attempt, contents) in [None, Some("  \n")].into_iter().enumerate() {
        match contents {
            None => std::fs::remove_file(&path).unwrap(),
            Some(text) => std::fs::write(&path, text).unwrap(),
        }
        let hits = server.hits();
        let at = NOW + 600 + 60 * i64::try_from(attempt).unwrap();
        let err = keys.refresh(at).await.unwrap_err();
        assert!(matches!(err, TokenError::BearerTokenFile { .. }), "{err:?}");
        assert!(err.is_keys_unavailable());
        assert!(err.to_string().contains("token"), "{err}");
        assert_eq!(server.hits(), hits);
    }
}

#[tokio::test]
async fn oversized_fetched_jwks_is_refused() {
    let key = DevSigner::generate().unwrap();
    let padded = json!({"keys": [jwk_of(&key)], "pad": "x".repeat(MAX_JWKS_BYTES)}).to_string();
    let server = JwksServer::start(padded).await;
    let v = remote_verifier(&server.url);
    let err = v.verify(&token(&key), NOW).await.unwrap_err();
    assert!(matches!(err, TokenError::JwksTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn explicit_refresh_obeys_the_rate_limit() {
    let key = DevSigner::generate().unwrap();
    let server = JwksServer::start(jwks(&[jwk_of(&key)])).await;
    let config = KeysConfig {
        min_refresh_interval: Duration::from_secs(5),
        egress: loopback_egress(),
        ..KeysConfig::default()
    };
    let keys = ClusterKeys::new(KeySource::Uri(server.url.clone()), config).unwrap();
    assert!(keys.current().is_empty());
    assert!(keys.refresh(NOW).await.unwrap());
    assert!(!keys.refresh(NOW + 4).await.unwrap());
    assert!(keys.refresh(NOW + 5).await.unwrap());
    assert_eq!(server.hits(), 2);
    assert_eq!(keys.current().kids().collect::<Vec<_>>(), [Some(key.kid())]);
}

#[test]
fn inline_source_is_parsed_up_front_and_never_refreshes() {
    assert!(matches!(
        ClusterKeys::new(KeySource::Inline("{".into()), KeysConfig::default()),
        Err(TokenError::JwksInvalid(_))
    ));
    let key = DevSigner::generate().unwrap();
    let keys = ClusterKeys::new(
        KeySource::Inline(key.jwks().to_owned()),
        KeysConfig::default(),
    )
    .unwrap();
    assert!(!keys.is_remote());
    assert!(!keys.is_stale(i64::MAX));
    assert_eq!(keys.current().len(), 1);
}

#[test]
fn the_default_egress_fence_refuses_plain_http_and_loopback() {
    let refused =
        |url: &str| match ClusterKeys::new(KeySource::Uri(url.to_owned()), KeysConfig::default()) {
            Err(TokenError::JwksUriRefused(r)) => r,
            other => panic!("{url}: {other:?}"),
        };
    assert_eq!(
        refused("http://oidc.example.com/keys"),
        crate::EgressRefusal::Scheme("http".into())
    );
    assert!(matches!(
        refused("https://127.0.0.1:6443/openid/v1/jwks"),
        crate::EgressRefusal::Address {
            kind: "loopback",
            ..
        }
    ));
    assert!(matches!(
        refused("https://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        crate::EgressRefusal::Address {
            kind: "link-local",
            ..
        }
    ));
}

#[tokio::test]
async fn redirects_are_fenced_too() {
    let key = DevSigner::generate().unwrap();
    let good = JwksServer::start(jwks(&[jwk_of(&key)])).await;
    let hop = JwksServer::start(String::new()).await;

    // To an allowed place: followed.
    hop.redirect(&good.url);
    let keys = ClusterKeys::new(KeySource::Uri(hop.url.clone()), loopback()).unwrap();
    assert!(keys.refresh(NOW).await.unwrap());
    assert_eq!(good.hits(), 1);

    // To instance metadata: refused before any connection.
    hop.redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/");
    let keys = ClusterKeys::new(KeySource::Uri(hop.url.clone()), loopback()).unwrap();
    let e = keys.refresh(NOW).await.unwrap_err().to_string();
    assert!(
        e.contains(
            "redirect to http://169.254.169.254/latest/meta-data/iam/security-credentials/ refused"
        ) && e.contains("link-local"),
        "{e}"
    );

    // To a name that resolves only to refused addresses: refused by the resolver. The hop is on
    // 127.0.0.2, the only address allowed here; `localhost` resolves to 127.0.0.1 and ::1.
    let far_hop = JwksServer::start_on("127.0.0.2", String::new()).await;
    let port = good
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    far_hop.redirect(&format!("http://localhost:{port}/openid/v1/jwks"));
    let only_far_hop = KeysConfig {
        egress: crate::EgressPolicy {
            allow_http: true,
            allowed_networks: vec!["127.0.0.2/32".parse().unwrap()],
        },
        ..KeysConfig::default()
    };
    let keys = ClusterKeys::new(KeySource::Uri(far_hop.url.clone()), only_far_hop).unwrap();
    let before = good.hits();
    let e = keys.refresh(NOW).await.unwrap_err().to_string();
    assert!(
        e.contains("localhost resolves to no allowed address"),
        "{e}"
    );
    assert_eq!(far_hop.hits(), 1);
    assert_eq!(good.hits(), before);

    // A redirect with a CA bundle or a bearer token is never followed: both are meant for the
    // configured endpoint only.
    hop.redirect(&good.url);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let config = KeysConfig {
        bearer_token_file: Some(token),
        egress: loopback_egress(),
        ..KeysConfig::default()
    };
    let keys = ClusterKeys::new(KeySource::Uri(hop.url.clone()), config).unwrap();
    assert!(matches!(
        keys.refresh(NOW).await,
        Err(TokenError::JwksStatus(302))
    ));
}
