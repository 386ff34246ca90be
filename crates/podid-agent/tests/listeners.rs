//! Listener binding, probes and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Fake, config, start};
use podid_agent::{Agent, Error};

#[tokio::test]
async fn unassignable_ipv6_address_is_tolerated_and_reported() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.bind_hosts = vec![
        "127.0.0.1".parse().unwrap(),
        "fd00:ec2::99".parse().unwrap(),
    ];
    let agent = start(cfg).await;
    assert_eq!(agent.started_addrs.len(), 1);
    assert_eq!(agent.failures.len(), 1);
    assert_eq!(
        agent.failures[0].address.to_string(),
        format!("[fd00:ec2::99]:{}", 0)
    );

    let (status, _, body) = agent.get(&fake.token("ns", "sa", "p1")).await;
    assert_eq!(status, 200, "{body}");

    let response = agent
        .http
        .get(format!("{}/readyz", agent.probe))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_eq!(report["status"], "ok");
    assert_eq!(
        report["bound"][0]["address"],
        agent.started_addrs[0].to_string()
    );
    assert_eq!(report["bound"][0]["serving"], true);
    assert_eq!(report["failed"][0]["address"], "[fd00:ec2::99]:0");
    assert!(!report["failed"][0]["error"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn probes_answer_on_both_probe_and_metrics_listeners() {
    let fake = Fake::start().await;
    let agent = start(config(vec![fake.url.clone()])).await;
    for url in [
        format!("{}/healthz", agent.probe),
        format!("{}/readyz", agent.probe),
        format!("{}/healthz", agent.metrics),
    ] {
        let response = agent.http.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
    }
    let response = agent
        .http
        .get(format!("{}/other", agent.probe))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn unbindable_ipv4_address_is_fatal() {
    let fake = Fake::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.port = taken.local_addr().unwrap().port();
    let err = Agent::start(cfg).await.unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
}

#[tokio::test]
async fn invalid_config_is_refused_before_binding() {
    let fake = Fake::start().await;
    let mut cfg = config(vec![fake.url.clone()]);
    cfg.cluster_name = "../etc".into();
    assert!(matches!(
        Agent::start(cfg).await.unwrap_err(),
        Error::InvalidConfig(_)
    ));
}

#[tokio::test]
async fn serve_until_returns_after_shutdown() {
    let fake = Fake::start().await;
    let started = Agent::start(config(vec![fake.url.clone()])).await.unwrap();
    let addr = started.credential_addrs[0];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(started.serve_until(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok());
}
