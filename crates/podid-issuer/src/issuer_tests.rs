use std::sync::Arc;
use std::thread;

use super::*;
use crate::test_support::{HOUR, T0, at, ring};
use crate::{ACCESS_KEY_ID_LEN, SECRET_ACCESS_KEY_LEN};

fn request(duration_secs: u64, now: i64) -> IssueRequest {
    IssueRequest {
        account_id: "111122223333".into(),
        role_arn: "arn:aws:iam::111122223333:role/s3-reader".into(),
        role_id: "AROAEXAMPLEEXAMPLE01".into(),
        role_name: "s3-reader".into(),
        session_name: "eks-prod-app".into(),
        tags: vec![("eks-cluster-name".into(), "prod".into())],
        transitive_tag_keys: vec![],
        session_policy: None,
        session_policy_arns: Vec::new(),
        external_id: None,
        source_identity: None,
        source: None,
        duration: Duration::from_secs(duration_secs),
        now: at(now),
    }
}

// ---- hostile input first ----

#[test]
fn access_key_id_from_another_credential_is_refused() {
    let issuer = LocalIssuer::new(ring());
    let a = issuer.issue(request(3600, T0)).unwrap();
    let b = issuer.issue(request(3600, T0)).unwrap();
    assert_eq!(
        issuer.verify(&b.access_key_id, a.session_token.as_str(), at(T0)),
        Err(OpenError::AccessKeyMismatch)
    );
    assert_eq!(
        issuer.verify("", a.session_token.as_str(), at(T0)),
        Err(OpenError::AccessKeyMismatch)
    );
}

#[test]
fn lifetimes_outside_the_ring_limit_are_refused() {
    let issuer = LocalIssuer::new(ring());
    for secs in [0, 12 * 3600 + 1, u64::MAX] {
        assert!(
            matches!(issuer.issue(request(secs, T0)), Err(Error::Lifetime { .. })),
            "{secs}"
        );
    }
}

#[test]
fn expired_credential_is_refused() {
    let issuer = LocalIssuer::new(ring());
    let creds = issuer.issue(request(900, T0)).unwrap();
    assert_eq!(
        issuer.verify(
            &creds.access_key_id,
            creds.session_token.as_str(),
            at(T0 + 900)
        ),
        Err(OpenError::Expired {
            expired_at: T0 + 900
        })
    );
}

// ---- happy paths ----

#[test]
fn issue_then_verify_round_trips() {
    let issuer = LocalIssuer::new(ring());
    let creds = issuer.issue(request(3600, T0)).unwrap();
    assert_eq!(creds.access_key_id.len(), ACCESS_KEY_ID_LEN);
    assert_eq!(
        creds.secret_access_key.expose().len(),
        SECRET_ACCESS_KEY_LEN
    );
    assert_eq!(creds.expiration, at(T0 + 3600));
    assert_eq!(creds.claims.expires_at, T0 + 3600);
    let claims = issuer
        .verify(
            &creds.access_key_id,
            creds.session_token.as_str(),
            at(T0 + 10),
        )
        .unwrap();
    assert_eq!(claims, creds.claims);
    assert_eq!(claims.secret_access_key, creds.secret_access_key);
    let Principal::AssumedRole(role) = &claims.principal;
    assert_eq!(role.session_name, "eks-prod-app");
}

#[test]
fn rotation_keeps_outstanding_credentials_valid_until_the_window_closes() {
    let issuer = LocalIssuer::new(ring());
    let old = issuer.issue(request(12 * 3600, T0 + 23 * HOUR)).unwrap();
    let rotation = issuer.rotate(at(T0 + 24 * HOUR)).unwrap();
    assert!(rotation.added.is_some());
    assert_eq!(issuer.ring().active_key_id(), rotation.added);
    assert!(
        issuer
            .verify(
                &old.access_key_id,
                old.session_token.as_str(),
                at(T0 + 35 * HOUR - 1)
            )
            .is_ok()
    );
    let later = T0 + 36 * HOUR + 300;
    assert_eq!(issuer.rotate(at(later)).unwrap().dropped.len(), 1);
    assert!(matches!(
        issuer.verify(&old.access_key_id, old.session_token.as_str(), at(later)),
        Err(OpenError::UnknownKey(_))
    ));
    assert!(!issuer.rotate(at(later)).unwrap().changed());
}

#[test]
fn replaced_ring_takes_effect() {
    let issuer = LocalIssuer::new(ring());
    let creds = issuer.issue(request(3600, T0)).unwrap();
    issuer.replace_ring(ring());
    assert!(matches!(
        issuer.verify(&creds.access_key_id, creds.session_token.as_str(), at(T0)),
        Err(OpenError::UnknownKey(_))
    ));
}

#[test]
fn verifiers_keep_working_while_another_thread_rotates() {
    let issuer = Arc::new(LocalIssuer::new(ring()));
    let creds = issuer.issue(request(12 * 3600, T0)).unwrap();
    let rotator = {
        let issuer = Arc::clone(&issuer);
        thread::spawn(move || {
            for i in 1..=6 {
                issuer.rotate(at(T0 + i * HOUR * 2)).unwrap();
            }
        })
    };
    for _ in 0..500 {
        let claims = issuer.verify(
            &creds.access_key_id,
            creds.session_token.as_str(),
            at(T0 + HOUR),
        );
        assert!(claims.is_ok());
    }
    rotator.join().unwrap();
}

#[test]
fn debug_output_holds_no_secret_or_token() {
    let issuer = LocalIssuer::new(ring());
    let creds = issuer.issue(request(3600, T0)).unwrap();
    let debug = format!("{creds:?} {issuer:?}");
    assert!(!debug.contains(creds.secret_access_key.expose()), "{debug}");
    assert!(!debug.contains(creds.session_token.as_str()), "{debug}");
    assert!(debug.contains(&creds.access_key_id));
}
