//! podid's own admin API (rest-json under `/podid/v1`, SigV4 service name `podid`): registering the
//! clusters whose service-account tokens podid trusts.
//!
//! ```text
//! POST   /podid/v1/clusters          {"name", "issuer", "jwks" | "jwksUri"}  → {"cluster": {...}}
//!        (with "jwksUri": optional "jwksCaBundle" (PEM) and "jwksTokenFile" (server path))
//! GET    /podid/v1/clusters                                                  → {"clusters": [...]}
//! GET    /podid/v1/clusters/{name}                                           → {"cluster": {...}}
//! POST   /podid/v1/clusters/{name}   {"issuer"?, "jwks"? | "jwksUri"?}       → {"cluster": {...}}
//! DELETE /podid/v1/clusters/{name}   (refused while associations exist)     → {"cluster": {...}}
//! ```
//! Errors use the EKS error codes (rest-json, [`RestJsonError`]), so any AWS-style client reads
//! them.

mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use podid_model::{Cluster, ClusterName, KeySource, now_millis};
use serde_json::Value;

use super::eks::path_error;
use super::{ApiState, audit_value};
use crate::domain::audit::Event;
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::domain::writes::{self, WriteError};
use crate::protocol::rest_json::{Body, RestJsonError};
use wire::{AuditedClusterRequest, ClusterResponse, ListClustersResponse};

/// Largest inline JWKS accepted: real cluster key sets are 1-3 keys (~1.5 KiB each).
pub(crate) const MAX_JWKS_BYTES: usize = 64 * 1024;

pub(crate) fn router() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/podid/v1/clusters", get(list).post(register))
        .route(
            "/podid/v1/clusters/{name}",
            get(describe).post(update).delete(delete),
        )
}

type Reply = Result<Response, RestJsonError>;

const INVALID_PARAMETER: fn(String) -> RestJsonError = RestJsonError::InvalidParameter;

fn invalid(message: &str) -> RestJsonError {
    RestJsonError::InvalidParameter(message.to_owned())
}

fn invalid_field(e: podid_model::InvalidField) -> RestJsonError {
    RestJsonError::InvalidParameter(e.message)
}

fn not_found(name: &str) -> RestJsonError {
    RestJsonError::ClusterNotFound {
        cluster: name.to_owned(),
    }
}

fn reply(c: &Cluster) -> Reply {
    Ok(Json(ClusterResponse { cluster: c.into() }).into_response())
}

fn key_source(state: &ApiState, body: &Body) -> Result<Option<KeySource>, RestJsonError> {
    let e = INVALID_PARAMETER;
    let jwks = body.opt_document("jwks", e)?;
    let uri = body.opt_str("jwksUri", e)?;
    let ca_bundle = body.opt_str("jwksCaBundle", e)?;
    let token_file = body.opt_str("jwksTokenFile", e)?;
    if uri.is_none() && (ca_bundle.is_some() || token_file.is_some()) {
        return Err(invalid(
            "jwksCaBundle and jwksTokenFile apply only with jwksUri",
        ));
    }
    match (jwks, uri) {
        (Some(_), Some(_)) => Err(invalid("Give either jwks or jwksUri, not both")),
        (Some(jwks), None) => Ok(Some(KeySource::Inline {
            jwks: validate_jwks(&jwks)?,
        })),
        (None, Some(uri)) => {
            state.verifiers.check_jwks_uri(uri).map_err(|refusal| {
                RestJsonError::InvalidParameter(format!(
                    "jwksUri is refused: {refusal} (docs/server.md, \"Where jwksUri fetches may go\")"
                ))
            })?;
            if let Some(pem) = ca_bundle {
                validate_ca_bundle(pem)?;
            }
            Ok(Some(KeySource::Uri {
                jwks_uri: uri.to_owned(),
                ca_bundle: ca_bundle.map(str::to_owned),
                token_file: token_file.map(str::to_owned),
            }))
        }
        (None, None) => Ok(None),
    }
}

/// The bundle must parse as PEM certificates now, not at the first fetch.
fn validate_ca_bundle(pem: &str) -> Result<(), RestJsonError> {
    if pem.len() > podid_model::MAX_CA_BUNDLE_BYTES {
        return Err(invalid("jwksCaBundle must be at most 64 KiB"));
    }
    match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => Err(invalid("jwksCaBundle must hold PEM certificates")),
    }
}

/// A JWKS must be a JSON object with a `keys` array; it is stored re-serialized (compact).
fn validate_jwks(text: &str) -> Result<String, RestJsonError> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(RestJsonError::InvalidParameter(format!(
            "jwks must be at most {MAX_JWKS_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.get("keys").is_some_and(Value::is_array) => Ok(v.to_string()),
        _ => Err(invalid(
            "jwks must be a JSON Web Key Set: an object with a \"keys\" array",
        )),
    }
}

fn write_error(e: WriteError, name: &str) -> RestJsonError {
    match e {
        WriteError::ClusterNotFound => not_found(name),
        WriteError::ClusterExists => RestJsonError::ClusterExists {
            cluster: name.to_owned(),
        },
        WriteError::AssociationNotFound
        | WriteError::InUse { .. }
        | WriteError::Contention
        | WriteError::Store(_)
        | WriteError::Encode(_) => {
            tracing::error!(error = %e, cluster = name, "cluster write failed");
            RestJsonError::ServerException
        }
    }
}

fn audit(state: &ApiState, info: &RequestInfo, event: &'static str, c: &Cluster) {
    state.audit.record(
        Event::for_request(info, "podid.amazonaws.com", event, &state.config.account_id)
            .params(audit_value(&AuditedClusterRequest {
                name: &c.name,
                issuer: &c.issuer,
            }))
            .resource("AWS::EKS::Cluster", &c.arn),
    );
}

async fn register(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    body: Bytes,
) -> Reply {
    let body = Body::parse(&body, INVALID_PARAMETER)?;
    let e = INVALID_PARAMETER;
    let name = ClusterName::parse(body.req_str("name", e)?).map_err(invalid_field)?;
    authz::authorize(
        &state.iam,
        &info,
        "podid:RegisterCluster",
        &state.config.cluster_arn(name.as_str()),
    )?;
    let issuer = body.req_str("issuer", e)?;
    let keys =
        key_source(&state, &body)?.ok_or_else(|| invalid("One of jwks or jwksUri is required"))?;
    let cluster = Cluster::new(
        &state.config.region,
        &state.config.account_id,
        &name,
        issuer,
        keys,
        now_millis(),
    )
    .map_err(invalid_field)?;
    writes::put_cluster(&state.store, &cluster, true)
        .await
        .map_err(|e| write_error(e, name.as_str()))?;
    tracing::info!(cluster = name.as_str(), issuer, "cluster registered");
    audit(&state, &info, "RegisterCluster", &cluster);
    reply(&cluster)
}

async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
) -> Reply {
    authz::authorize(&state.iam, &info, "podid:ListClusters", "*")?;
    let names = state.registry.cluster_names(None, usize::MAX);
    let clusters: Vec<Arc<Cluster>> = names
        .iter()
        .filter_map(|n| state.registry.cluster(n))
        .collect();
    Ok(Json(ListClustersResponse {
        clusters: clusters.iter().map(|c| c.as_ref().into()).collect(),
    })
    .into_response())
}

async fn describe(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "podid:DescribeCluster",
        &state.config.cluster_arn(&name),
    )?;
    let c = state
        .registry
        .cluster(&name)
        .ok_or_else(|| not_found(&name))?;
    reply(&c)
}

async fn update(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "podid:UpdateCluster",
        &state.config.cluster_arn(&name),
    )?;
    let body = Body::parse(&body, INVALID_PARAMETER)?;
    let current = state
        .registry
        .cluster(&name)
        .ok_or_else(|| not_found(&name))?;
    let mut c = (*current).clone();
    if let Some(issuer) = body.opt_str("issuer", INVALID_PARAMETER)? {
        c.issuer = issuer.to_owned();
    }
    if let Some(keys) = key_source(&state, &body)? {
        c.keys = keys;
    }
    let c = Cluster::new(
        &state.config.region,
        &state.config.account_id,
        &ClusterName::parse(&name).map_err(invalid_field)?,
        &c.issuer,
        c.keys,
        c.created_at_ms,
    )
    .map(|fresh| Cluster {
        id: current.id.clone(),
        tags: current.tags.clone(),
        ..fresh
    })
    .map_err(invalid_field)?;
    writes::put_cluster(&state.store, &c, false)
        .await
        .map_err(|e| write_error(e, &name))?;
    tracing::info!(cluster = %name, "cluster updated");
    audit(&state, &info, "UpdateCluster", &c);
    reply(&c)
}

async fn delete(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "podid:DeregisterCluster",
        &state.config.cluster_arn(&name),
    )?;
    let c = state
        .registry
        .cluster(&name)
        .ok_or_else(|| not_found(&name))?;
    let count = state.registry.association_count(&name);
    if count > 0 {
        return Err(RestJsonError::ClusterHasAssociations {
            cluster: name,
            count,
        });
    }
    writes::delete_cluster(&state.store, &name)
        .await
        .map_err(|e| write_error(e, &name))?;
    tracing::info!(cluster = %name, "cluster deleted");
    audit(&state, &info, "DeregisterCluster", &c);
    reply(&c)
}

/// `GET /podid/public/clusters/{name}/jwks`, unauthenticated like a kube-apiserver's
/// `/openid/v1/jwks`: the cluster's public signing keys, with the issuer in `X-Podid-Issuer`.
/// Node agents use it to validate rotated tokens locally. A `jwksUri` cluster's keys are served
/// from podid's own cache of them (fetched with the cluster's CA and token when needed): agents
/// can seldom reach the cluster's endpoint with credentials, and a redirect would make this
/// endpoint an open redirector.
pub(crate) async fn public_jwks(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(c) = state.registry.cluster(&name) else {
        return (http::StatusCode::NOT_FOUND, "cluster not found\n").into_response();
    };
    let document: Vec<u8> = match &c.keys {
        KeySource::Inline { jwks } => jwks.clone().into_bytes(),
        KeySource::Uri { .. } => match cached_remote_jwks(&state, &c).await {
            Some(document) => document.to_vec(),
            None => {
                return (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "the cluster's signing keys could not be fetched\n",
                )
                    .into_response();
            }
        },
    };
    let mut response =
        ([(http::header::CONTENT_TYPE, "application/json")], document).into_response();
    if let Ok(issuer) = http::HeaderValue::from_str(&c.issuer) {
        response.headers_mut().insert("x-podid-issuer", issuer);
    }
    response
}

/// The last document fetched for a `jwksUri` cluster, fetching it first (rate-limited) when
/// none was fetched yet.
async fn cached_remote_jwks(state: &ApiState, cluster: &Arc<Cluster>) -> Option<Arc<[u8]>> {
    let verifier = state
        .verifiers
        .get(cluster)
        .inspect_err(|e| tracing::warn!(cluster = %cluster.name, error = %e, "cluster signing keys unavailable"))
        .ok()?;
    let keys = verifier.keys();
    if let Some(document) = keys.fetched_document() {
        return Some(document);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = keys.refresh(now).await {
        tracing::warn!(cluster = %cluster.name, error = %e, "fetching the cluster's signing keys failed");
    }
    keys.fetched_document()
}
