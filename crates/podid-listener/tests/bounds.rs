//! The real accept loop on loopback, spoken to over raw TCP: header-read and idle deadlines,
//! the global and per-client caps, and the metrics of each refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use podid_listener::{Bounds, Limits, ListenerMetrics};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HEADER: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_millis(500);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

struct Server {
    addr: SocketAddr,
    metrics: ListenerMetrics,
}

impl Server {
    async fn start(max: u32, per_client: Option<u32>) -> Self {
        let limits = Limits {
            header_read_timeout: HEADER,
            idle_timeout: IDLE,
            tls_handshake_timeout: HEADER,
            max_connections: NonZeroU32::new(max).unwrap(),
            max_connections_per_client: per_client.and_then(NonZeroU32::new),
        };
        let metrics = ListenerMetrics::new();
        let bounds = Bounds::new(limits, &metrics, "test");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The handler answers with the client's address, proving ConnectInfo reaches handlers.
        let router = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        tokio::spawn(podid_listener::serve(
            listener,
            router,
            bounds,
            std::future::pending(),
        ));
        Self { addr, metrics }
    }

    fn metrics(&self) -> String {
        let mut registry = Registry::with_prefix("t");
        self.metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    fn assert_metric(&self, line: &str) {
        let text = self.metrics();
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    async fn connect_from(&self, source: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(self.addr).await.unwrap()
    }
}

/// Sends one request and reads its whole response (the body is the client's IP).
async fn request(stream: &mut TcpStream) -> String {
    stream.write_all(REQUEST).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("content-length")
                .parse()
                .unwrap();
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return body.to_owned();
            }
        }
    }
}

/// Waits for the server to close `stream` (EOF or reset), returning how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
        .await
        .expect("the server should have closed the connection")
    {
        Ok(0) | Err(_) => start.elapsed(),
        Ok(n) => panic!("unexpected bytes: {:?}", &chunk[..n]),
    }
}

#[tokio::test]
async fn silent_and_half_header_connections_are_closed_after_the_header_timeout() {
    let server = Server::start(100, None).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    for stream in [&mut silent, &mut half] {
        let after = closed_after(stream).await;
        assert!(after < HEADER * 5, "closed after {after:?}");
    }
    server.assert_metric(r#"t_connection_timeouts_total{listener="test",phase="header"} 2"#);
    server.assert_metric(r#"t_connections_open{listener="test"} 0"#);
}

#[tokio::test]
async fn header_timeout_runs_from_the_connection_start() {
    let server = Server::start(100, None).await;
    let start = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    closed_after(&mut silent).await;
    let after = start.elapsed();
    assert!(after >= HEADER - Duration::from_millis(20), "{after:?}");
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(100, None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(request(&mut stream).await, "127.0.0.1");
    // Longer than the header timeout, shorter than the idle one: still open, and served.
    tokio::time::sleep(HEADER * 2).await;
    assert_eq!(request(&mut stream).await, "127.0.0.1");
    let after = closed_after(&mut stream).await;
    assert!(
        after >= IDLE - Duration::from_millis(50) && after < IDLE * 4,
        "closed {after:?} after the last response"
    );
    server.assert_metric(r#"t_connection_timeouts_total{listener="test",phase="idle"} 1"#);
    server.assert_metric(r#"t_connection_timeouts_total{listener="test",phase="header"} 0"#);
}

#[tokio::test]
async fn the_connection_over_the_limit_is_closed_until_one_is_freed() {
    let server = Server::start(2, None).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    request(&mut first).await;
    request(&mut second).await;
    server.assert_metric(r#"t_connections_open{listener="test"} 2"#);

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let after = closed_after(&mut third).await;
    assert!(
        after < HEADER,
        "refused at once, not after a deadline: {after:?}"
    );
    server.assert_metric(r#"t_connections_refused_total{listener="test",reason="limit"} 1"#);

    drop(first);
    let served = async {
        loop {
            let mut next = TcpStream::connect(server.addr).await.unwrap();
            if next.write_all(REQUEST).await.is_ok() {
                let mut byte = [0u8; 1];
                if matches!(next.read(&mut byte).await, Ok(1)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .expect("a freed slot admits a new connection");
    request(&mut second).await;
}

#[tokio::test]
async fn one_client_at_its_cap_does_not_stop_another_client() {
    let server = Server::start(100, Some(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = server.connect_from("127.0.0.2").await;
        assert_eq!(request(&mut stream).await, "127.0.0.2");
        held.push(stream);
    }
    let mut over = server.connect_from("127.0.0.2").await;
    closed_after(&mut over).await;
    server.assert_metric(
        r#"t_connections_refused_total{listener="test",reason="per_client_limit"} 1"#,
    );

    let mut other = server.connect_from("127.0.0.3").await;
    assert_eq!(request(&mut other).await, "127.0.0.3");
    for stream in &mut held {
        assert_eq!(request(stream).await, "127.0.0.2");
    }
    server.assert_metric(r#"t_connections_refused_total{listener="test",reason="limit"} 0"#);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        tls_handshake_timeout: Duration::from_secs(30),
        max_connections: NonZeroU32::new(10).unwrap(),
        max_connections_per_client: None,
    };
    let metrics = ListenerMetrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(podid_listener::serve(
        listener,
        Router::new().route("/", get(|| async { "ok" })),
        Bounds::new(limits, &metrics, "test"),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(REQUEST).await.unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await.unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("drained in time")
        .unwrap();
}
