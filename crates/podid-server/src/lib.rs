//! The podid control plane: one HTTP listener serving every AWS API podid speaks.
//!
//! Owns: request authentication (SigV4), routing by path / `X-Amz-Target` / `Action`, the EKS
//! association API, the podid admin API, the in-memory indexes followed from the store, and the
//! accept loop. Does not own: the wire codecs (`podid-aws`), record validation (`podid-model`),
//! persistence (`podid-store`), or command-line parsing (the `podid` binary builds [`ServerOptions`]).
#![forbid(unsafe_code)]

mod admin;
pub mod auth;
mod eks;
mod follow;
mod json;
mod keys;
mod registry;
pub mod serve;
mod state;
mod writes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use podid_store::Store;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use auth::{AdminKey, AdminOnly, Caller, CredentialResolver};
pub use state::ServiceConfig;

use crate::follow::Follower;
use crate::registry::{AssociationIndex, ClusterIndex, Registry};
use crate::state::AppState;

/// Everything the server needs, already validated by the binary.
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    pub service: ServiceConfig,
    pub store: Arc<dyn Store>,
    pub credentials: Arc<dyn CredentialResolver>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("loading state from the store: {0}")]
    Store(#[from] podid_store::Error),
}

/// A server whose listener is bound and whose indexes are loaded, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl BoundServer {
    /// Loads the indexes from the store and binds the listener.
    pub async fn bind(options: ServerOptions) -> Result<Self, Error> {
        let registry = Arc::new(Registry::default());
        let follower = Follower::start(
            options.store.clone(),
            vec![Arc::new(ClusterIndex(registry.clone())), Arc::new(AssociationIndex(registry.clone()))],
        )
        .await?;
        let state = Arc::new(AppState {
            config: options.service,
            store: options.store,
            registry,
            follower,
            credentials: options.credentials,
        });
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind { addr: options.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr: options.listen, source })?;
        Ok(Self { listener, router: router(state), tls: options.tls, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(address = %serve::describe(self.local_addr, self.tls.is_some()), "podid server listening");
        serve::serve(self.listener, self.router, self.tls, shutdown).await;
        tracing::info!("podid server stopped");
    }
}

fn router(state: Arc<AppState>) -> Router {
    let authenticated = Router::new()
        .merge(eks::router())
        .merge(admin::router())
        .fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .merge(authenticated)
}

async fn unknown_operation(request: axum::extract::Request) -> axum::response::Response {
    let protocol = request.extensions().get::<auth::RequestInfo>().map_or(podid_aws::Protocol::RestJson, |i| i.protocol);
    let error = podid_aws::AwsError::new(
        "UnknownOperationException",
        404,
        format!("podid does not implement {} {}", request.method(), request.uri().path()),
    );
    auth::respond(error, protocol, "")
}
