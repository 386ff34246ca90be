//! `/healthz` and `/readyz`: like the reference, check that every bound credential listener
//! answers `GET /` with 404 (a 429 from its rate limiter also proves it is serving); unlike the
//! reference, the body says what is bound and what failed to bind, as JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::BindFailure;

/// Per-listener deadline for the self-check (the kubelet probe timeout is 10 s).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the probes report on.
#[derive(Debug)]
pub(crate) struct ProbeState {
    pub(crate) bound: Vec<SocketAddr>,
    pub(crate) failed: Vec<BindFailure>,
}

#[derive(Serialize)]
struct Report<'a> {
    status: &'static str,
    bound: Vec<Listener>,
    failed: Vec<Failed<'a>>,
}

#[derive(Serialize)]
struct Listener {
    address: String,
    serving: bool,
}

#[derive(Serialize)]
struct Failed<'a> {
    address: String,
    error: &'a str,
}

/// 200 when at least one listener is bound and all bound ones serve; else 503.
pub(crate) async fn probe(State(state): State<Arc<ProbeState>>) -> Response {
    let checks = futures::future::join_all(state.bound.iter().map(|addr| self_check(*addr))).await;
    let ok = !checks.is_empty() && checks.iter().all(|serving| *serving);
    let report = Report {
        status: if ok { "ok" } else { "failing" },
        bound: state
            .bound
            .iter()
            .zip(checks)
            .map(|(addr, serving)| Listener {
                address: addr.to_string(),
                serving,
            })
            .collect(),
        failed: state
            .failed
            .iter()
            .map(|f| Failed {
                address: f.address.to_string(),
                error: &f.error,
            })
            .collect(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// A raw HTTP/1.1 `GET /` (no client, so no proxy environment can intercept it).
async fn self_check(addr: SocketAddr) -> bool {
    let check = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(matches!(head.get(9..12), Some(b"404" | b"429")))
    };
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, check).await,
        Ok(Some(true))
    )
}
