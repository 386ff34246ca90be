//! The admin commands' HTTP client: endpoint, region and credential resolution, SigV4 signing,
//! and turning AWS error responses into one readable line.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use podid_aws::sigv4::{SigningCredentials, sign_request};
use podid_server::AdminKey;
use serde_json::Value;

use crate::cli::ClientArgs;

/// Where a server runs when nothing says otherwise (`podid dev` and `podid server` defaults).
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7400";
/// Largest response body read: a full page of 100 associations is ~40 KiB; this leaves room for
/// large cluster key sets while stopping a misbehaving endpoint from filling memory.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Connection and whole-request deadlines for every call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An error answer from the server, in AWS terms.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A signed-request client for one podid endpoint.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: SigningCredentials,
}

impl Client {
    /// Resolves endpoint, region and credentials from flags, then the environment, then defaults.
    pub(crate) fn from_args(args: &ClientArgs) -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (endpoint, region) = Self::endpoint_and_region(args, env);
        let credentials = resolve_credentials(env, args.data_dir.as_deref())?;
        Self::new(&endpoint, region, credentials)
    }

    /// The endpoint and signing region from flags, then the environment, then defaults.
    pub(crate) fn endpoint_and_region(
        args: &ClientArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> (String, String) {
        let endpoint = args
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let region = args
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        (endpoint, region)
    }

    pub(crate) fn new(
        endpoint: &str,
        region: String,
        credentials: SigningCredentials,
    ) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            crate::usage!("endpoint {endpoint:?} must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            endpoint,
            region,
            credentials,
        })
    }

    /// Sends a SigV4-signed rest-json request and returns the parsed JSON answer.
    /// `path` segments must already be encoded with [`encode`].
    pub(crate) async fn call(
        &self,
        service: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut uri = format!("{}{path}", self.endpoint);
        for (i, (k, v)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(&format!("{}={}", encode(k), encode(v)));
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut builder = http::Request::builder().method(method).uri(&uri);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(payload)
            .with_context(|| format!("building a request for {uri}"))?;
        let response = self.send_signed(request, service).await?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_owned());
        let bytes = read_capped(response).await?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.with_context(|| {
                format!("the server answered {status} with a body that is not JSON")
            });
        }
        let field = |names: &[&str]| {
            json.as_ref().and_then(|j| {
                names
                    .iter()
                    .find_map(|n| j.get(*n).and_then(Value::as_str).map(str::to_owned))
            })
        };
        let code = error_type
            .or_else(|| {
                field(&["__type", "code", "Code"])
                    .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
            })
            .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = field(&["message", "Message"])
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Err(ApiError { code, message }.into())
    }

    /// Signs `request` for `service` and sends it.
    async fn send_signed(
        &self,
        mut request: http::Request<Bytes>,
        service: &str,
    ) -> anyhow::Result<reqwest::Response> {
        sign_request(
            &mut request,
            &self.credentials,
            &self.region,
            service,
            SystemTime::now(),
        )
        .context("signing the request")?;
        let request = reqwest::Request::try_from(request).context("building the HTTP request")?;
        self.http
            .execute(request)
            .await
            .map_err(|e| self.transport_error(&e))
    }

    /// Sends a SigV4-signed query-protocol request (IAM, STS: a form body `Action=...&Version=...`
    /// POSTed to `/`) and returns the XML answer; an error answer becomes an [`ApiError`].
    pub(crate) async fn query(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let body = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let uri = format!("{}/", self.endpoint);
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(Bytes::from(body))
            .with_context(|| format!("building a request for {uri}"))?;
        let response = self.send_signed(request, service).await?;
        let status = response.status();
        let text = String::from_utf8_lossy(&read_capped(response).await?).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let code = xml_text(&text, "Code").unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = xml_text(&text, "Message")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Err(ApiError { code, message }.into())
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow::anyhow!(
                "cannot connect to podid at {}: start one with `podid dev` (or `podid server`), or pass --endpoint",
                self.endpoint
            )
        } else if e.is_timeout() {
            anyhow::anyhow!("podid at {} did not answer in time", self.endpoint)
        } else {
            anyhow::anyhow!("request to podid at {} failed: {e}", self.endpoint)
        }
    }
}

/// Static keys from the environment, else the administrator key of a local data dir.
pub(crate) fn resolve_credentials(
    env: impl Fn(&str) -> Option<String>,
    data_dir: Option<&Path>,
) -> anyhow::Result<SigningCredentials> {
    if let (Some(access_key_id), Some(secret_access_key)) =
        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(SigningCredentials {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN"),
        });
    }
    let candidates: Vec<PathBuf> = match data_dir {
        Some(dir) => vec![dir.to_owned()],
        None => vec![PathBuf::from("./.podid-dev"), PathBuf::from("./podid-data")],
    };
    for dir in &candidates {
        let file = dir.join("admin-credentials");
        if file.exists() {
            let key =
                AdminKey::load(&file).with_context(|| format!("reading {}", file.display()))?;
            return Ok(SigningCredentials {
                access_key_id: key.access_key_id.clone(),
                secret_access_key: key.secret_access_key().to_owned(),
                session_token: None,
            });
        }
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|d| d.join("admin-credentials").display().to_string())
        .collect();
    anyhow::bail!(
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. `source .podid-dev/dev.env`) or pass --data-dir (looked for {})",
        looked.join(", ")
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters (path segments, query values).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The unescaped text of the first `<tag>...</tag>` in `xml` (AWS query answers are flat enough
/// that no XML parser is needed for the few fields the binary reads).
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)?.checked_add(open.len())?;
    let rest = xml.get(start..)?;
    let end = rest.find(&format!("</{tag}>"))?;
    let raw = rest.get(..end)?;
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

async fn read_capped(mut response: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the response")? {
        if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
            anyhow::bail!("the response is larger than {MAX_RESPONSE_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_name_where_they_were_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_credentials(|_| None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin-credentials"), "{err}");
        // A half-set environment pair is not used.
        let half = |k: &str| (k == "AWS_ACCESS_KEY_ID").then(|| "AKIA".to_owned());
        assert!(resolve_credentials(half, Some(dir.path())).is_err());
    }

    #[test]
    fn environment_keys_win_over_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        AdminKey::load_or_create(&dir.path().join("admin-credentials")).unwrap();
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        assert_eq!(
            resolve_credentials(env, Some(dir.path()))
                .unwrap()
                .access_key_id,
            "AKIAENV"
        );
        let from_file = resolve_credentials(|_| None, Some(dir.path())).unwrap();
        assert!(
            from_file.access_key_id.starts_with("AKIA") && from_file.access_key_id != "AKIAENV"
        );
    }

    #[test]
    fn xml_text_reads_the_first_element_and_unescapes_it() {
        let xml = "<E><Error><Code>NoSuchEntity</Code><Message>a &lt;b&gt; &amp;amp;</Message></Error></E>";
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("NoSuchEntity"));
        assert_eq!(xml_text(xml, "Message").as_deref(), Some("a <b> &amp;"));
        assert_eq!(xml_text(xml, "Missing"), None);
        assert_eq!(xml_text("<Code>unterminated", "Code"), None);
    }

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
