//! `podid dev`: a complete local Pod Identity setup in one command.
//!
//! Starts the server (the same [`server::start`] path as `podid server`) on a data dir, makes sure
//! the cluster `dev` is registered with the local signing key's JWKS, writes `dev.env` and tells
//! the developer what to try next. The node agent runs in the same process on 127.0.0.1
//! ([`dev_agent`]), so `podid exec` works against it; one signal stops both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use podid_agent_cli::os::{create_private_dir, shutdown_signal};
use podid_aws::sigv4::SigningCredentials;
use podid_token::DevSigner;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cli::DevArgs;
use crate::client::{ApiError, Client};
use crate::cluster_cmd;
use crate::dev_agent::{self, NODE_CREDENTIALS_FILE};
use crate::devenv::{DEV_CLUSTER, DEV_ENV_FILE, DEV_ISSUER, DevEnv, SIGNING_KEY_FILE, shell_quote};
use crate::server::{self, ServerConfig};

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    create_private_dir(&dir)?;
    let signer = load_signer(&dir).await?;
    if args.max_credential_duration.is_some_and(|d| d.is_zero()) {
        crate::usage!("--max-credential-duration must be greater than zero");
    }
    let issuing = server::IssuingConfig::from_args(
        &args.issuing,
        "us-east-1",
        false,
        args.max_credential_duration,
    )?;
    let sts_endpoint = args.issuing.sts_endpoint.clone();
    let mut config = ServerConfig::dev(&dir, args.listen, issuing);
    config.service.max_credential_duration = args.max_credential_duration;
    config.service.sts_session_sharing = args.issuing.sts_session_sharing;
    let region = config.service.region.clone();
    let started = server::start(config).await?;
    let account_id = started.account_id.clone();
    let endpoint = format!("http://{}", reachable(started.server.local_addr()));

    // One signal stops both the server and the agent.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let serving = tokio::spawn(started.server.serve(stopped(stop_rx.clone())));
    {
        let stop_tx = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
    }

    let credentials = SigningCredentials {
        access_key_id: started.admin_key.access_key_id.clone(),
        secret_access_key: started.admin_key.secret_access_key().to_owned(),
        session_token: None,
    };
    let client = Client::new(&endpoint, region.clone(), credentials.clone())?;
    ensure_dev_cluster(&client, &signer)
        .await
        .context("registering the dev cluster")?;
    let node_key = dev_agent::ensure_node_key(&client, &dir, &region, &account_id)
        .await
        .context("setting up the dev node's IAM user")?;
    let agent = dev_agent::start(&args, &dir, &endpoint, &region, node_key).await?;
    let Some(credential_addr) = agent.credential_addrs.first().copied() else {
        anyhow::bail!("the agent has no credential listener");
    };
    let agent_info = AgentInfo {
        url: format!("http://{credential_addr}"),
        probe: agent.probe_addr,
        metrics: agent.metrics_addr,
    };
    let agent_serving = {
        let stop_tx = Arc::clone(&stop_tx);
        let stop = stopped(stop_rx);
        tokio::spawn(async move {
            let result = agent.serve_until(stop).await;
            // A failed agent stops the whole dev environment rather than leaving half of it.
            let _ = stop_tx.send(true);
            result
        })
    };

    let mut env = dev_env(
        &dir,
        &endpoint,
        &region,
        &credentials,
        Some(agent_info.url.as_str()),
    );
    // `sts` mode: `podid exec` points the pod's STS calls at the upstream STS.
    if let Some(sts) = &sts_endpoint {
        env.set("PODID_STS_ENDPOINT", sts);
    }
    let env_path = dir.join(DEV_ENV_FILE);
    env.write(&env_path)?;
    let podid = Invocation::detect();
    let roles = match &args.issuing.issuer {
        crate::cli::IssuerKind::Local => Roles::Local,
        crate::cli::IssuerKind::Sts => Roles::Upstream {
            account_id: account_id.clone(),
            sts_endpoint: sts_endpoint.clone(),
        },
    };
    println!(
        "{}",
        summary(&dir, &endpoint, Some(&agent_info), &podid, &roles)
    );
    serving.await.context("the server task failed")?;
    agent_serving
        .await
        .context("the agent task failed")?
        .context("the node agent failed")?;
    Ok(())
}

/// Where the dev agent listens, for the summary.
#[derive(Debug)]
struct AgentInfo {
    url: String,
    probe: SocketAddr,
    metrics: SocketAddr,
}

/// Resolves once `true` is sent on the channel (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn load_signer(dir: &Path) -> anyhow::Result<DevSigner> {
    let path = dir.join(SIGNING_KEY_FILE);
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || DevSigner::load_or_generate(&path))
        .await
        .context("generating the dev signing key")?
        .with_context(|| format!("loading the dev cluster signing key {shown}"))
}

/// Registers cluster `dev`, or updates it when its issuer or key set differ from the local signer.
pub(crate) async fn ensure_dev_cluster(client: &Client, signer: &DevSigner) -> anyhow::Result<()> {
    let jwks: Value = serde_json::from_str(signer.jwks()).context("the dev signer's JWKS")?;
    match cluster_cmd::describe(client, DEV_CLUSTER).await {
        Ok(answer) => {
            let cluster = answer.get("cluster");
            let same_issuer = cluster
                .and_then(|c| c.get("issuer"))
                .and_then(Value::as_str)
                == Some(DEV_ISSUER);
            let same_keys = cluster.and_then(|c| c.get("jwks")) == Some(&jwks);
            if !(same_issuer && same_keys) {
                cluster_cmd::update(
                    client,
                    DEV_CLUSTER,
                    &json!({ "issuer": DEV_ISSUER, "jwks": jwks }),
                )
                .await?;
                tracing::info!(cluster = DEV_CLUSTER, "dev cluster keys updated");
            }
            Ok(())
        }
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|a| a.code == "ResourceNotFoundException") =>
        {
            cluster_cmd::register(
                client,
                &json!({ "name": DEV_CLUSTER, "issuer": DEV_ISSUER, "jwks": jwks }),
            )
            .await?;
            tracing::info!(cluster = DEV_CLUSTER, "dev cluster registered");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn dev_env(
    dir: &Path,
    endpoint: &str,
    region: &str,
    credentials: &SigningCredentials,
    agent_url: Option<&str>,
) -> DevEnv {
    let mut env = DevEnv::default();
    env.set("AWS_ENDPOINT_URL", endpoint);
    env.set("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone());
    env.set(
        "AWS_SECRET_ACCESS_KEY",
        credentials.secret_access_key.clone(),
    );
    env.set("AWS_REGION", region);
    env.set("AWS_DEFAULT_REGION", region);
    env.set("PODID_CLUSTER", DEV_CLUSTER);
    env.set("PODID_DATA_DIR", dir.display().to_string());
    env.set("PODID_ENDPOINT", endpoint);
    if let Some(url) = agent_url {
        env.set("PODID_AGENT_URL", url);
    }
    env
}

/// A wildcard listen address is reached through loopback of the same family.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// How the printed next steps spell this program so that they can be pasted as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Invocation {
    /// `podid`, or this executable's shell-quoted absolute path.
    command: String,
    /// Whether `podid` on `PATH` is this executable.
    on_path: bool,
}

impl Invocation {
    fn detect() -> Self {
        let exe = std::env::current_exe().ok();
        Self::for_exe(exe.as_deref(), std::env::var_os("PATH").as_deref())
    }

    /// `podid` when the first `podid` on `path_var` is `exe` itself (through links too); else
    /// `exe`'s path (`cargo run` runs `target/release/podid`, which no `PATH` holds), or plain
    /// `podid` (with the install hint) when the executable cannot be found at all.
    fn for_exe(exe: Option<&Path>, path_var: Option<&std::ffi::OsStr>) -> Self {
        let Some(exe) = exe.and_then(|e| std::fs::canonicalize(e).ok()) else {
            return Self {
                command: "podid".to_owned(),
                on_path: false,
            };
        };
        let first_on_path = path_var
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("podid"))
            .find(|candidate| candidate.is_file());
        let on_path = first_on_path
            .and_then(|p| std::fs::canonicalize(p).ok())
            .is_some_and(|p| p == exe);
        let command = if on_path {
            "podid".to_owned()
        } else {
            shell_quote(&exe.display().to_string())
        };
        Self { command, on_path }
    }
}

/// Where the next steps' role lives: in podid's own IAM, or upstream (`--issuer sts`).
enum Roles {
    Local,
    Upstream {
        account_id: String,
        sts_endpoint: Option<String>,
    },
}

impl Roles {
    /// The next steps that make role `my-app-role` and associate it.
    fn steps(&self) -> String {
        let (account, create) = match self {
            Self::Local => {
                let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
                (
                    "000000000000".to_owned(),
                    format!(
                        "  aws iam create-role --role-name my-app-role --assume-role-policy-document '{trust}'\n"
                    ),
                )
            }
            Self::Upstream {
                account_id,
                sts_endpoint,
            } => (
                account_id.clone(),
                format!(
                    "  # sts mode: create role my-app-role in account {account_id}{at}, trusting podid's own\n\
                     \x20 # principal with sts:AssumeRole and sts:TagSession (docs/sts-mode.md), with that account's credentials\n",
                    at = sts_endpoint
                        .as_deref()
                        .map(|e| format!(" (at {e})"))
                        .unwrap_or_default(),
                ),
            ),
        };
        format!(
            "{create}  aws eks create-pod-identity-association --cluster-name {DEV_CLUSTER} --namespace default --service-account my-app --role-arn arn:aws:iam::{account}:role/my-app-role\n"
        )
    }
}

fn summary(
    dir: &Path,
    endpoint: &str,
    agent: Option<&AgentInfo>,
    podid: &Invocation,
    roles: &Roles,
) -> String {
    let file = |name: &str| -> PathBuf { dir.join(name) };
    let agent = match agent {
        Some(a) => format!(
            "  node agent          {}/v1/credentials  (probe http://{}/healthz, metrics http://{}/metrics)\n\
             \x20 node key            {}  (IAM user {})\n",
            a.url,
            a.probe,
            a.metrics,
            file(NODE_CREDENTIALS_FILE).display(),
            dev_agent::NODE_USER,
        ),
        None => String::new(),
    };
    format!(
        "\npodid dev is running.\n\n\
         \x20 API                 {endpoint}  (EKS, EKS Auth, IAM, STS, podid admin)\n\
         {agent}\
         \x20 cluster             {DEV_CLUSTER}  (issuer {DEV_ISSUER})\n\
         \x20 database            {}\n\
         \x20 admin key           {}\n\
         \x20 cluster signing key {}\n\
         \x20 environment         {}\n\n\
         Next, in another shell:\n\n\
         \x20 source {}\n\
         \x20 aws eks list-pod-identity-associations --cluster-name {DEV_CLUSTER}\n\
         {roles}\
         \x20 {podid} token --namespace default --service-account my-app\n\
         \x20 {podid} exec --namespace default --service-account my-app -- aws sts get-caller-identity\n\
         {install}\n\
         Ctrl-C stops the server and the agent; everything stays in {} for next time.",
        file("podid.db").display(),
        file("admin-credentials").display(),
        file(SIGNING_KEY_FILE).display(),
        file(DEV_ENV_FILE).display(),
        shell_quote(&file(DEV_ENV_FILE).display().to_string()),
        dir.display(),
        podid = podid.command,
        roles = roles.steps(),
        install = if podid.on_path {
            ""
        } else {
            "\n(`podid` is not on your PATH; from the source checkout, `cargo install --path crates/podid` puts it there.)\n"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_become_loopback() {
        let v4: SocketAddr = "0.0.0.0:7400".parse().unwrap();
        assert_eq!(reachable(v4).to_string(), "127.0.0.1:7400");
        let v6: SocketAddr = "[::]:7400".parse().unwrap();
        assert_eq!(reachable(v6).to_string(), "[::1]:7400");
        let fixed: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(reachable(fixed), fixed);
    }

    #[test]
    fn next_steps_name_podid_only_when_path_finds_this_executable() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("target dir").join("podid");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::write(&exe, b"").unwrap();
        let (bin, other) = (dir.path().join("bin"), dir.path().join("other"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        symlink(&exe, bin.join("podid")).unwrap();
        std::fs::write(other.join("podid"), b"").unwrap();
        let path = |dirs: &[&Path]| std::env::join_paths(dirs).unwrap();

        let found = Invocation::for_exe(Some(&exe), Some(&path(&[&other, &bin])[..]));
        let quoted = format!("'{}'", exe.canonicalize().unwrap().display());
        assert_eq!(
            (found.command.as_str(), found.on_path),
            (quoted.as_str(), false)
        );
        let found = Invocation::for_exe(Some(&exe), Some(&path(&[&bin, &other])[..]));
        assert_eq!((found.command.as_str(), found.on_path), ("podid", true));
        let found = Invocation::for_exe(Some(&exe), None);
        assert!(!found.on_path);

        let text = summary(
            Path::new("/d"),
            "http://127.0.0.1:1",
            None,
            &found,
            &Roles::Local,
        );
        assert!(
            text.contains(&format!("  {quoted} exec --namespace default")),
            "{text}"
        );
        assert!(text.contains("cargo install --path crates/podid"), "{text}");
        let on_path = Invocation {
            command: "podid".to_owned(),
            on_path: true,
        };
        let text = summary(
            Path::new("/d"),
            "http://127.0.0.1:1",
            None,
            &on_path,
            &Roles::Local,
        );
        assert!(
            text.contains("\n  podid token --namespace default"),
            "{text}"
        );
        assert!(!text.contains("cargo install"), "{text}");
        assert!(
            text.contains("\n  aws iam create-role --role-name my-app-role"),
            "{text}"
        );
        assert!(
            text.contains("--role-arn arn:aws:iam::000000000000:role/my-app-role\n"),
            "{text}"
        );
    }

    #[test]
    fn sts_mode_next_steps_name_the_upstream_account() {
        let podid = Invocation {
            command: "podid".to_owned(),
            on_path: true,
        };
        let roles = Roles::Upstream {
            account_id: "123456789012".to_owned(),
            sts_endpoint: Some("http://127.0.0.1:5000".to_owned()),
        };
        let text = summary(Path::new("/d"), "http://127.0.0.1:1", None, &podid, &roles);
        assert!(!text.contains("aws iam create-role"), "{text}");
        assert!(
            text.contains(
                "create role my-app-role in account 123456789012 (at http://127.0.0.1:5000)"
            ),
            "{text}"
        );
        assert!(
            text.contains("--role-arn arn:aws:iam::123456789012:role/my-app-role\n"),
            "{text}"
        );
    }

    #[test]
    fn the_agent_url_is_written_only_when_there_is_an_agent() {
        let creds = SigningCredentials {
            access_key_id: "AKIA".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        let without = dev_env(
            Path::new("/d"),
            "http://127.0.0.1:1",
            "us-east-1",
            &creds,
            None,
        );
        assert_eq!(without.get("PODID_AGENT_URL"), None);
        let with = dev_env(
            Path::new("/d"),
            "http://127.0.0.1:1",
            "us-east-1",
            &creds,
            Some("http://127.0.0.1:2"),
        );
        assert_eq!(with.get("PODID_AGENT_URL"), Some("http://127.0.0.1:2"));
        assert_eq!(with.get("PODID_DATA_DIR"), Some("/d"));
    }
}
