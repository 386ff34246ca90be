//! `/v1/credentials` wire behaviour against the reference agent's texts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{Fake, Mode, config, start};
use podid_token::MintRequest;

const TEXT: &str = "text/plain; charset=utf-8";

#[tokio::test]
async fn wrong_host_is_403_with_the_reference_text() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let response = agent
        .http
        .get(format!("{}/v1/credentials", agent.base))
        .header("host", "evil.example:80")
        .header("authorization", fake.token("ns", "sa", "p1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(response.headers()["content-type"], TEXT);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.text().await.unwrap(),
        "Access Denied. Called agent through invalid address, please use either \
         [169.254.170.23 fd00:ec2::23 127.0.0.1] address not evil.example\n"
    );
    assert_eq!(fake.calls(), 0);

    // `localhost` is accepted on a loopback agent, though the text does not advertise it.
    let port = agent.started_addrs[0].port();
    for host in [format!("localhost:{port}"), "169.254.170.23".to_owned()] {
        let response = agent
            .http
            .get(format!("{}/v1/credentials", agent.base))
            .header("host", &host)
            .header("authorization", fake.token("ns", "sa", "p1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{host}");
    }
}

#[tokio::test]
async fn bearer_prefixes_and_malformed_headers_are_refused_locally() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    let bearer = format!("Bearer {token}");
    let bad_header = format!(
        "{}.{}",
        "bm90IGpzb24", // base64url("not json")
        token.split_once('.').unwrap().1
    );
    let refusals = [
        (bearer, "header is not base64url or too long"),
        (bad_header, "header is not a JSON object"),
    ];
    async fn all_refused(agent: &common::TestAgent, refusals: &[(String, &str)]) {
        for (token, why) in refusals {
            let expected =
                format!("Service account token cannot be parsed: token is malformed: {why}\n");
            assert_eq!(agent.get(token).await, (400, TEXT.to_owned(), expected));
        }
    }
    all_refused(&agent, &refusals).await;
    assert_eq!(fake.calls(), 0, "refused before any upstream call");

    // The same token without the prefix is served, and caching it lends the prefixed form nothing.
    assert_eq!(agent.get(&token).await.0, 200);
    assert_eq!(fake.calls(), 1);
    all_refused(&agent, &refusals).await;
    assert_eq!(fake.calls(), 1);
    let metrics = agent.metrics_text().await;
    assert!(
        metrics.contains("pod_identity_http_response_total{code=\"400\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_tokens_are_400_with_the_reference_texts() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;

    let response = agent
        .http
        .get(format!("{}/v1/credentials", agent.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.text().await.unwrap(),
        "Service account token cannot be empty\n"
    );

    let (status, content_type, body) = agent.get("not-a-jwt").await;
    assert_eq!((status, content_type.as_str()), (400, TEXT));
    assert!(
        body.starts_with("Service account token cannot be parsed: token is malformed"),
        "{body}"
    );
    assert!(body.ends_with('\n'));

    let (status, _, body) = agent.get(&"a.b.c".repeat(5000)).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Service account token cannot be parsed: "),
        "{body}"
    );

    let expired = common::mint(&fake.signer, "ns", "sa", "p1", common::now() - 100_000);
    assert_eq!(
        agent.get(&expired).await,
        (
            400,
            TEXT.to_owned(),
            "Service account token failed basic claim validations: token is expired\n".to_owned()
        )
    );

    let mut future = MintRequest::new(common::ISSUER, "ns", "sa", common::now() + 3600);
    future.pod_name = Some("p".into());
    let future = fake.signer.mint(&future).unwrap();
    assert_eq!(
        agent.get(&future).await.2,
        "Service account token failed basic claim validations: token is not valid yet\n"
    );
    assert_eq!(fake.calls(), 0, "refused tokens never reach EKS Auth");
}

#[tokio::test]
async fn success_is_compact_json_in_reference_order() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    let (status, content_type, body) = agent.get(&token).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let prefix = r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"secret","Token":"session","AccountId":"123456789012","Expiration":""#;
    assert!(body.starts_with(prefix), "{body}");
    let expiration = body
        .strip_prefix(prefix)
        .unwrap()
        .strip_suffix("\"}")
        .unwrap();
    let parsed =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        expiration.ends_with('Z') && !expiration.contains('.'),
        "{expiration}"
    );
    assert!(parsed.unix_timestamp() > common::now() + 5 * 3600);

    // The upstream request: signed, token in the body, node name sent.
    let sent = fake.state.last_body.lock().clone().unwrap();
    assert_eq!(sent["token"], token.as_str());
    assert_eq!(sent["eksNodeName"], "node-1");
    let authorization = fake.state.last_authorization.lock().clone().unwrap();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDNODE/"),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-east-1/eks-auth/aws4_request"),
        "{authorization}"
    );
}

#[tokio::test]
async fn upstream_errors_are_passed_through() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let cases = [
        (400, "InvalidTokenException", "client", 1),
        (404, "ResourceNotFoundException", "client", 1),
        (429, "ThrottlingException", "client", 3),
        (500, "InternalServerException", "server", 3),
    ];
    for (i, (status, code, fault, attempts)) in cases.into_iter().enumerate() {
        fake.set_mode(Mode::Error {
            status,
            code,
            message: "upstream says no",
        });
        let before = fake.calls();
        let token = fake.token("ns", "sa", &format!("pod-{i}"));
        let (got, content_type, body) = agent.get(&token).await;
        let n = fake.calls();
        assert_eq!((got, content_type.as_str()), (status, TEXT), "{code}");
        assert_eq!(
            body,
            format!("[req-{n}]: ({code}): upstream says no, fault: {fault}\n")
        );
        assert_eq!(n - before, attempts, "{code}: attempts");
    }
}

#[tokio::test]
async fn credentials_about_to_expire_are_refused() {
    let fake = Fake::start().await;
    fake.set_mode(Mode::Ok {
        lifetime: Duration::from_secs(10),
    });
    let agent = start(config(vec![fake.url.clone()])).await;
    let (status, _, body) = agent.get(&fake.token("ns", "sa", "p1")).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "fetched credentials are expired or will expire within the next 15 seconds\n"
    );
}

#[tokio::test]
async fn other_paths_are_404_and_the_limiter_answers_429() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.rate_limit.per_second = NonZeroU32::new(1).unwrap();
    cfg.rate_limit.burst = NonZeroU32::new(3).unwrap();
    let agent = start(cfg).await;
    let mut statuses = Vec::new();
    for path in [
        "/",
        "/v1/credentials/x",
        "/metrics",
        "/v1",
        "/x",
        "/y",
        "/z",
    ] {
        let response = agent
            .http
            .get(format!("{}{path}", agent.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        match status {
            404 => assert_eq!(body, "404 page not found\n"),
            429 => assert_eq!(body, "Too Many Requests\n"),
            other => panic!("{path}: {other}"),
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[404, 404, 404]);
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn failover_to_the_second_endpoint() {
    let fake = Fake::start().await;
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let agent = start(config(vec![dead.parse().unwrap(), fake.url.clone()])).await;
    let (status, _, body) = agent.get(&fake.token("ns", "sa", "p1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn metrics_use_the_reference_names() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let token = fake.token("ns", "sa", "p1");
    agent.get(&token).await;
    agent.get(&token).await;
    agent.get("").await;
    let text = agent.metrics_text().await;
    for needle in [
        "pod_identity_http_response_total{code=\"200\"} 2",
        "pod_identity_http_response_total{code=\"400\"} 1",
        "pod_identity_cache_state_total{state=\"miss\"} 1",
        "pod_identity_cache_state_total{state=\"hit\"} 1",
        "pod_identity_upstream_calls_total{result=\"success\"} 1",
        "pod_identity_cache_size 1",
        "pod_identity_request_duration_seconds_count 3",
        "pod_identity_cache_state_total{state=\"evicted\"} 0",
        "pod_identity_local_validation_total{result=\"skipped\"} 0",
        "pod_identity_upstream_duration_seconds_count 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// Sends `head` (request line and headers, without the final blank line) over a fresh
/// connection and returns the status code and body.
async fn raw(addr: std::net::SocketAddr, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_second_host_header_or_an_absolute_target_cannot_pass_the_host_check() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let addr = agent.started_addrs[0];
    let token = fake.token("ns", "sa", "p1");

    // The good value first, then another: refused as Go's net/http refuses it.
    for hosts in [
        "Host: 169.254.170.23\r\nHost: evil.example",
        "Host: evil.example\r\nHost: 169.254.170.23",
        "Host: 169.254.170.23\r\nHost: 169.254.170.23",
    ] {
        let (status, body) = raw(
            addr,
            &format!("GET /v1/credentials HTTP/1.1\r\n{hosts}\r\nAuthorization: {token}"),
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (400, "400 Bad Request: too many Host headers"),
            "{hosts}"
        );
    }

    // An absolute-form target names the host, whatever the Host header says.
    let (status, body) = raw(
        addr,
        &format!(
            "GET http://evil.example/v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {token}"
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.ends_with("address not evil.example\n"), "{body}");
    let (status, _) = raw(
        addr,
        &format!(
            "GET http://169.254.170.23/v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\nAuthorization: {token}"
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn an_http11_request_without_host_is_refused_as_go_refuses_it() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    let addr = agent.started_addrs[0];
    let token = fake.token("ns", "sa", "p1");
    let (status, body) = raw(
        addr,
        &format!("GET /v1/credentials HTTP/1.1\r\nAuthorization: {token}"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "400 Bad Request: missing required Host header")
    );
    // HTTP/1.0 may omit Host: it then meets the host check with an empty host.
    let (status, body) = raw(
        addr,
        &format!("GET /v1/credentials HTTP/1.0\r\nAuthorization: {token}"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.ends_with("address not \n"), "{body}");
    assert_eq!(fake.calls(), 0);
}
