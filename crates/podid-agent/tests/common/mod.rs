//! A fake EKS Auth + JWKS server and helpers to start the real agent against it on loopback.
//! The fake verifies nothing: it counts calls and can be told to fail or to be slow.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use podid_agent::{Agent, AgentConfig, NodeCredentialSource, StartedAgent};
use podid_aws::sigv4::SigningCredentials;
use podid_token::{DevSigner, MintRequest, peek_unverified};
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const CLUSTER: &str = "test-cluster";
pub const ISSUER: &str = "https://podid.test/clusters/test-cluster";

/// What the fake answers next.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 200 with credentials valid for this long.
    Ok { lifetime: Duration },
    /// An EKS Auth error.
    Error {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
}

#[derive(Debug)]
pub struct FakeState {
    pub mode: Mutex<Mode>,
    pub delay: Mutex<Duration>,
    pub calls: AtomicUsize,
    pub completed: AtomicUsize,
    pub jwks_calls: AtomicUsize,
    pub last_body: Mutex<Option<serde_json::Value>>,
    pub last_authorization: Mutex<Option<String>>,
    pub jwks: String,
}

pub struct Fake {
    pub url: Url,
    pub state: Arc<FakeState>,
    pub signer: Arc<DevSigner>,
}

impl Fake {
    pub async fn start() -> Self {
        let signer = Arc::new(DevSigner::generate().unwrap());
        Self::start_with_signer(signer).await
    }

    pub async fn start_with_signer(signer: Arc<DevSigner>) -> Self {
        let state = Arc::new(FakeState {
            mode: Mutex::new(Mode::Ok {
                lifetime: Duration::from_secs(6 * 3600),
            }),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            jwks_calls: AtomicUsize::new(0),
            last_body: Mutex::new(None),
            last_authorization: Mutex::new(None),
            jwks: signer.jwks().to_owned(),
        });
        let router = Router::new()
            .route(
                "/clusters/{cluster}/assume-role-for-pod-identity",
                post(assume),
            )
            .route("/podid/public/clusters/{cluster}/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            url: Url::parse(&format!("http://{addr}/")).unwrap(),
            state,
            signer,
        }
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock() = mode;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock() = delay;
    }

    /// A token for pod `pod_uid` in `ns`/`sa`, signed by this fake's key.
    pub fn token(&self, ns: &str, sa: &str, pod_uid: &str) -> String {
        mint(&self.signer, ns, sa, pod_uid, now())
    }
}

pub fn mint(signer: &DevSigner, ns: &str, sa: &str, pod_uid: &str, iat: i64) -> String {
    let req = MintRequest::new(ISSUER, ns, sa, iat).with_pod("pod", Some(pod_uid.to_owned()));
    signer.mint(&req).unwrap()
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn assume(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: String) -> Response {
    let n = state.calls.fetch_add(1, Ordering::SeqCst) + 1;
    *state.last_authorization.lock() = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = body["token"].as_str().unwrap_or_default().to_owned();
    *state.last_body.lock() = Some(body);
    let delay = *state.delay.lock();
    tokio::time::sleep(delay).await;
    let mode = state.mode.lock().clone();
    state.completed.fetch_add(1, Ordering::SeqCst);
    match mode {
        Mode::Ok { lifetime } => {
            let claims = peek_unverified(&token).unwrap();
            let expiration = now() + i64::try_from(lifetime.as_secs()).unwrap();
            let json = serde_json::json!({
                "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/app-role/eks-test-pod", "assumeRoleId": "AROA1:eks"},
                "audience": "pods.eks.amazonaws.com",
                "credentials": {"accessKeyId": format!("ASIA{n}"), "secretAccessKey": "secret", "sessionToken": "session", "expiration": expiration},
                "podIdentityAssociation": {"associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/test-cluster/a-1", "associationId": "a-1"},
                "subject": {"namespace": &*claims.namespace, "serviceAccount": &*claims.service_account},
            });
            ([("x-amzn-requestid", format!("req-{n}"))], axum::Json(json)).into_response()
        }
        Mode::Error {
            status,
            code,
            message,
        } => (
            StatusCode::from_u16(status).unwrap(),
            [
                ("x-amzn-requestid", format!("req-{n}")),
                ("x-amzn-errortype", code.to_owned()),
            ],
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response(),
    }
}

async fn jwks(State(state): State<Arc<FakeState>>) -> Response {
    state.jwks_calls.fetch_add(1, Ordering::SeqCst);
    (
        [
            ("x-podid-issuer", ISSUER),
            ("content-type", "application/json"),
        ],
        state.jwks.clone(),
    )
        .into_response()
}

/// A running agent on 127.0.0.1 with ephemeral ports.
pub struct TestAgent {
    pub base: String,
    pub probe: String,
    pub metrics: String,
    pub started_addrs: Vec<SocketAddr>,
    pub failures: Vec<podid_agent::BindFailure>,
    pub http: reqwest::Client,
    pub state_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn config(endpoints: Vec<Url>) -> AgentConfig {
    let creds = SigningCredentials {
        access_key_id: "AKIDNODE".into(),
        secret_access_key: "node-secret".into(),
        session_token: None,
    };
    let mut config = AgentConfig::new(CLUSTER, endpoints, NodeCredentialSource::Static(creds));
    config.bind_hosts = vec!["127.0.0.1".parse().unwrap()];
    config.port = 0;
    config.probe_port = 0;
    config.metrics_address = "127.0.0.1".parse().unwrap();
    config.metrics_port = 0;
    config.node_name = Some("node-1".into());
    // Every test client is 127.0.0.1, and some tests open 100 connections at once: the
    // per-client cap has its own tests (connections.rs), which set it.
    config.connections.max_connections_per_client = None;
    config
}

pub async fn start(mut config: AgentConfig) -> TestAgent {
    let state_dir = tempfile::tempdir().unwrap();
    config.state_dir = Some(state_dir.path().to_owned());
    let started: StartedAgent = Agent::start(config).await.unwrap();
    let base = format!("http://{}", started.credential_addrs[0]);
    let probe = format!("http://{}", started.probe_addr);
    let metrics = format!("http://{}", started.metrics_addr);
    let started_addrs = started.credential_addrs.clone();
    let failures = started.bind_failures.clone();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(started.serve_until(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    TestAgent {
        base,
        probe,
        metrics,
        started_addrs,
        failures,
        http,
        state_dir,
        stop: Some(stop),
    }
}

impl TestAgent {
    /// GET /v1/credentials with `token` as the raw Authorization header.
    pub async fn get(&self, token: &str) -> (u16, String, String) {
        let response = self
            .http
            .get(format!("{}/v1/credentials", self.base))
            .header("authorization", token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
