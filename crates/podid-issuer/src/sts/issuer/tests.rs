use std::sync::Mutex;

use time::macros::datetime;

use super::*;
use crate::SecretKey;
use crate::sts::UpstreamCredentials;

const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

/// An upstream that records every call and answers sessions expiring an hour after T0 (or
/// the error it is told to).
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<UpstreamRequest>>,
    fail: Mutex<Option<UpstreamError>>,
}

#[async_trait::async_trait]
impl Upstream for Recorder {
    async fn assume_role(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSession, UpstreamError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(request.clone());
            calls.len()
        };
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(UpstreamSession {
            credentials: UpstreamCredentials {
                access_key_id: format!("ASIA{n:016}"),
                secret_access_key: SecretKey::new("secret".into()),
                session_token: SecretKey::new("token".into()),
                expiration: T0 + Duration::from_secs(3600),
            },
            assumed_role_arn: format!(
                "arn:aws:sts::111111111111:assumed-role/r/{}",
                request.session_name
            ),
            assumed_role_id: "AROAEXAMPLE:s".into(),
            role_arn: request.role_arn.clone(),
            request_id: Some(format!("rid-{n}")),
        })
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

fn request(session: &str, policy: Option<&str>) -> UpstreamRequest {
    UpstreamRequest {
        role_arn: "arn:aws:iam::111111111111:role/r".into(),
        session_name: session.into(),
        duration: Duration::from_secs(3600),
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        policy: policy.map(str::to_owned),
        policy_arns: Vec::new(),
        external_id: None,
        source: Source::Default,
    }
}

fn pod(uid: &str) -> ReuseScope {
    ReuseScope::Pod {
        association_id: "a-1".into(),
        pod_uid: uid.into(),
    }
}

fn issuer(upstream: &Arc<Recorder>, limits: StsLimits) -> StsIssuer {
    StsIssuer::new(
        Arc::clone(upstream) as Arc<dyn Upstream>,
        "111111111111".into(),
        &limits,
    )
}

fn limits() -> StsLimits {
    StsLimits::new(Duration::from_secs(1800))
}

#[tokio::test]
async fn per_pod_scope_makes_one_call_per_pod_and_sharing_one_per_association() {
    let up = Arc::new(Recorder::default());
    let sts = issuer(&up, limits());
    for uid in ["p1", "p2", "p1", "p2", "p1"] {
        sts.assume(pod(uid), request(uid, None), T0).await.unwrap();
    }
    assert_eq!(up.count(), 2);
    let shared = ReuseScope::Association {
        association_id: "a-1".into(),
    };
    let first = sts
        .assume(shared.clone(), request("x", None), T0)
        .await
        .unwrap();
    let second = sts.assume(shared, request("y", None), T0).await.unwrap();
    assert_eq!(up.count(), 3);
    assert_eq!(
        first.session.credentials.access_key_id,
        second.session.credentials.access_key_id
    );
    assert_eq!(
        (first.outcome, second.outcome),
        (Outcome::Fetched, Outcome::Reused)
    );
    assert_eq!(sts.metrics().upstream_calls(), 3);
    assert_eq!(sts.metrics().sessions("reused"), 4);
}

#[tokio::test]
async fn a_changed_input_is_a_new_session() {
    let up = Arc::new(Recorder::default());
    let sts = issuer(&up, limits());
    sts.assume(pod("p1"), request("s", None), T0).await.unwrap();
    sts.assume(pod("p1"), request("s", Some("{}")), T0)
        .await
        .unwrap();
    let mut chained = request("s", None);
    let first = sts.assume(pod("p1"), request("s", None), T0).await.unwrap();
    chained.source = Source::Session(first.session);
    sts.assume(pod("p1"), chained, T0).await.unwrap();
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn never_reuses_when_told_not_to() {
    let up = Arc::new(Recorder::default());
    let sts = issuer(&up, limits());
    for _ in 0..3 {
        sts.assume(ReuseScope::Never, request("s", None), T0)
            .await
            .unwrap();
    }
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn after_the_refresh_margin_a_pod_gets_a_new_session() {
    let up = Arc::new(Recorder::default());
    let sts = issuer(&up, limits());
    sts.assume(pod("p1"), request("s", None), T0).await.unwrap();
    let at_29 = T0 + Duration::from_secs(29 * 60);
    assert_eq!(
        sts.assume(pod("p1"), request("s", None), at_29)
            .await
            .unwrap()
            .outcome,
        Outcome::Reused
    );
    let at_31 = T0 + Duration::from_secs(31 * 60);
    assert_eq!(
        sts.assume(pod("p1"), request("s", None), at_31)
            .await
            .unwrap()
            .outcome,
        Outcome::Fetched
    );
    assert_eq!(up.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_bucket_refuses_beyond_its_queue_without_calling_upstream() {
    let up = Arc::new(Recorder::default());
    let mut l = limits();
    l.rate_per_sec = 10;
    l.burst = 2;
    l.max_queue_wait = Duration::from_millis(150);
    let sts = issuer(&up, l);
    let calls = ["p1", "p2", "p3", "p4"].map(|uid| sts.assume(pod(uid), request(uid, None), T0));
    let [a, b, c, d] = calls;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    assert!(a.is_ok() && b.is_ok(), "the burst goes at once");
    assert!(c.is_ok(), "the third waits 100 ms");
    assert_eq!(d.unwrap_err(), UpstreamError::RateLimited);
    assert_eq!(up.count(), 3);
    assert_eq!(sts.metrics().bucket_throttled(), 1);
}

#[tokio::test]
async fn upstream_errors_pass_through_and_are_counted() {
    let up = Arc::new(Recorder::default());
    let denied = UpstreamError::AccessDenied {
        message: "not authorized".into(),
        request_id: Some("rid".into()),
    };
    *up.fail.lock().unwrap() = Some(denied.clone());
    let sts = issuer(&up, limits());
    assert_eq!(
        sts.assume(pod("p1"), request("s", None), T0)
            .await
            .unwrap_err(),
        denied
    );
    // Not remembered: the next request calls again.
    let _ = sts.assume(pod("p1"), request("s", None), T0).await;
    assert_eq!(up.count(), 2);
    assert_eq!(sts.metrics().upstream_calls(), 2);
}

#[test]
fn account_of_reads_the_fifth_field() {
    assert_eq!(
        account_of("arn:aws:sts::123456789012:assumed-role/r/s"),
        Some("123456789012")
    );
    assert_eq!(account_of("arn:aws:iam::12345:role/r"), None);
    assert_eq!(account_of("nonsense"), None);
}
