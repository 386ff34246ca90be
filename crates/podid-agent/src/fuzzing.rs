//! Entry point for the fuzz targets in `fuzz/` only, behind the `fuzzing` feature: not part of
//! the crate's API (hidden from the docs, never enabled by a product build).
//!
//! `credentials_request` runs everything `/v1/credentials` does to a request before the
//! credential cache is asked, with the handler's own functions: the `Host` checks, the empty
//! token check, the unverified claim peek and the `exp`/`nbf` rules. Nothing here may panic on
//! any input: a panic is a fuzzing finding.

use std::net::IpAddr;

use crate::handler::{CredentialService, check_request, read_token};

/// The status the agent answers `request` with when the agent is bound to `bound`, at `now`
/// (Unix seconds); 200 means the request passed every check and would be served from the cache
/// or EKS Auth.
pub fn credentials_request(bound: &[IpAddr], request: &http::Request<()>, now: i64) -> u16 {
    let (hosts, display) = CredentialService::hosts_for(bound);
    let refusal = match check_request(&hosts, request.version(), request.uri(), request.headers()) {
        Ok(token) => match read_token(token, now) {
            Ok(_) => return 200,
            Err(refusal) => refusal,
        },
        Err(refusal) => refusal,
    };
    refusal.respond(&display).status().as_u16()
}
