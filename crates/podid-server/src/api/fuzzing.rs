//! Entry points for the fuzz targets in `fuzz/` only, behind the `fuzzing` feature: not part of
//! the crate's API (hidden from the docs, never enabled by a product build).
//!
//! Each function decodes one request body the way the live handlers do, with the same code
//! (`QueryRequest::parse` and IAM's member checks, `Body::parse` and the association members,
//! CloudTrail's `LookupEvents` decoding), stopping before anything that needs server state
//! (authorization, the registry, the store). Every refusal is turned into its wire error and
//! encoded, so the error encoders see hostile text too. Nothing here may panic on any input:
//! a panic is a fuzzing finding.

use podid_aws::Protocol;

use crate::api::cloudtrail::decode_lookup;
use crate::api::eks::associations::CreateMembers;
use crate::api::eks::{paging, parse_query};
use crate::api::iam::input;
use crate::protocol::query::{QueryError, QueryRequest};
use crate::protocol::rest_json::{Body, RestJsonError};

/// The account the decoded association is checked against.
const ACCOUNT_ID: &str = "111122223333";
/// Request id written into encoded errors.
const REQUEST_ID: &str = "fuzz";

/// A query-protocol request (IAM, STS): the parameters from `query` and `body`, then the IAM
/// member checks every IAM handler runs (names, `Path`, `Description`, `Tags`, paging).
pub fn query(query: Option<&str>, body: &[u8]) {
    let request = match QueryRequest::parse(query, body) {
        Ok(r) => r,
        Err(e) => return encode_query(e),
    };
    let checks: [Result<(), QueryError>; 5] = [
        input::name(&request, "RoleName", 64).map(drop),
        input::path(&request).map(drop),
        input::description(&request).map(drop),
        input::tags(&request).map(drop),
        input::paging(&request).map(drop),
    ];
    for check in checks {
        if let Err(e) = check {
            encode_query(e);
        }
    }
    // STS's list members (AssumeRole `TransitiveTagKeys`, `PolicyArns`).
    drop(request.list("TransitiveTagKeys"));
    drop(request.struct_list("PolicyArns"));
}

/// A rest-json request (EKS): the list operations' `query` string (`maxResults`, `nextToken`),
/// then `body` as a `CreatePodIdentityAssociation`, through the same checks as the handler
/// (member types, the association spec, then the association itself).
pub fn rest_json(query: Option<&str>, body: &[u8]) {
    if let Err(e) = paging(&parse_query(query)) {
        encode_rest_json(e);
    }
    if let Err(e) = create_association(body) {
        encode_rest_json(e);
    }
}

/// A JSON 1.1 request (CloudTrail `LookupEvents`): the body decoded into the store's query.
pub fn json11(body: &[u8]) {
    if let Err(e) = decode_lookup(body) {
        drop(e.into_aws().into_response(Protocol::Json11, REQUEST_ID));
    }
}

fn create_association(body: &[u8]) -> Result<(), RestJsonError> {
    let body = Body::parse(body, RestJsonError::InvalidParameter)?;
    let m = CreateMembers::read(&body)?;
    let invalid = |e: podid_model::InvalidField| RestJsonError::InvalidParameter(e.message);
    let spec = podid_model::AssociationSpec::validate(
        m.role_arn,
        m.target_role_arn,
        m.disable_session_tags,
        m.policy,
        ACCOUNT_ID,
    )
    .map_err(invalid)?;
    let scope = podid_model::Scope {
        region: "us-east-1",
        account_id: ACCOUNT_ID,
    };
    podid_model::Association::new(
        scope,
        "fuzz",
        m.namespace,
        m.service_account,
        spec,
        m.tags,
        0,
    )
    .map_err(invalid)?;
    Ok(())
}

fn encode_query(e: QueryError) {
    drop(e.into_aws().into_response(Protocol::Query, REQUEST_ID));
}

fn encode_rest_json(e: RestJsonError) {
    drop(e.into_aws().into_response(Protocol::RestJson, REQUEST_ID));
}
