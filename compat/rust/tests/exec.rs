//! The driver: starts `podid dev` on a free loopback port in a temp dir, creates a role and a pod
//! identity association with the admin key from dev.env (SigV4-signed by hand with aws-sigv4,
//! over a plain loopback socket), then runs the `podid-compat-rust` program under `podid exec`
//! and checks the identity it printed.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

const ACCOUNT: &str = "000000000000";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const WHOAMI: &str = env!("CARGO_BIN_EXE_podid-compat-rust");

fn podid_bin() -> PathBuf {
    std::env::var_os("PODID_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/podid"),
        PathBuf::from,
    )
}

/// `podid args...` with the developer's AWS and podid settings removed.
fn podid(args: &[&str]) -> Command {
    let mut cmd = Command::new(podid_bin());
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key.starts_with("PODID_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn read_dev_env(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['\'', '"']).to_owned()))
        .collect()
}

/// A running `podid dev` (killed on drop) and its dev.env.
struct Dev {
    child: Child,
    dir: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
}

impl Dev {
    fn start() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("podid-compat-rust-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.join("dev.log")).expect("dev.log");
        let child = podid(&[
            "dev",
            "--data-dir",
            &dir.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("starting podid dev");
        let mut dev = Self {
            child,
            dir,
            port,
            env: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            dev.env = read_dev_env(&dev.dir.join("dev.env"));
            if dev.var("PODID_AGENT_URL").is_some() {
                return dev;
            }
            let log = std::fs::read_to_string(dev.dir.join("dev.log")).unwrap_or_default();
            assert!(
                dev.child.try_wait().ok().flatten().is_none(),
                "podid dev exited: {log}"
            );
            assert!(
                Instant::now() < deadline,
                "no PODID_AGENT_URL in dev.env after 60 s: {log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A SigV4-signed POST with the admin key; panics unless the answer is 200.
    fn admin_post(&self, service: &str, path: &str, content_type: &str, body: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let identity = aws_credential_types::Credentials::new(
            self.var("AWS_ACCESS_KEY_ID").expect("admin key id"),
            self.var("AWS_SECRET_ACCESS_KEY").expect("admin secret"),
            None,
            None,
            "dev.env",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.var("AWS_REGION").unwrap_or("us-east-1"))
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("signing").into_parts();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (name, value) in instructions.headers() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to podid");
        stream.write_all(request.as_bytes()).expect("sending");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reading");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{service} {path} refused: {answer}"
        );
    }

    /// Creates role `role` and associates it with default/`service_account` in cluster dev.
    fn associate(&self, role: &str, service_account: &str) {
        let form = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form_encode(role),
            form_encode(TRUST)
        );
        self.admin_post(
            "iam",
            "/",
            "application/x-www-form-urlencoded; charset=utf-8",
            &form,
        );
        let json = format!(
            r#"{{"namespace":"default","serviceAccount":"{service_account}","roleArn":"arn:aws:iam::{ACCOUNT}:role/{role}"}}"#
        );
        self.admin_post(
            "eks",
            "/clusters/dev/pod-identity-associations",
            "application/json",
            &json,
        );
    }

    /// Runs the program under `podid exec` as pod `pod` of default/`service_account`.
    fn exec_as_pod(&self, service_account: &str, pod: &str) -> std::process::Output {
        let dir = self.dir.display().to_string();
        let agent = self.var("PODID_AGENT_URL").unwrap_or_default();
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        podid(&[
            "exec",
            "--data-dir",
            &dir,
            "--agent-url",
            agent,
            "--endpoint",
            &endpoint,
            "--namespace",
            "default",
            "--service-account",
            service_account,
            "--pod-name",
            pod,
            "--",
            WHOAMI,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running podid exec")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_default_chain_gets_pod_identity_credentials() {
    let dev = Dev::start();
    dev.associate("rust-app", "rust-app");
    let out = dev.exec_as_pod("rust-app", "rust-pod");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let prefix = format!("ARN arn:aws:sts::{ACCOUNT}:assumed-role/rust-app/eks-dev-rust-pod-");
    assert!(
        stdout.trim().starts_with(&prefix),
        "{stdout:?} does not start with {prefix:?}"
    );
}

#[test]
fn a_service_account_without_an_association_gets_no_credentials() {
    let dev = Dev::start();
    let out = dev.exec_as_pod("nobody", "rust-pod");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("HTTP credential provider: StatusCode(404)"),
        "{stderr}"
    );
}
