//! The podid control plane: one HTTP listener serving every AWS API podid speaks.
//!
//! Owns: the EKS association API, EKS Auth, local IAM and STS, CloudTrail `LookupEvents` over the
//! audit trail, podid's admin API, and what they stand on. Five layers, each a folder, each
//! importing only from the layers below it (a unit test, `layers.rs`, enforces this):
//!
//! ```text
//! edge      listener, TLS, timeouts, SigV4 authentication, routing by protocol (one place)
//! api       eks, eks_auth, iam, sts, cloudtrail, admin: handlers and typed wire.rs shapes
//! protocol  query/XML, rest-json, JSON 1.1 codecs; one exhaustive error mapping each
//! domain    callers, IAM model and index, authorization, the one assume path, writes, audit
//! state     in-memory indexes fed by the store's change feed
//! ```
//!
//! A request flows down once (edge → api → protocol/domain → state) and its answer back up.
//! `protocol` sits beside `domain`: codecs know the domain's refusal types (to word them) and
//! nothing else. Does not own: SigV4 and the AWS error encodings (`podid-aws`), record validation
//! (`podid-model`), persistence (`podid-store`), policy evaluation (`podid-iam`), token checks
//! (`podid-token`), session sealing (`podid-issuer`), or command-line parsing (the `podid`
//! binary builds [`ServerOptions`]).
#![forbid(unsafe_code)]

mod api;
mod domain;
mod edge;
mod protocol;
mod state;

#[cfg(test)]
mod layers;

/// Entry points for `cargo bench` only, behind the `bench-support` feature: not part of the
/// crate's API.
#[cfg(feature = "bench-support")]
#[doc(hidden)]
pub use state::bench_support;

/// Entry points for the fuzz targets in `fuzz/` only, behind the `fuzzing` feature: not part of
/// the crate's API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use api::fuzzing;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use podid_store::Backend;
use podid_store::envelope::KekSet;
use prometheus_client::registry::Registry as MetricsRegistry;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use api::ServiceConfig;
pub use edge::admin_key::{AdminKey, AdminKeyError};
pub use edge::listener::{DEFAULT_CONNECTION_LIMITS, TlsError, tls_acceptor};
pub use podid_listener::Limits as ConnectionLimits;

use crate::api::ApiState;
use crate::domain::assume::{Issuer, LocalAuthority, StsAuthority};
use crate::domain::audit::Audit;
use crate::domain::credentials::ServerCredentials;
use crate::domain::iam::{Iam, IamIndex};
use crate::domain::keyring::{self, KeyRingIndex};
use crate::domain::secrets::{self, Secrets};
use crate::domain::verifiers::Verifiers;
use crate::edge::authenticate::Authenticator;
use crate::state::{AssociationIndex, ClusterIndex, Follower, Registry, StoreHandle};
use podid_aws::sigv4::SigningKeyCache;

/// Everything the server needs, already validated by the binary.
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    pub service: ServiceConfig,
    pub backend: Backend,
    /// The bootstrap administrator key (becomes IAM user `podid-admin` with AdministratorAccess).
    pub admin_key: AdminKey,
    /// The key-encryption keys that seal secret records at rest (access keys, the sealing key
    /// ring): the current one seals, previous ones only open until the start-up pass re-wraps.
    pub keks: Arc<KekSet>,
    /// Who issues Pod Identity credentials.
    pub issuing: IssuingMode,
    /// The listener's deadlines and connection caps.
    pub connections: ConnectionLimits,
}

/// The issuing mode: podid as the IAM/STS authority, or upstream STS.
#[derive(Debug, Clone)]
pub enum IssuingMode {
    /// podid mints sealed temporary credentials for roles in its own IAM.
    Local,
    /// Upstream STS `AssumeRole` for each request, behind the quota protections of
    /// [`podid_issuer::sts::StsIssuer`].
    Sts {
        issuer: Arc<podid_issuer::sts::StsIssuer>,
        /// `DurationSeconds` of the association role's session.
        duration: std::time::Duration,
    },
}

impl IssuingMode {
    /// `local` or `sts`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Sts { .. } => "sts",
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .field("service", &self.service)
            .field("keks", &self.keks)
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
    /// A stored secret does not open with the configured KEKs, or could not be sealed.
    #[error("secrets at rest: {0}")]
    SecretsAtRest(String),
    #[error("loading the credential sealing keys: {0}")]
    Issuing(String),
    #[error("creating the administrator user: {0}")]
    Bootstrap(String),
}

/// A server whose listener is bound and whose indexes are loaded, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    bounds: podid_listener::Bounds,
    router: axum::Router,
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

/// The start-up pass of [`secrets::prepare`], logged: refuses to start when a stored secret does
/// not open with the configured KEKs.
async fn seal_at_rest(
    store: &dyn podid_store::Store,
    secrets: &Secrets,
    keks: &KekSet,
) -> Result<(), Error> {
    let prepared = secrets::prepare(store, secrets)
        .await
        .map_err(|e| Error::SecretsAtRest(e.to_string()))?;
    if prepared.sealed > 0 {
        tracing::info!(records = prepared.sealed, kek = %keks.current_id(), "sealed plaintext secret records from an older database");
    }
    if prepared.rewrapped > 0 {
        tracing::info!(records = prepared.rewrapped, kek = %keks.current_id(), "re-wrapped secret records under the current KEK; previous KEKs are no longer needed");
    }
    tracing::info!(
        kek = %keks.current_id(),
        previous = keks.previous_ids().len(),
        secret_records = prepared.sealed + prepared.rewrapped + prepared.unchanged,
        "secrets at rest sealed under the current KEK"
    );
    Ok(())
}

impl BoundServer {
    /// Loads the indexes from the store and binds the listener.
    pub async fn bind(options: ServerOptions) -> Result<Self, Error> {
        let store = options.backend.store.clone();
        let registry = Arc::new(Registry::default());
        let iam = Arc::new(Iam::default());
        let secrets = Secrets::new(options.keks.clone());
        seal_at_rest(store.as_ref(), &secrets, &options.keks).await?;
        let local_issuer = keyring::load_issuer(store.as_ref(), &secrets)
            .await
            .map_err(|e| Error::Issuing(e.to_string()))?;
        let follower = Follower::start(
            store.clone(),
            vec![
                Arc::new(ClusterIndex(registry.clone())),
                Arc::new(AssociationIndex(registry.clone())),
                Arc::new(IamIndex(iam.clone(), secrets.clone())),
                Arc::new(KeyRingIndex(local_issuer.clone(), secrets.clone())),
            ],
        )
        .await?;
        keyring::spawn_rotation(store.clone(), local_issuer.clone(), secrets.clone());
        let service = options.service;
        let authenticator = Arc::new(Authenticator {
            credentials: Arc::new(ServerCredentials {
                iam: iam.clone(),
                issuer: local_issuer.clone(),
                account_id: service.account_id.clone(),
            }),
            region: service.region.clone(),
            signing_keys: SigningKeyCache::default(),
        });
        let mut metrics = MetricsRegistry::default();
        let listener_metrics = podid_listener::ListenerMetrics::new();
        listener_metrics.register(metrics.sub_registry_with_prefix("podid_server"));
        let bounds = podid_listener::Bounds::new(options.connections, &listener_metrics, "api");
        let issuer: Arc<dyn Issuer> = match options.issuing {
            IssuingMode::Local => Arc::new(LocalAuthority {
                iam: iam.clone(),
                issuer: local_issuer,
                account_id: service.account_id.clone(),
                max_credential_duration: service.max_credential_duration,
            }),
            IssuingMode::Sts { issuer, duration } => {
                issuer
                    .metrics()
                    .register(metrics.sub_registry_with_prefix("podid_sts"));
                Arc::new(StsAuthority {
                    sts: issuer,
                    duration,
                })
            }
        };
        let metrics = Arc::new(metrics);
        let state = Arc::new(ApiState {
            issuer,
            store: StoreHandle::new(store, follower),
            registry,
            iam,
            secrets,
            verifiers: Verifiers::new(service.jwks_egress.clone()),
            audit: Audit::start(
                options.backend.audit.clone(),
                service.audit_retention,
                service.audit_file.clone(),
            ),
            audit_log: options.backend.audit.clone(),
            config: service,
        });
        api::iam::ensure_admin_user(
            &state,
            &options.admin_key.access_key_id,
            options.admin_key.secret(),
        )
        .await
        .map_err(|e| Error::Bootstrap(e.into_aws().message))?;
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
            bounds,
            router: edge::router(state, authenticator, metrics),
            tls: options.tls,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(address = %edge::listener::describe(self.local_addr, self.tls.is_some()), "podid server listening");
        edge::listener::serve(self.listener, self.router, self.bounds, self.tls, shutdown).await;
        tracing::info!("podid server stopped");
    }
}
