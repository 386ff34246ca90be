//! `podid server`: validates the server flags into a [`ServerConfig`], then starts the control plane.
//!
//! `podid dev` starts the server through the same [`start`] path with dev defaults.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use podid_agent_cli::os::{create_private_dir, shutdown_signal};
use podid_issuer::sts::{SdkUpstream, SourceKind, StsIssuer, StsLimits, UpstreamConfig};
use podid_server::{
    AdminKey, BoundServer, ConnectionLimits, DEFAULT_CONNECTION_LIMITS, IssuingMode, ServerOptions,
    ServiceConfig,
};

use crate::cli::{IssuerKind, IssuingArgs, ServerArgs};
use crate::kek::KekConfig;
use crate::usage;

/// Longest region name accepted (the longest real one, `ap-southeast-5`-style, is ~15 bytes).
const MAX_REGION_LEN: usize = 32;
/// The account local mode answers as unless told otherwise.
const LOCAL_ACCOUNT: &str = "000000000000";
/// STS `DurationSeconds` bounds (`roleDurationSecondsType`).
const STS_MIN_DURATION: Duration = Duration::from_secs(900);
const STS_MAX_DURATION: Duration = Duration::from_secs(43_200);
/// STS caps a session assumed with temporary credentials (a role chain) at one hour.
const STS_MAX_CHAINED: Duration = Duration::from_secs(3600);

/// The validated server configuration: built once, before any port is bound.
#[derive(Debug)]
pub(crate) struct ServerConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) store: String,
    pub(crate) data_dir: PathBuf,
    /// `Some` when the operator named the file: it must exist. `None`: `<data-dir>/admin-credentials`,
    /// created on first start.
    pub(crate) admin_key_file: Option<PathBuf>,
    /// Where the key-encryption keys come from (default: `<data-dir>/kek`, created if absent).
    pub(crate) keks: KekConfig,
    pub(crate) service: ServiceConfig,
    pub(crate) issuing: IssuingConfig,
    pub(crate) connections: ConnectionLimits,
}

/// The validated issuing mode.
#[derive(Debug, Clone)]
pub(crate) enum IssuingConfig {
    Local,
    Sts(StsConfig),
}

/// `sts` mode settings; the account comes from GetCallerIdentity unless `--account-id` named it.
#[derive(Debug, Clone)]
pub(crate) struct StsConfig {
    pub(crate) upstream: UpstreamConfig,
    pub(crate) duration: Duration,
    pub(crate) limits: StsLimits,
    pub(crate) account_given: bool,
}

impl IssuingConfig {
    /// Applies the `sts` flags' rules; `--sts-endpoint`/`--sts-region` without `--issuer sts`
    /// are refused.
    pub(crate) fn from_args(
        args: &IssuingArgs,
        region: &str,
        account_given: bool,
        max_credential_duration: Option<Duration>,
    ) -> anyhow::Result<Self> {
        if args.issuer == IssuerKind::Local {
            if args.sts_endpoint.is_some() || args.sts_region.is_some() {
                usage!("--sts-endpoint and --sts-region need --issuer sts");
            }
            return Ok(Self::Local);
        }
        if let Some(endpoint) = &args.sts_endpoint {
            let ok = endpoint.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                usage!("--sts-endpoint {endpoint:?} is not an http(s) URL");
            }
        }
        let sts_region = args.sts_region.clone().unwrap_or_else(|| region.to_owned());
        if args.sts_region.is_some() && validate_region(&sts_region).is_err() {
            usage!("--sts-region {sts_region:?} is not a region name like us-east-1");
        }
        let duration = match max_credential_duration {
            Some(cap) => args.sts_duration.min(cap),
            None => args.sts_duration,
        };
        if duration < STS_MIN_DURATION || duration > STS_MAX_DURATION {
            usage!(
                "--sts-duration (after --max-credential-duration) must be between 15m and 12h: STS's DurationSeconds range"
            );
        }
        if duration.subsec_nanos() != 0 {
            usage!("--sts-duration must be whole seconds");
        }
        let refresh_margin = args.sts_refresh_margin.unwrap_or(duration / 2);
        if refresh_margin >= duration {
            usage!("--sts-refresh-margin must be shorter than --sts-duration");
        }
        let mut limits = StsLimits::new(refresh_margin);
        limits.rate_per_sec = args.sts_rate_limit.get();
        limits.burst = args.sts_burst.unwrap_or(args.sts_rate_limit).get();
        limits.max_queue_wait = args.sts_max_queue_wait;
        Ok(Self::Sts(StsConfig {
            upstream: UpstreamConfig::new(args.sts_endpoint.clone(), sts_region),
            duration,
            limits,
            account_given,
        }))
    }
}

/// A bound server and the administrator key it accepts.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) server: BoundServer,
    pub(crate) admin_key: AdminKey,
    /// The account podid answers as (in `sts` mode possibly learned from upstream).
    pub(crate) account_id: String,
}

impl ServerConfig {
    /// Applies the cross-field rules and defaults; every refusal is a usage error (exit 64).
    pub(crate) fn from_args(args: ServerArgs) -> anyhow::Result<Self> {
        validate_region(&args.region)?;
        let account_given = args.account_id.is_some();
        let account_id = args.account_id.unwrap_or_else(|| LOCAL_ACCOUNT.to_owned());
        validate_account_id(&account_id)?;
        let store = match args.store {
            Some(s) => s,
            None => format!("sqlite:{}", args.data_dir.join("podid.db").display()),
        };
        validate_store(&store)?;
        if args.audit_retention.is_zero() {
            usage!("--audit-retention must be longer than zero");
        }
        if args.max_credential_duration.is_some_and(|d| d.is_zero()) {
            usage!("--max-credential-duration must be longer than zero");
        }
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => usage!("--tls-cert and --tls-key must be given together"),
        };
        let issuing = IssuingConfig::from_args(
            &args.issuing,
            &args.region,
            account_given,
            args.max_credential_duration,
        )?;
        let mut service = ServiceConfig::new(args.region, account_id);
        service.max_associations_per_cluster =
            usize::try_from(args.max_associations_per_cluster.get()).unwrap_or(usize::MAX);
        service.max_credential_duration = args.max_credential_duration;
        service.audit_retention = args.audit_retention;
        service.audit_file = args.audit_file;
        service.jwks_egress = podid_token::EgressPolicy {
            allow_http: args.jwks_allow_http,
            allowed_networks: args.jwks_allow_networks,
        };
        service.sts_session_sharing = args.issuing.sts_session_sharing;
        let connections = ConnectionLimits {
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            tls_handshake_timeout: args.tls_handshake_timeout,
            max_connections: args.max_connections,
            max_connections_per_client: NonZeroU32::new(args.max_connections_per_client),
        };
        if let Err(e) = connections.validate() {
            usage!("connection limits: {e}");
        }
        Ok(Self {
            listen: args.listen,
            tls,
            store,
            data_dir: args.data_dir,
            admin_key_file: args.admin_access_key_file,
            keks: KekConfig {
                text: args.kek,
                file: args.kek_file,
                previous_files: args.previous_kek_files,
                previous_texts: args.previous_keks,
            },
            service,
            issuing,
            connections,
        })
    }

    /// The `podid dev` configuration: everything under `data_dir`, default region and account
    /// (in `sts` mode, the account of the source credentials).
    pub(crate) fn dev(data_dir: &Path, listen: SocketAddr, issuing: IssuingConfig) -> Self {
        Self {
            listen,
            tls: None,
            store: format!("sqlite:{}", data_dir.join("podid.db").display()),
            data_dir: data_dir.to_owned(),
            admin_key_file: None,
            keks: KekConfig::default(),
            service: ServiceConfig::new("us-east-1", LOCAL_ACCOUNT),
            issuing,
            connections: DEFAULT_CONNECTION_LIMITS,
        }
    }

    pub(crate) fn default_admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin-credentials")
    }
}

/// `podid server`: start, then serve until SIGTERM or SIGINT.
pub(crate) async fn run(args: Box<ServerArgs>) -> anyhow::Result<()> {
    let config = ServerConfig::from_args(*args)?;
    let started = start(config).await?;
    started.server.serve(shutdown_signal()).await;
    Ok(())
}

/// Opens the store, loads (or creates) the admin key, builds TLS and binds the listener. In
/// `sts` mode it first loads podid's own AWS credentials and learns the account.
pub(crate) async fn start(mut config: ServerConfig) -> anyhow::Result<Started> {
    let issuing = issuing_mode(&mut config).await?;
    let tls = match &config.tls {
        Some((cert, key)) => match podid_server::tls_acceptor(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(e) => usage!("--tls-cert/--tls-key: {e}"),
        },
        None => None,
    };
    // Before anything is created: a KEK named but missing stops the start here.
    let keks = config.keks.load(&config.data_dir)?;
    let admin_key = load_admin_key(&config)?;
    if config.store == format!("sqlite:{}", config.data_dir.join("podid.db").display()) {
        create_private_dir(&config.data_dir)?;
    }
    let backend = podid_store::open(&config.store)
        .await
        .with_context(|| format!("opening store {}", config.store))?;
    tracing::info!(
        listen = %config.listen,
        tls = config.tls.is_some(),
        store = %config.store,
        region = %config.service.region,
        account_id = %config.service.account_id,
        issuer = issuing.name(),
        admin_access_key_id = %admin_key.access_key_id,
        kek = %keks.current_id(),
        previous_keks = keks.previous_ids().len(),
        "starting podid server"
    );
    let account_id = config.service.account_id.clone();
    let options = ServerOptions {
        listen: config.listen,
        tls,
        service: config.service,
        backend,
        admin_key: admin_key.clone(),
        keks,
        issuing,
        connections: config.connections,
    };
    let server = match BoundServer::bind(options).await {
        Ok(server) => server,
        // A KEK that does not open the store's secrets is configuration, like a bad flag.
        Err(e @ podid_server::Error::SecretsAtRest(_)) => usage!("{e}"),
        Err(e) => return Err(anyhow::Error::new(e).context("starting the server")),
    };
    Ok(Started {
        server,
        admin_key,
        account_id,
    })
}

/// Builds the issuing mode. `sts`: resolves podid's own credentials (refusing a duration over
/// an hour when they are temporary), and takes the account from GetCallerIdentity unless
/// `--account-id` named it.
async fn issuing_mode(config: &mut ServerConfig) -> anyhow::Result<IssuingMode> {
    let IssuingConfig::Sts(sts) = &config.issuing else {
        return Ok(IssuingMode::Local);
    };
    let upstream = SdkUpstream::load(&sts.upstream, None).await;
    let source = upstream.source_kind().await.map_err(|e| {
        anyhow::anyhow!("--issuer sts: podid's own AWS credentials (the default chain): {e}")
    })?;
    if source == SourceKind::Temporary && sts.duration > STS_MAX_CHAINED {
        usage!(
            "--sts-duration over 1h needs long-term source credentials: podid's own are temporary, which makes every AssumeRole a role chain (STS allows at most 1h)"
        );
    }
    if !sts.account_given {
        let (account, arn) = upstream.caller_identity().await.context(
            "--issuer sts: GetCallerIdentity of podid's own credentials (or pass --account-id)",
        )?;
        validate_account_id(&account)?;
        tracing::info!(%arn, %account, "upstream STS identity");
        config.service.account_id = account;
    }
    tracing::info!(
        sts_endpoint = sts.upstream.endpoint.as_deref().unwrap_or("AWS STS (regional)"),
        sts_region = %sts.upstream.region,
        duration_secs = sts.duration.as_secs(),
        refresh_margin_secs = sts.limits.refresh_margin.as_secs(),
        rate_limit = sts.limits.rate_per_sec,
        source_credentials = match source {
            SourceKind::LongTerm => "long-term",
            SourceKind::Temporary => "temporary",
        },
        session_sharing = config.service.sts_session_sharing,
        "issuing credentials with upstream STS AssumeRole"
    );
    let issuer = StsIssuer::new(
        Arc::new(upstream),
        config.service.account_id.clone(),
        &sts.limits,
    );
    Ok(IssuingMode::Sts {
        issuer: Arc::new(issuer),
        duration: sts.duration,
    })
}

fn load_admin_key(config: &ServerConfig) -> anyhow::Result<AdminKey> {
    let path = match &config.admin_key_file {
        Some(path) => path.clone(),
        None => {
            create_private_dir(&config.data_dir)?;
            config.default_admin_key_path()
        }
    };
    let (key, created) = match AdminKey::load_or_create(&path) {
        Ok(loaded) => loaded,
        Err(e) if config.admin_key_file.is_some() => usage!("--admin-access-key-file: {e}"),
        Err(e) => return Err(anyhow::Error::new(e).context("loading the administrator key")),
    };
    if created && !std::io::stderr().is_terminal() {
        // stderr is a log stream here (a file, a pipe, a collector): log lines only, no secret.
        tracing::info!(
            access_key_id = %key.access_key_id,
            file = %path.display(),
            "created administrator key (IAM user podid-admin); its secret is in the file only"
        );
    } else if created {
        // Printed once, on purpose, to the operator's terminal (never to the log).
        eprintln!(
            "podid: created administrator key {} (IAM user podid-admin) in {}\n\
             podid:   aws_access_key_id     = {}\n\
             podid:   aws_secret_access_key = {}\n\
             podid: it is shown only this once; the file above keeps it (mode 0600).",
            key.access_key_id,
            path.display(),
            key.access_key_id,
            key.secret_access_key()
        );
    }
    Ok(key)
}

fn validate_region(region: &str) -> anyhow::Result<()> {
    let ok = !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if !ok {
        usage!("--region {region:?} is not a region name like us-east-1");
    }
    Ok(())
}

fn validate_account_id(account: &str) -> anyhow::Result<()> {
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        usage!("--account-id {account:?} must be exactly 12 digits");
    }
    Ok(())
}

fn validate_store(store: &str) -> anyhow::Result<()> {
    match store.split_once(':') {
        Some(("sqlite", path)) if !path.is_empty() => Ok(()),
        _ => usage!("--store {store:?} is not supported: use sqlite:<path>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn config(extra: &[&str]) -> anyhow::Result<ServerConfig> {
        let cli = crate::cli::Cli::try_parse_from([&["podid", "server"], extra].concat()).unwrap();
        let crate::cli::Command::Server(args) = cli.command else {
            panic!("not server")
        };
        ServerConfig::from_args(*args)
    }

    fn is_usage(r: anyhow::Result<ServerConfig>) -> bool {
        r.err()
            .is_some_and(|e| e.downcast_ref::<crate::UsageError>().is_some())
    }

    #[test]
    fn refuses_bad_values_as_usage_errors() {
        assert!(is_usage(config(&["--account-id", "12345"])));
        assert!(is_usage(config(&["--account-id", "12345678901a"])));
        assert!(is_usage(config(&["--region", "US_EAST"])));
        assert!(is_usage(config(&["--region", ""])));
        assert!(is_usage(config(&["--store", "etcd:http://x"])));
        assert!(is_usage(config(&["--store", "sqlite:"])));
        assert!(is_usage(config(&["--audit-retention", "0s"])));
        assert!(is_usage(config(&["--header-read-timeout", "0s"])));
        assert!(is_usage(config(&[
            "--max-connections",
            "10",
            "--max-connections-per-client",
            "11"
        ])));
    }

    #[test]
    fn connection_flag_defaults_are_the_library_defaults() {
        assert_eq!(
            config(&[]).unwrap().connections,
            podid_server::DEFAULT_CONNECTION_LIMITS
        );
    }

    #[test]
    fn sts_flags_are_checked_before_anything_starts() {
        let sts = ["--issuer", "sts", "--sts-endpoint", "http://127.0.0.1:5000"];
        assert!(is_usage(config(&[
            "--sts-endpoint",
            "http://127.0.0.1:5000"
        ])));
        assert!(is_usage(config(&[
            "--issuer",
            "sts",
            "--sts-endpoint",
            "ftp://x"
        ])));
        assert!(is_usage(config(
            &[&sts[..], &["--sts-duration", "10m"]].concat()
        )));
        assert!(is_usage(config(
            &[&sts[..], &["--sts-duration", "13h"]].concat()
        )));
        assert!(is_usage(config(
            &[&sts[..], &["--sts-refresh-margin", "1h"]].concat()
        )));
        assert!(is_usage(config(
            &[&sts[..], &["--sts-region", "Nowhere"]].concat()
        )));
        // --max-credential-duration caps the session, and must leave STS's 15 minutes.
        assert!(is_usage(config(
            &[&sts[..], &["--max-credential-duration", "5m"]].concat()
        )));
        let c = config(&[&sts[..], &["--max-credential-duration", "20m"]].concat()).unwrap();
        let IssuingConfig::Sts(s) = c.issuing else {
            panic!("not sts")
        };
        assert_eq!(s.duration, Duration::from_secs(1200));
        assert_eq!(s.limits.refresh_margin, Duration::from_secs(600));
        assert_eq!((s.limits.rate_per_sec, s.limits.burst), (500, 500));
        assert_eq!(s.upstream.region, "us-east-1");
        assert!(!s.account_given);
        let c = config(&[&sts[..], &["--account-id", "123456789012"]].concat()).unwrap();
        assert!(matches!(
            c.issuing,
            IssuingConfig::Sts(StsConfig {
                account_given: true,
                ..
            })
        ));
        assert!(matches!(config(&[]).unwrap().issuing, IssuingConfig::Local));
    }

    #[test]
    fn defaults_follow_the_data_dir() {
        let c = config(&["--data-dir", "/srv/p", "--max-credential-duration", "15m"]).unwrap();
        assert_eq!(c.store, "sqlite:/srv/p/podid.db");
        assert_eq!(
            c.default_admin_key_path(),
            PathBuf::from("/srv/p/admin-credentials")
        );
        assert_eq!(
            c.service.max_credential_duration,
            Some(std::time::Duration::from_secs(900))
        );
        assert_eq!(c.service.max_associations_per_cluster, 5000);
        assert_eq!(c.service.account_id, "000000000000");
    }

    #[test]
    fn the_jwks_egress_flags() {
        let c = config(&[]).unwrap();
        assert_eq!(c.service.jwks_egress, podid_token::EgressPolicy::default());
        let c = config(&[
            "--jwks-allow-http",
            "--jwks-allow-network",
            "127.0.0.1/32,10.0.0.0/8",
            "--jwks-allow-network",
            "::1/128",
        ])
        .unwrap();
        assert!(c.service.jwks_egress.allow_http);
        let nets: Vec<String> = c
            .service
            .jwks_egress
            .allowed_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert!(
            crate::cli::Cli::try_parse_from([
                "podid",
                "server",
                "--jwks-allow-network",
                "127.0.0.1"
            ])
            .is_err()
        );
    }
}
