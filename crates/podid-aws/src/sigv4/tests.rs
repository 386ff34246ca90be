use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Request;

use super::*;
use crate::error::Protocol;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn creds(token: Option<&str>) -> SigningCredentials {
    SigningCredentials {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: token.map(str::to_owned),
    }
}

/// Signs like a client, then turns the request into what the server sees (origin-form URI).
fn signed(
    method: &str,
    uri: &str,
    body: &str,
    token: Option<&str>,
    at: SystemTime,
) -> (http::request::Parts, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_owned()))
        .unwrap();
    sign_request(&mut req, &creds(token), "us-east-1", "eks", at).unwrap();
    let (mut parts, body) = req.into_parts();
    let host = parts.uri.authority().unwrap().to_string();
    parts.headers.insert("host", host.parse().unwrap());
    parts.uri = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    (parts, body)
}

fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    secret: &str,
    now: SystemTime,
) -> Result<ParsedAuth, SigV4Error> {
    let auth = parse_request(parts)?;
    verify_signature(parts, body, &auth, secret, now)?;
    Ok(auth)
}

#[test]
fn aws_test_suite_get_vanilla() {
    // From the AWS SigV4 test suite ("get-vanilla").
    let req = Request::builder()
        .method("GET")
        .uri("/")
        .header("host", "example.amazonaws.com")
        .header("x-amz-date", "20150830T123600Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let auth = parse_request(&parts).unwrap();
    assert_eq!(auth.service, "service");
    verify_signature(&parts, b"", &auth, SECRET, auth.time).unwrap();
}

#[test]
fn header_form_round_trip_and_session_token() {
    let now = SystemTime::now();
    let (parts, body) = signed(
        "POST",
        "http://127.0.0.1:7400/clusters/dev/pod-identity-associations?x=a%20b",
        "{\"a\":1}",
        None,
        now,
    );
    let auth = verify(&parts, &body, SECRET, now).unwrap();
    assert_eq!(auth.access_key_id, AKID);
    assert_eq!(auth.region, "us-east-1");
    assert!(auth.session_token.is_none());

    let (parts, body) = signed(
        "GET",
        "http://localhost/clusters",
        "",
        Some("tok+en/=="),
        now,
    );
    let auth = verify(&parts, &body, SECRET, now).unwrap();
    assert_eq!(auth.session_token.as_deref(), Some("tok+en/=="));
}

#[test]
fn tampering_is_refused() {
    let now = SystemTime::now();
    let (parts, body) = signed(
        "POST",
        "http://h/clusters/dev/pod-identity-associations",
        "{\"a\":1}",
        None,
        now,
    );
    assert_eq!(
        verify(&parts, b"{\"a\":2}", SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    assert_eq!(
        verify(&parts, &body, "wrong-secret", now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    let mut p2 = parts.clone();
    p2.uri = "/clusters/other/pod-identity-associations".parse().unwrap();
    assert_eq!(
        verify(&p2, &body, SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    let mut p3 = parts.clone();
    p3.method = http::Method::PUT;
    assert_eq!(
        verify(&p3, &body, SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    let mut p4 = parts.clone();
    p4.headers
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(
        verify(&p4, &body, SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    let (mut p5, body5) = signed("GET", "http://h/clusters", "", Some("token-a"), now);
    p5.headers
        .insert("x-amz-security-token", "token-b".parse().unwrap());
    assert_eq!(
        verify(&p5, &body5, SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    let mut p6 = parts.clone();
    p6.headers
        .insert("x-amz-content-sha256", "00".repeat(32).parse().unwrap());
    assert_eq!(
        verify(&p6, &body, SECRET, now).unwrap_err(),
        SigV4Error::PayloadHashMismatch
    );
}

#[test]
fn clock_skew_beyond_fifteen_minutes_is_refused() {
    let now = SystemTime::now();
    let (parts, body) = signed(
        "GET",
        "http://h/clusters",
        "",
        None,
        now - Duration::from_secs(16 * 60),
    );
    let err = verify(&parts, &body, SECRET, now).unwrap_err();
    assert!(matches!(err, SigV4Error::SkewTooLarge { .. }));
    let aws = err.to_aws(Protocol::RestJson);
    assert_eq!(aws.code, "InvalidSignatureException");
    assert!(aws.message.starts_with("Signature expired:"));
    let (parts, body) = signed(
        "GET",
        "http://h/clusters",
        "",
        None,
        now + Duration::from_secs(16 * 60),
    );
    assert!(matches!(
        verify(&parts, &body, SECRET, now),
        Err(SigV4Error::SkewTooLarge { .. })
    ));
    let (parts, body) = signed(
        "GET",
        "http://h/clusters",
        "",
        None,
        now - Duration::from_secs(14 * 60),
    );
    verify(&parts, &body, SECRET, now).unwrap();
}

fn presign(uri: &str, token: Option<&str>, at: SystemTime, expires: u64) -> http::request::Parts {
    let identity: Identity =
        Credentials::new(AKID, SECRET, token.map(str::to_owned), None, "t").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("GET", uri, std::iter::empty(), SignableBody::Bytes(b"")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = Request::builder().method("GET").uri(uri).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let (mut parts, ()) = req.into_parts();
    let host = parts.uri.authority().unwrap().to_string();
    parts.headers.insert("host", host.parse().unwrap());
    parts.uri = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    parts
}

#[test]
fn presigned_urls_verify_and_expire() {
    let now = SystemTime::now();
    let uri = "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15";
    let parts = presign(uri, Some("sess/tok+1="), now, 60);
    let auth = verify(&parts, b"", SECRET, now).unwrap();
    assert_eq!(auth.service, "sts");
    assert_eq!(auth.session_token.as_deref(), Some("sess/tok+1="));
    assert!(matches!(auth.location, AuthLocation::Query { .. }));

    let later = now + Duration::from_secs(61);
    assert_eq!(
        verify(&parts, b"", SECRET, later).unwrap_err(),
        SigV4Error::PresignExpired
    );

    let mut tampered = parts.clone();
    let q = parts
        .uri
        .to_string()
        .replace("GetCallerIdentity", "GetSessionToken");
    tampered.uri = q.parse().unwrap();
    assert_eq!(
        verify(&tampered, b"", SECRET, now).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn malformed_authorization_is_incomplete() {
    let base = |auth: &str| {
        let (parts, ()) = Request::builder()
            .uri("/")
            .header("host", "h")
            .header("x-amz-date", "20240101T000000Z")
            .header("authorization", auth)
            .body(())
            .unwrap()
            .into_parts();
        parse_request(&parts)
    };
    assert!(matches!(base("Bearer x"), Err(SigV4Error::Incomplete(_))));
    assert!(matches!(
        base("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
        Err(SigV4Error::Incomplete(_))
    ));
    assert!(matches!(
        base(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/eks, SignedHeaders=host, Signature=00"
        ),
        Err(SigV4Error::Incomplete(_))
    ));
    assert!(matches!(
        base(&format!(
            "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/eks/aws4_request, SignedHeaders=x-amz-date, Signature={}",
            "0".repeat(64)
        )),
        Err(SigV4Error::Incomplete(_))
    ));
    assert!(matches!(
        base(&"A".repeat(10_000)),
        Err(SigV4Error::Incomplete(_))
    ));

    let (parts, ()) = Request::builder().uri("/").body(()).unwrap().into_parts();
    assert_eq!(parse_request(&parts).unwrap_err(), SigV4Error::Missing);
}

#[test]
fn errors_map_to_each_protocol() {
    assert_eq!(
        SigV4Error::Missing.to_aws(Protocol::RestJson).code,
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        SigV4Error::Missing.to_aws(Protocol::Query).code,
        "MissingAuthenticationToken"
    );
    assert_eq!(
        SigV4Error::UnknownAccessKey.to_aws(Protocol::RestJson).code,
        "UnrecognizedClientException"
    );
    assert_eq!(
        SigV4Error::UnknownAccessKey.to_aws(Protocol::Query).code,
        "InvalidClientTokenId"
    );
    assert_eq!(
        SigV4Error::SignatureMismatch.to_aws(Protocol::Query).code,
        "SignatureDoesNotMatch"
    );
    assert_eq!(
        SigV4Error::SignatureMismatch
            .to_aws(Protocol::Json11)
            .status,
        400
    );
    assert_eq!(
        SigV4Error::SignatureMismatch
            .to_aws(Protocol::RestJson)
            .status,
        403
    );
    assert_eq!(
        SigV4Error::ExpiredSessionToken.to_aws(Protocol::Query).code,
        "ExpiredToken"
    );
}

#[test]
fn a_second_authorization_date_or_token_header_is_refused() {
    let vanilla = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    for (name, first, second) in [
        (
            "authorization",
            vanilla,
            "AWS4-HMAC-SHA256 Credential=AKIAOTHER/x",
        ),
        ("x-amz-date", "20150830T123600Z", "20150830T123600Z"),
        ("x-amz-security-token", "a", "b"),
    ] {
        let mut builder = Request::builder()
            .method("GET")
            .uri("/")
            .header("host", "example.amazonaws.com")
            .header(name, first)
            .header(name, second);
        if name != "authorization" {
            builder = builder.header("authorization", vanilla);
        }
        if name != "x-amz-date" {
            builder = builder.header("x-amz-date", "20150830T123600Z");
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        match parse_request(&parts) {
            Err(SigV4Error::Incomplete(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}
