//! `podid association ...`: the EKS pod identity association API (SigV4 service `eks`), with the
//! aws CLI's flag names.

use std::path::Path;

use anyhow::Context as _;
use http::Method;
use serde_json::{Map, Value, json};

use crate::cli::{
    AssociationCommand, AssociationCreate, AssociationUpdate, ClientArgs, OutputFormat,
};
use crate::client::{Client, encode};
use crate::output;

const EKS_SERVICE: &str = "eks";
/// Largest session policy file read. IAM's session-policy limit is 2,048 characters; the server
/// gives the exact refusal, this only stops reading a huge file by mistake.
const MAX_POLICY_FILE_BYTES: u64 = 64 * 1024;
/// Most pages followed by `list` (100 per page covers EKS's 5,000-per-cluster limit many times).
const MAX_LIST_PAGES: usize = 1000;

pub(crate) async fn run(args: &ClientArgs, command: AssociationCommand) -> anyhow::Result<()> {
    let format = output::format(args.output);
    let client = Client::from_args(args)?;
    let answer = match command {
        AssociationCommand::Create(c) => {
            let path = collection(&c.cluster_name);
            let body = create_body(c)?;
            client
                .call(EKS_SERVICE, Method::POST, &path, &[], Some(&body))
                .await?
        }
        AssociationCommand::List(l) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(ns) = l.namespace {
                query.push(("namespace", ns));
            }
            if let Some(sa) = l.service_account {
                query.push(("serviceAccount", sa));
            }
            list(&client, &l.cluster_name, query, l.max_results, l.next_token).await?
        }
        AssociationCommand::Describe(r) => {
            client
                .call(
                    EKS_SERVICE,
                    Method::GET,
                    &item(&r.cluster_name, &r.association_id),
                    &[],
                    None,
                )
                .await?
        }
        AssociationCommand::Update(u) => {
            let path = item(&u.cluster_name, &u.association_id);
            let body = update_body(u)?;
            client
                .call(EKS_SERVICE, Method::POST, &path, &[], Some(&body))
                .await?
        }
        AssociationCommand::Delete(r) => {
            client
                .call(
                    EKS_SERVICE,
                    Method::DELETE,
                    &item(&r.cluster_name, &r.association_id),
                    &[],
                    None,
                )
                .await?
        }
    };
    print(&answer, format);
    Ok(())
}

/// One page when `max_results` is given (its nextToken is kept), else every page.
async fn list(
    client: &Client,
    cluster: &str,
    filters: Vec<(&str, String)>,
    max_results: Option<u32>,
    mut next: Option<String>,
) -> anyhow::Result<Value> {
    let mut all = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let mut query = filters.clone();
        if let Some(max) = max_results {
            query.push(("maxResults", max.to_string()));
        }
        if let Some(token) = &next {
            query.push(("nextToken", token.clone()));
        }
        let page = client
            .call(EKS_SERVICE, Method::GET, &collection(cluster), &query, None)
            .await?;
        if let Some(items) = page.get("associations").and_then(Value::as_array) {
            all.extend(items.iter().cloned());
        }
        next = page
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if next.is_none() || max_results.is_some() {
            break;
        }
    }
    let mut out = json!({ "associations": all });
    if let (Some(token), Some(obj)) = (next, out.as_object_mut()) {
        obj.insert("nextToken".into(), token.into());
    }
    Ok(out)
}

fn collection(cluster: &str) -> String {
    format!("/clusters/{}/pod-identity-associations", encode(cluster))
}

fn item(cluster: &str, id: &str) -> String {
    format!("{}/{}", collection(cluster), encode(id))
}

fn create_body(c: AssociationCreate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("namespace".into(), c.namespace.into());
    body.insert("serviceAccount".into(), c.service_account.into());
    body.insert("roleArn".into(), c.role_arn.into());
    if let Some(t) = c.target_role_arn {
        body.insert("targetRoleArn".into(), t.into());
    }
    if c.disable_session_tags || c.no_disable_session_tags {
        body.insert("disableSessionTags".into(), c.disable_session_tags.into());
    }
    if let Some(p) = c.policy {
        body.insert("policy".into(), policy_text(&p)?.into());
    }
    if !c.tags.is_empty() {
        body.insert("tags".into(), Value::Object(parse_tags(&c.tags)?));
    }
    // Like the aws CLI, send a token so a retried create is idempotent.
    let token = c
        .client_request_token
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    body.insert("clientRequestToken".into(), token.into());
    Ok(Value::Object(body))
}

fn update_body(u: AssociationUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(r) = u.role_arn {
        body.insert("roleArn".into(), r.into());
    }
    if let Some(t) = u.target_role_arn {
        body.insert("targetRoleArn".into(), t.into());
    }
    if u.disable_session_tags || u.no_disable_session_tags {
        body.insert("disableSessionTags".into(), u.disable_session_tags.into());
    }
    if let Some(p) = u.policy {
        body.insert("policy".into(), policy_text(&p)?.into());
    }
    let token = u
        .client_request_token
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    body.insert("clientRequestToken".into(), token.into());
    Ok(Value::Object(body))
}

/// `--policy` text as given, or a file's contents for `file://path` (the aws CLI convention).
fn policy_text(value: &str) -> anyhow::Result<String> {
    let Some(path) = value.strip_prefix("file://") else {
        return Ok(value.to_owned());
    };
    let path = Path::new(path);
    let len = std::fs::metadata(path)
        .with_context(|| format!("--policy: reading {}", path.display()))?
        .len();
    if len > MAX_POLICY_FILE_BYTES {
        crate::usage!(
            "--policy: {} is larger than {MAX_POLICY_FILE_BYTES} bytes",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("--policy: reading {}", path.display()))
}

fn parse_tags(tags: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for tag in tags {
        match tag.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                map.insert(k.to_owned(), v.into());
            }
            _ => crate::usage!("--tag {tag:?} must be KEY=VALUE"),
        }
    }
    Ok(map)
}

fn print(answer: &Value, format: OutputFormat) {
    match (
        format,
        answer.get("associations"),
        answer.get("association"),
    ) {
        (OutputFormat::Json, _, _) => output::print_json(answer),
        (OutputFormat::Table, Some(Value::Array(list)), _) => {
            output::print_table(
                &["ASSOCIATION ID", "CLUSTER", "NAMESPACE", "SERVICE ACCOUNT"],
                &[
                    "associationId",
                    "clusterName",
                    "namespace",
                    "serviceAccount",
                ],
                list,
            );
            if let Some(token) = answer.get("nextToken").and_then(Value::as_str) {
                println!("nextToken: {token}");
            }
        }
        (OutputFormat::Table, _, Some(a)) => output::print_object(a),
        (OutputFormat::Table, _, _) => output::print_json(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_need_a_key_and_an_equals_sign() {
        for bad in ["novalue", "=v", ""] {
            assert!(parse_tags(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        let tags = parse_tags(&["team=a=b".to_owned(), "empty=".to_owned()]).unwrap();
        assert_eq!(tags.get("team"), Some(&json!("a=b")));
        assert_eq!(tags.get("empty"), Some(&json!("")));
    }

    #[test]
    fn policy_reads_files_and_passes_text_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "{\"Version\":\"2012-10-17\"}").unwrap();
        assert_eq!(
            policy_text(&format!("file://{}", path.display())).unwrap(),
            "{\"Version\":\"2012-10-17\"}"
        );
        assert_eq!(policy_text("{}").unwrap(), "{}");
        assert!(policy_text("file:///nonexistent/podid/policy.json").is_err());
    }
}
