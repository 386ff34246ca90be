//! AWS Signature Version 4: verifying requests podid receives and signing requests podid sends.
//!
//! Verification recomputes the signature with the official `aws-sigv4` crate, feeding it exactly
//! the headers the client listed in `SignedHeaders` and the time from `X-Amz-Date`, then compares
//! the two signatures in constant time (see `../shared/reference/crates.md` for why this crate and
//! not a third-party verifier). Parsing and the checks that need no secret (scope, clock skew,
//! presign expiry) come first, so an unknown key or a malformed header costs no HMAC work.

mod error;
mod parse;
mod sign;
mod verify;

pub use error::SigV4Error;
pub use parse::{AuthLocation, ParsedAuth, parse_request};
pub use sign::{SigningCredentials, sign_request};
pub use verify::{MAX_CLOCK_SKEW, verify_signature};

#[cfg(test)]
mod tests;
