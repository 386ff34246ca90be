//! AWS Signature Version 4: verifying requests podid receives and signing requests podid sends.
//!
//! Verification recomputes the signature exactly as the official `aws-sigv4` crate would when fed
//! the headers the client listed in `SignedHeaders` and the time from `X-Amz-Date` (podid builds
//! the canonical request itself, `canonical`, so the derived signing key can be cached,
//! `key_cache`; a differential test against aws-sigv4 keeps the bytes identical), then compares
//! the two signatures in constant time (see `../shared/reference/crates.md` for why aws-sigv4
//! and not a third-party verifier). Signing podid's own requests still uses aws-sigv4. Parsing and the checks that need no secret (scope, clock skew,
//! presign expiry) come first, so an unknown key or a malformed header costs no HMAC work.

mod canonical;
mod error;
mod key_cache;
mod parse;
mod sign;
mod verify;

pub use error::SigV4Error;
pub use key_cache::{DEFAULT_SIGNING_KEY_CACHE_ENTRIES, SigningKeyCache};
pub use parse::{AuthLocation, ParsedAuth, parse_request};
pub use sign::{SigningCredentials, sign_request};
pub use verify::{MAX_CLOCK_SKEW, verify_signature, verify_signature_cached};

#[cfg(test)]
mod differential_tests;
#[cfg(test)]
mod tests;
