//! EKS Auth `AssumeRoleForPodIdentity` (rest-json, botocore `eks-auth/2023-11-26`): a projected
//! service-account token in, temporary credentials for the associated role out.
//!
//! Order of checks: the caller may call the API for this cluster; the token verifies against the
//! cluster's keys; the association exists; then [`Issuer::assume`] for the association's role on
//! behalf of the service principal `pods.eks.amazonaws.com` (trust policy, session tags), and for a
//! target role a second `assume` by the first role's session with the association's external id.
//! Every outcome is audited, allowed or denied.
//!
//! Session names are `eks-<cluster>-<pod>-<uuid>` with the cluster and pod names cut to 10
//! characters each (as observed on EKS) and any character STS forbids replaced by `-`, which keeps
//! every name within STS's 64-character limit (4 + 10 + 1 + 10 + 1 + 36 = 62).
//!
//! [`Issuer::assume`]: crate::domain::assume::Issuer::assume

mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use podid_issuer::IssueSource;
use podid_model::{Association, Cluster};
use podid_token::VerifiedToken;

use super::{ApiState, audit_value};
use crate::domain::assume::{AssumeError, AssumeRequest, Assumer, Lifetime, Session};
use crate::domain::audit::Event;
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::protocol::rest_json::{Body, RestJsonError};
use podid_issuer::sts::{ReuseScope, UpstreamError};
use wire::{
    AssumeRoleForPodIdentityResponse, AssumedRoleArn, AssumedRoleUser, AuditedPath, AuditedRequest,
    Credentials, PodIdentityAssociation, ServiceAssumeRequest, ServiceAssumeResponse,
    ServiceIdentity, SessionTag, Subject,
};

/// The audience every Pod Identity token carries and every response echoes.
pub(crate) const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The service principal trust policies name.
const SERVICE_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// Credentials for the association's role last six hours, chained target-role ones 59 minutes
/// (EKS user guide, "pod-id-assign-target-role"), independent of the roles' MaxSessionDuration.
const ROLE_DURATION: Duration = Duration::from_secs(6 * 3600);
const TARGET_DURATION: Duration = Duration::from_secs(59 * 60);

pub(crate) async fn assume_role_for_pod_identity(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let cluster_name = match path {
        Ok(Path(name)) => name,
        Err(e) => {
            return RestJsonError::InvalidParameter(format!("Invalid request path: {e}"))
                .into_response();
        }
    };
    let mut event = Event::for_request(
        &info,
        "eks-auth.amazonaws.com",
        "AssumeRoleForPodIdentity",
        &state.config.account_id,
    )
    .params(audit_value(&AuditedPath {
        cluster_name: &cluster_name,
    }));
    match issue(&state, &info, &cluster_name, &body, &mut event).await {
        Ok(issued) => {
            let response = issued.response();
            state
                .audit
                .record(event.response(audit_value(&response.audit_copy())));
            for hop in issued.hops() {
                state.audit.record(hop);
            }
            Json(response).into_response()
        }
        Err(e) => {
            let wire = e.clone().into_aws();
            tracing::info!(cluster = %cluster_name, code = %wire.code, reason = %wire.message, "pod identity credentials refused");
            state.audit.record(event.failed(&wire.code, &wire.message));
            e.into_response()
        }
    }
}

/// A successful issuance: what the response and the audit events are built from.
struct Issued<'s> {
    state: &'s ApiState,
    association: Arc<Association>,
    token: VerifiedToken,
    /// The association role's session, then the target role's when chained.
    first: Session,
    target: Option<Session>,
    /// The session tags both hops carried.
    tags: Vec<(String, String)>,
}

impl Issued<'_> {
    fn last(&self) -> &Session {
        self.target.as_ref().unwrap_or(&self.first)
    }

    fn response(&self) -> AssumeRoleForPodIdentityResponse<'_, Credentials<'_>> {
        let session = self.last();
        AssumeRoleForPodIdentityResponse {
            subject: Subject {
                namespace: &self.token.namespace,
                service_account: &self.token.service_account,
            },
            audience: AUDIENCE,
            pod_identity_association: PodIdentityAssociation {
                association_arn: &self.association.association_arn,
                association_id: self.association.association_id.as_str(),
            },
            assumed_role_user: AssumedRoleUser {
                arn: &session.assumed_role_arn,
                assume_role_id: &session.assumed_role_id,
            },
            credentials: Credentials {
                session_token: session.session_token(),
                secret_access_key: session.secret_access_key(),
                access_key_id: session.access_key_id(),
                expiration: session.expiration().unix_timestamp(),
            },
        }
    }

    /// The STS `AssumeRole` events EKS Auth performs on the service principal's behalf: the
    /// calls this request made (in `sts` mode a session may be reused, or come from a
    /// concurrent request's call, which recorded it).
    fn hops(&self) -> Vec<Event> {
        let mut events = Vec::new();
        if self.first.minted_here().0 {
            events.push(self.hop(&self.first, None));
        }
        if let Some(target) = self.target.as_ref().filter(|t| t.minted_here().0) {
            events.push(self.hop(target, Some(&self.first.assumed_role_arn)));
        }
        events
    }

    fn hop(&self, session: &Session, chained_from: Option<&str>) -> Event {
        let config = &self.state.config;
        let identity = match chained_from {
            None => ServiceIdentity::Service {
                invoked_by: SERVICE_PRINCIPAL,
            },
            Some(arn) => ServiceIdentity::ChainedFrom {
                arn,
                account_id: &config.account_id,
                invoked_by: SERVICE_PRINCIPAL,
            },
        };
        // Both hops name the first session's name (EKS reuses it for the target role).
        let session_name = session
            .assumed_role_arn
            .rsplit('/')
            .next()
            .unwrap_or_default();
        Event {
            event_source: "sts.amazonaws.com",
            event_name: "AssumeRole".into(),
            read_only: false,
            user_identity: audit_value(&identity),
            username: None,
            access_key_id: None,
            region: config.region.clone(),
            source_ip: Some(SERVICE_PRINCIPAL.to_owned()),
            user_agent: Some(SERVICE_PRINCIPAL.to_owned()),
            // `sts` mode: upstream STS's request id, to find the call in the account's
            // CloudTrail.
            request_id: session
                .minted_here()
                .1
                .map_or_else(podid_aws::new_request_id, str::to_owned),
            request_parameters: audit_value(&ServiceAssumeRequest {
                role_arn: &session.role_arn,
                role_session_name: session_name,
                tags: self
                    .tags
                    .iter()
                    .map(|(key, value)| SessionTag { key, value })
                    .collect(),
            }),
            response_elements: audit_value(&ServiceAssumeResponse {
                assumed_role_user: AssumedRoleArn {
                    arn: &session.assumed_role_arn,
                },
            }),
            error: None,
            resources: vec![("AWS::IAM::Role".into(), session.role_arn.clone())],
            account_id: config.account_id.clone(),
        }
    }
}

async fn issue<'s>(
    state: &'s ApiState,
    info: &RequestInfo,
    cluster_name: &str,
    body: &[u8],
    event: &mut Event,
) -> Result<Issued<'s>, RestJsonError> {
    let body = Body::parse(body, RestJsonError::InvalidRequest)?;
    let token = body.req_str("token", RestJsonError::InvalidParameter)?;
    let node_name = body.opt_str("eksNodeName", RestJsonError::InvalidRequest)?;
    let instance_id = body.opt_str("instanceId", RestJsonError::InvalidRequest)?;
    let zone = body.opt_str("zone", RestJsonError::InvalidRequest)?;
    event.request_parameters = audit_value(&AuditedRequest {
        cluster_name,
        eks_node_name: node_name,
        instance_id,
        zone,
    });

    let cluster = state.registry.cluster(cluster_name);
    let cluster_arn = cluster
        .as_ref()
        .map_or_else(|| state.config.cluster_arn(cluster_name), |c| c.arn.clone());
    event
        .resources
        .push(("AWS::EKS::Cluster".into(), cluster_arn.clone()));
    authz::authorize(
        &state.iam,
        info,
        "eks-auth:AssumeRoleForPodIdentity",
        &cluster_arn,
    )
    .map_err(RestJsonError::PodIdentityDenied)?;
    let cluster = cluster.ok_or_else(|| RestJsonError::ClusterNotFound {
        cluster: cluster_name.to_owned(),
    })?;
    let verified = verify_token(state, &cluster, token).await?;
    // Pod Identity identifies pods, not service accounts: a token from `kubectl create token`
    // without `--bound-object-kind Pod` names no pod, and EKS refuses it (so does the reference
    // agent's local validation: "token missing pod uid").
    if verified.pod.is_none() {
        return Err(RestJsonError::InvalidToken(
            "the token is not bound to a pod (no kubernetes.io.pod claim)".to_owned(),
        ));
    }
    if let (Some(requested), Some(node)) = (node_name, verified.node.as_ref())
        && requested != &*node.name
    {
        return Err(RestJsonError::TokenForAnotherNode);
    }
    let association = state
        .registry
        .lookup(cluster_name, &verified.namespace, &verified.service_account)
        .ok_or_else(|| RestJsonError::NoAssociation {
            cluster: cluster_name.to_owned(),
            namespace: verified.namespace.to_string(),
            service_account: verified.service_account.to_string(),
        })?;
    assume_for(state, &cluster, association, verified).await
}

async fn verify_token(
    state: &ApiState,
    cluster: &Arc<Cluster>,
    token: &str,
) -> Result<VerifiedToken, RestJsonError> {
    let verifier = state
        .verifiers
        .get(cluster)
        .map_err(|e| unavailable(&cluster.name, &e))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verifier.verify(token, now).await.map_err(|e| {
        if e.is_expired() {
            RestJsonError::ExpiredToken
        } else if e.is_keys_unavailable() {
            unavailable(&cluster.name, &e)
        } else {
            RestJsonError::InvalidToken(e.to_string())
        }
    })
}

fn unavailable(cluster: &str, e: &dyn std::fmt::Display) -> RestJsonError {
    tracing::warn!(cluster, error = %e, "cluster signing keys unavailable");
    RestJsonError::KeysUnavailable {
        cluster: cluster.to_owned(),
    }
}

/// The six Pod Identity session tags.
fn session_tags(cluster: &Cluster, token: &VerifiedToken) -> Vec<(String, String)> {
    let mut tags = vec![
        ("eks-cluster-arn".to_owned(), cluster.arn.clone()),
        ("eks-cluster-name".to_owned(), cluster.name.clone()),
        (
            "kubernetes-namespace".to_owned(),
            token.namespace.to_string(),
        ),
        (
            "kubernetes-service-account".to_owned(),
            token.service_account.to_string(),
        ),
    ];
    if let Some(pod) = &token.pod {
        tags.push(("kubernetes-pod-name".to_owned(), pod.name.to_string()));
        tags.push(("kubernetes-pod-uid".to_owned(), pod.uid.to_string()));
    }
    tags
}

pub(crate) fn session_name(cluster: &str, pod: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .take(10)
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "eks-{}-{}-{}",
        clean(cluster),
        clean(pod),
        uuid::Uuid::new_v4()
    )
}

/// Assumes the association's role for the service principal and, with a target role, chains
/// from that session to the target.
async fn assume_for<'s>(
    state: &'s ApiState,
    cluster: &Cluster,
    association: Arc<Association>,
    token: VerifiedToken,
) -> Result<Issued<'s>, RestJsonError> {
    let tags = if association.disable_session_tags {
        Vec::new()
    } else {
        session_tags(cluster, &token)
    };
    let reuse = reuse_scope(state, &association, &token);
    // A session shared by the association's pods is named for the service account.
    let pod_name = match (&reuse, &token.pod) {
        (ReuseScope::Pod { .. } | ReuseScope::Never, Some(pod)) => pod.name.to_string(),
        _ => token.service_account.to_string(),
    };
    let session = session_name(&cluster.name, &pod_name);
    let source = IssueSource {
        association_id: association.association_id.as_str().to_owned(),
        cluster_arn: cluster.arn.clone(),
    };
    let chained = association.target_role_arn.is_some();
    let first = state
        .issuer
        .assume(AssumeRequest {
            role_arn: &association.role_arn,
            assumer: Assumer::Service(SERVICE_PRINCIPAL),
            session_name: session.clone(),
            lifetime: Lifetime::Fixed(if chained {
                TARGET_DURATION
            } else {
                ROLE_DURATION
            }),
            tags: tags.clone(),
            transitive_tag_keys: tags.iter().map(|(k, _)| k.clone()).collect(),
            // With a target role the association's policy limits the target's session.
            session_policy: if chained {
                None
            } else {
                association.policy.clone()
            },
            session_policy_arns: Vec::new(),
            external_id: None,
            source_identity: None,
            extra_context: vec![
                (
                    "aws:SourceAccount".into(),
                    vec![state.config.account_id.clone()],
                ),
                ("aws:SourceArn".into(), vec![cluster.arn.clone()]),
            ],
            source: Some(source.clone()),
            reuse: reuse.clone(),
        })
        .await
        .map_err(|e| first_hop_error(e, &association.role_arn))?;
    let target = match &association.target_role_arn {
        None => None,
        Some(target_arn) => {
            let session = state
                .issuer
                .assume(AssumeRequest {
                    role_arn: target_arn,
                    assumer: Assumer::Chained(&first),
                    session_name: session.clone(),
                    lifetime: Lifetime::Fixed(TARGET_DURATION),
                    tags: tags.clone(),
                    transitive_tag_keys: tags.iter().map(|(k, _)| k.clone()).collect(),
                    session_policy: association.policy.clone(),
                    session_policy_arns: Vec::new(),
                    external_id: association.external_id.clone(),
                    source_identity: None,
                    extra_context: Vec::new(),
                    source: Some(source),
                    reuse,
                })
                .await
                .map_err(|e| target_hop_error(e, &first, target_arn))?;
            Some(session)
        }
    };
    let issued = Issued {
        state,
        association,
        token,
        first,
        target,
        tags,
    };
    let last = issued.last();
    // debug, not info: the audit trail already records every issuance durably, and a log line
    // per issuance was ~4 % of the server's CPU at full rate (docs/BENCHMARKS.md).
    tracing::debug!(
        association_id = issued.association.association_id.as_str(),
        role_arn = %last.role_arn,
        namespace = %issued.token.namespace,
        service_account = %issued.token.service_account,
        access_key_id = %last.access_key_id(),
        "issued pod identity credentials for association"
    );
    Ok(issued)
}

/// How EKS Auth words a refusal of the association role's session.
fn first_hop_error(e: AssumeError, role_arn: &str) -> RestJsonError {
    match e {
        AssumeError::RoleNotFound { .. } => RestJsonError::RoleCannotBeAssumed {
            role_arn: role_arn.to_owned(),
            target: false,
        },
        AssumeError::TrustDenied { role_arn, actions } => RestJsonError::TrustRefused {
            role_arn,
            actions: actions.join(" and "),
        },
        other => shared_error(other),
    }
}

/// How EKS Auth words a refusal of the target role's session.
fn target_hop_error(e: AssumeError, first: &Session, target_arn: &str) -> RestJsonError {
    match e {
        AssumeError::RoleNotFound { .. } => RestJsonError::RoleCannotBeAssumed {
            role_arn: target_arn.to_owned(),
            target: true,
        },
        AssumeError::IdentityDenied(denied) => RestJsonError::ChainRefused {
            role_arn: first.role_arn.clone(),
            action: denied.action,
            target_arn: target_arn.to_owned(),
        },
        AssumeError::TrustDenied { .. } => RestJsonError::TargetTrustRefused {
            target_arn: target_arn.to_owned(),
            role_arn: first.role_arn.clone(),
        },
        other => shared_error(other),
    }
}

fn shared_error(e: AssumeError) -> RestJsonError {
    match e {
        AssumeError::PackedPolicyTooLarge => RestJsonError::SessionTooLarge,
        AssumeError::Upstream(e) => upstream_error(e),
        // A service principal has no identity policies and EKS's lifetimes are fixed; these
        // cannot happen on the first hop and the second hop handles its own.
        AssumeError::RoleNotFound { .. }
        | AssumeError::IdentityDenied(_)
        | AssumeError::TrustDenied { .. }
        | AssumeError::LongerThanRoleAllows { .. }
        | AssumeError::TransitiveTagOverridden { .. }
        | AssumeError::UpstreamOnly
        | AssumeError::Issuer(_) => {
            tracing::error!(error = %e, "issuing pod identity credentials failed");
            RestJsonError::InternalServerException
        }
    }
}

/// How far `sts` mode may share this request's session (local mode never shares, whatever the
/// settings): per association when session sharing is on (the server's `--sts-session-sharing`, or the association's
/// [`SESSION_SHARING_TAG`]) and the association disables session tags (they name the pod);
/// otherwise per pod.
fn reuse_scope(state: &ApiState, association: &Association, token: &VerifiedToken) -> ReuseScope {
    let association_id = association.association_id.as_str().to_owned();
    let sharing = match association
        .tags
        .get(SESSION_SHARING_TAG)
        .map(String::as_str)
    {
        Some("true") => true,
        Some("false") => false,
        _ => state.config.sts_session_sharing,
    };
    match &token.pod {
        _ if sharing && association.disable_session_tags && state.issuer.shares_sessions() => {
            ReuseScope::Association { association_id }
        }
        Some(pod) => ReuseScope::Pod {
            association_id,
            pod_uid: pod.uid.to_string(),
        },
        // Refused earlier (tokens must name a pod); never shared across pods.
        None => ReuseScope::Never,
    }
}

/// The association tag that turns session sharing on (`true`) or off (`false`) for one
/// association, whatever the server's default.
pub(crate) const SESSION_SHARING_TAG: &str = "podid.dev/session-sharing";

/// How EKS Auth words upstream STS's refusals (`sts` mode).
fn upstream_error(e: UpstreamError) -> RestJsonError {
    match e {
        UpstreamError::AccessDenied { message, .. } => RestJsonError::UpstreamDenied(message),
        UpstreamError::Refused { code, message, .. } => {
            RestJsonError::UpstreamDenied(format!("{code}: {message}"))
        }
        UpstreamError::Throttled { .. } => RestJsonError::Throttling(
            "Upstream STS is throttling AssumeRole requests; try again.".to_owned(),
        ),
        UpstreamError::RateLimited => RestJsonError::Throttling(
            "The rate of AssumeRole requests to upstream STS is at its limit; try again."
                .to_owned(),
        ),
        UpstreamError::PackedPolicyTooLarge { .. } => RestJsonError::SessionTooLarge,
        UpstreamError::Unavailable { ref reason, .. } => {
            tracing::warn!(%reason, request_id = ?e.request_id(), "upstream STS unavailable");
            RestJsonError::ServiceUnavailable("Upstream STS is unavailable; try again.".to_owned())
        }
        UpstreamError::Malformed { ref reason, .. } => {
            tracing::error!(%reason, request_id = ?e.request_id(), "upstream STS answered malformed");
            RestJsonError::InternalServerException
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(e: UpstreamError) -> (String, u16, String) {
        let aws = upstream_error(e).into_aws();
        (aws.code.into_owned(), aws.status.as_u16(), aws.message)
    }

    #[test]
    fn upstream_failures_become_eks_auth_errors() {
        let id = || Some("rid".to_owned());
        assert_eq!(
            wire(UpstreamError::AccessDenied {
                message: "User: arn:aws:iam::1:user/podid is not authorized".into(),
                request_id: id(),
            }),
            (
                "AccessDeniedException".into(),
                400,
                "User: arn:aws:iam::1:user/podid is not authorized".into()
            )
        );
        assert_eq!(
            wire(UpstreamError::Refused {
                code: "ValidationError".into(),
                message: "bad".into(),
                request_id: id(),
            }),
            (
                "AccessDeniedException".into(),
                400,
                "ValidationError: bad".into()
            )
        );
        for throttled in [
            UpstreamError::RateLimited,
            UpstreamError::Throttled {
                message: "Rate exceeded".into(),
                request_id: id(),
            },
        ] {
            assert_eq!(wire(throttled).0, "ThrottlingException");
        }
        assert_eq!(
            wire(UpstreamError::RateLimited).1,
            429,
            "the agent retries 429s"
        );
        let down = wire(UpstreamError::Unavailable {
            reason: "timed out".into(),
            request_id: None,
        });
        assert_eq!(
            (down.0.as_str(), down.1),
            ("ServiceUnavailableException", 503)
        );
        let malformed = wire(UpstreamError::Malformed {
            reason: "no Credentials".into(),
            request_id: id(),
        });
        assert_eq!(
            (malformed.0.as_str(), malformed.1),
            ("InternalServerException", 500)
        );
        // The detail of a malformed answer stays in the log.
        assert!(!malformed.2.contains("Credentials"));
        let large = wire(UpstreamError::PackedPolicyTooLarge {
            message: "98%".into(),
            request_id: id(),
        });
        assert_eq!(
            (large.0.as_str(), large.1),
            ("InvalidRequestException", 400)
        );
    }
}
