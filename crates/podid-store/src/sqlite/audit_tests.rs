//! Audit log behaviour of the SQLite store.

use std::collections::HashSet;

use super::SqliteStore;
use crate::Error;
use crate::audit::{AuditLog, AuditQuery, AuditRecord, LookupAttribute};

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("podid.db"))
        .await
        .unwrap();
    (dir, store)
}

/// Event `i` at time `1000 + i / 2` (so times tie in pairs), alternating names and users.
fn record(i: i64) -> AuditRecord {
    AuditRecord {
        event_id: format!("ev-{i:04}"),
        event_time_ms: 1000 + i / 2,
        event_name: if i % 2 == 0 {
            "CreateRole"
        } else {
            "AssumeRole"
        }
        .into(),
        event_source: if i % 3 == 0 {
            "iam.amazonaws.com"
        } else {
            "sts.amazonaws.com"
        }
        .into(),
        username: (i % 4 == 0).then(|| "alice".into()),
        access_key_id: (i % 5 == 0).then(|| format!("AKIA{i}")),
        read_only: i % 2 == 1,
        resources: vec![("AWS::IAM::Role".into(), format!("role-{}", i % 7))],
        event_json: format!("{{\"eventID\":\"ev-{i:04}\"}}"),
    }
}

fn ids(records: &[AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.event_id.clone()).collect()
}

type Pred = Box<dyn Fn(&AuditRecord) -> bool>;

fn by(attribute: LookupAttribute) -> AuditQuery {
    AuditQuery {
        attribute: Some(attribute),
        max_results: 1000,
        ..AuditQuery::default()
    }
}

#[tokio::test]
async fn malformed_or_foreign_next_token_is_refused() {
    let (_dir, store) = fresh().await;
    store.append((0..10).map(record).collect()).await.unwrap();
    let bad = AuditQuery {
        next_token: Some("not a token".into()),
        ..AuditQuery::default()
    };
    assert!(matches!(store.lookup(bad).await, Err(Error::BadNextToken)));

    let q = AuditQuery {
        max_results: 2,
        ..AuditQuery::default()
    };
    let token = store.lookup(q).await.unwrap().next_token.unwrap();
    let other = AuditQuery {
        next_token: Some(token),
        ..by(LookupAttribute::ReadOnly(true))
    };
    assert!(matches!(
        store.lookup(other).await,
        Err(Error::BadNextToken)
    ));
}

#[tokio::test]
async fn duplicate_event_ids_keep_the_first() {
    let (_dir, store) = fresh().await;
    store.append(vec![record(1)]).await.unwrap();
    let mut again = record(1);
    again.event_json = "{}".into();
    store.append(vec![again, record(2)]).await.unwrap();
    let page = store.lookup(AuditQuery::default()).await.unwrap();
    assert_eq!(ids(&page.records), ["ev-0002", "ev-0001"]);
    assert_eq!(page.records[1], record(1));
    assert_eq!(page.next_token, None);
}

#[tokio::test]
async fn lookup_by_each_attribute() {
    let (_dir, store) = fresh().await;
    let all: Vec<_> = (0..40).map(record).collect();
    store.append(all.clone()).await.unwrap();
    let expect = |pred: &dyn Fn(&AuditRecord) -> bool| {
        let mut v: Vec<_> = all.iter().filter(|r| pred(r)).cloned().collect();
        v.sort_by(|a, b| (b.event_time_ms, &b.event_id).cmp(&(a.event_time_ms, &a.event_id)));
        v
    };
    let cases: Vec<(LookupAttribute, Pred)> = vec![
        (
            LookupAttribute::EventId("ev-0007".into()),
            Box::new(|r| r.event_id == "ev-0007"),
        ),
        (
            LookupAttribute::EventName("AssumeRole".into()),
            Box::new(|r| r.event_name == "AssumeRole"),
        ),
        (LookupAttribute::ReadOnly(false), Box::new(|r| !r.read_only)),
        (
            LookupAttribute::Username("alice".into()),
            Box::new(|r| r.username.as_deref() == Some("alice")),
        ),
        (
            LookupAttribute::EventSource("iam.amazonaws.com".into()),
            Box::new(|r| r.event_source == "iam.amazonaws.com"),
        ),
        (
            LookupAttribute::AccessKeyId("AKIA10".into()),
            Box::new(|r| r.access_key_id.as_deref() == Some("AKIA10")),
        ),
        (
            LookupAttribute::ResourceType("AWS::IAM::Role".into()),
            Box::new(|_| true),
        ),
        (
            LookupAttribute::ResourceName("role-3".into()),
            Box::new(|r| r.resources[0].1 == "role-3"),
        ),
        (
            LookupAttribute::ResourceName("nothing".into()),
            Box::new(|_| false),
        ),
    ];
    for (attr, pred) in cases {
        let want = expect(&*pred);
        let page = store.lookup(by(attr.clone())).await.unwrap();
        assert_eq!(page.records, want, "{attr:?}");
        assert_eq!(page.next_token, None);
    }
}

#[tokio::test]
async fn time_range_is_inclusive() {
    let (_dir, store) = fresh().await;
    store.append((0..20).map(record).collect()).await.unwrap();
    let q = AuditQuery {
        start_ms: Some(1002),
        end_ms: Some(1004),
        ..AuditQuery::default()
    };
    let page = store.lookup(q).await.unwrap();
    assert_eq!(
        ids(&page.records),
        [
            "ev-0009", "ev-0008", "ev-0007", "ev-0006", "ev-0005", "ev-0004"
        ]
    );
}

#[tokio::test]
async fn pages_cover_everything_once_newest_first() {
    let (_dir, store) = fresh().await;
    store.append((0..101).map(record).collect()).await.unwrap();
    let mut q = AuditQuery {
        max_results: 7,
        ..by(LookupAttribute::ResourceType("AWS::IAM::Role".into()))
    };
    let mut seen = Vec::new();
    loop {
        let page = store.lookup(q.clone()).await.unwrap();
        assert!(page.records.len() <= 7);
        seen.extend(page.records);
        match page.next_token {
            Some(t) => q.next_token = Some(t),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!((seen.len(), unique.len()), (101, 101));
    let keys: Vec<_> = seen
        .iter()
        .map(|r| (r.event_time_ms, r.event_id.clone()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "not strictly newest first"
    );
}

#[tokio::test]
async fn purge_removes_old_records_and_their_resources() {
    let (_dir, store) = fresh().await;
    // More than one purge chunk, so the chunk loop is exercised.
    let n = super::audit::PURGE_CHUNK * 2 + 10;
    for start in (0..n).step_by(5000) {
        store
            .append((start..n.min(start + 5000)).map(record).collect())
            .await
            .unwrap();
    }
    // Times run 1000 ..= 1000 + (n - 1) / 2 in pairs; keep the last three times (six records).
    let cutoff = 1000 + n / 2 - 3;
    assert_eq!(
        store.purge_before(cutoff).await.unwrap(),
        u64::try_from(n - 6).unwrap()
    );
    let page = store
        .lookup(by(LookupAttribute::ResourceType("AWS::IAM::Role".into())))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 6);
    assert!(page.records.iter().all(|r| r.event_time_ms >= cutoff));
    assert_eq!(store.purge_before(cutoff).await.unwrap(), 0);
}
