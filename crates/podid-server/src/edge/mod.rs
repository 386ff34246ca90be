//! The edge: everything between a socket and an API handler.
//!
//! Owns: the accept loop with TLS and timeouts ([`listener`]), SigV4 authentication into a
//! [`RequestInfo`] ([`authenticate`]), the bootstrap administrator key file ([`admin_key`]), and
//! routing: [`router`] is the one place a request is matched to an API — by path (EKS, EKS
//! Auth and the admin API, rest-json), by `X-Amz-Target` (CloudTrail, JSON 1.1) and by the
//! credential scope's service (IAM and STS, query protocol).
//!
//! [`RequestInfo`]: crate::domain::caller::RequestInfo

pub(crate) mod admin_key;
pub(crate) mod authenticate;
pub(crate) mod listener;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use podid_aws::Protocol;

use crate::api::{self, ApiState};
use crate::domain::caller::RequestInfo;
use crate::protocol::EdgeRefusal;
use crate::protocol::query::QueryRequest;
use authenticate::Authenticator;
use prometheus_client::registry::Registry;

/// Every route podid serves. `metrics` (the listener's connection counters, and the `sts`
/// mode's upstream counters) is served unauthenticated at `GET /metrics`, like the probes.
pub(crate) fn router(
    state: Arc<ApiState>,
    authenticator: Arc<Authenticator>,
    metrics: Arc<Registry>,
) -> Router {
    let authenticated = Router::new()
        .route("/", get(query_or_json11).post(query_or_json11))
        .route(
            "/clusters/{name}/assume-role-for-pod-identity",
            post(api::eks_auth::assume_role_for_pod_identity),
        )
        .merge(api::eks::router().merge(api::admin::router()).route_layer(
            axum::middleware::from_fn_with_state(state.clone(), api::failed_calls::record),
        ))
        .fallback(unknown_operation)
        // A method a route does not serve (DELETE /clusters/{name}: EKS DeleteCluster) is an
        // operation podid does not implement, answered in the protocol's shape, not a bare 405.
        .method_not_allowed_fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(
            authenticator,
            authenticate::authenticate,
        ))
        .with_state(state.clone());
    Router::new()
        .route("/metrics", get(move || encode_metrics(metrics)))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/podid/public/clusters/{name}/jwks",
            get(api::admin::public_jwks).with_state(state),
        )
        .merge(authenticated)
}

/// Prometheus text format of `registry`.
async fn encode_metrics(registry: Arc<Registry>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => (
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `POST /` and `GET /`: JSON 1.1 (CloudTrail, by `X-Amz-Target`) or the query protocol, whose
/// service (IAM or STS) is the one the request was signed for.
async fn query_or_json11(
    State(state): State<Arc<ApiState>>,
    Extension(info): Extension<RequestInfo>,
    Extension(protocol): Extension<Protocol>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    if protocol == Protocol::Json11 {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return api::cloudtrail::dispatch(&state, &info, target, &body).await;
    }
    let request = match QueryRequest::parse(query.as_deref(), &body) {
        Ok(r) => r,
        Err(e) => return e.respond(&info.request_id),
    };
    let result = match info.service.as_str() {
        "iam" => api::iam::dispatch(&state, &info, &request).await,
        _ => api::sts::dispatch(&state, &info, &request).await,
    };
    result.unwrap_or_else(|e| e.respond(&info.request_id))
}

async fn unknown_operation(request: Request) -> Response {
    let protocol = request
        .extensions()
        .get::<Protocol>()
        .copied()
        .unwrap_or(Protocol::RestJson);
    EdgeRefusal::UnknownOperation {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    }
    .respond(protocol, "")
}
