use serde_json::Value;

use super::*;
use crate::testkit::NOW;

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&B64URL.decode(segment).unwrap()).unwrap()
}

#[test]
fn garbage_key_material_is_refused() {
    for pem in [
        "",
        "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
    ] {
        assert!(
            matches!(
                DevSigner::from_pkcs8_pem(pem),
                Err(TokenError::SignerKey(_))
            ),
            "{pem}"
        );
    }
    // An EC PKCS#8 key is not an RSA key.
    let ec = crate::testkit::EcKey::p256("x");
    let pem = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(&ec.pkcs8));
    assert!(DevSigner::from_pkcs8_pem(&pem).is_err());
}

#[test]
fn oversized_or_missing_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, "A".repeat(20_000)).unwrap();
    assert!(matches!(
        DevSigner::load(&big),
        Err(TokenError::SignerKey(_))
    ));
    let missing = dir.path().join("missing.pem");
    assert!(matches!(
        DevSigner::load(&missing),
        Err(TokenError::SignerKeyFile { .. })
    ));
}

#[test]
fn save_load_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.pem");
    std::fs::write(&path, "old").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let signer = DevSigner::generate().unwrap();
    signer.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let loaded = DevSigner::load(&path).unwrap();
    assert_eq!(loaded.kid(), signer.kid());
    assert_eq!(loaded.jwks(), signer.jwks());
    let fresh = dir.path().join("fresh.pem");
    let generated = DevSigner::load_or_generate(&fresh).unwrap();
    assert_eq!(
        DevSigner::load_or_generate(&fresh).unwrap().kid(),
        generated.kid()
    );
    assert!(!format!("{signer:?}").contains("BEGIN"));
}

#[test]
fn kid_is_base64url_sha256_of_the_spki() {
    let signer = DevSigner::generate().unwrap();
    let expected = B64URL.encode(digest(&SHA256, &signer.spki_der()));
    assert_eq!(signer.kid(), expected);
    assert_eq!(signer.kid().len(), 43);
    let jwks: Value = serde_json::from_str(signer.jwks()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], signer.kid());
    assert_eq!(
        (
            key["use"].as_str(),
            key["alg"].as_str(),
            key["kty"].as_str()
        ),
        (Some("sig"), Some("RS256"), Some("RSA"))
    );
    assert_eq!(key["e"], "AQAB");
}

#[test]
fn minted_token_has_the_kubernetes_shape() {
    let signer = DevSigner::generate().unwrap();
    let mut req = MintRequest::new("https://issuer", "ns", "sa", NOW).with_pod("pod-1", None);
    req.ttl = Duration::from_secs(600);
    let token = signer.mint(&req).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = B64URL.decode(parts[0]).unwrap();
    assert_eq!(
        String::from_utf8(header).unwrap(),
        format!(r#"{{"alg":"RS256","kid":"{}"}}"#, signer.kid())
    );
    let claims = decode_json(parts[1]);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "kubernetes.io",
            "nbf",
            "sub"
        ]
    );
    assert_eq!(claims["aud"], serde_json::json!(["pods.eks.amazonaws.com"]));
    assert_eq!(
        (
            claims["iat"].as_i64(),
            claims["nbf"].as_i64(),
            claims["exp"].as_i64()
        ),
        (Some(NOW), Some(NOW), Some(NOW + 600))
    );
    assert_eq!(claims["sub"], "system:serviceaccount:ns:sa");
    let k8s = &claims["kubernetes.io"];
    assert_eq!(k8s["pod"]["name"], "pod-1");
    assert!(k8s.get("node").is_none());
    for uid in [
        &k8s["pod"]["uid"],
        &k8s["serviceaccount"]["uid"],
        &claims["jti"],
    ] {
        let uid = uid.as_str().unwrap();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4', "{uid}");
    }
    assert_ne!(k8s["pod"]["uid"], k8s["serviceaccount"]["uid"]);
}

#[test]
fn minted_token_verifies_under_jsonwebtoken_with_our_jwks() {
    let signer = DevSigner::generate().unwrap();
    let req = MintRequest::new(
        "https://issuer",
        "ns",
        "sa",
        jsonwebtoken::get_current_timestamp() as i64,
    );
    let token = signer.mint(&req).unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(signer.jwks()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(signer.kid()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["pods.eks.amazonaws.com"]);
    validation.set_issuer(&["https://issuer"]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.claims["kubernetes.io"]["serviceaccount"]["name"], "sa");
}
