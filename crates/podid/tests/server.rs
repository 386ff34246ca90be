//! `podid server` and the admin commands, run as real processes against each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{client, free_addr, ok_json, podid, start};

const ROLE: &str = "arn:aws:iam::000000000000:role/my-app-role";
const JWKS: &str =
    r#"{"keys":[{"use":"sig","kty":"RSA","kid":"k1","alg":"RS256","n":"sXch","e":"AQAB"}]}"#;

fn server_args<'a>(addr: &'a str, data: &'a str) -> Vec<&'a str> {
    vec![
        "server",
        "--listen",
        addr,
        "--data-dir",
        data,
        "--log-format",
        "json",
    ]
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["server", "--listen", "not-an-address"][..],
        &["server", "--account-id", "1234"],
        &["server", "--tls-cert", "c.pem"],
        &["server", "--store", "postgres://x"],
        &["server", "--max-credential-duration", "15 minutes"],
        &["server", "--no-such-flag"],
        &["association", "list"],
        &[
            "token",
            "--namespace",
            "n",
            "--service-account",
            "s",
            "--cluster",
            "prod",
        ],
        &[
            "exec",
            "--namespace",
            "n",
            "--service-account",
            "s",
            "--token-ttl",
            "5m",
            "--",
            "true",
        ],
    ] {
        let out = podid(dir.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    // Environment variables are flags too.
    let out = podid(dir.path())
        .arg("server")
        .env("PODID_ACCOUNT_ID", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    // Nothing was created by the refused starts.
    assert!(!dir.path().join("podid-data").exists());
}

#[test]
fn an_unreachable_server_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{}", free_addr());
    let out = podid(dir.path())
        .args(["cluster", "list", "--endpoint", &endpoint])
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("podid dev"));
}

#[test]
fn server_creates_a_private_admin_key_and_manages_clusters_and_associations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let (a, d) = (addr.to_string(), data.to_str().unwrap().to_owned());
    let server = start(dir.path(), addr, &server_args(&a, &d));
    let endpoint = server.endpoint();

    let key_file = data.join("admin-credentials");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let secret = key_text
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap();
    // stderr is a file here, i.e. a log: the new key's id and file are logged, its secret is not
    // (on a terminal it is shown once: `dev_logs_for_people_on_a_terminal` in tests/dev.rs).
    let stderr = server.stderr_text();
    assert!(!stderr.contains(secret), "the secret reached the log");
    assert!(
        stderr.contains("created administrator key")
            && stderr.contains(&*key_file.to_string_lossy()),
        "{stderr}"
    );

    // Clusters.
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, JWKS).unwrap();
    let run = |args: &[&str]| client(dir.path(), &endpoint, &data, args);
    let reg = ok_json(&run(&[
        "cluster",
        "register",
        "--name",
        "c1",
        "--issuer",
        "https://c1.example",
        "--jwks-file",
        jwks_file.to_str().unwrap(),
    ]));
    assert_eq!(reg["cluster"]["name"], "c1");
    assert_eq!(reg["cluster"]["jwks"]["keys"][0]["kid"], "k1");
    ok_json(&run(&[
        "cluster",
        "register",
        "--name",
        "c2",
        "--issuer",
        "https://c2.example",
        "--jwks-uri",
        "https://c2.example/jwks",
    ]));
    let list = ok_json(&run(&["cluster", "list"]));
    let names: Vec<&str> = list["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c1", "c2"]);
    let upd = ok_json(&run(&[
        "cluster",
        "update",
        "--name",
        "c2",
        "--issuer",
        "https://c2.example/v2",
    ]));
    assert_eq!(upd["cluster"]["issuer"], "https://c2.example/v2");
    assert_eq!(
        ok_json(&run(&["cluster", "describe", "--name", "c2"]))["cluster"]["jwksUri"],
        "https://c2.example/jwks"
    );
    ok_json(&run(&["cluster", "delete", "--name", "c2"]));

    // Associations.
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#).unwrap();
    let created = ok_json(&run(&[
        "association",
        "create",
        "--cluster-name",
        "c1",
        "--namespace",
        "default",
        "--service-account",
        "my-app",
        "--role-arn",
        ROLE,
        "--tag",
        "team=payments",
        "--disable-session-tags",
        "--policy",
        &format!("file://{}", policy.display()),
    ]));
    let a = &created["association"];
    let id = a["associationId"].as_str().unwrap().to_owned();
    assert_eq!(a["tags"]["team"], "payments");
    assert_eq!(a["disableSessionTags"], true);
    assert!(a["policy"].as_str().unwrap().contains("s3:GetObject"));
    for sa in ["b", "c", "d"] {
        ok_json(&run(&[
            "association",
            "create",
            "--cluster-name",
            "c1",
            "--namespace",
            "other",
            "--service-account",
            sa,
            "--role-arn",
            ROLE,
        ]));
    }
    // Without --max-results every page is followed.
    let all = ok_json(&run(&["association", "list", "--cluster-name", "c1"]));
    assert_eq!(all["associations"].as_array().unwrap().len(), 4);
    assert!(all.get("nextToken").is_none());
    let page = ok_json(&run(&[
        "association",
        "list",
        "--cluster-name",
        "c1",
        "--max-results",
        "2",
    ]));
    assert_eq!(page["associations"].as_array().unwrap().len(), 2);
    let next = page["nextToken"].as_str().unwrap();
    let rest = ok_json(&run(&[
        "association",
        "list",
        "--cluster-name",
        "c1",
        "--max-results",
        "2",
        "--next-token",
        next,
    ]));
    assert_eq!(rest["associations"].as_array().unwrap().len(), 2);
    let filtered = ok_json(&run(&[
        "association",
        "list",
        "--cluster-name",
        "c1",
        "--namespace",
        "default",
    ]));
    assert_eq!(filtered["associations"][0]["associationId"], id.as_str());
    assert_eq!(filtered["associations"].as_array().unwrap().len(), 1);

    let described = ok_json(&run(&[
        "association",
        "describe",
        "--cluster-name",
        "c1",
        "--association-id",
        &id,
    ]));
    assert_eq!(described["association"]["serviceAccount"], "my-app");
    let updated = ok_json(&run(&[
        "association",
        "update",
        "--cluster-name",
        "c1",
        "--association-id",
        &id,
        "--role-arn",
        "arn:aws:iam::000000000000:role/other",
        "--no-disable-session-tags",
        "--policy",
        "",
    ]));
    assert_eq!(
        updated["association"]["roleArn"],
        "arn:aws:iam::000000000000:role/other"
    );
    assert_eq!(updated["association"]["disableSessionTags"], false);
    assert!(updated["association"].get("policy").is_none());
    let deleted = ok_json(&run(&[
        "association",
        "delete",
        "--cluster-name",
        "c1",
        "--association-id",
        &id,
    ]));
    assert_eq!(deleted["association"]["associationId"], id.as_str());

    // Errors: the EKS code on stderr, exit 1.
    let out = run(&["association", "list", "--cluster-name", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ResourceNotFoundException: "),
        "{stderr}"
    );
    let out = run(&["cluster", "delete", "--name", "c1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceInUseException"));
    // A wrong key is refused by the server, not by the client.
    let out = podid(dir.path())
        .args([
            "cluster",
            "list",
            "--endpoint",
            &endpoint,
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sigterm_stops_the_server_and_a_restart_keeps_the_associations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let (a, d) = (addr.to_string(), data.to_str().unwrap().to_owned());
    let mut server = start(dir.path(), addr, &server_args(&a, &d));
    let endpoint = server.endpoint();
    let run = |args: &[&str]| client(dir.path(), &endpoint, &data, args);
    ok_json(&run(&[
        "cluster",
        "register",
        "--name",
        "c1",
        "--issuer",
        "https://c1.example",
        "--jwks",
        JWKS,
    ]));
    let created = ok_json(&run(&[
        "association",
        "create",
        "--cluster-name",
        "c1",
        "--namespace",
        "ns",
        "--service-account",
        "sa",
        "--role-arn",
        ROLE,
    ]));
    let id = created["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", server.stderr_text());
    assert!(!common::healthy(addr));

    let server = start(dir.path(), addr, &server_args(&a, &d));
    assert!(
        !server.stderr_text().contains("aws_secret_access_key"),
        "an existing key is not shown again"
    );
    let listed = ok_json(&run(&["association", "list", "--cluster-name", "c1"]));
    assert_eq!(listed["associations"][0]["associationId"], id.as_str());
}

/// The access key id and secret of a shared-credentials file.
fn key_in(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    (
        field("aws_access_key_id = "),
        field("aws_secret_access_key = "),
    )
}

/// Whether `key` is accepted by the server at `endpoint` (a signed `cluster list`).
fn accepted(dir: &std::path::Path, endpoint: &str, key: &(String, String)) -> bool {
    let out = podid(dir)
        .args([
            "cluster",
            "list",
            "--endpoint",
            endpoint,
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The admin API is rest-json: an unknown key is UnrecognizedClientException there.
        assert!(stderr.contains("UnrecognizedClientException"), "{stderr}");
    }
    out.status.success()
}

#[test]
fn the_admin_key_rotates_and_a_replaced_key_file_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let (a, d) = (addr.to_string(), data.to_str().unwrap().to_owned());
    let mut server = start(dir.path(), addr, &server_args(&a, &d));
    let endpoint = server.endpoint();
    let key_file = data.join("admin-credentials");
    let first = key_in(&key_file);
    assert!(accepted(dir.path(), &endpoint, &first));

    // Online rotation: the file gets the new key, the old one stops working at once.
    let out = client(dir.path(), &endpoint, &data, &["admin", "rotate-key"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = key_in(&key_file);
    assert_ne!(first.0, second.0);
    assert!(
        stdout.contains(&format!("{} retired, {} written to", first.0, second.0)),
        "{stdout}"
    );
    assert!(!accepted(dir.path(), &endpoint, &first));
    assert!(accepted(dir.path(), &endpoint, &second));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Offline replacement: delete the file and restart. The new key works, the old one is
    // retired (it used to stay active beside the new one).
    server.terminate(Duration::from_secs(20));
    std::fs::remove_file(&key_file).unwrap();
    let server = start(dir.path(), addr, &server_args(&a, &d));
    let third = key_in(&key_file);
    assert_ne!(third.0, second.0);
    assert!(accepted(dir.path(), &endpoint, &third));
    assert!(!accepted(dir.path(), &endpoint, &second));
    assert!(
        server.stderr_text().contains(
            "retired an administrator key that the administrator key file no longer holds"
        ),
        "{}",
        server.stderr_text()
    );
    // podid-admin holds exactly one key, so a second rotation stays within IAM's two-key limit.
    let out = client(dir.path(), &endpoint, &data, &["admin", "rotate-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(accepted(dir.path(), &endpoint, &key_in(&key_file)));

    // A key file that is not podid-admin's is refused.
    let other = dir.path().join("other-credentials");
    std::fs::write(
        &other,
        "[default]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = x\n",
    )
    .unwrap();
    let out = client(
        dir.path(),
        &endpoint,
        &data,
        &["admin", "rotate-key", "--key-file", other.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidClientTokenId"));
}

#[test]
fn an_admin_key_file_named_on_the_command_line_is_created_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys").join("admin");
    let addr = free_addr();
    let a = addr.to_string();
    let data = dir.path().join("data");
    let mut args = server_args(&a, data.to_str().unwrap());
    args.extend(["--admin-access-key-file", key_file.to_str().unwrap()]);
    let server = start(dir.path(), addr, &args);
    assert!(accepted(dir.path(), &server.endpoint(), &key_in(&key_file)));
}

/// Every byte of the SQLite database in `data` (the file and its WAL).
fn database_bytes(data: &std::path::Path) -> Vec<u8> {
    ["podid.db", "podid.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(data.join(f)).ok())
        .flatten()
        .collect()
}

/// Runs `podid server` expecting it to refuse to start; its last stderr line.
fn refused_start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = podid(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn secrets_are_sealed_under_a_kek_beside_the_database_and_only_that_kek_starts_it() {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let (a, d) = (addr.to_string(), data.to_str().unwrap().to_owned());
    let mut server = start(dir.path(), addr, &server_args(&a, &d));

    // The default KEK: created beside the database, private, logged by id only.
    let kek_file = data.join("kek");
    assert_eq!(
        std::fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let kek_text = std::fs::read_to_string(&kek_file).unwrap();
    let kek = base64::engine::general_purpose::STANDARD
        .decode(kek_text.trim())
        .unwrap();
    assert_eq!(kek.len(), 32);
    let stderr = server.stderr_text();
    assert!(stderr.contains("created a key-encryption key"), "{stderr}");
    assert!(!stderr.contains(kek_text.trim()), "the KEK reached the log");
    let (_, admin_secret) = key_in(&data.join("admin-credentials"));
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));
    assert!(
        !database_bytes(&data)
            .windows(admin_secret.len())
            .any(|w| w == admin_secret.as_bytes())
    );

    // Another KEK, from the environment: status 64 and a line that says which KEK is needed.
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let line = refused_start(
        dir.path(),
        &server_args(&a, &d),
        &[("PODID_KEK", other.as_str())],
    );
    assert!(
        line.starts_with("error: ") && line.contains("which is not configured"),
        "{line}"
    );
    // A malformed one is refused before anything starts.
    let line = refused_start(
        dir.path(),
        &server_args(&a, &d),
        &[("PODID_KEK", "almost-a-kek")],
    );
    assert!(
        line.contains("PODID_KEK") && !line.contains("almost-a-kek"),
        "{line}"
    );

    // Rotation: a new KEK file (created on this start) with the old one as previous...
    let new_kek = data.join("kek.new");
    let mut args = server_args(&a, &d);
    let (n, o) = (new_kek.to_str().unwrap(), kek_file.to_str().unwrap());
    args.extend(["--kek-file", n, "--previous-kek-file", o]);
    let mut server = start(dir.path(), addr, &args);
    assert!(
        server.stderr_text().contains("re-wrapped secret records"),
        "{}",
        server.stderr_text()
    );
    assert!(accepted(
        dir.path(),
        &server.endpoint(),
        &key_in(&data.join("admin-credentials"))
    ));
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));
    // ...after which the new KEK alone starts it, and the old one no longer does.
    let mut args = server_args(&a, &d);
    args.extend(["--kek-file", n]);
    let mut server = start(dir.path(), addr, &args);
    assert!(accepted(
        dir.path(),
        &server.endpoint(),
        &key_in(&data.join("admin-credentials"))
    ));
    assert_eq!(server.terminate(Duration::from_secs(10)).code(), Some(0));
    let line = refused_start(dir.path(), &server_args(&a, &d), &[]);
    assert!(line.contains("which is not configured"), "{line}");
}
