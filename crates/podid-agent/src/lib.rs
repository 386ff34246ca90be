//! The podid node agent: the credential endpoint AWS SDKs in pods call
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials`).
//!
//! Owns: the `/v1/credentials` wire behaviour of the reference EKS Pod Identity Agent (validation
//! order, exact error texts, JSON field order), the credential cache (keyed by pod UID, local
//! JWKS validation of rotated tokens, single-flight upstream calls, refresh-ahead that stops for
//! pods that stopped asking), the signed, retried, failing-over EKS Auth client, the probe and
//! metrics listeners, and the link-local address setup ([`initialize`]).
//!
//! Does not own: flags, env or the log subscriber (`podid-agent-cli`, behind both the
//! `podid-agent` binary and `podid agent`, builds [`AgentConfig`] and installs tracing), token
//! cryptography (`podid-token`), SigV4 (`podid-aws`), or issuing
//! credentials (the podid server answers EKS Auth).
#![forbid(unsafe_code)]

mod cache;
mod config;
/// Entry point for the fuzz targets in `fuzz/` only, behind the `fuzzing` feature: not part of
/// the crate's API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod keys;
mod linklocal;
mod metrics;
mod nodecreds;
mod probe;
mod ratelimit;
mod server;
mod upstream;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{
    AgentConfig, DEFAULT_BIND_HOSTS, DEFAULT_CONNECTION_LIMITS, IPV4_LINK_LOCAL, IPV6_LINK_LOCAL,
    RateLimit, parse_bind_host,
};
pub use linklocal::{FamilyReport, InitReport, LINK_NAME, LinkKind, initialize};
pub use nodecreds::NodeCredentialSource;
pub use podid_listener::Limits as ConnectionLimits;
pub use server::{Agent, BindFailure, StartedAgent, run};

/// Why the agent could not start, serve or set up its addresses. No variant carries a token or
/// a secret key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is unusable (checked before any port is bound).
    #[error("invalid agent configuration: {0}")]
    InvalidConfig(String),
    /// A listener that must succeed could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Every credential listener failed to bind.
    #[error("no credential listener could be bound")]
    NoListener,
    /// The upstream HTTP client could not be built.
    #[error("building the HTTP client failed")]
    HttpClient(#[source] reqwest::Error),
    /// The CA bundle file could not be read.
    #[error("reading CA bundle {path}")]
    CaBundleRead {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle holds no usable PEM certificate.
    #[error("CA bundle {path} is not a PEM certificate bundle")]
    CaBundleInvalid {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: reqwest::Error,
    },
    /// The node's own AWS credentials are missing or unreadable.
    #[error("node credentials: {0}")]
    NodeCredentials(String),
    /// A listener stopped with an I/O error.
    #[error("serving {addr} failed")]
    Serve {
        /// The listener address.
        addr: SocketAddr,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// `ip` could not be started (iproute2 missing?).
    #[error("running `ip` failed")]
    IpSpawn(#[source] std::io::Error),
    /// An `ip` command exited non-zero.
    #[error("`{command}` failed: {stderr}")]
    IpCommand {
        /// The command line.
        command: String,
        /// Its trimmed stderr.
        stderr: String,
    },
    /// `ip -j` printed something that is not the JSON we expect.
    #[error("unexpected `ip -j` output: {0}")]
    IpOutput(String),
    /// The route to an agent address points at another interface.
    #[error(
        "expected route {dst} to use interface {expected} but it uses {found}, please remove the route and try again"
    )]
    RouteConflict {
        /// The route destination.
        dst: String,
        /// [`LINK_NAME`].
        expected: &'static str,
        /// The interface the existing route uses.
        found: String,
    },
}
