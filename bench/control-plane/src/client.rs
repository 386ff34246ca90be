//! A SigV4-signing HTTP client for podid's (and moto's) APIs, plus the few IAM / admin calls
//! the benchmarks need for their setup. Every request is signed with `podid_aws::sigv4`, the
//! same code podid's own CLI and agent use.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use podid_aws::sigv4::SigningCredentials;
use serde_json::Value;

use crate::BenchError;

pub const REGION: &str = "us-east-1";

/// One endpoint and one identity.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    creds: SigningCredentials,
}

/// A response: status, body and how long the round trip took.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub micros: u64,
}

impl Client {
    pub fn new(endpoint: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .http1_only()
            .build()
            .unwrap_or_default();
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            creds: SigningCredentials {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: secret_access_key.to_owned(),
                session_token: None,
            },
        }
    }

    /// The same endpoint as another identity (sharing the connection pool).
    pub fn with_identity(&self, access_key_id: &str, secret_access_key: &str) -> Self {
        Self {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            creds: SigningCredentials {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: secret_access_key.to_owned(),
                session_token: None,
            },
        }
    }

    /// Signs (for `service`) and sends one request. The latency includes signing.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        service: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply, BenchError> {
        let started = Instant::now();
        let req = self.sign(method, path_and_query, service, content_type, body)?;
        self.send_signed(req, started).await
    }

    /// One request signed now (for `service`), to be sent later with [`Client::send_signed`]
    /// within SigV4's 15-minute window.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        service: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Bytes>, BenchError> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.endpoint))
            .header("content-type", content_type)
            .body(Bytes::from(body))
            .map_err(|e| BenchError::new(format!("building a request: {e}")))?;
        podid_aws::sigv4::sign_request(&mut req, &self.creds, REGION, service, SystemTime::now())
            .map_err(|e| BenchError::new(format!("signing: {e}")))?;
        Ok(req)
    }

    /// Sends an already signed request; the latency is measured from `started`.
    pub async fn send_signed(
        &self,
        req: http::Request<Bytes>,
        started: Instant,
    ) -> Result<Reply, BenchError> {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let req = reqwest::Request::try_from(req)
            .map_err(|e| BenchError::new(format!("converting a request: {e}")))?;
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| BenchError::new(format!("{method} {}: {e}", uri.path())))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| BenchError::new(format!("reading a body: {e}")))?;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Reply {
            status,
            body,
            micros,
        })
    }

    /// A rest-json call that must succeed; returns the parsed body.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        service: &str,
        body: &Value,
    ) -> Result<Value, BenchError> {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).map_err(|e| BenchError::new(e.to_string()))?
        };
        let r = self
            .send(method, path, service, "application/json", payload)
            .await?;
        ok(&r, method, path)?;
        serde_json::from_slice(&r.body)
            .map_err(|e| BenchError::new(format!("{method} {path}: bad JSON: {e}")))
    }

    /// A query-protocol call (IAM, STS) that must succeed; returns the XML body.
    pub async fn query(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> Result<String, BenchError> {
        let r = self
            .send(
                "POST",
                "/",
                service,
                "application/x-www-form-urlencoded; charset=utf-8",
                form(params).into_bytes(),
            )
            .await?;
        let action = params.first().map_or("", |(_, v)| *v);
        ok(&r, "POST", action)?;
        Ok(String::from_utf8_lossy(&r.body).into_owned())
    }

    /// Registers a cluster with podid's admin API.
    pub async fn register_cluster(
        &self,
        name: &str,
        issuer: &str,
        jwks: Value,
    ) -> Result<(), BenchError> {
        let body = serde_json::json!({ "name": name, "issuer": issuer, "jwks": jwks });
        self.json("POST", "/podid/v1/clusters", "podid", &body)
            .await
            .map(|_| ())
    }

    /// Creates an IAM role with this trust policy.
    pub async fn create_role(&self, name: &str, trust: &Value) -> Result<(), BenchError> {
        let trust = trust.to_string();
        self.query(
            "iam",
            &[
                ("Action", "CreateRole"),
                ("Version", "2010-05-08"),
                ("RoleName", name),
                ("AssumeRolePolicyDocument", &trust),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Creates an IAM user with one inline policy and returns a new access key pair for it.
    pub async fn create_user_with_key(
        &self,
        name: &str,
        policy: &Value,
    ) -> Result<(String, String), BenchError> {
        let policy = policy.to_string();
        let v = "2010-05-08";
        self.query(
            "iam",
            &[("Action", "CreateUser"), ("Version", v), ("UserName", name)],
        )
        .await?;
        self.query(
            "iam",
            &[
                ("Action", "PutUserPolicy"),
                ("Version", v),
                ("UserName", name),
                ("PolicyName", "bench"),
                ("PolicyDocument", &policy),
            ],
        )
        .await?;
        let xml = self
            .query(
                "iam",
                &[
                    ("Action", "CreateAccessKey"),
                    ("Version", v),
                    ("UserName", name),
                ],
            )
            .await?;
        match (
            xml_text(&xml, "AccessKeyId"),
            xml_text(&xml, "SecretAccessKey"),
        ) {
            (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
            _ => Err(BenchError::new("CreateAccessKey answered without a key")),
        }
    }
}

fn ok(r: &Reply, method: &str, what: &str) -> Result<(), BenchError> {
    if (200..300).contains(&r.status) {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&r.body);
    Err(BenchError::new(format!(
        "{method} {what}: HTTP {}: {}",
        r.status,
        body.chars().take(400).collect::<String>()
    )))
}

/// `application/x-www-form-urlencoded` of `params`.
pub fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The text of the first `<tag>…</tag>` in `xml`.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    xml.get(start..start + len)
}

/// The admin key pair from the `admin-credentials` file the server writes (AWS INI format).
pub fn read_admin_credentials(path: &str) -> Result<(String, String), BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BenchError::new(format!("reading {path}: {e}")))?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(BenchError::new(format!("{path} has no access key"))),
    }
}
