//! Authentication of every API request: SigV4 in, a [`RequestInfo`] naming its [`Caller`] out.
//!
//! The middleware buffers the body (under a cap), decides the request's protocol and the service
//! its credential scope must name, resolves the access key, verifies the signature, and hands the
//! handlers a [`RequestInfo`]. Every refusal leaves here in the protocol's error shape.
//!
//! [`Caller`]: crate::domain::caller::Caller

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use podid_aws::Protocol;
use podid_aws::sigv4::{SigV4Error, SigningKeyCache, parse_request, verify_signature_cached};

use crate::domain::caller::{CredentialResolver, RequestInfo};
use crate::protocol::EdgeRefusal;

/// What authentication needs: who holds which key, and the region this endpoint serves.
pub(crate) struct Authenticator {
    pub(crate) credentials: Arc<dyn CredentialResolver>,
    pub(crate) region: String,
    /// Derived SigV4 signing keys: a node's agent signs every request with the same key and
    /// scope all day, so all but its first request skip the four-HMAC derivation.
    pub(crate) signing_keys: SigningKeyCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Largest request body accepted. The biggest legitimate bodies are IAM policy documents (6-10 KiB,
/// URL-encoded inside a form) and tokens (a few KiB); 1 MiB leaves room and bounds memory per request.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client that cannot send its body in this time is cut off (slowloris).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Verifies SigV4, then passes the request on with its body buffered and a [`RequestInfo`].
pub(crate) async fn authenticate(
    State(state): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = podid_aws::new_request_id();
    let (parts, body) = request.into_parts();
    let route = Route::classify(&parts);
    let mut response = match admit(&state, parts, body, &route, &request_id).await {
        Ok(mut request) => {
            request.extensions_mut().insert(route.protocol);
            next.run(request).await
        }
        Err(refusal) => {
            tracing::debug!(?refusal, "request refused before routing");
            refusal.respond(route.protocol, &request_id)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

/// How a request must be authenticated, decided from its shape before any parsing.
struct Route {
    protocol: Protocol,
    /// The service the credential scope must name, when the path decides it.
    service: Option<&'static str>,
}

impl Route {
    fn classify(parts: &http::request::Parts) -> Self {
        let path = parts.uri.path();
        if path.starts_with("/clusters") {
            let service = if path.ends_with("/assume-role-for-pod-identity") {
                "eks-auth"
            } else {
                "eks"
            };
            return Self {
                protocol: Protocol::RestJson,
                service: Some(service),
            };
        }
        if path.starts_with("/podid/") {
            return Self {
                protocol: Protocol::RestJson,
                service: Some("podid"),
            };
        }
        if let Some(target) = parts.headers.get("x-amz-target") {
            let service = target
                .to_str()
                .ok()
                .filter(|t| t.starts_with("com.amazonaws.cloudtrail."))
                .map(|_| "cloudtrail");
            return Self {
                protocol: Protocol::Json11,
                service,
            };
        }
        Self {
            protocol: Protocol::Query,
            service: None,
        }
    }
}

async fn admit(
    state: &Authenticator,
    parts: http::request::Parts,
    body: Body,
    route: &Route,
    request_id: &str,
) -> Result<Request, EdgeRefusal> {
    let auth = parse_request(&parts).map_err(EdgeRefusal::SigV4)?;
    check_scope(state, route, &auth.service, &auth.region).map_err(EdgeRefusal::SigV4)?;
    let resolved = state
        .credentials
        .resolve(&auth.access_key_id, auth.session_token.as_deref())
        .map_err(EdgeRefusal::SigV4)?;
    let body = read_body(body).await?;
    verify_signature_cached(
        &state.signing_keys,
        &parts,
        &body,
        &auth,
        resolved.secret_access_key.expose(),
        SystemTime::now(),
    )
    .map_err(EdgeRefusal::SigV4)?;
    let info = RequestInfo {
        request_id: request_id.to_owned(),
        service: auth.service.clone(),
        region: auth.region.clone(),
        source_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        secure_transport: parts
            .extensions
            .get::<podid_listener::SecureTransport>()
            .is_some_and(|s| s.0),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        caller: resolved.caller,
    };
    tracing::debug!(access_key_id = %info.caller.access_key_id, service = %info.service, "authenticated");
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(info);
    Ok(request)
}

fn check_scope(
    state: &Authenticator,
    route: &Route,
    service: &str,
    region: &str,
) -> Result<(), SigV4Error> {
    let wrong_service = |expected: &str| SigV4Error::WrongService {
        expected: expected.to_owned(),
        found: service.to_owned(),
    };
    let expected = match route.service {
        Some(expected) if expected != service => return Err(wrong_service(expected)),
        Some(expected) => expected,
        None if route.protocol == Protocol::Query && (service == "iam" || service == "sts") => {
            service
        }
        None => {
            return Err(wrong_service(if route.protocol == Protocol::Query {
                "sts"
            } else {
                "cloudtrail"
            }));
        }
    };
    // IAM and STS are global: the SDKs and the CLI sign them for us-east-1 whatever region is
    // configured (STS regional endpoints use the configured region), so both are accepted.
    let global = expected == "iam" || expected == "sts";
    if region == state.region || (global && region == "us-east-1") {
        Ok(())
    } else {
        Err(SigV4Error::WrongRegion {
            found: region.to_owned(),
        })
    }
}

async fn read_body(body: Body) -> Result<Bytes, EdgeRefusal> {
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(EdgeRefusal::BodyTooLarge {
            max: MAX_BODY_BYTES,
        }),
        Err(_) => Err(EdgeRefusal::BodyTimeout),
    }
}
