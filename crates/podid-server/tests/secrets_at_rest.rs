//! Secrets at rest, against the real server on loopback and its SQLite file: access keys and the
//! session-sealing key ring never appear in the database's bytes, the server opens them again
//! only with their KEK, a rotation re-wraps them, and a database from before encryption at rest
//! is sealed on its first start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use podid_aws::sigv4::{SigningCredentials, sign_request};
use podid_server::{AdminKey, BoundServer, IssuingMode, ServerOptions, ServiceConfig};
use podid_store::Txn;
use podid_store::envelope::{Kek, KekSet, is_sealed};
use tokio::sync::oneshot;

const ACCOUNT: &str = "000000000000";
const KEYRING: &str = "issuer/keyring";

fn kek(byte: u8) -> Kek {
    Kek::from_bytes(&[byte; 32]).unwrap()
}

fn keks(current: u8, previous: &[u8]) -> Arc<KekSet> {
    Arc::new(KekSet::new(kek(current), previous.iter().map(|b| kek(*b)).collect()).unwrap())
}

/// A server on the SQLite file at `db`, until `stop` is sent.
struct Running {
    base: String,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap();
    }
}

async fn boot(
    db: &Path,
    keks: Arc<KekSet>,
    admin: &AdminKey,
) -> Result<Running, podid_server::Error> {
    let backend = podid_store::open(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let server = BoundServer::bind(ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        service: ServiceConfig::new("us-east-1", ACCOUNT),
        backend,
        admin_key: admin.clone(),
        keks,
        issuing: IssuingMode::Local,
        connections: podid_server::DEFAULT_CONNECTION_LIMITS,
    })
    .await?;
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel();
    let done = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Ok(Running { base, stop, done })
}

fn credentials(key: &AdminKey) -> SigningCredentials {
    SigningCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key().to_owned(),
        session_token: None,
    }
}

/// A SigV4-signed query-protocol POST; the status and body.
async fn query(base: &str, creds: &SigningCredentials, service: &str, form: &str) -> (u16, String) {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{base}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(form.to_owned()))
        .unwrap();
    sign_request(&mut req, creds, "us-east-1", service, SystemTime::now()).unwrap();
    let mut builder = reqwest::Client::new().post(req.uri().to_string());
    for (k, v) in req.headers() {
        builder = builder.header(k, v);
    }
    let resp = builder.body(req.body().clone()).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

async fn caller_identity(base: &str, creds: &SigningCredentials) -> (u16, String) {
    query(
        base,
        creds,
        "sts",
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await
}

/// Every byte of the database: the file, its WAL and shared-memory index.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(PathBuf::from(path)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw key bytes of the stored session-sealing ring, opened with `keks`.
async fn ring_keys(db: &Path, keks: &KekSet) -> Vec<Vec<u8>> {
    let backend = podid_store::open(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let kv = backend.store.get(KEYRING).await.unwrap().unwrap();
    assert!(is_sealed(&kv.value), "the key ring is stored in plain text");
    let ring: serde_json::Value =
        serde_json::from_slice(&keks.open(KEYRING, &kv.value).unwrap()).unwrap();
    let keys: Vec<Vec<u8>> = ring["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| STANDARD.decode(k["key"].as_str().unwrap()).unwrap())
        .collect();
    assert!(!keys.is_empty());
    keys
}

/// Asserts that neither a secret nor any sealing key is readable in the database's bytes.
async fn assert_nothing_in_clear(db: &Path, keks: &KekSet, secrets: &[&str]) {
    let ring = ring_keys(db, keks).await;
    let bytes = database_bytes(db);
    assert!(bytes.len() > 4096, "read the database");
    for secret in secrets {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "a secret access key is in the database in clear"
        );
    }
    for key in &ring {
        assert!(
            !contains(&bytes, key),
            "a sealing key is in the database in raw bytes"
        );
        assert!(
            !contains(&bytes, STANDARD.encode(key).as_bytes()),
            "a sealing key is in the database in base64"
        );
    }
}

#[tokio::test]
async fn secrets_are_sealed_in_the_file_and_open_only_with_their_kek() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podid.db");
    let admin_key = AdminKey::generate().unwrap();
    let admin = credentials(&admin_key);

    let server = boot(&db, keks(1, &[]), &admin_key).await.unwrap();
    let (status, body) = query(
        &server.base,
        &admin,
        "iam",
        "Action=CreateUser&Version=2010-05-08&UserName=node",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = query(
        &server.base,
        &admin,
        "iam",
        "Action=CreateAccessKey&Version=2010-05-08&UserName=node",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let node = SigningCredentials {
        access_key_id: xml_field(&body, "AccessKeyId").to_owned(),
        secret_access_key: xml_field(&body, "SecretAccessKey").to_owned(),
        session_token: None,
    };
    let (status, body) = caller_identity(&server.base, &node).await;
    assert_eq!(status, 200, "{body}");
    assert!(xml_field(&body, "Arn").ends_with(":user/node"));

    // The stored row of the new key is sealed, and neither it nor any byte of the database
    // holds the secret or the session-sealing keys.
    let backend = podid_store::open(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let row = backend
        .store
        .get(&format!("iam/key/{}", node.access_key_id))
        .await
        .unwrap()
        .unwrap();
    assert!(is_sealed(&row.value));
    drop(backend);
    assert_nothing_in_clear(
        &db,
        &keks(1, &[]),
        &[&node.secret_access_key, admin_key.secret_access_key()],
    )
    .await;
    server.shut_down().await;

    // Restarted with the same KEK: the key still signs.
    let server = boot(&db, keks(1, &[]), &admin_key).await.unwrap();
    assert_eq!(caller_identity(&server.base, &node).await.0, 200);
    server.shut_down().await;

    // With another KEK the server refuses to start, naming the KEK it would need.
    let err = boot(&db, keks(2, &[]), &admin_key)
        .await
        .err()
        .expect("started with the wrong KEK");
    let text = err.to_string();
    assert!(
        matches!(err, podid_server::Error::SecretsAtRest(_)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "sealed under KEK {}, which is not configured",
            kek(1).id()
        )),
        "{text}"
    );

    // Rotation: start with the new KEK and the old one as previous, then with the new one alone.
    let server = boot(&db, keks(2, &[1]), &admin_key).await.unwrap();
    assert_eq!(caller_identity(&server.base, &node).await.0, 200);
    server.shut_down().await;
    let server = boot(&db, keks(2, &[]), &admin_key).await.unwrap();
    assert_eq!(caller_identity(&server.base, &node).await.0, 200);
    server.shut_down().await;
    assert_nothing_in_clear(&db, &keks(2, &[]), &[&node.secret_access_key]).await;
    // The retired KEK opens nothing any more.
    assert!(boot(&db, keks(1, &[]), &admin_key).await.is_err());
}

#[tokio::test]
async fn a_plaintext_database_from_before_is_sealed_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podid.db");
    let secret = "LegacySecretLegacySecretLegacySecret0001";
    let akid = "AKIALEGACYLEGACY0001";
    // The format podid wrote before encryption at rest: plain JSON rows.
    let ring = podid_issuer::KeyRing::generate(Default::default(), time::OffsetDateTime::now_utc())
        .unwrap();
    let ring_json = ring.to_persisted().unwrap().as_bytes().to_vec();
    let user = serde_json::json!({
        "name": "legacy", "path": "/", "user_id": "AIDALEGACYLEGACYLEGAC",
        "arn": format!("arn:aws:iam::{ACCOUNT}:user/legacy"), "create_date": "2024-01-01T00:00:00Z",
        "access_keys": [akid],
    });
    let key = serde_json::json!({
        "access_key_id": akid, "user_name": "legacy", "secret_access_key": secret,
        "status": "Active", "create_date": "2024-01-01T00:00:00Z",
    });
    {
        let backend = podid_store::open(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
        let txn = Txn::new()
            .put("iam/user/legacy", serde_json::to_vec(&user).unwrap())
            .put(format!("iam/key/{akid}"), serde_json::to_vec(&key).unwrap())
            .put(KEYRING, ring_json);
        backend.store.txn(txn).await.unwrap();
    }
    // The test can fail: before the first start, the secret is there to be found.
    assert!(contains(&database_bytes(&db), secret.as_bytes()));

    let admin_key = AdminKey::generate().unwrap();
    let server = boot(&db, keks(1, &[]), &admin_key).await.unwrap();
    let legacy = SigningCredentials {
        access_key_id: akid.into(),
        secret_access_key: secret.into(),
        session_token: None,
    };
    let (status, body) = caller_identity(&server.base, &legacy).await;
    assert_eq!(status, 200, "{body}");
    assert!(xml_field(&body, "Arn").ends_with(":user/legacy"));
    server.shut_down().await;
    assert_nothing_in_clear(&db, &keks(1, &[]), &[secret, admin_key.secret_access_key()]).await;
}
