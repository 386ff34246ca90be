//! Reading a cluster's service-account token issuer and public signing keys through its
//! Kubernetes API server, with a kubeconfig's credentials: what `podid cluster register
//! --kubeconfig` and `podid cluster refresh` store.
//!
//! The same two documents `kubectl get --raw /.well-known/openid-configuration` and
//! `kubectl get --raw /openid/v1/jwks` print. Both need an authenticated caller unless the
//! cluster binds `system:service-account-issuer-discovery` to anonymous users; the `kube`
//! crate handles every kubeconfig credential kind (client certificates, tokens, exec plugins).

use std::path::Path;

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use serde_json::Value;

/// Largest discovery or JWKS document accepted (the server's own JWKS cap).
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// What a cluster's API server says about its service-account tokens.
#[derive(Debug)]
pub(crate) struct Discovered {
    /// The `iss` of its tokens (`--service-account-issuer`).
    pub(crate) issuer: String,
    /// The JWKS document, parsed.
    pub(crate) jwks: Value,
    /// The API server's URL, for messages.
    pub(crate) server: String,
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: String,
}

/// The client configuration of `kubeconfig` (default: the standard `$KUBECONFIG` /
/// `~/.kube/config` lookup) and `context` (default: current).
pub(crate) async fn from_kubeconfig(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Config> {
    let file = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?,
        None => {
            Kubeconfig::read().context("reading the kubeconfig ($KUBECONFIG or ~/.kube/config)")?
        }
    };
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .context("loading the kubeconfig's cluster and credentials")
}

/// Reads the issuer and keys through the API server named by `kubeconfig` (default: the
/// standard `$KUBECONFIG` / `~/.kube/config` lookup) and `context` (default: current).
pub(crate) async fn discover(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<Discovered> {
    let config = from_kubeconfig(kubeconfig, context).await?;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
    let discovery = get(
        &client,
        "/.well-known/openid-configuration",
        "application/json",
    )
    .await?;
    let discovery: OpenIdConfiguration = serde_json::from_str(&discovery).context(
        "the API server's /.well-known/openid-configuration is not an OpenID configuration",
    )?;
    let jwks_text = get(&client, "/openid/v1/jwks", "application/jwk-set+json").await?;
    let jwks: Value =
        serde_json::from_str(&jwks_text).context("the API server's /openid/v1/jwks is not JSON")?;
    if !jwks.get("keys").is_some_and(Value::is_array) {
        bail!("the API server's /openid/v1/jwks is not a key set (no \"keys\" array)");
    }
    Ok(Discovered {
        issuer: discovery.issuer,
        jwks,
        server,
    })
}

async fn get(client: &kube::Client, path: &str, accept: &str) -> anyhow::Result<String> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .context("building the request")?;
    let text = match client.request_text(request).await {
        Ok(text) => text,
        Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => bail!(
            "GET {path} on the API server: HTTP {} {}: the kubeconfig's user needs the \
             system:service-account-issuer-discovery cluster role (kubectl create \
             clusterrolebinding … --clusterrole=system:service-account-issuer-discovery)",
            status.code,
            status.message
        ),
        Err(e) => return Err(e).with_context(|| format!("GET {path} on the API server")),
    };
    if text.len() > MAX_DOCUMENT_BYTES {
        bail!("GET {path}: the document is larger than {MAX_DOCUMENT_BYTES} bytes");
    }
    Ok(text)
}
