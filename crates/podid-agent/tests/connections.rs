//! Issue 10, item 5: the credential listener's deadlines and caps, on the real agent over raw
//! TCP. One pod (client IP) at its cap must not stop another pod from being served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::{Fake, TestAgent, config, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SHORT: Duration = Duration::from_millis(200);

fn addr(agent: &TestAgent) -> SocketAddr {
    agent.started_addrs[0]
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends a credential request and returns the response's status line and body.
async fn credentials(stream: &mut TcpStream, token: &str) -> (String, String) {
    let request = format!(
        "GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
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
            let status = head.lines().next().unwrap().to_owned();
            return (status, body.to_owned());
        }
    }
}

/// Waits until the agent closes `stream`; how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
        .await
        .expect("the agent should have closed the connection")
    {
        Ok(0) | Err(_) => start.elapsed(),
        Ok(n) => panic!("unexpected bytes: {:?}", &chunk[..n]),
    }
}

async fn assert_metric(agent: &TestAgent, line: &str) {
    let text = agent.metrics_text().await;
    assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
}

#[tokio::test]
async fn half_open_connections_are_closed_after_the_header_timeout() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.connections.header_read_timeout = SHORT;
    let agent = start(cfg).await;
    let start = Instant::now();
    let mut streams = Vec::new();
    for i in 0..50 {
        let mut stream = TcpStream::connect(addr(&agent)).await.unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"GET /v1/credentials HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        streams.push(stream);
    }
    for stream in &mut streams {
        closed_after(stream).await;
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= SHORT - Duration::from_millis(20) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_metric(
        &agent,
        r#"pod_identity_connection_timeouts_total{listener="credentials",phase="header"} 50"#,
    )
    .await;
    assert_metric(
        &agent,
        r#"pod_identity_connections_open{listener="credentials"} 0"#,
    )
    .await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.connections.header_read_timeout = SHORT;
    cfg.connections.idle_timeout = SHORT * 3;
    let agent = start(cfg).await;
    let token = fake.token("ns", "sa", "p1");
    let mut stream = TcpStream::connect(addr(&agent)).await.unwrap();
    assert_eq!(credentials(&mut stream, &token).await.0, "HTTP/1.1 200 OK");
    // Idle for longer than the header timeout: the connection is kept and still serves.
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(credentials(&mut stream, &token).await.0, "HTTP/1.1 200 OK");
    let after = closed_after(&mut stream).await;
    assert!(after >= SHORT * 3 - Duration::from_millis(50), "{after:?}");
    assert_metric(
        &agent,
        r#"pod_identity_connection_timeouts_total{listener="credentials",phase="idle"} 1"#,
    )
    .await;
}

#[tokio::test]
async fn one_pod_at_its_cap_does_not_starve_another_pod() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.connections.max_connections_per_client = NonZeroU32::new(3);
    let agent = start(cfg).await;
    // Pod A (127.0.0.2) holds three half-open connections: its cap.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", addr(&agent)).await);
    }
    let mut over = connect_from("127.0.0.2", addr(&agent)).await;
    let after = closed_after(&mut over).await;
    assert!(after < Duration::from_secs(1), "{after:?}");

    // Pod B (127.0.0.3) is served.
    let mut other = connect_from("127.0.0.3", addr(&agent)).await;
    let (status, body) = credentials(&mut other, &fake.token("ns", "sa", "p2")).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("AccessKeyId"), "{body}");
    assert_metric(
        &agent,
        r#"pod_identity_connections_refused_total{listener="credentials",reason="per_client_limit"} 1"#,
    )
    .await;
    assert_metric(
        &agent,
        r#"pod_identity_connections_open{listener="credentials"} 4"#,
    )
    .await;
}

#[tokio::test]
async fn the_connection_over_the_global_cap_is_closed_and_counted() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.connections.max_connections = NonZeroU32::new(2).unwrap();
    cfg.connections.max_connections_per_client = None;
    let agent = start(cfg).await;
    let mut first = TcpStream::connect(addr(&agent)).await.unwrap();
    let _second = TcpStream::connect(addr(&agent)).await.unwrap();
    let token = fake.token("ns", "sa", "p1");
    assert_eq!(credentials(&mut first, &token).await.0, "HTTP/1.1 200 OK");
    let mut third = TcpStream::connect(addr(&agent)).await.unwrap();
    closed_after(&mut third).await;
    assert_metric(
        &agent,
        r#"pod_identity_connections_refused_total{listener="credentials",reason="limit"} 1"#,
    )
    .await;
    // The probe and metrics listeners have their own caps.
    assert_metric(
        &agent,
        r#"pod_identity_connections_refused_total{listener="metrics",reason="limit"} 0"#,
    )
    .await;
}
