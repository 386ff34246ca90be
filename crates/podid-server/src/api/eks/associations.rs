//! Create, Describe, Update, Delete and ListPodIdentityAssociations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use podid_model::{Association, AssociationId, AssociationSpec, Cluster, now_millis};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::wire::{
    AssociationResponse, AuditedAssociationRequest, AuditedAssociationResponse,
    ListPodIdentityAssociationsResponse,
};
use super::{ApiState, page_token, paging, parse_query, path_error};
use crate::api::audit_value;
use crate::domain::audit::Event;
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::domain::writes::{self, WriteError};
use crate::protocol::rest_json::{Body, RestJsonError};
use crate::state::AssociationFilter;

type Reply = Result<Response, RestJsonError>;

/// `{"association": …}`, the output of every single-association operation.
fn reply(a: &Association) -> Reply {
    Ok(Json(AssociationResponse::of(a)).into_response())
}

/// A model validation failure names its field.
fn invalid_field(e: podid_model::InvalidField) -> RestJsonError {
    RestJsonError::InvalidParameter(e.message)
}

/// Longest clientRequestToken kept (EKS documents none; SDKs send a 36-character UUID).
const MAX_CLIENT_REQUEST_TOKEN: usize = 128;

fn cluster(state: &ApiState, name: &str) -> Result<Arc<Cluster>, RestJsonError> {
    state
        .registry
        .cluster(name)
        .ok_or_else(|| RestJsonError::ClusterNotFound {
            cluster: name.to_owned(),
        })
}

fn not_found(cluster: &str, id: &str) -> RestJsonError {
    RestJsonError::AssociationNotFound {
        cluster: cluster.to_owned(),
        id: id.to_owned(),
    }
}

fn write_error(e: WriteError, cluster: &str, id: &str) -> RestJsonError {
    match e {
        WriteError::ClusterNotFound => RestJsonError::ClusterNotFound {
            cluster: cluster.to_owned(),
        },
        WriteError::AssociationNotFound => not_found(cluster, id),
        WriteError::InUse { existing_id } => RestJsonError::AssociationInUse {
            cluster: cluster.to_owned(),
            existing_id,
        },
        WriteError::Contention => RestJsonError::Contention,
        WriteError::ClusterExists | WriteError::Store(_) | WriteError::Encode(_) => {
            tracing::error!(error = %e, cluster, "association write failed");
            RestJsonError::ServerException
        }
    }
}

const INVALID_PARAMETER: fn(String) -> RestJsonError = RestJsonError::InvalidParameter;

fn client_token(body: &Body) -> Result<Option<String>, RestJsonError> {
    let token = body.opt_str("clientRequestToken", INVALID_PARAMETER)?;
    match token {
        Some(t) if t.is_empty() || t.len() > MAX_CLIENT_REQUEST_TOKEN => {
            Err(RestJsonError::InvalidParameter(format!(
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

fn token_reused(operation: &'static str) -> RestJsonError {
    RestJsonError::ClientTokenReused { operation }
}

/// The members of a `CreatePodIdentityAssociation` body, each checked for its JSON type only
/// (values are checked by `AssociationSpec::validate` and `Association::new`).
pub(in crate::api) struct CreateMembers<'b> {
    pub(in crate::api) namespace: &'b str,
    pub(in crate::api) service_account: &'b str,
    pub(in crate::api) role_arn: &'b str,
    pub(in crate::api) token: Option<String>,
    pub(in crate::api) tags: podid_model::Tags,
    pub(in crate::api) disable_session_tags: bool,
    pub(in crate::api) target_role_arn: Option<&'b str>,
    pub(in crate::api) policy: Option<&'b str>,
}

impl<'b> CreateMembers<'b> {
    pub(in crate::api) fn read(body: &'b Body) -> Result<Self, RestJsonError> {
        let e = INVALID_PARAMETER;
        Ok(Self {
            namespace: body.req_str("namespace", e)?,
            service_account: body.req_str("serviceAccount", e)?,
            role_arn: body.req_str("roleArn", e)?,
            token: client_token(body)?,
            tags: body.opt_string_map("tags", e)?.unwrap_or_default(),
            disable_session_tags: body.opt_bool("disableSessionTags", e)?.unwrap_or(false),
            target_role_arn: body.opt_str("targetRoleArn", e)?,
            policy: body.opt_str("policy", e)?,
        })
    }
}

pub(super) async fn create(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    let body = Body::parse(&body, INVALID_PARAMETER)?;
    let CreateMembers {
        namespace,
        service_account,
        role_arn,
        token,
        tags,
        disable_session_tags,
        target_role_arn,
        policy,
    } = CreateMembers::read(&body)?;
    authz::authorize(
        &state.iam,
        &info,
        "eks:CreatePodIdentityAssociation",
        &state.config.cluster_arn(&name),
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
    .map_err(invalid_field)?;
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
    .map_err(invalid_field)?;
    a.create_token = token.clone().map(|t| (t, print.clone()));

    if let Some(existing) = state.registry.lookup(&name, namespace, service_account) {
        return Err(RestJsonError::AssociationInUse {
            cluster: name,
            existing_id: existing.association_id.as_str().to_owned(),
        });
    }
    let limit = state.config.max_associations_per_cluster;
    if state.registry.association_count(&name) >= limit {
        return Err(RestJsonError::AssociationLimit {
            cluster: name,
            limit,
        });
    }
    match writes::create_association(&state.store, &a).await {
        Ok(()) => {
            tracing::info!(cluster = %name, association_id = a.association_id.as_str(), namespace, service_account, "association created");
            audit(&state, &info, "CreatePodIdentityAssociation", &a);
            reply(&a)
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
                )),
            }
        }
        Err(err) => Err(write_error(err, &name, "")),
    }
}

fn existing_id(state: &ApiState, cluster: &str, ns: &str, sa: &str) -> String {
    state
        .registry
        .lookup(cluster, ns, sa)
        .map(|a| a.association_id.as_str().to_owned())
        .unwrap_or_default()
}

fn idempotent_repeat(existing: &Association, print: &str) -> Reply {
    match &existing.create_token {
        Some((_, p)) if p == print => reply(existing),
        _ => Err(token_reused("CreatePodIdentityAssociation")),
    }
}

pub(super) async fn describe(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "eks:DescribePodIdentityAssociation",
        &state.config.association_arn(&name, &id),
    )?;
    cluster(&state, &name)?;
    let a = AssociationId::parse(&id)
        .and_then(|aid| state.registry.association(&name, &aid))
        .ok_or_else(|| not_found(&name, &id))?;
    reply(&a)
}

pub(super) async fn update(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    let body = Body::parse(&body, INVALID_PARAMETER)?;
    let e = INVALID_PARAMETER;
    let role_arn = body.opt_str("roleArn", e)?;
    let token = client_token(&body)?;
    let disable_session_tags = body.opt_bool("disableSessionTags", e)?;
    // An empty string removes the target role or the session policy.
    let target_role_arn = body.opt_str("targetRoleArn", e)?;
    let policy = body.opt_str("policy", e)?;
    authz::authorize(
        &state.iam,
        &info,
        "eks:UpdatePodIdentityAssociation",
        &state.config.association_arn(&name, &id),
    )?;
    cluster(&state, &name)?;
    if let Some(r) = role_arn {
        authorize_pass_role(&state, &info, r)?;
    }
    let aid = AssociationId::parse(&id).ok_or_else(|| not_found(&name, &id))?;
    let print = fingerprint(&json!([
        role_arn,
        disable_session_tags,
        target_role_arn,
        policy
    ]));
    let account = state.config.account_id.clone();

    let outcome = writes::update_association(&state.store, &name, &aid, |a| {
        if let (Some(t), Some((prev, prev_print))) = (&token, &a.update_token)
            && t == prev
        {
            return if *prev_print == print {
                Ok(false)
            } else {
                Err(token_reused("UpdatePodIdentityAssociation"))
            };
        }
        let current = a.spec().map_err(invalid_field)?;
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
        .map_err(invalid_field)?;
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
    reply(&a)
}

pub(super) async fn delete(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Reply {
    let Path((name, id)) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "eks:DeletePodIdentityAssociation",
        &state.config.association_arn(&name, &id),
    )?;
    cluster(&state, &name)?;
    let aid = AssociationId::parse(&id).ok_or_else(|| not_found(&name, &id))?;
    let a = writes::delete_association(&state.store, &name, &aid)
        .await
        .map_err(|err| write_error(err, &name, &id))?;
    tracing::info!(cluster = %name, association_id = %id, "association deleted");
    audit(&state, &info, "DeletePodIdentityAssociation", &a);
    reply(&a)
}

pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    let query = parse_query(query.as_deref());
    let (max, next) = paging(&query)?;
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    authz::authorize(
        &state.iam,
        &info,
        "eks:ListPodIdentityAssociations",
        &state.config.cluster_arn(&name),
    )?;
    cluster(&state, &name)?;
    let after =
        match next {
            Some(cursor) => Some(AssociationId::parse(&cursor).ok_or_else(|| {
                RestJsonError::InvalidParameter("The nextToken is not valid".into())
            })?),
            None => None,
        };
    let filter = AssociationFilter {
        namespace: get("namespace"),
        service_account: get("serviceAccount"),
    };
    let (page, more) = state.registry.list(&name, &filter, after.as_ref(), max);
    let next_token = more
        .then(|| {
            page.last()
                .map(|last| page_token::encode(last.association_id.as_str()))
        })
        .flatten();
    Ok(Json(ListPodIdentityAssociationsResponse {
        associations: page.iter().map(|a| a.as_ref().into()).collect(),
        next_token,
    })
    .into_response())
}

/// Creating or updating an association passes its role to EKS: the caller needs `iam:PassRole`.
fn authorize_pass_role(
    state: &ApiState,
    info: &RequestInfo,
    role_arn: &str,
) -> Result<(), RestJsonError> {
    Ok(authz::authorize_with(
        &state.iam,
        info,
        "iam:PassRole",
        role_arn,
        &[("iam:PassedToService", "pods.eks.amazonaws.com")],
    )?)
}

fn audit(state: &ApiState, info: &RequestInfo, name: &'static str, a: &Association) {
    state.audit.record(
        Event::for_request(info, "eks.amazonaws.com", name, &state.config.account_id)
            .params(audit_value(&AuditedAssociationRequest::from(a)))
            .response(audit_value(&AuditedAssociationResponse {
                association: a.into(),
            }))
            .resource("AWS::EKS::PodIdentityAssociation", &a.association_arn),
    );
}
