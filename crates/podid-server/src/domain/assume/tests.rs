//! The one assume path against an in-memory IAM index: trust, identity, lifetimes, chaining.

use std::collections::BTreeMap;

use bytes::Bytes;
use podid_store::KeyValue;

use super::*;
use crate::domain::iam::IamIndex;
use crate::domain::iam::records::{self, RoleRecord, UserRecord};
use crate::state::Index;

const ACCOUNT: &str = "111122223333";
const SERVICE: &str = "pods.eks.amazonaws.com";
const POD_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const NO_TAG_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const ACCOUNT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
const MAY_ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}"#;

fn role(name: &str, trust: &str, max_session: u32, inline: &[(&str, &str)]) -> KeyValue {
    let record = RoleRecord {
        name: name.into(),
        path: "/".into(),
        role_id: format!("AROA{}", name.to_uppercase()),
        arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        create_date: records::now_iso(),
        assume_role_policy: trust.into(),
        description: None,
        max_session_duration: max_session,
        tags: Vec::new(),
        inline_policies: inline
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        attached: Vec::new(),
    };
    kv(&records::role_key(name), &record)
}

fn user(name: &str, inline: &[(&str, &str)]) -> KeyValue {
    let record = UserRecord {
        name: name.into(),
        path: "/".into(),
        user_id: "AIDATEST".into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        create_date: records::now_iso(),
        tags: Vec::new(),
        inline_policies: inline
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect(),
        attached: Vec::new(),
        access_keys: Vec::new(),
    };
    kv(&records::user_key(name), &record)
}

fn kv(key: &str, value: &impl serde::Serialize) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Bytes::from(serde_json::to_vec(value).unwrap()),
        mod_revision: 1,
    }
}

fn authority(max: Option<Duration>) -> LocalAuthority {
    let iam = Arc::new(Iam::default());
    let mut kvs = vec![
        role("pod", POD_TRUST, 3600, &[("hop", MAY_ASSUME)]),
        role("untagged", NO_TAG_TRUST, 3600, &[]),
        role("target", ACCOUNT_TRUST, 7200, &[]),
        role("long", ACCOUNT_TRUST, 43_200, &[]),
        user("alice", &[("assume", MAY_ASSUME)]),
        user("bob", &[]),
    ];
    kvs.sort_by(|a, b| a.key.cmp(&b.key));
    IamIndex(iam.clone(), crate::domain::secrets::Secrets::ephemeral()).load(&kvs);
    let ring =
        podid_issuer::KeyRing::generate(Default::default(), OffsetDateTime::now_utc()).unwrap();
    LocalAuthority {
        iam,
        issuer: Arc::new(LocalIssuer::new(ring)),
        account_id: ACCOUNT.into(),
        max_credential_duration: max,
    }
}

fn user_caller(name: &str) -> Caller {
    Caller {
        access_key_id: "AKIATEST".into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        account_id: ACCOUNT.into(),
        kind: CallerKind::User {
            name: name.into(),
            user_id: "AIDATEST".into(),
        },
    }
}

fn tags() -> Vec<(String, String)> {
    vec![("kubernetes-namespace".into(), "default".into())]
}

fn request<'a>(role: &'a str, assumer: Assumer<'a>, lifetime: Lifetime) -> AssumeRequest<'a> {
    AssumeRequest {
        role_arn: role,
        assumer,
        session_name: "session-1".into(),
        lifetime,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        session_policy: None,
        session_policy_arns: Vec::new(),
        external_id: None,
        source_identity: None,
        extra_context: Vec::new(),
        source: None,
        reuse: podid_issuer::sts::ReuseScope::Never,
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Whole seconds, as the issuer counts them (from `now`'s whole second).
fn lifetime_secs(session: &Session, now: OffsetDateTime) -> i64 {
    session.expiration().unix_timestamp() - now.unix_timestamp()
}

const SIX_HOURS: Lifetime = Lifetime::Fixed(Duration::from_secs(6 * 3600));

#[test]
fn the_pod_identity_service_gets_its_fixed_lifetime_whatever_the_role_allows() {
    let a = authority(None);
    let now = OffsetDateTime::now_utc();
    let role = arn("pod");
    let mut r = request(&role, Assumer::Service(SERVICE), SIX_HOURS);
    r.tags = tags();
    let session = a.assume_now(r, now).unwrap();
    assert_eq!(lifetime_secs(&session, now), 6 * 3600, "role max is 1 h");
    assert_eq!(
        session.assumed_role_arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/pod/session-1")
    );
    assert_eq!(session.assumed_role_id, "AROAPOD:session-1");
    assert_eq!(session.local_claims().unwrap().tags, tags());
}

#[test]
fn tags_require_tag_session_in_the_trust_policy() {
    let a = authority(None);
    let role = arn("untagged");
    let now = OffsetDateTime::now_utc();
    assert!(
        a.assume_now(request(&role, Assumer::Service(SERVICE), SIX_HOURS), now)
            .is_ok()
    );
    let mut tagged = request(&role, Assumer::Service(SERVICE), SIX_HOURS);
    tagged.tags = tags();
    match a.assume_now(tagged, now) {
        Err(AssumeError::TrustDenied { role_arn, actions }) => {
            assert_eq!(role_arn, role);
            assert_eq!(actions, vec!["sts:AssumeRole", "sts:TagSession"]);
        }
        other => panic!("expected TrustDenied, got {other:?}"),
    }
}

#[test]
fn a_missing_role_or_a_wrong_path_is_not_found() {
    let a = authority(None);
    let now = OffsetDateTime::now_utc();
    for missing in [arn("nope"), format!("arn:aws:iam::{ACCOUNT}:role/team/pod")] {
        let r = request(&missing, Assumer::Service(SERVICE), SIX_HOURS);
        assert!(matches!(
            a.assume_now(r, now),
            Err(AssumeError::RoleNotFound { .. })
        ));
    }
}

#[test]
fn sts_lifetimes_follow_the_role_and_the_chaining_rule() {
    let a = authority(None);
    let now = OffsetDateTime::now_utc();
    let alice = user_caller("alice");
    let identity = Assumer::Identity {
        caller: &alice,
        source_ip: None,
        secure_transport: false,
    };
    let long = arn("long");
    let default = a
        .assume_now(
            request(
                &long,
                identity,
                Lifetime::Sts {
                    requested_secs: None,
                },
            ),
            now,
        )
        .unwrap();
    assert_eq!(lifetime_secs(&default, now), 3600);
    let twelve = Lifetime::Sts {
        requested_secs: Some(43_200),
    };
    assert_eq!(
        lifetime_secs(
            &a.assume_now(request(&long, identity, twelve), now).unwrap(),
            now
        ),
        43_200
    );
    let target = arn("target");
    assert!(matches!(
        a.assume_now(request(&target, identity, twelve), now),
        Err(AssumeError::LongerThanRoleAllows { chained: false })
    ));
    // A session chaining on is held to one hour whatever the role allows.
    let chained_caller = default.as_caller().unwrap();
    let chained = Assumer::Identity {
        caller: &chained_caller,
        source_ip: None,
        secure_transport: false,
    };
    let two_hours = Lifetime::Sts {
        requested_secs: Some(7200),
    };
    assert!(matches!(
        a.assume_now(request(&target, chained, two_hours), now),
        Err(AssumeError::LongerThanRoleAllows { chained: true })
    ));
}

#[test]
fn an_identity_needs_its_own_policies_too() {
    let a = authority(None);
    let bob = user_caller("bob");
    let target = arn("target");
    let r = request(
        &target,
        Assumer::Identity {
            caller: &bob,
            source_ip: None,
            secure_transport: false,
        },
        Lifetime::Sts {
            requested_secs: None,
        },
    );
    match a.assume_now(r, OffsetDateTime::now_utc()) {
        Err(AssumeError::IdentityDenied(d)) => {
            assert_eq!(d.action, "sts:AssumeRole");
            assert_eq!(d.resource, target);
        }
        other => panic!("expected IdentityDenied, got {other:?}"),
    }
}

#[test]
fn chaining_carries_transitive_tags_and_refuses_to_override_them() {
    let a = authority(None);
    let now = OffsetDateTime::now_utc();
    let pod = arn("pod");
    let mut first = request(&pod, Assumer::Service(SERVICE), SIX_HOURS);
    first.tags = tags();
    first.transitive_tag_keys = vec!["kubernetes-namespace".into()];
    let first = a.assume_now(first, now).unwrap();
    let caller = first.as_caller().unwrap();
    let chained = Assumer::Identity {
        caller: &caller,
        source_ip: None,
        secure_transport: false,
    };
    let target = arn("target");
    let hop = Lifetime::Fixed(Duration::from_secs(59 * 60));

    // Carried without being named again.
    let carried = a.assume_now(request(&target, chained, hop), now).unwrap();
    assert_eq!(carried.local_claims().unwrap().tags, tags());
    assert_eq!(
        carried.local_claims().unwrap().transitive_tag_keys,
        vec!["kubernetes-namespace".to_owned()]
    );
    // Named again with the same value (EKS's target hop): kept once.
    let mut same = request(&target, chained, hop);
    same.tags = tags();
    let same = a.assume_now(same, now).unwrap();
    assert_eq!(same.local_claims().unwrap().tags, tags());
    // Another value: refused.
    let mut other = request(&target, chained, hop);
    other.tags = vec![("kubernetes-namespace".into(), "kube-system".into())];
    assert!(matches!(
        a.assume_now(other, now),
        Err(AssumeError::TransitiveTagOverridden { .. })
    ));
}

#[test]
fn the_server_cap_shortens_every_lifetime() {
    let a = authority(Some(Duration::from_secs(60)));
    let now = OffsetDateTime::now_utc();
    let pod = arn("pod");
    let r = request(&pod, Assumer::Service(SERVICE), SIX_HOURS);
    assert_eq!(lifetime_secs(&a.assume_now(r, now).unwrap(), now), 60);
}
