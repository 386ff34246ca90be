//! Runs the initializer inside throwaway network namespaces.

use std::process::Command;

use super::*;

/// A network namespace deleted on drop.
struct Netns(String);

impl Netns {
    /// `None` (with the reason printed) when namespaces cannot be created here.
    fn create() -> Option<Self> {
        let name = format!("podid-test-{:08x}", rand::random::<u32>());
        match Command::new("ip").args(["netns", "add", &name]).output() {
            Ok(out) if out.status.success() => Some(Self(name)),
            Ok(out) => {
                println!(
                    "SKIPPED: `ip netns add` is not permitted here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run `ip`: {e}");
                None
            }
        }
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn init(ns: &Netns) -> Result<InitReport, Error> {
    initialize(Some(&ns.0))
}

/// The kind the kernel reports for the agent link.
fn kernel_kind(ns: &Netns) -> String {
    let out = ns.ip(&["-j", "-d", "link", "show", "dev", LINK_NAME]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["linkinfo"]["info_kind"].as_str().unwrap().to_owned()
}

#[test]
fn only_a_missing_link_driver_triggers_the_bridge_fallback() {
    // Failures that must surface, not be papered over with another link kind.
    for stderr in [
        "",
        "RTNETLINK answers: File exists",
        "RTNETLINK answers: Operation not permitted",
        "Error: Operation not permitted.",
        "Cannot open network namespace \"x\": No such file or directory",
        "unknown device type", // iproute2 never lowercases it; do not guess
    ] {
        assert!(!link_kind_unsupported(stderr), "{stderr:?}");
    }
    // This kernel's answer (iproute2 6.x), and older iproute2's errno text for EOPNOTSUPP.
    for stderr in [
        "Error: Unknown device type.",
        "RTNETLINK answers: Operation not supported",
    ] {
        assert!(link_kind_unsupported(stderr), "{stderr:?}");
    }
}

#[test]
fn link_kinds_map_from_ip_names() {
    assert_eq!(LinkKind::from_ip(Some("dummy")), LinkKind::Dummy);
    assert_eq!(LinkKind::from_ip(Some("bridge")), LinkKind::Bridge);
    assert_eq!(
        LinkKind::from_ip(Some("veth")),
        LinkKind::Other("veth".into())
    );
    assert_eq!(LinkKind::from_ip(None), LinkKind::Other(String::new()));
    assert_eq!(LinkKind::Bridge.as_str(), "bridge");
}

#[test]
fn an_existing_bridge_link_is_reused() {
    let Some(ns) = Netns::create() else { return };
    ns.ip(&["link", "add", LINK_NAME, "type", "bridge"]);
    let report = init(&ns).unwrap();
    assert!(!report.link_created);
    assert_eq!(report.link_kind, LinkKind::Bridge);
    assert_eq!(kernel_kind(&ns), "bridge");
}

#[test]
fn route_through_another_interface_is_reported() {
    let Some(ns) = Netns::create() else { return };
    ns.ip(&["link", "add", "other0", "type", "bridge"]);
    ns.ip(&["link", "set", "other0", "up"]);
    ns.ip(&["route", "add", "169.254.170.23/32", "dev", "other0"]);
    let err = init(&ns).unwrap_err();
    assert!(
        matches!(&err, Error::RouteConflict { found, .. } if found == "other0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("please remove the route"), "{err}");
}

#[test]
fn sets_up_addresses_and_routes_idempotently() {
    let Some(ns) = Netns::create() else { return };
    let first = init(&ns).unwrap();
    assert!(first.link_created);
    // A dummy where the kernel has the driver, else the bridge fallback; reported truthfully.
    let kind = kernel_kind(&ns);
    assert_eq!(first.link_kind.as_str(), kind);
    assert!(kind == "dummy" || kind == "bridge", "{kind}");
    assert_eq!(
        first.ipv4,
        FamilyReport::Configured {
            address_added: true,
            route_added: true
        }
    );

    let addrs = ns.ip(&["-j", "addr", "show", "dev", LINK_NAME]);
    assert!(addrs.contains("\"local\":\"169.254.170.23\""), "{addrs}");
    let routes = ns.ip(&[
        "-j",
        "route",
        "show",
        "table",
        "main",
        "exact",
        "169.254.170.23/32",
    ]);
    assert!(routes.contains(LINK_NAME), "{routes}");
    match &first.ipv6 {
        FamilyReport::Configured { address_added, .. } => {
            // The kernel may already have added the /128 prefix route for the address itself.
            assert!(*address_added);
            let addrs = ns.ip(&["-j", "-6", "addr", "show", "dev", LINK_NAME]);
            assert!(addrs.contains("\"local\":\"fd00:ec2::23\""), "{addrs}");
            let routes = ns.ip(&[
                "-j",
                "-6",
                "route",
                "show",
                "table",
                "main",
                "exact",
                "fd00:ec2::23/128",
            ]);
            assert!(routes.contains(LINK_NAME), "{routes}");
        }
        FamilyReport::Failed(reason) => println!("IPv6 unavailable in this namespace: {reason}"),
    }

    let second = init(&ns).unwrap();
    assert!(!second.link_created);
    assert_eq!(second.link_kind, first.link_kind);
    assert_eq!(
        second.ipv4,
        FamilyReport::Configured {
            address_added: false,
            route_added: false
        }
    );
    if matches!(first.ipv6, FamilyReport::Configured { .. }) {
        assert_eq!(
            second.ipv6,
            FamilyReport::Configured {
                address_added: false,
                route_added: false
            }
        );
    }
    // The kernel routes the agent address to this host.
    let get = ns.ip(&["route", "get", "169.254.170.23"]);
    assert!(get.starts_with("local 169.254.170.23"), "{get}");
}

#[test]
fn empty_ip_json_output_parses_as_empty() {
    assert!(parse::<WireRoute>(b"").unwrap().is_empty());
    assert!(parse::<WireRoute>(b"\n").unwrap().is_empty());
    assert!(parse::<WireRoute>(b"[]").unwrap().is_empty());
    assert!(parse::<WireRoute>(b"{").is_err());
}
