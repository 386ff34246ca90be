//! Starting and stopping the agent: binding the credential, probe and metrics listeners, then
//! serving them (through podid-listener's bounded accept loop) with the background JWKS and
//! refresh tasks until shutdown.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderValue, header};
use podid_listener::{Bounds, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Error;
use crate::cache::CredentialCache;
use crate::config::{AgentConfig, nz};
use crate::handler::{self, CredentialService};
use crate::keys::ClusterKeyStore;
use crate::metrics::Metrics;
use crate::probe::{self, ProbeState};
use crate::ratelimit::{self, TokenBucket};
use crate::upstream::{self, EksAuth};

/// How long in-flight requests may finish after shutdown is requested (the reference waits up
/// to 35 s; the DaemonSet's grace period is 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// Open connections at most on the probe and on the metrics listener: kubelet probes and a
/// Prometheus scrape each hold one or two.
const ADMIN_MAX_CONNECTIONS: NonZeroU32 = nz(128);
/// Per client on the metrics listener, which pods can reach (0.0.0.0:2705). Not on the probe
/// listener: every client of 127.0.0.1 is the node itself.
const ADMIN_MAX_PER_CLIENT: Option<NonZeroU32> = Some(nz(16));

/// Entry point: [`Agent::start`] binds, [`StartedAgent::serve_until`] serves.
#[derive(Debug)]
pub struct Agent;

/// A credential listener address that could not be bound (tolerated for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindFailure {
    /// The address.
    pub address: SocketAddr,
    /// The OS error text.
    pub error: String,
}

/// A bound, not yet serving agent. Connections queue until [`StartedAgent::serve_until`].
#[derive(Debug)]
pub struct StartedAgent {
    /// Bound credential listeners (actual ports when the config said 0).
    pub credential_addrs: Vec<SocketAddr>,
    /// Credential addresses that failed to bind (IPv6 only; IPv4 failures are fatal).
    pub bind_failures: Vec<BindFailure>,
    /// The probe listener (127.0.0.1).
    pub probe_addr: SocketAddr,
    /// The metrics listener.
    pub metrics_addr: SocketAddr,
    servers: Vec<(TcpListener, Router, Bounds)>,
    keys: Arc<ClusterKeyStore>,
    cache: Arc<CredentialCache>,
    refresh_limiter: TokenBucket,
}

/// Start the agent and serve until `shutdown` completes.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    Agent::start(config).await?.serve_until(shutdown).await
}

impl Agent {
    /// Validate `config`, build the shared cache and clients, and bind every listener. An IPv6
    /// credential address that cannot be bound (IPv6 disabled, address not assigned) is logged
    /// and reported by the readiness probe instead of failing the agent (reference issue #16).
    pub async fn start(config: AgentConfig) -> Result<StartedAgent, Error> {
        config.validate()?;
        let http = upstream::http_client(&config)?;
        let metrics = Arc::new(Metrics::new());
        let upstream = Arc::new(EksAuth::new(&config, http.clone(), Arc::clone(&metrics))?);
        let keys = Arc::new(ClusterKeyStore::new(&config, http));
        let cache = Arc::new(CredentialCache::new(
            &config,
            upstream,
            Arc::clone(&keys),
            Arc::clone(&metrics),
        ));

        let mut credential_listeners = Vec::new();
        let mut bind_failures = Vec::new();
        for ip in &config.bind_hosts {
            let addr = SocketAddr::new(*ip, config.port);
            match TcpListener::bind(addr).await {
                Ok(listener) => credential_listeners.push(listener),
                Err(source) if ip.is_ipv6() => {
                    tracing::warn!(bind_addr = %addr, error = %source, "cannot bind IPv6 credential address; serving without it");
                    bind_failures.push(BindFailure {
                        address: addr,
                        error: source.to_string(),
                    });
                }
                Err(source) => return Err(Error::Bind { addr, source }),
            }
        }
        if credential_listeners.is_empty() {
            return Err(Error::NoListener);
        }
        let credential_addrs = credential_listeners
            .iter()
            .map(|l| {
                l.local_addr().map_err(|source| Error::Bind {
                    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (hosts, hosts_display) = CredentialService::hosts_for(&config.bind_hosts);
        let service = Arc::new(CredentialService {
            cache: Arc::clone(&cache),
            metrics: Arc::clone(&metrics),
            hosts,
            hosts_display,
        });

        let mut servers = Vec::new();
        // One `Bounds` for both addresses: the caps count a node's descriptors, not a family's.
        let credential_bounds = Bounds::new(config.connections, &metrics.listeners, "credentials");
        for listener in credential_listeners {
            let bucket = Arc::new(TokenBucket::new(
                config.rate_limit.per_second.get(),
                config.rate_limit.burst.get(),
            ));
            let router = Router::new()
                .route("/v1/credentials", any(handler::credentials))
                .fallback(handler::not_found)
                .with_state(Arc::clone(&service))
                .layer(middleware::from_fn_with_state(bucket, ratelimit::limit));
            servers.push((listener, router, credential_bounds.clone()));
        }

        let probe_state = Arc::new(ProbeState {
            bound: credential_addrs.clone(),
            failed: bind_failures.clone(),
        });
        let probe_listener = bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            config.probe_port,
        ))
        .await?;
        let probe_addr = local_addr(&probe_listener)?;
        let probe_bounds = Bounds::new(
            admin_limits(&config.connections, None),
            &metrics.listeners,
            "probe",
        );
        servers.push((probe_listener, probe_router(&probe_state), probe_bounds));

        let metrics_listener =
            bind(SocketAddr::new(config.metrics_address, config.metrics_port)).await?;
        let metrics_addr = local_addr(&metrics_listener)?;
        let metrics_router = Router::new()
            .route("/metrics", get(encode_metrics))
            .with_state((Arc::clone(&metrics), Arc::clone(&cache)))
            .merge(probe_router(&probe_state));
        let metrics_bounds = Bounds::new(
            admin_limits(&config.connections, ADMIN_MAX_PER_CLIENT),
            &metrics.listeners,
            "metrics",
        );
        servers.push((metrics_listener, metrics_router, metrics_bounds));

        tracing::info!(
            cluster_name = %config.cluster_name,
            credential_addrs = ?credential_addrs,
            probe_addr = %probe_addr,
            metrics_addr = %metrics_addr,
            caching = config.caching_enabled(),
            "podid agent listening"
        );
        Ok(StartedAgent {
            credential_addrs,
            bind_failures,
            probe_addr,
            metrics_addr,
            servers,
            keys,
            cache,
            refresh_limiter: TokenBucket::new(
                config.max_service_qps.get(),
                config.max_service_qps.get(),
            ),
        })
    }
}

impl StartedAgent {
    /// Serve every listener and run the background tasks until `shutdown` completes (or a
    /// listener fails), then drain in-flight requests for up to 25 s.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut servers = JoinSet::new();
        for (listener, router, bounds) in self.servers {
            let mut stop = stop_rx.clone();
            servers.spawn(async move {
                podid_listener::serve(listener, router, bounds, async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await;
                Ok(())
            });
        }
        let mut background = JoinSet::new();
        background.spawn(Arc::clone(&self.keys).run());
        background.spawn(Arc::clone(&self.cache).run_refresh(self.refresh_limiter));

        let mut outcome = Ok(());
        tokio::select! {
            () = shutdown => tracing::info!("shutting down podid agent"),
            Some(joined) = servers.join_next() => {
                outcome = flatten(joined);
                tracing::error!("a listener stopped; shutting down podid agent");
            }
        }
        let _ = stop_tx.send(true);
        let drain = async {
            while let Some(joined) = servers.join_next().await {
                if let Err(e) = flatten(joined) {
                    tracing::warn!(error = %e, "listener failed while draining");
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("in-flight requests did not finish in time; closing them");
        }
        background.shutdown().await;
        outcome
    }
}

/// The credential listeners' deadlines with the probe and metrics listeners' small caps.
fn admin_limits(credentials: &Limits, per_client: Option<NonZeroU32>) -> Limits {
    let max_connections = credentials.max_connections.min(ADMIN_MAX_CONNECTIONS);
    Limits {
        max_connections,
        max_connections_per_client: per_client.map(|cap| cap.min(max_connections)),
        ..*credentials
    }
}

fn probe_router(state: &Arc<ProbeState>) -> Router {
    Router::new()
        .route("/healthz", get(probe::probe))
        .route("/readyz", get(probe::probe))
        .fallback(handler::not_found)
        .with_state(Arc::clone(state))
}

async fn encode_metrics(
    State((metrics, cache)): State<(Arc<Metrics>, Arc<CredentialCache>)>,
) -> Response {
    metrics
        .cache_size
        .set(i64::try_from(cache.len().await).unwrap_or(i64::MAX));
    let mut response = metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        source,
    })
}

fn flatten(joined: Result<Result<(), Error>, tokio::task::JoinError>) -> Result<(), Error> {
    joined.unwrap_or_else(|e| {
        Err(Error::Serve {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            source: std::io::Error::other(e),
        })
    })
}
