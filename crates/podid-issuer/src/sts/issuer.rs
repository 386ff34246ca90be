//! [`StsIssuer`]: an upstream `AssumeRole` behind single flight, reuse and the account's token
//! bucket.
//!
//! The caller says how far a session may be shared ([`ReuseScope`]): per pod (the default for
//! Pod Identity: a pod's concurrent requests share one call and its later requests get the same
//! credentials while more than the refresh margin remains), per association (session sharing:
//! every pod of the association gets the one session of the current refresh window), or not at
//! all. The reuse key is the scope plus every input of the call except the session name, so a
//! changed association (role, tags, policy, external id) never gets an old session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::bucket::Limiter;
use super::flight::{Expiring, Flights, Outcome};
use super::{
    Source, StsMetrics, Upstream, UpstreamError, UpstreamRequest, UpstreamSession, account_of,
};

/// How far a session may be shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReuseScope {
    /// Every request makes its own call (through the bucket).
    Never,
    /// One session per pod of an association.
    Pod {
        association_id: String,
        pod_uid: String,
    },
    /// One session for every pod of an association (session tags must be off: they name the
    /// pod).
    Association { association_id: String },
}

/// The quota settings.
#[derive(Debug, Clone)]
pub struct StsLimits {
    /// Upstream calls per second per account (the token bucket's refill).
    pub rate_per_sec: u32,
    /// Calls allowed at once after a quiet period (the bucket's size).
    pub burst: u32,
    /// Longest a call waits for a token before the request is refused.
    pub max_queue_wait: Duration,
    /// Sessions are reused while more than this of their lifetime remains.
    pub refresh_margin: Duration,
    /// Most sessions remembered for reuse.
    pub max_remembered: usize,
}

impl StsLimits {
    /// 500 calls/s (STS allows about 600 per account; the rest is left for everything else in
    /// the account), a burst of 500, 2 s of queueing, 100,000 remembered sessions.
    pub fn new(refresh_margin: Duration) -> Self {
        Self {
            rate_per_sec: 500,
            burst: 500,
            max_queue_wait: Duration::from_secs(2),
            refresh_margin,
            max_remembered: 100_000,
        }
    }
}

/// A session and how it was obtained.
#[derive(Debug, Clone)]
pub struct Issued {
    pub session: Arc<UpstreamSession>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    scope: ReuseScope,
    role_arn: String,
    duration_secs: u64,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    policy: Option<String>,
    policy_arns: Vec<String>,
    external_id: Option<String>,
    /// The access key id of the session that signs a chained call (`None`: podid's own).
    source: Option<String>,
}

impl Expiring for UpstreamSession {
    fn expires_at(&self) -> OffsetDateTime {
        self.credentials.expiration
    }
}

/// Upstream `AssumeRole` with the quota protections.
#[derive(Debug)]
pub struct StsIssuer {
    upstream: Arc<dyn Upstream>,
    limiter: Arc<Limiter>,
    flights: Flights<Key, UpstreamSession, UpstreamError>,
    /// The account of podid's own principal (its calls count against it).
    account_id: String,
    metrics: StsMetrics,
}

impl StsIssuer {
    pub fn new(upstream: Arc<dyn Upstream>, account_id: String, limits: &StsLimits) -> Self {
        Self {
            upstream,
            limiter: Arc::new(Limiter::new(
                limits.rate_per_sec,
                limits.burst,
                limits.max_queue_wait,
            )),
            flights: Flights::new(limits.refresh_margin, limits.max_remembered),
            account_id,
            metrics: StsMetrics::default(),
        }
    }

    pub fn metrics(&self) -> &StsMetrics {
        &self.metrics
    }

    /// The session for `request`, shared as `scope` allows, at `now`.
    pub async fn assume(
        &self,
        scope: ReuseScope,
        request: UpstreamRequest,
        now: OffsetDateTime,
    ) -> Result<Issued, UpstreamError> {
        let call = self.call(request.clone());
        if scope == ReuseScope::Never {
            let session = call.await?;
            self.metrics.session(Outcome::Fetched);
            return Ok(Issued {
                session: Arc::new(session),
                outcome: Outcome::Fetched,
            });
        }
        let key = Key {
            scope,
            role_arn: request.role_arn,
            duration_secs: request.duration.as_secs(),
            tags: request.tags,
            transitive_tag_keys: request.transitive_tag_keys,
            policy: request.policy,
            policy_arns: request.policy_arns,
            external_id: request.external_id,
            source: match &request.source {
                Source::Default => None,
                Source::Session(s) => Some(s.credentials.access_key_id.clone()),
            },
        };
        let (result, outcome) = self.flights.get(key, now, move || call).await;
        let session = result?;
        self.metrics.session(outcome);
        Ok(Issued { session, outcome })
    }

    /// One upstream call through the account's bucket, as a `'static` future.
    fn call(
        &self,
        request: UpstreamRequest,
    ) -> impl Future<Output = Result<UpstreamSession, UpstreamError>> + Send + 'static {
        let upstream = Arc::clone(&self.upstream);
        let limiter = Arc::clone(&self.limiter);
        let metrics = self.metrics.clone();
        // A chained call is signed by the first role's session: it counts against that
        // role's account.
        let account = match &request.source {
            Source::Default => self.account_id.clone(),
            Source::Session(s) => account_of(&s.assumed_role_arn)
                .unwrap_or(&self.account_id)
                .to_owned(),
        };
        async move {
            let Some(waited) = limiter.acquire(&account).await else {
                metrics.throttled();
                return Err(UpstreamError::RateLimited);
            };
            if !waited.is_zero() {
                metrics.queued();
            }
            let started = Instant::now();
            let result = upstream.assume_role(&request).await;
            metrics.call(
                &result.as_ref().map(|_| ()),
                started.elapsed().as_secs_f64(),
            );
            result
        }
    }
}

#[cfg(test)]
mod tests;
