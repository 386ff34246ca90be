//! ListClusters and DescribeCluster over the registered clusters.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::errors::{self, EksError};
use super::{page_token, paging, parse_query, wire};
use crate::auth::RequestInfo;
use crate::authz;
use crate::state::AppState;

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, EksError> {
    authz::authorize(&state, &info, "eks:ListClusters", "*")?;
    let query = parse_query(query.as_deref());
    let (max, after) = paging(&query)?;
    let mut names = state.registry.cluster_names(after.as_deref(), max + 1);
    let more = names.len() > max;
    names.truncate(max);
    let mut body = json!({ "clusters": names });
    if more && let (Some(last), Some(obj)) = (names.last(), body.as_object_mut()) {
        obj.insert("nextToken".into(), page_token::encode(last).into());
    }
    Ok(Json(body))
}

pub(super) async fn describe(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, EksError> {
    let Path(name) = path.map_err(|e| {
        EksError(errors::invalid_parameter(format!(
            "Invalid request path: {e}"
        )))
    })?;
    let arn = format!(
        "arn:aws:eks:{}:{}:cluster/{name}",
        state.config.region, state.config.account_id
    );
    authz::authorize(&state, &info, "eks:DescribeCluster", &arn)?;
    let cluster = state
        .registry
        .cluster(&name)
        .ok_or_else(|| errors::cluster_not_found(&name))?;
    Ok(Json(json!({ "cluster": wire::cluster(&cluster) })))
}
