//! Starting and serving the webhook: the HTTPS listener (`POST /mutate`, `/healthz`,
//! `/readyz`), the plain metrics listener, the association sync and certificate reload tasks.
//!
//! Both listeners run podid-listener's bounded accept loop (TLS handshake, header-read and idle
//! deadlines, connection caps, with their metrics).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use podid_listener::{Bounds, Limits};
use std::num::NonZeroU32;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::associations::{AssociationSet, Associations, Readiness};
use crate::config::ServiceAccountSource;
use crate::metrics::Metrics;
use crate::review::{Admission, MutationConfig, Outcome, ReviewError, admit};
use crate::service_accounts::{ServiceAccountInfo, ServiceAccounts};
use crate::sync::EksLister;
use crate::tls::ReloadingCert;
use crate::{Error, WebhookConfig};

/// Largest review body read. The kube-apiserver caps a request at 3 MiB and a pod object far
/// below that (etcd's 1.5 MiB value limit); a review holds one pod. Larger bodies get 413.
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;
/// The whole body must arrive within this; the kube-apiserver's own webhook timeout is 10 s
/// at most (`timeoutSeconds`).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most on the metrics listener (a Prometheus scrape and kubelet probes
/// hold one or two), and per client.
const METRICS_MAX_CONNECTIONS: NonZeroU32 = match NonZeroU32::new(128) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};
const METRICS_MAX_PER_CLIENT: Option<NonZeroU32> = NonZeroU32::new(16);
/// The reference's 415 text (`pkg/handler/handler.go`).
const WRONG_CONTENT_TYPE: &str = "Invalid Content-Type, expected `application/json`";

/// Entry point: [`Webhook::start`] binds, [`StartedWebhook::serve_until`] serves.
#[derive(Debug)]
pub struct Webhook;

/// A bound, not yet serving webhook.
pub struct StartedWebhook {
    /// The HTTPS listener's address (the actual port when the config said 0).
    pub addr: SocketAddr,
    /// The metrics listener's address, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The association copy admissions read (exposed for tests and status).
    pub associations: Arc<Associations>,
    /// The watched service accounts, when a source is configured.
    pub service_accounts: Option<Arc<ServiceAccounts>>,
    service_account_watch: Option<ServiceAccountWatch>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    metrics_router: Router,
    acceptor: TlsAcceptor,
    bounds: Bounds,
    metrics_bounds: Bounds,
    cert: Arc<ReloadingCert>,
    lister: Arc<EksLister>,
    metrics: Arc<Metrics>,
    sync_interval: Duration,
    tls_reload_interval: Duration,
}

impl std::fmt::Debug for StartedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedWebhook")
            .field("addr", &self.addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

/// What the service-account watch task needs, kept from `start` to `serve_until`.
struct ServiceAccountWatch {
    writer: ServiceAccountWriter,
    client: kube::Client,
}

type ServiceAccountWriter = kube::runtime::reflector::store::Writer<
    kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::ServiceAccount>,
>;

#[derive(Debug)]
struct AppState {
    associations: Arc<Associations>,
    /// With how long an admission may wait for a service account the watch has not delivered.
    service_accounts: Option<(Arc<ServiceAccounts>, Duration)>,
    mutation: MutationConfig,
    metrics: Arc<Metrics>,
}

impl AppState {
    fn service_account(&self, namespace: &str, name: &str) -> ServiceAccountInfo {
        match &self.service_accounts {
            Some((copy, _)) => copy.get(namespace, name),
            None => ServiceAccountInfo::NotWatched,
        }
    }

    /// Decides a review; when the pod's service account is not in the watched copy yet, waits
    /// up to the grace period for the watch to deliver it and decides again.
    async fn admit(
        &self,
        body: &[u8],
        snapshot: &AssociationSet,
    ) -> Result<Admission, ReviewError> {
        let lookup = |ns: &str, sa: &str| self.service_account(ns, sa);
        let admission = admit(body, snapshot, &lookup, &self.mutation)?;
        let (Some((ns, sa)), Some((copy, grace))) =
            (&admission.service_account_unknown, &self.service_accounts)
        else {
            return Ok(admission);
        };
        if grace.is_zero() || copy.wait_for(ns, sa, *grace).await == ServiceAccountInfo::Unknown {
            self.metrics.service_account_unknown.inc();
            return Ok(admission);
        }
        let again = admit(body, snapshot, &lookup, &self.mutation)?;
        if again.service_account_unknown.is_some() {
            self.metrics.service_account_unknown.inc();
        }
        Ok(again)
    }
}

impl Webhook {
    /// Validates `config`, loads the certificate, and binds the listeners.
    pub async fn start(config: WebhookConfig) -> Result<StartedWebhook, Error> {
        config.validate()?;
        let cert = ReloadingCert::load(config.tls_cert_file.clone(), config.tls_key_file.clone())?;
        let acceptor = cert.acceptor()?;
        let ca_bundle = match &config.ca_bundle {
            Some(path) => Some(std::fs::read(path).map_err(|source| Error::CaBundle {
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        };
        let lister = Arc::new(EksLister::new(
            &config.endpoint,
            &config.cluster_name,
            config.region.clone(),
            config.credentials.clone(),
            ca_bundle.as_deref(),
        )?);
        let associations = Arc::new(Associations::new(config.max_staleness));
        let metrics = Arc::new(Metrics::new());
        let (service_accounts, service_account_watch, grace) = match config.service_accounts {
            ServiceAccountSource::Off => (None, None, Duration::ZERO),
            ServiceAccountSource::Watch { kube, grace } => {
                let client = kube::Client::try_from(*kube).map_err(Error::Kube)?;
                let (copy, writer) = ServiceAccounts::new();
                (
                    Some(copy),
                    Some(ServiceAccountWatch { writer, client }),
                    grace,
                )
            }
        };
        let state = Arc::new(AppState {
            associations: Arc::clone(&associations),
            service_accounts: service_accounts.as_ref().map(|c| (Arc::clone(c), grace)),
            mutation: config.mutation.clone(),
            metrics: Arc::clone(&metrics),
        });
        let bounds = Bounds::new(config.connections, &metrics.listeners, "https");
        let metrics_bounds = Bounds::new(
            metrics_limits(&config.connections),
            &metrics.listeners,
            "metrics",
        );
        let listener = bind(config.listen).await?;
        let addr = local_addr(&listener, config.listen)?;
        let (metrics_listener, metrics_addr) = match config.metrics_listen {
            Some(a) => {
                let l = bind(a).await?;
                let bound = local_addr(&l, a)?;
                (Some(l), Some(bound))
            }
            None => (None, None),
        };
        Ok(StartedWebhook {
            addr,
            metrics_addr,
            associations,
            service_accounts,
            service_account_watch,
            listener,
            metrics_listener,
            router: router(Arc::clone(&state)),
            metrics_router: metrics_router(state),
            acceptor,
            bounds,
            metrics_bounds,
            cert,
            lister,
            metrics,
            sync_interval: config.sync_interval,
            tls_reload_interval: config.tls_reload_interval,
        })
    }
}

impl StartedWebhook {
    /// Syncs associations, reloads the certificate and serves until `shutdown` completes.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut tasks = JoinSet::new();
        if let (Some(copy), Some(watch)) = (&self.service_accounts, self.service_account_watch) {
            tasks.spawn(Arc::clone(copy).watch(
                watch.writer,
                watch.client,
                Arc::clone(&self.metrics),
            ));
        }
        tasks.spawn(crate::sync::run(
            self.lister,
            Arc::clone(&self.associations),
            self.metrics,
            self.sync_interval,
        ));
        tasks.spawn(Arc::clone(&self.cert).watch(self.tls_reload_interval));
        if let Some(listener) = self.metrics_listener {
            tasks.spawn(podid_listener::serve(
                listener,
                self.metrics_router,
                self.metrics_bounds,
                std::future::pending(),
            ));
        }
        tasks.spawn(podid_listener::serve_tls(
            self.listener,
            self.router,
            self.bounds,
            self.acceptor,
            std::future::pending(),
        ));
        shutdown.await;
        tracing::info!("shutting down podid webhook");
        // In-flight admissions are short (no network); dropping them is safe because the API
        // server applies the failure policy to an interrupted call.
        tasks.shutdown().await;
        Ok(())
    }
}

/// The HTTPS routes.
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The plain-HTTP routes: metrics, and the probes again for kubelets that probe over HTTP.
fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(encode_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn mutate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if !is_json(request.headers().get(header::CONTENT_TYPE)) {
        state.metrics.admission(Outcome::Error);
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, WRONG_CONTENT_TYPE).into_response();
    }
    let body = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(request.into_body(), MAX_REVIEW_BYTES),
    )
    .await;
    let body = match body {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            state.metrics.admission(Outcome::Error);
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the review is larger than {MAX_REVIEW_BYTES} bytes or was cut off"),
            )
                .into_response();
        }
        Err(_) => {
            state.metrics.admission(Outcome::Error);
            return (StatusCode::REQUEST_TIMEOUT, "the review arrived too slowly").into_response();
        }
    };
    let snapshot = state.associations.snapshot();
    match state.admit(&body, &snapshot).await {
        Ok(admission) => {
            state.metrics.admission(admission.outcome);
            tracing::debug!(
                request_uid = %admission.uid,
                namespace = admission.namespace.as_deref().unwrap_or_default(),
                service_account = admission.service_account.as_deref().unwrap_or_default(),
                outcome = admission.outcome.as_str(),
                "admission"
            );
            let mut response = Response::new(Body::from(admission.body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            state.metrics.admission(Outcome::Error);
            tracing::warn!(%error, "refused a malformed admission review");
            let status = match error {
                ReviewError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ReviewError::Malformed(_)
                | ReviewError::Unsupported { .. }
                | ReviewError::NoRequest => StatusCode::BAD_REQUEST,
            };
            (status, error.to_string()).into_response()
        }
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`), in any case.
fn is_json(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The reference's health body.
async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.associations.readiness(Instant::now()) {
        Readiness::Ready => match &state.service_accounts {
            Some((copy, _)) if !copy.is_synced() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service accounts not listed yet",
            )
                .into_response(),
            _ => "ok".into_response(),
        },
        Readiness::NeverSynced => (
            StatusCode::SERVICE_UNAVAILABLE,
            "associations not synced yet",
        )
            .into_response(),
        Readiness::Stale { since_success } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "associations are stale: last good sync {}s ago",
                since_success.as_secs()
            ),
        )
            .into_response(),
    }
}

async fn encode_metrics(State(state): State<Arc<AppState>>) -> Response {
    let age = state
        .associations
        .since_success(Instant::now())
        .map_or(-1.0, |d| d.as_secs_f64());
    state.metrics.last_sync_age.set(age);
    match state.metrics.encode() {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The HTTPS listener's deadlines with the metrics listener's small caps.
fn metrics_limits(https: &Limits) -> Limits {
    let max_connections = https.max_connections.min(METRICS_MAX_CONNECTIONS);
    Limits {
        max_connections,
        max_connections_per_client: METRICS_MAX_PER_CLIENT.map(|cap| cap.min(max_connections)),
        ..*https
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, wanted: SocketAddr) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: wanted,
        source,
    })
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMeta;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::expiration::Jitter;

    fn state(grace: Duration) -> (AppState, Arc<ServiceAccounts>, ServiceAccountWriter) {
        let (copy, writer) = ServiceAccounts::new();
        let state = AppState {
            associations: Arc::new(Associations::new(Duration::from_secs(60))),
            service_accounts: Some((Arc::clone(&copy), grace)),
            mutation: MutationConfig {
                full_uri: crate::FULL_URI_IPV4.to_owned(),
                aws_default_region: None,
                regional_sts: false,
                token_expiration: 86_400,
                jitter: Jitter::Fixed(80_000),
            },
            metrics: Arc::new(Metrics::new()),
        };
        (state, copy, writer)
    }

    fn account(expiration: &str) -> PartialObjectMeta<k8s_openapi::api::core::v1::ServiceAccount> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("default".into()),
                annotations: Some(
                    [(
                        crate::TOKEN_EXPIRATION_ANNOTATION.to_owned(),
                        expiration.to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn review() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1", "operation": "CREATE", "namespace": "default",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"serviceAccountName": "app",
                                    "containers": [{"name": "c", "image": "i"}]}}
            }
        }))
        .unwrap()
    }

    /// The projected token lifetime in the admission's patch.
    fn expiration(admission: &Admission) -> i64 {
        let body: serde_json::Value = serde_json::from_slice(&admission.body).unwrap();
        let patch = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            body["response"]["patch"].as_str().unwrap(),
        )
        .unwrap();
        let patch: serde_json::Value = serde_json::from_slice(&patch).unwrap();
        patch
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["path"] == "/spec/volumes")
            .unwrap()["value"][0]["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"]
            .as_i64()
            .unwrap()
    }

    fn associated() -> AssociationSet {
        AssociationSet::new([("default".to_owned(), "app".to_owned())])
    }

    #[tokio::test(start_paused = true)]
    async fn an_admission_waits_for_a_service_account_the_watch_delivers_late() {
        let (state, copy, mut writer) = state(Duration::from_millis(200));
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            copy.apply(&mut writer, Event::Apply(account("3600")));
            writer
        });
        let admission = state.admit(&review(), &associated()).await.unwrap();
        assert_eq!(admission.service_account_unknown, None);
        assert_eq!(expiration(&admission), 3600);
        assert_eq!(state.metrics.service_account_unknown.get(), 0);
        drop(late.await);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_grace_period_defaults_apply_with_a_warning() {
        let (state, _copy, _writer) = state(Duration::from_millis(200));
        let start = tokio::time::Instant::now();
        let admission = state.admit(&review(), &associated()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert!(admission.service_account_unknown.is_some());
        assert_eq!(expiration(&admission), 80_000);
        let body: serde_json::Value = serde_json::from_slice(&admission.body).unwrap();
        assert!(
            body["response"]["warnings"][0]
                .as_str()
                .unwrap()
                .contains("default/app is not known")
        );
        assert_eq!(state.metrics.service_account_unknown.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn pods_without_an_association_never_wait() {
        let (state, _copy, _writer) = state(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let admission = state
            .admit(&review(), &AssociationSet::default())
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(admission.outcome, Outcome::Untouched);
    }
}
