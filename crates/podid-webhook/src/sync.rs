//! Keeping the association set current: every sync interval, all pages of EKS
//! `ListPodIdentityAssociations` for the cluster (`GET /clusters/{name}/pod-identity-associations`,
//! SigV4 service `eks`), swapped in whole only when every page arrived. A failed sync keeps the
//! last good set and logs why; readiness turns false once that lasts past the staleness bound.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use podid_aws::sigv4::sign_request;
use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use crate::associations::{AssociationSet, Associations, Readiness};
use crate::credentials::CredentialSource;
use crate::metrics::Metrics;

/// Largest page EKS allows (`maxResults` 1–100, botocore `eks` model).
const PAGE_SIZE: u32 = 100;
/// Most pages read in one sync: 100,000 associations, far beyond EKS's per-cluster quota; a
/// server that keeps returning `nextToken` cannot keep a sync running for ever.
const MAX_PAGES: usize = 1000;
/// Largest page body read: 100 summaries are ~40 KiB; the cap stops a broken endpoint from
/// filling memory.
const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Deadlines for each page request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sync failed. Never carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("node credentials")]
    Credentials(#[from] podid_aws::credentials_file::CredentialsFileError),
    #[error("signing the request failed: {0}")]
    Sign(String),
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {code}: {message}")]
    Api {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{url} answered with a body that is not a ListPodIdentityAssociations page: {detail}")]
    BadPage { url: String, detail: String },
    #[error("more than {MAX_PAGES} pages of associations")]
    TooManyPages,
}

/// Lists one cluster's associations.
#[derive(Debug)]
pub struct EksLister {
    http: reqwest::Client,
    url: Url,
    region: String,
    credentials: CredentialSource,
}

impl EksLister {
    /// A lister for `cluster` at `endpoint`, signing for `region`. `ca_bundle` (PEM) replaces the
    /// system roots for an HTTPS endpoint.
    pub fn new(
        endpoint: &Url,
        cluster: &str,
        region: String,
        credentials: CredentialSource,
        ca_bundle: Option<&[u8]>,
    ) -> Result<Self, crate::Error> {
        let mut url = endpoint.clone();
        url.path_segments_mut()
            .map_err(|()| crate::Error::InvalidConfig(format!("endpoint {endpoint} has no path")))?
            .pop_if_empty()
            .extend(["clusters", cluster, "pod-identity-associations"]);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| crate::Error::InvalidConfig(format!("CA bundle: {e}")))?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| crate::Error::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            region,
            credentials,
        })
    }

    /// Every association of the cluster, following `nextToken` to the end.
    pub async fn list_all(&self) -> Result<AssociationSet, SyncError> {
        let mut pairs = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.page(next.as_deref()).await?;
            pairs.extend(
                page.associations
                    .into_iter()
                    .map(|a| (a.namespace, a.service_account)),
            );
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next = Some(token),
                None => return Ok(AssociationSet::new(pairs)),
            }
        }
        Err(SyncError::TooManyPages)
    }

    async fn page(&self, next_token: Option<&str>) -> Result<Page, SyncError> {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("maxResults", &PAGE_SIZE.to_string());
            if let Some(token) = next_token {
                query.append_pair("nextToken", token);
            }
        }
        let shown = self.url.to_string();
        let credentials = self.credentials.current()?;
        let mut request = http::Request::get(url.as_str())
            .body(Bytes::new())
            .map_err(|e| SyncError::Sign(e.to_string()))?;
        sign_request(
            &mut request,
            &credentials,
            &self.region,
            "eks",
            SystemTime::now(),
        )
        .map_err(|e| SyncError::Sign(e.to_string()))?;
        let request =
            reqwest::Request::try_from(request).map_err(|e| SyncError::Sign(e.to_string()))?;
        let transport = |source| SyncError::Transport {
            url: shown.clone(),
            source,
        };
        let mut response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len().saturating_add(chunk.len()) > MAX_PAGE_BYTES {
                return Err(SyncError::BadPage {
                    url: shown,
                    detail: format!("larger than {MAX_PAGE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let error: ApiError = serde_json::from_slice(&body).unwrap_or_default();
            // rest-json: the code is in x-amzn-ErrorType (before any ':'), else the body.
            let code = error_type
                .as_deref()
                .and_then(|t| t.split(':').next())
                .map(str::to_owned)
                .or(error.code)
                .unwrap_or_else(|| "Unknown".to_owned());
            return Err(SyncError::Api {
                url: shown,
                status: status.as_u16(),
                code,
                message: error.message.unwrap_or_default(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| SyncError::BadPage {
            url: shown,
            detail: e.to_string(),
        })
    }
}

/// One `ListPodIdentityAssociations` answer (botocore shape `ListPodIdentityAssociationsResponse`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    associations: Vec<Summary>,
    next_token: Option<String>,
}

/// The members of `PodIdentityAssociationSummary` the webhook needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    namespace: String,
    service_account: String,
}

#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(alias = "__type")]
    code: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

/// Syncs every `interval` until the task is dropped. Logs a failure when it first happens and
/// whenever its cause changes (not every few seconds), an error when the set turns stale, and a
/// recovery.
pub(crate) async fn run(
    lister: Arc<EksLister>,
    associations: Arc<Associations>,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut reported_stale = false;
    loop {
        ticker.tick().await;
        match lister.list_all().await {
            Ok(set) => {
                let count = set.len();
                associations.replace(set, Instant::now());
                metrics.sync(true);
                metrics
                    .associations
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
                if last_error.take().is_some() || reported_stale {
                    tracing::info!(associations = count, "association sync recovered");
                } else {
                    tracing::debug!(associations = count, "associations synced");
                }
                reported_stale = false;
            }
            Err(e) => {
                metrics.sync(false);
                let text = chain(&e);
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "association sync failed; keeping the last good set");
                }
                last_error = Some(text);
                if let Readiness::Stale { since_success } = associations.readiness(Instant::now())
                    && !reported_stale
                {
                    tracing::error!(
                        since_success_secs = since_success.as_secs(),
                        error = last_error.as_deref().unwrap_or_default(),
                        "associations are stale: not ready until a sync succeeds"
                    );
                    reported_stale = true;
                }
            }
        }
    }
}

/// The error and its causes on one line, for the log.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
