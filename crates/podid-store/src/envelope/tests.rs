use super::*;
use base64::engine::general_purpose::STANDARD;

fn kek(byte: u8) -> Kek {
    Kek::from_bytes(&[byte; KEK_LEN]).unwrap()
}

fn set(current: u8, previous: &[u8]) -> KekSet {
    KekSet::new(kek(current), previous.iter().map(|b| kek(*b)).collect()).unwrap()
}

const RECORD: &str = "iam/key/AKIAEXAMPLE";
const SECRET: &[u8] = br#"{"secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#;

fn text(v: &[u8]) -> String {
    String::from_utf8(v.to_vec()).unwrap()
}

/// Replaces field `index` (0 = KEK id, 1 = wrapped DEK, 2 = sealed value) of a sealed value.
fn with_field(sealed: &[u8], index: usize, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let text = text(sealed);
    let rest = text.strip_prefix(V1).unwrap();
    let mut fields: Vec<String> = rest.split(':').map(str::to_owned).collect();
    fields[index] = edit(&fields[index]);
    format!("{V1}{}", fields.join(":")).into_bytes()
}

/// Flips one bit of a base64 field's decoded bytes at `at`.
fn flip(field: &str, at: usize) -> String {
    let mut bytes = STANDARD_NO_PAD.decode(field).unwrap();
    bytes[at] ^= 1;
    STANDARD_NO_PAD.encode(bytes)
}

#[test]
fn seal_then_open_round_trips_and_hides_the_plaintext() {
    let keks = set(1, &[]);
    let sealed = keks.seal(RECORD, SECRET).unwrap();
    assert!(is_sealed(&sealed));
    assert!(text(&sealed).starts_with(&format!("podid-enc:v1:{}:", keks.current_id())));
    assert!(!sealed.windows(8).any(|w| SECRET.windows(8).any(|s| s == w)));
    assert_eq!(keks.open(RECORD, &sealed).unwrap().as_slice(), SECRET);
    // A fresh data key and nonces each time: equal plaintexts do not look equal.
    assert_ne!(keks.seal(RECORD, SECRET).unwrap(), sealed);
    assert_eq!(
        keks.open(RECORD, &keks.seal(RECORD, b"").unwrap())
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_wrong_kek_is_refused_by_id() {
    let sealed = set(1, &[]).seal(RECORD, SECRET).unwrap();
    let err = set(2, &[]).open(RECORD, &sealed).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::UnknownKek(id) if id == kek(1).id()),
        "{err}"
    );
}

#[test]
fn a_forged_kek_id_does_not_open() {
    // The id names the key that unwraps; pointing it at another configured key fails the tag.
    let keks = set(1, &[2]);
    let sealed = keks.seal(RECORD, SECRET).unwrap();
    let forged = with_field(&sealed, 0, |_| kek(2).id().to_string());
    assert!(matches!(
        keks.open(RECORD, &forged),
        Err(EnvelopeError::Tampered)
    ));
}

#[test]
fn tampered_ciphertext_is_refused() {
    let keks = set(1, &[]);
    let sealed = keks.seal(RECORD, SECRET).unwrap();
    for (field, at) in [
        (2, 0),
        (2, 20),
        (2, 12 + SECRET.len()),
        (1, 0),
        (1, 30),
        (1, 59),
    ] {
        let bad = with_field(&sealed, field, |f| flip(f, at));
        assert!(
            matches!(keks.open(RECORD, &bad), Err(EnvelopeError::Tampered)),
            "field {field} byte {at}"
        );
    }
    let truncated = with_field(&sealed, 2, |f| {
        STANDARD_NO_PAD.encode(&STANDARD_NO_PAD.decode(f).unwrap()[..30])
    });
    assert!(matches!(
        keks.open(RECORD, &truncated),
        Err(EnvelopeError::Tampered)
    ));
}

#[test]
fn a_value_moved_to_another_record_does_not_open() {
    let keks = set(1, &[]);
    let sealed = keks.seal(RECORD, SECRET).unwrap();
    assert!(matches!(
        keks.open("iam/key/AKIAOTHER", &sealed),
        Err(EnvelopeError::Tampered)
    ));
    // Nor does a value spliced with the wrapped data key of another record.
    let other = keks.seal("iam/key/AKIAOTHER", b"other secret").unwrap();
    let other_dek = text(&other).split(':').nth(3).unwrap().to_owned();
    let spliced = with_field(&sealed, 1, |_| other_dek.clone());
    assert!(matches!(
        keks.open(RECORD, &spliced),
        Err(EnvelopeError::Tampered)
    ));
}

#[test]
fn rotation_rewraps_under_the_new_kek_and_old_values_open_meanwhile() {
    let old = set(1, &[]);
    let sealed = old.seal(RECORD, SECRET).unwrap();
    let rotating = set(2, &[1]);
    assert_eq!(rotating.open(RECORD, &sealed).unwrap().as_slice(), SECRET);
    let rewrapped = rotating.rewrap(RECORD, &sealed).unwrap().unwrap();
    assert!(text(&rewrapped).starts_with(&format!("podid-enc:v1:{}:", kek(2).id())));
    // Only the data key was re-wrapped: the sealed value is byte for byte the same.
    assert_eq!(
        text(&rewrapped).split(':').nth(4),
        text(&sealed).split(':').nth(4)
    );
    assert!(rotating.rewrap(RECORD, &rewrapped).unwrap().is_none());
    let new = set(2, &[]);
    assert_eq!(new.open(RECORD, &rewrapped).unwrap().as_slice(), SECRET);
    assert!(matches!(
        new.open(RECORD, &sealed),
        Err(EnvelopeError::UnknownKek(_))
    ));
    assert!(matches!(
        old.open(RECORD, &rewrapped),
        Err(EnvelopeError::UnknownKek(_))
    ));
    // Rewrapping checks the value opens first: a tampered one is not blessed with a new wrap.
    let bad = with_field(&sealed, 2, |f| flip(f, 15));
    assert!(matches!(
        rotating.rewrap(RECORD, &bad),
        Err(EnvelopeError::Tampered)
    ));
}

#[test]
fn malformed_and_foreign_values_are_refused() {
    let keks = set(1, &[]);
    assert!(!is_sealed(SECRET));
    assert!(matches!(
        keks.open(RECORD, SECRET),
        Err(EnvelopeError::NotSealed)
    ));
    assert!(matches!(
        keks.open(RECORD, b"podid-enc:v2:whatever"),
        Err(EnvelopeError::UnknownVersion)
    ));
    for bad in [
        &b"podid-enc:v1:"[..],
        b"podid-enc:v1:0011223344556677:AAAA",
        b"podid-enc:v1:0011223344556677:AAAA:AAAA:AAAA",
        b"podid-enc:v1:zz11223344556677:AAAA:AAAA",
        b"podid-enc:v1:\xff",
    ] {
        assert!(
            matches!(keks.open(RECORD, bad), Err(EnvelopeError::Malformed(_))),
            "{bad:?}"
        );
    }
    let sealed = keks.seal(RECORD, SECRET).unwrap();
    for field in [1, 2] {
        let bad = with_field(&sealed, field, |_| "!!!!".to_owned());
        assert!(matches!(
            keks.open(RECORD, &bad),
            Err(EnvelopeError::Malformed(_))
        ));
        let short = with_field(&sealed, field, |_| STANDARD_NO_PAD.encode([0u8; 20]));
        assert!(matches!(
            keks.open(RECORD, &short),
            Err(EnvelopeError::Malformed(_))
        ));
    }
    let short_dek = with_field(&sealed, 1, |f| f[..40].to_owned());
    assert!(matches!(
        keks.open(RECORD, &short_dek),
        Err(EnvelopeError::Malformed(_))
    ));
}

#[test]
fn the_same_kek_twice_is_refused() {
    assert!(matches!(
        KekSet::new(kek(1), vec![kek(1)]),
        Err(EnvelopeError::DuplicateKek(_))
    ));
    assert!(matches!(
        KekSet::new(kek(1), vec![kek(2), kek(2)]),
        Err(EnvelopeError::DuplicateKek(_))
    ));
    assert_eq!(
        set(1, &[2, 3]).previous_ids(),
        vec![kek(2).id(), kek(3).id()]
    );
}

#[test]
fn kek_text_must_be_base64_of_32_bytes() {
    let text = STANDARD.encode([7u8; KEK_LEN]);
    assert_eq!(
        Kek::from_base64(&format!(" {text}\n")).unwrap().id(),
        kek(7).id()
    );
    assert!(matches!(
        Kek::from_base64("not base64!"),
        Err(EnvelopeError::KekFormat(_))
    ));
    let short = STANDARD.encode([7u8; 16]);
    assert!(matches!(
        Kek::from_base64(&short),
        Err(EnvelopeError::KekFormat(_))
    ));
    assert_ne!(kek(1).id(), kek(2).id());
    assert_eq!(KekId::parse(&kek(1).id().to_string()), Some(kek(1).id()));
    assert!(!format!("{:?}", kek(1)).contains(&STANDARD.encode([1u8; KEK_LEN])));
}

#[test]
fn a_kek_file_is_created_private_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("kek");
    let (created, new) = Kek::load_or_create(&path).unwrap();
    assert!(new);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, new) = Kek::load_or_create(&path).unwrap();
    assert!(!new);
    assert_eq!(again.id(), created.id());
    std::fs::write(&path, "short").unwrap();
    let err = Kek::load(&path).unwrap_err();
    assert!(
        err.to_string().contains("kek") && err.to_string().contains("not base64"),
        "{err}"
    );
    assert!(matches!(
        Kek::load(&dir.path().join("missing")),
        Err(EnvelopeError::KekFile { .. })
    ));
}
