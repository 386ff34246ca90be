//! `podid dev`, `podid token` and `podid exec`, run as real processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{client, free_addr, ok_json, podid, start};

fn env_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn payload(token: &str) -> serde_json::Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn dev_registers_the_dev_cluster_and_writes_dev_env() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let a = addr.to_string();
    let dev = start(
        dir.path(),
        addr,
        &[
            "dev",
            "--data-dir",
            "devdata",
            "--listen",
            &a,
            "--log-format",
            "json",
        ],
    );
    let data = dir.path().join("devdata");
    let env_file = data.join("dev.env");
    common::eventually("dev.env", || env_file.exists());

    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let lines = env_lines(&env_file);
    let endpoint = format!("http://{addr}");
    for expected in [
        format!("export AWS_ENDPOINT_URL={endpoint}"),
        format!("export PODID_ENDPOINT={endpoint}"),
        "export AWS_REGION=us-east-1".to_owned(),
        "export AWS_DEFAULT_REGION=us-east-1".to_owned(),
        "export PODID_CLUSTER=dev".to_owned(),
        format!(
            "export PODID_DATA_DIR={}",
            data.canonicalize().unwrap().display()
        ),
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in {lines:?}"
        );
    }
    let key_text = std::fs::read_to_string(data.join("admin-credentials")).unwrap();
    let key_id = key_text
        .lines()
        .find_map(|l| l.strip_prefix("aws_access_key_id = "))
        .unwrap();
    assert!(lines.contains(&format!("export AWS_ACCESS_KEY_ID={key_id}")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("export AWS_SECRET_ACCESS_KEY="))
    );
    common::eventually("the summary", || dev.stdout_text().contains("podid exec"));
    assert!(
        dev.stdout_text()
            .contains(&format!("source {}", env_file.display()))
    );

    let cluster = ok_json(&client(
        dir.path(),
        &endpoint,
        &data,
        &["cluster", "describe", "--name", "dev"],
    ));
    assert_eq!(
        cluster["cluster"]["issuer"],
        "https://podid.dev/clusters/dev"
    );
    let kid = cluster["cluster"]["jwks"]["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // A token minted from the same data dir is signed by the registered key.
    let out = podid(dir.path())
        .args([
            "token",
            "--data-dir",
            "devdata",
            "--namespace",
            "default",
            "--service-account",
            "my-app",
        ])
        .args([
            "--pod-name",
            "web-0",
            "--node-name",
            "node-1",
            "--audience",
            "a1",
            "--audience",
            "a2",
            "--ttl",
            "20m",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        !token.ends_with('\n'),
        "no newline when stdout is not a terminal"
    );
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid.as_str());
    let claims = payload(&token);
    assert_eq!(claims["sub"], "system:serviceaccount:default:my-app");
    assert_eq!(claims["iss"], "https://podid.dev/clusters/dev");
    assert_eq!(claims["aud"], serde_json::json!(["a1", "a2"]));
    assert_eq!(claims["kubernetes.io"]["namespace"], "default");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "my-app");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "web-0");
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "node-1");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1200
    );

    // A restart reuses the key and the registration.
    drop(dev);
    let dev = start(
        dir.path(),
        addr,
        &[
            "dev",
            "--data-dir",
            "devdata",
            "--listen",
            &a,
            "--log-format",
            "json",
        ],
    );
    common::eventually("the summary", || dev.stdout_text().contains("podid exec"));
    let again = ok_json(&client(
        dir.path(),
        &endpoint,
        &data,
        &["cluster", "describe", "--name", "dev"],
    ));
    assert_eq!(again["cluster"]["jwks"]["keys"][0]["kid"], kid.as_str());
}

#[test]
fn exec_runs_the_command_as_a_pod_would() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let a = addr.to_string();
    let dev = start(
        dir.path(),
        addr,
        &[
            "dev",
            "--data-dir",
            "devdata",
            "--listen",
            &a,
            "--log-format",
            "json",
        ],
    );
    let data = dir.path().join("devdata");
    common::eventually("dev.env", || data.join("dev.env").exists());

    // `podid dev` writes PODID_AGENT_URL; without a dev.env exec refuses clearly unless given
    // --agent-url.
    assert!(
        env_lines(&data.join("dev.env"))
            .iter()
            .any(|l| l.starts_with("export PODID_AGENT_URL=http://127.0.0.1:"))
    );
    let out = podid(dir.path())
        .args([
            "exec",
            "--data-dir",
            "no-dev-env-here",
            "--namespace",
            "default",
            "--service-account",
            "my-app",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent-url"));

    let script = "cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"; echo; echo ---; env; \
                  stat -c %a \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\" \"$(dirname \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\")\"; \
                  wc -c < \"$AWS_SHARED_CREDENTIALS_FILE\"; exit 7";
    let out = podid(dir.path())
        .args([
            "exec",
            "--data-dir",
            "devdata",
            "--agent-url",
            "http://127.0.0.1:2/",
            "--namespace",
            "default",
        ])
        .args([
            "--service-account",
            "my-app",
            "--pod-name",
            "web-0",
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIASTATIC")
        .env("AWS_SECRET_ACCESS_KEY", "static-secret")
        .env("AWS_SESSION_TOKEN", "static-token")
        .env("AWS_PROFILE", "personal")
        .env("AWS_ENDPOINT_URL", "http://elsewhere")
        .env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/x")
        .env("KEEP_ME", "yes")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (token_part, env_part) = stdout.split_once("\n---\n").unwrap();
    // `cat` then `echo`: exactly one newline means the file itself had none.
    assert!(!token_part.contains('\n'), "token file has a newline");
    let claims = payload(token_part);
    assert_eq!(claims["sub"], "system:serviceaccount:default:my-app");
    assert_eq!(claims["aud"], serde_json::json!(["pods.eks.amazonaws.com"]));
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "web-0");

    let env: Vec<&str> = env_part.lines().collect();
    for removed in [
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SESSION_TOKEN=",
        "AWS_PROFILE=",
        "AWS_ENDPOINT_URL=",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
        "AWS_WEB_IDENTITY_TOKEN_FILE=",
    ] {
        assert!(
            !env.iter().any(|l| l.starts_with(removed)),
            "{removed} leaked: {env:?}"
        );
    }
    let endpoint = format!("http://{addr}");
    for expected in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:2/v1/credentials".to_owned(),
        "AWS_REGION=us-east-1".to_owned(),
        "AWS_DEFAULT_REGION=us-east-1".to_owned(),
        format!("AWS_ENDPOINT_URL_STS={endpoint}"),
        "KEEP_ME=yes".to_owned(),
    ] {
        assert!(
            env.contains(&expected.as_str()),
            "missing {expected}: {env:?}"
        );
    }
    assert!(
        env.iter()
            .any(|l| l.starts_with("AWS_SHARED_CREDENTIALS_FILE="))
    );
    assert!(env.iter().any(|l| l.starts_with("AWS_CONFIG_FILE=")));
    // Modes of the token file and its directory, then the empty credentials file's size.
    let tail: Vec<&str> = env.iter().rev().take(3).rev().copied().collect();
    assert_eq!(tail, ["600", "700", "0"]);
    // The private directory is gone after the child exits.
    let token_file = env
        .iter()
        .find_map(|l| l.strip_prefix("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="))
        .unwrap();
    assert!(!Path::new(token_file).exists());
    drop(dev);
}

#[test]
fn exec_reports_a_signal_death_as_128_plus_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    // `podid dev` creates the signing key exec needs; the server itself can stop again.
    let addr = free_addr();
    let a = addr.to_string();
    let dev = start(
        dir.path(),
        addr,
        &[
            "dev",
            "--data-dir",
            "d",
            "--listen",
            &a,
            "--log-format",
            "json",
        ],
    );
    drop(dev);
    let out = podid(dir.path())
        .args([
            "exec",
            "--data-dir",
            "d",
            "--agent-url",
            "http://127.0.0.1:2",
            "--namespace",
            "n",
        ])
        .args(["--service-account", "s", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The secret of the admin key `podid dev` created in `data`.
fn admin_secret(data: &Path) -> String {
    let text = std::fs::read_to_string(data.join("admin-credentials")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap()
        .to_owned()
}

/// The summary's next-step line that contains `needle`, trimmed.
fn step<'a>(summary: &'a str, needle: &str) -> &'a str {
    summary
        .lines()
        .map(str::trim)
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {summary}"))
}

/// Runs `script` with bash (the steps say `source`, as a developer's shell takes it) in `dir`,
/// with nothing of the test's environment but `PATH`.
fn sh(dir: &Path, script: &str) -> std::process::Output {
    Command::new("bash")
        .args(["-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn dev_logs_json_off_a_terminal_and_its_next_steps_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let a = addr.to_string();
    // No --log-format: stderr is a file here, so the logs must be JSON lines.
    let dev = start(
        dir.path(),
        addr,
        &["dev", "--data-dir", "devdata", "--listen", &a],
    );
    common::eventually("the summary", || dev.stdout_text().contains("Ctrl-C"));
    let stderr = dev.stderr_text();
    assert!(stderr.contains("podid agent listening"), "{stderr}");
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["message"].is_string(),
            "{line}"
        );
    }
    // The first start creates the admin key: off a terminal only its id is logged, never its secret.
    let secret = admin_secret(&dir.path().join("devdata"));
    assert!(!stderr.contains(&secret), "the admin secret was logged");
    assert!(stderr.contains("created administrator key"), "{stderr}");

    // The binary under test is not on PATH, so the steps name it by its path and say how to
    // install it; pasted into a shell elsewhere, after `source`, they work as printed.
    let summary = dev.stdout_text();
    let exe = std::fs::canonicalize(common::PODID).unwrap();
    let token_step = step(&summary, " token --namespace default");
    let exec_step = step(&summary, " exec --namespace default");
    assert!(
        token_step.starts_with(&exe.display().to_string()),
        "{token_step}"
    );
    assert!(
        summary.contains("cargo install --path crates/podid"),
        "{summary}"
    );
    let source = step(&summary, "source ");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = sh(elsewhere.path(), &format!("{source} && {token_step}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().split('.').count(), 3);
    let (exec_prefix, child) = exec_step.split_once(" -- ").unwrap();
    assert_eq!(child, "aws sts get-caller-identity");
    let check = r#"test -s "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE""#;
    let out = sh(
        elsewhere.path(),
        &format!("{source} && {exec_prefix} -- sh -c '{check}'"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With `podid` on PATH (a link to the same binary), the steps just say `podid`.
    drop(dev);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&exe, bin.join("podid")).unwrap();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let stdout = dir.path().join("second.stdout");
    let mut second = podid(dir.path())
        .args(["dev", "--data-dir", "devdata", "--listen", &a])
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&stdout).unwrap_or_default();
    common::eventually("the second summary", || text().contains("Ctrl-C"));
    let _ = second.kill();
    let _ = second.wait();
    let summary = text();
    assert_eq!(
        step(&summary, " token --namespace"),
        "podid token --namespace default --service-account my-app"
    );
    assert!(!summary.contains("cargo install"), "{summary}");
}

/// A pseudo-terminal: the master to read from, and the path of its slave.
fn pty() -> (std::fs::File, std::path::PathBuf) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let path = std::path::PathBuf::from(name.into_string().unwrap());
    (std::fs::File::from(master), path)
}

#[test]
fn dev_logs_for_people_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let (mut master, slave) = pty();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave)
        .unwrap();
    let mut child = podid(dir.path())
        .args([
            "dev",
            "--data-dir",
            "devdata",
            "--listen",
            &addr.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(terminal)
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child, the slave's last holder, has gone.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().contains("podid agent listening") {
        assert!(child.try_wait().unwrap().is_none(), "podid dev exited");
        assert!(
            Instant::now() < deadline,
            "no log: {}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let text = seen.lock().unwrap().clone();
    assert!(text.contains("INFO"), "{text}");
    // The first start shows the new admin key once, on the terminal only.
    let secret = admin_secret(&dir.path().join("devdata"));
    assert_eq!(text.matches(&secret).count(), 1, "{text}");
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with('{')),
        "JSON on a terminal: {text}"
    );
}
