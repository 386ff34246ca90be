//! Create, Describe, Update, Delete and ListPodIdentityAssociations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use podid_aws::AwsError;
use podid_model::{Association, AssociationId, AssociationSpec, Cluster, now_millis};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::errors::{self, EksError};
use super::{page_token, paging, parse_query, wire};
use crate::audit::Event;
use crate::auth::RequestInfo;
use crate::authz;
use crate::json::Body;
use crate::registry::AssociationFilter;
use crate::state::AppState;
use crate::writes::{self, WriteError};

type Reply = Result<Json<Value>, EksError>;

/// Longest clientRequestToken kept (EKS documents none; SDKs send a 36-character UUID).
const MAX_CLIENT_REQUEST_TOKEN: usize = 128;

fn cluster(state: &AppState, name: &str) -> Result<Arc<Cluster>, AwsError> {
    state
        .registry
        .cluster(name)
        .ok_or_else(|| errors::cluster_not_found(name))
}

fn path_error(e: PathRejection) -> EksError {
    EksError(errors::invalid_parameter(format!(
        "Invalid request path: {e}"
    )))
}

fn write_error(e: WriteError, cluster: &str, id: &str) -> AwsError {
    match e {
        WriteError::ClusterNotFound => errors::cluster_not_found(cluster),
        WriteError::AssociationNotFound => errors::association_not_found(cluster, id),
        WriteError::InUse { existing_id } => errors::association_in_use(cluster, &existing_id),
        WriteError::ClusterExists => {
            errors::server_error("cluster exists on association write", &"unexpected")
        }
        WriteError::Contention => AwsError::new(
            "ServerException",
            500,
            "Too many concurrent updates of this association; try again.",
        ),
        WriteError::Store(e) => errors::server_error("store", &e),
        WriteError::Encode(e) => errors::server_error("encode", &e),
    }
}

fn client_token(body: &Body) -> Result<Option<String>, AwsError> {
    let token = body.opt_str("clientRequestToken", errors::invalid_parameter_s)?;
    match token {
        Some(t) if t.is_empty() || t.len() > MAX_CLIENT_REQUEST_TOKEN => {
            Err(errors::invalid_parameter(format!(
                "clientRequestToken must be between 1 and {MAX_CLIENT_REQUEST_TOKEN} characters"
            )))
        }
        t => Ok(t.map(str::to_owned)),
    }
}

/// A stable digest of a request's parameters, to tell an idempotent retry from a reuse.
fn fingerprint(parts: &Value) -> String {
    hex_digest(parts.to_string().as_bytes())
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn token_reused(operation: &str) -> AwsError {
    errors::invalid_request(format!(
        "The clientRequestToken was already used for a {operation} request with different parameters."
    ))
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    let body = Body::parse(&body, errors::invalid_parameter_s)?;
    let e = errors::invalid_parameter_s;
    let namespace = body.req_str("namespace", e)?;
    let service_account = body.req_str("serviceAccount", e)?;
    let role_arn = body.req_str("roleArn", e)?;
    let token = client_token(&body)?;
    let tags = body.opt_string_map("tags", e)?.unwrap_or_default();
    let disable_session_tags = body.opt_bool("disableSessionTags", e)?.unwrap_or(false);
    let target_role_arn = body.opt_str("targetRoleArn", e)?;
    let policy = body.opt_str("policy", e)?;
    authz::authorize(
        &state,
        &info,
        "eks:CreatePodIdentityAssociation",
        &cluster_arn(&state, &name),
    )?;
    authorize_pass_role(&state, &info, role_arn)?;
    cluster(&state, &name)?;

    let print = fingerprint(&json!([
        namespace,
        service_account,
        role_arn,
        tags,
        disable_session_tags,
        target_role_arn,
        policy
    ]));
    if let Some(t) = &token
        && let Some(existing) = state.registry.by_create_token(&name, t)
    {
        return idempotent_repeat(&existing, &print);
    }
    let spec = AssociationSpec::validate(
        role_arn,
        target_role_arn,
        disable_session_tags,
        policy,
        &state.config.account_id,
    )
    .map_err(errors::invalid_field)?;
    let mut a = Association::new(
        podid_model::Scope {
            region: &state.config.region,
            account_id: &state.config.account_id,
        },
        &name,
        namespace,
        service_account,
        spec,
        tags,
        now_millis(),
    )
    .map_err(errors::invalid_field)?;
    a.create_token = token.clone().map(|t| (t, print.clone()));

    if let Some(existing) = state.registry.lookup(&name, namespace, service_account) {
        return Err(errors::association_in_use(&name, existing.association_id.as_str()).into());
    }
    let limit = state.config.max_associations_per_cluster;
    if state.registry.association_count(&name) >= limit {
        return Err(errors::limit_exceeded(&name, limit).into());
    }
    match writes::create_association(&state, &a).await {
        Ok(()) => {
            tracing::info!(cluster = %name, association_id = a.association_id.as_str(), namespace, service_account, "association created");
            audit(&state, &info, "CreatePodIdentityAssociation", &a);
            Ok(Json(json!({ "association": wire::association(&a) })))
        }
        // A concurrent retry with the same token may have won the race.
        Err(WriteError::InUse { .. }) if token.is_some() => {
            match token
                .as_deref()
                .and_then(|t| state.registry.by_create_token(&name, t))
            {
                Some(existing) => idempotent_repeat(&existing, &print),
                None => Err(write_error(
                    WriteError::InUse {
                        existing_id: existing_id(&state, &name, namespace, service_account),
                    },
                    &name,
                    "",
                )
                .into()),
            }
        }
        Err(err) => Err(write_error(err, &name, "").into()),
    }
}

fn existing_id(state: &AppState, cluster: &str, ns: &str, sa: &str) -> String {
    state
        .registry
        .lookup(cluster, ns, sa)
        .map(|a| a.association_id.as_str().to_owned())
        .unwrap_or_default()
}

fn idempotent_repeat(existing: &Association, print: &str) -> Reply {
    match &existing.create_token {
        Some((_, p)) if p == print => {
            Ok(Json(json!({ "association": wire::association(existing) })))
        }
        _ => Err(token_reused("CreatePodIdentityAssociation").into()),
    }
}

pub(super) async fn describe(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    authz::authorize(
        &state,
        &info,
        "eks:DescribePodIdentityAssociation",
        &association_arn(&state, &name, &id),
    )?;
    cluster(&state, &name)?;
    let a = AssociationId::parse(&id)
        .and_then(|aid| state.registry.association(&name, &aid))
        .ok_or_else(|| errors::association_not_found(&name, &id))?;
    Ok(Json(json!({ "association": wire::association(&a) })))
}

pub(super) async fn update(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    let body = Body::parse(&body, errors::invalid_parameter_s)?;
    let e = errors::invalid_parameter_s;
    let role_arn = body.opt_str("roleArn", e)?;
    let token = client_token(&body)?;
    let disable_session_tags = body.opt_bool("disableSessionTags", e)?;
    // An empty string removes the target role or the session policy.
    let target_role_arn = body.opt_str("targetRoleArn", e)?;
    let policy = body.opt_str("policy", e)?;
    authz::authorize(
        &state,
        &info,
        "eks:UpdatePodIdentityAssociation",
        &association_arn(&state, &name, &id),
    )?;
    cluster(&state, &name)?;
    if let Some(r) = role_arn {
        authorize_pass_role(&state, &info, r)?;
    }
    let aid = AssociationId::parse(&id).ok_or_else(|| errors::association_not_found(&name, &id))?;
    let print = fingerprint(&json!([
        role_arn,
        disable_session_tags,
        target_role_arn,
        policy
    ]));
    let account = state.config.account_id.clone();

    let outcome = writes::update_association(&state, &name, &aid, |a| {
        if let (Some(t), Some((prev, prev_print))) = (&token, &a.update_token)
            && t == prev
        {
            return if *prev_print == print {
                Ok(false)
            } else {
                Err(token_reused("UpdatePodIdentityAssociation"))
            };
        }
        let current = a.spec().map_err(errors::invalid_field)?;
        let merged_target = match target_role_arn {
            None => current
                .target_role_arn
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            Some("") => None,
            Some(t) => Some(t.to_owned()),
        };
        let merged_policy = match policy {
            None => current.policy.clone(),
            Some("") => None,
            Some(p) => Some(p.to_owned()),
        };
        let spec = AssociationSpec::validate(
            role_arn.unwrap_or(current.role_arn.as_str()),
            merged_target.as_deref(),
            disable_session_tags.unwrap_or(current.disable_session_tags),
            merged_policy.as_deref(),
            &account,
        )
        .map_err(errors::invalid_field)?;
        a.apply(spec);
        a.modified_at_ms = now_millis();
        a.update_token = token.clone().map(|t| (t, print.clone()));
        Ok(true)
    })
    .await
    .map_err(|err| write_error(err, &name, &id))?;
    let a = outcome?;
    tracing::info!(cluster = %name, association_id = %id, "association updated");
    audit(&state, &info, "UpdatePodIdentityAssociation", &a);
    Ok(Json(json!({ "association": wire::association(&a) })))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    authz::authorize(
        &state,
        &info,
        "eks:DeletePodIdentityAssociation",
        &association_arn(&state, &name, &id),
    )?;
    cluster(&state, &name)?;
    let aid = AssociationId::parse(&id).ok_or_else(|| errors::association_not_found(&name, &id))?;
    let a = writes::delete_association(&state, &name, &aid)
        .await
        .map_err(|err| write_error(err, &name, &id))?;
    tracing::info!(cluster = %name, association_id = %id, "association deleted");
    audit(&state, &info, "DeletePodIdentityAssociation", &a);
    Ok(Json(json!({ "association": wire::association(&a) })))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    let query = parse_query(query.as_deref());
    let (max, next) = paging(&query)?;
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    authz::authorize(
        &state,
        &info,
        "eks:ListPodIdentityAssociations",
        &cluster_arn(&state, &name),
    )?;
    cluster(&state, &name)?;
    let after = match next {
        Some(cursor) => Some(
            AssociationId::parse(&cursor)
                .ok_or_else(|| errors::invalid_parameter("The nextToken is not valid"))?,
        ),
        None => None,
    };
    let filter = AssociationFilter {
        namespace: get("namespace"),
        service_account: get("serviceAccount"),
    };
    let (page, more) = state.registry.list(&name, &filter, after.as_ref(), max);
    let mut body = json!({ "associations": page.iter().map(|a| wire::association_summary(a)).collect::<Vec<_>>() });
    if more && let (Some(last), Some(obj)) = (page.last(), body.as_object_mut()) {
        obj.insert(
            "nextToken".into(),
            page_token::encode(last.association_id.as_str()).into(),
        );
    }
    Ok(Json(body))
}

fn association_arn(state: &AppState, cluster: &str, id: &str) -> String {
    format!(
        "arn:aws:eks:{}:{}:podidentityassociation/{cluster}/{id}",
        state.config.region, state.config.account_id
    )
}

fn cluster_arn(state: &AppState, name: &str) -> String {
    format!(
        "arn:aws:eks:{}:{}:cluster/{name}",
        state.config.region, state.config.account_id
    )
}

/// Creating or updating an association passes its role to EKS: the caller needs `iam:PassRole`.
fn authorize_pass_role(
    state: &AppState,
    info: &RequestInfo,
    role_arn: &str,
) -> Result<(), AwsError> {
    authz::authorize_with(
        state,
        info,
        "iam:PassRole",
        role_arn,
        &[("iam:PassedToService", "pods.eks.amazonaws.com")],
    )
}

fn audit(state: &AppState, info: &RequestInfo, name: &'static str, a: &Association) {
    state.audit.record(
        Event::for_request(info, "eks.amazonaws.com", name, &state.config.account_id)
            .params(json!({
                "clusterName": a.cluster_name, "namespace": a.namespace, "serviceAccount": a.service_account,
                "roleArn": a.role_arn, "targetRoleArn": a.target_role_arn, "disableSessionTags": a.disable_session_tags,
            }))
            .response(json!({ "association": wire::association_summary(a) }))
            .resource("AWS::EKS::PodIdentityAssociation", &a.association_arn),
    );
}
