//! `podid dev`'s node agent: an IAM user allowed only to call EKS Auth for cluster `dev`, its
//! access key in `<data-dir>/node-credentials`, and the agent itself on 127.0.0.1.
//!
//! Everything is idempotent: a restart reuses the user and the stored key; a key the server no
//! longer knows (the store was wiped) is replaced.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use podid_agent::{AgentConfig, NodeCredentialSource, StartedAgent};
use podid_agent_cli as agent;
use reqwest::Url;

use crate::cli::DevArgs;
use crate::client::Client;
use crate::devenv::{DEV_CLUSTER, write_private_atomic};
use crate::iam;

/// The IAM user whose key signs the dev agent's EKS Auth calls.
pub(crate) const NODE_USER: &str = "podid-dev-node";
/// Its inline policy's name.
const NODE_POLICY: &str = "node";
/// The node key, in shared-credentials format, inside the data dir.
pub(crate) const NODE_CREDENTIALS_FILE: &str = "node-credentials";
/// The agent's state dir, inside the data dir.
const AGENT_STATE_DIR: &str = "agent";
/// The agent's credential port when `--agent-port` is not given.
const DEFAULT_AGENT_PORT: u16 = 7480;
/// Largest node-credentials file read; the real one is about 120 bytes.
const MAX_NODE_CREDENTIALS_BYTES: u64 = 64 * 1024;
/// IAM allows two access keys per user.
const MAX_KEYS_PER_USER: usize = 2;

/// Makes sure the node user, its policy and a working stored key exist; returns the key file.
pub(crate) async fn ensure_node_key(
    client: &Client,
    dir: &Path,
    region: &str,
    account_id: &str,
) -> anyhow::Result<PathBuf> {
    iam::ensure_user(client, NODE_USER).await?;
    let policy = node_policy(region, account_id);
    iam::put_user_policy(client, NODE_USER, NODE_POLICY, &policy).await?;

    let path = dir.join(NODE_CREDENTIALS_FILE);
    let stored = stored_key_id(&path)?;
    let keys = iam::list_access_keys(client, NODE_USER).await?;
    if let Some(id) = &stored
        && keys.iter().any(|(k, active)| k == id && *active)
    {
        return Ok(path);
    }
    // Keys we hold no secret for are of no use; make room for the new one.
    if keys.len() >= MAX_KEYS_PER_USER {
        for (id, _) in &keys {
            iam::delete_access_key(client, NODE_USER, id).await?;
        }
    }
    let (id, secret) = iam::create_access_key(client, NODE_USER).await?;
    let text = format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
    write_private_atomic(&path, text.as_bytes())?;
    tracing::info!(user = NODE_USER, access_key_id = %id, replaced = stored.is_some(), "dev node access key created");
    Ok(path)
}

/// Starts the dev agent on 127.0.0.1: port 7480 (or a free one if that is taken) unless
/// `--agent-port` names one, which must then be free.
pub(crate) async fn start(
    args: &DevArgs,
    dir: &Path,
    endpoint: &str,
    region: &str,
    node_credentials: PathBuf,
) -> anyhow::Result<StartedAgent> {
    let url = Url::parse(endpoint).with_context(|| format!("the dev endpoint {endpoint}"))?;
    let source = NodeCredentialSource::SharedFile {
        path: node_credentials,
        profile: "default".to_owned(),
    };
    let mut config = AgentConfig::new(DEV_CLUSTER, vec![url], source);
    config.bind_hosts = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    config.port = args.agent_port.unwrap_or(DEFAULT_AGENT_PORT);
    config.probe_port = args.agent_probe_port;
    config.metrics_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.metrics_port = args.agent_metrics_port;
    config.region = region.to_owned();
    config.state_dir = agent::usable_state_dir(&dir.join(AGENT_STATE_DIR));
    match agent::start(config.clone()).await {
        Err(e) if args.agent_port.is_none() && port_taken(&e, DEFAULT_AGENT_PORT) => {
            tracing::info!(
                port = DEFAULT_AGENT_PORT,
                "agent port is taken; using a free port instead"
            );
            config.port = 0;
            agent::start(config).await
        }
        other => other,
    }
}

/// Allows exactly one action on exactly the dev cluster.
fn node_policy(region: &str, account_id: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "eks-auth:AssumeRoleForPodIdentity",
            "Resource": format!("arn:aws:eks:{region}:{account_id}:cluster/{DEV_CLUSTER}"),
        }],
    })
    .to_string()
}

/// The access key id in the stored file, if there is a readable one.
fn stored_key_id(path: &Path) -> anyhow::Result<Option<String>> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if meta.len() > MAX_NODE_CREDENTIALS_BYTES {
        anyhow::bail!(
            "{} is larger than {MAX_NODE_CREDENTIALS_BYTES} bytes",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == "aws_access_key_id")
            .then(|| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }))
}

fn port_taken(e: &anyhow::Error, port: u16) -> bool {
    matches!(
        e.downcast_ref::<podid_agent::Error>(),
        Some(podid_agent::Error::Bind { addr, source })
            if addr.port() == port && source.kind() == std::io::ErrorKind::AddrInUse
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_policy_names_only_the_dev_cluster() {
        let policy: serde_json::Value =
            serde_json::from_str(&node_policy("us-east-1", "000000000000")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Action"], "eks-auth:AssumeRoleForPodIdentity");
        assert_eq!(
            statement["Resource"],
            "arn:aws:eks:us-east-1:000000000000:cluster/dev"
        );
    }

    #[test]
    fn stored_key_ids_are_read_from_the_default_profile_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NODE_CREDENTIALS_FILE);
        assert_eq!(stored_key_id(&path).unwrap(), None);
        std::fs::write(&path, "[default]\naws_access_key_id =\n").unwrap();
        assert_eq!(stored_key_id(&path).unwrap(), None);
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = AKIAX\naws_secret_access_key = s\n",
        )
        .unwrap();
        assert_eq!(stored_key_id(&path).unwrap().as_deref(), Some("AKIAX"));
        std::fs::write(&path, vec![b'a'; 70 * 1024]).unwrap();
        assert!(stored_key_id(&path).is_err());
    }
}
