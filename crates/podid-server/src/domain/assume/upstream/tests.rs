use std::sync::Mutex;

use podid_issuer::SecretKey;
use podid_issuer::sts::{
    ReuseScope, StsLimits, Upstream, UpstreamCredentials, UpstreamError, UpstreamSession,
};

use super::*;
use crate::domain::assume::Lifetime;
use crate::domain::caller::{Caller, CallerKind};

/// Records every upstream call; answers a session of the requested role.
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<UpstreamRequest>>,
}

#[async_trait::async_trait]
impl Upstream for Recorder {
    async fn assume_role(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSession, podid_issuer::sts::UpstreamError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(request.clone());
            calls.len()
        };
        let role = request.role_arn.rsplit('/').next().unwrap_or_default();
        Ok(UpstreamSession {
            credentials: UpstreamCredentials {
                access_key_id: format!("ASIA{n:016}"),
                secret_access_key: SecretKey::new("s".into()),
                session_token: SecretKey::new("t".into()),
                expiration: OffsetDateTime::now_utc() + request.duration,
            },
            assumed_role_arn: format!(
                "arn:aws:sts::111111111111:assumed-role/{role}/{}",
                request.session_name
            ),
            assumed_role_id: format!("AROAEXAMPLE:{}", request.session_name),
            role_arn: request.role_arn.clone(),
            request_id: Some(format!("rid-{n}")),
        })
    }
}

fn authority(up: &Arc<Recorder>, duration: Duration) -> StsAuthority {
    StsAuthority {
        sts: Arc::new(StsIssuer::new(
            Arc::clone(up) as Arc<dyn Upstream>,
            "111111111111".into(),
            &StsLimits::new(Duration::from_secs(900)),
        )),
        duration,
    }
}

fn tags() -> Vec<(String, String)> {
    vec![
        ("kubernetes-namespace".into(), "default".into()),
        ("kubernetes-pod-uid".into(), "u-1".into()),
    ]
}

fn request<'a>(role: &'a str, assumer: Assumer<'a>) -> AssumeRequest<'a> {
    AssumeRequest {
        role_arn: role,
        assumer,
        session_name: "eks-dev-pod-1".into(),
        lifetime: Lifetime::Fixed(Duration::from_secs(6 * 3600)),
        tags: tags(),
        transitive_tag_keys: tags().into_iter().map(|(k, _)| k).collect(),
        session_policy: None,
        session_policy_arns: Vec::new(),
        external_id: None,
        source_identity: None,
        extra_context: Vec::new(),
        source: None,
        reuse: ReuseScope::Pod {
            association_id: "a-1".into(),
            pod_uid: "u-1".into(),
        },
    }
}

const ROLE: &str = "arn:aws:iam::111111111111:role/app";
const TARGET: &str = "arn:aws:iam::222222222222:role/data";

#[tokio::test]
async fn the_first_hop_sends_the_tags_with_the_configured_duration() {
    let up = Arc::new(Recorder::default());
    let sts = authority(&up, Duration::from_secs(7200));
    let session = sts
        .assume(request(ROLE, Assumer::Service("pods.eks.amazonaws.com")))
        .await
        .unwrap();
    assert_eq!(session.role_arn, ROLE);
    assert_eq!(
        session.assumed_role_arn,
        "arn:aws:sts::111111111111:assumed-role/app/eks-dev-pod-1"
    );
    assert_eq!(session.minted_here(), (true, Some("rid-1")));
    let calls = up.calls.lock().unwrap();
    let call = &calls[0];
    // EKS's fixed 6 h is local mode's rule; upstream gets the configured duration.
    assert_eq!(call.duration, Duration::from_secs(7200));
    assert_eq!(call.tags, tags());
    assert_eq!(call.transitive_tag_keys.len(), 2);
    assert!(matches!(call.source, Source::Default));
}

#[tokio::test]
async fn a_chained_hop_signs_with_the_first_session_for_at_most_an_hour_without_resending_tags() {
    let up = Arc::new(Recorder::default());
    let sts = authority(&up, Duration::from_secs(7200));
    let first = sts
        .assume(request(ROLE, Assumer::Service("pods.eks.amazonaws.com")))
        .await
        .unwrap();
    let mut chained = request(TARGET, Assumer::Chained(&first));
    chained.external_id = Some("ext-1".into());
    chained.session_policy = Some("{}".into());
    let target = sts.assume(chained).await.unwrap();
    assert_eq!(target.role_arn, TARGET);
    let calls = up.calls.lock().unwrap();
    let call = &calls[1];
    assert_eq!(call.duration, Duration::from_secs(3600));
    assert!(call.tags.is_empty() && call.transitive_tag_keys.is_empty());
    assert_eq!(call.external_id.as_deref(), Some("ext-1"));
    assert_eq!(call.policy.as_deref(), Some("{}"));
    match &call.source {
        Source::Session(s) => assert_eq!(s.credentials.access_key_id, first.access_key_id()),
        Source::Default => panic!("chained hop signed with podid's own credentials"),
    }
    // The carried tags stay transitive for a further hop.
    let Minted::Upstream {
        transitive_tag_keys,
        ..
    } = &target.credentials
    else {
        panic!("not upstream")
    };
    assert_eq!(transitive_tag_keys.len(), 2);
}

#[tokio::test]
async fn iam_identities_cannot_assume_upstream_roles_through_podid() {
    let up = Arc::new(Recorder::default());
    let sts = authority(&up, Duration::from_secs(3600));
    let caller = Caller {
        access_key_id: "AKIAEXAMPLE".into(),
        arn: "arn:aws:iam::111111111111:user/u".into(),
        account_id: "111111111111".into(),
        kind: CallerKind::User {
            name: "u".into(),
            user_id: "AIDA".into(),
        },
    };
    let refused = sts
        .assume(request(
            ROLE,
            Assumer::Identity {
                caller: &caller,
                source_ip: None,
                secure_transport: false,
            },
        ))
        .await;
    assert!(matches!(refused, Err(AssumeError::UpstreamOnly)));
    assert!(up.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reused_session_is_not_minted_here() {
    let up = Arc::new(Recorder::default());
    let sts = authority(&up, Duration::from_secs(3600));
    let service = Assumer::Service("pods.eks.amazonaws.com");
    let first = sts.assume(request(ROLE, service)).await.unwrap();
    let again = sts.assume(request(ROLE, service)).await.unwrap();
    assert_eq!(first.access_key_id(), again.access_key_id());
    // The original call's request id, but this request made no call.
    assert_eq!(again.minted_here(), (false, Some("rid-1")));
    assert_eq!(up.calls.lock().unwrap().len(), 1);
}

#[test]
fn upstream_errors_keep_their_request_id() {
    let e = UpstreamError::Unavailable {
        reason: "timed out".into(),
        request_id: Some("rid".into()),
    };
    assert_eq!(e.request_id(), Some("rid"));
    assert_eq!(UpstreamError::RateLimited.request_id(), None);
}
