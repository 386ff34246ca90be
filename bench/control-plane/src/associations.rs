//! Issue 2: create many associations in one cluster through the EKS API, then list them all.

use std::time::Instant;

use serde_json::{Value, json};

use crate::BenchError;
use crate::client::Client;
use crate::drive;

/// Service accounts per namespace (100,000 associations = 100 namespaces x 1,000 accounts).
const PER_NAMESPACE: usize = 1000;

#[derive(Debug)]
pub struct Params {
    pub cluster: String,
    pub count: usize,
    pub concurrency: usize,
    /// Send a `clientRequestToken` as the AWS SDKs and CLI do (they fill it in automatically).
    pub client_token: bool,
}

pub async fn run(admin: &Client, p: &Params) -> Result<(), BenchError> {
    admin
        .register_cluster(
            &p.cluster,
            &format!("https://oidc.bench.example/{}", p.cluster),
            json!({ "keys": [] }),
        )
        .await?;
    let role = "bench-assoc-role";
    admin
        .create_role(role, &crate::issuance::pod_trust_policy())
        .await?;
    let role_arn = format!("arn:aws:iam::000000000000:role/{role}");
    println!(
        "create: {} associations in cluster {} with {} in flight (clientRequestToken: {})",
        p.count, p.cluster, p.concurrency, p.client_token
    );
    let path = format!("/clusters/{}/pod-identity-associations", p.cluster);
    let client = admin.clone();
    let with_token = p.client_token;
    let created = drive::run(p.count, p.concurrency, move |i| {
        let client = client.clone();
        let path = path.clone();
        let mut body = json!({
            "namespace": format!("ns-{}", i / PER_NAMESPACE),
            "serviceAccount": format!("sa-{}", i % PER_NAMESPACE),
            "roleArn": role_arn,
        });
        if with_token && let Some(o) = body.as_object_mut() {
            o.insert(
                "clientRequestToken".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        async move {
            let payload = serde_json::to_vec(&body).unwrap_or_default();
            client
                .send("POST", &path, "eks", "application/json", payload)
                .await
        }
    })
    .await;
    println!("{}", created.summary("create"));
    list_all(admin, &p.cluster, created.ok()).await
}

/// Lists every association of `cluster` in pages of 100, one request at a time.
async fn list_all(admin: &Client, cluster: &str, expected: usize) -> Result<(), BenchError> {
    let started = Instant::now();
    let mut token: Option<String> = None;
    let mut pages = 0usize;
    let mut seen = 0usize;
    let mut lat = Vec::new();
    loop {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("maxResults", "100");
        if let Some(t) = &token {
            query.append_pair("nextToken", t);
        }
        let path = format!(
            "/clusters/{cluster}/pod-identity-associations?{}",
            query.finish()
        );
        let r = admin
            .send("GET", &path, "eks", "application/json", Vec::new())
            .await?;
        if r.status != 200 {
            return Err(BenchError::new(format!(
                "list page {pages}: HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        lat.push(r.micros);
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|e| BenchError::new(e.to_string()))?;
        pages += 1;
        seen += v
            .get("associations")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        token = v
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let elapsed = started.elapsed();
    lat.sort_unstable();
    let q = |q: f64| {
        let last = lat.len().saturating_sub(1);
        lat.get(((last as f64) * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "list: {seen} associations (expected {expected}) in {pages} pages of 100, sequential, in {:.2} s = {:.0} pages/s; page latency p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        pages as f64 / elapsed.as_secs_f64(),
        q(0.5),
        q(0.99),
    );
    if seen != expected {
        return Err(BenchError::new(
            "the listing did not return every association",
        ));
    }
    Ok(())
}
