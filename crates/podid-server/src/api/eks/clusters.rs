//! ListClusters and DescribeCluster over the registered clusters.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::wire::{DescribeClusterResponse, ListClustersResponse};
use super::{ApiState, page_token, paging, parse_query, path_error};
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::protocol::rest_json::RestJsonError;

pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListClustersResponse>, RestJsonError> {
    authz::authorize(&state.iam, &info, "eks:ListClusters", "*")?;
    let query = parse_query(query.as_deref());
    let (max, after) = paging(&query)?;
    let mut clusters = state.registry.cluster_names(after.as_deref(), max + 1);
    let more = clusters.len() > max;
    clusters.truncate(max);
    let next_token = more
        .then(|| clusters.last().map(|last| page_token::encode(last)))
        .flatten();
    Ok(Json(ListClustersResponse {
        clusters,
        next_token,
    }))
}

pub(super) async fn describe(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, RestJsonError> {
    let Path(name) = path.map_err(path_error)?;
    authz::authorize(
        &state.iam,
        &info,
        "eks:DescribeCluster",
        &state.config.cluster_arn(&name),
    )?;
    let cluster = state
        .registry
        .cluster(&name)
        .ok_or(RestJsonError::ClusterNotFound { cluster: name })?;
    Ok(Json(DescribeClusterResponse {
        cluster: cluster.as_ref().into(),
    })
    .into_response())
}
