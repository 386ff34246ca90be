//! Audit schema version 3: a version-2 database migrates on open (events, order and NextTokens
//! kept), and every lookup plan agrees with a brute-force model over awkward data.

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::schema::MIGRATIONS;
use crate::Error;
use crate::audit::{AuditLog, AuditQuery, AuditRecord, LookupAttribute, encode_v2_token};

/// Deterministic, well-spread numbers (splitmix64), so the tests need no rand crate.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Record `i`: ids in random order (as version 2's UUIDv4 ids were), times that tie and run
/// backwards across batches, several resources, attributes with rare and common values.
fn record(i: u64) -> AuditRecord {
    let r = mix(i);
    let names = ["AssumeRole", "AssumeRoleForPodIdentity", "CreateRole"];
    let sources = [
        "sts.amazonaws.com",
        "eks-auth.amazonaws.com",
        "iam.amazonaws.com",
    ];
    let pick = |k: u64| usize::try_from(k % 3).unwrap();
    let mut resources = vec![("AWS::IAM::Role".into(), format!("role-{}", r % 5))];
    if r.is_multiple_of(7) {
        resources.push(("AWS::EKS::Cluster".into(), "cluster-a".into()));
    }
    if r.is_multiple_of(11) {
        resources.push(("AWS::EKS::Cluster".into(), "cluster-a".into()));
    }
    AuditRecord {
        event_id: format!("{:016x}-{i}", mix(i ^ 0xabcd)),
        // Mostly rising, with ties, gaps spanning many 10 ms buckets and a few stragglers
        // older than what came before them (and some before 1970).
        event_time_ms: i64::try_from(i / 3 * 7).unwrap()
            - i64::try_from(r % 13).unwrap() * 40
            - if r.is_multiple_of(17) { 3_000 } else { 0 },
        event_name: names[pick(r >> 8)].into(),
        event_source: sources[pick(r >> 12)].into(),
        username: r.is_multiple_of(4).then(|| format!("user-{}", r % 3)),
        access_key_id: r.is_multiple_of(6).then(|| format!("AKIA{}", r % 2)),
        read_only: r.is_multiple_of(9),
        resources,
        event_json: format!("{{\"i\":{i},\"q\":\"\\\"é\"}}"),
    }
}

fn matches(attr: &LookupAttribute, r: &AuditRecord) -> bool {
    let res = |f: &dyn Fn(&(String, String)) -> bool| r.resources.iter().any(f);
    match attr {
        LookupAttribute::EventId(v) => &r.event_id == v,
        LookupAttribute::EventName(v) => &r.event_name == v,
        LookupAttribute::ReadOnly(v) => r.read_only == *v,
        LookupAttribute::Username(v) => r.username.as_ref() == Some(v),
        LookupAttribute::ResourceType(v) => res(&|(t, _)| t == v),
        LookupAttribute::ResourceName(v) => res(&|(_, n)| n == v),
        LookupAttribute::EventSource(v) => &r.event_source == v,
        LookupAttribute::AccessKeyId(v) => r.access_key_id.as_ref() == Some(v),
    }
}

fn attributes(sample: &AuditRecord) -> Vec<Option<LookupAttribute>> {
    let s = |v: &str| v.to_owned();
    vec![
        None,
        Some(LookupAttribute::EventId(sample.event_id.clone())),
        Some(LookupAttribute::EventName(s("CreateRole"))),
        Some(LookupAttribute::EventName(s("AssumeRole"))),
        Some(LookupAttribute::EventName(s("Nothing"))),
        Some(LookupAttribute::ReadOnly(true)),
        Some(LookupAttribute::ReadOnly(false)),
        Some(LookupAttribute::Username(s("user-1"))),
        Some(LookupAttribute::AccessKeyId(s("AKIA0"))),
        Some(LookupAttribute::ResourceType(s("AWS::EKS::Cluster"))),
        Some(LookupAttribute::ResourceType(s("AWS::IAM::Role"))),
        Some(LookupAttribute::ResourceName(s("cluster-a"))),
        Some(LookupAttribute::ResourceName(s("role-3"))),
        Some(LookupAttribute::EventSource(s("iam.amazonaws.com"))),
    ]
}

/// Every record `q` matches, in order, paging `page` at a time.
async fn all_pages(store: &SqliteStore, mut q: AuditQuery) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    loop {
        let page = store.lookup(q.clone()).await.unwrap();
        assert!(page.records.len() <= q.page_size());
        out.extend(page.records);
        match page.next_token {
            Some(t) => q.next_token = Some(t),
            None => return out,
        }
    }
}

/// `stored` is in insertion order; the expected answer sorts by time, then `tie`, newest first.
async fn check_against_model(store: &SqliteStore, stored: &[AuditRecord], by_id: bool) {
    let bounds = [(None, None), (Some(-500), Some(400)), (Some(700), None)];
    for attr in attributes(&stored[stored.len() / 2]) {
        for (start_ms, end_ms) in bounds {
            let mut want: Vec<(usize, &AuditRecord)> = stored
                .iter()
                .enumerate()
                .filter(|(_, r)| attr.as_ref().is_none_or(|a| matches(a, r)))
                .filter(|(_, r)| start_ms.is_none_or(|s| r.event_time_ms >= s))
                .filter(|(_, r)| end_ms.is_none_or(|e| r.event_time_ms <= e))
                .collect();
            want.sort_by(|(i, a), (j, b)| {
                let tie = if by_id {
                    b.event_id.cmp(&a.event_id)
                } else {
                    j.cmp(i)
                };
                b.event_time_ms.cmp(&a.event_time_ms).then(tie)
            });
            let want: Vec<AuditRecord> = want.into_iter().map(|(_, r)| r.clone()).collect();
            for page in [3, 1000] {
                let q = AuditQuery {
                    attribute: attr.clone(),
                    start_ms,
                    end_ms,
                    max_results: page,
                    next_token: None,
                };
                let got = all_pages(store, q).await;
                assert_eq!(got, want, "{attr:?} {start_ms:?}..{end_ms:?} page {page}");
            }
        }
    }
}

#[tokio::test]
async fn every_lookup_plan_matches_a_brute_force_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("podid.db"))
        .await
        .unwrap();
    let all: Vec<AuditRecord> = (0..400).map(record).collect();
    for batch in all.chunks(37) {
        store.append(batch.to_vec()).await.unwrap();
    }
    check_against_model(&store, &all, false).await;
}

/// Version 2's append, as shipped, for building a version-2 database.
fn append_v2(conn: &Connection, records: &[AuditRecord]) {
    for r in records {
        conn.execute(
            "INSERT INTO audit_event (event_id, event_time_ms, event_name, event_source,
                 username, access_key_id, read_only, event_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.event_id,
                r.event_time_ms,
                r.event_name,
                r.event_source,
                r.username,
                r.access_key_id,
                r.read_only,
                r.event_json
            ],
        )
        .unwrap();
        let seq = conn.last_insert_rowid();
        for (kind, name) in &r.resources {
            conn.execute(
                "INSERT INTO audit_resource (seq, resource_type, resource_name)
                 VALUES (?1, ?2, ?3)",
                params![seq, kind, name],
            )
            .unwrap();
        }
    }
}

fn version_2_database(path: &std::path::Path, records: &[AuditRecord]) {
    let conn = Connection::open(path).unwrap();
    for sql in &MIGRATIONS[..2] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    append_v2(&conn, records);
}

#[tokio::test]
async fn a_version_2_log_migrates_with_its_order_and_next_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podid.db");
    let old: Vec<AuditRecord> = (0..300).map(record).collect();
    version_2_database(&path, &old);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 3);
    // Version 2 broke ties by event id; the migrated events keep that order.
    check_against_model(&store, &old, true).await;

    // A NextToken version 2 handed out resumes right after the event it names.
    let q = AuditQuery {
        attribute: Some(LookupAttribute::ResourceType("AWS::IAM::Role".into())),
        max_results: 10,
        ..AuditQuery::default()
    };
    let everything = all_pages(&store, q.clone()).await;
    let last = &everything[9];
    let resumed = AuditQuery {
        next_token: Some(encode_v2_token(&q, last.event_time_ms, &last.event_id)),
        max_results: 1000,
        ..q.clone()
    };
    let page = store.lookup(resumed).await.unwrap();
    assert_eq!(page.records, everything[10..]);

    // One naming an event that is gone (or never was) cannot be placed: refused.
    let gone = AuditQuery {
        next_token: Some(encode_v2_token(&q, last.event_time_ms, "no-such-event")),
        ..q.clone()
    };
    assert!(matches!(store.lookup(gone).await, Err(Error::BadNextToken)));
    // And one made for another query is refused as before.
    let foreign = AuditQuery {
        next_token: Some(encode_v2_token(&q, last.event_time_ms, &last.event_id)),
        ..AuditQuery::default()
    };
    assert!(matches!(
        store.lookup(foreign).await,
        Err(Error::BadNextToken)
    ));

    // New events after the migration sort with the old ones.
    let new: Vec<AuditRecord> = (300..400).map(record).collect();
    store.append(new.clone()).await.unwrap();
    let q = AuditQuery {
        attribute: Some(LookupAttribute::EventName("CreateRole".into())),
        max_results: 1000,
        ..AuditQuery::default()
    };
    let got = all_pages(&store, q).await;
    let want = old
        .iter()
        .chain(&new)
        .filter(|r| r.event_name == "CreateRole")
        .count();
    assert_eq!(got.len(), want);
    assert!(
        got.windows(2)
            .all(|w| w[0].event_time_ms >= w[1].event_time_ms)
    );
}

#[tokio::test]
async fn purge_after_migration_removes_names_and_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podid.db");
    let old: Vec<AuditRecord> = (0..300).map(record).collect();
    version_2_database(&path, &old);
    let store = SqliteStore::open(&path).await.unwrap();
    let cutoff = 500;
    let doomed = old.iter().filter(|r| r.event_time_ms < cutoff).count();
    assert_eq!(
        store.purge_before(cutoff).await.unwrap(),
        u64::try_from(doomed).unwrap()
    );
    let kept: Vec<AuditRecord> = old
        .iter()
        .filter(|r| r.event_time_ms >= cutoff)
        .cloned()
        .collect();
    check_against_model(&store, &kept, true).await;
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM audit_resource_name WHERE event_time_ms < 500"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM audit_summary WHERE bucket < 50"),
        0
    );
}
