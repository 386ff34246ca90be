use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use serde_json::{Value, json};

use super::*;
use crate::MAX_TOKEN_BYTES;
use crate::keys::{KeySource, KeysConfig};
use crate::signer::{DevSigner, MintRequest};
use crate::testkit::{EcKey, ISSUER, NOW, assemble, b64, claims, jwks};

/// An RSA dev signer, a P-256 and a P-384 key, all in one inline JWKS.
struct Fixture {
    rsa: DevSigner,
    p256: EcKey,
    p384: EcKey,
    verifier: Verifier,
}

fn fixture() -> Fixture {
    let rsa = DevSigner::generate().unwrap();
    let p256 = EcKey::p256("ec256");
    let p384 = EcKey::p384("ec384");
    let rsa_jwk: Value = serde_json::from_str::<Value>(rsa.jwks()).unwrap()["keys"][0].clone();
    let set = jwks(&[rsa_jwk, p256.jwk(), p384.jwk()]);
    let keys = ClusterKeys::new(KeySource::Inline(set), KeysConfig::default()).unwrap();
    let verifier = Verifier::new(VerifierConfig::new(ISSUER), Arc::new(keys));
    Fixture {
        rsa,
        p256,
        p384,
        verifier,
    }
}

impl Fixture {
    fn rs256(&self, claims: &Value) -> String {
        assemble(
            &json!({"alg": "RS256", "kid": self.rsa.kid()}),
            claims,
            |m| self.rsa.sign_raw(m),
        )
    }

    fn check(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.verifier.verify_cached(token, NOW)
    }
}

fn with(mut base: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = &mut base;
    for p in parents {
        cur = &mut cur[*p];
    }
    cur[*last] = value;
    base
}

fn without(mut base: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = &mut base;
    for p in parents {
        cur = &mut cur[*p];
    }
    cur.as_object_mut().unwrap().remove(*last);
    base
}

// ---- hostile: structure and size ----

#[test]
fn oversized_token_is_refused_before_parsing() {
    let f = fixture();
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        f.check(&token),
        Err(TokenError::TooLong {
            max: MAX_TOKEN_BYTES
        })
    ));
    // A real token padded with a huge claim crosses the cap too.
    let big = f.rs256(&with(
        claims(),
        &["pad"],
        json!("x".repeat(MAX_TOKEN_BYTES)),
    ));
    assert!(matches!(f.check(&big), Err(TokenError::TooLong { .. })));
}

#[test]
fn wrong_segment_counts_are_malformed() {
    let f = fixture();
    let token = f.rs256(&claims());
    let mut parts = token.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    for bad in [
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        h.to_string(),
        format!(".{p}.{s}"),
        String::new(),
    ] {
        assert!(
            matches!(f.check(&bad), Err(TokenError::Malformed(_))),
            "{bad:.20}"
        );
    }
}

#[test]
fn garbage_base64_is_malformed() {
    let f = fixture();
    let token = f.rs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let bad_header = format!("{}!*.{}.{}", parts[0], parts[1], parts[2]);
    assert!(matches!(
        f.check(&bad_header),
        Err(TokenError::Malformed(_))
    ));
    let bad_sig = format!("{}.{}.{}!*", parts[0], parts[1], parts[2]);
    assert!(matches!(f.check(&bad_sig), Err(TokenError::Malformed(_))));
    // A garbage payload under a valid signature is caught after the signature check.
    let input = format!("{}.{}!*", parts[0], parts[1]);
    let bad_payload = format!("{input}.{}", b64(f.rsa.sign_raw(input.as_bytes())));
    assert!(matches!(
        f.check(&bad_payload),
        Err(TokenError::Malformed(_))
    ));
    let not_json = format!("{}.{}", parts[0], b64("not json"));
    let not_json = format!("{not_json}.{}", b64(f.rsa.sign_raw(not_json.as_bytes())));
    assert!(matches!(f.check(&not_json), Err(TokenError::Malformed(_))));
    // Standard-alphabet base64 ('+' '/') is not base64url.
    let std_header = base64::engine::general_purpose::STANDARD.encode([0xfb_u8, 0xff, 0xbf]);
    let token = format!("{std_header}.{}.{}", parts[1], parts[2]);
    assert!(matches!(f.check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn oversized_signature_is_malformed_not_a_panic() {
    let f = fixture();
    let token = f.rs256(&claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    let token = format!("{input}.{}", b64(vec![7u8; 2000]));
    assert!(matches!(f.check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn header_with_crit_or_without_alg_is_refused() {
    let f = fixture();
    let crit = json!({"alg": "RS256", "kid": f.rsa.kid(), "crit": ["exp"], "exp": 1});
    let token = assemble(&crit, &claims(), |m| f.rsa.sign_raw(m));
    assert!(matches!(f.check(&token), Err(TokenError::Malformed(_))));
    let no_alg = assemble(&json!({"kid": f.rsa.kid()}), &claims(), |m| {
        f.rsa.sign_raw(m)
    });
    assert!(matches!(f.check(&no_alg), Err(TokenError::Malformed(_))));
}

// ---- hostile: algorithms and keys ----

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": f.rsa.kid()}),
        json!({"alg": "None"}),
    ] {
        let unsigned = format!("{}.{}.", b64(header.to_string()), b64(claims().to_string()));
        assert!(
            matches!(f.check(&unsigned), Err(TokenError::UnsupportedAlgorithm)),
            "{header}"
        );
        // ...also with a (meaningless) signature attached.
        let signed = assemble(&header, &claims(), |m| f.rsa.sign_raw(m));
        assert!(matches!(
            f.check(&signed),
            Err(TokenError::UnsupportedAlgorithm)
        ));
    }
}

#[test]
fn hs256_keyed_with_the_rsa_public_key_is_refused() {
    let f = fixture();
    let der = f.rsa.spki_der();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let jwk = serde_json::from_str::<Value>(f.rsa.jwks()).unwrap()["keys"][0].to_string();
    for secret in [
        pem.as_bytes(),
        der.as_slice(),
        jwk.as_bytes(),
        f.rsa.jwks().as_bytes(),
    ] {
        for alg in ["HS256", "HS384", "HS512"] {
            let algorithm = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            let key = hmac::Key::new(algorithm, secret);
            let token = assemble(&json!({"alg": alg, "kid": f.rsa.kid()}), &claims(), |m| {
                hmac::sign(&key, m).as_ref().to_vec()
            });
            assert!(matches!(
                f.check(&token),
                Err(TokenError::UnsupportedAlgorithm)
            ));
        }
    }
}

#[test]
fn other_algorithms_are_refused() {
    let f = fixture();
    for alg in [
        "RS384", "RS512", "PS256", "ES512", "EdDSA", "rs256", "RS256 ", "",
    ] {
        let token = assemble(&json!({"alg": alg, "kid": f.rsa.kid()}), &claims(), |m| {
            f.rsa.sign_raw(m)
        });
        assert!(
            matches!(f.check(&token), Err(TokenError::UnsupportedAlgorithm)),
            "{alg}"
        );
    }
}

#[test]
fn alg_and_key_type_must_match() {
    let f = fixture();
    // RS256 header naming the EC key, signed with RSA.
    let t = assemble(&json!({"alg": "RS256", "kid": "ec256"}), &claims(), |m| {
        f.rsa.sign_raw(m)
    });
    assert!(matches!(f.check(&t), Err(TokenError::KeyMismatch)));
    // ES256 header naming the P-384 key, signed with it.
    let t = assemble(&json!({"alg": "ES256", "kid": "ec384"}), &claims(), |m| {
        f.p384.sign(m)
    });
    assert!(matches!(f.check(&t), Err(TokenError::KeyMismatch)));
    // ES384 header naming the RSA key.
    let t = assemble(
        &json!({"alg": "ES384", "kid": f.rsa.kid()}),
        &claims(),
        |m| f.p384.sign(m),
    );
    assert!(matches!(f.check(&t), Err(TokenError::KeyMismatch)));
    // ES256 header naming the P-256 key but signed by the P-384 key.
    let t = assemble(&json!({"alg": "ES256", "kid": "ec256"}), &claims(), |m| {
        f.p384.sign(m)
    });
    assert!(matches!(f.check(&t), Err(TokenError::BadSignature)));
}

#[test]
fn flipped_signature_or_payload_byte_is_refused() {
    let f = fixture();
    let token = f.rs256(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut raw = crate::jwt::B64URL.decode(sig).unwrap();
    raw[17] ^= 0x01;
    let forged = format!("{input}.{}", b64(raw));
    assert!(matches!(f.check(&forged), Err(TokenError::BadSignature)));
    // Same signature over different claims (namespace changed).
    let other = f.rs256(&with(
        claims(),
        &["kubernetes.io", "namespace"],
        json!("kube-system"),
    ));
    let spliced = format!("{}.{sig}", other.rsplit_once('.').unwrap().0);
    assert!(matches!(f.check(&spliced), Err(TokenError::BadSignature)));
}

#[test]
fn unknown_kid_on_an_inline_source_is_refused() {
    let f = fixture();
    let t = assemble(&json!({"alg": "RS256", "kid": "nope"}), &claims(), |m| {
        f.rsa.sign_raw(m)
    });
    assert!(matches!(f.check(&t), Err(TokenError::UnknownKey)));
}

#[test]
fn missing_kid_tries_only_keys_of_the_right_type() {
    let f = fixture();
    let t = assemble(&json!({"alg": "ES384"}), &claims(), |m| f.p384.sign(m));
    assert!(f.check(&t).is_ok());
    let t = assemble(&json!({"alg": "RS256"}), &claims(), |m| f.rsa.sign_raw(m));
    assert!(f.check(&t).is_ok());
    let other = DevSigner::generate().unwrap();
    let t = assemble(&json!({"alg": "RS256"}), &claims(), |m| other.sign_raw(m));
    assert!(matches!(f.check(&t), Err(TokenError::BadSignature)));
}

// ---- hostile: claims ----

#[test]
fn wrong_issuer_is_refused() {
    let f = fixture();
    for iss in [
        format!("{ISSUER}/"),
        ISSUER.to_uppercase(),
        "https://oidc.example.test/id".to_owned(),
        String::new(),
    ] {
        let t = f.rs256(&with(claims(), &["iss"], json!(iss)));
        assert!(matches!(f.check(&t), Err(TokenError::WrongIssuer)), "{iss}");
    }
    let t = f.rs256(&without(claims(), &["iss"]));
    assert!(matches!(f.check(&t), Err(TokenError::MissingClaim("iss"))));
}

#[test]
fn wrong_audience_is_refused() {
    let f = fixture();
    for aud in [
        json!(["sts.amazonaws.com"]),
        json!([]),
        json!("https://kubernetes.default.svc"),
        json!(["pods.eks.amazonaws.com."]),
    ] {
        let t = f.rs256(&with(claims(), &["aud"], aud.clone()));
        let err = f.check(&t).unwrap_err();
        assert!(matches!(err, TokenError::WrongAudience { .. }), "{aud}");
        assert!(!err.is_expired());
    }
    let t = f.rs256(&without(claims(), &["aud"]));
    assert!(matches!(f.check(&t), Err(TokenError::MissingClaim("aud"))));
    let t = f.rs256(&with(claims(), &["aud"], json!(42)));
    assert!(matches!(f.check(&t), Err(TokenError::Malformed(_))));
}

#[test]
fn expired_beyond_leeway_is_expired_within_leeway_is_fine() {
    let f = fixture();
    let t = f.rs256(&with(claims(), &["exp"], json!(NOW - 61)));
    let err = f.check(&t).unwrap_err();
    assert!(err.is_expired(), "{err:?}");
    assert!(!err.is_keys_unavailable());
    let t = f.rs256(&with(claims(), &["exp"], json!(NOW - 60)));
    assert!(
        f.check(&t).unwrap_err().is_expired(),
        "exp + leeway is exclusive"
    );
    let t = f.rs256(&with(claims(), &["exp"], json!(NOW - 59)));
    assert_eq!(f.check(&t).unwrap().expires_at, NOW - 59);
    let t = f.rs256(&without(claims(), &["exp"]));
    assert!(matches!(f.check(&t), Err(TokenError::MissingClaim("exp"))));
    let t = f.rs256(&with(claims(), &["exp"], json!("soon")));
    assert!(matches!(f.check(&t), Err(TokenError::Malformed(_))));
}

#[test]
fn leeway_is_clamped_to_sixty_seconds() {
    let f = fixture();
    let config = VerifierConfig {
        leeway: Duration::from_secs(3600),
        ..VerifierConfig::new(ISSUER)
    };
    let v = Verifier::new(config, Arc::clone(f.verifier.keys()));
    assert_eq!(v.leeway_secs(), 60);
    let t = f.rs256(&with(claims(), &["exp"], json!(NOW - 120)));
    assert!(v.verify_cached(&t, NOW).unwrap_err().is_expired());
}

#[test]
fn expired_and_invalid_reports_invalid() {
    let f = fixture();
    let c = with(
        with(claims(), &["exp"], json!(NOW - 1000)),
        &["iss"],
        json!("https://evil"),
    );
    assert!(matches!(
        f.check(&f.rs256(&c)),
        Err(TokenError::WrongIssuer)
    ));
}

#[test]
fn not_yet_valid_and_future_iat_are_refused() {
    let f = fixture();
    let t = f.rs256(&with(claims(), &["nbf"], json!(NOW + 61)));
    assert!(matches!(f.check(&t), Err(TokenError::NotYetValid)));
    let t = f.rs256(&with(claims(), &["nbf"], json!(NOW + 60)));
    assert!(f.check(&t).is_ok());
    let t = f.rs256(&with(claims(), &["iat"], json!(NOW + 61)));
    assert!(matches!(f.check(&t), Err(TokenError::IssuedInFuture)));
}

#[test]
fn subject_must_match_kubernetes_claims() {
    let f = fixture();
    for sub in [
        "system:serviceaccount:default:other",
        "system:serviceaccount:kube-system:app",
        "system:serviceaccount:default:app:x",
        "system:serviceaccount:default",
        "system:serviceaccount:defaultapp",
        "system:serviceaccounts:default:app",
        "default:app",
    ] {
        let t = f.rs256(&with(claims(), &["sub"], json!(sub)));
        assert!(
            matches!(f.check(&t), Err(TokenError::SubjectMismatch)),
            "{sub}"
        );
    }
    // Claims changed, sub left alone: the namespace in kubernetes.io is what was signed, but the
    // two disagree, so the token is refused.
    let t = f.rs256(&with(
        claims(),
        &["kubernetes.io", "serviceaccount", "name"],
        json!("admin"),
    ));
    assert!(matches!(f.check(&t), Err(TokenError::SubjectMismatch)));
    let t = f.rs256(&without(claims(), &["sub"]));
    assert!(matches!(f.check(&t), Err(TokenError::MissingClaim("sub"))));
}

#[test]
fn missing_kubernetes_claims_are_refused() {
    let f = fixture();
    let cases: [(&[&str], &str); 5] = [
        (&["kubernetes.io"], "kubernetes.io"),
        (&["kubernetes.io", "namespace"], "kubernetes.io.namespace"),
        (
            &["kubernetes.io", "serviceaccount"],
            "kubernetes.io.serviceaccount",
        ),
        (
            &["kubernetes.io", "serviceaccount", "uid"],
            "kubernetes.io.serviceaccount.uid",
        ),
        (&["kubernetes.io", "pod", "uid"], "kubernetes.io.pod.uid"),
    ];
    for (path, claim) in cases {
        let t = f.rs256(&without(claims(), path));
        match f.check(&t) {
            Err(TokenError::MissingClaim(c)) => assert_eq!(c, claim),
            other => panic!("{path:?}: {other:?}"),
        }
    }
    let empty_ns = with(
        with(claims(), &["kubernetes.io", "namespace"], json!("")),
        &["sub"],
        json!("system:serviceaccount::app"),
    );
    assert!(matches!(
        f.check(&f.rs256(&empty_ns)),
        Err(TokenError::InvalidClaim(_))
    ));
}

#[test]
fn node_claim_without_uid_is_accepted_but_not_an_empty_one() {
    // What the API server writes when the pod's node has no Node object.
    let f = fixture();
    let no_uid = without(claims(), &["kubernetes.io", "node", "uid"]);
    let v = f.check(&f.rs256(&no_uid)).unwrap();
    let node = v.node.unwrap();
    assert_eq!((&*node.name, node.uid), ("node-a", None));

    let with_uid = f.check(&f.rs256(&claims())).unwrap().node.unwrap();
    assert_eq!(
        with_uid.uid.as_deref(),
        Some("6a2e1f0c-0000-4000-8000-000000000001")
    );

    let empty_uid = with(claims(), &["kubernetes.io", "node", "uid"], json!(""));
    assert!(matches!(
        f.check(&f.rs256(&empty_uid)),
        Err(TokenError::InvalidClaim("kubernetes.io.node.uid"))
    ));
    let nameless = without(claims(), &["kubernetes.io", "node", "name"]);
    assert!(matches!(
        f.check(&f.rs256(&nameless)),
        Err(TokenError::MissingClaim("kubernetes.io.node.name"))
    ));
}

#[test]
fn claims_newer_api_servers_add_are_ignored() {
    // `kubernetes.io.warnafter` (legacy-token expiry extension), a credential id (`jti`) and
    // claims a future version may add must not make a valid token fail.
    let f = fixture();
    let extended = with(
        with(claims(), &["kubernetes.io", "warnafter"], json!(NOW + 600)),
        &["kubernetes.io", "credential-id"],
        json!("JTI=4a5e1f0c"),
    );
    assert!(f.check(&f.rs256(&extended)).is_ok());
}

#[test]
fn duplicate_claims_are_malformed() {
    let f = fixture();
    let header = b64(json!({"alg": "RS256", "kid": f.rsa.kid()}).to_string());
    let body = claims().to_string().replacen(
        '{',
        r#"{"sub":"system:serviceaccount:kube-system:admin","#,
        1,
    );
    let input = format!("{header}.{}", b64(body));
    let token = format!("{input}.{}", b64(f.rsa.sign_raw(input.as_bytes())));
    assert!(matches!(f.check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn errors_never_contain_the_token() {
    let f = fixture();
    let token = f.rs256(&with(claims(), &["exp"], json!(NOW - 1000)));
    let mut forged = token.clone();
    forged.insert(forged.len() - 5, 'A');
    for t in [token.as_str(), forged.as_str(), "x.y.z"] {
        let err = f.check(t).unwrap_err();
        let text = format!("{err} {err:?}");
        for part in t.split('.').filter(|p| p.len() > 3) {
            assert!(!text.contains(part), "{text}");
        }
    }
}

// ---- valid tokens ----

#[test]
fn valid_rs256_from_the_dev_signer() {
    let f = fixture();
    let req = MintRequest::new(ISSUER, "team-a", "reader", NOW)
        .with_pod("web-0", Some("pod-uid-1".into()))
        .with_node("node-7", None);
    let token = f.rsa.mint(&req).unwrap();
    let v = f.check(&token).unwrap();
    assert_eq!(&*v.namespace, "team-a");
    assert_eq!(&*v.service_account, "reader");
    assert_eq!(&*v.subject, "system:serviceaccount:team-a:reader");
    assert_eq!(v.pod.as_ref().map(|p| &*p.uid), Some("pod-uid-1"));
    assert_eq!(v.node.as_ref().map(|n| &*n.name), Some("node-7"));
    assert_eq!(&*v.issuer, ISSUER);
    assert_eq!(v.audiences.len(), 1);
    assert_eq!(
        (v.issued_at, v.not_before, v.expires_at),
        (Some(NOW), Some(NOW), NOW + 86_400)
    );
}

#[test]
fn valid_es256_signed_by_jsonwebtoken() {
    let f = fixture();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec256".into());
    let key = jsonwebtoken::EncodingKey::from_ec_der(&f.p256.pkcs8);
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    let v = f.check(&token).unwrap();
    assert_eq!(v.pod.unwrap().name.as_ref(), "app-1");
    assert_eq!(
        &*v.service_account_uid,
        "8c4a3b2e-0000-4000-8000-000000000003"
    );
}

#[test]
fn valid_es384_and_aud_as_string() {
    let f = fixture();
    let c = with(
        without(claims(), &["kubernetes.io", "pod"]),
        &["aud"],
        json!("pods.eks.amazonaws.com"),
    );
    let t = assemble(
        &json!({"alg": "ES384", "kid": "ec384", "typ": "JWT"}),
        &c,
        |m| f.p384.sign(m),
    );
    let v = f.check(&t).unwrap();
    assert!(v.pod.is_none());
    assert_eq!(
        v.audiences.iter().map(|a| &**a).collect::<Vec<_>>(),
        ["pods.eks.amazonaws.com"]
    );
}

#[test]
fn several_audiences_and_custom_audience() {
    let f = fixture();
    let c = with(
        claims(),
        &["aud"],
        json!(["a", "pods.eks.amazonaws.com", "b"]),
    );
    assert_eq!(f.check(&f.rs256(&c)).unwrap().audiences.len(), 3);
    let config = VerifierConfig {
        audience: "a".into(),
        ..VerifierConfig::new(ISSUER)
    };
    let v = Verifier::new(config, Arc::clone(f.verifier.keys()));
    assert!(v.verify_cached(&f.rs256(&c), NOW).is_ok());
    assert!(matches!(
        v.verify_cached(&f.rs256(&claims()), NOW),
        Err(TokenError::WrongAudience { .. })
    ));
}

#[test]
fn padded_segments_are_tolerated_like_go_jose() {
    let f = fixture();
    let token = f.rs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    // An RSA-2048 signature is 342 base64url characters: two `=` of padding.
    assert_eq!(parts[2].len() % 4, 2);
    let t = format!("{}.{}.{}==", parts[0], parts[1], parts[2]);
    assert!(f.check(&t).is_ok());
}
