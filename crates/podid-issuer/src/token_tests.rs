use base64::engine::general_purpose::URL_SAFE;

use super::*;
use crate::test_support::{HOUR, T0, at, claims, ring};
use crate::{RingConfig, SecretKey};

fn decode(token: &SessionToken) -> Vec<u8> {
    STANDARD.decode(token.as_str()).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

// ---- hostile input first ----

#[test]
fn flipping_any_decoded_byte_is_refused_by_position() {
    let ring = ring();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    let bytes = decode(&token);
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let err = open(&ring, &encode(&bad), at(T0)).unwrap_err();
            match i {
                0 => assert_eq!(err, OpenError::Malformed(MalformedReason::UnknownVersion)),
                1..=4 => assert!(matches!(err, OpenError::UnknownKey(_)), "byte {i}: {err:?}"),
                _ => assert_eq!(err, OpenError::Tampered, "byte {i}"),
            }
        }
    }
}

#[test]
fn replacing_any_base64_character_is_refused() {
    let ring = ring();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    let text = token.as_str();
    for i in 0..text.len() {
        for replacement in ['A', 'z', '+', '/', '=', '-', '_', ' ', '%', 'é'] {
            let mut bad: String = text.chars().take(i).collect();
            bad.push(replacement);
            bad.extend(text.chars().skip(i + 1));
            if bad == text {
                continue;
            }
            match open(&ring, &bad, at(T0)) {
                Err(OpenError::Malformed(_) | OpenError::Tampered | OpenError::UnknownKey(_)) => {}
                other => panic!("char {i} -> {replacement:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let ring = ring();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    let bytes = decode(&token);
    for len in 0..bytes.len() {
        let err = open(&ring, &encode(&bytes[..len]), at(T0)).unwrap_err();
        let expected_short = len < HEADER_LEN + TAG_LEN;
        match err {
            OpenError::Malformed(MalformedReason::TooShort) => assert!(expected_short, "len {len}"),
            OpenError::Tampered => assert!(!expected_short, "len {len}"),
            other => panic!("len {len}: {other:?}"),
        }
    }
    // Truncating the text (not the bytes) breaks base64 or the tag.
    for len in 0..token.as_str().len() {
        assert!(open(&ring, &token.as_str()[..len], at(T0)).is_err());
    }
}

#[test]
fn non_canonical_or_foreign_encodings_are_malformed() {
    let ring = ring();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    let bytes = decode(&token);
    let base64_err = OpenError::Malformed(MalformedReason::Base64);
    for bad in [
        format!(" {}", token.as_str()),
        format!("{}\n", token.as_str()),
        token.as_str().trim_end_matches('=').to_owned() + "A",
        "%%%%".to_owned(),
        "é".repeat(8),
    ] {
        assert_eq!(open(&ring, &bad, at(T0)), Err(base64_err), "{bad:?}");
    }
    let unpadded = token.as_str().trim_end_matches('=');
    if unpadded.len() != token.as_str().len() {
        assert_eq!(open(&ring, unpadded, at(T0)), Err(base64_err));
    }
    let url_safe = URL_SAFE.encode(&bytes);
    if url_safe != token.as_str() {
        assert_eq!(open(&ring, &url_safe, at(T0)), Err(base64_err));
    }
}

#[test]
fn oversized_token_is_refused_before_decoding() {
    let ring = ring();
    let long = "A".repeat(MAX_TOKEN_LEN + 4);
    assert_eq!(
        open(&ring, &long, at(T0)),
        Err(OpenError::Malformed(MalformedReason::TooLong))
    );
    // At the cap it is decoded (and refused for what it is, not its size).
    let at_cap = encode(&vec![TOKEN_VERSION; MAX_SEALED_LEN]);
    assert_eq!(at_cap.len(), MAX_TOKEN_LEN);
    assert_eq!(
        open(&ring, &at_cap, at(T0)),
        Err(OpenError::UnknownKey(KeyId([1; 4])))
    );
}

#[test]
fn other_ring_reports_unknown_key() {
    let token = seal(&ring(), &claims(T0, HOUR)).unwrap();
    assert!(matches!(
        open(&ring(), token.as_str(), at(T0)),
        Err(OpenError::UnknownKey(_))
    ));
}

#[test]
fn key_id_rewritten_to_another_ring_key_fails_authentication() {
    let mut ring = ring();
    let old = ring.active_key_id().unwrap();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    ring.rotate(at(T0 + 24 * HOUR)).unwrap();
    let new = ring.active_key_id().unwrap();
    let mut bytes = decode(&token);
    assert_eq!(bytes[1..5], old.0);
    bytes[1..5].copy_from_slice(&new.0);
    assert_eq!(
        open(&ring, &encode(&bytes), at(T0)),
        Err(OpenError::Tampered)
    );
}

#[test]
fn authentic_but_undecodable_plaintext_is_malformed() {
    let ring = ring();
    let (key_id, key) = ring.sealing_key().unwrap();
    let mut body = b"{\"not\":\"claims\"}".to_vec();
    let (nonce, tag) = key
        .seal_in_place_separate_tag(Aad::from(aad(key_id)), &mut body)
        .unwrap();
    let mut bytes = vec![TOKEN_VERSION];
    bytes.extend_from_slice(&key_id.0);
    bytes.extend_from_slice(nonce.as_ref());
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(tag.as_ref());
    assert_eq!(
        open(&ring, &encode(&bytes), at(T0)),
        Err(OpenError::Malformed(MalformedReason::Claims))
    );
}

#[test]
fn expired_exactly_at_expires_at() {
    let ring = ring();
    let token = seal(&ring, &claims(T0, HOUR)).unwrap();
    assert!(open(&ring, token.as_str(), at(T0 + HOUR - 1)).is_ok());
    assert_eq!(
        open(&ring, token.as_str(), at(T0 + HOUR)),
        Err(OpenError::Expired {
            expired_at: T0 + HOUR
        })
    );
}

#[test]
fn seal_refuses_lifetimes_the_ring_cannot_honour() {
    let ring = ring();
    for lifetime in [0, -1, 12 * HOUR + 1, i64::MAX] {
        let err = seal(&ring, &claims(T0, lifetime.min(i64::MAX - T0))).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Lifetime {
                    max_secs: 43_200,
                    ..
                }
            ),
            "{lifetime}: {err:?}"
        );
    }
    assert!(seal(&ring, &claims(T0, 12 * HOUR)).is_ok());
}

#[test]
fn seal_refuses_claims_too_large_for_the_header() {
    let ring = ring();
    let mut big = claims(T0, HOUR);
    big.tags = (0..50)
        .map(|i| (format!("k{i:0>126}"), "v".repeat(256)))
        .collect();
    match seal(&ring, &big) {
        Err(Error::TokenTooLarge { len, max }) => assert!(len > max && max == MAX_TOKEN_LEN),
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_session_policy_with_typical_tags_fits() {
    let ring = ring();
    let mut full = claims(T0, HOUR);
    full.session_policy = Some("x".repeat(2048));
    full.tags = (0..8)
        .map(|i| (format!("kubernetes-tag-{i}"), "v".repeat(64)))
        .collect();
    let token = seal(&ring, &full).unwrap();
    assert!(token.as_str().len() <= MAX_TOKEN_LEN);
    assert_eq!(open(&ring, token.as_str(), at(T0)).unwrap(), full);
}

// ---- happy paths ----

#[test]
fn round_trip_returns_the_same_claims() {
    let ring = ring();
    let claims = claims(T0, HOUR);
    let token = seal(&ring, &claims).unwrap();
    assert_eq!(open(&ring, token.as_str(), at(T0)).unwrap(), claims);
}

#[test]
fn minimal_claims_round_trip_and_stay_small() {
    let ring = ring();
    let mut claims = claims(T0, HOUR);
    claims.source_identity = None;
    claims.tags.clear();
    claims.transitive_tag_keys.clear();
    claims.session_policy = None;
    claims.external_id = None;
    claims.source = None;
    let token = seal(&ring, &claims).unwrap();
    assert!(token.as_str().len() < 400, "{}", token.as_str().len());
    assert_eq!(open(&ring, token.as_str(), at(T0)).unwrap(), claims);
}

#[test]
fn token_layout_is_version_key_id_nonce_ciphertext_tag() {
    let ring = ring();
    let claims = claims(T0, HOUR);
    let token = seal(&ring, &claims).unwrap();
    assert!(
        token
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    );
    let bytes = decode(&token);
    assert_eq!(bytes[0], TOKEN_VERSION);
    assert_eq!(bytes[1..5], ring.active_key_id().unwrap().0);
    let json = serde_json::to_vec(&claims).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + json.len() + TAG_LEN);
    let secret = claims.secret_access_key.expose().as_bytes();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret),
        "secret is encrypted"
    );
    // Random nonces: sealing twice gives different tokens.
    assert_ne!(seal(&ring, &claims).unwrap(), token);
}

#[test]
fn retired_key_still_opens_until_expiry_then_unknown_after_drop() {
    let mut ring = ring();
    let token = seal(&ring, &claims(T0 + 24 * HOUR - 1, 12 * HOUR)).unwrap();
    ring.rotate(at(T0 + 24 * HOUR)).unwrap();
    let newer = seal(&ring, &claims(T0 + 24 * HOUR, HOUR)).unwrap();
    assert_ne!(decode(&newer)[1..5], decode(&token)[1..5], "new key seals");
    let last_second = T0 + 36 * HOUR - 2;
    assert!(open(&ring, token.as_str(), at(last_second)).is_ok());
    assert!(matches!(
        open(&ring, token.as_str(), at(last_second + 1)),
        Err(OpenError::Expired { .. })
    ));
    let dropped = ring.rotate(at(T0 + 36 * HOUR + 300)).unwrap().dropped;
    assert_eq!(dropped.len(), 1);
    assert!(matches!(
        open(&ring, token.as_str(), at(T0 + 36 * HOUR + 300)),
        Err(OpenError::UnknownKey(_))
    ));
}

#[test]
fn shorter_configured_lifetime_is_enforced() {
    let config = RingConfig {
        max_credential_lifetime: std::time::Duration::from_secs(900),
        ..RingConfig::default()
    };
    let ring = KeyRing::generate(config, at(T0)).unwrap();
    assert!(seal(&ring, &claims(T0, 900)).is_ok());
    assert!(matches!(
        seal(&ring, &claims(T0, 901)),
        Err(Error::Lifetime { .. })
    ));
}

#[test]
fn debug_output_holds_no_secret() {
    let ring = ring();
    let claims = claims(T0, HOUR);
    let token = seal(&ring, &claims).unwrap();
    let secret = claims.secret_access_key.expose().to_owned();
    for debug in [
        format!("{claims:?}"),
        format!("{token:?}"),
        format!("{:?}", claims.secret_access_key),
    ] {
        assert!(!debug.contains(&secret), "{debug}");
        assert!(!debug.contains(token.as_str()), "{debug}");
    }
    assert!(format!("{claims:?}").contains("SecretKey(<redacted>)"));
    assert_eq!(SecretKey::new(secret.clone()), claims.secret_access_key);
    assert_ne!(SecretKey::new(secret + "x"), claims.secret_access_key);
}
