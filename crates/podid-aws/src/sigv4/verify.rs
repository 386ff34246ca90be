//! Recomputing a request's SigV4 signature and comparing it in constant time.

use std::time::{Duration, SystemTime};

use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::canonical::{scope_date, string_to_sign};
use super::key_cache::SigningKeyCache;
use super::parse::format_amz_date;
use super::{AuthLocation, ParsedAuth, SigV4Error};

/// How far the client's clock may be from ours (AWS allows 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Verifies `auth` (from [`super::parse_request`]) against the request and the secret key of
/// `auth.access_key_id`. Checks time first, then the payload hash, then the signature.
pub fn verify_signature(
    parts: &Parts,
    body: &[u8],
    auth: &ParsedAuth,
    secret_access_key: &str,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    let uncached = SigningKeyCache::new(0);
    verify_signature_cached(&uncached, parts, body, auth, secret_access_key, now)
}

/// [`verify_signature`], taking the derived signing key from `cache` (and leaving it there).
pub fn verify_signature_cached(
    cache: &SigningKeyCache,
    parts: &Parts,
    body: &[u8],
    auth: &ParsedAuth,
    secret_access_key: &str,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    check_time(auth, now)?;
    let payload = payload_hash(parts, body)?;
    let string_to_sign = string_to_sign(parts, &payload, auth)?;
    // The scope date of the signing time, not the client's credential scope: aws-sigv4 signs
    // with the former, so a client whose two dates disagree is refused, as before.
    let key = cache.get(
        &auth.access_key_id,
        secret_access_key,
        &scope_date(auth.time),
        &auth.region,
        &auth.service,
    );
    let expected = key.sign(&string_to_sign);
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
