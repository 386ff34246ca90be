//! The EKS API (rest-json, botocore `eks/2017-11-01`): pod identity associations, ListClusters and
//! DescribeCluster.
//!
//! Handlers parse the wire body member by member, build validated `podid-model` records, and write
//! through [`crate::writes`]. Every domain refusal becomes an EKS error in [`errors`].

mod associations;
mod clusters;
pub(crate) mod errors;
mod wire;

pub(crate) use wire::epoch_seconds as wire_epoch;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
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
pub(crate) fn paging(
    query: &[(String, String)],
) -> Result<(usize, Option<String>), podid_aws::AwsError> {
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
                errors::invalid_parameter("maxResults must be an integer between 1 and 100")
            })?,
    };
    let next = match get("nextToken") {
        None => None,
        Some(t) => Some(
            page_token::decode(t)
                .ok_or_else(|| errors::invalid_parameter("The nextToken is not valid"))?,
        ),
    };
    Ok((max, next))
}

pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .take(64)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
