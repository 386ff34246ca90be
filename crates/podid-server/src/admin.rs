//! podid's own admin API (rest-json under `/podid/v1`, SigV4 service name `podid`): registering the
//! clusters whose service-account tokens podid trusts.
//!
//! ```text
//! POST   /podid/v1/clusters          {"name", "issuer", "jwks" | "jwksUri"}  → {"cluster": {...}}
//! GET    /podid/v1/clusters                                                  → {"clusters": [...]}
//! GET    /podid/v1/clusters/{name}                                           → {"cluster": {...}}
//! POST   /podid/v1/clusters/{name}   {"issuer"?, "jwks"? | "jwksUri"?}       → {"cluster": {...}}
//! DELETE /podid/v1/clusters/{name}   (refused while associations exist)     → {"cluster": {...}}
//! ```
//! Errors use the EKS error codes (rest-json), so any AWS-style client reads them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use podid_aws::AwsError;
use podid_model::{Cluster, ClusterName, KeySource, now_millis};
use serde_json::{Value, json};

use crate::audit::Event;
use crate::auth::RequestInfo;
use crate::authz;
use crate::eks::errors::{self, EksError};
use crate::json::Body;
use crate::state::AppState;
use crate::writes::{self, WriteError};

/// Largest inline JWKS accepted: real cluster key sets are 1-3 keys (~1.5 KiB each).
pub(crate) const MAX_JWKS_BYTES: usize = 64 * 1024;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/podid/v1/clusters", get(list).post(register))
        .route(
            "/podid/v1/clusters/{name}",
            get(describe).post(update).delete(delete),
        )
}

type Reply = Result<Json<Value>, EksError>;

fn cluster_json(c: &Cluster) -> Value {
    let mut v = json!({
        "name": c.name,
        "arn": c.arn,
        "id": c.id,
        "issuer": c.issuer,
        "createdAt": crate::eks::wire_epoch(c.created_at_ms),
    });
    if let Some(obj) = v.as_object_mut() {
        match &c.keys {
            KeySource::Inline { jwks } => {
                obj.insert(
                    "jwks".into(),
                    serde_json::from_str(jwks).unwrap_or(Value::Null),
                );
            }
            KeySource::Uri { jwks_uri } => {
                obj.insert("jwksUri".into(), jwks_uri.clone().into());
            }
        }
    }
    v
}

fn path_error(e: PathRejection) -> EksError {
    EksError(errors::invalid_parameter(format!(
        "Invalid request path: {e}"
    )))
}

fn key_source(body: &Body) -> Result<Option<KeySource>, AwsError> {
    let e = errors::invalid_parameter_s;
    let jwks = body.opt_document("jwks", e)?;
    let uri = body.opt_str("jwksUri", e)?;
    match (jwks, uri) {
        (Some(_), Some(_)) => Err(errors::invalid_parameter(
            "Give either jwks or jwksUri, not both",
        )),
        (Some(jwks), None) => Ok(Some(KeySource::Inline {
            jwks: validate_jwks(&jwks)?,
        })),
        (None, Some(uri)) => Ok(Some(KeySource::Uri {
            jwks_uri: uri.to_owned(),
        })),
        (None, None) => Ok(None),
    }
}

/// A JWKS must be a JSON object with a `keys` array; it is stored re-serialized (compact).
fn validate_jwks(text: &str) -> Result<String, AwsError> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(errors::invalid_parameter(format!(
            "jwks must be at most {MAX_JWKS_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.get("keys").is_some_and(Value::is_array) => Ok(v.to_string()),
        _ => Err(errors::invalid_parameter(
            "jwks must be a JSON Web Key Set: an object with a \"keys\" array",
        )),
    }
}

fn write_error(e: WriteError, name: &str) -> AwsError {
    match e {
        WriteError::ClusterNotFound => errors::cluster_not_found(name),
        WriteError::ClusterExists => AwsError::new(
            "ResourceInUseException",
            409,
            format!("Cluster already exists with name: {name}"),
        )
        .with_field("clusterName", name),
        other => errors::server_error("cluster write", &other),
    }
}

fn cluster_arn(state: &AppState, name: &str) -> String {
    format!(
        "arn:aws:eks:{}:{}:cluster/{name}",
        state.config.region, state.config.account_id
    )
}

fn audit(state: &AppState, info: &RequestInfo, event: &'static str, c: &Cluster) {
    state.audit.record(
        Event::for_request(info, "podid.amazonaws.com", event, &state.config.account_id)
            .params(json!({ "name": c.name, "issuer": c.issuer }))
            .resource("AWS::EKS::Cluster", &c.arn),
    );
}

async fn register(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    body: Bytes,
) -> Reply {
    let body = Body::parse(&body, errors::invalid_parameter_s)?;
    let e = errors::invalid_parameter_s;
    let name = ClusterName::parse(body.req_str("name", e)?).map_err(errors::invalid_field)?;
    authz::authorize(
        &state,
        &info,
        "podid:RegisterCluster",
        &cluster_arn(&state, name.as_str()),
    )?;
    let issuer = body.req_str("issuer", e)?;
    let keys = key_source(&body)?
        .ok_or_else(|| errors::invalid_parameter("One of jwks or jwksUri is required"))?;
    let cluster = Cluster::new(
        &state.config.region,
        &state.config.account_id,
        &name,
        issuer,
        keys,
        now_millis(),
    )
    .map_err(errors::invalid_field)?;
    writes::put_cluster(&state, &cluster, true)
        .await
        .map_err(|e| write_error(e, name.as_str()))?;
    tracing::info!(cluster = name.as_str(), issuer, "cluster registered");
    audit(&state, &info, "RegisterCluster", &cluster);
    Ok(Json(json!({ "cluster": cluster_json(&cluster) })))
}

async fn list(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
) -> Reply {
    authz::authorize(&state, &info, "podid:ListClusters", "*")?;
    let names = state.registry.cluster_names(None, usize::MAX);
    let clusters: Vec<Value> = names
        .iter()
        .filter_map(|n| state.registry.cluster(n))
        .map(|c| cluster_json(&c))
        .collect();
    Ok(Json(json!({ "clusters": clusters })))
}

async fn describe(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state,
        &info,
        "podid:DescribeCluster",
        &cluster_arn(&state, &name),
    )?;
    let c = state
        .registry
        .cluster(&name)
        .ok_or_else(|| errors::cluster_not_found(&name))?;
    Ok(Json(json!({ "cluster": cluster_json(&c) })))
}

async fn update(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state,
        &info,
        "podid:UpdateCluster",
        &cluster_arn(&state, &name),
    )?;
    let body = Body::parse(&body, errors::invalid_parameter_s)?;
    let current = state
        .registry
        .cluster(&name)
        .ok_or_else(|| errors::cluster_not_found(&name))?;
    let mut c = (*current).clone();
    if let Some(issuer) = body.opt_str("issuer", errors::invalid_parameter_s)? {
        c.issuer = issuer.to_owned();
    }
    if let Some(keys) = key_source(&body)? {
        c.keys = keys;
    }
    let c = Cluster::new(
        &state.config.region,
        &state.config.account_id,
        &ClusterName::parse(&name).map_err(errors::invalid_field)?,
        &c.issuer,
        c.keys,
        c.created_at_ms,
    )
    .map(|fresh| Cluster {
        id: current.id.clone(),
        tags: current.tags.clone(),
        ..fresh
    })
    .map_err(errors::invalid_field)?;
    writes::put_cluster(&state, &c, false)
        .await
        .map_err(|e| write_error(e, &name))?;
    tracing::info!(cluster = %name, "cluster updated");
    audit(&state, &info, "UpdateCluster", &c);
    Ok(Json(json!({ "cluster": cluster_json(&c) })))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state,
        &info,
        "podid:DeregisterCluster",
        &cluster_arn(&state, &name),
    )?;
    let c = state
        .registry
        .cluster(&name)
        .ok_or_else(|| errors::cluster_not_found(&name))?;
    let count = state.registry.association_count(&name);
    if count > 0 {
        return Err(AwsError::new(
            "ResourceInUseException",
            409,
            format!("Cluster {name} still has {count} pod identity association(s); delete them before deleting the cluster."),
        )
        .with_field("clusterName", name.as_str())
        .into());
    }
    writes::delete_cluster(&state, &name)
        .await
        .map_err(|e| write_error(e, &name))?;
    tracing::info!(cluster = %name, "cluster deleted");
    audit(&state, &info, "DeregisterCluster", &c);
    Ok(Json(json!({ "cluster": cluster_json(&c) })))
}

/// `GET /podid/public/clusters/{name}/jwks`, unauthenticated like a kube-apiserver's
/// `/openid/v1/jwks`: the cluster's public signing keys (or a redirect to its `jwks_uri`), with
/// the issuer in `X-Podid-Issuer`. Node agents use it to validate rotated tokens locally.
pub(crate) async fn public_jwks(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(c) = state.registry.cluster(&name) else {
        return (http::StatusCode::NOT_FOUND, "cluster not found\n").into_response();
    };
    let issuer = http::HeaderValue::from_str(&c.issuer).ok();
    let mut response = match &c.keys {
        KeySource::Inline { jwks } => (
            [(http::header::CONTENT_TYPE, "application/json")],
            jwks.clone(),
        )
            .into_response(),
        KeySource::Uri { jwks_uri } => {
            axum::response::Redirect::temporary(jwks_uri).into_response()
        }
    };
    if let Some(issuer) = issuer {
        response.headers_mut().insert("x-podid-issuer", issuer);
    }
    response
}
