//! The AWS query protocol (IAM, STS): form-encoded `Action=...&Version=...` requests, XML answers.
//!
//! `POST /` (or `GET /?Action=...`) arrives here after authentication; the SigV4 credential scope
//! (`iam` or `sts`) picks the service. JSON-1.1 requests (`X-Amz-Target`, CloudTrail) share the
//! path and are handed to their own dispatcher.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use podid_aws::xml::XmlWriter;
use podid_aws::{AwsError, Protocol};

use crate::auth::RequestInfo;
use crate::state::AppState;

/// Most parameters read from one request: IAM's largest operations take a few dozen.
const MAX_PARAMS: usize = 1000;

/// A parsed query-protocol request.
#[derive(Debug)]
pub(crate) struct QueryRequest {
    pub(crate) action: String,
    params: Vec<(String, String)>,
}

impl QueryRequest {
    pub(crate) fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, AwsError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for source in [query.unwrap_or_default().as_bytes(), body] {
            for (k, v) in form_urlencoded::parse(source) {
                if params.len() >= MAX_PARAMS {
                    return Err(AwsError::new(
                        "ValidationError",
                        400,
                        format!("Too many parameters (at most {MAX_PARAMS})"),
                    ));
                }
                params.push((k.into_owned(), v.into_owned()));
            }
        }
        let action = params
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| AwsError::new("MissingAction", 400, "Missing Action"))?;
        Ok(Self { action, params })
    }

    /// The first value of a parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter, or the query protocol's `ValidationError` naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| {
            AwsError::new(
                "ValidationError",
                400,
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            )
        })
    }

    /// Members of a list parameter (`Name.member.1`, `Name.member.2`, ...), in index order.
    pub(crate) fn list(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(usize, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, v.as_str())))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Members of a list of structures (`Name.member.N.Field`), as one map per index.
    pub(crate) fn struct_list(&self, name: &str) -> Vec<Vec<(&str, &str)>> {
        let prefix = format!("{name}.member.");
        let mut items: std::collections::BTreeMap<usize, Vec<(&str, &str)>> = Default::default();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((index, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            items.entry(index).or_default().push((field, v.as_str()));
        }
        items.into_values().collect()
    }
}

/// `roleName` in validation messages, as AWS writes member names.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Builds `<{Action}Response xmlns=..><{Action}Result>…</{Action}Result><ResponseMetadata>…`.
pub(crate) fn xml_response(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: impl FnOnce(&mut XmlWriter),
) -> Response {
    let mut w = XmlWriter::new();
    let response_tag = format!("{action}Response");
    let result_tag = format!("{action}Result");
    w.open_ns(&response_tag, xmlns);
    w.open(&result_tag);
    result(&mut w);
    w.close(&result_tag);
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&response_tag);
    let mut response = Response::new(Body::from(w.finish()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    response
}

/// Encodes a query-protocol error.
pub(crate) fn error_response(error: AwsError, request_id: &str) -> Response {
    error
        .into_response(Protocol::Query, request_id)
        .map(Body::from)
        .into_response()
}

/// `POST /` and `GET /`: query protocol (IAM, STS) or JSON 1.1 (CloudTrail).
pub(crate) async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(info): Extension<RequestInfo>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    if info.protocol == Protocol::Json11 {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return crate::cloudtrail::dispatch(&state, &info, target, &body).await;
    }
    let request = match QueryRequest::parse(query.as_deref(), &body) {
        Ok(r) => r,
        Err(e) => return error_response(e, &info.request_id),
    };
    let result = match info.service.as_str() {
        "iam" => crate::iam::dispatch(&state, &info, &request).await,
        _ => crate::sts::dispatch(&state, &info, &request).await,
    };
    result.unwrap_or_else(|e| error_response(e, &info.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_structs() {
        let q = QueryRequest::parse(
            None,
            b"Action=CreateRole&RoleName=r&Tags.member.2.Key=b&Tags.member.1.Key=a&Tags.member.1.Value=1&ActionNames.member.2=s3%3APutObject&ActionNames.member.1=s3%3AGetObject",
        )
        .unwrap();
        assert_eq!(q.action, "CreateRole");
        assert_eq!(q.list("ActionNames"), vec!["s3:GetObject", "s3:PutObject"]);
        let tags = q.struct_list("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0], vec![("Key", "a"), ("Value", "1")]);
        assert_eq!(q.require("Missing").unwrap_err().code, "ValidationError");
        assert_eq!(
            QueryRequest::parse(None, b"Version=1").unwrap_err().code,
            "MissingAction"
        );
    }
}
