//! podid's canonical request against aws-sigv4's: over many awkward requests (odd paths and
//! encodings, repeated and multi-value headers, header and presigned forms), the signature podid
//! computes must equal the one aws-sigv4 1.6 computes when re-signing the request the way podid
//! verified before it had its own canonical request (the oracle below is that code, unchanged,
//! sharing only the removal of the presign parameters, which happens before either signer).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;

use super::canonical::{scope_date, string_to_sign, strip_presign_params};
use super::key_cache::{SigningKey, SigningKeyCache};
use super::{AuthLocation, ParsedAuth, SigV4Error};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The signature aws-sigv4 computes (podid's verifier before its own canonical request).
fn oracle(
    parts: &Parts,
    payload_hash: &str,
    auth: &ParsedAuth,
    secret: &str,
) -> Result<String, ()> {
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        let mut found = false;
        for value in parts.headers.get_all(name.as_str()) {
            headers.push((name.clone(), value.to_str().map_err(|_| ())?.to_owned()));
            found = true;
        }
        if !found && name == "host" {
            headers.push((name.clone(), parts.uri.authority().ok_or(())?.to_string()));
        }
    }
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let (uri, token) = match auth.location {
        AuthLocation::Header => {
            let uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            (Cow::Borrowed(uri), None)
        }
        AuthLocation::Query { expires } => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
            let uri = strip_presign_params(parts);
            (Cow::Owned(uri), auth.session_token.clone())
        }
    };
    let identity: Identity =
        Credentials::new(&auth.access_key_id, secret, token, None, "podid-verifier").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(auth.time)
        .settings(settings)
        .build()
        .map_err(|_| ())?
        .into();
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload_hash.to_owned()),
    )
    .map_err(|_| ())?;
    Ok(sign(request, &params)
        .map_err(|_| ())?
        .signature()
        .to_owned())
}

fn podid(parts: &Parts, payload_hash: &str, auth: &ParsedAuth, secret: &str) -> Result<String, ()> {
    let sts = string_to_sign(parts, payload_hash, auth).map_err(|_: SigV4Error| ())?;
    let key = SigningKey::derive(secret, &scope_date(auth.time), &auth.region, &auth.service);
    Ok(key.sign(&sts))
}

const PATHS: &[&str] = &[
    "/",
    "/clusters/dev/pod-identity-associations",
    "/a/./b/../c",
    "//double//slash",
    "/with%20space",
    "/%7Euser/~tilde",
    "/trailing/",
    "/a/..",
    "/..",
    "/.",
    "/a/b/.",
    "/a+b:c@d!$'()*,;=",
    "/%2F%2f/%25",
    "/%E2%9C%93",
    "/v1/credentials",
    "/a/../../b/./",
];

const QUERIES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("a=1&b=2"),
    Some("b=2&a=1"),
    Some("a=1&a=0&a="),
    Some("x=a%20b&y=a+b"),
    Some("x=%zz&y=%"),
    Some("k"),
    Some("k=&j"),
    Some("&&a=1&"),
    Some("%41=%42"),
    Some("x=%E2%9C%93&z=%FF"),
    Some("x=~-._&y=*!'()"),
    Some("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"),
    Some("a=b=c&%3D=%26"),
    Some("x=%2B&y=+&z=%20"),
    Some("X-Amz-Foo=1&X-Amz-Date=20150830T123600Z"),
    Some("maxResults=10&nextToken=abc%2Fdef%3D%3D"),
];

/// Headers sent, and the names listed in SignedHeaders.
type HeaderSet = (Vec<(&'static str, &'static str)>, Vec<&'static str>);

fn header_sets() -> Vec<HeaderSet> {
    vec![
        (vec![("host", "example.amazonaws.com")], vec!["host"]),
        (
            vec![
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
            ],
            vec!["content-type", "host", "x-amz-date"],
        ),
        (
            vec![
                ("host", "127.0.0.1:7400"),
                ("x-amz-date", "20150830T123600Z"),
                ("x-custom", "  one   two  "),
                ("x-custom", "three\tfour"),
                ("x-other", "b"),
                ("x-amz-user-agent", "aws-sdk-rust/1.0"),
                ("x-amz-checksum-mode", "ENABLED"),
            ],
            vec![
                "x-other",
                "x-custom",
                "host",
                "x-amz-date",
                "x-amz-user-agent",
                "x-amz-checksum-mode",
            ],
        ),
        (
            vec![
                ("host", "h"),
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-security-token", "tok+en/=="),
                (
                    "x-amz-content-sha256",
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                ),
            ],
            vec![
                "host",
                "x-amz-content-sha256",
                "x-amz-date",
                "x-amz-security-token",
            ],
        ),
        // Listed twice, listed but absent, empty value, a date that disagrees with the time.
        (
            vec![
                ("host", "h"),
                ("x-empty", ""),
                ("x-amz-date", "20991231T000000Z"),
            ],
            vec!["host", "x-missing", "host", "x-empty", "x-amz-date"],
        ),
        // No host header: HTTP/2 carries it in the URI authority.
        (
            vec![("x-amz-date", "20150830T123600Z")],
            vec!["host", "x-amz-date"],
        ),
    ]
}

fn request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    authority: bool,
) -> Option<Parts> {
    let pq = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let uri = if authority {
        format!("http://example.amazonaws.com:8443{pq}")
    } else {
        pq
    };
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    Some(builder.body(()).ok()?.into_parts().0)
}

fn auth(signed: &[&str], location: AuthLocation, token: Option<&str>) -> ParsedAuth {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    ParsedAuth {
        location,
        access_key_id: "AKIDEXAMPLE".into(),
        scope_date: "20150830".into(),
        region: "us-east-1".into(),
        service: "sts".into(),
        signed_headers: signed.iter().map(|s| (*s).to_owned()).collect(),
        signature: String::new(),
        amz_date: "20150830T123600Z".into(),
        time,
        session_token: token.map(str::to_owned),
    }
}

#[test]
fn signatures_are_byte_identical_to_aws_sigv4() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let body = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let presigned = AuthLocation::Query {
        expires: Duration::from_secs(900),
    };
    let modes = [
        (AuthLocation::Header, None),
        (presigned, None),
        (presigned, Some("IQoJb3JpZ2luX2VjE/+=")),
    ];
    let mut compared = 0;
    for (i, path) in PATHS.iter().enumerate() {
        for (j, query) in QUERIES.iter().enumerate() {
            for (k, (headers, signed)) in header_sets().iter().enumerate() {
                for (location, token) in modes {
                    let authority = headers.iter().all(|(n, _)| *n != "host");
                    let method = ["GET", "POST", "PUT"][(i + j + k) % 3];
                    let Some(parts) = request(method, path, *query, headers, authority) else {
                        continue;
                    };
                    let a = auth(signed, location, token);
                    let hash = if (i + j) % 2 == 0 { empty } else { body };
                    let want = oracle(&parts, hash, &a, SECRET);
                    assert!(want.is_ok(), "oracle refused {method} {path} {query:?} {k}");
                    assert_eq!(
                        podid(&parts, hash, &a, SECRET),
                        want,
                        "{method} {path} {query:?} headers {k} {location:?} token {token:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(
        compared,
        PATHS.len() * QUERIES.len() * header_sets().len() * 3
    );
}

#[test]
fn presign_parameters_in_the_url_are_not_signed_twice() {
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=00&Action=GetCallerIdentity&X-Amz-Security-Token=t%2B";
    let parts = request("GET", "/", Some(query), &[("host", "h")], false).unwrap();
    let location = AuthLocation::Query {
        expires: Duration::from_secs(900),
    };
    let a = auth(&["host"], location, Some("t+"));
    assert_eq!(
        podid(&parts, "UNSIGNED-PAYLOAD", &a, SECRET),
        oracle(&parts, "UNSIGNED-PAYLOAD", &a, SECRET)
    );
}

#[test]
fn cached_keys_match_fresh_ones_and_a_new_secret_misses() {
    let cache = SigningKeyCache::new(2);
    let fresh = SigningKey::derive(SECRET, "20150830", "us-east-1", "sts").sign("x");
    for _ in 0..3 {
        let hit = cache.get("AKID", SECRET, "20150830", "us-east-1", "sts");
        assert_eq!(hit.sign("x"), fresh);
    }
    assert_eq!(cache.len(), 1);
    // A rotated secret for the same access key must not reuse the old key.
    let rotated = cache.get("AKID", "another secret", "20150830", "us-east-1", "sts");
    assert_ne!(rotated.sign("x"), fresh);
    assert_eq!(cache.len(), 2);
    // Full: the next miss empties the cache instead of growing it.
    cache.get("AKID", SECRET, "20150831", "us-east-1", "sts");
    assert_eq!(cache.len(), 1);
    // Capacity 0 caches nothing.
    let off = SigningKeyCache::new(0);
    assert_eq!(
        off.get("AKID", SECRET, "20150830", "us-east-1", "sts")
            .sign("x"),
        fresh
    );
    assert!(off.is_empty());
}
