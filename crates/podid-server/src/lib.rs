//! The podid control plane: one HTTP listener serving every AWS API podid speaks.
//!
//! Owns: request authentication (SigV4), routing by path / `X-Amz-Target` / `Action`, the EKS
//! association API, the podid admin API, the in-memory indexes followed from the store, and the
//! accept loop. Does not own: the wire codecs (`podid-aws`), record validation (`podid-model`),
//! persistence (`podid-store`), or command-line parsing (the `podid` binary builds [`ServerOptions`]).
#![forbid(unsafe_code)]

mod admin;
mod audit;
pub mod auth;
mod authz;
#[doc(hidden)]
pub mod bench_support;
mod cloudtrail;
mod eks;
mod eks_auth;
mod follow;
mod iam;
mod issuing;
mod json;
mod keys;
mod query;
mod registry;
pub mod serve;
mod sessions;
mod state;
mod sts;
mod verifiers;
mod writes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use podid_store::Backend;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use auth::{AdminKey, Caller, CredentialResolver};
pub use state::ServiceConfig;

use crate::follow::Follower;
use crate::registry::{AssociationIndex, ClusterIndex, Registry};
use crate::state::AppState;

/// Everything the server needs, already validated by the binary.
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    pub service: ServiceConfig,
    pub backend: Backend,
    /// The bootstrap administrator key (becomes IAM user `podid-admin` with AdministratorAccess).
    pub admin_key: AdminKey,
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
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("loading state from the store: {0}")]
    Store(#[from] podid_store::Error),
    #[error("loading the credential sealing keys: {0}")]
    Issuing(String),
    #[error("creating the administrator user: {0}")]
    Bootstrap(String),
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
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// Loads the indexes from the store and binds the listener.
    pub async fn bind(options: ServerOptions) -> Result<Self, Error> {
        let store = options.backend.store.clone();
        let registry = Arc::new(Registry::default());
        let iam = Arc::new(iam::Iam::default());
        let issuer = issuing::load_issuer(store.as_ref())
            .await
            .map_err(|e| Error::Issuing(e.to_string()))?;
        let follower = Follower::start(
            store.clone(),
            vec![
                Arc::new(ClusterIndex(registry.clone())),
                Arc::new(AssociationIndex(registry.clone())),
                Arc::new(iam::IamIndex(iam.clone())),
                Arc::new(issuing::KeyRingIndex(issuer.clone())),
            ],
        )
        .await?;
        issuing::spawn_rotation(store.clone(), issuer.clone());
        let credentials = Arc::new(auth::ServerCredentials {
            iam: iam.clone(),
            issuer: issuer.clone(),
            account_id: options.service.account_id.clone(),
        });
        let admin_key = options.admin_key;
        let state = Arc::new(AppState {
            config: options.service.clone(),
            store: options.backend.store,
            registry,
            follower,
            credentials,
            iam,
            issuer,
            verifiers: verifiers::Verifiers::default(),
            audit: audit::Audit::start(
                options.backend.audit.clone(),
                options.service.audit_retention,
                options.service.audit_file.clone(),
            ),
            audit_log: options.backend.audit.clone(),
        });
        iam::ensure_admin_user(
            &state,
            &admin_key.access_key_id,
            admin_key.secret_access_key(),
        )
        .await
        .map_err(|e| Error::Bootstrap(e.to_string()))?;
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: options.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
        Ok(Self {
            listener,
            router: router(state),
            tls: options.tls,
            local_addr,
        })
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
    let public_state = state.clone();
    let authenticated = Router::new()
        .route("/", get(query::handle).post(query::handle))
        .route(
            "/clusters/{name}/assume-role-for-pod-identity",
            axum::routing::post(eks_auth::assume_role_for_pod_identity),
        )
        .merge(eks::router())
        .merge(admin::router())
        .fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/podid/public/clusters/{name}/jwks",
            get(admin::public_jwks).with_state(public_state),
        )
        .merge(authenticated)
}

async fn unknown_operation(request: axum::extract::Request) -> axum::response::Response {
    let protocol = request
        .extensions()
        .get::<auth::RequestInfo>()
        .map_or(podid_aws::Protocol::RestJson, |i| i.protocol);
    let error = podid_aws::AwsError::new(
        "UnknownOperationException",
        404,
        format!(
            "podid does not implement {} {}",
            request.method(),
            request.uri().path()
        ),
    );
    auth::respond(error, protocol, "")
}
