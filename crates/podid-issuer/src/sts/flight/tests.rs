use std::sync::atomic::{AtomicUsize, Ordering};

use time::macros::datetime;
use tokio::sync::watch;

use super::*;

#[derive(Debug)]
struct Cred {
    expires: OffsetDateTime,
    n: usize,
}

impl Expiring for Cred {
    fn expires_at(&self) -> OffsetDateTime {
        self.expires
    }
}

const T0: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

/// Counts upstream calls; each call waits until `open` is true, then answers with a session
/// expiring an hour after T0, or with an error when `fail` is set.
struct Upstream {
    calls: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl Upstream {
    fn new(open: bool) -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            open: watch::channel(open).0,
        }
    }

    fn fetch(&self, fail: bool) -> impl Future<Output = Result<Cred, String>> + Send + 'static {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut open = self.open.subscribe();
        async move {
            let _ = open.wait_for(|o| *o).await;
            if fail {
                Err(format!("call {n} failed"))
            } else {
                Ok(Cred {
                    expires: T0 + HOUR,
                    n,
                })
            }
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn flights() -> Flights<&'static str, Cred, String> {
    Flights::new(Duration::from_secs(600), 100)
}

#[tokio::test]
async fn concurrent_requests_for_one_key_make_one_call() {
    let up = Upstream::new(false);
    let f = flights();
    let mut waiting = Vec::new();
    for _ in 0..50 {
        waiting.push(f.get("pod-a", T0, || up.fetch(false)));
    }
    let all = futures::future::join_all(waiting);
    let opened = async {
        tokio::task::yield_now().await;
        up.open.send_replace(true);
    };
    let (results, ()) = tokio::join!(all, opened);
    assert_eq!(up.calls(), 1);
    let fetched = results
        .iter()
        .filter(|(_, o)| *o == Outcome::Fetched)
        .count();
    let joined = results
        .iter()
        .filter(|(_, o)| *o == Outcome::Joined)
        .count();
    assert_eq!((fetched, joined), (1, 49));
    assert!(
        results
            .iter()
            .all(|(r, _)| r.as_ref().is_ok_and(|c| c.n == 1))
    );
}

#[tokio::test]
async fn a_session_is_reused_until_only_the_margin_is_left() {
    let up = Upstream::new(true);
    let f = flights();
    let (first, outcome) = f.get("pod-a", T0, || up.fetch(false)).await;
    assert_eq!(outcome, Outcome::Fetched);
    assert_eq!(first.unwrap().n, 1);
    // 49 minutes later 11 minutes are left, more than the 10-minute margin: reused.
    let later = T0 + Duration::from_secs(49 * 60);
    let (again, outcome) = f.get("pod-a", later, || up.fetch(false)).await;
    assert_eq!((again.unwrap().n, outcome), (1, Outcome::Reused));
    // At 50 minutes exactly the margin is left: a new call.
    let at_margin = T0 + Duration::from_secs(50 * 60);
    let (renewed, outcome) = f.get("pod-a", at_margin, || up.fetch(false)).await;
    assert_eq!((renewed.unwrap().n, outcome), (2, Outcome::Fetched));
    assert_eq!(up.calls(), 2);
}

#[tokio::test]
async fn other_keys_make_their_own_calls() {
    let up = Upstream::new(true);
    let f = flights();
    for key in ["pod-a", "pod-b", "pod-a", "pod-c", "pod-b"] {
        let _ = f.get(key, T0, || up.fetch(false)).await;
    }
    assert_eq!(up.calls(), 3);
    assert_eq!(f.len(), 3);
}

#[tokio::test]
async fn a_failure_reaches_its_waiters_and_is_not_remembered() {
    let up = Upstream::new(false);
    let f = flights();
    let a = f.get("pod-a", T0, || up.fetch(true));
    let b = f.get("pod-a", T0, || up.fetch(true));
    let opened = async {
        tokio::task::yield_now().await;
        up.open.send_replace(true);
    };
    let ((ra, oa), (rb, ob), ()) = tokio::join!(a, b, opened);
    assert_eq!((oa, ob), (Outcome::Fetched, Outcome::Joined));
    assert_eq!(ra.unwrap_err(), "call 1 failed");
    assert_eq!(rb.unwrap_err(), "call 1 failed");
    assert!(f.is_empty());
    let (retried, outcome) = f.get("pod-a", T0, || up.fetch(false)).await;
    assert_eq!((retried.unwrap().n, outcome), (2, Outcome::Fetched));
}

#[tokio::test]
async fn a_session_with_no_more_than_the_margin_is_not_remembered() {
    let up = Upstream::new(true);
    let f = flights();
    // Asked 55 minutes after T0: the answer expires in 5 minutes, inside the margin.
    let late = T0 + Duration::from_secs(55 * 60);
    let _ = f.get("pod-a", late, || up.fetch(false)).await;
    assert!(f.is_empty());
}

#[tokio::test]
async fn the_leader_giving_up_does_not_cancel_the_call_for_the_others() {
    let up = Upstream::new(false);
    let f = flights();
    let mut leader = Box::pin(f.get("pod-a", T0, || up.fetch(false)));
    // Poll the leader once so the call is in flight, then drop it (its client went away).
    assert!(futures::poll!(&mut leader).is_pending());
    drop(leader);
    let follower = f.get("pod-a", T0, || up.fetch(false));
    let opened = async {
        tokio::task::yield_now().await;
        up.open.send_replace(true);
    };
    let ((r, outcome), ()) = tokio::join!(follower, opened);
    assert_eq!((r.unwrap().n, outcome), (1, Outcome::Joined));
    // The flight recorded its own result: the next request reuses it.
    let (_, outcome) = f.get("pod-a", T0, || up.fetch(false)).await;
    assert_eq!(outcome, Outcome::Reused);
    assert_eq!(up.calls(), 1);
}

#[tokio::test]
async fn a_full_map_still_answers_but_remembers_nothing_new() {
    let up = Upstream::new(true);
    let f: Flights<&str, Cred, String> = Flights::new(Duration::from_secs(600), 2);
    let _ = f.get("pod-a", T0, || up.fetch(false)).await;
    let _ = f.get("pod-b", T0, || up.fetch(false)).await;
    let (r, outcome) = f.get("pod-c", T0, || up.fetch(false)).await;
    assert_eq!((r.unwrap().n, outcome), (3, Outcome::Uncached));
    assert_eq!(f.len(), 2);
    // Once the remembered ones are stale, they are swept and the new key fits.
    let later = T0 + Duration::from_secs(55 * 60);
    let (_, outcome) = f.get("pod-c", later, || up.fetch(false)).await;
    assert_eq!(outcome, Outcome::Fetched);
}
