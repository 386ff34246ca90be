//! The audit trail: CloudTrail-shaped records of every issuance, STS call and mutating admin call,
//! written off the request path in batches.
//!
//! Handlers hand an [`Event`] to [`Audit::record`], which never blocks: events go through a bounded
//! channel to one writer task that commits them in groups (one store transaction per batch). A
//! batch is flushed when it holds [`MAX_BATCH`] events or [`FLUSH_INTERVAL`] after its first event,
//! so an acknowledged issuance is durable in the audit log within about 100 ms. Records never
//! contain secrets: access key ids yes, secret keys, session tokens and service-account tokens no.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use podid_store::{AuditLog, AuditRecord};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use super::caller::{Caller, CallerKind, RequestInfo};

/// Events waiting for the writer; beyond this, events are dropped (and counted) rather than
/// slowing issuance.
const QUEUE_CAPACITY: usize = 65_536;
/// Most events committed in one transaction.
const MAX_BATCH: usize = 1_000;
/// Longest an event waits before its batch is committed: the durability bound.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often expired events are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// One audited call, before it is rendered as a CloudTrail record.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) event_source: &'static str,
    pub(crate) event_name: &'static str,
    pub(crate) read_only: bool,
    pub(crate) user_identity: Value,
    pub(crate) username: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) region: String,
    pub(crate) source_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) request_id: String,
    pub(crate) request_parameters: Value,
    pub(crate) response_elements: Value,
    pub(crate) error: Option<(String, String)>,
    /// `(type, ARN or name)` of the resources involved.
    pub(crate) resources: Vec<(String, String)>,
    pub(crate) account_id: String,
}

impl Event {
    /// An event for a call made by the request's caller.
    pub(crate) fn for_request(
        info: &RequestInfo,
        event_source: &'static str,
        event_name: &'static str,
        account_id: &str,
    ) -> Self {
        Self {
            event_source,
            event_name,
            read_only: false,
            user_identity: user_identity(&info.caller),
            username: username(&info.caller),
            access_key_id: Some(info.caller.access_key_id.clone()),
            region: info.region.clone(),
            source_ip: info.source_ip.map(|ip| ip.to_string()),
            user_agent: info.user_agent.clone(),
            request_id: info.request_id.clone(),
            request_parameters: Value::Null,
            response_elements: Value::Null,
            error: None,
            resources: Vec::new(),
            account_id: account_id.to_owned(),
        }
    }

    pub(crate) fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    pub(crate) fn params(mut self, v: Value) -> Self {
        self.request_parameters = v;
        self
    }
    pub(crate) fn response(mut self, v: Value) -> Self {
        self.response_elements = v;
        self
    }
    pub(crate) fn resource(mut self, kind: &str, name: &str) -> Self {
        self.resources.push((kind.to_owned(), name.to_owned()));
        self
    }
    pub(crate) fn failed(mut self, code: &str, message: &str) -> Self {
        self.error = Some((code.to_owned(), message.to_owned()));
        self
    }

    fn into_record(self) -> AuditRecord {
        let now = OffsetDateTime::now_utc();
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut record = json!({
            "eventVersion": "1.08",
            "userIdentity": self.user_identity,
            "eventTime": now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339).unwrap_or_default(),
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "awsRegion": self.region,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "requestParameters": self.request_parameters,
            "responseElements": self.response_elements,
            "requestID": self.request_id,
            "eventID": event_id,
            "readOnly": self.read_only,
            "resources": self.resources.iter().map(|(t, n)| json!({"type": t, "ARN": n, "accountId": self.account_id})).collect::<Vec<_>>(),
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": self.account_id,
        });
        if let (Some((code, message)), Some(obj)) = (&self.error, record.as_object_mut()) {
            obj.insert("errorCode".into(), code.clone().into());
            obj.insert("errorMessage".into(), message.clone().into());
        }
        let millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        AuditRecord {
            event_id,
            event_time_ms: millis,
            event_name: self.event_name.to_owned(),
            event_source: self.event_source.to_owned(),
            username: self.username,
            access_key_id: self.access_key_id,
            read_only: self.read_only,
            resources: self.resources,
            event_json: record.to_string(),
        }
    }
}

/// CloudTrail's `userIdentity` for a caller.
pub(crate) fn user_identity(caller: &Caller) -> Value {
    match &caller.kind {
        CallerKind::User { name, user_id } => json!({
            "type": "IAMUser", "principalId": user_id, "arn": caller.arn, "accountId": caller.account_id,
            "accessKeyId": caller.access_key_id, "userName": name,
        }),
        CallerKind::AssumedRole(_) => json!({
            "type": "AssumedRole", "principalId": caller.user_id(), "arn": caller.arn,
            "accountId": caller.account_id, "accessKeyId": caller.access_key_id,
        }),
    }
}

fn username(caller: &Caller) -> Option<String> {
    match &caller.kind {
        CallerKind::User { name, .. } => Some(name.clone()),
        CallerKind::AssumedRole(claims) => match &claims.principal {
            podid_issuer::Principal::AssumedRole(r) => Some(r.session_name.clone()),
            _ => None,
        },
    }
}

/// The handle handlers record through.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl Audit {
    /// Starts the writer and the retention purger.
    pub(crate) fn start(
        log: Arc<dyn AuditLog>,
        retention: Duration,
        file: Option<PathBuf>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_batches(log.clone(), rx, file));
        tokio::spawn(purge(log, retention));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues an event; never waits.
    pub(crate) fn record(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                dropped_total = n,
                "audit queue full or closed; event dropped"
            );
        }
    }
}

async fn write_batches(
    log: Arc<dyn AuditLog>,
    mut rx: mpsc::Receiver<Event>,
    file: Option<PathBuf>,
) {
    // tokio's file type runs the writes on the blocking pool, off this task's worker thread.
    let mut file = match file {
        None => None,
        Some(path) => tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|error| tracing::error!(%error, path = %path.display(), "cannot open the audit file"))
            .ok(),
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first.into_record()];
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(e)) => batch.push(e.into_record()),
                Ok(None) | Err(_) => break,
            }
        }
        if let Some(f) = file.as_mut() {
            let lines: String = batch
                .iter()
                .map(|r| format!("{}\n", r.event_json))
                .collect();
            if let Err(error) = f.write_all(lines.as_bytes()).await {
                tracing::error!(%error, "writing the audit file failed");
            } else if let Err(error) = f.flush().await {
                tracing::error!(%error, "flushing the audit file failed");
            }
        }
        let n = batch.len();
        if let Err(error) = log.append(batch).await {
            tracing::error!(%error, events = n, "committing audit events failed");
        }
    }
}

async fn purge(log: Arc<dyn AuditLog>, retention: Duration) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = podid_model::now_millis().saturating_sub(retention_ms);
        match log.purge_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired audit events purged"),
            Err(error) => tracing::warn!(%error, "purging audit events failed"),
        }
    }
}
