//! `podid cluster ...`: the podid admin API (`/podid/v1/clusters`, SigV4 service `podid`).

use std::path::Path;

use anyhow::Context as _;
use http::Method;
use serde_json::{Map, Value, json};

use crate::cli::{ClientArgs, ClusterCommand, KeysArgs, OutputFormat};
use crate::client::{Client, encode};
use crate::kube_discovery;
use crate::output;

/// The SigV4 service name of the admin API.
pub(crate) const ADMIN_SERVICE: &str = "podid";
/// Largest JWKS read from a file or flag (the server's own cap).
const MAX_JWKS_BYTES: u64 = 64 * 1024;

pub(crate) async fn run(args: &ClientArgs, command: ClusterCommand) -> anyhow::Result<()> {
    let format = output::format(args.output);
    let client = Client::from_args(args)?;
    let answer = match command {
        ClusterCommand::Register(r) => {
            let mut body = Map::new();
            body.insert("name".into(), r.name.into());
            if let Some(issuer) = r.issuer {
                body.insert("issuer".into(), issuer.into());
            }
            add_keys(&mut body, &r.keys).await?;
            register(&client, &Value::Object(body)).await?
        }
        ClusterCommand::Refresh(r) => {
            let found =
                kube_discovery::discover(r.kubeconfig.as_deref(), r.context.as_deref()).await?;
            let before = describe(&client, &r.name).await?;
            let old_issuer = before["cluster"]["issuer"].as_str().unwrap_or_default();
            if old_issuer != found.issuer {
                eprintln!(
                    "note: the cluster's issuer changed from {old_issuer} to {}; tokens of the old issuer stop verifying",
                    found.issuer
                );
            }
            let body = json!({"issuer": found.issuer, "jwks": found.jwks});
            update(&client, &r.name, &body).await?
        }
        ClusterCommand::List => {
            client
                .call(ADMIN_SERVICE, Method::GET, "/podid/v1/clusters", &[], None)
                .await?
        }
        ClusterCommand::Describe(n) => describe(&client, &n.name).await?,
        ClusterCommand::Update(u) => {
            let mut body = Map::new();
            if let Some(issuer) = u.issuer {
                body.insert("issuer".into(), issuer.into());
            }
            // An explicit --issuer wins over the API server's (add_keys keeps it).
            add_keys(&mut body, &u.keys).await?;
            if body.is_empty() {
                crate::usage!(
                    "cluster update needs --issuer or one of --jwks-file, --jwks, --jwks-uri, --kubeconfig"
                );
            }
            update(&client, &u.name, &Value::Object(body)).await?
        }
        ClusterCommand::Delete(n) => {
            client
                .call(
                    ADMIN_SERVICE,
                    Method::DELETE,
                    &cluster_path(&n.name),
                    &[],
                    None,
                )
                .await?
        }
    };
    print(&answer, format);
    Ok(())
}

pub(crate) async fn register(client: &Client, body: &Value) -> anyhow::Result<Value> {
    client
        .call(
            ADMIN_SERVICE,
            Method::POST,
            "/podid/v1/clusters",
            &[],
            Some(body),
        )
        .await
}

pub(crate) async fn describe(client: &Client, name: &str) -> anyhow::Result<Value> {
    client
        .call(ADMIN_SERVICE, Method::GET, &cluster_path(name), &[], None)
        .await
}

pub(crate) async fn update(client: &Client, name: &str, body: &Value) -> anyhow::Result<Value> {
    client
        .call(
            ADMIN_SERVICE,
            Method::POST,
            &cluster_path(name),
            &[],
            Some(body),
        )
        .await
}

fn cluster_path(name: &str) -> String {
    format!("/podid/v1/clusters/{}", encode(name))
}

/// Puts the key source (and, from an API server, the issuer unless already set) into `body`.
async fn add_keys(body: &mut Map<String, Value>, keys: &KeysArgs) -> anyhow::Result<()> {
    if let Some(kubeconfig) = &keys.kubeconfig {
        let found = kube_discovery::discover(Some(kubeconfig), keys.context.as_deref()).await?;
        eprintln!(
            "read issuer {} and {} key(s) from {}",
            found.issuer,
            found.jwks["keys"].as_array().map_or(0, Vec::len),
            found.server
        );
        body.entry("issuer").or_insert(found.issuer.into());
        body.insert("jwks".into(), found.jwks);
    } else if let Some(path) = &keys.jwks_file {
        body.insert(
            "jwks".into(),
            parse_jwks(&read_capped(path)?, "--jwks-file")?,
        );
    } else if let Some(inline) = &keys.jwks {
        body.insert("jwks".into(), parse_jwks(inline, "--jwks")?);
    } else if let Some(uri) = &keys.jwks_uri {
        body.insert("jwksUri".into(), uri.clone().into());
        if let Some(path) = &keys.jwks_ca_file {
            body.insert("jwksCaBundle".into(), read_capped(path)?.into());
        }
        if let Some(path) = &keys.jwks_token_file {
            // The server reads it, at every fetch: send an absolute path.
            let absolute = std::path::absolute(path)
                .with_context(|| format!("resolving {}", path.display()))?;
            body.insert(
                "jwksTokenFile".into(),
                absolute.to_string_lossy().into_owned().into(),
            );
        }
    }
    Ok(())
}

fn parse_jwks(text: &str, flag: &str) -> anyhow::Result<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.get("keys").is_some_and(Value::is_array) => Ok(v),
        Ok(_) => crate::usage!("{flag}: a JWKS is a JSON object with a \"keys\" array"),
        Err(e) => crate::usage!("{flag}: not JSON: {e}"),
    }
}

fn read_capped(path: &Path) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_JWKS_BYTES {
        crate::usage!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn print(answer: &Value, format: OutputFormat) {
    match (format, answer.get("clusters"), answer.get("cluster")) {
        (OutputFormat::Json, _, _) => output::print_json(answer),
        (OutputFormat::Table, Some(Value::Array(list)), _) => {
            let rows: Vec<Value> = list.iter().map(summary).collect();
            output::print_table(
                &["NAME", "ISSUER", "KEYS"],
                &["name", "issuer", "keys"],
                &rows,
            );
        }
        (OutputFormat::Table, _, Some(cluster)) => output::print_object(&summary(cluster)),
        (OutputFormat::Table, _, _) => output::print_json(answer),
    }
}

/// A cluster with its key set shortened to a count (or its URI) for tables.
fn summary(cluster: &Value) -> Value {
    let keys = match (cluster.get("jwks"), cluster.get("jwksUri")) {
        (Some(jwks), _) => {
            let n = jwks
                .get("keys")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!("{n} inline key(s)")
        }
        (None, Some(uri)) => uri.as_str().unwrap_or_default().to_owned(),
        (None, None) => "-".to_owned(),
    };
    let mut out = cluster.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.remove("jwks");
        obj.remove("jwksUri");
        obj.insert("keys".into(), json!(keys));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_documents_that_are_not_key_sets() {
        for bad in ["", "[]", "{\"keys\": 1}", "{\"k\": []}", "{"] {
            let err = parse_jwks(bad, "--jwks").unwrap_err();
            assert!(err.downcast_ref::<crate::UsageError>().is_some(), "{bad:?}");
        }
        assert!(parse_jwks("{\"keys\": []}", "--jwks").is_ok());
    }

    #[test]
    fn oversized_jwks_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, vec![b' '; 64 * 1024 + 1]).unwrap();
        assert!(
            read_capped(&path)
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
    }
}
