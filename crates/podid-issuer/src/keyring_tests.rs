use std::time::Duration;

use super::*;
use crate::test_support::{HOUR, T0, at, ring};

const DAY: i64 = 24 * HOUR;
/// Default tail: 12 h lifetime + 5 min skew.
const TAIL: i64 = 12 * HOUR + 300;

#[test]
fn config_refuses_zero_and_unbounded_rings() {
    let zero = RingConfig {
        rotation_period: Duration::ZERO,
        ..RingConfig::default()
    };
    assert!(matches!(
        KeyRing::generate(zero, at(T0)),
        Err(Error::Config(_))
    ));
    let zero_life = RingConfig {
        max_credential_lifetime: Duration::ZERO,
        ..RingConfig::default()
    };
    assert!(matches!(
        KeyRing::generate(zero_life, at(T0)),
        Err(Error::Config(_))
    ));
    // A one-minute rotation with 12 h credentials would keep ~720 keys.
    let tiny = RingConfig {
        rotation_period: Duration::from_secs(60),
        ..RingConfig::default()
    };
    assert!(matches!(
        KeyRing::generate(tiny, at(T0)),
        Err(Error::Config(_))
    ));
    let huge = RingConfig {
        clock_skew: Duration::from_secs(u64::MAX),
        ..RingConfig::default()
    };
    assert!(matches!(
        KeyRing::generate(huge, at(T0)),
        Err(Error::Config(_))
    ));
}

#[test]
fn fresh_ring_has_one_active_key() {
    let ring = ring();
    assert_eq!(ring.key_ids().len(), 1);
    assert_eq!(ring.active_key_id(), ring.key_ids().first().copied());
    assert_eq!(ring.config(), &RingConfig::default());
}

#[test]
fn rotate_before_the_period_changes_nothing() {
    let mut ring = ring();
    let before = ring.key_ids();
    let rotation = ring.rotate(at(T0 + DAY - 1)).unwrap();
    assert!(!rotation.changed());
    assert_eq!(ring.key_ids(), before);
}

#[test]
fn rotate_at_the_period_adds_a_key_and_retires_the_old_one() {
    let mut ring = ring();
    let old = ring.active_key_id().unwrap();
    let rotation = ring.rotate(at(T0 + DAY)).unwrap();
    let new = rotation.added.unwrap();
    assert!(rotation.dropped.is_empty());
    assert_ne!(new, old);
    assert_eq!(ring.active_key_id(), Some(new));
    assert_eq!(ring.key_ids(), vec![old, new]);
    let retired = ring.entries().first().unwrap();
    assert_eq!(retired.retired_at, Some(T0 + DAY));
    assert_eq!(retired.not_after, Some(T0 + DAY + TAIL));
    assert!(ring.opening_key(old, T0 + DAY + TAIL - 1).is_some());
    assert!(
        ring.opening_key(old, T0 + DAY + TAIL).is_none(),
        "window closed even before rotate"
    );
}

#[test]
fn retired_key_is_dropped_only_after_its_window() {
    let mut ring = ring();
    let old = ring.active_key_id().unwrap();
    ring.rotate(at(T0 + DAY)).unwrap();
    assert!(!ring.rotate(at(T0 + DAY + TAIL - 1)).unwrap().changed());
    let rotation = ring.rotate(at(T0 + DAY + TAIL)).unwrap();
    assert_eq!(rotation.dropped, vec![old]);
    assert_eq!(rotation.added, None);
    assert!(!ring.key_ids().contains(&old));
}

#[test]
fn long_idle_ring_rotates_once_and_keeps_the_sealing_key() {
    let mut ring = ring();
    let rotation = ring.rotate(at(T0 + 30 * DAY)).unwrap();
    assert!(rotation.added.is_some());
    assert_eq!(
        ring.key_ids().len(),
        2,
        "old key kept for credentials it may have sealed"
    );
    let active = ring.active_key_id().unwrap();
    ring.rotate(at(T0 + 30 * DAY + TAIL)).unwrap();
    assert_eq!(ring.key_ids(), vec![active]);
}

#[test]
fn ring_stays_bounded_over_a_year_of_rotation() {
    let mut ring = ring();
    for hour in 0..(365 * 24) {
        ring.rotate(at(T0 + hour * HOUR)).unwrap();
        assert!(
            ring.key_ids().len() <= 2,
            "hour {hour}: {:?}",
            ring.key_ids()
        );
    }
}

#[test]
fn key_id_displays_as_hex() {
    assert_eq!(KeyId([0x0a, 0xbc, 0x00, 0xff]).to_string(), "0abc00ff");
}

#[test]
fn debug_shows_no_key_material() {
    let ring = ring();
    let debug = format!("{ring:?}");
    let bytes = ring.entries().first().unwrap().material.bytes.as_ref();
    assert!(debug.contains("KeyMaterial(<redacted>)"), "{debug}");
    assert!(!debug.contains(&format!("{bytes:?}")));
    assert!(!debug.contains(&format!("{:?}", &bytes[..4])));
}
