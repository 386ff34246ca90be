//! The `podid-agent` binary, run as a real process against a fake EKS Auth on loopback: its
//! flags and exit codes, its answers, its JSON logs, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use podid_token::{DevSigner, MintRequest};

const AGENT: &str = env!("CARGO_BIN_EXE_podid-agent");

/// `podid-agent` with a clean environment holding only static node credentials.
fn agent(dir: &Path) -> Command {
    let mut c = Command::new(AGENT);
    c.env_clear()
        .current_dir(dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .stdin(Stdio::null());
    c
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ok = ["--cluster-name", "dev", "--endpoint", "http://127.0.0.1:1"];
    for args in [
        &[][..],
        &["server"],
        &["-c", "dev"],
        &["-c", "dev", "--endpoint", "ftp://x"],
        &[&ok[..], &["-b", "example.com"]].concat(),
        &[
            &ok[..],
            &["--max-credential-retention-before-renewal", "3 hours"],
        ]
        .concat(),
        &[&ok[..], &["--verbosity", "loud"]].concat(),
        &[&["server"][..], &ok, &["-p", "65536"]].concat(),
        &["initialize", "--output", "yaml"],
        // Control-plane commands do not exist here.
        &["dev"],
    ] {
        let out = agent(dir.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let out = agent(dir.path()).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("podid-agent "));
    let out = agent(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--cluster-name",
        "--bind-hosts",
        "--max-credential-retention-before-renewal",
        "--log-format",
        "initialize",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help: {help}");
    }
}

/// A fake EKS Auth that counts its calls and answers every one with credentials.
async fn fake_eks_auth() -> (SocketAddr, Arc<AtomicUsize>) {
    async fn assume(State(calls): State<Arc<AtomicUsize>>) -> axum::Json<serde_json::Value> {
        calls.fetch_add(1, Ordering::SeqCst);
        let expiration = now() + 6 * 3600;
        axum::Json(serde_json::json!({
            "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/app/eks-dev-pod", "assumeRoleId": "AROA1:eks"},
            "credentials": {"accessKeyId": "ASIAFAKE", "secretAccessKey": "s", "sessionToken": "t", "expiration": expiration},
            "podIdentityAssociation": {"associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/dev/a-1", "associationId": "a-1"},
            "subject": {"namespace": "default", "serviceAccount": "app"},
        }))
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/clusters/{cluster}/assume-role-for-pod-identity",
            post(assume),
        )
        .with_state(Arc::clone(&calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, calls)
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// Waits until the agent's JSON log names its `listener` address.
async fn listening(log: &Path, child: &mut Child, listener: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text.lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["message"] == "listening" && v["listener"] == listener)
                .then(|| v["addr"].as_str()?.parse().ok())?
        });
        if let Some(addr) = found {
            return addr;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("podid-agent exited early ({status}): {text}");
        }
        assert!(Instant::now() < deadline, "no {listener} address: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_its_real_flags_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, calls) = fake_eks_auth().await;
    let log = dir.path().join("agent.log");
    let mut child = agent(dir.path())
        .args(["--cluster-name", "dev", "--endpoint"])
        .arg(format!("http://{upstream}"))
        .args(["-b", "127.0.0.1", "-p", "0", "--probe-port", "0"])
        .args(["--metrics-address", "127.0.0.1", "--metrics-port", "0"])
        .args(["--state-dir", "state"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let credentials = listening(&log, &mut child, "credentials").await;
    let probe = listening(&log, &mut child, "probe").await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{credentials}/v1/credentials");
    let get = |host: Option<&'static str>, token: String| {
        let mut request = http.get(&url).header("authorization", token);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let signer = DevSigner::generate().unwrap();
    let request = MintRequest::new("https://podid.test/clusters/dev", "default", "app", now())
        .with_pod(
            "web-0",
            Some("7b3f2a1d-0000-4000-8000-000000000001".to_owned()),
        );
    let token = signer.mint(&request).unwrap();

    let (status, body) = get(None, token.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["AccessKeyId"], "ASIAFAKE");
    assert_eq!(answer["AccountId"], "123456789012");

    assert_eq!(
        get(Some("evil.example"), token.clone()).await,
        (
            403,
            "Access Denied. Called agent through invalid address, please use either \
             [169.254.170.23 fd00:ec2::23 127.0.0.1] address not evil.example\n"
                .to_owned()
        )
    );
    assert_eq!(
        get(None, format!("Bearer {token}")).await,
        (
            400,
            "Service account token cannot be parsed: token is malformed: \
             header is not base64url or too long\n"
                .to_owned()
        )
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch, then the cache");
    let health = http
        .get(format!("http://{probe}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with('{')),
        "JSON logs by default: {text}"
    );
    assert!(!text.contains(&token), "the token was logged");
    assert!(text.contains("association_id"), "{text}");
}
