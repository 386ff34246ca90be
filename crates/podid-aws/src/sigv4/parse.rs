//! Extracting the SigV4 authentication parameters from a request, without any secret.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::SigV4Error;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Longest `Authorization` header or `X-Amz-Credential` accepted; real ones are ~250 bytes plus
/// the signed-header list. Caps work before parsing (memory and CPU DoS).
const MAX_AUTH_LEN: usize = 8 * 1024;
/// Most signed headers accepted: the SDKs sign fewer than ten.
const MAX_SIGNED_HEADERS: usize = 64;
/// Longest presign lifetime AWS accepts (7 days).
const MAX_PRESIGN_SECS: u64 = 7 * 24 * 3600;
/// Session tokens larger than this are refused before decoding. AWS documents no maximum but
/// real ones stay below 4 KiB; podid's sealed tokens are far smaller.
pub(crate) const MAX_SESSION_TOKEN_LEN: usize = 8 * 1024;

/// Where the signature travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    Header,
    /// A presigned URL valid for this long after `X-Amz-Date`.
    Query {
        expires: Duration,
    },
}

/// The authentication parameters of a SigV4 request.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    pub location: AuthLocation,
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, in the client's order.
    pub signed_headers: Vec<String>,
    /// Lowercase hex.
    pub signature: String,
    /// The signing time exactly as sent (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    pub time: SystemTime,
    pub session_token: Option<String>,
}

impl fmt::Debug for ParsedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedAuth")
            .field("location", &self.location)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("amz_date", &self.amz_date)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Finds and parses the SigV4 parameters in the `Authorization` header or the query string.
pub fn parse_request(parts: &Parts) -> Result<ParsedAuth, SigV4Error> {
    // Two credentials, dates or tokens make the request ambiguous: an intermediary may read
    // the other one. Refused, whichever comes first.
    for name in [
        http::header::AUTHORIZATION.as_str(),
        "x-amz-date",
        "x-amz-security-token",
    ] {
        if parts.headers.get_all(name).iter().nth(1).is_some() {
            return Err(SigV4Error::Incomplete(format!(
                "The request has more than one {name} header"
            )));
        }
    }
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| SigV4Error::Incomplete("Authorization header is not ASCII".into()))?;
        return parse_header(parts, value);
    }
    let query = parts.uri.query().unwrap_or_default();
    if query.contains("X-Amz-Signature=") || query.contains("X-Amz-Credential=") {
        return parse_query(query);
    }
    Err(SigV4Error::Missing)
}

fn parse_header(parts: &Parts, value: &str) -> Result<ParsedAuth, SigV4Error> {
    if value.len() > MAX_AUTH_LEN {
        return Err(SigV4Error::Incomplete(
            "Authorization header is too long".into(),
        ));
    }
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        return Err(SigV4Error::Incomplete(format!(
            "Authorization header requires the {ALGORITHM} algorithm"
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let item = item.trim();
        match item.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let missing = |name: &str| {
        SigV4Error::Incomplete(format!(
            "Authorization header requires '{name}' parameter. Authorization={ALGORITHM} ..."
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            SigV4Error::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    let session_token = match parts.headers.get("x-amz-security-token") {
        Some(v) => Some(token_str(v.as_bytes())?),
        None => None,
    };
    assemble(
        AuthLocation::Header,
        credential,
        signed_headers,
        signature,
        amz_date,
        session_token,
    )
}

fn parse_query(query: &str) -> Result<ParsedAuth, SigV4Error> {
    if query.len() > 4 * MAX_AUTH_LEN {
        return Err(SigV4Error::Incomplete("query string is too long".into()));
    }
    let (
        mut algorithm,
        mut credential,
        mut signed,
        mut signature,
        mut date,
        mut expires,
        mut token,
    ) = (None, None, None, None, None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "X-Amz-Algorithm" => algorithm = Some(v.into_owned()),
            "X-Amz-Credential" => credential = Some(v.into_owned()),
            "X-Amz-SignedHeaders" => signed = Some(v.into_owned()),
            "X-Amz-Signature" => signature = Some(v.into_owned()),
            "X-Amz-Date" => date = Some(v.into_owned()),
            "X-Amz-Expires" => expires = Some(v.into_owned()),
            "X-Amz-Security-Token" => token = Some(token_str(v.as_bytes())?),
            _ => {}
        }
    }
    let missing = |name: &str| {
        SigV4Error::Incomplete(format!(
            "AWS query-string parameters must include '{name}'."
        ))
    };
    if algorithm.as_deref() != Some(ALGORITHM) {
        return Err(missing("X-Amz-Algorithm"));
    }
    let credential = credential.ok_or_else(|| missing("X-Amz-Credential"))?;
    let signed = signed.ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("X-Amz-Signature"))?;
    let date = date.ok_or_else(|| missing("X-Amz-Date"))?;
    let expires = expires.ok_or_else(|| missing("X-Amz-Expires"))?;
    let expires: u64 = expires
        .parse()
        .ok()
        .filter(|s| (1..=MAX_PRESIGN_SECS).contains(s))
        .ok_or_else(|| {
            SigV4Error::Incomplete(format!(
                "X-Amz-Expires must be between 1 and {MAX_PRESIGN_SECS} seconds"
            ))
        })?;
    let location = AuthLocation::Query {
        expires: Duration::from_secs(expires),
    };
    assemble(location, &credential, &signed, &signature, &date, token)
}

fn token_str(bytes: &[u8]) -> Result<String, SigV4Error> {
    if bytes.len() > MAX_SESSION_TOKEN_LEN || bytes.is_empty() {
        return Err(SigV4Error::InvalidSessionToken);
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| SigV4Error::InvalidSessionToken)
}

fn assemble(
    location: AuthLocation,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
    session_token: Option<String>,
) -> Result<ParsedAuth, SigV4Error> {
    let mut scope = credential.split('/');
    let (Some(key), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, got '{}'",
            credential.split('/').skip(1).collect::<Vec<_>>().join("/")
        )));
    };
    if key.is_empty()
        || key.len() > 128
        || date.len() != 8
        || region.is_empty()
        || service.is_empty()
    {
        return Err(SigV4Error::Incomplete(
            "Credential scope is malformed".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::SignatureMismatch);
    }
    let signed: Vec<String> = signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if signed.len() > MAX_SIGNED_HEADERS || signed.iter().any(String::is_empty) {
        return Err(SigV4Error::Incomplete("SignedHeaders is malformed".into()));
    }
    if !signed.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "SignedHeaders must include 'host'".into(),
        ));
    }
    let time = parse_amz_date(amz_date)?;
    Ok(ParsedAuth {
        location,
        access_key_id: key.to_owned(),
        scope_date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed,
        signature: signature.to_ascii_lowercase(),
        amz_date: amz_date.to_owned(),
        time,
        session_token,
    })
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(s: &str) -> Result<SystemTime, SigV4Error> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .map(|t| SystemTime::from(t.assume_utc()))
        .map_err(|_| SigV4Error::Incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{s}'. See http://en.wikipedia.org/wiki/ISO_8601")))
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(t: SystemTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(t)
        .format(fmt)
        .unwrap_or_default()
}
