//! `podid webhook`: validates the webhook flags into a [`WebhookConfig`], then serves until
//! SIGTERM/SIGINT.

use std::path::PathBuf;

use podid_agent_cli::os::shutdown_signal;
use podid_aws::sigv4::SigningCredentials;
use podid_webhook::{
    ConnectionLimits, CredentialSource, DEFAULT_CONNECTION_LIMITS, FULL_URI_IPV4, FULL_URI_IPV6,
    Jitter, MutationConfig, ServiceAccountSource, Webhook, WebhookConfig,
};
use reqwest::Url;

use crate::cli::WebhookArgs;
use crate::usage;

/// Serves the webhook until a shutdown signal.
pub(crate) async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let watch = ServiceAccountWatchArgs::from(&args);
    let mut config = config_from_args(args, env)?;
    config.service_accounts = watch.source().await?;
    match &config.service_accounts {
        ServiceAccountSource::Off => tracing::info!(
            "not watching service accounts (--no-service-account-watch): their annotations are not applied"
        ),
        ServiceAccountSource::Watch { kube, .. } => {
            tracing::info!(api_server = %kube.cluster_url, "watching service accounts");
        }
    }
    let cluster = config.cluster_name.clone();
    let started = Webhook::start(config).await?;
    tracing::info!(addr = %started.addr, cluster, "podid webhook listening (https)");
    if let Some(addr) = started.metrics_addr {
        tracing::info!(%addr, "metrics listening (http)");
    }
    started.serve_until(shutdown_signal()).await?;
    Ok(())
}

/// Where the service-account watch reaches the API server.
struct ServiceAccountWatchArgs {
    off: bool,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    grace: std::time::Duration,
}

impl From<&WebhookArgs> for ServiceAccountWatchArgs {
    fn from(args: &WebhookArgs) -> Self {
        Self {
            off: args.no_service_account_watch,
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            grace: args.service_account_lookup_grace_period,
        }
    }
}

impl ServiceAccountWatchArgs {
    /// A named kubeconfig or context is read as given; otherwise kube's inference: `$KUBECONFIG`
    /// or `~/.kube/config`, else the in-cluster service account.
    async fn source(self) -> anyhow::Result<ServiceAccountSource> {
        if self.off {
            return Ok(ServiceAccountSource::Off);
        }
        let kube = if self.kubeconfig.is_some() || self.context.is_some() {
            crate::kube_discovery::from_kubeconfig(
                self.kubeconfig.as_deref(),
                self.context.as_deref(),
            )
            .await?
        } else {
            match kube::Config::infer().await {
                Ok(config) => config,
                Err(e) => usage!(
                    "no Kubernetes API server to watch service accounts on ({e}): give --kubeconfig, run in a pod, or pass --no-service-account-watch"
                ),
            }
        };
        Ok(ServiceAccountSource::Watch {
            kube: Box::new(kube),
            grace: self.grace,
        })
    }
}

/// Builds the configuration, without the service-account source (`Off` until [`run`] sets it);
/// `env` supplies the credential and region fallbacks.
pub(crate) fn config_from_args(
    args: WebhookArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<WebhookConfig> {
    if args.cluster_name.is_empty() {
        usage!("--cluster-name must not be empty");
    }
    let endpoint = match Url::parse(&args.endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        Ok(_) => usage!("--endpoint {:?} must be an http(s) URL", args.endpoint),
        Err(e) => usage!("--endpoint {:?} is not a URL: {e}", args.endpoint),
    };
    if args.token_expiration < podid_webhook::MIN_TOKEN_EXPIRATION {
        usage!(
            "--token-expiration must be at least {} seconds",
            podid_webhook::MIN_TOKEN_EXPIRATION
        );
    }
    if args.sync_interval.is_zero() || args.tls_reload_interval.is_zero() {
        usage!("--sync-interval and --tls-reload-interval must be longer than zero");
    }
    if args.max_staleness < args.sync_interval {
        usage!("--max-staleness must be at least --sync-interval");
    }
    let full_uri = match args.container_credentials_full_uri {
        Some(uri) => match Url::parse(&uri) {
            Ok(_) => uri,
            Err(e) => usage!("--container-credentials-full-uri {uri:?} is not a URL: {e}"),
        },
        None if args.ipv6 => FULL_URI_IPV6.to_owned(),
        None => FULL_URI_IPV4.to_owned(),
    };
    let region = args
        .region
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        usage!("--region {region:?} is not a region name");
    }
    let metrics_listen = (!args.no_metrics).then_some(args.metrics_listen);
    if metrics_listen == Some(args.listen) {
        usage!("--listen and --metrics-listen are the same address");
    }
    Ok(WebhookConfig {
        listen: args.listen,
        metrics_listen,
        tls_cert_file: args.tls_cert_file,
        tls_key_file: args.tls_key_file,
        tls_reload_interval: args.tls_reload_interval,
        cluster_name: args.cluster_name,
        endpoint,
        region,
        credentials: credentials(args.credentials_file, args.profile, &env)?,
        ca_bundle: args.ca_bundle,
        sync_interval: args.sync_interval,
        max_staleness: args.max_staleness,
        mutation: MutationConfig {
            full_uri,
            aws_default_region: args.aws_default_region.filter(|r| !r.is_empty()),
            regional_sts: args.sts_regional_endpoints,
            token_expiration: args.token_expiration,
            jitter: Jitter::Random,
        },
        service_accounts: ServiceAccountSource::Off,
        connections: ConnectionLimits {
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            tls_handshake_timeout: args.tls_handshake_timeout,
            max_connections: args.max_connections,
            ..DEFAULT_CONNECTION_LIMITS
        },
    })
}

/// A named credentials file wins (a mounted Secret is the usual deployment); else the
/// access-key variables; else `~/.aws/credentials`.
fn credentials(
    file: Option<PathBuf>,
    profile: String,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<CredentialSource> {
    if let Some(path) = file {
        return Ok(CredentialSource::SharedFile { path, profile });
    }
    if let (Some(access_key_id), Some(secret_access_key)) =
        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(CredentialSource::Static(SigningCredentials {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN"),
        }));
    }
    match env("HOME") {
        Some(home) => Ok(CredentialSource::SharedFile {
            path: PathBuf::from(home).join(".aws").join("credentials"),
            profile,
        }),
        None => usage!(
            "no credentials: give --credentials-file (or AWS_SHARED_CREDENTIALS_FILE) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(extra: &[&str]) -> anyhow::Result<WebhookArgs> {
        let base = [
            "podid",
            "webhook",
            "--cluster-name",
            "c1",
            "--endpoint",
            "https://podid.example:7400",
            "--tls-cert-file",
            "c.pem",
            "--tls-key-file",
            "k.pem",
        ];
        let cli = Cli::try_parse_from(base.iter().chain(extra))?;
        match cli.command {
            Command::Webhook(args) => Ok(*args),
            _ => anyhow::bail!("not webhook"),
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = config_from_args(parse(&[]).unwrap(), env(&[("HOME", "/h")])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(c.metrics_listen.unwrap().to_string(), "0.0.0.0:9999");
        assert_eq!(c.mutation.full_uri, FULL_URI_IPV4);
        assert_eq!(c.mutation.token_expiration, 86_400);
        assert_eq!(c.mutation.aws_default_region, None);
        assert!(!c.mutation.regional_sts);
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.sync_interval.as_secs(), 5);
        assert_eq!(c.connections, DEFAULT_CONNECTION_LIMITS);
        assert_eq!(
            c.credentials,
            CredentialSource::SharedFile {
                path: "/h/.aws/credentials".into(),
                profile: "default".into()
            }
        );
    }

    #[test]
    fn flags_map_onto_the_config() {
        let args = parse(&[
            "--ipv6",
            "--aws-default-region",
            "eu-west-1",
            "--sts-regional-endpoints",
            "--token-expiration",
            "3600",
            "--region",
            "eu-west-1",
            "--credentials-file",
            "/etc/podid/credentials",
            "--profile",
            "webhook",
            "--no-metrics",
        ])
        .unwrap();
        let c = config_from_args(
            args,
            env(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "S")]),
        )
        .unwrap();
        assert_eq!(c.mutation.full_uri, FULL_URI_IPV6);
        assert_eq!(c.mutation.aws_default_region.as_deref(), Some("eu-west-1"));
        assert!(c.mutation.regional_sts);
        assert_eq!(c.mutation.token_expiration, 3600);
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.metrics_listen, None);
        // The named file wins over the access-key variables.
        assert!(
            matches!(c.credentials, CredentialSource::SharedFile { ref profile, .. } if profile == "webhook")
        );
    }

    #[test]
    fn access_keys_from_the_environment() {
        let c = config_from_args(
            parse(&[]).unwrap(),
            env(&[
                ("AWS_ACCESS_KEY_ID", "A"),
                ("AWS_SECRET_ACCESS_KEY", "S"),
                ("AWS_REGION", "ap-south-1"),
            ]),
        )
        .unwrap();
        assert!(matches!(c.credentials, CredentialSource::Static(ref s) if s.access_key_id == "A"));
        assert_eq!(c.region, "ap-south-1");
    }

    #[test]
    fn refusals_are_usage_errors() {
        let usage = |extra: &[&str], vars: &[(&str, &str)]| {
            let e = config_from_args(parse(extra).unwrap(), env(vars)).unwrap_err();
            assert!(e.downcast_ref::<crate::UsageError>().is_some(), "{e}");
        };
        usage(&["--token-expiration", "599"], &[("HOME", "/h")]);
        usage(&["--sync-interval", "10m"], &[("HOME", "/h")]);
        usage(&["--metrics-listen", "0.0.0.0:8443"], &[("HOME", "/h")]);
        usage(
            &["--container-credentials-full-uri", "not a url"],
            &[("HOME", "/h")],
        );
        usage(&[], &[]);
        assert!(parse(&["--ipv6", "--container-credentials-full-uri", "http://x"]).is_err());
    }

    #[tokio::test]
    async fn the_service_account_watch_flags() {
        assert!(parse(&["--no-service-account-watch", "--kubeconfig", "k"]).is_err());
        assert!(parse(&["--no-service-account-watch", "--context", "c"]).is_err());
        let args = parse(&["--no-service-account-watch"]).unwrap();
        let source = ServiceAccountWatchArgs::from(&args).source().await.unwrap();
        assert!(matches!(source, ServiceAccountSource::Off));

        let args = parse(&["--service-account-lookup-grace-period", "750ms"]).unwrap();
        assert_eq!(
            args.service_account_lookup_grace_period,
            std::time::Duration::from_millis(750)
        );
        assert_eq!(
            parse(&[]).unwrap().service_account_lookup_grace_period,
            std::time::Duration::from_millis(200)
        );

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let args = parse(&["--kubeconfig", missing.to_str().unwrap()]).unwrap();
        let e = ServiceAccountWatchArgs::from(&args)
            .source()
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");

        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: ctx\n",
        )
        .unwrap();
        let args = parse(&["--kubeconfig", kubeconfig.to_str().unwrap()]).unwrap();
        match ServiceAccountWatchArgs::from(&args).source().await.unwrap() {
            ServiceAccountSource::Watch { kube, grace } => {
                assert_eq!(kube.cluster_url.to_string(), "https://127.0.0.1:6443/");
                assert_eq!(grace, std::time::Duration::from_millis(200));
            }
            ServiceAccountSource::Off => panic!("the watch is off"),
        }
        let args = parse(&[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "x",
        ])
        .unwrap();
        assert!(ServiceAccountWatchArgs::from(&args).source().await.is_err());
    }
}
