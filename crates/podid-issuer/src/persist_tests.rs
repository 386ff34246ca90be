use serde_json::{Value, json};

use super::*;
use crate::test_support::{HOUR, T0, at, claims, ring};
use crate::{OpenError, open, seal};

fn persisted_json(ring: &KeyRing) -> Value {
    serde_json::from_slice(ring.to_persisted().unwrap().as_bytes()).unwrap()
}

fn load(doc: &Value) -> Result<KeyRing, Error> {
    KeyRing::from_persisted(&serde_json::to_vec(doc).unwrap(), RingConfig::default())
}

// ---- hostile input first ----

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; MAX_PERSISTED_LEN + 1];
    assert!(matches!(
        KeyRing::from_persisted(&big, RingConfig::default()),
        Err(Error::Persisted("longer than the size limit"))
    ));
}

#[test]
fn garbage_and_wrong_shapes_are_refused() {
    for bad in [
        &b""[..],
        b"null",
        b"{}",
        b"[1,2]",
        b"{\"v\":1}",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(
                KeyRing::from_persisted(bad, RingConfig::default()),
                Err(Error::PersistedJson(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn inconsistent_documents_are_refused() {
    let mut rotated = ring();
    rotated.rotate(at(T0 + 24 * HOUR)).unwrap();
    let good = persisted_json(&rotated);
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("unknown version", Box::new(|d| d["v"] = json!(2))),
        (
            "key count out of range",
            Box::new(|d| d["keys"] = json!([])),
        ),
        (
            "key count out of range",
            Box::new(|d| {
                let one = d["keys"][0].clone();
                d["keys"] = Value::Array(vec![one; MAX_KEYS + 1]);
            }),
        ),
        (
            "duplicate key id",
            Box::new(|d| d["keys"][1]["id"] = d["keys"][0]["id"].clone()),
        ),
        (
            "bad key id",
            Box::new(|d| d["keys"][0]["id"] = json!("0a0b0c")),
        ),
        (
            "bad key id",
            Box::new(|d| d["keys"][0]["id"] = json!("+a0b0c0d")),
        ),
        (
            "bad key id",
            Box::new(|d| d["keys"][0]["id"] = json!("zzzzzzzz")),
        ),
        (
            "key is not base64",
            Box::new(|d| d["keys"][0]["key"] = json!("!!!!")),
        ),
        (
            "key is not 32 bytes",
            Box::new(|d| d["keys"][0]["key"] = json!(STANDARD.encode([7u8; 31]))),
        ),
        (
            "inconsistent key times",
            Box::new(|d| d["keys"][0]["not_after"] = Value::Null),
        ),
        (
            "inconsistent key times",
            Box::new(|d| d["keys"][1]["not_after"] = json!(T0)),
        ),
        (
            "inconsistent key times",
            Box::new(|d| d["keys"][0]["retired_at"] = json!(T0 - 1)),
        ),
    ];
    for (expected, mutate) in cases {
        let mut doc = good.clone();
        mutate(&mut doc);
        match load(&doc) {
            Err(Error::Persisted(reason)) => assert_eq!(reason, expected),
            other => panic!("{expected}: {other:?}"),
        }
    }
    assert!(load(&good).is_ok(), "the unmutated document loads");
}

// ---- happy paths ----

#[test]
fn round_trip_keeps_ids_times_and_keys() {
    let mut original = ring();
    let before_rotation = seal(&original, &claims(T0, 12 * HOUR)).unwrap();
    original.rotate(at(T0 + 24 * HOUR)).unwrap();
    let after_rotation = seal(&original, &claims(T0 + 24 * HOUR, HOUR)).unwrap();

    let bytes = original.to_persisted().unwrap();
    let loaded = KeyRing::from_persisted(bytes.as_bytes(), RingConfig::default()).unwrap();
    assert_eq!(loaded.key_ids(), original.key_ids());
    assert_eq!(loaded.active_key_id(), original.active_key_id());
    for (a, b) in loaded.entries().iter().zip(original.entries()) {
        assert_eq!(
            (a.created_at, a.retired_at, a.not_after),
            (b.created_at, b.retired_at, b.not_after)
        );
    }
    assert!(open(&loaded, before_rotation.as_str(), at(T0 + HOUR)).is_ok());
    assert!(open(&loaded, after_rotation.as_str(), at(T0 + 24 * HOUR)).is_ok());
    // The loaded ring seals with the same active key the original opens.
    let fresh = seal(&loaded, &claims(T0 + 24 * HOUR, HOUR)).unwrap();
    assert!(open(&original, fresh.as_str(), at(T0 + 24 * HOUR)).is_ok());
    assert_eq!(loaded.to_persisted().unwrap().as_bytes(), bytes.as_bytes());
}

#[test]
fn loaded_key_with_other_material_fails_authentication() {
    let original = ring();
    let token = seal(&original, &claims(T0, HOUR)).unwrap();
    let mut doc = persisted_json(&original);
    doc["keys"][0]["key"] = json!(STANDARD.encode([9u8; 32]));
    let forged = load(&doc).unwrap();
    assert_eq!(
        open(&forged, token.as_str(), at(T0)),
        Err(OpenError::Tampered)
    );
}

#[test]
fn persisted_debug_holds_no_key_material() {
    let ring = ring();
    let persisted = ring.to_persisted().unwrap();
    let key = persisted_json(&ring)["keys"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let debug = format!("{persisted:?}");
    assert!(!debug.contains(&key), "{debug}");
    assert!(debug.starts_with("PersistedRing(<"), "{debug}");
}

#[test]
fn aad_binds_the_key_id_even_under_identical_key_material() {
    let mut rotated = ring();
    let token = seal(&rotated, &claims(T0, HOUR)).unwrap();
    rotated.rotate(at(T0 + 24 * HOUR)).unwrap();
    let mut doc = persisted_json(&rotated);
    doc["keys"][1]["key"] = doc["keys"][0]["key"].clone();
    let twins = load(&doc).unwrap();
    let mut bytes = STANDARD.decode(token.as_str()).unwrap();
    assert!(open(&twins, token.as_str(), at(T0)).is_ok());
    bytes[1..5].copy_from_slice(&twins.active_key_id().unwrap().0);
    assert_eq!(
        open(&twins, &STANDARD.encode(&bytes), at(T0)),
        Err(OpenError::Tampered)
    );
}
