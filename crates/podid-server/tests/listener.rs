//! Issue 10, item 5: the server's listener closes silent, half-sent and idle connections
//! (HTTP/1 and h2c), refuses connections over its cap, and counts each in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podid_server::{
    AdminKey, BoundServer, ConnectionLimits, IssuingMode, ServerOptions, ServiceConfig,
};
use podid_store::envelope::{Kek, KekSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_millis(600);

struct Running {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start(max_connections: u32) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let backend = podid_store::open(&format!("sqlite:{}", dir.path().join("podid.db").display()))
        .await
        .unwrap();
    let server = BoundServer::bind(ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        service: ServiceConfig::new("us-east-1", "000000000000"),
        backend,
        admin_key: AdminKey::generate().unwrap(),
        keks: Arc::new(KekSet::new(Kek::generate().unwrap(), Vec::new()).unwrap()),
        issuing: IssuingMode::Local,
        connections: ConnectionLimits {
            header_read_timeout: HEADER,
            idle_timeout: IDLE,
            tls_handshake_timeout: HEADER,
            max_connections: NonZeroU32::new(max_connections).unwrap(),
            max_connections_per_client: None,
        },
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.serve(std::future::pending()));
    Running { addr, _dir: dir }
}

/// One HTTP/1.1 GET; returns the body.
async fn get(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: podid\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
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

async fn metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    get(&mut stream, "/metrics").await
}

async fn assert_metric(addr: SocketAddr, line: &str) {
    let text = metrics(addr).await;
    assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
}

/// Reads until the server closes the connection; how long that took, and what was read.
async fn read_to_close(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("the server should have closed the connection")
        {
            Ok(0) | Err(_) => return (start.elapsed(), all),
            Ok(n) => all.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn silent_and_half_sent_http1_connections_are_closed_after_the_header_timeout() {
    let server = start(100).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    for stream in [&mut silent, &mut half] {
        let (after, bytes) = read_to_close(stream).await;
        assert!(
            bytes.is_empty() && after < HEADER * 5,
            "{after:?} {bytes:?}"
        );
    }
    assert_metric(
        server.addr,
        r#"podid_server_connection_timeouts_total{listener="api",phase="header"} 2"#,
    )
    .await;
}

#[tokio::test]
async fn an_idle_http1_connection_is_closed_after_the_idle_timeout() {
    let server = start(100).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut stream, "/healthz").await, "ok");
    tokio::time::sleep(HEADER * 2).await;
    assert_eq!(get(&mut stream, "/healthz").await, "ok");
    let (after, bytes) = read_to_close(&mut stream).await;
    assert!(bytes.is_empty(), "{bytes:?}");
    assert!(after >= IDLE - Duration::from_millis(50), "{after:?}");
    assert_metric(
        server.addr,
        r#"podid_server_connection_timeouts_total{listener="api",phase="idle"} 1"#,
    )
    .await;
}

/// An h2 frame: 24-bit length, type, flags, stream id.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frame types in `bytes`, in order.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

const GOAWAY: u8 = 0x7;
const HEADERS: u8 = 0x1;

#[tokio::test]
async fn an_idle_h2c_connection_gets_goaway_after_the_idle_timeout() {
    let server = start(100).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[])); // SETTINGS, empty
    // GET /healthz, HPACK: :method GET (static 2), :scheme http (6), :path literal (name 4),
    // :authority literal (name 1). END_STREAM | END_HEADERS.
    let mut block = vec![0x82, 0x86, 0x04, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 5]);
    block.extend_from_slice(b"podid");
    hello.extend(frame(HEADERS, 0x5, 1, &block));
    stream.write_all(&hello).await.unwrap();
    let start = Instant::now();
    let (after, bytes) = read_to_close(&mut stream).await;
    let types = frame_types(&bytes);
    assert!(types.contains(&HEADERS), "no response: {types:?}");
    // hyper's graceful close: GOAWAY (and a PING this raw client never answers, so the
    // listener drops the connection after its close grace).
    assert!(types.contains(&GOAWAY), "{types:?}");
    assert!(after >= IDLE - Duration::from_millis(50), "{after:?}");
    assert!(start.elapsed() < IDLE * 4, "{after:?}");
    assert_metric(
        server.addr,
        r#"podid_server_connection_timeouts_total{listener="api",phase="idle"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn a_silent_h2c_connection_is_closed_after_the_header_timeout() {
    let server = start(100).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    stream.write_all(&hello).await.unwrap();
    let (after, _) = read_to_close(&mut stream).await;
    assert!(after < HEADER * 5, "{after:?}");
    assert_metric(
        server.addr,
        r#"podid_server_connection_timeouts_total{listener="api",phase="header"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_until_one_is_freed() {
    let server = start(2).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut first, "/healthz").await, "ok");
    assert_eq!(get(&mut second, "/healthz").await, "ok");
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let (after, bytes) = read_to_close(&mut third).await;
    assert!(bytes.is_empty() && after < HEADER, "{after:?}");
    drop(first);
    // The freed slot serves /metrics, which shows the refusal.
    let text = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            let request = b"GET /metrics HTTP/1.1\r\nHost: podid\r\n\r\n";
            if stream.write_all(request).await.is_ok() {
                let (_, bytes) = read_to_close_or_response(&mut stream).await;
                if !bytes.is_empty() {
                    return String::from_utf8(bytes).unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a freed slot admits a new connection");
    assert!(
        text.contains(r#"podid_server_connections_refused_total{listener="api",reason="limit"}"#),
        "{text}"
    );
    assert_eq!(get(&mut second, "/healthz").await, "ok");
}

/// Reads what arrives within 300 ms (a response), or until close.
async fn read_to_close_or_response(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await
    {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
    }
    (start.elapsed(), all)
}
