//! The command-line surface: every flag, its `PODID_*` environment variable and its default.
//!
//! Only shapes and per-value parsing live here; cross-field rules and defaults that depend on
//! other flags are applied by each command before it binds a port or sends a request.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use podid_agent_cli::logging::{GlobalArgs, LogFormat, Verbosity};
use podid_agent_cli::{AgentCommand, parse_duration};

use crate::kek::KekText;

/// podid: self-hosted EKS Pod Identity.
#[derive(Debug, Parser)]
#[command(name = "podid", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the podid control plane (EKS, EKS Auth, IAM, STS and admin APIs on one port).
    Server(Box<ServerArgs>),
    /// Run a local development server with a ready-made cluster `dev`.
    Dev(DevArgs),
    /// Manage pod identity associations (EKS API).
    Association {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: AssociationCommand,
    },
    /// Manage the clusters whose service-account tokens podid trusts.
    Cluster {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Administer the server itself (its administrator key).
    Admin {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Act on IAM roles (revoke their active sessions).
    Role {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Mint a service-account token with the dev cluster's signing key.
    Token(TokenArgs),
    /// Run a command with Pod Identity credentials, as a pod of the dev cluster would.
    Exec(ExecArgs),
    /// Run the node agent: the credential endpoint pods call (`agent initialize` sets up its
    /// link-local addresses).
    Agent(Box<AgentCommand>),
    /// Run the mutating admission webhook that injects Pod Identity into new pods.
    Webhook(Box<WebhookArgs>),
}

impl Command {
    /// Servers log their lifecycle at info; client commands stay quiet unless asked.
    pub(crate) fn default_level(&self) -> Verbosity {
        match self {
            Self::Server(_) | Self::Dev(_) | Self::Agent(_) | Self::Webhook(_) => Verbosity::Info,
            _ => Verbosity::Warn,
        }
    }

    /// The agent logs JSON unless told otherwise, like the reference; others pick by terminal.
    pub(crate) fn default_log_format(&self) -> Option<LogFormat> {
        match self {
            Self::Agent(_) => Some(LogFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "PODID_LISTEN", default_value = "127.0.0.1:7400")]
    pub(crate) listen: SocketAddr,
    /// TLS certificate chain (PEM); requires --tls-key.
    #[arg(long, env = "PODID_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); requires --tls-cert.
    #[arg(long, env = "PODID_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Store location (default: sqlite:<data-dir>/podid.db).
    #[arg(long, env = "PODID_STORE")]
    pub(crate) store: Option<String>,
    /// Directory for the database and the administrator key.
    #[arg(long, env = "PODID_DATA_DIR", default_value = "./podid-data")]
    pub(crate) data_dir: PathBuf,
    /// AWS region podid answers as.
    #[arg(long, env = "PODID_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
    /// 12-digit AWS account id podid answers as (default: 000000000000; with --issuer sts, the
    /// account of podid's own credentials, from STS GetCallerIdentity at startup).
    #[arg(long, env = "PODID_ACCOUNT_ID")]
    pub(crate) account_id: Option<String>,
    /// Administrator key file (default: <data-dir>/admin-credentials, created if absent).
    #[arg(long, env = "PODID_ADMIN_ACCESS_KEY_FILE")]
    pub(crate) admin_access_key_file: Option<PathBuf>,
    /// Key-encryption key (KEK) file, one line of base64 of 32 random bytes: seals IAM secret
    /// keys and the session-sealing keys in the store (default: <data-dir>/kek, created if
    /// absent; PODID_KEK holds the key itself instead).
    #[arg(long, env = "PODID_KEK_FILE")]
    pub(crate) kek_file: Option<PathBuf>,
    /// The KEK itself, base64. Set PODID_KEK rather than the flag: argv is visible to every
    /// user of the machine.
    #[arg(
        long,
        env = "PODID_KEK",
        hide = true,
        hide_env_values = true,
        conflicts_with = "kek_file"
    )]
    pub(crate) kek: Option<KekText>,
    /// A previous KEK file during a rotation: it still opens secrets, and at start every secret
    /// is re-wrapped under the current KEK; repeatable (comma-separated in the environment
    /// variable).
    #[arg(
        long = "previous-kek-file",
        env = "PODID_PREVIOUS_KEK_FILES",
        value_delimiter = ','
    )]
    pub(crate) previous_kek_files: Vec<PathBuf>,
    /// Previous KEKs themselves, base64, comma-separated (PODID_PREVIOUS_KEKS).
    #[arg(
        long = "previous-kek",
        env = "PODID_PREVIOUS_KEKS",
        value_delimiter = ',',
        hide = true,
        hide_env_values = true
    )]
    pub(crate) previous_keks: Vec<KekText>,
    /// Most pod identity associations per cluster.
    #[arg(
        long,
        env = "PODID_MAX_ASSOCIATIONS_PER_CLUSTER",
        default_value = "5000"
    )]
    pub(crate) max_associations_per_cluster: NonZeroU32,
    /// Cap on issued credentials' lifetime, e.g. 15m.
    #[arg(long, env = "PODID_MAX_CREDENTIAL_DURATION", value_parser = parse_duration)]
    pub(crate) max_credential_duration: Option<Duration>,
    /// How long audit events are kept, e.g. 90d.
    #[arg(long, env = "PODID_AUDIT_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub(crate) audit_retention: Duration,
    /// Also append audit events as JSON lines to this file.
    #[arg(long, env = "PODID_AUDIT_FILE")]
    pub(crate) audit_file: Option<PathBuf>,
    /// Let clusters' jwksUri use plain http (default: https only).
    #[arg(long, env = "PODID_JWKS_ALLOW_HTTP")]
    pub(crate) jwks_allow_http: bool,
    /// A network jwksUri fetches may reach although it is refused by default (loopback,
    /// link-local, metadata, ...), e.g. 127.0.0.1/32 for an API server on this machine;
    /// repeatable (comma-separated in the environment variable).
    #[arg(
        long = "jwks-allow-network",
        env = "PODID_JWKS_ALLOW_NETWORKS",
        value_delimiter = ','
    )]
    pub(crate) jwks_allow_networks: Vec<ipnet::IpNet>,
    /// Time a new connection has to send its first request's headers (after TLS).
    #[arg(long, env = "PODID_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub(crate) header_read_timeout: Duration,
    /// Time a keep-alive connection (HTTP/1 or h2) may wait for its next request.
    #[arg(long, env = "PODID_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    #[arg(long, env = "PODID_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) tls_handshake_timeout: Duration,
    /// Open connections at most; more are closed as soon as they are accepted.
    #[arg(long, env = "PODID_MAX_CONNECTIONS", default_value = "10000")]
    pub(crate) max_connections: NonZeroU32,
    /// Open connections per client IP at most; 0 (the default) for no per-client cap (clients
    /// behind one load balancer share its address).
    #[arg(long, env = "PODID_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 0)]
    pub(crate) max_connections_per_client: u32,
    #[command(flatten)]
    pub(crate) issuing: IssuingArgs,
}

/// Who issues Pod Identity credentials: podid itself (`local`), or upstream STS (`sts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IssuerKind {
    /// podid is the IAM and STS authority: roles in its own IAM, sealed temporary credentials.
    Local,
    /// Real role sessions: AssumeRole at an STS endpoint with podid's own AWS credentials
    /// (the standard AWS chain: env, shared files, web identity, container, instance metadata).
    Sts,
}

/// The issuing mode and the `sts` mode's settings (docs/sts-mode.md).
#[derive(Debug, Clone, Args)]
pub(crate) struct IssuingArgs {
    /// Issuing mode: local (podid is the IAM/STS authority) or sts (AssumeRole upstream).
    #[arg(long, env = "PODID_ISSUER", value_enum, default_value = "local")]
    pub(crate) issuer: IssuerKind,
    /// sts: the STS endpoint (default: AWS STS of --sts-region).
    #[arg(long, env = "PODID_STS_ENDPOINT")]
    pub(crate) sts_endpoint: Option<String>,
    /// sts: the STS signing region (default: --region).
    #[arg(long, env = "PODID_STS_REGION")]
    pub(crate) sts_region: Option<String>,
    /// sts: session lifetime (DurationSeconds), 15m to 12h; over 1h needs long-term source
    /// credentials (an IAM user's key), as STS caps role chains at 1h.
    #[arg(long, env = "PODID_STS_DURATION", default_value = "1h", value_parser = parse_duration)]
    pub(crate) sts_duration: Duration,
    /// sts: sessions are reused while more than this of their lifetime remains (default: half
    /// of --sts-duration).
    #[arg(long, env = "PODID_STS_REFRESH_MARGIN", value_parser = parse_duration)]
    pub(crate) sts_refresh_margin: Option<Duration>,
    /// sts: AssumeRole calls per second per account (STS allows about 600).
    #[arg(long, env = "PODID_STS_RATE_LIMIT", default_value = "500")]
    pub(crate) sts_rate_limit: NonZeroU32,
    /// sts: calls allowed at once after a quiet period (default: --sts-rate-limit).
    #[arg(long, env = "PODID_STS_BURST")]
    pub(crate) sts_burst: Option<NonZeroU32>,
    /// sts: longest a call queues for the rate limit before ThrottlingException.
    #[arg(long, env = "PODID_STS_MAX_QUEUE_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub(crate) sts_max_queue_wait: Duration,
    /// sts: pods of an association with session tags disabled share one session per refresh
    /// window (an association tag podid.dev/session-sharing=true|false overrides this).
    #[arg(long, env = "PODID_STS_SESSION_SHARING")]
    pub(crate) sts_session_sharing: bool,
}

/// `podid webhook`: the reference webhook's container-credentials flags where it has them.
#[derive(Debug, Args)]
pub(crate) struct WebhookArgs {
    /// The cluster whose Pod Identity associations decide which pods are mutated.
    #[arg(long, env = "PODID_CLUSTER")]
    pub(crate) cluster_name: String,
    /// podid server URL (its EKS API lists the associations).
    #[arg(long, env = "PODID_ENDPOINT")]
    pub(crate) endpoint: String,
    /// Serving certificate chain (PEM); reloaded when the file changes.
    #[arg(long, env = "PODID_TLS_CERT")]
    pub(crate) tls_cert_file: PathBuf,
    /// Serving private key (PEM); reloaded when the file changes.
    #[arg(long, env = "PODID_TLS_KEY")]
    pub(crate) tls_key_file: PathBuf,
    /// HTTPS address for /mutate, /healthz and /readyz.
    #[arg(long, env = "PODID_LISTEN", default_value = "0.0.0.0:8443")]
    pub(crate) listen: SocketAddr,
    /// Plain-HTTP address for /metrics (and the probes again).
    #[arg(long, env = "PODID_METRICS_LISTEN", default_value = "0.0.0.0:9999")]
    pub(crate) metrics_listen: SocketAddr,
    /// Serve no metrics listener.
    #[arg(long)]
    pub(crate) no_metrics: bool,
    /// Point pods at the agent's IPv6 address (`http://[fd00:ec2::23]/v1/credentials`).
    #[arg(long, conflicts_with = "container_credentials_full_uri")]
    pub(crate) ipv6: bool,
    /// Override AWS_CONTAINER_CREDENTIALS_FULL_URI (default: the agent's IPv4 or IPv6 address).
    #[arg(long, env = "PODID_CONTAINER_CREDENTIALS_FULL_URI")]
    pub(crate) container_credentials_full_uri: Option<String>,
    /// Inject AWS_REGION and AWS_DEFAULT_REGION with this value into containers that set neither.
    #[arg(long)]
    pub(crate) aws_default_region: Option<String>,
    /// Inject AWS_STS_REGIONAL_ENDPOINTS=regional (a service account's
    /// eks.amazonaws.com/sts-regional-endpoints annotation would override it).
    #[arg(long)]
    pub(crate) sts_regional_endpoints: bool,
    /// Default projected-token lifetime in seconds (at least 600; 86400 is jittered to
    /// 79200-86400); the pod annotation eks.amazonaws.com/token-expiration overrides it.
    #[arg(long, default_value_t = 86_400)]
    pub(crate) token_expiration: i64,
    /// Signing region for the EKS API (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Shared credentials file signing the EKS calls (else AWS_ACCESS_KEY_ID/
    /// AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials); read again on every sync.
    #[arg(long, env = "AWS_SHARED_CREDENTIALS_FILE")]
    pub(crate) credentials_file: Option<PathBuf>,
    /// Profile in the credentials file.
    #[arg(long, env = "AWS_PROFILE", default_value = "default")]
    pub(crate) profile: String,
    /// PEM bundle that replaces the system roots for HTTPS to the server.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// How often the associations are listed, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) sync_interval: Duration,
    /// How long syncs may fail before /readyz reports not ready (the last good set is still used).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub(crate) max_staleness: Duration,
    /// How often the certificate files are checked for changes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) tls_reload_interval: Duration,
    /// Kubeconfig for the service-account watch (default: $KUBECONFIG or ~/.kube/config, else
    /// the pod's own service account when running in a cluster).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// Do not watch service accounts: their eks.amazonaws.com/token-expiration and
    /// eks.amazonaws.com/sts-regional-endpoints annotations are then not applied.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub(crate) no_service_account_watch: bool,
    /// How long a pod whose service account the watch has not delivered yet waits for it.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub(crate) service_account_lookup_grace_period: Duration,
    /// Time a new connection has to send its first request's headers (after TLS).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next review.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// Time the API server has to finish the TLS handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) tls_handshake_timeout: Duration,
    /// Open HTTPS connections at most; more are closed as soon as they are accepted.
    #[arg(long, default_value = "1024")]
    pub(crate) max_connections: NonZeroU32,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Directory for the dev database, keys and dev.env.
    #[arg(long, env = "PODID_DATA_DIR", default_value = "./.podid-dev")]
    pub(crate) data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "PODID_LISTEN", default_value = "127.0.0.1:7400")]
    pub(crate) listen: SocketAddr,
    /// The node agent's credential port on 127.0.0.1 (default 7480, or a free port if 7480 is
    /// taken; an explicit port must be free).
    #[arg(long, env = "PODID_AGENT_PORT")]
    pub(crate) agent_port: Option<u16>,
    /// The agent's probe port on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) agent_probe_port: u16,
    /// The agent's metrics port on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) agent_metrics_port: u16,
    /// Cap on issued credentials' lifetime, e.g. 90s (to watch SDKs refresh).
    #[arg(long, env = "PODID_MAX_CREDENTIAL_DURATION", value_parser = parse_duration)]
    pub(crate) max_credential_duration: Option<Duration>,
    #[command(flatten)]
    pub(crate) issuing: IssuingArgs,
}

/// How the admin commands reach and authenticate to a server.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// Server URL (else PODID_ENDPOINT, AWS_ENDPOINT_URL, http://127.0.0.1:7400).
    #[arg(long, global = true, env = "PODID_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Signing region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, global = true, env = "PODID_REGION")]
    pub(crate) region: Option<String>,
    /// Where to find admin-credentials when AWS_ACCESS_KEY_ID is unset
    /// (else ./.podid-dev, then ./podid-data).
    #[arg(long, global = true, env = "PODID_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Output format (default: table on a terminal, else json).
    #[arg(long, global = true, env = "PODID_OUTPUT", value_enum)]
    pub(crate) output: Option<OutputFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoleCommand {
    /// Deny everything to the role's sessions issued before now, as the IAM console's "Revoke
    /// active sessions" does (inline policy AWSRevokeOlderSessions).
    RevokeSessions {
        /// The role whose sessions are revoked.
        #[arg(long)]
        role_name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Replace the administrator key (IAM user podid-admin) without downtime: create a new key,
    /// write it over the key file, check it works, delete the old one.
    RotateKey {
        /// The administrator key file to rotate (default: admin-credentials in --data-dir,
        /// else in ./.podid-dev or ./podid-data).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AssociationCommand {
    /// CreatePodIdentityAssociation.
    Create(AssociationCreate),
    /// ListPodIdentityAssociations (follows nextToken unless --max-results is given).
    List(AssociationList),
    /// DescribePodIdentityAssociation.
    Describe(AssociationRef),
    /// UpdatePodIdentityAssociation.
    Update(AssociationUpdate),
    /// DeletePodIdentityAssociation.
    Delete(AssociationRef),
}

#[derive(Debug, Args)]
pub(crate) struct AssociationCreate {
    #[arg(long)]
    pub(crate) cluster_name: String,
    #[arg(long)]
    pub(crate) namespace: String,
    #[arg(long)]
    pub(crate) service_account: String,
    #[arg(long)]
    pub(crate) role_arn: String,
    #[arg(long)]
    pub(crate) target_role_arn: Option<String>,
    /// Do not add the Pod Identity session tags.
    #[arg(long, overrides_with = "no_disable_session_tags")]
    pub(crate) disable_session_tags: bool,
    #[arg(long)]
    pub(crate) no_disable_session_tags: bool,
    /// Session policy: JSON text or file://path.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    /// A tag as key=value (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    #[arg(long)]
    pub(crate) client_request_token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AssociationList {
    #[arg(long)]
    pub(crate) cluster_name: String,
    #[arg(long)]
    pub(crate) namespace: Option<String>,
    #[arg(long)]
    pub(crate) service_account: Option<String>,
    /// One page of at most this many (1-100); prints nextToken when there is more.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) max_results: Option<u32>,
    /// Start after this page token.
    #[arg(long)]
    pub(crate) next_token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AssociationRef {
    #[arg(long)]
    pub(crate) cluster_name: String,
    #[arg(long)]
    pub(crate) association_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct AssociationUpdate {
    #[arg(long)]
    pub(crate) cluster_name: String,
    #[arg(long)]
    pub(crate) association_id: String,
    #[arg(long)]
    pub(crate) role_arn: Option<String>,
    /// Target role; an empty string removes it.
    #[arg(long)]
    pub(crate) target_role_arn: Option<String>,
    #[arg(long, conflicts_with = "no_disable_session_tags")]
    pub(crate) disable_session_tags: bool,
    #[arg(long)]
    pub(crate) no_disable_session_tags: bool,
    /// Session policy: JSON text or file://path; an empty string removes it.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    #[arg(long)]
    pub(crate) client_request_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Register a cluster: its token issuer and signing keys.
    Register(ClusterRegister),
    /// List registered clusters.
    List,
    /// Show one cluster.
    Describe(ClusterName),
    /// Change a cluster's issuer or keys.
    Update(ClusterUpdate),
    /// Read a cluster's issuer and current keys again through its API server (after a key
    /// rotation), and store them.
    Refresh(ClusterRefresh),
    /// Remove a cluster (refused while it has associations).
    Delete(ClusterName),
}

#[derive(Debug, Args)]
pub(crate) struct ClusterName {
    #[arg(long)]
    pub(crate) name: String,
}

/// Exactly one key source for register; at most one for update.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// A JWKS file (e.g. from `kubectl get --raw /openid/v1/jwks`).
    #[arg(long)]
    pub(crate) jwks_file: Option<PathBuf>,
    /// An inline JWKS JSON document.
    #[arg(long)]
    pub(crate) jwks: Option<String>,
    /// A URL podid fetches the JWKS from.
    #[arg(long)]
    pub(crate) jwks_uri: Option<String>,
    /// Read the issuer and keys through the API server of this kubeconfig, with its
    /// credentials (`/.well-known/openid-configuration` and `/openid/v1/jwks`).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, requires = "kubeconfig")]
    pub(crate) context: Option<String>,
    /// PEM CA certificates the server trusts when fetching `--jwks-uri`.
    #[arg(long, requires = "jwks_uri")]
    pub(crate) jwks_ca_file: Option<PathBuf>,
    /// A file, on the server's machine, holding a bearer token the server sends when fetching
    /// `--jwks-uri` (read again at every fetch).
    #[arg(long, requires = "jwks_uri")]
    pub(crate) jwks_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("keys").required(true).args(["jwks_file", "jwks", "jwks_uri", "kubeconfig"])))]
pub(crate) struct ClusterRegister {
    #[arg(long)]
    pub(crate) name: String,
    /// The `iss` of the cluster's service-account tokens (read from the API server with
    /// `--kubeconfig`).
    #[arg(
        long,
        required_unless_present = "kubeconfig",
        conflicts_with = "kubeconfig"
    )]
    pub(crate) issuer: Option<String>,
    #[command(flatten)]
    pub(crate) keys: KeysArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ClusterRefresh {
    #[arg(long)]
    pub(crate) name: String,
    /// The kubeconfig of the cluster's API server (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long)]
    pub(crate) context: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("keys").args(["jwks_file", "jwks", "jwks_uri", "kubeconfig"])))]
pub(crate) struct ClusterUpdate {
    #[arg(long)]
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) issuer: Option<String>,
    #[command(flatten)]
    pub(crate) keys: KeysArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The dev data directory holding the cluster signing key.
    #[arg(long, env = "PODID_DATA_DIR", default_value = "./.podid-dev")]
    pub(crate) data_dir: PathBuf,
    #[arg(long)]
    pub(crate) namespace: String,
    #[arg(long)]
    pub(crate) service_account: String,
    /// Only the dev cluster's key is available locally.
    #[arg(long, env = "PODID_CLUSTER", default_value = "dev")]
    pub(crate) cluster: String,
    /// The pod the token is bound to. Pod Identity refuses tokens not bound to a pod, as the
    /// kubelet's projected tokens always are.
    #[arg(long, default_value = "podid-token")]
    pub(crate) pod_name: String,
    /// The pod's uid (default: a random UUID, i.e. a new pod each time).
    #[arg(long)]
    pub(crate) pod_uid: Option<String>,
    #[arg(long)]
    pub(crate) node_name: Option<String>,
    /// Token audience (repeatable; default pods.eks.amazonaws.com).
    #[arg(long = "audience")]
    pub(crate) audiences: Vec<String>,
    /// Token lifetime, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub(crate) ttl: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The dev data directory (signing key and dev.env).
    #[arg(long, env = "PODID_DATA_DIR", default_value = "./.podid-dev")]
    pub(crate) data_dir: PathBuf,
    #[arg(long)]
    pub(crate) namespace: String,
    #[arg(long)]
    pub(crate) service_account: String,
    /// Pod name in the token (default podid-exec).
    #[arg(long, default_value = "podid-exec")]
    pub(crate) pod_name: String,
    /// Token lifetime (at least 10m, as for projected tokens); refreshed at 80%.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub(crate) token_ttl: Duration,
    /// The node agent (else PODID_AGENT_URL from dev.env).
    #[arg(long, env = "PODID_AGENT_URL")]
    pub(crate) agent_url: Option<String>,
    /// The podid server, for STS (else PODID_ENDPOINT from dev.env).
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1.., value_name = "CMD")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// Writes the completion script for `shell` to stdout.
pub(crate) fn print_completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "podid", &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tls_flags_come_in_pairs() {
        let err = Cli::try_parse_from(["podid", "server", "--tls-cert", "c.pem"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(
            Cli::try_parse_from(["podid", "server", "--tls-cert", "c", "--tls-key", "k"]).is_ok()
        );
    }

    #[test]
    fn register_needs_exactly_one_key_source() {
        let base = [
            "podid",
            "cluster",
            "register",
            "--name",
            "a",
            "--issuer",
            "https://i",
        ];
        assert!(Cli::try_parse_from(base).is_err());
        let both = [&base[..], &["--jwks", "{}", "--jwks-uri", "https://k"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
        let one = [&base[..], &["--jwks-uri", "https://k"]].concat();
        assert!(Cli::try_parse_from(one).is_ok());
    }

    #[test]
    fn exec_needs_a_command_after_the_separator() {
        assert!(
            Cli::try_parse_from([
                "podid",
                "exec",
                "--namespace",
                "n",
                "--service-account",
                "s"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from([
            "podid",
            "exec",
            "--namespace",
            "n",
            "--service-account",
            "s",
            "--",
            "env",
            "-0",
        ])
        .unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(args.command, ["env", "-0"]);
    }
}
