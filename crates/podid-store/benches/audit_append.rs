//! Benchmark of the audit log's write path: `AuditLog::append` of pod-identity issuances' audit
//! records (each issuance writes two: the EKS Auth call and the STS AssumeRole it made), in
//! batches of 1,000 as the server's audit writer sends them, through the real writer thread,
//! group commit and fsync.
//!
//! Plain `harness = false` loop; run with `cargo bench -p podid-store --bench audit_append`.
//! `PODID_BENCH_ISSUANCES=20000` sets the number of issuances (default 10,000);
//! `PODID_BENCH_IDS=ordered` makes event ids time-ordered (like UUIDv7, as the server now writes)
//! instead of random. Schema experiments: `PODID_BENCH_SQL='DROP INDEX …; CREATE INDEX …'` runs
//! SQL on the fresh database first, `PODID_BENCH_SHRINK=1` cuts each record's JSON to a third
//! (what storing only the fields that cannot be derived at read time would leave). For
//! instruction counts of the SQLite work alone, run the bench binary under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*commit_batch*'`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::time::Instant;

use podid_store::{AuditLog, AuditQuery, AuditRecord, LookupAttribute, SqliteStore};

/// Records per `append`, as the server's audit writer batches them.
const BATCH: usize = 1000;

fn main() -> Result<(), Box<dyn Error>> {
    let issuances: usize = std::env::var("PODID_BENCH_ISSUANCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(issuances))
}

async fn run(issuances: usize) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("podid.db")).await?;
    if let Ok(sql) = std::env::var("PODID_BENCH_SQL") {
        rusqlite::Connection::open(dir.path().join("podid.db"))?.execute_batch(&sql)?;
    }
    let shrink = std::env::var("PODID_BENCH_SHRINK").is_ok();
    let mut records: Vec<AuditRecord> = (0..issuances).flat_map(issuance_records).collect();
    if shrink {
        for r in &mut records {
            r.event_json.truncate(r.event_json.len() / 3);
        }
    }
    let bytes: usize = records.iter().map(|r| r.event_json.len()).sum();
    let n = records.len();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for r in records {
        batch.push(r);
        if batch.len() == BATCH {
            store.append(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        store.append(batch).await?;
    }
    let elapsed = started.elapsed();
    println!(
        "audit_append: {n} records ({issuances} issuances, {:.0} bytes of CloudTrail JSON each) in batches of {BATCH}: {:.2} s = {:.2} us per record, {:.0} issuances/s",
        bytes as f64 / n as f64,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        issuances as f64 / elapsed.as_secs_f64()
    );
    // A read back, so a broken write path cannot pass for a fast one.
    let q = AuditQuery {
        attribute: Some(LookupAttribute::EventName("AssumeRole".into())),
        ..AuditQuery::default()
    };
    let page = store.lookup(q).await?;
    assert_eq!(page.records.len(), 50.min(issuances));
    let size = std::fs::metadata(dir.path().join("podid.db"))?.len()
        + std::fs::metadata(dir.path().join("podid.db-wal")).map_or(0, |m| m.len());
    println!("database + WAL: {:.1} MB", size as f64 / 1e6);
    Ok(())
}

/// A UUID-shaped id: random-looking (like v4), or led by the time in milliseconds (like v7).
fn uuid_like(seed: usize, time_ms: Option<i64>) -> String {
    // splitmix64: cheap, deterministic, well spread.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let seed = u64::try_from(seed).unwrap();
    let (a, b) = (mix(seed), mix(seed ^ 0xdead_beef));
    let a = match time_ms {
        Some(t) => (u64::try_from(t).unwrap() << 16) | (a & 0xffff),
        None => a,
    };
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The two records one pod-identity issuance leaves, shaped like the server's.
fn issuance_records(i: usize) -> [AuditRecord; 2] {
    let t = 1_764_633_600_000 + i64::try_from(i / 8).unwrap();
    let node = "bench-node";
    let key = "AKIAQ3EGUCFEXAMPLE01";
    let cluster = "arn:aws:eks:us-east-1:000000000000:cluster/bench-issue";
    let role = "arn:aws:iam::000000000000:role/bench-pod-role";
    let session = format!("eks-bench-issu-pod-{i}-{}", uuid_like(3 * i, None));
    let time_ordered = std::env::var("PODID_BENCH_IDS").is_ok_and(|v| v == "ordered");
    let at = time_ordered.then_some(t);
    let eks_id = uuid_like(3 * i + 1, at);
    let sts_id = uuid_like(3 * i + 2, at);
    let eks_json = format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAQ3EGUCFEXAMPLE01","arn":"arn:aws:iam::000000000000:user/{node}","accountId":"000000000000","accessKeyId":"{key}","userName":"{node}"}},"eventTime":"2025-12-02T00:00:00Z","eventSource":"eks-auth.amazonaws.com","eventName":"AssumeRoleForPodIdentity","awsRegion":"us-east-1","sourceIPAddress":"127.0.0.1","userAgent":null,"requestParameters":{{"clusterName":"bench-issue","eksNodeName":null,"instanceId":null,"zone":null}},"responseElements":{{"subject":{{"namespace":"bench","serviceAccount":"sa-{sa}"}},"audience":"pods.eks.amazonaws.com","podIdentityAssociation":{{"associationArn":"arn:aws:eks:us-east-1:000000000000:podidentityassociation/bench-issue/a-{i:017}","associationId":"a-{i:017}"}},"assumedRoleUser":{{"arn":"arn:aws:sts::000000000000:assumed-role/bench-pod-role/{session}","assumeRoleId":"AROAQ3EGUCFEXAMPLE01:{session}"}},"credentials":{{"accessKeyId":"ASIAQ3EGUCF{i:09}","expiration":1764655200}}}},"requestID":"{eks_id}","eventID":"{eks_id}","readOnly":false,"resources":[{{"type":"AWS::EKS::Cluster","ARN":"{cluster}","accountId":"000000000000"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000"}}"#,
        sa = i % 1000
    );
    let sts_json = format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AWSService","invokedBy":"pods.eks.amazonaws.com"}},"eventTime":"2025-12-02T00:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1","sourceIPAddress":"pods.eks.amazonaws.com","userAgent":"pods.eks.amazonaws.com","requestParameters":{{"roleArn":"{role}","roleSessionName":"{session}","tags":[{{"key":"eks-cluster-arn","value":"{cluster}"}},{{"key":"eks-cluster-name","value":"bench-issue"}},{{"key":"kubernetes-namespace","value":"bench"}},{{"key":"kubernetes-service-account","value":"sa-{sa}"}},{{"key":"kubernetes-pod-name","value":"pod-{i}"}},{{"key":"kubernetes-pod-uid","value":"{sts_id}"}}]}},"responseElements":{{"assumedRoleUser":{{"arn":"arn:aws:sts::000000000000:assumed-role/bench-pod-role/{session}"}}}},"requestID":"{sts_id}","eventID":"{sts_id}","readOnly":false,"resources":[{{"type":"AWS::IAM::Role","ARN":"{role}","accountId":"000000000000"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000"}}"#,
        sa = i % 1000
    );
    [
        AuditRecord {
            event_id: eks_id,
            event_time_ms: t,
            event_name: "AssumeRoleForPodIdentity".into(),
            event_source: "eks-auth.amazonaws.com".into(),
            username: Some(node.into()),
            access_key_id: Some(key.into()),
            read_only: false,
            resources: vec![("AWS::EKS::Cluster".into(), cluster.into())],
            event_json: eks_json,
        },
        AuditRecord {
            event_id: sts_id,
            event_time_ms: t,
            event_name: "AssumeRole".into(),
            event_source: "sts.amazonaws.com".into(),
            username: None,
            access_key_id: None,
            read_only: false,
            resources: vec![("AWS::IAM::Role".into(), role.into())],
            event_json: sts_json,
        },
    ]
}
