//! `podid agent initialize`: the dummy link `pod-id-link0` carrying `169.254.170.23/32` and
//! `fd00:ec2::23/128`, plus their main-table routes (reference `pkg/initalizer`). Idempotent;
//! IPv4 failures are errors, IPv6 is best effort (reported in [`InitReport`]).
//!
//! On a kernel built without the dummy link driver the link is created as a bridge with no
//! ports instead (with a warning): a port-less bridge holds local addresses exactly like a
//! dummy, and the kernel delivers traffic for them locally. An existing `pod-id-link0` is reused
//! whatever its kind.
//!
//! Implemented by running iproute2's `ip` rather than speaking netlink: the workspace forbids
//! `unsafe` and has no safe netlink crate, and `ip` is on every node image (the reference's init
//! container is privileged on the host network namespace, which is where `ip` acts). Existing
//! state is read from `ip -j` JSON, never by scraping text.

use std::process::Command;

use serde::Deserialize;

use crate::Error;
use crate::config::{IPV4_LINK_LOCAL, IPV6_LINK_LOCAL};

/// The reference's `AgentLinkName`.
pub const LINK_NAME: &str = "pod-id-link0";

/// What [`initialize`] found and changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The link did not exist and was created.
    pub link_created: bool,
    /// What kind of link `pod-id-link0` is (as created, or as found).
    pub link_kind: LinkKind,
    /// IPv4 outcome (always configured when `initialize` returns `Ok`).
    pub ipv4: FamilyReport,
    /// IPv6 outcome; a failure here is not an error (IPv6 may be disabled on the node).
    pub ipv6: FamilyReport,
}

/// The kernel link kind of `pod-id-link0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// A dummy link, as the reference creates.
    Dummy,
    /// A port-less bridge: the fallback on kernels without the dummy driver.
    Bridge,
    /// A pre-existing link of another kind, reused as it is (the `ip` kind name; empty when
    /// `ip` names none, e.g. a physical device).
    Other(String),
}

impl LinkKind {
    /// The kind as `ip link add ... type <kind>` spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Dummy => "dummy",
            Self::Bridge => "bridge",
            Self::Other(kind) => kind,
        }
    }

    fn from_ip(kind: Option<&str>) -> Self {
        match kind {
            Some("dummy") => Self::Dummy,
            Some("bridge") => Self::Bridge,
            other => Self::Other(other.unwrap_or_default().to_owned()),
        }
    }
}

/// One address family's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyReport {
    /// Address and route are in place; the flags say whether this run added them.
    Configured {
        /// The address was added by this run.
        address_added: bool,
        /// The route was added by this run.
        route_added: bool,
    },
    /// Setting this family up failed (IPv6 only).
    Failed(String),
}

/// Set up the link, addresses and routes in the current network namespace, or in `netns` (a
/// name under `/var/run/netns`, as `ip -n` takes it).
pub fn initialize(netns: Option<&str>) -> Result<InitReport, Error> {
    let ip = Ip { netns };
    let (link_created, link_kind) = match ip.link_kind()? {
        Some(kind) => (false, kind),
        None => (true, ip.create_link()?),
    };
    let v4 = Family {
        flag: "-4",
        family: "inet",
        address: IPV4_LINK_LOCAL.to_string(),
        prefix: 32,
    };
    let v6 = Family {
        flag: "-6",
        family: "inet6",
        address: IPV6_LINK_LOCAL.to_string(),
        prefix: 128,
    };
    let v4_added = ip.ensure_address(&v4)?;
    let v6_added = ip.ensure_address(&v6);
    ip.run(&["link", "set", LINK_NAME, "up"])?;
    let ipv4 = FamilyReport::Configured {
        address_added: v4_added,
        route_added: ip.ensure_route(&v4)?,
    };
    let ipv6 = match v6_added.and_then(|address_added| Ok((address_added, ip.ensure_route(&v6)?))) {
        Ok((address_added, route_added)) => FamilyReport::Configured {
            address_added,
            route_added,
        },
        Err(e) => {
            tracing::warn!(error = %e, "IPv6 link-local setup failed; continuing with IPv4 only");
            FamilyReport::Failed(e.to_string())
        }
    };
    let report = InitReport {
        link_created,
        link_kind,
        ipv4,
        ipv6,
    };
    tracing::info!(
        ?report,
        link = LINK_NAME,
        "link-local addresses initialised"
    );
    Ok(report)
}

struct Family {
    flag: &'static str,
    family: &'static str,
    address: String,
    prefix: u8,
}

impl Family {
    fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }
}

#[derive(Deserialize)]
struct WireLink {
    #[serde(default)]
    addr_info: Vec<WireAddr>,
}

#[derive(Deserialize)]
struct WireLinkDetail {
    linkinfo: Option<WireLinkInfo>,
}

#[derive(Deserialize)]
struct WireLinkInfo {
    info_kind: Option<String>,
}

#[derive(Deserialize)]
struct WireAddr {
    family: Option<String>,
    local: Option<String>,
}

#[derive(Deserialize)]
struct WireRoute {
    dev: Option<String>,
}

/// `ip`, optionally inside a named network namespace.
struct Ip<'a> {
    netns: Option<&'a str>,
}

impl Ip<'_> {
    /// The kind of the existing link, or `None` when there is no such link.
    fn link_kind(&self) -> Result<Option<LinkKind>, Error> {
        match self.output(&["-j", "-d", "link", "show", "dev", LINK_NAME]) {
            Ok(out) => {
                let links: Vec<WireLinkDetail> = parse(&out)?;
                let kind = links
                    .first()
                    .and_then(|l| l.linkinfo.as_ref())
                    .and_then(|i| i.info_kind.as_deref());
                Ok(Some(LinkKind::from_ip(kind)))
            }
            Err(Error::IpCommand { stderr, .. }) if stderr.contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create the link as a dummy, or as a port-less bridge when the kernel has no dummy driver.
    fn create_link(&self) -> Result<LinkKind, Error> {
        match self.run(&["link", "add", LINK_NAME, "type", "dummy"]) {
            Ok(()) => Ok(LinkKind::Dummy),
            Err(Error::IpCommand { stderr, .. }) if link_kind_unsupported(&stderr) => {
                tracing::warn!(
                    reason = %stderr,
                    link = LINK_NAME,
                    "the kernel has no dummy link driver; creating the link as a bridge without ports, which holds local addresses the same way"
                );
                self.run(&["link", "add", LINK_NAME, "type", "bridge"])?;
                Ok(LinkKind::Bridge)
            }
            Err(e) => Err(e),
        }
    }

    /// Add the family's address unless the link already has it; true when added.
    fn ensure_address(&self, family: &Family) -> Result<bool, Error> {
        let out = self.output(&["-j", family.flag, "addr", "show", "dev", LINK_NAME])?;
        let links: Vec<WireLink> = parse(&out)?;
        let present = links.iter().flat_map(|l| &l.addr_info).any(|a| {
            a.family.as_deref() == Some(family.family)
                && a.local.as_deref() == Some(family.address.as_str())
        });
        if present {
            return Ok(false);
        }
        let cidr = family.cidr();
        let mut args = vec![family.flag, "addr", "add", cidr.as_str(), "dev", LINK_NAME];
        if family.family == "inet6" {
            // Skip duplicate address detection: a tentative address cannot be bound, and the
            // agent starts right after this.
            args.push("nodad");
        }
        self.run(&args)?;
        Ok(true)
    }

    /// Add the main-table route to the link unless present; a route for the same destination
    /// through another interface is an error (the reference refuses it too).
    fn ensure_route(&self, family: &Family) -> Result<bool, Error> {
        let cidr = family.cidr();
        let out = self.output(&[
            "-j",
            family.flag,
            "route",
            "show",
            "table",
            "main",
            "exact",
            cidr.as_str(),
        ])?;
        let routes: Vec<WireRoute> = parse(&out)?;
        if let Some(route) = routes.first() {
            let dev = route.dev.as_deref().unwrap_or("(none)");
            if dev == LINK_NAME {
                return Ok(false);
            }
            return Err(Error::RouteConflict {
                dst: cidr,
                expected: LINK_NAME,
                found: dev.to_owned(),
            });
        }
        self.run(&[family.flag, "route", "add", cidr.as_str(), "dev", LINK_NAME])?;
        Ok(true)
    }

    fn run(&self, args: &[&str]) -> Result<(), Error> {
        self.output(args).map(drop)
    }

    fn output(&self, args: &[&str]) -> Result<Vec<u8>, Error> {
        let mut command = Command::new("ip");
        if let Some(ns) = self.netns {
            command.args(["-n", ns]);
        }
        command.args(args);
        let output = command.output().map_err(Error::IpSpawn)?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let prefix = self.netns.map(|ns| format!("-n {ns} ")).unwrap_or_default();
        Err(Error::IpCommand {
            command: format!("ip {prefix}{}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Whether `ip link add ... type <kind>` failed because the kernel lacks that link driver
/// (iproute2 reports the kernel's `EOPNOTSUPP` as "Unknown device type"; older versions print
/// the errno text). Any other failure (no permission, name taken) must not trigger a fallback.
fn link_kind_unsupported(stderr: &str) -> bool {
    stderr.contains("Unknown device type") || stderr.contains("Operation not supported")
}

/// `ip -j` prints nothing at all (not `[]`) for some empty results.
fn parse<T: for<'de> Deserialize<'de>>(out: &[u8]) -> Result<Vec<T>, Error> {
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(out).map_err(|e| Error::IpOutput(e.to_string()))
}

#[cfg(test)]
mod tests;
