//! AWS wire plumbing shared by every podid service.
//!
//! Owns: the AWS error type and its three encodings (rest-json, query/XML, json-1.1), SigV4
//! request verification (header and presigned-query forms) and signing for podid's own clients,
//! ARN parsing, the shared-credentials file format, and the query protocol's XML: a small writer,
//! a serde serializer that turns typed response structs into it, and the response envelope.
//!
//! Does not own: routing, credential lookup (callers pass a resolver), policy evaluation or any
//! service's operations. Nothing here opens sockets; the only file it reads is a credentials
//! file a caller names.
#![forbid(unsafe_code)]

pub mod arn;
pub mod credentials_file;
pub mod error;
pub mod sigv4;
pub mod xml;

pub use arn::{Arn, ArnError};
pub use error::{AwsError, Fault, Protocol};

/// The canonical AWS partition podid answers for.
pub const PARTITION: &str = "aws";

/// A fresh request id in the shape AWS uses (a lowercase UUID).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
