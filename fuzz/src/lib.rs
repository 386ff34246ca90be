//! The bodies of podid's fuzz targets, one function per target in `fuzz_targets/`, and the fixed
//! context each runs in (a signing key, a clock, an association set, a request context).
//!
//! Every function calls the product's own entry points; nothing here re-implements a parser. A
//! panic anywhere below is a finding; the `assert!`s state invariants the product promises (a
//! verified token's subject names its service account, a webhook patch applies to its pod).
//! Fixture set-up runs once per process on fixed inputs, so its `expect`s cannot fire on input.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use podid_iam::{
    Policy, PrincipalInfo, RequestContext, evaluate, evaluate_resource_policy,
    evaluate_with_session_policies,
};
use podid_token::{ClusterKeys, KeySet, KeySource, KeysConfig, Verifier, VerifierConfig};
use podid_webhook::{AssociationSet, Jitter, MutationConfig, ServiceAccountInfo};
use serde_json::Value;

/// The fixed "now" of every time-dependent check (2027-01-15).
pub const NOW: i64 = 1_800_000_000;
/// The issuer the token verifier accepts.
pub const ISSUER: &str = "https://oidc.example.test/id/CLUSTER1";
/// The SigV4 secret every signature is recomputed with.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// ---------------------------------------------------------------------------------------------
// podid-token

struct TokenFixture {
    key: EcdsaKeyPair,
    jwks: String,
    verifier: Verifier,
}

/// A fixed P-256 key (`keys/p256-sec1.der`, used for nothing else), its JWKS and a verifier for it.
fn token_fixture() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = EcdsaKeyPair::from_private_key_der(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            include_bytes!("../keys/p256-sec1.der"),
        )
        .expect("keys/p256-sec1.der is a P-256 SEC 1 (RFC 5915) key");
        let point = key.public_key().as_ref();
        let (x, y) = point
            .get(1..33)
            .zip(point.get(33..65))
            .expect("an uncompressed P-256 point is 65 bytes");
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "fuzz-ec",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]})
        .to_string();
        let keys = ClusterKeys::new(KeySource::Inline(jwks.clone()), KeysConfig::default())
            .expect("the fixture JWKS parses");
        let verifier = Verifier::new(VerifierConfig::new(ISSUER), Arc::new(keys));
        TokenFixture {
            key,
            jwks,
            verifier,
        }
    })
}

/// `b64(header).b64(claims).b64(ES256 signature)` with the fixture key.
fn sign_es256(header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = token_fixture()
        .key
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("ECDSA signing does not fail");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Target `token`. First byte even: the rest is a compact JWS, verified as it is (segments,
/// header, key lookup, signature checks). Odd: the rest is `header JSON \n claims JSON`, signed
/// with the fixture key first, so the claim checks behind the signature are reached too.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, claims) = split_once(rest, b'\n');
        sign_es256(header, claims)
    };
    drop(podid_token::peek_unverified(&token));
    if let Ok(verified) = token_fixture().verifier.verify_cached(&token, NOW) {
        let subject = format!(
            "system:serviceaccount:{}:{}",
            verified.namespace, verified.service_account
        );
        assert_eq!(*verified.subject, subject, "verified subject mismatch");
        assert_eq!(&*verified.issuer, ISSUER);
        assert!(verified.expires_at > NOW - 60, "verified an expired token");
    }
}

/// Target `jwks`: a JWKS document parsed; a parsed set then verifies a token signed by the
/// fixture key (found, or refused as an unknown key, never a panic).
pub fn jwks(data: &[u8]) {
    let Ok(set) = KeySet::parse(data) else {
        return;
    };
    let _ = (set.len(), set.is_empty(), set.kids().count());
    static TOKEN: OnceLock<String> = OnceLock::new();
    let token = TOKEN.get_or_init(|| {
        sign_es256(
            br#"{"alg":"ES256","kid":"fuzz-ec"}"#,
            br#"{"iss":"https://oidc.example.test/id/CLUSTER1"}"#,
        )
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keys) = ClusterKeys::new(KeySource::Inline(text.to_owned()), KeysConfig::default()) {
        let verifier = Verifier::new(VerifierConfig::new(ISSUER), Arc::new(keys));
        drop(verifier.verify_cached(token, NOW));
    }
}

/// The fixture JWKS document (for seeding the `jwks` corpus).
pub fn fixture_jwks() -> &'static str {
    &token_fixture().jwks
}

// ---------------------------------------------------------------------------------------------
// podid-aws SigV4

/// Target `sigv4_header`: `target \n Authorization \n X-Amz-Date \n (name: value \n)* \n body`,
/// parsed as a header-signed request, then verified (canonical request, string to sign, HMAC)
/// at its own signing time so the clock check passes.
pub fn sigv4_header(data: &[u8]) {
    let (head, body) = split_head_body(data);
    let mut lines = head.split('\n');
    let target = lines.next().unwrap_or_default();
    let authorization = lines.next().unwrap_or_default();
    let date = lines.next().unwrap_or_default();
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(valid_uri(target))
        .header("host", "sts.us-east-1.amazonaws.com");
    for (name, value) in [("authorization", authorization), ("x-amz-date", date)] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            builder = builder.header(name, v);
        }
    }
    verify_sigv4(add_headers(builder, lines), body);
}

/// Target `sigv4_presigned`: `query string \n (name: value \n)*`, parsed as a presigned URL
/// (`X-Amz-Credential`, `X-Amz-Expires`, ...), then verified at its own signing time.
pub fn sigv4_presigned(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or_default();
    let builder = http::Request::builder()
        .method("GET")
        .uri(valid_uri(&format!("/?{query}")))
        .header("host", "sts.us-east-1.amazonaws.com");
    verify_sigv4(add_headers(builder, lines), &[]);
}

fn verify_sigv4(builder: http::request::Builder, body: &[u8]) {
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let Ok(auth) = podid_aws::sigv4::parse_request(&parts) else {
        return;
    };
    drop(format!("{auth:?}"));
    drop(podid_aws::sigv4::verify_signature(
        &parts, body, &auth, SECRET, auth.time,
    ));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW.unsigned_abs());
    drop(podid_aws::sigv4::verify_signature(
        &parts, body, &auth, SECRET, now,
    ));
}

fn valid_uri(target: &str) -> http::Uri {
    target
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"))
}

fn add_headers<'a>(
    mut builder: http::request::Builder,
    lines: impl Iterator<Item = &'a str>,
) -> http::request::Builder {
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    builder
}

// ---------------------------------------------------------------------------------------------
// podid-iam

/// Target `iam_policy`: the input parsed as a policy document; a parsed policy is checked as an
/// identity and as a resource policy, then evaluated every way podid evaluates policies against
/// two fixed requests (a pod's trust-policy check, an assumed role's S3 call).
pub fn iam_policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(policy) = Policy::parse(&text) else {
        return;
    };
    drop(policy.check_identity_policy());
    drop(policy.check_resource_policy());
    let _ = (policy.version(), policy.id(), policy.text().len());
    for statement in policy.statements() {
        let _ = (statement.sid(), statement.effect());
    }
    for request in iam_requests() {
        let trust = evaluate_resource_policy(&policy, request);
        let identity = evaluate(&[&policy], request);
        let session = evaluate_with_session_policies(&[&policy], &[&policy], request);
        // A session policy only narrows: what the intersection allows, the identity set allows.
        assert!(
            !session.is_allowed() || identity.is_allowed(),
            "a session policy widened an identity policy"
        );
        let _ = trust.is_allowed();
    }
}

fn iam_requests() -> &'static [RequestContext] {
    static REQUESTS: OnceLock<Vec<RequestContext>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        let now = time::OffsetDateTime::from_unix_timestamp(NOW).expect("NOW is a valid time");
        vec![
            RequestContext::new(
                PrincipalInfo::service("pods.eks.amazonaws.com"),
                "sts:AssumeRole",
            )
            .with_resource("arn:aws:iam::111122223333:role/app")
            .with_value("aws:SourceAccount", "111122223333")
            .with_value(
                "aws:SourceArn",
                "arn:aws:eks:us-east-1:111122223333:cluster/c1",
            )
            .with_value("aws:RequestTag/kubernetes-namespace", "default")
            .with_value("aws:RequestTag/kubernetes-service-account", "app")
            .with_values(
                "aws:TagKeys",
                ["kubernetes-namespace", "kubernetes-service-account"],
            )
            .with_time(now),
            RequestContext::new(
                PrincipalInfo::assumed_role(
                    "arn:aws:sts::111122223333:assumed-role/app/eks-c1-app-1",
                    "arn:aws:iam::111122223333:role/app",
                ),
                "s3:GetObject",
            )
            .with_resource("arn:aws:s3:::bucket/default/app/key.txt")
            .with_value("aws:SourceIp", "10.1.2.3")
            .with_value("aws:PrincipalTag/kubernetes-namespace", "default")
            .with_value("aws:SecureTransport", "true")
            .with_value("aws:MultiFactorAuthAge", "300")
            .with_time(now),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// podid-server protocol decoding

/// Target `query`: `query string \n body`, decoded as an IAM/STS query-protocol request.
pub fn query(data: &[u8]) {
    let (query, body) = split_once(data, b'\n');
    let query = String::from_utf8_lossy(query);
    podid_server::fuzzing::query(Some(&query), body);
}

/// Target `rest_json`: `query string \n body`, decoded as an EKS rest-json request.
pub fn rest_json(data: &[u8]) {
    let (query, body) = split_once(data, b'\n');
    let query = String::from_utf8_lossy(query);
    podid_server::fuzzing::rest_json(Some(&query), body);
}

/// Target `json11`: a CloudTrail `LookupEvents` body.
pub fn json11(data: &[u8]) {
    podid_server::fuzzing::json11(data);
}

// ---------------------------------------------------------------------------------------------
// podid-webhook

/// Target `admission`: an `AdmissionReview` body through `admit()` with a fixed association set
/// and service accounts. A patch must be base64 JSON that applies to the pod it was made for,
/// as the kube-apiserver will apply it.
pub fn admission(data: &[u8]) {
    static ASSOCIATIONS: OnceLock<AssociationSet> = OnceLock::new();
    let associations = ASSOCIATIONS.get_or_init(|| {
        AssociationSet::new(
            [
                ("default", "app"),
                ("default", "default"),
                ("team-a", "worker"),
                ("kube-system", "app"),
                ("ns", "sa"),
            ]
            .map(|(ns, sa)| (ns.to_owned(), sa.to_owned())),
        )
    });
    let config = MutationConfig {
        full_uri: podid_webhook::FULL_URI_IPV4.to_owned(),
        aws_default_region: Some("us-west-2".to_owned()),
        regional_sts: false,
        token_expiration: 86_400,
        jitter: Jitter::Fixed(80_000),
    };
    let lookup = |namespace: &str, _name: &str| match namespace {
        "default" => ServiceAccountInfo::Known(BTreeMap::from([
            (
                podid_webhook::TOKEN_EXPIRATION_ANNOTATION.to_owned(),
                "3600".to_owned(),
            ),
            (
                podid_webhook::STS_REGIONAL_ANNOTATION.to_owned(),
                "true".to_owned(),
            ),
        ])),
        "team-a" => ServiceAccountInfo::Unknown,
        _ => ServiceAccountInfo::NotWatched,
    };
    let Ok(admission) = podid_webhook::admit(data, associations, &lookup, &config) else {
        return;
    };
    let response: Value = serde_json::from_slice(&admission.body).expect("the response is JSON");
    let Some(patch) = response.pointer("/response/patch") else {
        return;
    };
    let bytes = STANDARD
        .decode(patch.as_str().expect("patch is a string"))
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch is a JSON Patch");
    // serde_json skips unknown members without checking their UTF-8, so an admitted body may
    // hold invalid UTF-8 there (harmless: nothing reads it); read the pod back lossily.
    let review: Value =
        serde_json::from_str(&String::from_utf8_lossy(data)).expect("admitted input is JSON");
    let mut pod = review
        .pointer("/request/object")
        .cloned()
        .expect("a patched review has an object");
    if let Err(e) = json_patch::patch(&mut pod, &patch) {
        panic!("the patch does not apply to its pod: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// podid-agent

/// Target `agent_request`: `target \n (name: value \n)*`, a request to an agent bound to
/// 127.0.0.1, through every `/v1/credentials` check before the cache. `Host` lines may repeat.
pub fn agent_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or_default();
    let builder = http::Request::builder().uri(valid_uri(target));
    let Ok(request) = add_headers(builder, lines).body(()) else {
        return;
    };
    let status = podid_agent::fuzzing::credentials_request(
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        &request,
        NOW,
    );
    assert!(
        matches!(status, 200 | 400 | 403),
        "unexpected status {status}"
    );
}

// ---------------------------------------------------------------------------------------------

fn split_once(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Splits at the first blank line (`\n\n`): the head as text, the body as bytes.
fn split_head_body(data: &[u8]) -> (String, &[u8]) {
    let at = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match at {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    (String::from_utf8_lossy(head).into_owned(), body)
}
