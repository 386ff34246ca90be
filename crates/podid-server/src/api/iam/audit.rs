//! The audit events of IAM calls, as CloudTrail records them: every write, whether it succeeded
//! or was refused, and every denied read (event source `iam.amazonaws.com`).
//!
//! `requestParameters` are the request's parameters named as the API names them with a
//! lower-case first letter (`RoleName` → `roleName`); IAM requests carry no secrets.
//! `responseElements` are what a handler attached with [`AuditElements`] (CreateAccessKey: the
//! key's id, never its secret), else null as CloudTrail writes for most IAM writes.

use axum::response::Response;
use serde_json::{Map, Value};

use crate::api::ApiState;
use crate::domain::audit::Event;
use crate::domain::caller::RequestInfo;
use crate::protocol::query::{QueryError, QueryRequest};

/// `responseElements` a handler attaches to its response for the audit record.
#[derive(Debug, Clone)]
pub(super) struct AuditElements(pub(super) Value);

/// Parameters that are the protocol's, not the operation's.
const ENVELOPE: [&str; 2] = ["Action", "Version"];

/// Reads (`Get…`, `List…`, `Simulate…`) are audited only when denied.
fn is_read_only(action: &str) -> bool {
    ["Get", "List", "Simulate"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// Records the event of `request` if it is a write or a denial. `outcome` is the handler's
/// answer: a response (whose [`AuditElements`] are taken out here) or the typed refusal.
pub(super) fn record(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
    outcome: &mut Result<Response, QueryError>,
) {
    let action = request.action.as_str();
    let error = match outcome {
        Ok(_) => None,
        Err(e) => Some(e.clone().into_aws()),
    };
    let denied = matches!(outcome, Err(QueryError::AccessDenied(_)));
    let read_only = is_read_only(action);
    if read_only && !denied {
        return;
    }
    let mut event = Event::for_request(
        info,
        "iam.amazonaws.com",
        action.to_owned(),
        &state.config.account_id,
    )
    .params(parameters(request));
    if read_only {
        event = event.read_only();
    }
    for (kind, member) in [
        ("AWS::IAM::Role", "RoleName"),
        ("AWS::IAM::User", "UserName"),
        ("AWS::IAM::Policy", "PolicyArn"),
        ("AWS::IAM::AccessKey", "AccessKeyId"),
    ] {
        if let Some(value) = request.get(member) {
            event = event.resource(kind, value);
        }
    }
    if let Ok(response) = outcome
        && let Some(AuditElements(elements)) = response.extensions_mut().remove::<AuditElements>()
    {
        event = event.response(elements);
    }
    if let Some(error) = error {
        event = event.failed(&error.code, &error.message);
    }
    state.audit.record(event);
}

/// CloudTrail's `requestParameters` of a query request.
fn parameters(request: &QueryRequest) -> Value {
    let mut out = Map::new();
    for (name, value) in request.params() {
        if ENVELOPE.contains(&name.as_str()) {
            continue;
        }
        out.insert(lower_first(name), Value::String(value.clone()));
    }
    Value::Object(out)
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parameters_as_cloudtrail_does() {
        assert_eq!(lower_first("RoleName"), "roleName");
        assert_eq!(lower_first("Tags.member.1.Key"), "tags.member.1.Key");
        assert_eq!(lower_first(""), "");
    }

    #[test]
    fn reads_are_get_list_and_simulate() {
        assert!(is_read_only("GetRole"));
        assert!(is_read_only("ListAccessKeys"));
        assert!(is_read_only("SimulatePrincipalPolicy"));
        assert!(!is_read_only("CreateAccessKey"));
        assert!(!is_read_only("UpdateAssumeRolePolicy"));
        assert!(!is_read_only("TagRole"));
    }
}
