//! Where a `jwks_uri` fetch may go. Whoever may register a cluster chooses the URL the server
//! fetches, so the fetch is a server-side request forgery lever unless it is fenced: https only
//! (unless allowed), and never to loopback, link-local (instance metadata, the node's Pod
//! Identity agent), cloud metadata, unspecified, multicast or reserved addresses, unless an
//! allowed network covers them.
//!
//! The fence is applied where the address is known: to IP literals in the URL (and in every
//! redirect target) before any connection, and to every address a host name resolves to, in the
//! client's DNS resolver, so a name that resolves (or is rebound) to a refused address never
//! gets a connection either. Proxies are not used for these fetches, since a proxy would
//! resolve names where this fence cannot see.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Where `jwks_uri` fetches may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Plain `http://` URIs are allowed (default: https only).
    pub allow_http: bool,
    /// Networks allowed although their addresses are refused by default (for example
    /// `127.0.0.1/32` for an API server on the same machine).
    pub allowed_networks: Vec<IpNet>,
}

/// Why a fetch target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefusal {
    #[error("{0:?} is not an absolute http(s) URL")]
    NotAUrl(String),
    #[error("the URL scheme is {0}; only https is allowed (http only where the server allows it)")]
    Scheme(String),
    #[error("the URL must not carry a user name or password")]
    UserInfo,
    #[error("{ip} is a {kind} address, refused unless the server's allowed networks cover it")]
    Address { ip: IpAddr, kind: &'static str },
    #[error("{host} resolves to no allowed address ({refused})")]
    Resolved { host: String, refused: String },
}

impl EgressPolicy {
    /// Checks a URL before anything is fetched from it: scheme, no credentials, and its host
    /// when that is an IP literal (names are checked as they resolve).
    pub fn check_url(&self, text: &str) -> Result<Url, EgressRefusal> {
        let url = Url::parse(text).map_err(|_| EgressRefusal::NotAUrl(text.to_owned()))?;
        self.check_parsed(&url)?;
        Ok(url)
    }

    fn check_parsed(&self, url: &Url) -> Result<(), EgressRefusal> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(EgressRefusal::Scheme("http".to_owned())),
            _ => return Err(EgressRefusal::NotAUrl(url.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressRefusal::UserInfo);
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(EgressRefusal::NotAUrl(url.to_string())),
        }
    }

    /// Whether a fetch may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), EgressRefusal> {
        if self.allowed_networks.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        match refused_kind(ip) {
            Some(kind) => Err(EgressRefusal::Address { ip, kind }),
            None => Ok(()),
        }
    }

    /// A DNS resolver that drops refused addresses, and fails when none is left.
    pub(crate) fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            policy: self.clone(),
        })
    }

    /// A redirect policy that follows at most `max` redirects, each to a URL this policy allows.
    pub(crate) fn redirects(&self, max: usize) -> reqwest::redirect::Policy {
        let policy = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                return attempt.error(format!("more than {max} redirects"));
            }
            match policy.check_parsed(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => {
                    let target = attempt.url().to_string();
                    attempt.error(format!("redirect to {target} refused: {refusal}"))
                }
            }
        })
    }
}

/// The kind of address refused by default, or `None` for an ordinary unicast address (public
/// or private: an on-premises API server usually has a private address).
fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        // 169.254.169.254 (instance metadata on AWS, Azure, GCP, OCI), 169.254.170.2 (ECS
        // credentials), 169.254.170.23 (the Pod Identity agent).
        Some("link-local")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else if a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("multicast or broadcast")
    } else if a >= 240 || (a == 192 && b == 0 && ip.octets()[2] == 0) {
        Some("reserved")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // IPv4 reached through IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d) and the NAT64
    // well-known prefix (64:ff9b::/96) are judged by the IPv4 address they carry.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
    {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return refused_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if s[0] == 0xfd00 && s[1] == 0x0ec2 {
        // fd00:ec2::/32: AWS's IPv6 instance metadata (fd00:ec2::254), DNS and the Pod Identity
        // agent (fd00:ec2::23).
        Some("cloud metadata")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The fetch client's resolver: the system's, minus refused addresses.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    policy: EgressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|addr| policy.check_ip(addr.ip()).is_ok());
            if allowed.is_empty() {
                let refused = if refused.is_empty() {
                    "no addresses".to_owned()
                } else {
                    refused
                        .iter()
                        .filter_map(|a| policy.check_ip(a.ip()).err())
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                return Err(EgressRefusal::Resolved { host, refused }.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, ip: &str) -> Option<&'static str> {
        match policy.check_ip(ip.parse().unwrap()) {
            Ok(()) => None,
            Err(EgressRefusal::Address { kind, .. }) => Some(kind),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn metadata_loopback_and_link_local_are_refused_in_every_spelling() {
        let p = EgressPolicy::default();
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("::1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("169.254.170.2", "link-local"),
            ("169.254.170.23", "link-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd00:ec2::23", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast or broadcast"),
            ("255.255.255.255", "multicast or broadcast"),
            ("ff02::1", "multicast"),
            ("240.0.0.1", "reserved"),
            // IPv4 in IPv6 clothing.
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
        ] {
            assert_eq!(refused(&p, ip), Some(kind), "{ip}");
        }
    }

    #[test]
    fn ordinary_public_and_private_addresses_are_allowed() {
        let p = EgressPolicy::default();
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.10",
            "100.64.0.1",
            "52.94.1.1",
            "2600:1f18::1",
            "fd12:3456::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(refused(&p, ip), None, "{ip}");
        }
    }

    #[test]
    fn allowed_networks_override_the_defaults() {
        let p = EgressPolicy {
            allow_http: false,
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        };
        assert_eq!(refused(&p, "127.0.0.1"), None);
        assert_eq!(refused(&p, "127.0.0.2"), Some("loopback"));
        assert_eq!(refused(&p, "169.254.169.254"), Some("link-local"));
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_hosts() {
        let p = EgressPolicy::default();
        assert!(p.check_url("https://oidc.example.com/keys").is_ok());
        assert!(p.check_url("https://10.0.0.5:6443/openid/v1/jwks").is_ok());
        assert_eq!(
            p.check_url("http://oidc.example.com/keys"),
            Err(EgressRefusal::Scheme("http".into()))
        );
        assert!(matches!(
            p.check_url("file:///etc/passwd"),
            Err(EgressRefusal::NotAUrl(_))
        ));
        assert!(matches!(
            p.check_url("keys.json"),
            Err(EgressRefusal::NotAUrl(_))
        ));
        assert_eq!(
            p.check_url("https://user:pw@oidc.example.com/"),
            Err(EgressRefusal::UserInfo)
        );
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://127.0.0.1:6443/openid/v1/jwks",
            // Numeric spellings the URL parser normalizes to 169.254.169.254.
            "https://2852039166/",
            "https://0xa9.0xfe.0xa9.0xfe/",
        ] {
            assert!(
                matches!(p.check_url(url), Err(EgressRefusal::Address { .. })),
                "{url} was allowed"
            );
        }
        let http = EgressPolicy {
            allow_http: true,
            ..EgressPolicy::default()
        };
        assert!(http.check_url("http://oidc.example.com/keys").is_ok());
        assert!(http.check_url("http://169.254.169.254/").is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        // `localhost` resolves to loopback addresses only (no traffic is sent).
        let resolver = EgressPolicy::default().resolver();
        let err = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost was allowed");
        assert!(
            err.to_string()
                .contains("localhost resolves to no allowed address"),
            "{err}"
        );
        assert!(err.to_string().contains("loopback"), "{err}");

        let allowed = EgressPolicy {
            allow_http: false,
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        }
        .resolver();
        let addrs: Vec<_> = allowed
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
