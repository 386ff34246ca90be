//! The audit trail: CloudTrail-shaped records of every issuance, STS call and mutating admin call,
//! written off the request path in batches.
//!
//! Handlers hand an [`Event`] to [`Audit::record`], which never blocks: events go through a bounded
//! channel to one writer task that commits them in groups (one store transaction per batch). A
//! batch is flushed when it holds [`MAX_BATCH`] events or [`FLUSH_INTERVAL`] after its first event,
//! so an acknowledged issuance is durable in the audit log within about 100 ms. Records never
//! contain secrets: access key ids yes, secret keys, session tokens and service-account tokens no.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use podid_store::{AuditLog, AuditRecord};
use serde::Serialize;
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
/// Batches being committed at once; with [`MAX_BATCH`] this bounds the memory the writer holds.
const MAX_COMMITTING: usize = 4;
/// Longest an event waits before its batch is committed: the durability bound.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often expired events are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// One audited call, before it is rendered as a CloudTrail record.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) event_source: &'static str,
    /// The API operation: a constant, or an IAM action name read from a request.
    pub(crate) event_name: Cow<'static, str>,
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
        event_name: impl Into<Cow<'static, str>>,
        account_id: &str,
    ) -> Self {
        Self {
            event_source,
            event_name: event_name.into(),
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
        // Time-ordered (UUIDv7): every index keyed by event id then appends at its right edge
        // instead of touching a random page per event (v4), which was most of the audit
        // writer's page writes. The id keeps CloudTrail's UUID shape.
        let event_id = uuid::Uuid::now_v7().to_string();
        let event_time = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .unwrap_or_default();
        let event_json = render(&self, &event_time, &event_id);
        let millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        AuditRecord {
            event_id,
            event_time_ms: millis,
            event_name: self.event_name.into_owned(),
            event_source: self.event_source.to_owned(),
            username: self.username,
            access_key_id: self.access_key_id,
            read_only: self.read_only,
            resources: self.resources,
            event_json,
        }
    }
}

/// The CloudTrail record of `event`, written straight from borrowed fields in CloudTrail's field
/// order (no intermediate `Value` map: building one cost more than the rest of the audit path).
fn render(event: &Event, event_time: &str, event_id: &str) -> String {
    let record = Record {
        event_version: "1.08",
        user_identity: &event.user_identity,
        event_time,
        event_source: event.event_source,
        event_name: &event.event_name,
        aws_region: &event.region,
        source_ip_address: event.source_ip.as_deref(),
        user_agent: event.user_agent.as_deref(),
        request_parameters: &event.request_parameters,
        response_elements: &event.response_elements,
        request_id: &event.request_id,
        event_id,
        read_only: event.read_only,
        resources: Resources(&event.resources, &event.account_id),
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: &event.account_id,
        error_code: event.error.as_ref().map(|(code, _)| code.as_str()),
        error_message: event.error.as_ref().map(|(_, message)| message.as_str()),
    };
    // Serializing borrowed strings and `Value`s into a `String` cannot fail.
    serde_json::to_string(&record).unwrap_or_default()
}

/// A CloudTrail record's fields, in the order CloudTrail writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: &'a Value,
    event_time: &'a str,
    event_source: &'static str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_parameters: &'a Value,
    response_elements: &'a Value,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    resources: Resources<'a>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

/// `resources`: `(type, ARN)` pairs and the account they all belong to.
struct Resources<'a>(&'a [(String, String)], &'a str);

impl Serialize for Resources<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Resource<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(rename = "ARN")]
            arn: &'a str,
            account_id: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|(kind, arn)| Resource {
            kind,
            arn,
            account_id: self.1,
        }))
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
    // Batches handed to the store but not yet committed. The store's writer folds the appends
    // queued together into one transaction (one fsync), so while one commit is syncing the next
    // batch is already being collected: throughput is bounded by CPU, not by fsync latency.
    let mut committing = tokio::task::JoinSet::new();
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
        while committing.len() >= MAX_COMMITTING {
            report(committing.join_next().await);
        }
        let log = Arc::clone(&log);
        committing.spawn(async move {
            let n = batch.len();
            log.append(batch).await.map_err(|error| (error, n))
        });
        while let Some(done) = committing.try_join_next() {
            report(Some(done));
        }
    }
    while let Some(done) = committing.join_next().await {
        report(Some(done));
    }
}

/// What an append task ends with: the error and the number of events it lost, if it failed.
type Committed = Result<Result<(), (podid_store::Error, usize)>, tokio::task::JoinError>;

/// Logs a failed (or panicked) append.
fn report(done: Option<Committed>) {
    match done {
        Some(Ok(Err((error, events)))) => {
            tracing::error!(%error, events, "committing audit events failed");
        }
        Some(Err(error)) => tracing::error!(%error, "an audit append task failed"),
        Some(Ok(Ok(()))) | None => {}
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use podid_store::{AuditPage, AuditQuery};

    use super::*;

    /// The renderer this module used before `render`: a `json!` map, then `to_string`. The
    /// records must stay byte-identical, field order included.
    fn rendered_as_before(e: &Event, event_time: &str, event_id: &str) -> String {
        let mut record = json!({
            "eventVersion": "1.08",
            "userIdentity": e.user_identity,
            "eventTime": event_time,
            "eventSource": e.event_source,
            "eventName": e.event_name,
            "awsRegion": e.region,
            "sourceIPAddress": e.source_ip,
            "userAgent": e.user_agent,
            "requestParameters": e.request_parameters,
            "responseElements": e.response_elements,
            "requestID": e.request_id,
            "eventID": event_id,
            "readOnly": e.read_only,
            "resources": e.resources.iter().map(|(t, n)| json!({"type": t, "ARN": n, "accountId": e.account_id})).collect::<Vec<_>>(),
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": e.account_id,
        });
        if let (Some((code, message)), Some(obj)) = (&e.error, record.as_object_mut()) {
            obj.insert("errorCode".into(), code.clone().into());
            obj.insert("errorMessage".into(), message.clone().into());
        }
        record.to_string()
    }

    fn event() -> Event {
        Event {
            event_source: "eks-auth.amazonaws.com",
            event_name: "AssumeRoleForPodIdentity".into(),
            read_only: false,
            user_identity: json!({"type": "IAMUser", "principalId": "AIDA1", "arn": "arn:aws:iam::000000000000:user/node", "accountId": "000000000000", "accessKeyId": "AKIA1", "userName": "node"}),
            username: Some("node".into()),
            access_key_id: Some("AKIA1".into()),
            region: "us-east-1".into(),
            source_ip: Some("127.0.0.1".into()),
            user_agent: Some("aws-sdk-go-v2/1.0 \"quoted\" \\ ünïcode \u{1}".into()),
            request_id: "req-1".into(),
            request_parameters: json!({"clusterName": "dev", "eksNodeName": null, "n": 1.5, "list": [1, "two", {"z": 1, "a": 2}]}),
            response_elements: json!({"credentials": {"accessKeyId": "ASIA1", "expiration": 1_764_633_600}}),
            error: None,
            resources: vec![(
                "AWS::EKS::Cluster".into(),
                "arn:aws:eks:us-east-1:000000000000:cluster/dev".into(),
            )],
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn records_render_exactly_as_before() {
        let ok = event();
        let mut failed = event().failed("AccessDeniedException", "User: \"x\" is not authorized");
        failed.source_ip = None;
        failed.user_agent = None;
        failed.resources.push((
            "AWS::IAM::Role".into(),
            "arn:aws:iam::000000000000:role/r".into(),
        ));
        let mut bare = event().params(Value::Null).response(Value::Null);
        bare.resources.clear();
        for e in [ok, failed, bare] {
            let time = "2025-12-02T00:00:00Z";
            let id = "0193d9a0-0000-7000-8000-000000000000";
            assert_eq!(render(&e, time, id), rendered_as_before(&e, time, id));
        }
    }

    #[test]
    fn records_carry_time_ordered_event_ids() {
        let first = event().into_record();
        let second = event().into_record();
        let id = uuid::Uuid::parse_str(&first.event_id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(second.event_id > first.event_id);
        let v: Value = serde_json::from_str(&first.event_json).unwrap();
        assert_eq!(v["eventID"], first.event_id.as_str());
        assert!(v.get("errorCode").is_none());
    }

    /// Collects appends; each takes a while, as an fsync does.
    #[derive(Debug, Default)]
    struct SlowLog(Mutex<Vec<AuditRecord>>);

    #[async_trait::async_trait]
    impl AuditLog for SlowLog {
        async fn append(&self, batch: Vec<AuditRecord>) -> podid_store::Result<()> {
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
        /// The writer never reads; a lookup here would be a test bug, reported as a store error.
        async fn lookup(&self, _: AuditQuery) -> podid_store::Result<AuditPage> {
            Err(podid_store::Error::ReaderFailed)
        }
        async fn purge_before(&self, _: i64) -> podid_store::Result<u64> {
            Ok(0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_event_is_committed_within_the_flush_interval_plus_one_commit() {
        let log = Arc::new(SlowLog::default());
        let audit = Audit::start(log.clone(), Duration::from_secs(3600), None);
        let n = 3 * MAX_BATCH + 7;
        for _ in 0..n {
            audit.record(event());
        }
        let started = tokio::time::Instant::now();
        while log.0.lock().unwrap().len() < n {
            assert!(started.elapsed() < FLUSH_INTERVAL + Duration::from_millis(200));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ids: std::collections::HashSet<_> = log
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.event_id.clone())
            .collect();
        assert_eq!(ids.len(), n);
    }
}
