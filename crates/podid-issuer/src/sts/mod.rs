//! `sts` issuing mode: role sessions from an upstream STS (AWS, or any STS-compatible endpoint)
//! through `AssumeRole`, with the quota protection a fleet of pods needs.
//!
//! Owns: the upstream client ([`SdkUpstream`]: aws-sdk-sts over aws-config's default
//! source-credential chain, timeouts, retries with backoff, error classification into
//! [`UpstreamError`]), the per-account token bucket ([`bucket`]), single flight and reuse of
//! issued sessions ([`flight`]), and [`StsIssuer`], which puts them together and counts what
//! happens ([`StsMetrics`]). Does not own: which role, tags, session name or policy a pod gets
//! (the server decides and hands over an [`UpstreamRequest`]), HTTP serving, or wire errors
//! (the server maps [`UpstreamError`] to EKS Auth's).

pub mod bucket;
mod client;
pub mod flight;
mod issuer;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::SecretKey;

pub use client::{Failure, SdkUpstream, SourceKind, UpstreamConfig, classify};
pub use issuer::{Issued, ReuseScope, StsIssuer, StsLimits};
pub use metrics::StsMetrics;

/// One `AssumeRole` call as podid sends it upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub role_arn: String,
    pub session_name: String,
    /// `DurationSeconds`, whole seconds (STS accepts 900..=43200).
    pub duration: Duration,
    /// Session tags in order; empty when the association disables them.
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    /// `Policy`: an inline session policy (JSON text).
    pub policy: Option<String>,
    /// `PolicyArns`: managed session policies.
    pub policy_arns: Vec<String>,
    pub external_id: Option<String>,
    /// Whose credentials sign the call.
    pub source: Source,
}

/// The credentials an `AssumeRole` call is signed with.
#[derive(Debug, Clone)]
pub enum Source {
    /// podid's own principal, from aws-config's default chain.
    Default,
    /// An upstream session podid already holds (role chaining to a target role).
    Session(Arc<UpstreamSession>),
}

/// What upstream STS answered: the session's credentials and who it is.
#[derive(Debug, Clone)]
pub struct UpstreamSession {
    pub credentials: UpstreamCredentials,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: String,
    /// `AROA…:<session>`.
    pub assumed_role_id: String,
    /// The role the session is for (as requested).
    pub role_arn: String,
    /// STS's `x-amzn-RequestId`, for the audit trail.
    pub request_id: Option<String>,
}

/// Temporary credentials from upstream. `Debug` redacts the secret and the token.
#[derive(Clone)]
pub struct UpstreamCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretKey,
    pub session_token: SecretKey,
    pub expiration: OffsetDateTime,
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Why upstream gave no session, already classified for the wire mapping. Messages come from
/// upstream (never carrying credentials); `request_id` is STS's when it answered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// STS refused the principal (`AccessDenied`): trust policy, missing `sts:TagSession`, ...
    #[error("upstream STS denied AssumeRole: {message}")]
    AccessDenied {
        message: String,
        request_id: Option<String>,
    },
    /// STS throttled the call (after the client's retries).
    #[error("upstream STS throttled AssumeRole: {message}")]
    Throttled {
        message: String,
        request_id: Option<String>,
    },
    /// podid's own per-account token bucket refused the call: queueing would have taken longer
    /// than allowed. Nothing was sent.
    #[error("the upstream STS rate limit of the account is exhausted")]
    RateLimited,
    /// Timeouts, connection failures and 5xx answers, after retries with backoff.
    #[error("upstream STS is unavailable: {reason}")]
    Unavailable {
        reason: String,
        request_id: Option<String>,
    },
    /// STS answered something that is not a usable `AssumeRole` result.
    #[error("upstream STS answered malformed: {reason}")]
    Malformed {
        reason: String,
        request_id: Option<String>,
    },
    /// The session policy and tags do not fit (`PackedPolicyTooLarge`).
    #[error("upstream STS refused the session as too large: {message}")]
    PackedPolicyTooLarge {
        message: String,
        request_id: Option<String>,
    },
    /// Any other refusal of the request (`ValidationError`, `MalformedPolicyDocument`,
    /// `RegionDisabledException`, `ExpiredTokenException` of the source credentials, ...).
    #[error("upstream STS refused AssumeRole: {code}: {message}")]
    Refused {
        code: String,
        message: String,
        request_id: Option<String>,
    },
}

impl UpstreamError {
    /// STS's request id, when it answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::AccessDenied { request_id, .. }
            | Self::Throttled { request_id, .. }
            | Self::Unavailable { request_id, .. }
            | Self::Malformed { request_id, .. }
            | Self::PackedPolicyTooLarge { request_id, .. }
            | Self::Refused { request_id, .. } => request_id.as_deref(),
            Self::RateLimited => None,
        }
    }
}

/// The upstream STS, behind a trait so the quota logic is tested without a network.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug + 'static {
    /// One `AssumeRole` (the implementation retries transient failures itself).
    async fn assume_role(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSession, UpstreamError>;
}

/// The twelve-digit account of an IAM or STS ARN (`arn:aws:iam::123456789012:role/x`).
pub fn account_of(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}
