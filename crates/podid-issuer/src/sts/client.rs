//! [`SdkUpstream`]: `AssumeRole` and `GetCallerIdentity` with aws-sdk-sts, signed with podid's
//! own principal from aws-config's default chain (environment, shared files, web identity,
//! container and instance metadata providers; `credential_process` too; SSO profiles are not
//! built in), or with an upstream session for a chained hop.
//!
//! Every call has a connect timeout, a per-attempt timeout and an overall deadline, and the
//! SDK's standard retry strategy (exponential backoff with jitter) retries timeouts, connection
//! failures, 5xx answers and throttling. What is left is classified once, in [`classify`].

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{Region, SharedCredentialsProvider};
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::RequestId as _;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use time::OffsetDateTime;

use super::{
    Source, Upstream, UpstreamCredentials, UpstreamError, UpstreamRequest, UpstreamSession,
};
use crate::SecretKey;

/// Where and how patiently to call STS.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// An STS-compatible endpoint; `None`: the region's AWS STS endpoint.
    pub endpoint: Option<String>,
    /// The signing region (and the regional endpoint's).
    pub region: String,
    pub connect_timeout: Duration,
    /// One attempt's deadline.
    pub attempt_timeout: Duration,
    /// Attempts in all (first try plus retries).
    pub max_attempts: u32,
    /// First retry's backoff; later ones double, with jitter.
    pub initial_backoff: Duration,
}

impl UpstreamConfig {
    /// 1 s to connect, 3 s per attempt, 3 attempts from 100 ms backoff (doubling, with
    /// jitter): an answer or an error within about 11 s, so no request is held for long while
    /// upstream is down (the node agent retries on its side and keeps serving its cache).
    pub fn new(endpoint: Option<String>, region: String) -> Self {
        Self {
            endpoint,
            region,
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(3),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }
}

/// Whether podid's own credentials are long-term (an IAM user's access key, no session
/// token), which lets STS grant sessions of up to 12 hours; temporary ones (a role, web
/// identity, instance profile) make every `AssumeRole` a role chain, which STS caps at 1 hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    LongTerm,
    Temporary,
}

/// The aws-sdk-sts client over the default credential chain.
#[derive(Debug, Clone)]
pub struct SdkUpstream {
    client: aws_sdk_sts::Client,
    credentials: Option<SharedCredentialsProvider>,
}

impl SdkUpstream {
    /// Loads the default chain (or takes `credentials` instead) and builds the client; makes
    /// no call.
    pub async fn load(config: &UpstreamConfig, credentials: Option<Credentials>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if let Some(credentials) = credentials {
            loader = loader.credentials_provider(credentials);
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_sts::config::Builder::from(&shared)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.max_attempts)
                    .with_initial_backoff(config.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .operation_timeout(
                        config
                            .attempt_timeout
                            .saturating_mul(config.max_attempts)
                            .saturating_add(Duration::from_secs(2)),
                    )
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_sts::Client::from_conf(builder.build()),
            credentials: shared.credentials_provider(),
        }
    }

    /// Resolves podid's own credentials once and says whether they are long-term.
    pub async fn source_kind(&self) -> Result<SourceKind, String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| "no credentials in the default chain".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(&e)))?;
        Ok(if credentials.session_token().is_none() {
            SourceKind::LongTerm
        } else {
            SourceKind::Temporary
        })
    }

    /// `GetCallerIdentity` of podid's own principal: `(account, arn)`.
    pub async fn caller_identity(&self) -> Result<(String, String), UpstreamError> {
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify_sdk(&e))?;
        match (out.account(), out.arn()) {
            (Some(account), Some(arn)) => Ok((account.to_owned(), arn.to_owned())),
            _ => Err(UpstreamError::Malformed {
                reason: "GetCallerIdentity answered without Account or Arn".to_owned(),
                request_id: out.request_id().map(str::to_owned),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Upstream for SdkUpstream {
    async fn assume_role(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamSession, UpstreamError> {
        let tags = request
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| UpstreamError::Refused {
                code: "ValidationError".to_owned(),
                message: e.to_string(),
                request_id: None,
            })?;
        let duration = i32::try_from(request.duration.as_secs()).unwrap_or(i32::MAX);
        let call = self
            .client
            .assume_role()
            .role_arn(&request.role_arn)
            .role_session_name(&request.session_name)
            .duration_seconds(duration)
            .set_tags((!tags.is_empty()).then_some(tags))
            .set_transitive_tag_keys(
                (!request.transitive_tag_keys.is_empty())
                    .then(|| request.transitive_tag_keys.clone()),
            )
            .set_policy(request.policy.clone())
            .set_policy_arns((!request.policy_arns.is_empty()).then(|| {
                request
                    .policy_arns
                    .iter()
                    .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
                    .collect()
            }))
            .set_external_id(request.external_id.clone());
        let sent = match &request.source {
            Source::Default => call.send().await,
            Source::Session(session) => {
                let c = &session.credentials;
                let credentials = Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.expose().to_owned(),
                    Some(c.session_token.expose().to_owned()),
                    Some(c.expiration.into()),
                    "podid-chained-session",
                );
                call.customize()
                    .config_override(
                        aws_sdk_sts::config::Builder::default().credentials_provider(credentials),
                    )
                    .send()
                    .await
            }
        };
        let out = sent.map_err(|e| classify_sdk(&e))?;
        let request_id = out.request_id().map(str::to_owned);
        let malformed = |reason: &str| UpstreamError::Malformed {
            reason: reason.to_owned(),
            request_id: request_id.clone(),
        };
        let credentials = out
            .credentials()
            .ok_or_else(|| malformed("AssumeRole answered without Credentials"))?;
        let user = out
            .assumed_role_user()
            .ok_or_else(|| malformed("AssumeRole answered without AssumedRoleUser"))?;
        let expiration = OffsetDateTime::from_unix_timestamp(credentials.expiration().secs())
            .map_err(|_| malformed("AssumeRole answered an impossible Expiration"))?;
        if credentials.access_key_id().is_empty() || credentials.session_token().is_empty() {
            return Err(malformed("AssumeRole answered empty credentials"));
        }
        Ok(UpstreamSession {
            credentials: UpstreamCredentials {
                access_key_id: credentials.access_key_id().to_owned(),
                secret_access_key: SecretKey::new(credentials.secret_access_key().to_owned()),
                session_token: SecretKey::new(credentials.session_token().to_owned()),
                expiration,
            },
            assumed_role_arn: user.arn().to_owned(),
            assumed_role_id: user.assumed_role_id().to_owned(),
            role_arn: request.role_arn.clone(),
            request_id,
        })
    }
}

/// How a failed call failed, before classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// STS answered with an error (`code`, HTTP `status`).
    Answered,
    /// The answer could not be read as STS's (not XML, wrong shape).
    Unreadable,
    /// No answer: timeout, connection refused or reset, DNS.
    NoAnswer,
    /// The request could not be built (a bug or a bad input such as an invalid endpoint).
    NotSent,
}

/// The one classification of an upstream failure.
pub fn classify(
    failure: Failure,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    request_id: Option<&str>,
) -> UpstreamError {
    let request_id = request_id.filter(|id| !id.is_empty()).map(str::to_owned);
    let message = message.unwrap_or_default().to_owned();
    match failure {
        Failure::NoAnswer => UpstreamError::Unavailable {
            reason: if message.is_empty() {
                "no answer".to_owned()
            } else {
                message
            },
            request_id,
        },
        Failure::NotSent => UpstreamError::Malformed {
            reason: format!("the request could not be sent: {message}"),
            request_id,
        },
        Failure::Unreadable if status.is_some_and(|s| s >= 500) => UpstreamError::Unavailable {
            reason: format!("HTTP {}", status.unwrap_or_default()),
            request_id,
        },
        Failure::Unreadable => UpstreamError::Malformed {
            reason: format!("unreadable answer (HTTP {})", status.unwrap_or_default()),
            request_id,
        },
        Failure::Answered => match code {
            Some("AccessDenied" | "AccessDeniedException") => UpstreamError::AccessDenied {
                message,
                request_id,
            },
            Some(
                "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "RequestThrottled"
                | "RequestThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "SlowDown",
            ) => UpstreamError::Throttled {
                message,
                request_id,
            },
            Some("PackedPolicyTooLarge") => UpstreamError::PackedPolicyTooLarge {
                message,
                request_id,
            },
            _ if status.is_some_and(|s| s >= 500) => UpstreamError::Unavailable {
                reason: match code {
                    Some(code) => format!("{code}: {message}"),
                    None => format!("HTTP {}", status.unwrap_or_default()),
                },
                request_id,
            },
            _ if status == Some(429) => UpstreamError::Throttled {
                message,
                request_id,
            },
            Some(code) => UpstreamError::Refused {
                code: code.to_owned(),
                message,
                request_id,
            },
            None => UpstreamError::Malformed {
                reason: format!(
                    "an error answer without a code (HTTP {})",
                    status.unwrap_or_default()
                ),
                request_id,
            },
        },
    }
}

fn classify_sdk<E>(e: &SdkError<E, HttpResponse>) -> UpstreamError
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    SdkError<E, HttpResponse>: aws_sdk_sts::operation::RequestId,
{
    let request_id = e.request_id().map(str::to_owned);
    let status = e.raw_response().map(|r| r.status().as_u16());
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            classify(
                Failure::Answered,
                err.code(),
                err.message(),
                status,
                request_id.as_deref(),
            )
        }
        SdkError::TimeoutError(_) => classify(
            Failure::NoAnswer,
            None,
            Some("timed out"),
            None,
            request_id.as_deref(),
        ),
        SdkError::DispatchFailure(failure) => {
            let reason = if failure.is_timeout() {
                "timed out".to_owned()
            } else if failure.is_io() {
                "connection failed".to_owned()
            } else {
                "dispatch failed".to_owned()
            };
            classify(
                Failure::NoAnswer,
                None,
                Some(&reason),
                None,
                request_id.as_deref(),
            )
        }
        SdkError::ResponseError(_) => classify(
            Failure::Unreadable,
            None,
            None,
            status,
            request_id.as_deref(),
        ),
        SdkError::ConstructionFailure(_) => classify(
            Failure::NotSent,
            None,
            Some(&aws_sdk_sts::error::DisplayErrorContext(e).to_string()),
            None,
            None,
        ),
        _ => classify(
            Failure::Unreadable,
            None,
            None,
            status,
            request_id.as_deref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: &str, status: u16) -> UpstreamError {
        classify(
            Failure::Answered,
            Some(code),
            Some("msg"),
            Some(status),
            Some("rid-1"),
        )
    }

    #[test]
    fn access_denied_keeps_the_upstream_message_and_request_id() {
        assert_eq!(
            answered("AccessDenied", 403),
            UpstreamError::AccessDenied {
                message: "msg".into(),
                request_id: Some("rid-1".into())
            }
        );
    }

    #[test]
    fn throttling_codes_and_429_are_throttling() {
        for code in ["Throttling", "ThrottlingException", "RequestLimitExceeded"] {
            assert!(
                matches!(answered(code, 400), UpstreamError::Throttled { .. }),
                "{code}"
            );
        }
        assert!(matches!(
            answered("Whatever", 429),
            UpstreamError::Throttled { .. }
        ));
    }

    #[test]
    fn server_errors_and_no_answer_are_unavailable() {
        assert!(matches!(
            answered("InternalFailure", 500),
            UpstreamError::Unavailable { .. }
        ));
        assert!(matches!(
            answered("ServiceUnavailable", 503),
            UpstreamError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(Failure::Unreadable, None, None, Some(502), None),
            UpstreamError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(Failure::NoAnswer, None, Some("timed out"), None, None),
            UpstreamError::Unavailable { .. }
        ));
    }

    #[test]
    fn unreadable_answers_are_malformed() {
        assert!(matches!(
            classify(Failure::Unreadable, None, None, Some(200), Some("")),
            UpstreamError::Malformed {
                request_id: None,
                ..
            }
        ));
        assert!(matches!(
            classify(Failure::Answered, None, None, Some(400), None),
            UpstreamError::Malformed { .. }
        ));
    }

    #[test]
    fn other_refusals_keep_their_code() {
        assert_eq!(
            answered("ValidationError", 400),
            UpstreamError::Refused {
                code: "ValidationError".into(),
                message: "msg".into(),
                request_id: Some("rid-1".into())
            }
        );
        assert!(matches!(
            answered("PackedPolicyTooLarge", 400),
            UpstreamError::PackedPolicyTooLarge { .. }
        ));
    }
}
