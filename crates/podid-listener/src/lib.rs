//! The bounded accept loop every podid listener runs: the node agent's credential, probe and
//! metrics listeners, the server's API listener and the webhook's HTTPS and metrics listeners.
//!
//! Owns: accepting TCP connections under a global cap and a per-client-IP cap (over-limit
//! connections are closed at once and counted), the TLS handshake deadline, the per-connection
//! header-read and idle deadlines, graceful draining on shutdown, and the Prometheus metrics for
//! all of these ([`ListenerMetrics`]). Serves an axum [`Router`](axum::Router) with hyper-util.
//!
//! Does not own: routes, request bodies or handler deadlines (each service's router), flags
//! (the binaries build [`Limits`]), or TLS certificates (callers pass a ready acceptor).
//!
//! Deadlines are per connection, not per read, and are protocol-agnostic so that HTTP/1, h2c
//! and TLS behave alike: see [`Limits`] for exactly when each one runs.
#![forbid(unsafe_code)]

mod activity;
mod admission;
mod limits;
mod metrics;
mod serve;

pub use admission::Bounds;
pub use limits::Limits;
pub use metrics::ListenerMetrics;
#[cfg(feature = "tls")]
pub use serve::serve_tls;
pub use serve::{SecureTransport, serve};
