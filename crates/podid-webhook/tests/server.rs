//! The real webhook on loopback: HTTPS with a self-signed certificate, a fake EKS
//! `ListPodIdentityAssociations` endpoint, readiness before and after the first sync and when
//! syncs go stale, reviews over HTTPS, the HTTP refusals, metrics, and certificate reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use podid_aws::sigv4::SigningCredentials;
use podid_webhook::{
    CredentialSource, FULL_URI_IPV4, Jitter, MutationConfig, ServiceAccountSource, Webhook,
    WebhookConfig,
};
use serde_json::{Value, json};

/// The fake EKS API: two pages of associations, or a 500 while `failing`.
#[derive(Default)]
struct FakeEks {
    failing: AtomicBool,
    calls: AtomicUsize,
}

async fn list(
    State(fake): State<Arc<FakeEks>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWEBHOOK/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/eks/aws4_request"), "{auth}");
    if fake.failing.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-errortype", "ServerException")],
            r#"{"message":"store unavailable"}"#,
        )
            .into_response();
    }
    let summary = |ns: &str, sa: &str| {
        json!({"clusterName": "c1", "namespace": ns, "serviceAccount": sa,
               "associationArn": "arn", "associationId": "a-1", "ownerArn": null})
    };
    let body = match query.get("nextToken").map(String::as_str) {
        None => json!({"associations": [summary("default", "app")], "nextToken": "page2"}),
        Some("page2") => json!({"associations": [summary("team", "worker")]}),
        Some(other) => panic!("unexpected nextToken {other}"),
    };
    axum::Json(body).into_response()
}

async fn fake_eks() -> (SocketAddr, Arc<FakeEks>) {
    let fake = Arc::new(FakeEks::default());
    fake.failing.store(true, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/clusters/c1/pod-identity-associations", get(list))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, fake)
}

/// Writes a fresh self-signed pair for 127.0.0.1; returns the certificate PEM.
fn write_cert(cert: &Path, key: &Path) -> String {
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = pair.cert.pem();
    std::fs::write(key, pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(cert, &pem).unwrap();
    pem
}

fn client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    // No pooled connections: each request's handshake shows the certificate served now.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Polls `check` until it holds, for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn review(namespace: &str, service_account: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"serviceAccountName": service_account,
                         "containers": [{"name": "app", "image": "busybox"}]}},
            "oldObject": null
        }
    })
}

struct Harness {
    url: String,
    metrics_url: String,
    fake: Arc<FakeEks>,
    cert: PathBuf,
    key: PathBuf,
    ca: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = write_cert(&cert, &key);
    let (eks, fake) = fake_eks().await;
    let config = WebhookConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert_file: cert.clone(),
        tls_key_file: key.clone(),
        tls_reload_interval: Duration::from_millis(50),
        cluster_name: "c1".into(),
        endpoint: format!("http://{eks}").parse().unwrap(),
        region: "us-east-1".into(),
        credentials: CredentialSource::Static(SigningCredentials {
            access_key_id: "AKIDWEBHOOK".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }),
        ca_bundle: None,
        sync_interval: Duration::from_millis(50),
        max_staleness: Duration::from_millis(600),
        mutation: MutationConfig {
            full_uri: FULL_URI_IPV4.into(),
            aws_default_region: None,
            regional_sts: false,
            token_expiration: 86_400,
            jitter: Jitter::Random,
        },
        service_accounts: ServiceAccountSource::Off,
        connections: podid_webhook::DEFAULT_CONNECTION_LIMITS,
    };
    let started = Webhook::start(config).await.unwrap();
    let url = format!("https://{}", started.addr);
    let metrics_url = format!("http://{}", started.metrics_addr.unwrap());
    tokio::spawn(started.serve_until(std::future::pending()));
    Harness {
        url,
        metrics_url,
        fake,
        cert,
        key,
        ca,
        _dir: dir,
    }
}

async fn status(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let r = client.get(url).send().await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

#[tokio::test]
async fn serves_reviews_over_https_with_readiness_from_syncs() {
    let h = start().await;
    let c = client(&h.ca);
    // Syncs fail: alive, not ready.
    assert_eq!(
        status(&c, &format!("{}/healthz", h.url)).await.unwrap(),
        (200, "ok".into())
    );
    eventually("failed syncs", || async {
        h.fake.calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let (code, text) = status(&c, &format!("{}/readyz", h.url)).await.unwrap();
    assert_eq!((code, text.as_str()), (503, "associations not synced yet"));

    // Admission never waits on the network: before the first sync, nothing is mutated.
    let post = |body: Vec<u8>, content_type: &'static str| {
        c.post(format!("{}/mutate", h.url))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let r = post(
        serde_json::to_vec(&review("default", "app")).unwrap(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response"], json!({"uid": "uid-1", "allowed": true}));

    h.fake.failing.store(false, Ordering::SeqCst);
    eventually("ready", || async {
        status(&c, &format!("{}/readyz", h.url))
            .await
            .is_some_and(|(s, _)| s == 200)
    })
    .await;

    // Both pages were read: an association from each is honoured.
    for (ns, sa) in [("default", "app"), ("team", "worker")] {
        let r = post(
            serde_json::to_vec(&review(ns, sa)).unwrap(),
            "application/json; charset=utf-8",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        let expiration = patch[1]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"]
            .as_i64()
            .unwrap();
        assert!((79_200..=86_400).contains(&expiration), "{expiration}");
    }
    let r = post(
        serde_json::to_vec(&review("default", "nobody")).unwrap(),
        "application/json",
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["response"].get("patch").is_none());

    // Refusals: not JSON, malformed, too large.
    let r = post(b"{}".to_vec(), "text/plain").await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.text().await.unwrap(),
        "Invalid Content-Type, expected `application/json`"
    );
    let r = post(b"{\"kind\":".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .starts_with("the body is not an AdmissionReview")
    );
    let r = post(
        vec![b' '; podid_webhook::MAX_REVIEW_BYTES + 1],
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);

    // Metrics.
    let metrics = reqwest::get(format!("{}/metrics", h.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "podid_webhook_admissions_total{outcome=\"mutated\"} 2",
        "podid_webhook_admissions_total{outcome=\"untouched\"} 2",
        "podid_webhook_admissions_total{outcome=\"error\"} 3",
        "podid_webhook_associations 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.contains("podid_webhook_association_syncs_total{result=\"failure\"}"));
    assert!(metrics.contains("podid_webhook_association_sync_age_seconds "));

    // Syncs fail for longer than the staleness bound: not ready, but the last set still serves.
    h.fake.failing.store(true, Ordering::SeqCst);
    eventually("stale", || async {
        status(&c, &format!("{}/readyz", h.url))
            .await
            .is_some_and(|(s, t)| s == 503 && t.starts_with("associations are stale"))
    })
    .await;
    let r = post(
        serde_json::to_vec(&review("default", "app")).unwrap(),
        "application/json",
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response"]["patchType"], "JSONPatch");
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_restart() {
    let h = start().await;
    // A fresh client per check: a client's TLS session cache would resume the old session
    // without looking at the certificate again.
    let healthz = format!("{}/healthz", h.url);
    let trusting = |ca: String| {
        let url = healthz.clone();
        async move { status(&client(&ca), &url).await.is_some() }
    };
    assert!(trusting(h.ca.clone()).await);

    // A key that does not match the certificate (a rotation caught halfway) is not loaded.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&h.key, other.signing_key.serialize_pem()).unwrap();
    bump_mtime(&h.key);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(trusting(h.ca.clone()).await);

    let new_ca = write_cert(&h.cert, &h.key);
    bump_mtime(&h.cert);
    eventually("the new certificate", || trusting(new_ca.clone())).await;
    assert!(!trusting(h.ca.clone()).await);
}

/// Moves a file's mtime forward, so a rewrite within the same clock tick still counts as a change.
fn bump_mtime(path: &Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
}
