//! CloudTrail `LookupEvents` (json-1.1, botocore `cloudtrail/2013-11-01`) over the audit trail, so
//! `aws cloudtrail lookup-events` works against podid.

mod wire;

use axum::response::Response;
use podid_store::{AuditQuery, LookupAttribute};
use serde_json::{Value, json};

use super::ApiState;
use crate::domain::audit::Event;
use crate::domain::authz;
use crate::domain::caller::RequestInfo;
use crate::protocol::WireError;
use crate::protocol::json11::{self, Json11Error};
use wire::{EventShape, LookupEventsResponse};

const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// Runs the operation `target` names (`X-Amz-Target`).
pub(crate) async fn dispatch(
    state: &ApiState,
    info: &RequestInfo,
    target: &str,
    body: &[u8],
) -> Response {
    let result = match target.strip_prefix(TARGET_PREFIX) {
        Some("LookupEvents") => lookup_events(state, info, body).await,
        _ => Err(Json11Error::UnknownOperation {
            target: target.to_owned(),
        }),
    };
    let denied = matches!(result, Err(Json11Error::AccessDenied(_)));
    let response = result.unwrap_or_else(|e| e.respond(&info.request_id));
    if denied && let Some(error) = response.extensions().get::<WireError>() {
        // A denial is audited like every other API's; allowed lookups are not (reading the
        // trail would otherwise grow it).
        state.audit.record(
            Event::for_request(
                info,
                "cloudtrail.amazonaws.com",
                "LookupEvents",
                &state.config.account_id,
            )
            .read_only()
            .failed(&error.code, &error.message),
        );
    }
    response
}

fn parse_attribute(v: &Value) -> Result<LookupAttribute, Json11Error> {
    let key = v
        .get("AttributeKey")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = v
        .get("AttributeValue")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if value.is_empty() {
        return Err(Json11Error::InvalidLookupAttributes(
            "AttributeValue must be a non-empty string".into(),
        ));
    }
    Ok(match key {
        "EventId" => LookupAttribute::EventId(value),
        "EventName" => LookupAttribute::EventName(value),
        "ReadOnly" => LookupAttribute::ReadOnly(value.eq_ignore_ascii_case("true")),
        "Username" => LookupAttribute::Username(value),
        "ResourceType" => LookupAttribute::ResourceType(value),
        "ResourceName" => LookupAttribute::ResourceName(value),
        "EventSource" => LookupAttribute::EventSource(value),
        "AccessKeyId" => LookupAttribute::AccessKeyId(value),
        other => {
            return Err(Json11Error::InvalidLookupAttributes(format!(
                "Unsupported lookup attribute key: {other}"
            )));
        }
    })
}

/// CloudTrail timestamps arrive as epoch seconds (numbers); milliseconds are kept.
fn epoch_ms(v: Option<&Value>) -> Result<Option<i64>, Json11Error> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e12)
            .map(|f| {
                #[allow(clippy::cast_possible_truncation)]
                let ms = (f * 1000.0) as i64;
                Some(ms)
            })
            .ok_or(Json11Error::InvalidTimeRange(
                "Timestamps must be epoch seconds",
            )),
        Some(_) => Err(Json11Error::InvalidTimeRange(
            "Timestamps must be epoch seconds",
        )),
    }
}

/// A `LookupEvents` body as the store's query: every member checked, nothing looked up yet.
pub(in crate::api) fn decode_lookup(body: &[u8]) -> Result<AuditQuery, Json11Error> {
    let raw: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Json11Error::Serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    if !raw.is_object() {
        return Err(Json11Error::Serialization(
            "The request body must be a JSON object".into(),
        ));
    }
    let attrs = raw
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return Err(Json11Error::InvalidLookupAttributes(
            "You can specify only one lookup attribute.".into(),
        ));
    }
    let attribute = attrs.first().map(parse_attribute).transpose()?;
    let start_ms = epoch_ms(raw.get("StartTime"))?;
    let end_ms = epoch_ms(raw.get("EndTime"))?;
    if let (Some(s), Some(e)) = (start_ms, end_ms)
        && s > e
    {
        return Err(Json11Error::InvalidTimeRange(
            "Start time must be earlier than end time.",
        ));
    }
    let max_results = match raw.get("MaxResults") {
        None | Some(Value::Null) => 50,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=50).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(Json11Error::InvalidMaxResults)?,
    };
    let next_token = raw
        .get("NextToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(AuditQuery {
        attribute,
        start_ms,
        end_ms,
        max_results,
        next_token,
    })
}

async fn lookup_events(
    state: &ApiState,
    info: &RequestInfo,
    body: &[u8],
) -> Result<Response, Json11Error> {
    authz::authorize(&state.iam, info, "cloudtrail:LookupEvents", "*")?;
    let query = decode_lookup(body)?;
    let page = state.audit_log.lookup(query).await.map_err(|e| match e {
        podid_store::Error::BadNextToken => Json11Error::InvalidNextToken,
        other => {
            tracing::error!(error = %other, "audit lookup failed");
            Json11Error::InternalFailure
        }
    })?;
    let response = LookupEventsResponse {
        events: page.records.iter().map(EventShape::from).collect(),
        next_token: page.next_token.clone(),
    };
    Ok(json11::respond(&response, &info.request_id))
}
