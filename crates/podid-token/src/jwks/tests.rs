use aws_lc_rs::signature::KeyPair as _;
use serde_json::{Value, json};

use super::*;
use crate::signer::DevSigner;
use crate::testkit::{EcKey, b64, jwks};

fn rsa_jwk() -> (DevSigner, Value) {
    let signer = DevSigner::generate().unwrap();
    let jwk = serde_json::from_str::<Value>(signer.jwks()).unwrap()["keys"][0].clone();
    (signer, jwk)
}

fn parse(keys: &[Value]) -> KeySet {
    KeySet::parse(jwks(keys).as_bytes()).unwrap()
}

#[test]
fn oversized_document_is_refused() {
    let (_, jwk) = rsa_jwk();
    let doc = json!({"keys": [jwk], "pad": "x".repeat(MAX_JWKS_BYTES)}).to_string();
    assert!(matches!(
        KeySet::parse(doc.as_bytes()),
        Err(TokenError::JwksTooLarge {
            max: MAX_JWKS_BYTES
        })
    ));
}

#[test]
fn too_many_keys_are_refused() {
    let keys: Vec<Value> = (0..=MAX_JWKS_KEYS)
        .map(|i| json!({"kty": "oct", "kid": format!("k{i}"), "k": "AA"}))
        .collect();
    assert!(matches!(
        KeySet::parse(jwks(&keys).as_bytes()),
        Err(TokenError::JwksTooManyKeys { max: MAX_JWKS_KEYS })
    ));
    assert!(KeySet::parse(jwks(&keys[1..]).as_bytes()).is_ok());
}

#[test]
fn non_jwks_documents_are_invalid() {
    for doc in [
        "",
        "{",
        "[]",
        r#"{"keys": {}}"#,
        r#"{"nokeys": []}"#,
        "null",
    ] {
        assert!(
            matches!(
                KeySet::parse(doc.as_bytes()),
                Err(TokenError::JwksInvalid(_))
            ),
            "{doc}"
        );
    }
    // Entries that are not key objects are skipped, like unsupported keys.
    assert!(
        KeySet::parse(br#"{"keys": [1, "x", null]}"#)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unsupported_keys_are_skipped() {
    let (_, rsa) = rsa_jwk();
    let p256 = EcKey::p256("p256").jwk();
    let mut rsa_enc = rsa.clone();
    rsa_enc["use"] = json!("enc");
    let mut rsa_512 = rsa.clone();
    rsa_512["alg"] = json!("RS512");
    let mut ec_alg_mismatch = p256.clone();
    ec_alg_mismatch["alg"] = json!("ES384");
    let mut ec_off_curve = p256.clone();
    ec_off_curve["y"] = json!(b64([1u8; 32]));
    let mut ec_short = p256.clone();
    ec_short["x"] = json!(b64([1u8; 31]));
    let weak_rsa = json!({"kty": "RSA", "kid": "weak", "n": b64([0xc3u8; 128]), "e": "AQAB"});
    let skipped = [
        json!({"kty": "oct", "kid": "hmac", "k": b64(b"secret")}),
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64([9u8; 32])}),
        json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64([1u8; 66]), "y": b64([1u8; 66])}),
        json!({"kty": "RSA", "kid": "no-n", "e": "AQAB"}),
        json!({"kty": "RSA", "kid": "bad-b64", "n": "!!", "e": "AQAB"}),
        json!({"kid": "no-kty"}),
        json!({"kty": "RSA", "kid": 7, "n": rsa["n"], "e": "AQAB"}),
        json!({"kty": ["RSA"]}),
        json!({}),
        rsa_enc,
        rsa_512,
        ec_alg_mismatch,
        ec_off_curve,
        ec_short,
        weak_rsa,
    ];
    for bad in &skipped {
        assert!(parse(std::slice::from_ref(bad)).is_empty(), "{bad}");
    }
    let mut all = skipped.to_vec();
    all.push(rsa.clone());
    all.push(p256);
    let set = parse(&all);
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.kids().collect::<Vec<_>>(),
        [rsa["kid"].as_str(), Some("p256")]
    );
}

#[test]
fn rsa_modulus_with_a_leading_zero_is_accepted() {
    let (signer, mut jwk) = rsa_jwk();
    let mut n = crate::jwt::B64URL
        .decode(jwk["n"].as_str().unwrap())
        .unwrap();
    n.insert(0, 0);
    jwk["n"] = json!(b64(n));
    let set = parse(&[jwk]);
    let msg = b"hello";
    assert!(
        set.verify(Some(signer.kid()), Alg::Rs256, msg, &signer.sign_raw(msg))
            .is_ok()
    );
}

#[test]
fn verify_distinguishes_unknown_mismatched_and_bad() {
    let (signer, rsa) = rsa_jwk();
    let ec = EcKey::p256("ec");
    let set = parse(&[rsa, ec.jwk()]);
    let msg = b"signed bytes";
    let sig = signer.sign_raw(msg);
    let kid = Some(signer.kid());
    assert!(set.verify(kid, Alg::Rs256, msg, &sig).is_ok());
    assert!(matches!(
        set.verify(kid, Alg::Rs256, b"other", &sig),
        Err(TokenError::BadSignature)
    ));
    assert!(matches!(
        set.verify(kid, Alg::Es256, msg, &sig),
        Err(TokenError::KeyMismatch)
    ));
    assert!(matches!(
        set.verify(Some("zzz"), Alg::Rs256, msg, &sig),
        Err(TokenError::UnknownKey)
    ));
    assert!(matches!(
        set.verify(None, Alg::Es384, msg, &sig),
        Err(TokenError::UnknownKey)
    ));
    assert!(
        set.verify(Some("ec"), Alg::Es256, msg, &ec.sign(msg))
            .is_ok()
    );
    assert!(set.verify(None, Alg::Es256, msg, &ec.sign(msg)).is_ok());
    // An EC public key is not usable as anything but its own curve.
    assert_eq!(ec.pair.public_key().as_ref().len(), 65);
}
