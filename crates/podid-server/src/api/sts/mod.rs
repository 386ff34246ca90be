//! Local STS (query protocol, botocore `sts/2011-06-15`): GetCallerIdentity, and AssumeRole
//! through the one assume path ([`crate::domain::assume`]).

mod wire;

use axum::response::Response;

use super::{ApiState, audit_value};
use crate::domain::assume::{self, AssumeError, AssumeRequest, Assumer, Lifetime, Session};
use crate::domain::audit::Event;
use crate::domain::caller::RequestInfo;
use crate::protocol::query::{QueryError, QueryRequest, xml_response};
use podid_issuer::sts::ReuseScope;
use serde::Serialize;
use wire::{
    AssumeRoleResult, AssumedRoleUser, AuditedAssumeRoleRequest, Credentials,
    GetCallerIdentityResult, NoParameters, XMLNS,
};

/// Session tags in request order.
type Tags = Vec<(String, String)>;

/// The API version every STS request names.
const VERSION: &str = "2011-06-15";
/// STS session policies are limited to 2,048 characters.
const MAX_SESSION_POLICY: usize = 2048;
/// At most 50 session tags, keys ≤ 128 and values ≤ 256 characters (STS `tagListType`).
const MAX_SESSION_TAGS: usize = 50;
/// `DurationSeconds` (`roleDurationSecondsType`): 15 minutes to 12 hours.
/// Most managed session policies one AssumeRole may pass (STS's `policyDescriptorListType`).
const MAX_POLICY_ARNS: usize = 10;
const DURATION_RANGE: std::ops::RangeInclusive<u64> = 900..=43_200;

pub(crate) async fn dispatch(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, QueryError> {
    match request.action.as_str() {
        "GetCallerIdentity" => get_caller_identity(state, info),
        "AssumeRole" => assume_role(state, info, request).await,
        other => Err(QueryError::InvalidAction {
            action: other.to_owned(),
            version: VERSION,
        }),
    }
}

fn get_caller_identity(state: &ApiState, info: &RequestInfo) -> Result<Response, QueryError> {
    let caller = &info.caller;
    state.audit.record(
        Event::for_request(
            info,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            &state.config.account_id,
        )
        .read_only()
        .params(audit_value(&NoParameters {})),
    );
    reply(
        "GetCallerIdentity",
        info,
        &GetCallerIdentityResult {
            user_id: &caller.user_id(),
            account: &caller.account_id,
            arn: &caller.arn,
        },
    )
}

async fn assume_role(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, QueryError> {
    let role_arn = request.require("RoleArn")?;
    let session_name = request.require("RoleSessionName")?;
    let event = Event::for_request(
        info,
        "sts.amazonaws.com",
        "AssumeRole",
        &state.config.account_id,
    )
    .params(audit_value(&AuditedAssumeRoleRequest {
        role_arn,
        role_session_name: session_name,
        duration_seconds: request.get("DurationSeconds"),
    }))
    .resource("AWS::IAM::Role", role_arn);
    // The response is written before the audit record, so the trail never reports a success
    // whose answer could not be sent.
    let answered = assume_role_checked(state, info, request, role_arn, session_name)
        .await
        .and_then(|session| {
            let expiration = assume::iso8601(session.expiration());
            let has_policy =
                request.get("Policy").is_some() || !request.struct_list("PolicyArns").is_empty();
            let result = result(&session, &expiration, has_policy);
            let response = reply("AssumeRole", info, &result)?;
            Ok((response, audit_value(&result.audit_copy())))
        });
    match answered {
        Ok((response, elements)) => {
            state.audit.record(event.response(elements));
            Ok(response)
        }
        Err(e) => {
            let wire = e.clone().into_aws();
            state.audit.record(event.failed(&wire.code, &wire.message));
            Err(e)
        }
    }
}

/// The `<{Action}Response>` envelope around `result`, one of [`wire`]'s shapes.
fn reply(
    action: &str,
    info: &RequestInfo,
    result: &impl Serialize,
) -> Result<Response, QueryError> {
    xml_response(action, XMLNS, &info.request_id, result).map_err(|error| {
        tracing::error!(%error, action, "response shape does not serialize");
        QueryError::InternalFailure
    })
}

fn result<'a>(session: &'a Session, expiration: &'a str, has_policy: bool) -> AssumeRoleResult<'a> {
    let claims = session.local_claims();
    AssumeRoleResult {
        credentials: Credentials {
            access_key_id: session.access_key_id(),
            secret_access_key: session.secret_access_key(),
            session_token: session.session_token(),
            expiration,
        },
        assumed_role_user: AssumedRoleUser {
            assumed_role_id: &session.assumed_role_id,
            arn: &session.assumed_role_arn,
        },
        packed_policy_size: (claims.is_some_and(|c| !c.tags.is_empty()) || has_policy)
            .then(|| packed_percent(session.session_token().len())),
        source_identity: claims.and_then(|c| c.source_identity.as_deref()),
    }
}

/// Validates the request's members, then assumes the role.
async fn assume_role_checked(
    state: &ApiState,
    info: &RequestInfo,
    request: &QueryRequest,
    role_arn: &str,
    session_name: &str,
) -> Result<Session, QueryError> {
    if !assume::valid_session_name(session_name) {
        return Err(QueryError::Validation(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64".into(),
        ));
    }
    let policy = request.get("Policy").map(str::to_owned);
    if let Some(p) = &policy {
        if p.chars().count() > MAX_SESSION_POLICY {
            return Err(QueryError::PackedPolicyTooLarge);
        }
        podid_iam::Policy::parse(p)
            .map_err(|e| QueryError::MalformedPolicyDocument(e.aws_message()))?;
    }
    let policy_arns = policy_arns(request)?;
    let (tags, transitive) = session_tags(request)?;
    let requested_secs = duration_seconds(request)?;
    state
        .issuer
        .assume(AssumeRequest {
            role_arn,
            assumer: Assumer::Identity {
                caller: &info.caller,
                source_ip: info.source_ip,
                secure_transport: info.secure_transport,
            },
            session_name: session_name.to_owned(),
            lifetime: Lifetime::Sts { requested_secs },
            tags,
            transitive_tag_keys: transitive,
            session_policy: policy,
            session_policy_arns: policy_arns,
            external_id: request.get("ExternalId").map(str::to_owned),
            source_identity: request.get("SourceIdentity").map(str::to_owned),
            extra_context: Vec::new(),
            source: None,
            reuse: ReuseScope::Never,
        })
        .await
        .map_err(|e| assume_error(e, &info.caller.arn, role_arn))
}

/// How STS words a refused `AssumeRole`.
fn assume_error(e: AssumeError, caller_arn: &str, role_arn: &str) -> QueryError {
    match e {
        // A missing role is refused like one the caller may not assume, revealing nothing.
        AssumeError::RoleNotFound { .. } => QueryError::AccessDenied(
            crate::domain::authz::Denied::implicit(caller_arn, "sts:AssumeRole", role_arn),
        ),
        AssumeError::IdentityDenied(denied) => QueryError::AccessDenied(denied),
        AssumeError::TrustDenied { .. } => QueryError::AssumeRoleDenied {
            caller_arn: caller_arn.to_owned(),
            role_arn: role_arn.to_owned(),
        },
        AssumeError::LongerThanRoleAllows { chained } => QueryError::Validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.{}",
            if chained {
                " Role chaining limits a session to one hour."
            } else {
                ""
            }
        )),
        AssumeError::TransitiveTagOverridden { key } => QueryError::InvalidParameterValue(format!(
            "The transitive tag key {key} cannot be overridden in a role chain."
        )),
        AssumeError::PackedPolicyTooLarge => QueryError::PackedPolicyTooLarge,
        // `sts` mode: podid's STS does not hand out upstream roles to its own IAM identities.
        AssumeError::UpstreamOnly => QueryError::AccessDenied(
            crate::domain::authz::Denied::implicit(caller_arn, "sts:AssumeRole", role_arn),
        ),
        AssumeError::Upstream(error) => {
            tracing::error!(%error, "upstream STS failed for podid's own STS AssumeRole");
            QueryError::InternalFailure
        }
        AssumeError::Issuer(error) => {
            tracing::error!(%error, "issuing credentials failed");
            QueryError::InternalFailure
        }
    }
}

/// `DurationSeconds`, checked against its shape's range (the role's limit is the domain's).
fn duration_seconds(request: &QueryRequest) -> Result<Option<u64>, QueryError> {
    let Some(v) = request.get("DurationSeconds") else {
        return Ok(None);
    };
    let secs: u64 = v
        .parse()
        .map_err(|_| QueryError::Validation("DurationSeconds must be an integer".into()))?;
    if !DURATION_RANGE.contains(&secs) {
        return Err(QueryError::Validation(format!(
            "1 validation error detected: Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
        )));
    }
    Ok(Some(secs))
}

/// STS reports the packed size of policy and tags as a percentage of the allowed maximum.
fn packed_percent(token_len: usize) -> usize {
    (token_len * 100)
        .div_ceil(podid_issuer::MAX_TOKEN_LEN)
        .min(100)
}

/// `PolicyArns.member.N.arn`: up to ten managed session policies, as STS's model constrains
/// them. They are sealed by ARN and evaluated at each request (a policy that does not exist, or
/// no longer does, allows nothing), so they narrow the session as AWS's do.
fn policy_arns(request: &QueryRequest) -> Result<Vec<String>, QueryError> {
    let mut arns = Vec::new();
    for member in request.struct_list("PolicyArns") {
        let arn = member
            .iter()
            .find(|(k, _)| *k == "arn")
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default();
        if !(20..=2048).contains(&arn.chars().count()) {
            return Err(QueryError::Validation(
                "1 validation error detected: Value at 'policyArns.member.arn' failed to satisfy constraint: Member must have length between 20 and 2048".into(),
            ));
        }
        arns.push(arn);
    }
    if arns.len() > MAX_POLICY_ARNS {
        return Err(QueryError::Validation(format!(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
        )));
    }
    Ok(arns)
}

fn session_tags(request: &QueryRequest) -> Result<(Tags, Vec<String>), QueryError> {
    let mut tags = Vec::new();
    for member in request.struct_list("Tags") {
        let get = |f: &str| {
            member
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| (*v).to_owned())
        };
        let (Some(key), Some(value)) = (get("Key"), get("Value")) else {
            return Err(QueryError::Validation(
                "Each session tag needs a Key and a Value".into(),
            ));
        };
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(QueryError::Validation(
                "Session tag keys must be 1-128 characters and values at most 256".into(),
            ));
        }
        if tags
            .iter()
            .any(|(k, _): &(String, String)| k.eq_ignore_ascii_case(&key))
        {
            return Err(QueryError::InvalidParameterValue(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
        tags.push((key, value));
    }
    if tags.len() > MAX_SESSION_TAGS {
        return Err(QueryError::Validation(format!(
            "At most {MAX_SESSION_TAGS} session tags are allowed"
        )));
    }
    let transitive: Vec<String> = request
        .list("TransitiveTagKeys")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(k) = transitive
        .iter()
        .find(|k| !tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)))
    {
        return Err(QueryError::InvalidParameterValue(format!(
            "The specified transitive tag key must be included in the requested tags: {k}"
        )));
    }
    Ok((tags, transitive))
}
