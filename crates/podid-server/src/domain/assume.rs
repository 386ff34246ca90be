//! The one path from "this principal may ask for this role" to a role session: STS
//! `AssumeRole`, EKS Auth `AssumeRoleForPodIdentity` and its target-role chaining all call
//! [`Issuer::assume`].
//!
//! [`Issuer`] is the seam between podid and whoever is the IAM authority. [`LocalAuthority`]
//! (local mode) is that authority itself: it finds the role in the local IAM index, checks the
//! caller's identity policies and the role's trust policy, applies the lifetime rules, and seals
//! a stateless session token. [`StsAuthority`] (`sts` mode, in `upstream`) implements the same
//! trait by calling `AssumeRole` upstream, where AWS makes the same checks.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use podid_iam::{PrincipalInfo, RequestContext, evaluate_resource_policy};
use podid_issuer::sts::flight::Outcome;
use podid_issuer::sts::{Issued, ReuseScope};
use podid_issuer::{IssueRequest, IssueSource, IssuedCredentials, LocalIssuer, SessionClaims};
use time::OffsetDateTime;

use super::authz::{self, Denied};
use super::caller::{Caller, CallerKind};
use super::iam::{Iam, RoleView};

mod upstream;

pub(crate) use upstream::StsAuthority;

/// STS's default session lifetime when `DurationSeconds` is absent.
const STS_DEFAULT_SECS: u64 = 3600;
/// A role-chained session lasts at most one hour (AWS rule).
const MAX_CHAINED_SECS: u64 = 3600;

/// Who asks for the role, as the role's trust policy (and IAM) sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Assumer<'a> {
    /// A service principal (`pods.eks.amazonaws.com`): judged by the trust policy alone.
    Service(&'static str),
    /// An IAM identity (a user, or an assumed-role session): its identity policies must allow
    /// the calls too, and an assumed-role session's transitive tags carry over.
    Identity {
        caller: &'a Caller,
        source_ip: Option<IpAddr>,
        /// Whether the request came over TLS (`aws:SecureTransport`).
        secure_transport: bool,
    },
    /// A session this issuer minted a moment ago, chaining to the next role (EKS Auth's target
    /// role). Local mode judges it as the session's [`Caller`]; `sts` mode signs with it.
    Chained(&'a Session),
}

/// How long the session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// STS `AssumeRole`: the requested seconds (one hour by default), at most the role's
    /// `MaxSessionDuration`, and at most one hour when an assumed-role session chains.
    /// The 900..=43200 range is the wire's constraint, checked before this.
    Sts { requested_secs: Option<u64> },
    /// EKS Pod Identity's fixed lifetimes (6 h, or 59 min for a target role), whatever the
    /// role's `MaxSessionDuration`.
    Fixed(Duration),
}

/// A request for a role session. Wire validation (names, tag sizes, policy grammar) is done.
#[derive(Debug)]
pub(crate) struct AssumeRequest<'a> {
    pub(crate) role_arn: &'a str,
    pub(crate) assumer: Assumer<'a>,
    pub(crate) session_name: String,
    pub(crate) lifetime: Lifetime,
    /// Session tags, in request order. Non-empty tags make `sts:TagSession` a required action.
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive_tag_keys: Vec<String>,
    pub(crate) session_policy: Option<String>,
    /// Managed session policies (`PolicyArns`), sealed by ARN and evaluated at each request.
    pub(crate) session_policy_arns: Vec<String>,
    pub(crate) external_id: Option<String>,
    pub(crate) source_identity: Option<String>,
    /// Condition keys beyond those derived above (`aws:SourceAccount`, `aws:SourceArn`).
    pub(crate) extra_context: Vec<(String, Vec<String>)>,
    /// The association a Pod Identity session is for (recorded in its claims for audit).
    pub(crate) source: Option<IssueSource>,
    /// How far an upstream session may be shared (`sts` mode; local mode mints every time).
    pub(crate) reuse: ReuseScope,
}

/// A role session, minted.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The role assumed.
    pub(crate) role_arn: String,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub(crate) assumed_role_arn: String,
    /// `<role id>:<session>` (`AROA…:…`).
    pub(crate) assumed_role_id: String,
    pub(crate) credentials: Minted,
}

/// Who minted a session's credentials.
// Local is the larger variant and local mode's hot path: boxing it would add an allocation to
// every local issuance to save bytes on a value that lives for one request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Minted {
    /// Local mode: a sealed session token and its claims.
    Local(IssuedCredentials),
    /// `sts` mode: upstream's credentials, and how this request got them.
    Upstream {
        issued: Issued,
        /// The tag keys the session passes on to a chained session.
        transitive_tag_keys: Vec<String>,
    },
}

impl Session {
    pub(crate) fn access_key_id(&self) -> &str {
        match &self.credentials {
            Minted::Local(c) => &c.access_key_id,
            Minted::Upstream { issued, .. } => &issued.session.credentials.access_key_id,
        }
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        match &self.credentials {
            Minted::Local(c) => c.secret_access_key.expose(),
            Minted::Upstream { issued, .. } => {
                issued.session.credentials.secret_access_key.expose()
            }
        }
    }

    pub(crate) fn session_token(&self) -> &str {
        match &self.credentials {
            Minted::Local(c) => c.session_token.as_str(),
            Minted::Upstream { issued, .. } => issued.session.credentials.session_token.expose(),
        }
    }

    pub(crate) fn expiration(&self) -> OffsetDateTime {
        match &self.credentials {
            Minted::Local(c) => c.expiration,
            Minted::Upstream { issued, .. } => issued.session.credentials.expiration,
        }
    }

    /// What a local session token carries; `None` for upstream sessions.
    pub(crate) fn local_claims(&self) -> Option<&SessionClaims> {
        match &self.credentials {
            Minted::Local(c) => Some(&c.claims),
            Minted::Upstream { .. } => None,
        }
    }

    /// Whether this request made the call that minted the session (an upstream session may
    /// be reused, or come from another request's call), and upstream's request id for it.
    pub(crate) fn minted_here(&self) -> (bool, Option<&str>) {
        match &self.credentials {
            Minted::Local(_) => (true, None),
            Minted::Upstream { issued, .. } => (
                matches!(issued.outcome, Outcome::Fetched | Outcome::Uncached),
                issued.session.request_id.as_deref(),
            ),
        }
    }

    /// A local session as a caller, to chain from it (its identity policies and transitive
    /// tags); `None` for an upstream session.
    pub(crate) fn as_caller(&self) -> Option<Caller> {
        let claims = self.local_claims()?;
        Some(Caller {
            access_key_id: claims.access_key_id.clone(),
            arn: self.assumed_role_arn.clone(),
            account_id: claims.account_id.clone(),
            kind: CallerKind::AssumedRole(Arc::new(claims.clone())),
        })
    }
}

/// Why no session was minted. Each API words these as its service does.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AssumeError {
    #[error("role {role_arn} does not exist")]
    RoleNotFound { role_arn: String },
    #[error("the caller's identity policies refuse {}", .0.action)]
    IdentityDenied(Denied),
    #[error("the trust policy of {role_arn} refuses {}", actions.join(" and "))]
    TrustDenied {
        role_arn: String,
        actions: Vec<&'static str>,
    },
    #[error("the requested lifetime exceeds the role's MaxSessionDuration")]
    LongerThanRoleAllows { chained: bool },
    #[error("transitive tag key {key} cannot be overridden in a role chain")]
    TransitiveTagOverridden { key: String },
    #[error("session policy and tags are too large for the session token")]
    PackedPolicyTooLarge,
    #[error("issuing credentials failed: {0}")]
    Issuer(#[source] podid_issuer::Error),
    /// `sts` mode: upstream STS gave no session.
    #[error("{0}")]
    Upstream(#[source] podid_issuer::sts::UpstreamError),
    /// `sts` mode serves sessions for Pod Identity only: podid's own IAM identities cannot
    /// assume upstream roles through it, and a local session cannot chain upstream.
    #[error("role sessions are issued by upstream STS, for Pod Identity only")]
    UpstreamOnly,
}

/// The authority that turns an allowed request into a role session.
#[async_trait::async_trait]
pub(crate) trait Issuer: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that `request.assumer` may assume `request.role_arn`, then mints the session.
    async fn assume(&self, request: AssumeRequest<'_>) -> Result<Session, AssumeError>;

    /// Whether sessions may be shared by several pods ([`AssumeRequest::reuse`]); local mode
    /// mints one per request.
    fn shares_sessions(&self) -> bool {
        false
    }
}

/// Local mode: podid's own IAM index is the authority; sessions are sealed tokens.
#[derive(Debug)]
pub(crate) struct LocalAuthority {
    pub(crate) iam: Arc<Iam>,
    pub(crate) issuer: Arc<LocalIssuer>,
    pub(crate) account_id: String,
    /// Caps every lifetime (tests use it to watch SDKs refresh).
    pub(crate) max_credential_duration: Option<Duration>,
}

#[async_trait::async_trait]
impl Issuer for LocalAuthority {
    async fn assume(&self, request: AssumeRequest<'_>) -> Result<Session, AssumeError> {
        let now = OffsetDateTime::now_utc();
        match request.assumer {
            Assumer::Chained(first) => {
                let caller = first.as_caller().ok_or(AssumeError::UpstreamOnly)?;
                self.assume_now(
                    AssumeRequest {
                        assumer: Assumer::Identity {
                            caller: &caller,
                            source_ip: None,
                            secure_transport: false,
                        },
                        ..request
                    },
                    now,
                )
            }
            Assumer::Service(_) | Assumer::Identity { .. } => self.assume_now(request, now),
        }
    }
}

impl LocalAuthority {
    fn assume_now(
        &self,
        mut request: AssumeRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<Session, AssumeError> {
        // `assume` turned a local chained session into its caller; an upstream one cannot chain
        // here.
        if let Assumer::Chained(_) = request.assumer {
            return Err(AssumeError::UpstreamOnly);
        }
        let role = self.role(request.role_arn)?;
        let duration = self.lifetime(&role, &request)?;
        // The actions and the trust context come from the request's own tags; a chaining
        // session's transitive tags join the new session after the checks (as before the
        // one-path refactor; AWS documents no TagSession requirement for carried tags).
        let actions = actions(&request.tags);
        self.check_identity(&request, &actions)?;
        let (principal, context) = self.trust_context(&request);
        let trusted = actions.iter().all(|action| {
            let mut ctx = RequestContext::new(principal.clone(), action)
                .with_resource(&role.arn)
                .with_time(now);
            for (key, values) in &context {
                ctx = ctx.with_values(key, values.iter().map(String::as_str));
            }
            evaluate_resource_policy(&role.trust_policy, &ctx).is_allowed()
        });
        if !trusted {
            return Err(AssumeError::TrustDenied {
                role_arn: role.arn.clone(),
                actions,
            });
        }
        carry_transitive_tags(&mut request)?;
        let credentials = self
            .issuer
            .issue(IssueRequest {
                account_id: self.account_id.clone(),
                role_arn: role.arn.clone(),
                role_id: role.role_id.clone(),
                role_name: role.name.clone(),
                session_name: request.session_name.clone(),
                tags: request.tags,
                transitive_tag_keys: request.transitive_tag_keys,
                session_policy: request.session_policy,
                session_policy_arns: request.session_policy_arns,
                external_id: request.external_id,
                source_identity: request.source_identity,
                source: request.source,
                duration,
                now,
            })
            .map_err(|e| match e {
                podid_issuer::Error::TokenTooLarge { .. } => AssumeError::PackedPolicyTooLarge,
                other => AssumeError::Issuer(other),
            })?;
        Ok(Session {
            assumed_role_arn: assumed_role_arn(&self.account_id, &role.name, &request.session_name),
            assumed_role_id: format!("{}:{}", role.role_id, request.session_name),
            role_arn: role.arn,
            credentials: Minted::Local(credentials),
        })
    }

    /// The role named by `arn`, if it exists with exactly that ARN (path included).
    fn role(&self, arn: &str) -> Result<RoleView, AssumeError> {
        authz::role_name_of(arn)
            .and_then(|name| self.iam.role(name))
            .filter(|r| r.arn == arn)
            .ok_or_else(|| AssumeError::RoleNotFound {
                role_arn: arn.to_owned(),
            })
    }

    fn lifetime(
        &self,
        role: &RoleView,
        request: &AssumeRequest<'_>,
    ) -> Result<Duration, AssumeError> {
        let duration = match request.lifetime {
            Lifetime::Fixed(d) => d,
            Lifetime::Sts { requested_secs } => {
                let chained = is_chained(&request.assumer);
                let max_secs = if chained {
                    MAX_CHAINED_SECS
                } else {
                    u64::from(role.max_session_duration_secs)
                };
                let secs = match requested_secs {
                    None => STS_DEFAULT_SECS.min(max_secs),
                    Some(secs) if secs > max_secs => {
                        return Err(AssumeError::LongerThanRoleAllows { chained });
                    }
                    Some(secs) => secs,
                };
                Duration::from_secs(secs)
            }
        };
        Ok(match self.max_credential_duration {
            Some(cap) => duration.min(cap),
            None => duration,
        })
    }

    /// An IAM identity needs its own policies to allow every action on the role.
    fn check_identity(
        &self,
        request: &AssumeRequest<'_>,
        actions: &[&'static str],
    ) -> Result<(), AssumeError> {
        let Assumer::Identity {
            caller,
            source_ip,
            secure_transport,
        } = request.assumer
        else {
            return Ok(());
        };
        for action in actions {
            if let Err(reason) = authz::check(
                &self.iam,
                caller,
                source_ip,
                action,
                request.role_arn,
                &[("aws:SecureTransport", bool_text(secure_transport))],
            ) {
                return Err(AssumeError::IdentityDenied(Denied {
                    caller_arn: caller.arn.clone(),
                    action: (*action).to_owned(),
                    resource: request.role_arn.to_owned(),
                    reason,
                }));
            }
        }
        Ok(())
    }

    /// The trust policy's principal and condition keys for this request.
    fn trust_context(
        &self,
        request: &AssumeRequest<'_>,
    ) -> (PrincipalInfo, Vec<(String, Vec<String>)>) {
        let mut context = Vec::new();
        let principal = match request.assumer {
            Assumer::Service(name) => PrincipalInfo::service(name),
            // Refused in `assume_now` before this; a principal no policy names.
            Assumer::Chained(_) => PrincipalInfo::service(""),
            Assumer::Identity { caller, .. } => {
                let (principal, tags) = authz::principal_info(&self.iam, caller);
                context.extend(
                    tags.into_iter()
                        .map(|(k, v)| (format!("aws:PrincipalTag/{k}"), vec![v])),
                );
                context.push((
                    "sts:RoleSessionName".to_owned(),
                    vec![request.session_name.clone()],
                ));
                principal
            }
        };
        if let Some(external_id) = &request.external_id {
            context.push(("sts:ExternalId".to_owned(), vec![external_id.clone()]));
        }
        context.extend(
            request
                .tags
                .iter()
                .map(|(k, v)| (format!("aws:RequestTag/{k}"), vec![v.clone()])),
        );
        if !request.tags.is_empty() {
            context.push((
                "aws:TagKeys".to_owned(),
                request.tags.iter().map(|(k, _)| k.clone()).collect(),
            ));
        }
        context.extend(request.extra_context.iter().cloned());
        (principal, context)
    }
}

fn is_chained(assumer: &Assumer<'_>) -> bool {
    matches!(
        assumer,
        Assumer::Identity {
            caller: Caller {
                kind: CallerKind::AssumedRole(_),
                ..
            },
            ..
        }
    )
}

/// `sts:AssumeRole`, and `sts:TagSession` when the session is tagged.
fn actions(tags: &[(String, String)]) -> Vec<&'static str> {
    if tags.is_empty() {
        vec!["sts:AssumeRole"]
    } else {
        vec!["sts:AssumeRole", "sts:TagSession"]
    }
}

/// A chaining session's transitive tags pass on to the new session. Naming one again with the
/// same value is harmless (EKS's target-role hop does); with another value it is refused.
fn carry_transitive_tags(request: &mut AssumeRequest<'_>) -> Result<(), AssumeError> {
    let Assumer::Identity { caller, .. } = request.assumer else {
        return Ok(());
    };
    let CallerKind::AssumedRole(claims) = &caller.kind else {
        return Ok(());
    };
    for key in &claims.transitive_tag_keys {
        let Some((k, v)) = claims.tags.iter().find(|(k, _)| k == key) else {
            continue;
        };
        match request.tags.iter().find(|(t, _)| t.eq_ignore_ascii_case(k)) {
            Some((_, value)) if value == v => {}
            Some(_) => {
                return Err(AssumeError::TransitiveTagOverridden { key: k.clone() });
            }
            None => request.tags.push((k.clone(), v.clone())),
        }
        if !request
            .transitive_tag_keys
            .iter()
            .any(|t| t.eq_ignore_ascii_case(k))
        {
            request.transitive_tag_keys.push(k.clone());
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;

/// IAM's spelling of a `Bool` context value.
fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}
