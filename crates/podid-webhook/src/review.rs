//! One `AdmissionReview` in, one out: decoding with `kube-core`'s admission types, the Pod
//! Identity decision, and the response the kube-apiserver expects (`patch` as a base64 string:
//! `kube-core`'s own `AdmissionResponse` serializes it as an array of numbers, kube-rs #1781, so
//! the response shape is written here).
//!
//! Nothing here touches the network or a clock: the association set is a snapshot handed in.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde::Serialize;

use crate::associations::AssociationSet;
use crate::expiration::{Jitter, token_expiration};
use crate::patch::{PatchSettings, pod_identity_patch};
use crate::pod::PodView;
use crate::service_accounts::ServiceAccountInfo;

/// The review versions answered; the response echoes the request's (the reference does since
/// W #310). v1beta1 has the same shape for everything read here.
const API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
const KIND: &str = "AdmissionReview";

/// Service-account annotation that turns `AWS_STS_REGIONAL_ENDPOINTS=regional` on or off.
pub const STS_REGIONAL_ANNOTATION: &str = "eks.amazonaws.com/sts-regional-endpoints";

/// How pods are mutated: resolved once from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationConfig {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (IPv4 or IPv6 link-local agent address by default).
    pub full_uri: String,
    /// Injected as `AWS_REGION` and `AWS_DEFAULT_REGION` when set and the container has neither.
    pub aws_default_region: Option<String>,
    /// Default for `AWS_STS_REGIONAL_ENDPOINTS=regional` (a service-account annotation wins).
    pub regional_sts: bool,
    /// Default token lifetime in seconds (annotations win; 600 at least; 86400 is jittered).
    pub token_expiration: i64,
    /// How the 24-hour lifetime is jittered.
    pub jitter: Jitter,
}

/// Why a request body is not a usable review. The HTTP layer answers 400 with this text (the
/// parser's detail is part of the text, not a separate source); the kube-apiserver then applies
/// the webhook's failure policy.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Malformed(serde_json::Error),
    #[error(
        "AdmissionReview apiVersion {api_version:?} kind {kind:?} is not supported (want admission.k8s.io/v1 AdmissionReview)"
    )]
    Unsupported { api_version: String, kind: String },
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("encoding the response failed: {0}")]
    Encode(serde_json::Error),
}

/// How an admission ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The pod got the Pod Identity patch.
    Mutated,
    /// Admitted as it is: no association, not a pod creation.
    Untouched,
    /// Admitted as it is because the pod could not be read.
    Error,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutated => "mutated",
            Self::Untouched => "untouched",
            Self::Error => "error",
        }
    }
}

/// The answer to one review.
#[derive(Debug)]
pub struct Admission {
    /// The serialized response `AdmissionReview`.
    pub body: Vec<u8>,
    pub outcome: Outcome,
    /// Who was admitted, for the request's log span.
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub uid: String,
    /// The (namespace, service account) of a pod mutated without its service account's
    /// annotations because the watch had not delivered it (the response warns about it).
    pub service_account_unknown: Option<(String, String)>,
}

/// Decides one review. `service_accounts` answers what is known of the pod's service account
/// (asked only for pods that get the patch).
pub fn admit(
    body: &[u8],
    associations: &AssociationSet,
    service_accounts: &dyn Fn(&str, &str) -> ServiceAccountInfo,
    config: &MutationConfig,
) -> Result<Admission, ReviewError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(ReviewError::Malformed)?;
    let (api_version, kind) = (review.types.api_version.clone(), review.types.kind.clone());
    if kind != KIND || !API_VERSIONS.contains(&api_version.as_str()) {
        return Err(ReviewError::Unsupported { api_version, kind });
    }
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let mut admission = Admission {
        body: Vec::new(),
        outcome: Outcome::Untouched,
        namespace: request.namespace.clone(),
        service_account: None,
        uid: request.uid.clone(),
        service_account_unknown: None,
    };
    let mut response = Response {
        uid: &request.uid,
        allowed: true,
        patch: None,
        patch_type: None,
        warnings: None,
    };
    // Only pod creations are mutated; the webhook configuration asks for nothing else, but a
    // wider one must not make the webhook rewrite running pods.
    if request.operation == Operation::Create
        && request.kind.kind == "Pod"
        && request.sub_resource.is_none()
    {
        match request
            .object
            .as_ref()
            .ok_or(crate::pod::PodError::NoObject)
            .and_then(PodView::new)
        {
            Ok(pod) => {
                admission.service_account = pod.service_account.map(str::to_owned);
                let namespace = request
                    .namespace
                    .as_deref()
                    .or_else(|| request.object.as_ref()?.metadata.namespace.as_deref());
                if let (Some(ns), Some(sa)) = (namespace, pod.service_account)
                    && associations.contains(ns, sa)
                {
                    let info = service_accounts(ns, sa);
                    if info == ServiceAccountInfo::Unknown {
                        admission.service_account_unknown = Some((ns.to_owned(), sa.to_owned()));
                        response.warnings = Some(vec![format!(
                            "podid webhook: service account {ns}/{sa} is not known to the webhook yet; its eks.amazonaws.com/ annotations were not applied"
                        )]);
                    }
                    let settings = settings(&pod, info.annotations(), config);
                    let mutation = pod_identity_patch(&pod, &settings);
                    let patch = serde_json::to_vec(&mutation.patch).map_err(ReviewError::Encode)?;
                    tracing::debug!(
                        changed = mutation.changed,
                        token_expiration = settings.token_expiration,
                        "pod identity patch"
                    );
                    response.patch = Some(STANDARD.encode(patch));
                    response.patch_type = Some("JSONPatch");
                    admission.outcome = Outcome::Mutated;
                }
            }
            Err(e) => {
                response.warnings = Some(vec![format!("podid webhook: pod not mutated: {e}")]);
                admission.outcome = Outcome::Error;
            }
        }
    }
    admission.body = serde_json::to_vec(&ReviewOut {
        api_version: &api_version,
        kind: &kind,
        response,
    })
    .map_err(ReviewError::Encode)?;
    Ok(admission)
}

/// The per-pod settings: defaults, then service-account annotations, then pod annotations.
fn settings<'a>(
    pod: &PodView<'_>,
    service_account_annotations: Option<&BTreeMap<String, String>>,
    config: &'a MutationConfig,
) -> PatchSettings<'a> {
    let regional_sts = service_account_annotations
        .and_then(|a| a.get(STS_REGIONAL_ANNOTATION))
        .and_then(|v| parse_go_bool(v))
        .unwrap_or(config.regional_sts);
    PatchSettings {
        full_uri: &config.full_uri,
        region: config.aws_default_region.as_deref(),
        regional_sts,
        token_expiration: token_expiration(
            pod.annotations,
            service_account_annotations,
            config.token_expiration,
            config.jitter,
        ),
    }
}

/// Go's `strconv.ParseBool`, which the reference uses for the STS annotation.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The response `AdmissionReview`, members in the order the Go types write them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Response<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}
