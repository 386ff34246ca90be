//! CloudTrail `LookupEvents` (json-1.1, botocore `cloudtrail/2013-11-01`) over the audit trail, so
//! `aws cloudtrail lookup-events` works against podid.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use podid_aws::{AwsError, Protocol};
use podid_store::{AuditQuery, LookupAttribute};
use serde_json::{Value, json};

use crate::auth::RequestInfo;
use crate::authz;
use crate::state::AppState;

const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

fn invalid(code: &'static str, message: impl Into<String>) -> AwsError {
    AwsError::new(code, 400, message)
}

fn respond(result: Result<Value, AwsError>, request_id: &str) -> Response {
    match result {
        Ok(v) => {
            let mut r = Response::new(Body::from(v.to_string()));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            r
        }
        Err(e) => e
            .into_response(Protocol::Json11, request_id)
            .map(Body::from)
            .into_response(),
    }
}

pub(crate) async fn dispatch(
    state: &AppState,
    info: &RequestInfo,
    target: &str,
    body: &[u8],
) -> Response {
    let result = match target.strip_prefix(TARGET_PREFIX) {
        Some("LookupEvents") => lookup_events(state, info, body).await,
        _ => Err(invalid(
            "UnknownOperationException",
            format!("podid does not implement {target}"),
        )),
    };
    respond(result, &info.request_id)
}

fn parse_attribute(v: &Value) -> Result<LookupAttribute, AwsError> {
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
        return Err(invalid(
            "InvalidLookupAttributesException",
            "AttributeValue must be a non-empty string",
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
            return Err(invalid(
                "InvalidLookupAttributesException",
                format!("Unsupported lookup attribute key: {other}"),
            ));
        }
    })
}

/// CloudTrail timestamps arrive as epoch seconds (numbers); milliseconds are kept.
fn epoch_ms(v: Option<&Value>) -> Result<Option<i64>, AwsError> {
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
            .ok_or_else(|| {
                invalid(
                    "InvalidTimeRangeException",
                    "Timestamps must be epoch seconds",
                )
            }),
        Some(_) => Err(invalid(
            "InvalidTimeRangeException",
            "Timestamps must be epoch seconds",
        )),
    }
}

async fn lookup_events(
    state: &AppState,
    info: &RequestInfo,
    body: &[u8],
) -> Result<Value, AwsError> {
    authz::authorize(state, info, "cloudtrail:LookupEvents", "*")?;
    let raw: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            invalid(
                "SerializationException",
                format!("The request body is not valid JSON: {e}"),
            )
        })?
    };
    if !raw.is_object() {
        return Err(invalid(
            "SerializationException",
            "The request body must be a JSON object",
        ));
    }
    let attrs = raw
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return Err(invalid(
            "InvalidLookupAttributesException",
            "You can specify only one lookup attribute.",
        ));
    }
    let attribute = attrs.first().map(parse_attribute).transpose()?;
    let start_ms = epoch_ms(raw.get("StartTime"))?;
    let end_ms = epoch_ms(raw.get("EndTime"))?;
    if let (Some(s), Some(e)) = (start_ms, end_ms)
        && s > e
    {
        return Err(invalid(
            "InvalidTimeRangeException",
            "Start time must be earlier than end time.",
        ));
    }
    let max_results = match raw.get("MaxResults") {
        None | Some(Value::Null) => 50,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=50).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    "InvalidMaxResultsException",
                    "MaxResults must be between 1 and 50.",
                )
            })?,
    };
    let next_token = raw
        .get("NextToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let page = state
        .audit_log
        .lookup(AuditQuery {
            attribute,
            start_ms,
            end_ms,
            max_results,
            next_token,
        })
        .await
        .map_err(|e| match e {
            podid_store::Error::BadNextToken => {
                invalid("InvalidNextTokenException", "Invalid NextToken.")
            }
            other => crate::eks::errors::server_error("audit lookup", &other),
        })?;
    let events: Vec<Value> = page
        .records
        .iter()
        .map(|r| {
            #[allow(clippy::cast_precision_loss)]
            let secs = r.event_time_ms as f64 / 1000.0;
            let mut e = json!({
                "EventId": r.event_id,
                "EventName": r.event_name,
                "ReadOnly": if r.read_only { "true" } else { "false" },
                "EventTime": secs,
                "EventSource": r.event_source,
                "Resources": r.resources.iter().map(|(t, n)| json!({"ResourceType": t, "ResourceName": n})).collect::<Vec<_>>(),
                "CloudTrailEvent": r.event_json,
            });
            if let Some(obj) = e.as_object_mut() {
                if let Some(k) = &r.access_key_id {
                    obj.insert("AccessKeyId".into(), k.clone().into());
                }
                if let Some(u) = &r.username {
                    obj.insert("Username".into(), u.clone().into());
                }
            }
            e
        })
        .collect();
    let mut out = json!({ "Events": events });
    if let (Some(t), Some(obj)) = (page.next_token, out.as_object_mut()) {
        obj.insert("NextToken".into(), t.into());
    }
    Ok(out)
}
