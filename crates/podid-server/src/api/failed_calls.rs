//! The audit events of refused rest-json calls (EKS, podid's admin API) that their handlers do
//! not record: every denial, of reads and writes, and every write refused for any reason.
//!
//! Successful writes are recorded by their handlers, with their request and response; EKS Auth
//! records each of its calls itself (successes and refusals), so it is not routed through here.
//! A refused call's record names the operation, its path parameters and the error code and
//! message the client got. The request body is left out: it was refused, and an admin request
//! may carry a bearer token for a cluster's JWKS.

use std::sync::Arc;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use serde_json::{Map, Value};

use super::ApiState;
use crate::domain::audit::Event;
use crate::domain::caller::RequestInfo;
use crate::protocol::WireError;

/// One rest-json operation, as CloudTrail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operation {
    source: &'static str,
    name: &'static str,
    write: bool,
}

const fn op(source: &'static str, name: &'static str, write: bool) -> Option<Operation> {
    Some(Operation {
        source,
        name,
        write,
    })
}

/// The operation a matched route and method serve.
fn operation(method: &Method, route: &str) -> Option<Operation> {
    const EKS: &str = "eks.amazonaws.com";
    const PODID: &str = "podid.amazonaws.com";
    match (route, method.as_str()) {
        ("/clusters", "GET") => op(EKS, "ListClusters", false),
        ("/clusters/{name}", "GET") => op(EKS, "DescribeCluster", false),
        ("/clusters/{name}/pod-identity-associations", "GET") => {
            op(EKS, "ListPodIdentityAssociations", false)
        }
        ("/clusters/{name}/pod-identity-associations", "POST") => {
            op(EKS, "CreatePodIdentityAssociation", true)
        }
        ("/clusters/{name}/pod-identity-associations/{id}", m) => match m {
            "GET" => op(EKS, "DescribePodIdentityAssociation", false),
            "POST" => op(EKS, "UpdatePodIdentityAssociation", true),
            "DELETE" => op(EKS, "DeletePodIdentityAssociation", true),
            _ => None,
        },
        ("/podid/v1/clusters", m) => match m {
            "GET" => op(PODID, "ListClusters", false),
            "POST" => op(PODID, "RegisterCluster", true),
            _ => None,
        },
        ("/podid/v1/clusters/{name}", m) => match m {
            "GET" => op(PODID, "DescribeCluster", false),
            "POST" => op(PODID, "UpdateCluster", true),
            "DELETE" => op(PODID, "DeregisterCluster", true),
            _ => None,
        },
        _ => None,
    }
}

/// Middleware (a `route_layer` on the EKS and admin routers): runs the handler, then records the
/// call if it was a denial or a refused write.
pub(crate) async fn record(
    State(state): State<Arc<ApiState>>,
    route: MatchedPath,
    path: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let operation = operation(request.method(), route.as_str());
    let info = request.extensions().get::<RequestInfo>().cloned();
    let response = next.run(request).await;
    let (Some(operation), Some(info)) = (operation, info) else {
        return response;
    };
    let Some(error) = response.extensions().get::<WireError>() else {
        return response;
    };
    if !(operation.write || error.is_denial()) {
        return response;
    }
    let mut event = Event::for_request(
        &info,
        operation.source,
        operation.name,
        &state.config.account_id,
    )
    .params(parameters(&path))
    .failed(&error.code, &error.message);
    if !operation.write {
        event = event.read_only();
    }
    state.audit.record(event);
    response
}

/// The path parameters under their API names (`clusterName`, `associationId`).
fn parameters(path: &RawPathParams) -> Value {
    let mut out = Map::new();
    for (key, value) in path {
        let name = match key {
            "name" => "clusterName",
            "id" => "associationId",
            other => other,
        };
        out.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_routed_operation() {
        let create = operation(&Method::POST, "/clusters/{name}/pod-identity-associations");
        assert_eq!(create.map(|o| o.name), Some("CreatePodIdentityAssociation"));
        assert_eq!(create.map(|o| o.write), Some(true));
        let list = operation(&Method::GET, "/podid/v1/clusters");
        assert_eq!(
            list.map(|o| (o.source, o.write)),
            Some(("podid.amazonaws.com", false))
        );
        assert_eq!(operation(&Method::PUT, "/clusters/{name}"), None);
        assert_eq!(operation(&Method::GET, "/elsewhere"), None);
    }
}
