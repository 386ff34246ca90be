//! `SdkUpstream` (aws-sdk-sts) against a scripted STS on loopback: what is sent, and how each
//! kind of failure is classified after the SDK's retries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use podid_issuer::sts::{
    SdkUpstream, Source, Upstream, UpstreamConfig, UpstreamError, UpstreamRequest,
};

const OK: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/r/s</Arn></AssumedRoleUser>
<Credentials><AccessKeyId>ASIAUPSTREAMEXAMPLE1</AccessKeyId><SecretAccessKey>upstream-secret</SecretAccessKey><SessionToken>upstream-token</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>
</AssumeRoleResult><ResponseMetadata><RequestId>req-ok</RequestId></ResponseMetadata></AssumeRoleResponse>"#;

const NO_CREDENTIALS: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/r/s</Arn></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>req-empty</RequestId></ResponseMetadata></AssumeRoleResponse>"#;

fn error(status: u16, code: &str, message: &str, id: &str) -> (StatusCode, String) {
    (
        StatusCode::from_u16(status).unwrap(),
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>"
        ),
    )
}

#[derive(Clone, Copy)]
enum Script {
    Ok,
    Denied,
    Throttled,
    ServerError,
    Garbage,
    NoCredentials,
    Slow,
}

#[derive(Clone)]
struct Sts {
    script: Script,
    attempts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn answer(State(sts): State<Sts>, headers: HeaderMap, body: Bytes) -> Response {
    sts.attempts.fetch_add(1, Ordering::SeqCst);
    sts.seen
        .lock()
        .unwrap()
        .push((headers, String::from_utf8_lossy(&body).into_owned()));
    let (status, body) = match sts.script {
        Script::Ok => (StatusCode::OK, OK.to_owned()),
        Script::NoCredentials => (StatusCode::OK, NO_CREDENTIALS.to_owned()),
        Script::Denied => error(
            403,
            "AccessDenied",
            "User: u is not authorized to perform: sts:AssumeRole",
            "req-denied",
        ),
        Script::Throttled => error(400, "Throttling", "Rate exceeded", "req-throttled"),
        Script::ServerError => error(500, "InternalFailure", "oops", "req-500"),
        Script::Garbage => (StatusCode::OK, "this is not XML".to_owned()),
        Script::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, OK.to_owned())
        }
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("x-amzn-requestid", "req-header".parse().unwrap());
    response
}

async fn serve(script: Script) -> (SdkUpstream, Sts) {
    let sts = Sts {
        script,
        attempts: Arc::default(),
        seen: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(answer))
        .with_state(sts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = UpstreamConfig::new(Some(endpoint), "us-east-1".into());
    config.attempt_timeout = Duration::from_millis(500);
    config.initial_backoff = Duration::from_millis(10);
    let credentials = Credentials::new("AKIASOURCEEXAMPLE001", "source-secret", None, None, "test");
    (SdkUpstream::load(&config, Some(credentials)).await, sts)
}

fn request() -> UpstreamRequest {
    UpstreamRequest {
        role_arn: "arn:aws:iam::111111111111:role/r".into(),
        session_name: "eks-dev-pod-1234".into(),
        duration: Duration::from_secs(3600),
        tags: vec![
            ("kubernetes-namespace".into(), "default".into()),
            ("kubernetes-pod-name".into(), "pod".into()),
        ],
        transitive_tag_keys: vec!["kubernetes-namespace".into(), "kubernetes-pod-name".into()],
        policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        external_id: Some("ext-1".into()),
        source: Source::Default,
    }
}

fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn assume_role_sends_every_member_and_reads_the_session() {
    let (upstream, sts) = serve(Script::Ok).await;
    let session = upstream.assume_role(&request()).await.unwrap();
    assert_eq!(session.credentials.access_key_id, "ASIAUPSTREAMEXAMPLE1");
    assert_eq!(
        session.credentials.secret_access_key.expose(),
        "upstream-secret"
    );
    assert_eq!(session.credentials.session_token.expose(), "upstream-token");
    assert_eq!(
        session.credentials.expiration.unix_timestamp(),
        1_893_456_000
    );
    assert_eq!(
        session.assumed_role_arn,
        "arn:aws:sts::111111111111:assumed-role/r/s"
    );
    assert_eq!(session.request_id.as_deref(), Some("req-header"));
    // Debug never shows the secret or the token.
    let shown = format!("{session:?}");
    assert!(!shown.contains("upstream-secret") && !shown.contains("upstream-token"));

    let seen = sts.seen.lock().unwrap();
    let (headers, body) = &seen[0];
    let params = form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("Action"), Some("AssumeRole"));
    assert_eq!(get("RoleSessionName"), Some("eks-dev-pod-1234"));
    assert_eq!(get("DurationSeconds"), Some("3600"));
    assert_eq!(get("Tags.member.1.Key"), Some("kubernetes-namespace"));
    assert_eq!(get("Tags.member.2.Value"), Some("pod"));
    assert_eq!(
        get("TransitiveTagKeys.member.2"),
        Some("kubernetes-pod-name")
    );
    assert_eq!(
        get("Policy"),
        Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
    );
    assert_eq!(
        get("PolicyArns.member.1.arn"),
        Some("arn:aws:iam::aws:policy/ReadOnlyAccess")
    );
    assert_eq!(get("ExternalId"), Some("ext-1"));
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.contains("Credential=AKIASOURCEEXAMPLE001/"), "{auth}");
    assert!(!headers.contains_key("x-amz-security-token"));
}

#[tokio::test]
async fn a_chained_call_is_signed_with_the_session() {
    let (upstream, sts) = serve(Script::Ok).await;
    let first = upstream.assume_role(&request()).await.unwrap();
    let mut chained = request();
    chained.tags.clear();
    chained.transitive_tag_keys.clear();
    chained.source = Source::Session(Arc::new(first));
    upstream.assume_role(&chained).await.unwrap();
    let seen = sts.seen.lock().unwrap();
    let (headers, body) = &seen[1];
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.contains("Credential=ASIAUPSTREAMEXAMPLE1/"), "{auth}");
    assert_eq!(headers["x-amz-security-token"], "upstream-token");
    assert!(!body.contains("Tags.member"));
}

#[tokio::test]
async fn access_denied_keeps_the_message_and_is_not_retried() {
    let (upstream, sts) = serve(Script::Denied).await;
    let e = upstream.assume_role(&request()).await.unwrap_err();
    assert_eq!(
        e,
        UpstreamError::AccessDenied {
            message: "User: u is not authorized to perform: sts:AssumeRole".into(),
            request_id: Some("req-header".into()),
        }
    );
    assert_eq!(sts.attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn throttling_is_retried_then_reported() {
    let (upstream, sts) = serve(Script::Throttled).await;
    let e = upstream.assume_role(&request()).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Throttled { .. }), "{e:?}");
    assert_eq!(sts.attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let (upstream, sts) = serve(Script::ServerError).await;
    let e = upstream.assume_role(&request()).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Unavailable { .. }), "{e:?}");
    assert_eq!(sts.attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_hung_upstream_times_out_as_unavailable() {
    let (upstream, sts) = serve(Script::Slow).await;
    let e = upstream.assume_role(&request()).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Unavailable { .. }), "{e:?}");
    assert_eq!(sts.attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn nobody_listening_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = UpstreamConfig::new(Some(endpoint), "us-east-1".into());
    config.initial_backoff = Duration::from_millis(10);
    let credentials = Credentials::new("AKIASOURCEEXAMPLE001", "s", None, None, "test");
    let upstream = SdkUpstream::load(&config, Some(credentials)).await;
    let e = upstream.assume_role(&request()).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn unreadable_or_incomplete_answers_are_malformed() {
    for script in [Script::Garbage, Script::NoCredentials] {
        let (upstream, _) = serve(script).await;
        let e = upstream.assume_role(&request()).await.unwrap_err();
        assert!(matches!(e, UpstreamError::Malformed { .. }), "{e:?}");
    }
}
