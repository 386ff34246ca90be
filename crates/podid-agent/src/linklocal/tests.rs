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

/// `initialize` proper (dummy link) when the kernel has the dummy driver; otherwise the same
/// code with a bridge link, after printing why.
fn init(ns: &Netns) -> Result<InitReport, Error> {
    match initialize(Some(&ns.0)) {
        Err(Error::IpCommand { stderr, .. }) if stderr.contains("Unknown device type") => {
            println!("kernel has no dummy link driver; testing the same steps with a bridge link");
            initialize_with(Some(&ns.0), "bridge")
        }
        other => other,
    }
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
