//! [`Limits`]: the deadlines and connection caps of one listener.

use std::num::NonZeroU32;
use std::time::Duration;

/// Deadlines and caps for one listener. The binaries fill these from flags; this crate has no
/// defaults of its own because the right numbers differ per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the end of the TLS handshake (or from accept, without TLS) until the connection's
    /// first request has been read (HTTP/1 head complete, or an h2 stream opened). Stops
    /// connections that send nothing or dribble a header (slowloris).
    pub header_read_timeout: Duration,
    /// From the end of a connection's last response until its next request has been read. An
    /// idle connection is shut down gracefully (HTTP/1: closed; h2: GOAWAY). Never runs while a
    /// request is in flight.
    pub idle_timeout: Duration,
    /// From accept until the TLS handshake completes (TLS listeners only).
    pub tls_handshake_timeout: Duration,
    /// Open connections at most; the next one is closed as soon as it is accepted.
    pub max_connections: NonZeroU32,
    /// Open connections per client IP at most, so that one client cannot take every slot
    /// (`None`: only the global cap).
    pub max_connections_per_client: Option<NonZeroU32>,
}

impl Limits {
    /// Checks that every deadline is non-zero and the per-client cap does not exceed the global
    /// one. The message names the offending setting by its meaning, for the binary to prefix
    /// with the flag name.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("header read timeout", self.header_read_timeout),
            ("idle timeout", self.idle_timeout),
            ("TLS handshake timeout", self.tls_handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        if let Some(per_client) = self.max_connections_per_client
            && per_client > self.max_connections
        {
            return Err(format!(
                "per-client connection limit {per_client} exceeds the connection limit {}",
                self.max_connections
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(5),
            max_connections: NonZeroU32::new(10).unwrap(),
            max_connections_per_client: NonZeroU32::new(2),
        }
    }

    #[test]
    fn refuses_zero_deadlines_and_a_per_client_cap_above_the_global_one() {
        assert!(limits().validate().is_ok());
        let mut l = limits();
        l.header_read_timeout = Duration::ZERO;
        assert!(l.validate().is_err());
        let mut l = limits();
        l.idle_timeout = Duration::ZERO;
        assert!(l.validate().is_err());
        let mut l = limits();
        l.tls_handshake_timeout = Duration::ZERO;
        assert!(l.validate().is_err());
        let mut l = limits();
        l.max_connections_per_client = NonZeroU32::new(11);
        assert!(l.validate().is_err());
        l.max_connections_per_client = None;
        assert!(l.validate().is_ok());
    }
}
