//! The listener: TLS configuration, the default deadlines and connection caps, and the drain
//! deadline at shutdown. The accept loop itself (plain HTTP or TLS, HTTP/1.1 and h2c/h2,
//! connection caps, header-read, idle and handshake deadlines) is podid-listener's.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use podid_listener::{Bounds, Limits};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Default deadlines and caps (`podid server` flags; issue 10, item 5). Request headers are
/// limited to hyper's default of 100.
pub const DEFAULT_CONNECTION_LIMITS: Limits = Limits {
    // SDKs send a request's head at once; 5 s stops slowloris without troubling slow links.
    header_read_timeout: Duration::from_secs(5),
    // Above the 90 s idle timeout of Go's, reqwest's (the agent's) and client-go's pools, so
    // that clients close idle connections first and never reuse one the server is closing.
    idle_timeout: Duration::from_secs(120),
    tls_handshake_timeout: Duration::from_secs(10),
    max_connections: match NonZeroU32::new(10_000) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    },
    // Off: every agent of a cluster may reach the server through one load-balancer address.
    max_connections_per_client: None,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM {what}")]
    Empty { path: String, what: &'static str },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds a TLS acceptor from PEM certificate-chain and private-key files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: cert.display().to_string(),
            what: "certificates",
        });
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty {
            path: key.display().to_string(),
            what: "private key",
        })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open connections for up
/// to [`DRAIN_TIMEOUT`].
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    // Shutdown starts the drain inside the loop; the drain's own deadline starts with it.
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopped_tx.send(());
    };
    let serving = async move {
        match tls {
            Some(acceptor) => {
                podid_listener::serve_tls(listener, router, bounds, acceptor, shutdown).await;
            }
            None => podid_listener::serve(listener, router, bounds, shutdown).await,
        }
    };
    tokio::pin!(serving);
    tokio::select! {
        () = &mut serving => return,
        _ = stopped_rx => {}
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, serving).await.is_err() {
        tracing::warn!("some connections did not finish within the drain timeout");
    }
}

/// The address a listener is bound to, for logs.
pub(crate) fn describe(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
