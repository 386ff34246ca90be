//! Compact JWS structure: size caps, the three segments, base64url, the protected header and the
//! algorithm allow-list. Shared by the verifier and the unverified peek.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::TokenError;
use crate::claims::{UnverifiedClaims, WireClaims};

/// Longest token accepted, checked before any parsing. Kubernetes projected tokens are about
/// 1–1.5 KiB (RS256 signature ~342 chars, claims with pod and node ~700 bytes). The EKS Auth model
/// sets no maximum, so we leave 10× room for long issuer URLs, several audiences and RSA-4096 keys,
/// while bounding the base64 and JSON work an unauthenticated caller can make us do per request.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest decoded protected header. Kubernetes sends `{"alg":"RS256","kid":"<43 chars>"}`
/// (~65 bytes); the header is decoded into a stack buffer of this size.
const MAX_HEADER_BYTES: usize = 1024;

/// Longest decoded signature: an RSA-8192 signature, the largest modulus aws-lc-rs verifies.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Stack buffer size for a decoded signature: base64's decoder wants room for its length estimate,
/// which exceeds the exact length by up to two bytes.
pub(crate) const SIGNATURE_BUF: usize = MAX_SIGNATURE_BYTES + 3;
const HEADER_BUF: usize = MAX_HEADER_BYTES + 3;

/// base64url as JOSE uses it, tolerating trailing `=` like go-jose does (the EKS Auth model's
/// token pattern admits `=`). Non-canonical trailing bits are refused.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signature algorithm this crate accepts. Everything else is refused before key lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
    Es384,
}

impl Alg {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            _ => None,
        }
    }
}

/// The three segments of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'t> {
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'t str,
}

/// Decode a token's claims WITHOUT verifying its signature or any claim. For cache keying and
/// cheap pre-checks only (see [`UnverifiedClaims::check_times`]); never for authorisation. The
/// same size and structure caps as verification apply, and the protected header gets the same
/// checks (base64url JSON, an accepted `alg`, no `crit`): a token no verifier would accept for
/// its header — `Bearer <jwt>`, a mangled header — is refused here, before anyone sends it on.
pub fn peek_unverified(token: &str) -> Result<UnverifiedClaims, TokenError> {
    let segments = split(token)?;
    with_header(segments.header, |_| Ok(()))?;
    let payload = decode_payload(segments.payload)?;
    let claims = WireClaims::parse(&payload)?;
    UnverifiedClaims::from_wire(&claims)
}

/// Check the length cap, then split into exactly three non-empty segments.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong {
            max: MAX_TOKEN_BYTES,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "expected three dot-separated segments",
        ));
    };
    // An empty signature (`alg: none`) is refused later, after the header names its algorithm.
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::Malformed("empty segment"));
    }
    let signing_len = header.len() + 1 + payload.len();
    let signing_input = token.get(..signing_len).ok_or(TokenError::Malformed(
        "expected three dot-separated segments",
    ))?;
    Ok(Segments {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Decode the payload segment (length already bounded by [`MAX_TOKEN_BYTES`]).
pub(crate) fn decode_payload(segment: &str) -> Result<Vec<u8>, TokenError> {
    B64URL
        .decode(segment)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))
}

/// Decode the signature into `buf`, returning the used prefix.
pub(crate) fn decode_signature<'b>(
    segment: &str,
    buf: &'b mut [u8; SIGNATURE_BUF],
) -> Result<&'b [u8], TokenError> {
    if segment.is_empty() {
        return Err(TokenError::Malformed("empty signature"));
    }
    decode_into(
        segment,
        buf,
        MAX_SIGNATURE_BYTES,
        "signature is not base64url or too long",
    )
}

/// The protected header, borrowed from its decoded bytes.
#[derive(Debug)]
pub(crate) struct Header<'h> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<Str<'h>>,
}

/// Decode and check the protected header: `alg` on the allow-list, no `crit` (RFC 7515 §4.1.11:
/// a recipient that does not understand a critical extension must refuse the token).
pub(crate) fn with_header<T>(
    segment: &str,
    f: impl FnOnce(Header<'_>) -> Result<T, TokenError>,
) -> Result<T, TokenError> {
    #[derive(Deserialize)]
    struct Wire<'h> {
        #[serde(borrow)]
        alg: Option<Str<'h>>,
        #[serde(borrow)]
        kid: Option<Str<'h>>,
        crit: Option<IgnoredAny>,
    }
    let mut buf = [0u8; HEADER_BUF];
    let bytes = decode_into(
        segment,
        &mut buf,
        MAX_HEADER_BYTES,
        "header is not base64url or too long",
    )?;
    let wire: Wire<'_> = serde_json::from_slice(bytes)
        .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    if wire.crit.is_some() {
        return Err(TokenError::Malformed("header has critical extensions"));
    }
    let alg = wire.alg.ok_or(TokenError::Malformed("header has no alg"))?;
    let alg = Alg::from_name(&alg).ok_or(TokenError::UnsupportedAlgorithm)?;
    f(Header { alg, kid: wire.kid })
}

/// Decode into a caller's stack buffer; too-long input is an error from `decode_slice` (or the
/// `max` check), never a panic or a heap allocation.
fn decode_into<'b>(
    segment: &str,
    buf: &'b mut [u8],
    max: usize,
    what: &'static str,
) -> Result<&'b [u8], TokenError> {
    let len = B64URL
        .decode_slice(segment, &mut *buf)
        .map_err(|_| TokenError::Malformed(what))?;
    if len > max {
        return Err(TokenError::Malformed(what));
    }
    buf.get(..len).ok_or(TokenError::Malformed(what))
}

/// A JSON string that borrows from the input when it has no escapes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests;
