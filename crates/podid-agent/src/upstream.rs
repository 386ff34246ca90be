//! The EKS Auth client: `POST {endpoint}/clusters/{cluster}/assume-role-for-pod-identity`,
//! SigV4-signed (service `eks-auth`), with the reference's timeouts (500 ms connect, 1 s per
//! attempt), 3 attempts with jittered exponential backoff, and failover across endpoints.
//!
//! Proxies: reqwest reads `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` from the environment
//! when the client is built (its automatic "system" proxy matcher, which on Linux is the env; no
//! `.proxy()`/`.no_proxy()` call here may disable it). The reference lost this once (PR #109).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use podid_aws::sigv4::sign_request;
use rand::Rng;
use reqwest::Url;

use crate::Error;
use crate::config::AgentConfig;
use crate::metrics::Metrics;
use crate::nodecreds::NodeCredentials;
use crate::wire::{self, AssumeRequest, Fetched};

/// Reference dial timeout (commit c9106bb).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Reference per-attempt timeout (`http.Client.Timeout`, "extend http timeout to 1s").
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reference: the SDK standard retryer's 3 attempts.
const MAX_ATTEMPTS: usize = 3;
/// First backoff step; doubled per attempt, full jitter, capped. Far below the SDK's 1 s base
/// because a pod's SDK is waiting (its own timeout is often a few seconds).
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// Largest EKS Auth response read. A real one is ~1.5 KiB (session tokens up to ~1 KiB); the cap
/// stops a broken or hostile endpoint from filling memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why credentials could not be fetched. Rendered for pods by [`FetchError::body`].
#[derive(Debug, Clone)]
pub(crate) enum FetchError {
    /// EKS Auth answered with an API error.
    Api {
        status: StatusCode,
        request_id: String,
        code: String,
        message: String,
    },
    /// No answer: connect failure, timeout, reset.
    Transport { detail: String },
    /// Anything else the pod gets as a 500 with this text (bad response, no node credentials,
    /// credentials about to expire).
    Internal(String),
}

impl FetchError {
    /// The status passed to the pod (upstream status, else 500).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Api { status, .. } => *status,
            Self::Transport { .. } | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The reference body: `[requestId]: (Code): message, fault: client|server`.
    pub(crate) fn body(&self) -> String {
        match self {
            Self::Api {
                status,
                request_id,
                code,
                message,
            } => {
                let fault = if status.is_server_error() {
                    "server"
                } else {
                    "client"
                };
                format!("[{request_id}]: ({code}): {message}, fault: {fault}")
            }
            Self::Transport { detail } => format!("[]: EKS Auth request failed: {detail}"),
            Self::Internal(text) => text.clone(),
        }
    }

    /// The AWS error code, or `Unknown` (metric label).
    pub(crate) fn code(&self) -> &str {
        match self {
            Self::Api { code, .. } => code,
            Self::Transport { .. } | Self::Internal(_) => "Unknown",
        }
    }

    /// The reference's irrecoverable set (`internal/cloud/eksauth/errors.go`): the token or the
    /// association is gone, so retrying the same token can never succeed.
    pub(crate) fn is_irrecoverable(&self) -> bool {
        matches!(
            self.code(),
            "InvalidTokenException"
                | "ExpiredTokenException"
                | "AccessDeniedException"
                | "ResourceNotFoundException"
        )
    }

    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, code, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || code == "ThrottlingException"
            }
            Self::Internal(_) => false,
        }
    }
}

/// Signs and sends `AssumeRoleForPodIdentity`.
#[derive(Debug)]
pub(crate) struct EksAuth {
    http: reqwest::Client,
    /// `{endpoint}/clusters/{cluster}/assume-role-for-pod-identity`, one per endpoint.
    urls: Vec<Url>,
    region: String,
    node_name: Option<String>,
    creds: NodeCredentials,
    /// The endpoint that last answered; attempts start there so a dead first endpoint costs one
    /// failed connect per failover, not one per call.
    preferred: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl EksAuth {
    pub(crate) fn new(
        config: &AgentConfig,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        let urls = config
            .endpoints
            .iter()
            .map(|e| {
                let base = e.as_str().trim_end_matches('/');
                Url::parse(&format!(
                    "{base}/clusters/{}/assume-role-for-pod-identity",
                    config.cluster_name
                ))
                .map_err(|err| Error::InvalidConfig(format!("endpoint {e}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            http,
            urls,
            region: config.region.clone(),
            node_name: config.node_name.clone(),
            creds: NodeCredentials::new(config.node_credentials.clone()),
            preferred: AtomicUsize::new(0),
            metrics,
        })
    }

    /// Fetch credentials for `token`, retrying and failing over.
    pub(crate) async fn assume(&self, token: &str) -> Result<Fetched, FetchError> {
        let started = tokio::time::Instant::now();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = FetchError::Internal("no endpoint configured".to_owned());
        for attempt in 0..MAX_ATTEMPTS {
            let Some(idx) = (start + attempt).checked_rem(self.urls.len()) else {
                break;
            };
            let Some(url) = self.urls.get(idx) else { break };
            let result = self.attempt(url, token).await;
            self.metrics
                .upstream_call(if result.is_ok() { "success" } else { "error" });
            match result {
                Ok(fetched) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    self.metrics
                        .upstream_duration
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(fetched);
                }
                Err(e) if e.is_retryable() && attempt + 1 < MAX_ATTEMPTS => {
                    tracing::warn!(endpoint = %url, attempt, error = %e.body(), "EKS Auth attempt failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    last = e;
                }
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        self.metrics
            .upstream_duration
            .observe(started.elapsed().as_secs_f64());
        Err(last)
    }

    async fn attempt(&self, url: &Url, token: &str) -> Result<Fetched, FetchError> {
        let creds = self
            .creds
            .current()
            .map_err(|e| FetchError::Internal(e.to_string()))?;
        let body = serde_json::to_vec(&AssumeRequest {
            token,
            eks_node_name: self.node_name.as_deref(),
        })
        .map_err(|_| FetchError::Internal("encoding the EKS Auth request failed".to_owned()))?;
        let mut request = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| {
                FetchError::Internal(format!("building the EKS Auth request failed: {e}"))
            })?;
        sign_request(
            &mut request,
            &creds,
            &self.region,
            "eks-auth",
            SystemTime::now(),
        )
        .map_err(|e| FetchError::Internal(format!("signing the EKS Auth request failed: {e}")))?;
        let mut request = reqwest::Request::try_from(request).map_err(|e| {
            FetchError::Internal(format!("building the EKS Auth request failed: {e}"))
        })?;
        *request.timeout_mut() = Some(ATTEMPT_TIMEOUT);
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("x-amzn-requestid").unwrap_or_default();
        let error_type = header("x-amzn-errortype");
        let body = read_capped(response).await?;
        if status.is_success() {
            return wire::parse_success(&body).map_err(FetchError::Internal);
        }
        let (code, message) = wire::parse_error(error_type.as_deref(), &body);
        Err(FetchError::Api {
            status,
            request_id,
            code,
            message,
        })
    }
}

/// Build the upstream HTTP client (also used for JWKS fetches).
pub(crate) fn http_client(config: &AgentConfig) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &config.ca_bundle {
        let pem = std::fs::read(path).map_err(|source| Error::CaBundleRead {
            path: path.clone(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            Error::CaBundleInvalid {
                path: path.clone(),
                source,
            }
        })?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(Error::HttpClient)
}

/// Read a body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
    {
        return Err(FetchError::Internal(
            "invalid response from server: too large".to_owned(),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::Internal(
                "invalid response from server: too large".to_owned(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(e: reqwest::Error) -> FetchError {
    let detail = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection error"
    };
    FetchError::Transport {
        detail: detail.to_owned(),
    }
}

/// Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)].
pub(crate) fn backoff(attempt: usize) -> Duration {
    let exp = u32::try_from(attempt).unwrap_or(u32::MAX).min(16);
    let ceiling = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> FetchError {
        FetchError::Api {
            status: StatusCode::from_u16(status).unwrap(),
            request_id: "rid".into(),
            code: code.into(),
            message: "msg".into(),
        }
    }

    #[test]
    fn classifies_errors_like_the_reference() {
        for code in [
            "InvalidTokenException",
            "ExpiredTokenException",
            "AccessDeniedException",
        ] {
            assert!(api(400, code).is_irrecoverable() && !api(400, code).is_retryable());
        }
        assert!(api(404, "ResourceNotFoundException").is_irrecoverable());
        assert!(api(429, "ThrottlingException").is_retryable());
        assert!(api(503, "ServiceUnavailableException").is_retryable());
        assert!(!api(400, "InvalidParameterException").is_retryable());
        assert!(FetchError::Transport { detail: "x".into() }.is_retryable());
    }

    #[test]
    fn error_bodies_follow_the_reference_format() {
        assert_eq!(
            api(400, "InvalidTokenException").body(),
            "[rid]: (InvalidTokenException): msg, fault: client"
        );
        assert_eq!(
            api(500, "InternalServerException").body(),
            "[rid]: (InternalServerException): msg, fault: server"
        );
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in [0, 1, 5, 1000] {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
    }
}
