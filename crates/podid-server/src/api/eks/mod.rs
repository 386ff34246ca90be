//! The EKS API (rest-json, botocore `eks/2017-11-01`): pod identity associations, ListClusters and
//! DescribeCluster.
//!
//! Handlers parse the wire body member by member, build validated `podid-model` records, and write
//! through [`crate::domain::writes`]. Refusals are [`RestJsonError`]s.

pub(in crate::api) mod associations;
mod clusters;
mod wire;

pub(crate) use wire::epoch_seconds;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::ApiState;
use crate::protocol::rest_json::RestJsonError;

pub(crate) fn router() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/clusters", get(clusters::list))
        .route("/clusters/{name}", get(clusters::describe))
        .route(
            "/clusters/{name}/pod-identity-associations",
            get(associations::list).post(associations::create),
        )
        .route(
            "/clusters/{name}/pod-identity-associations/{id}",
            get(associations::describe)
                .post(associations::update)
                .delete(associations::delete),
        )
}

/// Opaque pagination tokens: base64url of a versioned cursor. The cursor is the last key returned,
/// so a page after concurrent writes neither repeats nor skips items that existed throughout.
pub(crate) mod page_token {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const PREFIX: &str = "podid1:";
    /// Longest token accepted (a cursor is an id or a cluster name, at most ~100 bytes).
    const MAX_TOKEN_LEN: usize = 512;

    pub(crate) fn encode(cursor: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{PREFIX}{cursor}"))
    }

    pub(crate) fn decode(token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        text.strip_prefix(PREFIX).map(str::to_owned)
    }
}

/// Reads `maxResults` (1-100, default 100) and `nextToken` from a query string.
pub(crate) fn paging(query: &[(String, String)]) -> Result<(usize, Option<String>), RestJsonError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let max = match get("maxResults") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                RestJsonError::InvalidParameter(
                    "maxResults must be an integer between 1 and 100".into(),
                )
            })?,
    };
    let next =
        match get("nextToken") {
            None => None,
            Some(t) => Some(page_token::decode(t).ok_or_else(|| {
                RestJsonError::InvalidParameter("The nextToken is not valid".into())
            })?),
        };
    Ok((max, next))
}

pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .take(64)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A path that does not decode (a bad percent-escape, say).
pub(crate) fn path_error(e: axum::extract::rejection::PathRejection) -> RestJsonError {
    RestJsonError::InvalidParameter(format!("Invalid request path: {e}"))
}
