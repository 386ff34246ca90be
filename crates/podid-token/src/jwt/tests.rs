use serde_json::json;

use super::*;
use crate::testkit::{NOW, assemble, b64, claims};

fn unsigned(claims: &serde_json::Value) -> String {
    assemble(&json!({"alg": "RS256", "kid": "k"}), claims, |_| {
        b"not a signature".to_vec()
    })
}

#[test]
fn peek_applies_the_same_caps() {
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        peek_unverified(&long),
        Err(TokenError::TooLong { .. })
    ));
    for bad in ["a.b", "a.b.c.d", "", "..", "!!.!!.!!"] {
        assert!(
            matches!(peek_unverified(bad), Err(TokenError::Malformed(_))),
            "{bad}"
        );
    }
    let not_json = format!("{}.{}.c2ln", b64("{}"), b64("[1,2]"));
    assert!(matches!(
        peek_unverified(&not_json),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn peek_refuses_what_no_verifier_would_accept_in_the_header() {
    let good = unsigned(&claims());
    assert!(peek_unverified(&good).is_ok());
    // The SDKs send the token file verbatim; a `Bearer ` prefix lands in the header segment.
    assert!(matches!(
        peek_unverified(&format!("Bearer {good}")),
        Err(TokenError::Malformed("header is not base64url or too long"))
    ));
    let (_, rest) = good.split_once('.').unwrap();
    for (header, why) in [
        (b64("not json"), "header is not a JSON object"),
        (b64("[1]"), "header is not a JSON object"),
        (b64(r#"{"kid":"k"}"#), "header has no alg"),
        (
            b64(r#"{"alg":"RS256","crit":["b64"]}"#),
            "header has critical extensions",
        ),
    ] {
        assert!(
            matches!(peek_unverified(&format!("{header}.{rest}")), Err(TokenError::Malformed(w)) if w == why),
            "{why}"
        );
    }
    for alg in ["none", "HS256"] {
        let header = b64(format!(r#"{{"alg":"{alg}"}}"#));
        assert!(matches!(
            peek_unverified(&format!("{header}.{rest}")),
            Err(TokenError::UnsupportedAlgorithm)
        ));
    }
}

#[test]
fn peek_requires_identity_and_exp() {
    let mut c = claims();
    c["kubernetes.io"]
        .as_object_mut()
        .unwrap()
        .remove("serviceaccount");
    assert!(matches!(
        peek_unverified(&unsigned(&c)),
        Err(TokenError::MissingClaim(_))
    ));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        peek_unverified(&unsigned(&c)),
        Err(TokenError::MissingClaim("exp"))
    ));
}

#[test]
fn peek_reads_claims_without_verifying() {
    let peeked = peek_unverified(&unsigned(&claims())).unwrap();
    assert_eq!(&*peeked.namespace, "default");
    assert_eq!(&*peeked.service_account, "app");
    assert_eq!(
        peeked.pod.as_ref().map(|p| &*p.uid),
        Some("7b3f2a1d-0000-4000-8000-000000000002")
    );
    assert_eq!(
        (peeked.expires_at, peeked.not_before),
        (NOW + 3600, Some(NOW - 10))
    );
    assert!(peeked.check_times(NOW, 0).is_ok());
    assert!(peeked.check_times(NOW + 3600, 0).unwrap_err().is_expired());
    assert!(peeked.check_times(NOW + 3600, 60).is_ok());
    assert!(matches!(
        peeked.check_times(NOW - 100, 60),
        Err(TokenError::NotYetValid)
    ));
}

#[test]
fn header_decoding_refuses_oversized_headers() {
    let header = b64(json!({"alg": "RS256", "kid": "k".repeat(2000)}).to_string());
    assert!(matches!(
        with_header(&header, |_| Ok(())),
        Err(TokenError::Malformed(_))
    ));
    let header = b64(json!({"alg": "RS256", "kid": "k"}).to_string());
    let kid = with_header(&header, |h| Ok(h.kid.map(|k| k.to_string()))).unwrap();
    assert_eq!(kid.as_deref(), Some("k"));
    // Escaped strings still parse (they are copied instead of borrowed).
    let header = b64(r#"{"alg":"RS\u0032\u0035\u0036","kid":"a\/b"}"#);
    let kid = with_header(&header, |h| Ok(h.kid.map(|k| k.to_string()))).unwrap();
    assert_eq!(kid.as_deref(), Some("a/b"));
}
