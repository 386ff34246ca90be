//! podid's own SigV4 canonical request and string to sign, for verification.
//!
//! Owns: turning a received request plus its [`ParsedAuth`] into the exact bytes aws-sigv4 1.6's
//! `sign` would hash when podid re-signs it with only the client's `SignedHeaders`
//! (`excluded_headers = Some(vec![])`) and the time from `X-Amz-Date`. aws-sigv4 keeps its
//! canonical request private and re-derives the signing key on every call; building the same
//! bytes here lets `verify` reuse a cached key. Every rule below copies aws-sigv4's
//! `canonical_request.rs`, quirks included (it always signs `x-amz-date` in header form, and
//! never signs `x-amz-user-agent` or `x-amz-checksum-mode` in a presigned URL); the
//! differential test in `tests.rs` holds the two byte-identical.

use std::borrow::Cow;
use std::time::SystemTime;

use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{AuthLocation, ParsedAuth, SigV4Error};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What aws-smithy-http's `query::fmt_string` leaves unescaped: RFC 3986's unreserved set.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// aws-smithy-http's greedy label encoding (the path): the same, keeping `/`.
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

/// Query parameters that carry the presigned signature itself and are not part of what was signed
/// (the canonical query re-adds the ones that are).
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// `YYYYMMDD` of `time`, as aws-sigv4 formats the credential scope date.
pub(crate) fn scope_date(time: SystemTime) -> String {
    let t = time::OffsetDateTime::from(time);
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `YYYYMMDDTHHMMSSZ` of `time`, as aws-sigv4 formats `X-Amz-Date`.
fn date_time(time: SystemTime) -> String {
    let t = time::OffsetDateTime::from(time);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The string to sign for `parts` (signed as `auth` says) whose body hashes to `payload_hash`.
pub(crate) fn string_to_sign(
    parts: &Parts,
    payload_hash: &str,
    auth: &ParsedAuth,
) -> Result<String, SigV4Error> {
    let creq = canonical_request(parts, payload_hash, auth)?;
    let hashed = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        creq.as_bytes(),
    ));
    Ok(format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{hashed}",
        date_time(auth.time),
        scope_date(auth.time),
        auth.region,
        auth.service
    ))
}

/// The canonical request (method, path, query, headers, signed header list, payload hash).
pub(crate) fn canonical_request(
    parts: &Parts,
    payload_hash: &str,
    auth: &ParsedAuth,
) -> Result<String, SigV4Error> {
    let presigned = matches!(auth.location, AuthLocation::Query { .. });
    // The URI as aws-sigv4 was handed it (path and query, presign parameters removed), parsed
    // again as it parses it, so odd paths read the same.
    let uri: Cow<'_, str> = if presigned {
        Cow::Owned(strip_presign_params(parts))
    } else {
        Cow::Borrowed(parts.uri.path_and_query().map_or("/", |pq| pq.as_str()))
    };
    let uri: http::Uri = uri.parse().map_err(|_| SigV4Error::SignatureMismatch)?;
    let headers = canonical_headers(parts, auth, presigned)?;
    let signed: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    let signed = signed.join(";");

    let mut out = String::with_capacity(512);
    out.push_str(parts.method.as_str());
    out.push('\n');
    out.extend(utf8_percent_encode(&normalize_path(uri.path()), PATH_SET));
    out.push('\n');
    push_query(&mut out, uri.query(), auth, presigned, &signed);
    out.push('\n');
    for (name, values) in &headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed);
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// A canonical header: its lowercase name and its trimmed values, in arrival order.
type Header<'a> = (&'a str, Vec<Cow<'a, str>>);

/// The signed headers, sorted by name, each with its values in arrival order: the client's
/// `SignedHeaders` (a name listed twice contributes its values twice, as aws-sigv4 appends
/// them), `host` from the URI authority if the header is absent (HTTP/2), and in header form
/// `x-amz-date` always, replaced by the signing time.
fn canonical_headers<'a>(
    parts: &'a Parts,
    auth: &'a ParsedAuth,
    presigned: bool,
) -> Result<Vec<Header<'a>>, SigV4Error> {
    let mut out: Vec<Header<'a>> = Vec::with_capacity(auth.signed_headers.len() + 1);
    let mut add =
        |name: &'a str, value: Cow<'a, str>| match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => out.push((name, vec![value])),
        };
    for name in &auth.signed_headers {
        let mut found = false;
        for value in parts.headers.get_all(name.as_str()) {
            let value = value.to_str().map_err(|_| SigV4Error::SignatureMismatch)?;
            add(name, trim_all(value));
            found = true;
        }
        if !found && name == "host" {
            // HTTP/2 carries the host in :authority, which hyper puts in the URI.
            let authority = parts.uri.authority().ok_or_else(|| {
                SigV4Error::Incomplete("the signed 'host' header is missing".into())
            })?;
            add(name, trim_all(authority.as_str()));
        }
    }
    if !out.iter().any(|(n, _)| *n == "host") {
        // `parse_request` requires `host` in SignedHeaders, and it was found above or refused.
        return Err(SigV4Error::Incomplete(
            "the signed 'host' header is missing".into(),
        ));
    }
    if presigned {
        out.retain(|(n, _)| *n != "x-amz-user-agent" && *n != "x-amz-checksum-mode");
    } else {
        let date = Cow::Owned(date_time(auth.time));
        match out.iter_mut().find(|(n, _)| *n == "x-amz-date") {
            Some((_, values)) => *values = vec![date],
            None => out.push(("x-amz-date", vec![date])),
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(out)
}

/// The canonical query: every parameter form-decoded, re-encoded, sorted by (name, value) and
/// joined; a presigned URL's own parameters are added back as signed.
fn push_query(
    out: &mut String,
    query: Option<&str>,
    auth: &ParsedAuth,
    presigned: bool,
    signed_headers: &str,
) {
    let encode = |s: &str| utf8_percent_encode(s, QUERY_SET).to_string();
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (encode(&k), encode(&v)))
            .collect();
    if let AuthLocation::Query { expires } = auth.location
        && presigned
    {
        let credential = format!(
            "{}/{}/{}/{}/aws4_request",
            auth.access_key_id,
            scope_date(auth.time),
            auth.region,
            auth.service
        );
        let mut add = |k: &str, v: &str| params.push((encode(k), encode(v)));
        add("X-Amz-Date", &date_time(auth.time));
        add("X-Amz-Expires", &expires.as_secs().to_string());
        add("X-Amz-Algorithm", ALGORITHM);
        add("X-Amz-Credential", &credential);
        add("X-Amz-SignedHeaders", signed_headers);
        if let Some(token) = &auth.session_token {
            add("X-Amz-Security-Token", token);
        }
    }
    params.sort_unstable();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

/// The path and the query without the presign parameters, as `verify` hands a presigned URL
/// to the signer.
pub(crate) fn strip_presign_params(parts: &Parts) -> String {
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

/// aws-sigv4's `normalize_uri_path`: a leading `/`, then `.`/`..`/empty segments resolved
/// (only when there is a `.` or `//` to resolve), keeping a trailing slash.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    let path: Cow<'_, str> = if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    };
    if !(path.contains('.') || path.contains("//")) {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut result = segments.join("/");
    if !result.starts_with('/') {
        result.insert(0, '/');
    }
    let trailing = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if trailing && !result.ends_with('/') {
        result.push('/');
    }
    Cow::Owned(result)
}

/// aws-sigv4's `trim_all`: strip leading and trailing spaces, collapse runs of spaces (tabs
/// are left alone, as there).
fn trim_all(value: &str) -> Cow<'_, str> {
    let value = value.trim_matches(' ');
    if !value.contains("  ") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut previous_space = false;
    for c in value.chars() {
        if !(c == ' ' && previous_space) {
            out.push(c);
        }
        previous_space = c == ' ';
    }
    Cow::Owned(out)
}
