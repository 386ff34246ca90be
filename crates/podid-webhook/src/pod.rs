//! The parts of an admitted pod the mutation reads, taken from the review's object.
//!
//! Containers stay JSON values rather than typed `k8s-openapi` structs on purpose: the patch
//! re-sends `/spec/containers` whole, and a round trip through typed structs would silently drop
//! any field this build's Kubernetes types do not know (a newer API server's additions).

use std::collections::BTreeMap;

use kube_core::{DynamicObject, ObjectMeta};
use serde_json::{Map, Value};

/// Why a pod object could not be read. The API server would refuse such a pod itself; the webhook
/// admits it untouched and reports the reason as a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    #[error("the review carries no pod object")]
    NoObject,
    /// No `metadata` (or an empty one): the label patch's `/metadata/labels` would have no parent
    /// to be added to, and the API server never sends a pod without at least its namespace.
    #[error("the pod has no metadata")]
    NoMetadata,
    #[error("the pod has no spec object")]
    NoSpec,
    #[error("the pod's spec.{field} is not a list of objects")]
    NotAListOfObjects { field: &'static str },
    #[error("the pod's spec.{field} is not a {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// A read-only view of the pod, borrowed from the decoded review.
#[derive(Debug)]
pub struct PodView<'a> {
    /// `metadata.labels`, `None` when the pod has no labels map at all (the label patch then
    /// creates the map rather than adding a member).
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// `spec.serviceAccountName`, `None` when absent or empty.
    pub service_account: Option<&'a str>,
    pub node_selector: Option<&'a Map<String, Value>>,
    /// `spec.volumes`, `None` when the pod has no volumes list (the volume patch then creates it).
    pub volumes: Option<&'a [Value]>,
    pub containers: Vec<&'a Map<String, Value>>,
    pub init_containers: Vec<&'a Map<String, Value>>,
}

impl<'a> PodView<'a> {
    /// Reads the view from a review's `object`.
    pub fn new(pod: &'a DynamicObject) -> Result<Self, PodError> {
        // `DynamicObject` reads a missing `metadata` as the empty default (fuzzing finding: the
        // patch for such a pod did not apply).
        if pod.metadata == ObjectMeta::default() {
            return Err(PodError::NoMetadata);
        }
        let spec = pod
            .data
            .get("spec")
            .and_then(Value::as_object)
            .ok_or(PodError::NoSpec)?;
        let service_account = optional(spec, "serviceAccountName", "string", Value::as_str)?
            .filter(|s| !s.is_empty());
        let node_selector = optional(spec, "nodeSelector", "map", Value::as_object)?;
        let volumes = optional(spec, "volumes", "list", |v| v.as_array().map(Vec::as_slice))?;
        Ok(Self {
            labels: pod.metadata.labels.as_ref(),
            annotations: pod.metadata.annotations.as_ref(),
            service_account,
            node_selector,
            volumes,
            containers: objects(spec, "containers")?,
            init_containers: objects(spec, "initContainers")?,
        })
    }

    /// Whether the pod is pinned to Windows nodes (`kubernetes.io/os` or the older
    /// `beta.kubernetes.io/os` node selector), which changes the token path's form.
    pub fn is_windows(&self) -> bool {
        self.node_selector.is_some_and(|s| {
            ["kubernetes.io/os", "beta.kubernetes.io/os"]
                .iter()
                .any(|k| s.get(*k).and_then(Value::as_str) == Some("windows"))
        })
    }

    /// Whether a volume with this name exists.
    pub fn has_volume(&self, name: &str) -> bool {
        self.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.get("name").and_then(Value::as_str) == Some(name))
    }
}

/// An optional member of the spec: absent or `null` is `None`, any other type an error.
fn optional<'a, T>(
    spec: &'a Map<String, Value>,
    field: &'static str,
    expected: &'static str,
    pick: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, PodError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => pick(v)
            .map(Some)
            .ok_or(PodError::WrongType { field, expected }),
    }
}

/// A list of container objects; an absent list is empty. Every entry must be an object, or the
/// whole list is refused: the patch re-sends the list and must not drop or mangle an entry.
fn objects<'a>(
    spec: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Vec<&'a Map<String, Value>>, PodError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_object()
                    .ok_or(PodError::NotAListOfObjects { field })
            })
            .collect(),
        Some(_) => Err(PodError::NotAListOfObjects { field }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: Value) -> DynamicObject {
        serde_json::from_value(json).unwrap()
    }

    /// Fuzzing finding (`fuzz/corpus/admission/crash-no-metadata`): a pod without `metadata`
    /// was mutated with `add /metadata/labels`, a patch that cannot apply.
    #[test]
    fn a_pod_without_metadata_is_unreadable() {
        let spec =
            serde_json::json!({"containers": [{"name": "app"}], "serviceAccountName": "app"});
        for object in [
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": spec}),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": spec}),
        ] {
            assert_eq!(
                PodView::new(&pod(object)).unwrap_err(),
                PodError::NoMetadata
            );
        }
        let named = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "default"}, "spec": spec
        }));
        assert!(PodView::new(&named).is_ok());
    }
}
