//! Builders shared by the unit tests.

use time::OffsetDateTime;

use crate::{
    AssumedRole, IssueSource, KeyRing, Principal, RingConfig, SessionClaims,
    generate_access_key_id, generate_secret_access_key,
};

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: i64 = 1_767_225_600;
pub(crate) const HOUR: i64 = 3600;

pub(crate) fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

pub(crate) fn ring() -> KeyRing {
    KeyRing::generate(RingConfig::default(), at(T0)).unwrap()
}

/// Claims issued at `issued_at`, valid for `lifetime` seconds.
pub(crate) fn claims(issued_at: i64, lifetime: i64) -> SessionClaims {
    SessionClaims {
        access_key_id: generate_access_key_id().unwrap(),
        secret_access_key: generate_secret_access_key().unwrap(),
        account_id: "111122223333".into(),
        principal: Principal::AssumedRole(AssumedRole {
            role_arn: "arn:aws:iam::111122223333:role/app/s3-reader".into(),
            role_id: "AROAEXAMPLEEXAMPLE01".into(),
            role_name: "s3-reader".into(),
            session_name: "eks-prod-app-a1b2c3".into(),
        }),
        source_identity: Some("arn:aws:iam::111122223333:role/hop".into()),
        tags: vec![
            ("eks-cluster-name".into(), "prod".into()),
            ("kubernetes-namespace".into(), "app".into()),
        ],
        transitive_tag_keys: vec!["eks-cluster-name".into()],
        session_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        session_policy_arns: Vec::new(),
        external_id: Some("ext-1".into()),
        issued_at,
        expires_at: issued_at + lifetime,
        source: Some(IssueSource {
            association_id: "a-abcdefghijklmnop1".into(),
            cluster_arn: "arn:aws:eks:us-east-1:111122223333:cluster/prod".into(),
        }),
    }
}
