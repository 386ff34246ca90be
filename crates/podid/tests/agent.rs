//! `podid agent` and the agent inside `podid dev`, run as real processes and spoken to over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{client, free_addr, ok_json, podid, start};
use podid_aws::sigv4::{SigningCredentials, sign_request};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

/// One HTTP/1.1 request over a fresh connection; returns status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The admin key `podid server`/`podid dev` wrote into `data`.
fn admin_key(data: &Path) -> SigningCredentials {
    let text = std::fs::read_to_string(data.join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    SigningCredentials {
        access_key_id: field("aws_access_key_id = "),
        secret_access_key: field("aws_secret_access_key = "),
        session_token: None,
    }
}

/// A SigV4-signed IAM query call as the administrator.
fn iam(addr: SocketAddr, data: &Path, params: &[(&str, &str)]) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().copied().chain([("Version", "2010-05-08")]))
        .finish();
    let mut request = http::Request::post(format!("http://{addr}/"))
        .header("host", addr.to_string())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(bytes::Bytes::from(body.clone()))
        .unwrap();
    sign_request(
        &mut request,
        &admin_key(data),
        "us-east-1",
        "iam",
        SystemTime::now(),
    )
    .unwrap();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http(addr, "POST", "/", &refs, body.as_bytes())
}

/// Waits until the agent's JSON log names its `listener` address.
fn listening(log: &Path, child: &mut Child, listener: &str) -> SocketAddr {
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
            panic!("podid agent exited early ({status}): {text}");
        }
        assert!(
            Instant::now() < deadline,
            "no {listener} address logged: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agent_bad_flags_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ok = ["--cluster-name", "dev", "--endpoint", "http://127.0.0.1:1"];
    for args in [
        &["agent"][..],
        &["agent", "server"],
        &["agent", "-c", "dev"],
        &["agent", "-c", "dev", "server"],
        &["agent", "-c", "dev", "--endpoint", "ftp://x"],
        &["agent", "-c", "dev", "--endpoint", "not a url"],
        &[
            "agent",
            "-c",
            "bad name",
            "--endpoint",
            "http://127.0.0.1:1",
        ],
        &[&["agent"][..], &ok, &["-b", "example.com"]].concat(),
        &[&["agent"][..], &ok, &["--rate-limit", "0"]].concat(),
        &[
            &["agent"][..],
            &ok,
            &["--max-credential-retention-before-renewal", "3 hours"],
        ]
        .concat(),
        &[&["agent"][..], &ok, &["--region", "us_east!"]].concat(),
        &[&["agent"][..], &ok, &["--verbosity", "loud"]].concat(),
        &[&["agent", "server"][..], &ok, &["-p", "65536"]].concat(),
        &["agent", "initialize", "--output", "yaml"],
    ] {
        let out = podid(dir.path())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    // Without any node credentials (no key variables, no HOME) the agent cannot sign.
    let out = podid(dir.path()).args(["agent"]).args(ok).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node credentials"));
    // The endpoint may come from PODID_ENDPOINT; the missing --cluster-name is named.
    let out = podid(dir.path())
        .arg("agent")
        .env("PODID_ENDPOINT", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster-name"));
}

#[test]
fn standalone_agent_answers_with_the_reference_texts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let a = addr.to_string();
    let _server = start(
        dir.path(),
        addr,
        &[
            "server",
            "--listen",
            &a,
            "--data-dir",
            "data",
            "--log-format",
            "json",
        ],
    );
    // A state dir below a regular file cannot be created: the agent warns and keeps keys in memory.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = podid(dir.path())
        .args([
            "agent",
            "--cluster-name",
            "dev",
            "--endpoint",
            &format!("http://{addr}"),
        ])
        .args([
            "-b",
            "127.0.0.1",
            "-p",
            "0",
            "--probe-port",
            "0",
            "--metrics-address",
            "127.0.0.1",
        ])
        .args([
            "--metrics-port",
            "0",
            "--state-dir",
            "file/state",
            "--max-service-qps",
            "-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let credentials = listening(&log, &mut agent, "credentials");
    let probe = listening(&log, &mut agent, "probe");
    let metrics = listening(&log, &mut agent, "metrics");

    assert_eq!(
        http(credentials, "GET", "/", &[], b""),
        (404, "404 page not found\n".to_owned())
    );
    assert_eq!(
        http(credentials, "GET", "/v1/credentials", &[], b""),
        (400, "Service account token cannot be empty\n".to_owned())
    );
    assert_eq!(http(probe, "GET", "/healthz", &[], b"").0, 200);
    let (status, body) = http(metrics, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(body.contains("# EOF"), "{body}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("state dir is not writable"), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with('{')),
        "JSON logs by default: {text}"
    );

    assert_eq!(
        sigterm(&mut agent).code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(TcpStream::connect_timeout(&credentials, Duration::from_millis(200)).is_err());
}

#[test]
fn dev_agent_serves_credentials_to_exec_children() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let a = addr.to_string();
    let mut dev = start(
        dir.path(),
        addr,
        &[
            "dev",
            "--data-dir",
            "devdata",
            "--listen",
            &a,
            "--agent-port",
            "0",
            "--log-format",
            "json",
        ],
    );
    let data = dir.path().join("devdata");
    let env_file = data.join("dev.env");
    common::eventually("dev.env", || env_file.exists());
    let env = std::fs::read_to_string(&env_file).unwrap();
    let agent_url = env
        .lines()
        .find_map(|l| l.strip_prefix("export PODID_AGENT_URL="))
        .unwrap_or_else(|| panic!("no PODID_AGENT_URL: {env}"))
        .to_owned();
    let agent: SocketAddr = agent_url.strip_prefix("http://").unwrap().parse().unwrap();
    assert!(agent.ip().is_loopback());
    common::eventually("the summary", || {
        dev.stdout_text().contains("/v1/credentials")
    });
    assert!(
        dev.stdout_text()
            .contains(&format!("{agent_url}/v1/credentials"))
    );
    use std::os::unix::fs::PermissionsExt as _;
    let node_key = data.join("node-credentials");
    assert_eq!(
        std::fs::metadata(&node_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&node_key)
            .unwrap()
            .starts_with("[default]\naws_access_key_id = AKIA")
    );

    // The node user may call EKS Auth for cluster dev and nothing else.
    let (status, policy) = iam(
        addr,
        &data,
        &[
            ("Action", "GetUserPolicy"),
            ("UserName", "podid-dev-node"),
            ("PolicyName", "node"),
        ],
    );
    assert_eq!(status, 200, "{policy}");
    assert!(
        policy.contains("cluster%2Fdev") || policy.contains("cluster/dev"),
        "{policy}"
    );

    let (status, role) = iam(
        addr,
        &data,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "my-app-role"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    );
    assert_eq!(status, 200, "{role}");
    let endpoint = format!("http://{addr}");
    ok_json(&client(
        dir.path(),
        &endpoint,
        &data,
        &[
            "association",
            "create",
            "--cluster-name",
            "dev",
            "--namespace",
            "default",
            "--service-account",
            "my-app",
            "--role-arn",
            "arn:aws:iam::000000000000:role/my-app-role",
        ],
    ));

    // A token from `podid token` buys credentials from the agent.
    let out = podid(dir.path())
        .args([
            "token",
            "--data-dir",
            "devdata",
            "--namespace",
            "default",
            "--service-account",
            "my-app",
            "--pod-name",
            "web-0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let (status, body) = http(
        agent,
        "GET",
        "/v1/credentials",
        &[("Authorization", &token)],
        b"",
    );
    assert_eq!(status, 200, "{body}\n{}", dev.stderr_text());
    assert!(body.starts_with(r#"{"AccessKeyId":"ASIA"#), "{body}");
    assert!(
        !body.contains(' ') && !body.contains('\n'),
        "not compact: {body}"
    );

    // `podid exec` hands its child a token file and the agent URL; the agent honours both.
    let out = podid(dir.path())
        .args(["exec", "--data-dir", "devdata", "--namespace", "default", "--service-account", "my-app", "--"])
        .args(["sh", "-c", r#"echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE""#])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (uri, token) = stdout.split_once('\n').unwrap();
    assert_eq!(uri, format!("{agent_url}/v1/credentials"));
    let (status, body) = http(
        agent,
        "GET",
        "/v1/credentials",
        &[("Authorization", token)],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let creds: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(creds["AccountId"], "000000000000");

    // One SIGTERM stops both the server and the agent.
    assert_eq!(
        dev.terminate(Duration::from_secs(30)).code(),
        Some(0),
        "{}",
        dev.stderr_text()
    );
    assert!(TcpStream::connect_timeout(&agent, Duration::from_millis(200)).is_err());
}
