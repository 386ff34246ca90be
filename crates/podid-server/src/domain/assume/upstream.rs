//! [`StsAuthority`]: the `sts` mode's [`Issuer`]. Upstream STS is the IAM authority: each
//! allowed Pod Identity request becomes an `AssumeRole` there (through
//! [`podid_issuer::sts::StsIssuer`]'s single flight, reuse and token bucket), signed with
//! podid's own principal, or, for a target role, with the first role's session.
//!
//! Lifetimes: the configured `DurationSeconds` (one hour by default; up to 12 hours when
//! podid's own credentials are long-term, which the binary checks), and at most one hour for
//! a chained hop (STS's role-chaining limit). Tags already transitive in the chaining session
//! are not sent again: they carry over, and STS refuses to have them overridden.

use std::sync::Arc;
use std::time::Duration;

use podid_issuer::sts::{Source, StsIssuer, UpstreamRequest};
use time::OffsetDateTime;

use super::{AssumeError, AssumeRequest, Assumer, Issuer, Minted, Session};

/// STS caps a role-chained session at one hour.
const MAX_CHAINED: Duration = Duration::from_secs(3600);

/// `sts` mode: sessions from upstream STS.
#[derive(Debug)]
pub(crate) struct StsAuthority {
    pub(crate) sts: Arc<StsIssuer>,
    /// `DurationSeconds` of a first hop.
    pub(crate) duration: Duration,
}

#[async_trait::async_trait]
impl Issuer for StsAuthority {
    fn shares_sessions(&self) -> bool {
        true
    }

    async fn assume(&self, request: AssumeRequest<'_>) -> Result<Session, AssumeError> {
        let (source, duration, tags) = match request.assumer {
            Assumer::Service(_) => (Source::Default, self.duration, request.tags),
            Assumer::Chained(first) => {
                let Minted::Upstream {
                    issued,
                    transitive_tag_keys: carried,
                } = &first.credentials
                else {
                    return Err(AssumeError::UpstreamOnly);
                };
                let tags = request
                    .tags
                    .into_iter()
                    .filter(|(k, _)| !carried.iter().any(|c| c.eq_ignore_ascii_case(k)))
                    .collect();
                (
                    Source::Session(Arc::clone(&issued.session)),
                    self.duration.min(MAX_CHAINED),
                    tags,
                )
            }
            Assumer::Identity { .. } => return Err(AssumeError::UpstreamOnly),
        };
        let transitive_tag_keys: Vec<String> = request
            .transitive_tag_keys
            .into_iter()
            .filter(|k| tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)))
            .collect();
        let upstream = UpstreamRequest {
            role_arn: request.role_arn.to_owned(),
            session_name: request.session_name,
            duration,
            tags,
            transitive_tag_keys: transitive_tag_keys.clone(),
            policy: request.session_policy,
            policy_arns: request.session_policy_arns,
            external_id: request.external_id,
            source,
        };
        let issued = self
            .sts
            .assume(request.reuse, upstream, OffsetDateTime::now_utc())
            .await
            .map_err(AssumeError::Upstream)?;
        let mut carried = transitive_tag_keys;
        if let Assumer::Chained(Session {
            credentials:
                Minted::Upstream {
                    transitive_tag_keys: before,
                    ..
                },
            ..
        }) = request.assumer
        {
            carried.extend(before.iter().cloned());
        }
        Ok(Session {
            role_arn: request.role_arn.to_owned(),
            assumed_role_arn: issued.session.assumed_role_arn.clone(),
            assumed_role_id: issued.session.assumed_role_id.clone(),
            credentials: Minted::Upstream {
                issued,
                transitive_tag_keys: carried,
            },
        })
    }
}

#[cfg(test)]
mod tests;
