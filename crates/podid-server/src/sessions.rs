//! Assuming a role: the trust-policy check and the minting of a session, shared by STS AssumeRole
//! and EKS Auth AssumeRoleForPodIdentity.

use std::time::Duration;

use podid_iam::{PrincipalInfo, RequestContext, evaluate_resource_policy};
use podid_issuer::{IssueRequest, IssueSource, IssuedCredentials};
use time::OffsetDateTime;

use crate::iam::RoleView;
use crate::state::AppState;

/// The role session podid is asked to create.
#[derive(Debug)]
pub(crate) struct SessionRequest<'a> {
    pub(crate) role: &'a RoleView,
    pub(crate) session_name: String,
    pub(crate) duration: Duration,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive_tag_keys: Vec<String>,
    pub(crate) session_policy: Option<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) source_identity: Option<String>,
    pub(crate) source: Option<IssueSource>,
}

/// Why a session could not be minted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The claims do not fit the session token (too many or too long tags / policy).
    #[error("packed session policy and tags are too large")]
    PackedPolicyTooLarge,
    #[error("issuing credentials failed: {0}")]
    Issuer(podid_issuer::Error),
}

/// Does the role's trust policy let `principal` perform every one of `actions`, with `context`?
pub(crate) fn trust_allows(
    role: &RoleView,
    principal: &PrincipalInfo,
    actions: &[&str],
    context: &[(String, Vec<String>)],
) -> bool {
    actions.iter().all(|action| {
        let mut ctx = RequestContext::new(principal.clone(), action)
            .with_resource(&role.arn)
            .with_time(OffsetDateTime::now_utc());
        for (key, values) in context {
            ctx = ctx.with_values(key, values.iter().map(String::as_str));
        }
        evaluate_resource_policy(&role.trust_policy, &ctx).is_allowed()
    })
}

/// Mints the session.
pub(crate) fn issue(
    state: &AppState,
    request: SessionRequest<'_>,
) -> Result<IssuedCredentials, SessionError> {
    let duration = match state.config.max_credential_duration {
        Some(cap) => request.duration.min(cap),
        None => request.duration,
    };
    state
        .issuer
        .issue(IssueRequest {
            account_id: state.config.account_id.clone(),
            role_arn: request.role.arn.clone(),
            role_id: request.role.role_id.clone(),
            role_name: request.role.name.clone(),
            session_name: request.session_name,
            tags: request.tags,
            transitive_tag_keys: request.transitive_tag_keys,
            session_policy: request.session_policy,
            external_id: request.external_id,
            source_identity: request.source_identity,
            source: request.source,
            duration,
            now: OffsetDateTime::now_utc(),
        })
        .map_err(|e| match e {
            podid_issuer::Error::TokenTooLarge { .. } => SessionError::PackedPolicyTooLarge,
            other => SessionError::Issuer(other),
        })
}

/// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
pub(crate) fn assumed_role_arn(account_id: &str, role_name: &str, session_name: &str) -> String {
    format!("arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}")
}

/// RFC 3339 with whole seconds (`2024-01-01T00:00:00Z`), as STS writes timestamps.
pub(crate) fn iso8601(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_default()
}

/// Is `name` a valid RoleSessionName (2-64 of `[\w+=,.@-]`)?
pub(crate) fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}
