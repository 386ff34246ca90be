//! CloudTrail's `LookupEvents` output shapes (botocore `cloudtrail/2013-11-01`), members in the
//! order podid has always written them.

use podid_store::AuditRecord;
use serde::Serialize;

/// `LookupEventsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LookupEventsResponse<'a> {
    pub(super) events: Vec<EventShape<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

/// `Event`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EventShape<'a> {
    event_id: &'a str,
    event_name: &'a str,
    /// CloudTrail writes this boolean as the string `"true"` or `"false"`.
    read_only: &'static str,
    /// Epoch seconds.
    event_time: f64,
    event_source: &'a str,
    resources: Vec<Resource<'a>>,
    /// The whole CloudTrail record, as a JSON string.
    cloud_trail_event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
}

/// `Resource`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Resource<'a> {
    resource_type: &'a str,
    resource_name: &'a str,
}

impl<'a> From<&'a AuditRecord> for EventShape<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        Self {
            event_id: &r.event_id,
            event_name: &r.event_name,
            read_only: if r.read_only { "true" } else { "false" },
            event_time: crate::api::eks::epoch_seconds(r.event_time_ms),
            event_source: &r.event_source,
            resources: r
                .resources
                .iter()
                .map(|(t, n)| Resource {
                    resource_type: t,
                    resource_name: n,
                })
                .collect(),
            cloud_trail_event: &r.event_json,
            access_key_id: r.access_key_id.as_deref(),
            username: r.username.as_deref(),
        }
    }
}
