//! The accept loop ([`serve`], [`serve_tls`]) and each connection's task: admission, the TLS
//! handshake deadline, hyper-util's HTTP/1 (and, with the `http2` feature, h2) connection, and
//! the watchdog that enforces the header-read and idle deadlines.
//!
//! The deadlines are ours rather than hyper's: hyper's HTTP/1 `header_read_timeout` restarts
//! whenever a keep-alive connection goes idle (so it would cap idleness at the header timeout),
//! hyper-util's protocol detection reads the first bytes with no deadline at all, and hyper's
//! h2 server has no idle timeout. One watchdog covers HTTP/1, h2c and TLS alike.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::activity::{Activity, InFlight, Phase};
use crate::admission::Bounds;

/// After the idle deadline, how long a graceful close may take (an h2 GOAWAY exchange, or an
/// HTTP/1 response the client is not reading) before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept error that is not about one connection (EMFILE, ENFILE: wait for
/// descriptors to be freed instead of spinning).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` over plain TCP on `listener` until `shutdown` resolves, then stops
/// accepting, closes idle connections and returns when every connection has finished (callers
/// bound the drain with their own timeout). Dropping the future drops every connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    shutdown: impl Future<Output = ()>,
) {
    run(listener, router, bounds, Transport::Plain, shutdown).await;
}

/// [`serve`] over TLS: each handshake must finish within the limits' TLS handshake timeout.
#[cfg(feature = "tls")]
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    run(listener, router, bounds, Transport::Tls(acceptor), shutdown).await;
}

#[derive(Clone)]
enum Transport {
    Plain,
    #[cfg(feature = "tls")]
    Tls(tokio_rustls::TlsAcceptor),
}

async fn run(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    // Our watchdog owns the header deadline (module doc); without a timer hyper's would be off
    // anyway, this says so.
    builder.http1().header_read_timeout(None);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let permit = match bounds.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                tracing::debug!(client.addr = %peer, ?refusal, "connection refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            builder: Arc::clone(&builder),
            bounds: bounds.clone(),
            peer,
            stop: stop_rx.clone(),
            secure: false,
        };
        let transport = transport.clone();
        connections.spawn(async move {
            connection.run(stream, transport).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    // A client that gave up before accept: nothing to wait for.
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Whether the request arrived over TLS: a request extension every handler can read (IAM's
/// `aws:SecureTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureTransport(pub bool);

/// One admitted connection.
struct Connection {
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    bounds: Bounds,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    /// Set once the TLS handshake is done.
    secure: bool,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, transport: Transport) {
        match transport {
            Transport::Plain => self.serve(stream).await,
            #[cfg(feature = "tls")]
            Transport::Tls(acceptor) => {
                let deadline = self.bounds.limits().tls_handshake_timeout;
                match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        self.secure = true;
                        self.serve(tls).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, client.addr = %self.peer, "TLS handshake failed");
                    }
                    Err(_) => {
                        self.bounds.stats().timed_out(Phase::TlsHandshake);
                        tracing::debug!(client.addr = %self.peer, "TLS handshake timed out");
                    }
                }
            }
        }
    }

    /// Serves HTTP on `io` until the client closes, a deadline passes or shutdown drains it.
    async fn serve<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = *self.bounds.limits();
        let activity = Activity::new();
        let service = Tracked {
            inner: TowerToHyperService::new(self.router.clone()),
            peer: self.peer,
            secure: SecureTransport(self.secure),
            activity: Arc::clone(&activity),
        };
        let mut conn = pin!(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
        );
        let mut expired = pin!(activity.expired(limits.header_read_timeout, limits.idle_timeout));
        // Set once the connection has been asked to close after its idle deadline.
        let mut drop_at: Option<Instant> = None;
        let mut stopping = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, client.addr = %self.peer, "connection ended with an error");
                    }
                    return;
                }
                phase = expired.as_mut(), if drop_at.is_none() => {
                    self.bounds.stats().timed_out(phase);
                    tracing::debug!(client.addr = %self.peer, ?phase, "connection deadline passed");
                    if phase == Phase::Header {
                        // No request ever came: nothing to close gracefully.
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    drop_at = Some(Instant::now() + CLOSE_GRACE);
                }
                () = sleep_until(drop_at) => return,
                _ = self.stop.wait_for(|stop| *stop), if !stopping => {
                    conn.as_mut().graceful_shutdown();
                    stopping = true;
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The router as a hyper service that tells the connection's [`Activity`] when each request
/// starts and is answered, and gives handlers the client address (`ConnectInfo<SocketAddr>`,
/// as `axum::serve` with connect info did) and whether it came over TLS ([`SecureTransport`]).
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    secure: SecureTransport,
    activity: Arc<Activity>,
}

impl hyper::service::Service<http::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.secure);
        TrackedFuture {
            inner: self.inner.call(request),
            _in_flight: in_flight,
        }
    }
}

/// A request's response, holding its [`InFlight`] mark until the response head is ready.
struct TrackedFuture {
    inner: TowerToHyperServiceFuture<Router, http::Request<Incoming>>,
    _in_flight: InFlight,
}

impl Future for TrackedFuture {
    type Output = Result<axum::response::Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
