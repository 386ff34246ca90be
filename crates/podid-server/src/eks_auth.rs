//! EKS Auth `AssumeRoleForPodIdentity` (rest-json, botocore `eks-auth/2023-11-26`): a projected
//! service-account token in, temporary credentials for the associated role out.
//!
//! Order of checks: the caller may call the API for this cluster; the token verifies against the
//! cluster's keys; the association exists; the role's trust policy allows the service principal
//! `pods.eks.amazonaws.com` (and, for a target role, the first role with the association's
//! external id); then credentials are sealed. Every outcome is audited, allowed or denied.
//!
//! Session names are `eks-<cluster>-<pod>-<uuid>` with the cluster and pod names cut to 10
//! characters each (as observed on EKS) and any character STS forbids replaced by `-`, which keeps
//! every name within STS's 64-character limit (4 + 10 + 1 + 10 + 1 + 36 = 62).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use podid_aws::AwsError;
use podid_iam::PrincipalInfo;
use podid_issuer::{IssueSource, IssuedCredentials};
use podid_model::{Association, Cluster};
use podid_token::VerifiedToken;
use serde_json::{Value, json};

use crate::audit::Event;
use crate::auth::RequestInfo;
use crate::authz;
use crate::eks::errors::EksError;
use crate::iam::RoleView;
use crate::json::Body;
use crate::sessions::{self, SessionRequest};
use crate::state::AppState;

/// The audience every Pod Identity token carries and every response echoes.
pub(crate) const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The service principal trust policies name.
const SERVICE_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// Credentials for the association's role last six hours, chained target-role ones 59 minutes
/// (EKS user guide, "pod-id-assign-target-role"), independent of the roles' MaxSessionDuration.
const ROLE_DURATION: Duration = Duration::from_secs(6 * 3600);
const TARGET_DURATION: Duration = Duration::from_secs(59 * 60);

fn err(code: &'static str, status: u16, message: impl Into<String>) -> AwsError {
    AwsError::new(code, status, message)
}
fn invalid_request(m: String) -> AwsError {
    err("InvalidRequestException", 400, m)
}
fn access_denied(m: impl Into<String>) -> AwsError {
    err("AccessDeniedException", 400, m)
}

pub(crate) async fn assume_role_for_pod_identity(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let cluster_name = match path {
        Ok(Path(name)) => name,
        Err(e) => {
            return EksError(err(
                "InvalidParameterException",
                400,
                format!("Invalid request path: {e}"),
            ))
            .into_response();
        }
    };
    let mut event = Event::for_request(
        &info,
        "eks-auth.amazonaws.com",
        "AssumeRoleForPodIdentity",
        &state.config.account_id,
    )
    .params(json!({ "clusterName": cluster_name }));
    match assume(&state, &info, &cluster_name, &body, &mut event).await {
        Ok(answer) => {
            state.audit.record(event.response(answer.audit_response));
            for extra in answer.sts_events {
                state.audit.record(extra);
            }
            Json(answer.body).into_response()
        }
        Err(e) => {
            tracing::info!(cluster = %cluster_name, code = %e.code, reason = %e.message, "pod identity credentials refused");
            state.audit.record(event.failed(&e.code, &e.message));
            EksError(e).into_response()
        }
    }
}

struct Answer {
    body: Value,
    audit_response: Value,
    sts_events: Vec<Event>,
}

async fn assume(
    state: &AppState,
    info: &RequestInfo,
    cluster_name: &str,
    body: &[u8],
    event: &mut Event,
) -> Result<Answer, AwsError> {
    let body = Body::parse(body, invalid_request)?;
    let token = body.req_str("token", |m| err("InvalidParameterException", 400, m))?;
    let node_name = body.opt_str("eksNodeName", invalid_request)?;
    let instance_id = body.opt_str("instanceId", invalid_request)?;
    let zone = body.opt_str("zone", invalid_request)?;
    event.request_parameters = json!({ "clusterName": cluster_name, "eksNodeName": node_name, "instanceId": instance_id, "zone": zone });

    let cluster = state.registry.cluster(cluster_name);
    let cluster_arn = cluster.as_ref().map_or_else(
        || {
            format!(
                "arn:aws:eks:{}:{}:cluster/{cluster_name}",
                state.config.region, state.config.account_id
            )
        },
        |c| c.arn.clone(),
    );
    event
        .resources
        .push(("AWS::EKS::Cluster".into(), cluster_arn.clone()));
    if !authz::is_allowed(
        state,
        &info.caller,
        info.source_ip,
        "eks-auth:AssumeRoleForPodIdentity",
        &cluster_arn,
        &[],
    ) {
        return Err(access_denied(format!(
            "User: {} is not authorized to perform: eks-auth:AssumeRoleForPodIdentity on resource: {cluster_arn}",
            info.caller.arn
        )));
    }
    let cluster = cluster.ok_or_else(|| {
        err(
            "ResourceNotFoundException",
            404,
            format!("No cluster found for name: {cluster_name}."),
        )
    })?;
    let verified = verify_token(state, &cluster, token).await?;
    if let (Some(requested), Some(node)) = (node_name, verified.node.as_ref())
        && requested != &*node.name
    {
        return Err(err(
            "InvalidTokenException",
            400,
            "The token was issued for a pod on another node than eksNodeName.",
        ));
    }
    let association = state
        .registry
        .lookup(cluster_name, &verified.namespace, &verified.service_account)
        .ok_or_else(|| {
            err(
                "ResourceNotFoundException",
                404,
                format!("No Pod Identity Association found for service account {}/{} in cluster {cluster_name}.", verified.namespace, verified.service_account),
            )
        })?;
    issue_for(state, &cluster, &association, &verified)
}

async fn verify_token(
    state: &AppState,
    cluster: &Arc<Cluster>,
    token: &str,
) -> Result<VerifiedToken, AwsError> {
    let verifier = state
        .verifiers
        .get(cluster)
        .map_err(|e| unavailable(&cluster.name, &e))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verifier.verify(token, now).await.map_err(|e| {
        if e.is_expired() {
            err(
                "ExpiredTokenException",
                400,
                "The service account token has expired.",
            )
        } else if e.is_keys_unavailable() {
            unavailable(&cluster.name, &e)
        } else {
            err(
                "InvalidTokenException",
                400,
                format!("The service account token is invalid: {e}."),
            )
        }
    })
}

fn unavailable(cluster: &str, e: &dyn std::fmt::Display) -> AwsError {
    tracing::warn!(cluster, error = %e, "cluster signing keys unavailable");
    err(
        "ServiceUnavailableException",
        503,
        format!("The signing keys of cluster {cluster} are unavailable; try again."),
    )
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

fn role_of(state: &AppState, arn: &str, what: &str) -> Result<RoleView, AwsError> {
    authz::role_name_of(arn)
        .and_then(|name| state.iam.role(name))
        .filter(|r| r.arn == arn)
        .ok_or_else(|| {
            access_denied(format!(
                "The {what} {arn} does not exist or cannot be assumed."
            ))
        })
}

fn request_context(tags: &[(String, String)], prefix: &str) -> Vec<(String, Vec<String>)> {
    tags.iter()
        .map(|(k, v)| (format!("{prefix}{k}"), vec![v.clone()]))
        .collect()
}

fn issue_for(
    state: &AppState,
    cluster: &Cluster,
    association: &Association,
    token: &VerifiedToken,
) -> Result<Answer, AwsError> {
    let role = role_of(state, &association.role_arn, "role")?;
    let tags = if association.disable_session_tags {
        Vec::new()
    } else {
        session_tags(cluster, token)
    };
    let mut actions = vec!["sts:AssumeRole"];
    if !tags.is_empty() {
        actions.push("sts:TagSession");
    }
    let mut context = request_context(&tags, "aws:RequestTag/");
    if !tags.is_empty() {
        context.push((
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    context.push((
        "aws:SourceAccount".into(),
        vec![state.config.account_id.clone()],
    ));
    context.push(("aws:SourceArn".into(), vec![cluster.arn.clone()]));
    if !sessions::trust_allows(
        &role,
        &PrincipalInfo::service(SERVICE_PRINCIPAL),
        &actions,
        &context,
    ) {
        return Err(access_denied(format!(
            "The trust policy of role {} does not allow {SERVICE_PRINCIPAL} to perform {} with this request's context.",
            role.arn,
            actions.join(" and ")
        )));
    }
    let pod_name = token
        .pod
        .as_ref()
        .map_or_else(|| token.service_account.to_string(), |p| p.name.to_string());
    let session = session_name(&cluster.name, &pod_name);
    let source = IssueSource {
        association_id: association.association_id.as_str().to_owned(),
        cluster_arn: cluster.arn.clone(),
    };
    let transitive: Vec<String> = tags.iter().map(|(k, _)| k.clone()).collect();
    let first_arn = sessions::assumed_role_arn(&state.config.account_id, &role.name, &session);
    let mut sts_events = vec![service_assume_event(state, &role, &session, &tags, None)];

    let (final_role, duration, external_id) = match &association.target_role_arn {
        None => (role.clone(), ROLE_DURATION, None),
        Some(target_arn) => {
            let target = chain_check(state, &role, &first_arn, target_arn, &tags, association)?;
            sts_events.push(service_assume_event(
                state,
                &target,
                &session,
                &tags,
                Some(&first_arn),
            ));
            (target, TARGET_DURATION, association.external_id.clone())
        }
    };
    // EKS issues these lifetimes whatever the role's MaxSessionDuration (a role created with
    // IAM's default of one hour still gets six-hour Pod Identity credentials); only STS
    // AssumeRole honours MaxSessionDuration.
    let issued = sessions::issue(
        state,
        SessionRequest {
            role: &final_role,
            session_name: session.clone(),
            duration,
            tags,
            transitive_tag_keys: transitive,
            session_policy: association.policy.clone(),
            external_id,
            source_identity: None,
            source: Some(source),
        },
    )
    .map_err(|e| match e {
        sessions::SessionError::PackedPolicyTooLarge => err(
            "InvalidRequestException",
            400,
            "The association's session policy and tags are too large.",
        ),
        sessions::SessionError::Issuer(e) => {
            tracing::error!(error = %e, "issuing credentials failed");
            err(
                "InternalServerException",
                500,
                "An internal error occurred. Try again later.",
            )
        }
    })?;
    // debug, not info: the audit trail already records every issuance durably, and a log line
    // per issuance was ~4 % of the server's CPU at full rate (docs/BENCHMARKS.md).
    tracing::debug!(
        association_id = association.association_id.as_str(),
        role_arn = %final_role.arn,
        namespace = %token.namespace,
        service_account = %token.service_account,
        access_key_id = %issued.access_key_id,
        "issued pod identity credentials for association"
    );
    Ok(answer(
        state,
        association,
        token,
        &final_role,
        &session,
        &issued,
        sts_events,
    ))
}

/// Role chaining: the first role's policies must allow assuming the target, and the target's
/// trust must allow the first role's session with the association's external id.
fn chain_check(
    state: &AppState,
    role: &RoleView,
    first_arn: &str,
    target_arn: &str,
    tags: &[(String, String)],
    association: &Association,
) -> Result<RoleView, AwsError> {
    let target = role_of(state, target_arn, "target role")?;
    let principal = PrincipalInfo::assumed_role(first_arn, &role.arn);
    let mut actions = vec!["sts:AssumeRole"];
    if !tags.is_empty() {
        actions.push("sts:TagSession");
    }
    let policies = state.iam.role_policies(&role.name);
    let policy_refs: Vec<&podid_iam::Policy> = policies.iter().collect();
    for action in &actions {
        let ctx = podid_iam::RequestContext::new(principal.clone(), action)
            .with_resource(target_arn)
            .with_time(time::OffsetDateTime::now_utc());
        if !podid_iam::evaluate(&policy_refs, &ctx).is_allowed() {
            return Err(access_denied(format!(
                "Role {} is not allowed to perform {action} on the target role {target_arn}.",
                role.arn
            )));
        }
    }
    let mut context = request_context(tags, "aws:RequestTag/");
    context.extend(request_context(tags, "aws:PrincipalTag/"));
    if !tags.is_empty() {
        context.push((
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    if let Some(ext) = &association.external_id {
        context.push(("sts:ExternalId".into(), vec![ext.clone()]));
    }
    if !sessions::trust_allows(&target, &principal, &actions, &context) {
        return Err(access_denied(format!(
            "The trust policy of the target role {target_arn} does not allow role {} with this association's external id.",
            role.arn
        )));
    }
    Ok(target)
}

/// The STS AssumeRole that EKS Auth performs on behalf of the service principal.
fn service_assume_event(
    state: &AppState,
    role: &RoleView,
    session: &str,
    tags: &[(String, String)],
    chained_from: Option<&str>,
) -> Event {
    let identity = match chained_from {
        None => json!({ "type": "AWSService", "invokedBy": SERVICE_PRINCIPAL }),
        Some(arn) => {
            json!({ "type": "AssumedRole", "arn": arn, "accountId": state.config.account_id, "invokedBy": SERVICE_PRINCIPAL })
        }
    };
    Event {
        event_source: "sts.amazonaws.com",
        event_name: "AssumeRole",
        read_only: false,
        user_identity: identity,
        username: None,
        access_key_id: None,
        region: state.config.region.clone(),
        source_ip: Some(SERVICE_PRINCIPAL.to_owned()),
        user_agent: Some(SERVICE_PRINCIPAL.to_owned()),
        request_id: podid_aws::new_request_id(),
        request_parameters: json!({
            "roleArn": role.arn,
            "roleSessionName": session,
            "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        }),
        response_elements: json!({ "assumedRoleUser": { "arn": sessions::assumed_role_arn(&state.config.account_id, &role.name, session) } }),
        error: None,
        resources: vec![("AWS::IAM::Role".into(), role.arn.clone())],
        account_id: state.config.account_id.clone(),
    }
}

fn answer(
    state: &AppState,
    association: &Association,
    token: &VerifiedToken,
    role: &RoleView,
    session: &str,
    issued: &IssuedCredentials,
    sts_events: Vec<Event>,
) -> Answer {
    let assumed = json!({
        "arn": sessions::assumed_role_arn(&state.config.account_id, &role.name, session),
        "assumeRoleId": format!("{}:{session}", role.role_id),
    });
    let subject =
        json!({ "namespace": &*token.namespace, "serviceAccount": &*token.service_account });
    let pia = json!({ "associationArn": association.association_arn, "associationId": association.association_id.as_str() });
    let expiration = issued.expiration.unix_timestamp();
    let body = json!({
        "subject": subject,
        "audience": AUDIENCE,
        "podIdentityAssociation": pia,
        "assumedRoleUser": assumed,
        "credentials": {
            "sessionToken": issued.session_token.as_str(),
            "secretAccessKey": issued.secret_access_key.expose(),
            "accessKeyId": issued.access_key_id,
            "expiration": expiration,
        },
    });
    let audit_response = json!({
        "subject": subject,
        "audience": AUDIENCE,
        "podIdentityAssociation": pia,
        "assumedRoleUser": assumed,
        "credentials": { "accessKeyId": issued.access_key_id, "expiration": expiration },
    });
    Answer {
        body,
        audit_response,
        sts_events,
    }
}
