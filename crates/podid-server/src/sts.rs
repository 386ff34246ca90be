//! Local STS (query protocol, botocore `sts/2011-06-15`): GetCallerIdentity and AssumeRole.

use std::time::Duration;

use axum::response::Response;
use podid_aws::AwsError;
use podid_aws::xml::XmlWriter;
use podid_issuer::IssuedCredentials;
use serde_json::json;

use crate::audit::Event;
use crate::auth::{CallerKind, RequestInfo};
use crate::authz;
use crate::query::{QueryRequest, xml_response};
use crate::sessions::{self, SessionError, SessionRequest};
use crate::state::AppState;

/// Session tags in request order.
type Tags = Vec<(String, String)>;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// STS session policies are limited to 2,048 characters.
const MAX_SESSION_POLICY: usize = 2048;
/// At most 50 session tags, keys ≤ 128 and values ≤ 256 characters (STS `tagListType`).
const MAX_SESSION_TAGS: usize = 50;
/// A role-chained session lasts at most one hour (AWS rule).
const MAX_CHAINED_SECS: u64 = 3600;

pub(crate) async fn dispatch(
    state: &AppState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, AwsError> {
    match request.action.as_str() {
        "GetCallerIdentity" => Ok(get_caller_identity(state, info)),
        "AssumeRole" => assume_role(state, info, request),
        other => Err(AwsError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

fn get_caller_identity(state: &AppState, info: &RequestInfo) -> Response {
    let caller = &info.caller;
    state.audit.record(
        Event::for_request(
            info,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            &state.config.account_id,
        )
        .read_only()
        .params(json!({})),
    );
    xml_response("GetCallerIdentity", XMLNS, &info.request_id, |w| {
        w.leaf("UserId", &caller.user_id());
        w.leaf("Account", &caller.account_id);
        w.leaf("Arn", &caller.arn);
    })
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new("ValidationError", 400, message)
}

fn assume_role(
    state: &AppState,
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<Response, AwsError> {
    let role_arn = request.require("RoleArn")?;
    let session_name = request.require("RoleSessionName")?;
    let event = Event::for_request(info, "sts.amazonaws.com", "AssumeRole", &state.config.account_id)
        .params(json!({"roleArn": role_arn, "roleSessionName": session_name, "durationSeconds": request.get("DurationSeconds")}))
        .resource("AWS::IAM::Role", role_arn);
    match assume_role_inner(state, info, request, role_arn, session_name) {
        Ok((issued, response)) => {
            state.audit.record(event.response(json!({
                "credentials": {"accessKeyId": issued.access_key_id, "expiration": sessions::iso8601(issued.expiration)},
                "assumedRoleUser": {"arn": sessions::assumed_role_arn(&state.config.account_id, role_name(role_arn), session_name)},
            })));
            Ok(response)
        }
        Err(e) => {
            state.audit.record(event.failed(&e.code, &e.message));
            Err(e)
        }
    }
}

fn role_name(role_arn: &str) -> &str {
    authz::role_name_of(role_arn).unwrap_or_default()
}

fn assume_role_inner(
    state: &AppState,
    info: &RequestInfo,
    request: &QueryRequest,
    role_arn: &str,
    session_name: &str,
) -> Result<(IssuedCredentials, Response), AwsError> {
    if !sessions::valid_session_name(session_name) {
        return Err(validation(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64",
        ));
    }
    let chained = matches!(info.caller.kind, CallerKind::AssumedRole(_));
    let policy = request.get("Policy").map(str::to_owned);
    if let Some(p) = &policy {
        if p.chars().count() > MAX_SESSION_POLICY {
            return Err(AwsError::new(
                "PackedPolicyTooLarge",
                400,
                "Packed policy consumes more than 100 percent of the allotted size.",
            ));
        }
        podid_iam::Policy::parse(p)
            .map_err(|e| AwsError::new("MalformedPolicyDocument", 400, e.aws_message()))?;
    }
    let (mut tags, transitive) = session_tags(info, request)?;
    let external_id = request.get("ExternalId").map(str::to_owned);

    let denied =
        || authz::access_denied(info.protocol, &info.caller.arn, "sts:AssumeRole", role_arn);
    let role = (role_arn.starts_with(&format!("arn:aws:iam::{}:role/", state.config.account_id)))
        .then(|| state.iam.role(role_name(role_arn)))
        .flatten()
        .filter(|r| r.arn == role_arn)
        .ok_or_else(denied)?;

    let default_secs = 3600u64;
    let max_secs = if chained {
        MAX_CHAINED_SECS
    } else {
        u64::from(role.max_session_duration_secs)
    };
    let duration_secs = match request.get("DurationSeconds") {
        None => default_secs.min(max_secs),
        Some(v) => {
            let secs: u64 = v
                .parse()
                .map_err(|_| validation("DurationSeconds must be an integer"))?;
            if !(900..=43200).contains(&secs) {
                return Err(validation(format!(
                    "1 validation error detected: Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
                )));
            }
            if secs > max_secs {
                return Err(validation(format!(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.{}",
                    if chained {
                        " Role chaining limits a session to one hour."
                    } else {
                        ""
                    }
                )));
            }
            secs
        }
    };

    // Identity side: the caller's policies must allow the calls (and TagSession when tagging).
    let mut actions = vec!["sts:AssumeRole"];
    if !tags.is_empty() {
        actions.push("sts:TagSession");
    }
    for action in &actions {
        if !authz::is_allowed(state, &info.caller, info.source_ip, action, role_arn, &[]) {
            return Err(authz::access_denied(
                info.protocol,
                &info.caller.arn,
                action,
                role_arn,
            ));
        }
    }
    // Resource side: the trust policy must allow the caller.
    let (principal, principal_tags) = authz::principal_info(state, &info.caller);
    let mut context: Vec<(String, Vec<String>)> = principal_tags
        .iter()
        .map(|(k, v)| (format!("aws:PrincipalTag/{k}"), vec![v.clone()]))
        .collect();
    context.push(("sts:RoleSessionName".into(), vec![session_name.to_owned()]));
    if let Some(e) = &external_id {
        context.push(("sts:ExternalId".into(), vec![e.clone()]));
    }
    context.extend(
        tags.iter()
            .map(|(k, v)| (format!("aws:RequestTag/{k}"), vec![v.clone()])),
    );
    if !tags.is_empty() {
        context.push((
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    if !sessions::trust_allows(&role, &principal, &actions, &context) {
        return Err(AwsError::new(
            "AccessDenied",
            403,
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                info.caller.arn
            ),
        ));
    }

    // Transitive tags of the calling session carry over.
    let mut transitive_keys = transitive;
    if let CallerKind::AssumedRole(claims) = &info.caller.kind {
        for key in &claims.transitive_tag_keys {
            if let Some((k, v)) = claims.tags.iter().find(|(k, _)| k == key) {
                if tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)) {
                    return Err(AwsError::new(
                        "InvalidParameterValue",
                        400,
                        format!("The transitive tag key {k} cannot be overridden in a role chain."),
                    ));
                }
                tags.push((k.clone(), v.clone()));
                transitive_keys.push(k.clone());
            }
        }
    }
    let issued = sessions::issue(
        state,
        SessionRequest {
            role: &role,
            session_name: session_name.to_owned(),
            duration: Duration::from_secs(duration_secs),
            tags,
            transitive_tag_keys: transitive_keys,
            session_policy: policy.clone(),
            external_id,
            source_identity: request.get("SourceIdentity").map(str::to_owned),
            source: None,
        },
    )
    .map_err(|e| match e {
        SessionError::PackedPolicyTooLarge => AwsError::new(
            "PackedPolicyTooLarge",
            400,
            "Packed policy consumes more than 100 percent of the allotted size.",
        ),
        SessionError::Issuer(e) => crate::eks::errors::server_error("issuing credentials", &e),
    })?;
    let assumed_arn =
        sessions::assumed_role_arn(&state.config.account_id, &role.name, session_name);
    let response = xml_response(
        "AssumeRole",
        XMLNS,
        &info.request_id,
        |w: &mut XmlWriter| {
            write_credentials(w, &issued);
            w.open("AssumedRoleUser");
            w.leaf("AssumedRoleId", &format!("{}:{session_name}", role.role_id));
            w.leaf("Arn", &assumed_arn);
            w.close("AssumedRoleUser");
            if !issued.claims.tags.is_empty() || policy.is_some() {
                w.leaf(
                    "PackedPolicySize",
                    &packed_percent(issued.session_token.as_str().len()).to_string(),
                );
            }
            w.leaf_opt("SourceIdentity", issued.claims.source_identity.as_deref());
        },
    );
    Ok((issued, response))
}

/// STS reports the packed size of policy and tags as a percentage of the allowed maximum.
fn packed_percent(token_len: usize) -> usize {
    (token_len * 100)
        .div_ceil(podid_issuer::MAX_TOKEN_LEN)
        .min(100)
}

pub(crate) fn write_credentials(w: &mut XmlWriter, issued: &IssuedCredentials) {
    w.open("Credentials");
    w.leaf("AccessKeyId", &issued.access_key_id);
    w.leaf("SecretAccessKey", issued.secret_access_key.expose());
    w.leaf("SessionToken", issued.session_token.as_str());
    w.leaf("Expiration", &sessions::iso8601(issued.expiration));
    w.close("Credentials");
}

fn session_tags(
    info: &RequestInfo,
    request: &QueryRequest,
) -> Result<(Tags, Vec<String>), AwsError> {
    let _ = info;
    let mut tags = Vec::new();
    for member in request.struct_list("Tags") {
        let get = |f: &str| {
            member
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| (*v).to_owned())
        };
        let (Some(key), Some(value)) = (get("Key"), get("Value")) else {
            return Err(validation("Each session tag needs a Key and a Value"));
        };
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(validation(
                "Session tag keys must be 1-128 characters and values at most 256",
            ));
        }
        if tags
            .iter()
            .any(|(k, _): &(String, String)| k.eq_ignore_ascii_case(&key))
        {
            return Err(AwsError::new(
                "InvalidParameterValue",
                400,
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        tags.push((key, value));
    }
    if tags.len() > MAX_SESSION_TAGS {
        return Err(validation(format!(
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
        return Err(AwsError::new(
            "InvalidParameterValue",
            400,
            format!("The specified transitive tag key must be included in the requested tags: {k}"),
        ));
    }
    Ok((tags, transitive))
}
