//! `podid-agent initialize` (and `podid agent initialize`): creates the agent's link-local
//! addresses through `podid_agent::initialize` and prints what it did, as text or JSON.

use anyhow::Context as _;
use podid_agent::{FamilyReport, InitReport, LinkKind};
use serde_json::json;

use crate::args::{AgentInitArgs, InitOutput};
use crate::exit::{Exit, error_chain};

/// `initialize`: exit 0 when IPv4 is configured, whatever happened to IPv6.
pub(crate) async fn run(args: &AgentInitArgs) -> anyhow::Result<Exit> {
    let report = tokio::task::spawn_blocking(|| podid_agent::initialize(None))
        .await
        .context("running initialize")?
        .map_err(|e| anyhow::anyhow!("{}", error_chain(&e)))
        .context("setting up the agent's link-local addresses")?;
    match args.output {
        InitOutput::Text => println!("{}", init_summary(&report)),
        InitOutput::Json => println!("{}", init_json(&report)),
    }
    Ok(Exit(0))
}

fn init_summary(report: &InitReport) -> String {
    let link = podid_agent::LINK_NAME;
    let kind = kind_name(&report.link_kind);
    let created = if report.link_created {
        format!(" ({kind} link created)")
    } else {
        format!(" ({kind} link)")
    };
    let line = |family: &str, addr: String, r: &FamilyReport| match r {
        FamilyReport::Configured {
            address_added,
            route_added,
        } => format!(
            "{family} {addr} on {link}: configured{}{}",
            if *address_added {
                ", address added"
            } else {
                ""
            },
            if *route_added { ", route added" } else { "" },
        ),
        FamilyReport::Failed(why) => format!("{family} {addr} on {link}: not configured: {why}"),
    };
    format!(
        "{}{created}\n{}",
        line(
            "ipv4",
            format!("{}/32", podid_agent::IPV4_LINK_LOCAL),
            &report.ipv4
        ),
        line(
            "ipv6",
            format!("{}/128", podid_agent::IPV6_LINK_LOCAL),
            &report.ipv6
        ),
    )
}

fn init_json(report: &InitReport) -> serde_json::Value {
    let family = |addr: String, r: &FamilyReport| match r {
        FamilyReport::Configured {
            address_added,
            route_added,
        } => json!({ "address": addr, "configured": true,
                     "addressAdded": address_added, "routeAdded": route_added }),
        FamilyReport::Failed(why) => json!({ "address": addr, "configured": false, "error": why }),
    };
    json!({
        "link": podid_agent::LINK_NAME,
        "linkCreated": report.link_created,
        "linkKind": kind_name(&report.link_kind),
        "ipv4": family(format!("{}/32", podid_agent::IPV4_LINK_LOCAL), &report.ipv4),
        "ipv6": family(format!("{}/128", podid_agent::IPV6_LINK_LOCAL), &report.ipv6),
    })
}

fn kind_name(kind: &LinkKind) -> &str {
    match kind {
        LinkKind::Dummy => "dummy",
        LinkKind::Bridge => "bridge",
        LinkKind::Other(name) if name.is_empty() => "existing",
        LinkKind::Other(name) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_summaries_name_each_family() {
        let report = InitReport {
            link_created: true,
            link_kind: LinkKind::Bridge,
            ipv4: FamilyReport::Configured {
                address_added: true,
                route_added: false,
            },
            ipv6: FamilyReport::Failed("ipv6 disabled".into()),
        };
        let text = init_summary(&report);
        assert!(text.starts_with("ipv4 169.254.170.23/32 on pod-id-link0: configured, address added (bridge link created)\n"), "{text}");
        assert!(
            text.ends_with("ipv6 fd00:ec2::23/128 on pod-id-link0: not configured: ipv6 disabled"),
            "{text}"
        );
        let json = init_json(&report);
        assert_eq!(json["ipv4"]["configured"], true);
        assert_eq!(json["ipv6"]["error"], "ipv6 disabled");
        assert_eq!(json["linkKind"], "bridge");
    }
}
