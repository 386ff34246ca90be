//! `podid token`: mints a projected service-account token with the dev cluster's signing key.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use podid_token::{DevSigner, MintRequest};

use crate::cli::TokenArgs;
use crate::devenv::{DEV_CLUSTER, DEV_ISSUER, SIGNING_KEY_FILE};
use crate::usage;

/// Longest token lifetime minted (the kube-apiserver's default maximum for projected tokens is
/// 48 hours, `--service-account-max-token-expiration`).
const MAX_TTL: Duration = Duration::from_secs(48 * 3600);
/// Kubernetes names are at most 253 bytes (DNS subdomain).
const MAX_NAME_LEN: usize = 253;

pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    if args.cluster != DEV_CLUSTER {
        usage!(
            "only the {DEV_CLUSTER} cluster's signing key is available locally; tokens for cluster {:?} come from its kube-apiserver (kubectl create token)",
            args.cluster
        );
    }
    if args.ttl.is_zero() || args.ttl > MAX_TTL {
        usage!("--ttl must be between 1s and 48h");
    }
    let signer = load_dev_signer(&args.data_dir)?;
    let mut req = request(&args.namespace, &args.service_account, args.ttl)?
        .with_pod(args.pod_name, args.pod_uid);
    if let Some(node) = args.node_name {
        req = req.with_node(node, None);
    }
    if !args.audiences.is_empty() {
        req.audiences = args.audiences;
    }
    let token = signer.mint(&req).context("minting the token")?;
    let mut out = std::io::stdout().lock();
    // A newline only for people: scripts and token files must not get one.
    let ending = if std::io::stdout().is_terminal() {
        "\n"
    } else {
        ""
    };
    write!(out, "{token}{ending}")
        .and_then(|()| out.flush())
        .context("writing the token")?;
    Ok(())
}

/// Loads the dev cluster's signing key from `dir`; it exists once `podid dev` has run there.
pub(crate) fn load_dev_signer(dir: &Path) -> anyhow::Result<DevSigner> {
    let path = dir.join(SIGNING_KEY_FILE);
    if !path.exists() {
        usage!(
            "no dev cluster signing key at {}: run `podid dev --data-dir {}` once first (or pass --data-dir)",
            path.display(),
            dir.display()
        );
    }
    DevSigner::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// A token request for the dev cluster with the given lifetime, issued now.
pub(crate) fn request(
    namespace: &str,
    service_account: &str,
    ttl: Duration,
) -> anyhow::Result<MintRequest> {
    for (flag, value) in [
        ("--namespace", namespace),
        ("--service-account", service_account),
    ] {
        if value.is_empty() || value.len() > MAX_NAME_LEN {
            usage!("{flag} must be 1 to {MAX_NAME_LEN} characters");
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let now_unix = i64::try_from(now.as_secs()).context("the system clock is out of range")?;
    let mut req = MintRequest::new(DEV_ISSUER, namespace, service_account, now_unix);
    req.ttl = ttl;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_huge_names_are_usage_errors() {
        for (ns, sa) in [("", "a"), ("a", ""), ("a", &"x".repeat(254)[..])] {
            let err = request(ns, sa, Duration::from_secs(60)).unwrap_err();
            assert!(err.downcast_ref::<crate::UsageError>().is_some());
        }
        let req = request("default", "my-app", Duration::from_secs(600)).unwrap();
        assert_eq!(req.issuer, DEV_ISSUER);
        assert_eq!(req.ttl, Duration::from_secs(600));
    }

    #[test]
    fn a_missing_signing_key_says_how_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dev_signer(dir.path()).unwrap_err().to_string();
        assert!(err.contains("podid dev"), "{err}");
    }
}
