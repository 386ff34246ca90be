//! `podid exec`: runs a command the way a pod with a Pod Identity association runs.
//!
//! The child gets a projected-style token file (0600, in a 0700 private temp dir, no trailing
//! newline, rewritten atomically at 80% of its lifetime as the kubelet does), the container
//! credential provider variables pointing at the node agent, and no static credentials or
//! profiles, so the SDK default chain can only pick the container provider. The process
//! environment is never modified: the child's is built with `Command::env`/`env_remove`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use podid_token::{DevSigner, MintRequest};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ExecArgs;
use crate::client::DEFAULT_ENDPOINT;
use crate::devenv::{DEV_ENV_FILE, DevEnv, write_private_atomic};
use crate::{Exit, token, usage};

/// Shortest token lifetime: the kubelet refuses `expirationSeconds` below 600.
const MIN_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Longest token lifetime (the kube-apiserver's default maximum).
const MAX_TOKEN_TTL: Duration = Duration::from_secs(48 * 3600);
/// Wait before retrying a failed token refresh.
const REFRESH_RETRY: Duration = Duration::from_secs(30);

/// Variables that would let something other than the container provider win in the SDK chain.
const REMOVED_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

pub(crate) async fn run(args: ExecArgs) -> anyhow::Result<Exit> {
    if args.token_ttl < MIN_TOKEN_TTL || args.token_ttl > MAX_TOKEN_TTL {
        usage!("--token-ttl must be between 10m and 48h");
    }
    let dev_env_path = args.data_dir.join(DEV_ENV_FILE);
    let dev_env = if dev_env_path.exists() {
        DevEnv::read(&dev_env_path)?
    } else {
        DevEnv::default()
    };
    let Some(agent_url) = args
        .agent_url
        .clone()
        .or_else(|| dev_env.get("PODID_AGENT_URL").map(str::to_owned))
    else {
        usage!(
            "no node agent: {} has no PODID_AGENT_URL (is `podid dev` running with its agent?); pass --agent-url",
            dev_env_path.display()
        );
    };
    // STS for the pod: podid in local mode; the upstream STS when `podid dev` runs in `sts` mode.
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| dev_env.get("PODID_STS_ENDPOINT").map(str::to_owned))
        .or_else(|| dev_env.get("PODID_ENDPOINT").map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let region = dev_env.get("AWS_REGION").unwrap_or("us-east-1").to_owned();

    let signer = token::load_dev_signer(&args.data_dir)?;
    let mut template = token::request(&args.namespace, &args.service_account, args.token_ttl)?
        .with_pod(
            args.pod_name.clone(),
            Some(uuid::Uuid::new_v4().to_string()),
        );
    // One pod, one service account: keep their uids across refreshes as the kubelet does.
    template.service_account_uid = Some(uuid::Uuid::new_v4().to_string());

    let private = tempfile::Builder::new()
        .prefix("podid-exec-")
        .tempdir()
        .context("creating a private temp dir")?;
    set_mode(private.path(), 0o700)?;
    let token_file = private.path().join("token");
    write_token(&signer, &template, &token_file)?;
    let empty_credentials = private.path().join("aws-credentials");
    let empty_config = private.path().join("aws-config");
    write_private_atomic(&empty_credentials, b"")?;
    write_private_atomic(&empty_config, b"")?;

    let (stop, stopped) = mpsc::channel::<()>();
    let refresher = {
        let token_file = token_file.clone();
        std::thread::spawn(move || refresh_loop(&signer, template, &token_file, &stopped))
    };

    let mut command = std::process::Command::new(
        args.command
            .first()
            .map_or_else(OsString::new, Clone::clone),
    );
    command.args(args.command.iter().skip(1));
    for var in REMOVED_VARS {
        command.env_remove(var);
    }
    command
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", agent_url.trim_end_matches('/')),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
        .env("AWS_REGION", &region)
        .env("AWS_DEFAULT_REGION", &region)
        .env("AWS_ENDPOINT_URL_STS", &endpoint)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty_credentials)
        .env("AWS_CONFIG_FILE", &empty_config);
    let shown = args
        .command
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = command
        .spawn()
        .with_context(|| format!("running {shown}"))?;
    tracing::debug!(pid = child.id(), namespace = %args.namespace, service_account = %args.service_account, "child started");
    let status = wait_forwarding_signals(child).await?;

    drop(stop);
    let _ = refresher.join();
    drop(private);
    Ok(Exit(exit_code(status)))
}

/// 80% of the lifetime, as the kubelet refreshes projected tokens.
fn refresh_delay(ttl: Duration) -> Duration {
    ttl.checked_div(5)
        .and_then(|fifth| fifth.checked_mul(4))
        .unwrap_or(ttl)
}

fn refresh_loop(
    signer: &DevSigner,
    mut template: MintRequest,
    file: &Path,
    stopped: &mpsc::Receiver<()>,
) {
    let mut wait = refresh_delay(template.ttl);
    // The sender is dropped when the child exits: that ends the wait with Disconnected.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        template.now_unix = i64::try_from(now).unwrap_or(i64::MAX);
        wait = match write_token(signer, &template, file) {
            Ok(()) => {
                tracing::debug!("service-account token refreshed");
                refresh_delay(template.ttl)
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "refreshing the service-account token failed");
                REFRESH_RETRY
            }
        };
    }
}

/// Mints and writes the token without a trailing newline (SDKs reject one).
fn write_token(signer: &DevSigner, request: &MintRequest, file: &Path) -> anyhow::Result<()> {
    let token = signer
        .mint(request)
        .context("minting the service-account token")?;
    write_private_atomic(file, token.as_bytes())
}

async fn wait_forwarding_signals(
    child: std::process::Child,
) -> anyhow::Result<std::process::ExitStatus> {
    let pid = rustix::process::Pid::from_child(&child);
    let mut child = child;
    let wait = tokio::task::spawn_blocking(move || child.wait());
    tokio::pin!(wait);
    let mut streams = Vec::new();
    for (kind, sig) in [
        (SignalKind::interrupt(), rustix::process::Signal::INT),
        (SignalKind::terminate(), rustix::process::Signal::TERM),
        (SignalKind::hangup(), rustix::process::Signal::HUP),
        (SignalKind::quit(), rustix::process::Signal::QUIT),
    ] {
        streams.push((signal(kind).context("installing signal handlers")?, sig));
    }
    let [(int, s_int), (term, s_term), (hup, s_hup), (quit, s_quit)] = &mut streams[..] else {
        anyhow::bail!("signal handler setup");
    };
    loop {
        let forward = tokio::select! {
            status = &mut wait => return status.context("waiting for the child")?.context("waiting for the child"),
            _ = int.recv() => *s_int,
            _ = term.recv() => *s_term,
            _ = hup.recv() => *s_hup,
            _ = quit.recv() => *s_quit,
        };
        // The child may have exited in the meantime; then there is nothing to forward to.
        let _ = rustix::process::kill_process(pid, forward);
    }
}

/// The child's code, or 128 + the signal that killed it (the shell convention).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("securing {}", PathBuf::from(path).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_at_eighty_percent() {
        assert_eq!(
            refresh_delay(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(
            refresh_delay(Duration::from_secs(600)),
            Duration::from_secs(480)
        );
        assert_eq!(refresh_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn token_refresh_rewrites_the_file_without_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let signer = DevSigner::generate().unwrap();
        let mut req = token::request("default", "app", Duration::from_secs(600)).unwrap();
        write_token(&signer, &req, &file).unwrap();
        let first = std::fs::read(&file).unwrap();
        req.now_unix += 1;
        write_token(&signer, &req, &file).unwrap();
        let second = std::fs::read(&file).unwrap();
        assert_ne!(first, second);
        assert!(!second.ends_with(b"\n"));
        assert_eq!(second.iter().filter(|b| **b == b'.').count(), 2);
    }
}
