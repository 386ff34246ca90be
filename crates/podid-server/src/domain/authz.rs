//! Authorization of every API call by IAM policy evaluation of the caller.
//!
//! Users are judged by their inline and attached policies; assumed-role sessions by their role's
//! policies intersected with the session policy sealed into their token. A session is bound to
//! its role's unique id (`AROA…`), as in AWS: once the role is deleted, or replaced by a new role
//! of the same name, the session holds no identity policy and every authorized call is denied. The request context
//! carries the keys AWS populates for every call (`aws:SourceIp`, `aws:CurrentTime`,
//! `aws:PrincipalTag/*`, ...), so ABAC policies work.

use std::net::IpAddr;

use podid_iam::{
    Decision, Policy, PolicySource, PrincipalInfo, RequestContext, evaluate,
    evaluate_with_session_policies,
};
use podid_issuer::Principal;
use time::OffsetDateTime;

use super::caller::{Caller, CallerKind, RequestInfo};
use super::iam::Iam;

/// An identity-policy refusal: no policy of `caller_arn` allows `action` on `resource` (or one
/// denies it). Each protocol words it as its services do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    pub(crate) caller_arn: String,
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) reason: DenyReason,
}

/// Why a call was denied, as AWS's message says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DenyReason {
    /// No identity-based policy allows the action (also: the principal no longer exists).
    NoIdentityAllow,
    /// The identity policies allow it, the session policies do not.
    NoSessionAllow,
    /// A Deny statement in an identity-based policy matched.
    ExplicitIdentityDeny,
    /// A Deny statement in a session policy matched.
    ExplicitSessionDeny,
}

impl Denied {
    /// "No identity-based policy allows": for refusals made before any evaluation.
    pub(crate) fn implicit(caller_arn: &str, action: &str, resource: &str) -> Self {
        Self {
            caller_arn: caller_arn.to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            reason: DenyReason::NoIdentityAllow,
        }
    }
}

/// The IAM view of a caller: who it is, and its principal tags (role tags overlaid by session tags).
pub(crate) fn principal_info(iam: &Iam, caller: &Caller) -> (PrincipalInfo, Vec<(String, String)>) {
    match &caller.kind {
        CallerKind::User { user_id, .. } => {
            let mut p = PrincipalInfo::user(&caller.arn);
            if !user_id.is_empty() {
                p = p.with_userid(user_id);
            }
            (p, Vec::new())
        }
        CallerKind::AssumedRole(claims) => {
            let (role_arn, role_id) = match &claims.principal {
                Principal::AssumedRole(r) => (r.role_arn.clone(), r.role_id.as_str()),
                _ => (String::new(), ""),
            };
            // Only the tags of the very role the session was issued for (same unique id).
            let role_tags = role_name_of(&role_arn)
                .and_then(|name| iam.role(name))
                .filter(|r| r.role_id == role_id)
                .map(|r| r.tags)
                .unwrap_or_default();
            // Session tags take precedence over role tags with the same key.
            let mut tags = role_tags;
            tags.retain(|(k, _)| !claims.tags.iter().any(|(sk, _)| sk.eq_ignore_ascii_case(k)));
            tags.extend(claims.tags.iter().cloned());
            (
                PrincipalInfo::assumed_role(&caller.arn, &role_arn).with_userid(&caller.user_id()),
                tags,
            )
        }
    }
}

/// A request context for `action` by `caller`, with its principal tags.
pub(crate) fn principal_context(iam: &Iam, caller: &Caller, action: &str) -> RequestContext {
    let (principal, tags) = principal_info(iam, caller);
    let mut ctx = RequestContext::new(principal, action).with_time(OffsetDateTime::now_utc());
    for (k, v) in &tags {
        ctx = ctx.with_value(&format!("aws:PrincipalTag/{k}"), v);
    }
    // When the session's credentials were issued: AWS's revocation ("Revoke active sessions",
    // `podid role revoke-sessions`) is a deny on `DateLessThan aws:TokenIssueTime`.
    if let CallerKind::AssumedRole(claims) = &caller.kind
        && let Some(issued) = OffsetDateTime::from_unix_timestamp(claims.issued_at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    {
        ctx = ctx.with_value("aws:TokenIssueTime", &issued);
    }
    ctx
}

/// The role name of a role ARN (last path segment).
pub(crate) fn role_name_of(role_arn: &str) -> Option<&str> {
    role_arn
        .split_once(":role/")
        .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
}

/// The policies that judge a caller.
struct CallerPolicies {
    identity: Vec<Policy>,
    /// The session policies that still exist (inline, then managed by ARN).
    session: Vec<Policy>,
    /// Whether the session was given any session policy: then only what they allow is allowed,
    /// even when none of them exists any more.
    session_limited: bool,
}

/// The identity-based (and session) policies that judge `caller`.
fn caller_policies(iam: &Iam, caller: &Caller) -> CallerPolicies {
    match &caller.kind {
        CallerKind::User { name, .. } => CallerPolicies {
            identity: iam.user_policies(name),
            session: Vec::new(),
            session_limited: false,
        },
        CallerKind::AssumedRole(claims) => {
            let (role_name, role_id) = match &claims.principal {
                Principal::AssumedRole(r) => (r.role_name.as_str(), r.role_id.as_str()),
                _ => ("", ""),
            };
            let mut session: Vec<Policy> = claims
                .session_policy
                .as_deref()
                .and_then(|text| Policy::parse(text).ok())
                .into_iter()
                .collect();
            session.extend(
                claims
                    .session_policy_arns
                    .iter()
                    .filter_map(|arn| iam.managed_policy(arn))
                    .map(|named| named.policy),
            );
            CallerPolicies {
                identity: iam.session_role_policies(role_name, role_id),
                session,
                session_limited: claims.session_policy.is_some()
                    || !claims.session_policy_arns.is_empty(),
            }
        }
    }
}

/// Is `caller` allowed `action` on `resource` with these extra context keys? `Err` says why not.
pub(crate) fn check(
    iam: &Iam,
    caller: &Caller,
    source_ip: Option<IpAddr>,
    action: &str,
    resource: &str,
    extra: &[(&str, &str)],
) -> Result<(), DenyReason> {
    let mut ctx = principal_context(iam, caller, action).with_resource(resource);
    if let Some(ip) = source_ip {
        ctx = ctx.with_value("aws:SourceIp", &ip.to_string());
    }
    for (k, v) in extra {
        ctx = ctx.with_value(k, v);
    }
    let policies = caller_policies(iam, caller);
    let identity: Vec<&Policy> = policies.identity.iter().collect();
    let evaluation = if policies.session_limited {
        if policies.session.is_empty() {
            // Every session policy is gone: nothing is allowed, and an identity Deny still
            // says so first.
            return match evaluate(&identity, &ctx).decision {
                Decision::ExplicitDeny => Err(DenyReason::ExplicitIdentityDeny),
                Decision::Allowed => Err(DenyReason::NoSessionAllow),
                Decision::ImplicitDeny => Err(DenyReason::NoIdentityAllow),
            };
        }
        let session: Vec<&Policy> = policies.session.iter().collect();
        evaluate_with_session_policies(&identity, &session, &ctx)
    } else {
        evaluate(&identity, &ctx)
    };
    match evaluation.decision {
        Decision::Allowed => Ok(()),
        Decision::ExplicitDeny => Err(
            if evaluation
                .matched_statements
                .iter()
                .any(|m| m.source == PolicySource::Identity)
            {
                DenyReason::ExplicitIdentityDeny
            } else {
                DenyReason::ExplicitSessionDeny
            },
        ),
        Decision::ImplicitDeny if policies.session_limited => {
            // Which set failed to allow: the identity policies, or the session policies?
            if evaluate(&identity, &ctx).is_allowed() {
                Err(DenyReason::NoSessionAllow)
            } else {
                Err(DenyReason::NoIdentityAllow)
            }
        }
        Decision::ImplicitDeny => Err(DenyReason::NoIdentityAllow),
    }
}

/// Authorizes the request's caller for `action` on `resource`.
pub(crate) fn authorize(
    iam: &Iam,
    info: &RequestInfo,
    action: &str,
    resource: &str,
) -> Result<(), Denied> {
    authorize_with(iam, info, action, resource, &[])
}

/// [`authorize`] with extra request-context keys (`iam:PassedToService`, ...).
pub(crate) fn authorize_with(
    iam: &Iam,
    info: &RequestInfo,
    action: &str,
    resource: &str,
    extra: &[(&str, &str)],
) -> Result<(), Denied> {
    let mut keys = Vec::with_capacity(extra.len() + 1);
    keys.push((
        "aws:SecureTransport",
        if info.secure_transport {
            "true"
        } else {
            "false"
        },
    ));
    keys.extend_from_slice(extra);
    let Err(reason) = check(iam, &info.caller, info.source_ip, action, resource, &keys) else {
        return Ok(());
    };
    tracing::info!(caller = %info.caller.arn, action, resource, ?reason, "access denied");
    Err(Denied {
        caller_arn: info.caller.arn.clone(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        reason,
    })
}
