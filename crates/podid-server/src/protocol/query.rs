//! The AWS query protocol (IAM, STS): form-encoded `Action=...&Version=...` requests in, XML
//! answers out, and [`QueryError`], every refusal the two services send.

use axum::body::Body;
use axum::response::Response;
use http::HeaderValue;
use podid_aws::xml::{self, XmlError};
use podid_aws::{AwsError, Protocol};
use serde::Serialize;

use crate::domain::authz::Denied;

/// Most parameters read from one request: IAM's largest operations take a few dozen.
const MAX_PARAMS: usize = 1000;

/// A parsed query-protocol request.
#[derive(Debug)]
pub(crate) struct QueryRequest {
    pub(crate) action: String,
    params: Vec<(String, String)>,
}

impl QueryRequest {
    pub(crate) fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, QueryError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for source in [query.unwrap_or_default().as_bytes(), body] {
            for (k, v) in form_urlencoded::parse(source) {
                if params.len() >= MAX_PARAMS {
                    return Err(QueryError::TooManyParameters { max: MAX_PARAMS });
                }
                params.push((k.into_owned(), v.into_owned()));
            }
        }
        let action = params
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
            .ok_or(QueryError::MissingAction)?;
        Ok(Self { action, params })
    }

    /// Every parameter, in request order (query string first, then body).
    pub(crate) fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The first value of a parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter, or the query protocol's `ValidationError` naming it.
    pub(crate) fn require(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).ok_or_else(|| QueryError::MissingParameter {
            member: member_name(name),
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

/// `roleName` for `RoleName`: member names in validation messages, as AWS writes them.
pub(crate) fn member_name(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The `text/xml` answer `<{Action}Response xmlns=..><{Action}Result>…`, the result's members
/// written from its typed shape ([`podid_aws::xml::query_response`]). An error means the shape
/// has a member the query protocol cannot express: a bug, which each service words as its 500.
pub(crate) fn xml_response<T: Serialize + ?Sized>(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: &T,
) -> Result<Response, XmlError> {
    let body = xml::query_response(action, xmlns, request_id, result)?;
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    Ok(response)
}

/// Every refusal IAM and STS send. [`QueryError::into_aws`] is the one place one becomes a wire
/// error: codes and statuses from botocore's `iam/2010-05-08` and `sts/2011-06-15` shapes and the
/// query protocol's common errors; message texts as the services word them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryError {
    MissingAction,
    InvalidAction {
        action: String,
        version: &'static str,
    },
    TooManyParameters {
        max: usize,
    },
    /// A required member is absent.
    MissingParameter {
        member: String,
    },
    /// A member breaks its shape's constraint (length, pattern, range).
    ConstraintViolation {
        value: String,
        member: String,
        constraint: String,
    },
    /// Another `ValidationError`, worded by the operation.
    Validation(String),
    /// The caller's identity policies do not allow the action.
    AccessDenied(Denied),
    /// STS: the role's trust policy does not allow the caller.
    AssumeRoleDenied {
        caller_arn: String,
        role_arn: String,
    },
    /// IAM: the named entity does not exist (message worded by the IAM API).
    NoSuchEntity(String),
    EntityAlreadyExists(String),
    DeleteConflict(&'static str),
    /// IAM: a quota (message worded by the IAM API).
    LimitExceeded(String),
    MalformedPolicyDocument(String),
    InvalidInput(String),
    ConcurrentModification,
    /// IAM's modeled 500; the detail is in the server log.
    ServiceFailure,
    /// STS: session policy and tags do not fit the session token.
    PackedPolicyTooLarge,
    InvalidParameterValue(String),
    /// A 500 for services without a modeled one (STS); the detail is in the server log.
    InternalFailure,
}

impl From<Denied> for QueryError {
    fn from(denied: Denied) -> Self {
        Self::AccessDenied(denied)
    }
}

/// What every ServiceFailure says.
const SERVICE_FAILURE: &str =
    "Request processing has failed due to an unknown error, exception or failure.";
/// What STS says when the packed session policy and tags are too large.
const PACKED_POLICY_TOO_LARGE: &str =
    "Packed policy consumes more than 100 percent of the allotted size.";

impl QueryError {
    /// The wire error. Exhaustive on purpose: a new refusal must be worded here.
    pub(crate) fn into_aws(self) -> AwsError {
        match self {
            Self::MissingAction => AwsError::new("MissingAction", 400, "Missing Action"),
            Self::InvalidAction { action, version } => AwsError::new(
                "InvalidAction",
                400,
                format!("Could not find operation {action} for version {version}"),
            ),
            Self::TooManyParameters { max } => AwsError::new(
                "ValidationError",
                400,
                format!("Too many parameters (at most {max})"),
            ),
            Self::MissingParameter { member } => AwsError::new(
                "ValidationError",
                400,
                format!(
                    "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
                ),
            ),
            Self::ConstraintViolation {
                value,
                member,
                constraint,
            } => AwsError::new(
                "ValidationError",
                400,
                format!(
                    "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
                ),
            ),
            Self::Validation(message) => AwsError::new("ValidationError", 400, message),
            Self::AccessDenied(d) => AwsError::new("AccessDenied", 403, super::denied_message(&d)),
            Self::AssumeRoleDenied {
                caller_arn,
                role_arn,
            } => AwsError::new(
                "AccessDenied",
                403,
                format!(
                    "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                ),
            ),
            Self::NoSuchEntity(message) => AwsError::new("NoSuchEntity", 404, message),
            Self::EntityAlreadyExists(message) => {
                AwsError::new("EntityAlreadyExists", 409, message)
            }
            Self::DeleteConflict(message) => AwsError::new("DeleteConflict", 409, message),
            Self::LimitExceeded(message) => AwsError::new("LimitExceeded", 409, message),
            Self::MalformedPolicyDocument(message) => {
                AwsError::new("MalformedPolicyDocument", 400, message)
            }
            Self::InvalidInput(message) => AwsError::new("InvalidInput", 400, message),
            Self::ConcurrentModification => AwsError::new(
                "ConcurrentModification",
                409,
                "Too many concurrent modifications of this entity; try again.",
            ),
            Self::ServiceFailure => AwsError::new("ServiceFailure", 500, SERVICE_FAILURE),
            Self::PackedPolicyTooLarge => {
                AwsError::new("PackedPolicyTooLarge", 400, PACKED_POLICY_TOO_LARGE)
            }
            Self::InvalidParameterValue(message) => {
                AwsError::new("InvalidParameterValue", 400, message)
            }
            Self::InternalFailure => AwsError::internal("InternalFailure"),
        }
    }

    /// The XML error response.
    pub(crate) fn respond(self, request_id: &str) -> Response {
        super::encode(self.into_aws(), Protocol::Query, request_id)
    }
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
        assert_eq!(
            q.require("Missing").unwrap_err().into_aws().code,
            "ValidationError"
        );
        assert_eq!(
            QueryRequest::parse(None, b"Version=1")
                .unwrap_err()
                .into_aws()
                .code,
            "MissingAction"
        );
    }
}
