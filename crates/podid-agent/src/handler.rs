//! `/v1/credentials`, exactly as the reference agent answers it (wire reference §1.2.1–1.2.3):
//! Host check (403) → empty token (400) → unparseable token (400) → `exp`/`nbf` (400) →
//! credentials (cache, then EKS Auth; upstream errors passed through). Every other path is
//! Go's `404 page not found`, which the probes rely on.
//!
//! A byte-identical repeat of a token already served skips only the claim parsing and the
//! token copy (never the host check, the empty check or the `exp`/`nbf` rules): see
//! `cache::repeat`. Whatever it cannot answer falls through to the full path.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use podid_token::{TokenError, UnverifiedClaims, peek_unverified};
use tracing::Instrument;

use crate::cache::{CredentialCache, claims_failure, unix_now_secs};
use crate::config::{IPV4_LINK_LOCAL, IPV6_LINK_LOCAL};
use crate::metrics::Metrics;

/// Shared by every credential listener.
#[derive(Debug)]
pub(crate) struct CredentialService {
    pub(crate) cache: Arc<CredentialCache>,
    pub(crate) metrics: Arc<Metrics>,
    /// Accepted `Host` values: the two link-local addresses, then every bound address.
    pub(crate) hosts: Vec<String>,
    /// The 403 text's list, in Go's `%s` of a `[]string` form: `[a b c]`.
    pub(crate) hosts_display: String,
}

impl CredentialService {
    /// Hosts accepted: the link-local pair plus the bound IPs (a loopback agent accepts
    /// `127.0.0.1`, and `localhost` too). The 403 text names the link-local pair and, after
    /// them, the `--bind-hosts` addresses that are not one of the pair; `localhost` is accepted
    /// but not advertised.
    pub(crate) fn hosts_for(bound: &[IpAddr]) -> (Vec<String>, String) {
        let mut hosts = vec![IPV4_LINK_LOCAL.to_string(), IPV6_LINK_LOCAL.to_string()];
        for ip in bound {
            let ip = ip.to_string();
            if !hosts.contains(&ip) {
                hosts.push(ip);
            }
        }
        let display = format!("[{}]", hosts.join(" "));
        if bound.iter().any(IpAddr::is_loopback) {
            hosts.push("localhost".to_owned());
        }
        (hosts, display)
    }
}

/// `/v1/credentials`, any method (like the reference's `HandleFunc`).
pub(crate) async fn credentials(
    State(service): State<Arc<CredentialService>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    // The whole request, so that neither its URI nor its headers are cloned.
    request: Request,
) -> Response {
    let started = tokio::time::Instant::now();
    let span = tracing::debug_span!("credentials", client.addr = %client);
    let response = answer(
        &service,
        request.version(),
        request.uri(),
        request.headers(),
    )
    .instrument(span)
    .await;
    service.metrics.http_response(response.status().as_u16());
    service
        .metrics
        .request_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn answer(
    service: &Arc<CredentialService>,
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let token = match check_request(&service.hosts, version, uri, headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.respond(&service.hosts_display),
    };
    let now = unix_now_secs();
    if let Some(body) = service.cache.serve_repeat(token, now).await {
        return json_response(body);
    }
    let (token, claims) = match read_token(token, now) {
        Ok(ok) => ok,
        Err(refusal) => return refusal.respond(&service.hosts_display),
    };
    match service.cache.credentials(token, &claims).await {
        Ok(body) => json_response(body),
        Err(e) => {
            tracing::error!(error = %e.body(), namespace = %claims.namespace, service_account = %claims.service_account, "Error fetching credentials");
            text_response(e.status(), &e.body())
        }
    }
}

/// Why `/v1/credentials` refused a request before asking the cache; [`Refusal::respond`] is the
/// one place each becomes the reference agent's answer.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// More than one `Host` header.
    TooManyHosts,
    /// An HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// The request named this host (port stripped), not one the agent serves.
    WrongHost(String),
    /// No `Authorization` header, or an empty one.
    EmptyToken,
    /// The token's claims could not be read.
    Unparseable(TokenError),
    /// `exp` or `nbf` refused the token; the reference's reason.
    Claims(&'static str),
}

impl Refusal {
    /// The answer, in the reference's words; `hosts_display` lists the accepted hosts.
    pub(crate) fn respond(self, hosts_display: &str) -> Response {
        match self {
            Self::TooManyHosts => go_bad_request("too many Host headers"),
            Self::MissingHost => go_bad_request("missing required Host header"),
            Self::WrongHost(bare) => text_response(
                StatusCode::FORBIDDEN,
                &format!(
                    "Access Denied. Called agent through invalid address, please use either {hosts_display} address not {bare}"
                ),
            ),
            Self::EmptyToken => text_response(
                StatusCode::BAD_REQUEST,
                "Service account token cannot be empty",
            ),
            Self::Unparseable(e) => text_response(
                StatusCode::BAD_REQUEST,
                &format!("Service account token cannot be parsed: {e}"),
            ),
            Self::Claims(reason) => text_response(
                StatusCode::BAD_REQUEST,
                &format!("Service account token failed basic claim validations: {reason}"),
            ),
        }
    }
}

/// The checks before the cache is asked, in the reference's order: one `Host` naming one of
/// `hosts` (403 otherwise), then a non-empty `Authorization` (400). Returns the raw token.
pub(crate) fn check_request<'h>(
    hosts: &[String],
    version: Version,
    uri: &Uri,
    headers: &'h HeaderMap,
) -> Result<&'h [u8], Refusal> {
    // A second Host header is how a request smuggles a name past the check below; Go's
    // net/http (the reference agent's server) refuses such requests with this answer.
    if headers.get_all(header::HOST).iter().nth(1).is_some() {
        tracing::debug!("refused: more than one Host header");
        return Err(Refusal::TooManyHosts);
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2); Go refuses a request without one, unless its
    // absolute-form target names the host. HTTP/1.0 may omit it (and meets the host check).
    if version == Version::HTTP_11
        && uri.authority().is_none()
        && !headers.contains_key(header::HOST)
    {
        tracing::debug!("refused: no Host header");
        return Err(Refusal::MissingHost);
    }
    // An absolute-form target (`GET http://host/v1/credentials`) names the host itself, and
    // Go uses it over the Host header; so does this check.
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("");
    let bare = strip_port(host);
    if !hosts.iter().any(|h| h == bare) {
        tracing::debug!(host = bare, "refused: wrong host");
        return Err(Refusal::WrongHost(bare.to_owned()));
    }
    // The raw header is the token: SDKs send the token file verbatim, no `Bearer ` prefix.
    let token = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(Refusal::EmptyToken);
    }
    Ok(token)
}

/// The token's claims, peeked without the signature (as the reference does), and its
/// `exp`/`nbf` by the reference validator's rules at `now`.
pub(crate) fn read_token(token: &[u8], now: i64) -> Result<(&str, UnverifiedClaims), Refusal> {
    let token = std::str::from_utf8(token)
        .map_err(|_| Refusal::Unparseable(TokenError::Malformed("token is not UTF-8")))?;
    let claims = peek_unverified(token).map_err(Refusal::Unparseable)?;
    // Signature unchecked here, as in the reference; exp/nbf by its validator's rules.
    if let Some(reason) = claims_failure(now, claims.expires_at, claims.not_before) {
        return Err(Refusal::Claims(reason));
    }
    Ok((token, claims))
}

fn json_response(body: bytes::Bytes) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Go's default 404 (`http.NotFound`).
pub(crate) async fn not_found() -> Response {
    text_response(StatusCode::NOT_FOUND, "404 page not found")
}

/// Go's `http.Error`: `text/plain; charset=utf-8`, `nosniff`, body + "\n".
pub(crate) fn text_response(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Go's answer to a request its server refuses before any handler (two Host headers, none),
/// exactly: `400 Bad Request: <reason>`, no newline, and the connection closed after it.
fn go_bad_request(reason: &str) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        format!("400 Bad Request: {reason}"),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `net.SplitHostPort` then strip `[...]`, as the reference does; a host without a port is
/// used as it is.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(inner, _)| inner);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(strip_port("169.254.170.23:80"), "169.254.170.23");
        assert_eq!(strip_port("169.254.170.23"), "169.254.170.23");
        assert_eq!(strip_port("[fd00:ec2::23]:80"), "fd00:ec2::23");
        assert_eq!(strip_port("[fd00:ec2::23]"), "fd00:ec2::23");
        assert_eq!(strip_port("fd00:ec2::23"), "fd00:ec2::23");
        assert_eq!(strip_port("[unterminated"), "[unterminated");
        assert_eq!(strip_port(""), "");
    }

    #[test]
    fn host_list_renders_like_a_go_slice() {
        let link_local = [IpAddr::V4(IPV4_LINK_LOCAL), IpAddr::V6(IPV6_LINK_LOCAL)];
        let (hosts, display) = CredentialService::hosts_for(&link_local);
        assert_eq!(display, "[169.254.170.23 fd00:ec2::23]");
        assert_eq!(hosts, ["169.254.170.23", "fd00:ec2::23"]);
        // The default bind hosts in any order or subset add nothing to the text.
        let (_, display) = CredentialService::hosts_for(&[IpAddr::V6(IPV6_LINK_LOCAL)]);
        assert_eq!(display, "[169.254.170.23 fd00:ec2::23]");
    }

    #[test]
    fn other_bind_hosts_are_named_after_the_link_local_pair() {
        let bound = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let (hosts, display) = CredentialService::hosts_for(&bound);
        assert_eq!(display, "[169.254.170.23 fd00:ec2::23 127.0.0.1 ::1]");
        assert!(
            hosts.iter().any(|h| h == "localhost"),
            "accepted: {hosts:?}"
        );
        let (hosts, display) = CredentialService::hosts_for(&["10.0.0.7".parse().unwrap()]);
        assert_eq!(display, "[169.254.170.23 fd00:ec2::23 10.0.0.7]");
        assert!(!hosts.iter().any(|h| h == "localhost"));
    }
}
