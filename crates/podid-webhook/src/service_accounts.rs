//! The webhook's copy of the cluster's service accounts, for their `eks.amazonaws.com/*`
//! annotations (token lifetime, regional STS): a `kube-runtime` reflector over a metadata-only
//! watch of every namespace's ServiceAccounts, as the reference webhook keeps an informer.
//!
//! Admission reads the copy without waiting on the network. A pod can be admitted a few
//! milliseconds after its service account was created, before the watch has delivered it; the
//! handler may then wait a short grace period for the watch ([`ServiceAccounts::wait_for`]).
//!
//! Only what admission reads is kept: the name, namespace and `eks.amazonaws.com/` annotations
//! (labels, managed fields and other annotations are dropped as events arrive), so a cluster
//! with many service accounts costs little memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Annotations with this prefix are kept; the rest are dropped on arrival.
const KEPT_ANNOTATION_PREFIX: &str = "eks.amazonaws.com/";

type Meta = PartialObjectMeta<ServiceAccount>;

/// What admission learned about a pod's service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccountInfo {
    /// No service-account source is configured: pod annotations and flags decide.
    NotWatched,
    /// The watch has not delivered this service account (yet).
    Unknown,
    /// The service account's kept annotations (possibly none).
    Known(BTreeMap<String, String>),
}

impl ServiceAccountInfo {
    /// The annotations, when the service account is known.
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::Known(a) => Some(a),
            Self::NotWatched | Self::Unknown => None,
        }
    }
}

/// The watched copy of the cluster's service accounts.
pub struct ServiceAccounts {
    store: Store<Meta>,
    /// Woken after every event the store has applied.
    changed: Notify,
    /// Set once the first full list is in the store.
    synced: AtomicBool,
}

impl std::fmt::Debug for ServiceAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccounts")
            .field("len", &self.store.len())
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish()
    }
}

impl ServiceAccounts {
    /// An empty copy and the writer that fills it (from the watch task, or from
    /// events handed in by tests).
    pub fn new() -> (Arc<Self>, reflector::store::Writer<Meta>) {
        let writer = reflector::store::Writer::default();
        let copy = Arc::new(Self {
            store: writer.as_reader(),
            changed: Notify::new(),
            synced: AtomicBool::new(false),
        });
        (copy, writer)
    }

    /// The service account's kept annotations, if the watch has delivered it.
    pub fn get(&self, namespace: &str, name: &str) -> ServiceAccountInfo {
        let key = ObjectRef::new(name).within(namespace);
        match self.store.get(&key) {
            Some(meta) => {
                ServiceAccountInfo::Known(meta.metadata.annotations.clone().unwrap_or_default())
            }
            None => ServiceAccountInfo::Unknown,
        }
    }

    /// Waits at most `grace` for the watch to deliver the service account; what is known then.
    pub async fn wait_for(
        &self,
        namespace: &str,
        name: &str,
        grace: Duration,
    ) -> ServiceAccountInfo {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Register for the next change before looking, so an event between the look and
            // the wait is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let info = self.get(namespace, name);
            if info != ServiceAccountInfo::Unknown {
                return info;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return ServiceAccountInfo::Unknown;
            }
        }
    }

    /// Whether the first full list has arrived (admissions before it would miss every
    /// service account's annotations).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// How many service accounts the copy holds.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the copy is empty.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Applies one watch event (trimmed to what admission reads) and wakes waiters.
    pub fn apply(&self, writer: &mut reflector::store::Writer<Meta>, event: watcher::Event<Meta>) {
        let event = event.modify(trim);
        writer.apply_watcher_event(&event);
        if matches!(event, watcher::Event::InitDone) {
            self.synced.store(true, Ordering::Release);
        }
        self.changed.notify_waiters();
    }

    /// Keeps the copy current from the API server until the task is dropped. The watcher
    /// re-lists after a lost watch or an expired resource version, with kube-runtime's default
    /// backoff; failures are logged and counted, and the last known copy stays in use.
    pub(crate) async fn watch(
        self: Arc<Self>,
        mut writer: reflector::store::Writer<Meta>,
        client: kube::Client,
        metrics: Arc<Metrics>,
    ) {
        let api: Api<Meta> = Api::all(client);
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    let init_done = matches!(event, watcher::Event::InitDone);
                    self.apply(&mut writer, event);
                    metrics
                        .service_accounts
                        .set(i64::try_from(self.len()).unwrap_or(i64::MAX));
                    if init_done {
                        tracing::info!(service_accounts = self.len(), "service accounts listed");
                    }
                }
                Err(error) => {
                    metrics.service_account_watch_errors.inc();
                    tracing::warn!(
                        error = %crate::sync::chain(&error),
                        "watching service accounts failed; retrying with backoff (the last known copy stays in use)"
                    );
                }
            }
        }
    }
}

/// Keeps only what admission reads: the name, the namespace and the kept annotations.
fn trim(meta: &mut Meta) {
    let m = std::mem::take(&mut meta.metadata);
    meta.metadata.name = m.name;
    meta.metadata.namespace = m.namespace;
    meta.metadata.annotations = m.annotations.and_then(|mut annotations| {
        annotations.retain(|k, _| k.starts_with(KEPT_ANNOTATION_PREFIX));
        (!annotations.is_empty()).then_some(annotations)
    });
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;

    use super::*;

    fn sa(ns: &str, name: &str, annotations: &[(&str, &str)]) -> Meta {
        let mut meta = PartialObjectMeta::<ServiceAccount> {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(ns.to_owned()),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        };
        let map: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        meta.metadata.annotations = Some(map);
        meta.metadata.labels = Some(BTreeMap::from([("app".to_owned(), "x".to_owned())]));
        meta
    }

    fn known(pairs: &[(&str, &str)]) -> ServiceAccountInfo {
        ServiceAccountInfo::Known(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn events_fill_the_copy_and_only_eks_annotations_are_kept() {
        let (copy, mut writer) = ServiceAccounts::new();
        assert!(!copy.is_synced());
        copy.apply(&mut writer, watcher::Event::Init);
        copy.apply(
            &mut writer,
            watcher::Event::InitApply(sa(
                "ns",
                "a",
                &[
                    ("eks.amazonaws.com/token-expiration", "3600"),
                    ("kubectl.kubernetes.io/last-applied-configuration", "{big}"),
                ],
            )),
        );
        // Not visible before the list completes (the reflector buffers the list).
        assert_eq!(copy.get("ns", "a"), ServiceAccountInfo::Unknown);
        copy.apply(&mut writer, watcher::Event::InitDone);
        assert!(copy.is_synced());
        assert_eq!(
            copy.get("ns", "a"),
            known(&[("eks.amazonaws.com/token-expiration", "3600")])
        );
        assert_eq!(copy.get("other", "a"), ServiceAccountInfo::Unknown);

        copy.apply(&mut writer, watcher::Event::Apply(sa("ns", "b", &[])));
        assert_eq!(copy.get("ns", "b"), known(&[]));
        copy.apply(&mut writer, watcher::Event::Delete(sa("ns", "a", &[])));
        assert_eq!(copy.get("ns", "a"), ServiceAccountInfo::Unknown);
        assert_eq!(copy.len(), 1);
    }

    #[test]
    fn a_relist_drops_what_was_deleted_while_disconnected() {
        let (copy, mut writer) = ServiceAccounts::new();
        copy.apply(&mut writer, watcher::Event::Init);
        copy.apply(
            &mut writer,
            watcher::Event::InitApply(sa("ns", "gone", &[])),
        );
        copy.apply(&mut writer, watcher::Event::InitDone);
        copy.apply(&mut writer, watcher::Event::Init);
        copy.apply(&mut writer, watcher::Event::InitApply(sa("ns", "new", &[])));
        // The old copy serves until the new list is complete.
        assert_eq!(copy.get("ns", "gone"), known(&[]));
        copy.apply(&mut writer, watcher::Event::InitDone);
        assert_eq!(copy.get("ns", "gone"), ServiceAccountInfo::Unknown);
        assert_eq!(copy.get("ns", "new"), known(&[]));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_returns_when_the_watch_delivers() {
        let (copy, mut writer) = ServiceAccounts::new();
        copy.apply(&mut writer, watcher::Event::Init);
        copy.apply(&mut writer, watcher::Event::InitDone);
        let waiter = {
            let copy = Arc::clone(&copy);
            tokio::spawn(async move { copy.wait_for("ns", "late", Duration::from_secs(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // An unrelated event wakes the waiter, which looks again and keeps waiting.
        copy.apply(&mut writer, watcher::Event::Apply(sa("ns", "other", &[])));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        copy.apply(
            &mut writer,
            watcher::Event::Apply(sa(
                "ns",
                "late",
                &[("eks.amazonaws.com/sts-regional-endpoints", "true")],
            )),
        );
        assert_eq!(
            waiter.await.unwrap(),
            known(&[("eks.amazonaws.com/sts-regional-endpoints", "true")])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_gives_up_after_the_grace_period() {
        let (copy, _writer) = ServiceAccounts::new();
        let start = tokio::time::Instant::now();
        let info = copy
            .wait_for("ns", "never", Duration::from_millis(250))
            .await;
        assert_eq!(info, ServiceAccountInfo::Unknown);
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
