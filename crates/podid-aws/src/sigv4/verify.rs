//! Recomputing a request's SigV4 signature and comparing it in constant time.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::parse::format_amz_date;
use super::{AuthLocation, ParsedAuth, SigV4Error};

/// How far the client's clock may be from ours (AWS allows 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Query parameters that carry the presigned signature itself and are not part of what was signed
/// (aws-sigv4 re-adds the ones that are).
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Verifies `auth` (from [`super::parse_request`]) against the request and the secret key of
/// `auth.access_key_id`. Checks time first, then the payload hash, then the signature.
pub fn verify_signature(
    parts: &Parts,
    body: &[u8],
    auth: &ParsedAuth,
    secret_access_key: &str,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    check_time(auth, now)?;
    let payload = payload_hash(parts, body)?;
    let expected = expected_signature(parts, &payload, auth, secret_access_key)?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

fn check_time(auth: &ParsedAuth, now: SystemTime) -> Result<(), SigV4Error> {
    let skew = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_default();
    match auth.location {
        AuthLocation::Header => {
            if skew(auth.time, now) > MAX_CLOCK_SKEW || skew(now, auth.time) > MAX_CLOCK_SKEW {
                return Err(SigV4Error::SkewTooLarge {
                    signed: auth.amz_date.clone(),
                    now: format_amz_date(now),
                    skew_minutes: MAX_CLOCK_SKEW.as_secs() / 60,
                });
            }
        }
        AuthLocation::Query { expires } => {
            if skew(auth.time, now) > MAX_CLOCK_SKEW {
                return Err(SigV4Error::SkewTooLarge {
                    signed: auth.amz_date.clone(),
                    now: format_amz_date(now),
                    skew_minutes: MAX_CLOCK_SKEW.as_secs() / 60,
                });
            }
            if skew(now, auth.time) > expires {
                return Err(SigV4Error::PresignExpired);
            }
        }
    }
    Ok(())
}

/// The payload hash to sign with. A client-sent `x-amz-content-sha256` must match the body: the
/// signature only covers the header, so an unchecked header would let a body be swapped.
fn payload_hash(parts: &Parts, body: &[u8]) -> Result<String, SigV4Error> {
    let actual = hex::encode(Sha256::digest(body));
    match parts.headers.get("x-amz-content-sha256") {
        Some(claimed) if claimed.as_bytes() != actual.as_bytes() => {
            Err(SigV4Error::PayloadHashMismatch)
        }
        _ => Ok(actual),
    }
}

fn expected_signature(
    parts: &Parts,
    payload_hash: &str,
    auth: &ParsedAuth,
    secret: &str,
) -> Result<String, SigV4Error> {
    let headers = signed_header_values(parts, &auth.signed_headers)?;
    let mut settings = SigningSettings::default();
    // Sign exactly what the client listed, nothing excluded, nothing added.
    settings.excluded_headers = Some(Vec::new());
    let (uri, token) = match auth.location {
        AuthLocation::Header => {
            let uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            (Cow::Borrowed(uri), None)
        }
        AuthLocation::Query { expires } => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
            (
                Cow::Owned(strip_presign_params(parts)),
                auth.session_token.clone(),
            )
        }
    };
    // In header form the token header, when signed, is one of `headers`; the identity carries it only
    // for presigned URLs, where aws-sigv4 must re-add it to the canonical query.
    let identity: Identity =
        Credentials::new(&auth.access_key_id, secret, token, None, "podid-verifier").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(auth.time)
        .settings(settings)
        .build()
        .map_err(|_| SigV4Error::SignatureMismatch)?
        .into();
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload_hash.to_owned()),
    )
    .map_err(|_| SigV4Error::SignatureMismatch)?;
    let output = sign(request, &params).map_err(|_| SigV4Error::SignatureMismatch)?;
    Ok(output.signature().to_owned())
}

fn signed_header_values(
    parts: &Parts,
    signed: &[String],
) -> Result<Vec<(String, String)>, SigV4Error> {
    let mut out = Vec::with_capacity(signed.len());
    for name in signed {
        let mut found = false;
        for value in parts.headers.get_all(name.as_str()) {
            let value = value.to_str().map_err(|_| SigV4Error::SignatureMismatch)?;
            out.push((name.clone(), value.to_owned()));
            found = true;
        }
        if !found && name == "host" {
            // HTTP/2 carries the host in :authority, which hyper puts in the URI.
            let authority = parts.uri.authority().ok_or_else(|| {
                SigV4Error::Incomplete("the signed 'host' header is missing".into())
            })?;
            out.push((name.clone(), authority.as_str().to_owned()));
        }
    }
    Ok(out)
}

fn strip_presign_params(parts: &Parts) -> String {
    let path = parts.uri.path();
    let kept: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && !PRESIGN_PARAMS.contains(&key)
        })
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}
