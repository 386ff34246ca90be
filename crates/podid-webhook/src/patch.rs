//! The Pod Identity mutation as a pure function: from a pod view and the settings, the JSON
//! Patch the reference webhook would send (`getPodSpecPatch` and `addEnvToContainer` in
//! amazon-eks-pod-identity-webhook's `pkg/handler/handler.go`; wire reference §2.4), in its order:
//! label, volume, containers, init containers.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::pod::PodView;

/// The projected token's audience, which EKS Auth (and podid) require.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The projected volume's name and the token file's name inside it.
pub const VOLUME_NAME: &str = "eks-pod-identity-token";
pub const TOKEN_PATH: &str = "eks-pod-identity-token";
/// Where the volume is mounted in each container (no trailing slash, as the reference writes it).
pub const MOUNT_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
/// The agent's credential endpoint on its link-local addresses.
pub const FULL_URI_IPV4: &str = "http://169.254.170.23/v1/credentials";
pub const FULL_URI_IPV6: &str = "http://[fd00:ec2::23]/v1/credentials";
/// The label the reference adds to every Pod Identity pod (W #295).
pub const POD_IDENTITY_LABEL: &str = "eks.amazonaws.com/pod-identity";
/// Pod annotation: comma-separated container names left untouched.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "eks.amazonaws.com/skip-containers";

const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const ENV_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const ENV_REGION: &str = "AWS_REGION";
const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
const ENV_STS_REGIONAL: &str = "AWS_STS_REGIONAL_ENDPOINTS";

/// What the patch injects, already resolved for this pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchSettings<'a> {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub full_uri: &'a str,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION`, when set.
    pub region: Option<&'a str>,
    /// Whether to add `AWS_STS_REGIONAL_ENDPOINTS=regional`.
    pub regional_sts: bool,
    /// The projected token's `expirationSeconds`.
    pub token_expiration: i64,
}

/// One RFC 6902 `add` operation, serialized with its members in the reference's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    op: &'static str,
    pub path: String,
    pub value: Value,
}

impl PatchOp {
    fn add(path: impl Into<String>, value: Value) -> Self {
        Self {
            op: "add",
            path: path.into(),
            value,
        }
    }
}

/// The patch, and whether it adds the volume or changes a container (the reference always sends
/// the patch; `changed` is only logged).
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub patch: Vec<PatchOp>,
    pub changed: bool,
}

/// Builds the Pod Identity patch for `pod`.
pub fn pod_identity_patch(pod: &PodView<'_>, settings: &PatchSettings<'_>) -> Mutation {
    let token_file = token_file_path(pod.is_windows());
    let skip = skipped_containers(pod);
    let mut changed = false;
    let mut mutate_all = |list: &[&Map<String, Value>]| -> Vec<Value> {
        list.iter()
            .map(|c| {
                let mut c = (*c).clone();
                let name = c.get("name").and_then(Value::as_str);
                if !name.is_some_and(|n| skip.iter().any(|s| s == n)) {
                    changed |= add_to_container(&mut c, &token_file, settings);
                }
                Value::Object(c)
            })
            .collect()
    };
    let init_containers = mutate_all(&pod.init_containers);
    let containers = mutate_all(&pod.containers);

    let mut patch = Vec::with_capacity(4);
    // The label is always (re-)added, like the reference; `changed` leaves it out so that it
    // tells whether the pod lacked anything that makes credentials work.
    patch.push(match pod.labels {
        None => PatchOp::add("/metadata/labels", json!({ POD_IDENTITY_LABEL: "enabled" })),
        Some(_) => PatchOp::add(
            format!("/metadata/labels/{}", escape_pointer(POD_IDENTITY_LABEL)),
            json!("enabled"),
        ),
    });
    if !pod.has_volume(VOLUME_NAME) {
        let volume = json!({
            "name": VOLUME_NAME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": AUDIENCE,
                "expirationSeconds": settings.token_expiration,
                "path": TOKEN_PATH,
            }}]},
        });
        changed = true;
        // Prepend into an existing list; create the list when the pod has none.
        patch.push(match pod.volumes {
            Some(_) => PatchOp::add("/spec/volumes/0", volume),
            None => PatchOp::add("/spec/volumes", Value::Array(vec![volume])),
        });
    }
    patch.push(PatchOp::add("/spec/containers", Value::Array(containers)));
    if !init_containers.is_empty() {
        patch.push(PatchOp::add(
            "/spec/initContainers",
            Value::Array(init_containers),
        ));
    }
    Mutation { patch, changed }
}

/// The token file as the container sees it. Windows containers get the reference's
/// `C:\var\run\...` form of the same path, though Pod Identity itself does not support Windows.
fn token_file_path(windows: bool) -> String {
    let path = format!("{MOUNT_PATH}/{TOKEN_PATH}");
    if windows {
        format!("C:{}", path.replace('/', "\\"))
    } else {
        path
    }
}

/// The names in the pod's skip-containers annotation (the first CSV record; an unparsable value
/// skips nothing, as in the reference).
fn skipped_containers(pod: &PodView<'_>) -> Vec<String> {
    pod.annotations
        .and_then(|a| a.get(SKIP_CONTAINERS_ANNOTATION))
        .and_then(|v| crate::csv::first_record(v))
        .unwrap_or_default()
}

/// Adds the env vars and the mount to one container (`addEnvToContainer`); returns whether it
/// changed anything.
fn add_to_container(
    container: &mut Map<String, Value>,
    token_file: &str,
    settings: &PatchSettings<'_>,
) -> bool {
    let names: Vec<&str> = list(container, "env")
        .iter()
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .collect();
    let has = |n: &str| names.contains(&n);
    let credentials_defined = has(ENV_FULL_URI) || has(ENV_TOKEN_FILE);
    let region_defined = has(ENV_REGION) || has(ENV_DEFAULT_REGION);
    let sts_defined = has(ENV_STS_REGIONAL);
    // The reference returns early here, before the mount: a container that already sets all
    // three groups itself is left exactly as it is.
    if credentials_defined && region_defined && sts_defined {
        return false;
    }
    let mut added = Vec::new();
    if !sts_defined && settings.regional_sts {
        added.push(env(ENV_STS_REGIONAL, "regional"));
    }
    if let (false, Some(region)) = (region_defined, settings.region) {
        added.push(env(ENV_DEFAULT_REGION, region));
        added.push(env(ENV_REGION, region));
    }
    if !credentials_defined {
        added.push(env(ENV_FULL_URI, settings.full_uri));
        added.push(env(ENV_TOKEN_FILE, token_file));
    }
    let mut changed = !added.is_empty();
    if changed {
        push_all(container, "env", added);
    }
    let mounted = list(container, "volumeMounts")
        .iter()
        .any(|m| m.get("name").and_then(Value::as_str) == Some(VOLUME_NAME));
    if !mounted {
        let mount = json!({"name": VOLUME_NAME, "readOnly": true, "mountPath": MOUNT_PATH});
        push_all(container, "volumeMounts", vec![mount]);
        changed = true;
    }
    changed
}

fn env(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// A container's list field, empty when absent or not a list.
fn list<'a>(container: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    container
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Appends to a container's list field, creating it (or replacing a non-list) when needed.
fn push_all(container: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    match container.get_mut(key) {
        Some(Value::Array(list)) => list.extend(items),
        _ => {
            // With `preserve_order`, replacing an existing key keeps its position.
            container.insert(key.to_owned(), Value::Array(items));
        }
    }
}

/// RFC 6901 escaping of one reference token.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
