//! The golden corpus: each `tests/golden/*.json` holds a review, the associations and settings,
//! and the exact expected answer (the patch decoded from base64, byte for byte in order).
//! Every patched pod must also apply cleanly and still deserialize as a `k8s-openapi` Pod.
//!
//! `PODID_UPDATE_GOLDEN=1 cargo test -p podid-webhook --test golden` rewrites the `expect`
//! members from the current output, for review in the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use podid_webhook::{
    AssociationSet, FULL_URI_IPV4, Jitter, MutationConfig, Outcome, ServiceAccountInfo, admit,
};
use serde_json::{Map, Value, json};

/// The jitter value the corpus is written with.
const GOLDEN_JITTER: i64 = 80_000;

#[test]
fn golden_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("PODID_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus went missing");
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut case: Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let actual = run(&case);
        if update {
            case.insert("expect".into(), actual);
            let text = serde_json::to_string_pretty(&case).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let expected = case
            .get("expect")
            .unwrap_or_else(|| panic!("{name}: no expect"));
        // Compare serialized text, not values: member and patch order are part of the contract.
        let (want, got) = (
            serde_json::to_string_pretty(expected).unwrap(),
            serde_json::to_string_pretty(&actual).unwrap(),
        );
        if want != got {
            failures.push(format!("{name}:\n--- expected\n{want}\n--- actual\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs one case and returns what it produced: `{"error": text}` for a refused review, else the
/// response review with its patch decoded, and the outcome.
fn run(case: &Map<String, Value>) -> Value {
    let config = config(case.get("config"));
    let set = AssociationSet::new(case["associations"].as_array().unwrap().iter().map(|p| {
        (
            p[0].as_str().unwrap().to_owned(),
            p[1].as_str().unwrap().to_owned(),
        )
    }));
    // `serviceAccountAnnotations` present: the watch knows the service account with these;
    // `"serviceAccountUnknown": true`: watched but not delivered; neither: no watch.
    let sa = match case.get("serviceAccountAnnotations") {
        Some(v) => ServiceAccountInfo::Known(serde_json::from_value(v.clone()).unwrap()),
        None if case.get("serviceAccountUnknown") == Some(&Value::Bool(true)) => {
            ServiceAccountInfo::Unknown
        }
        None => ServiceAccountInfo::NotWatched,
    };
    let asked = std::cell::RefCell::new(Vec::new());
    let lookup = |ns: &str, name: &str| {
        asked.borrow_mut().push(format!("{ns}/{name}"));
        sa.clone()
    };
    let body = serde_json::to_vec(&case["review"]).unwrap();
    let admission = match admit(&body, &set, &lookup, &config) {
        Ok(a) => a,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut response: Value = serde_json::from_slice(&admission.body).unwrap();
    if let Some(patch) = response["response"].get("patch").cloned() {
        let bytes = STANDARD.decode(patch.as_str().unwrap()).unwrap();
        let patch: Value = serde_json::from_slice(&bytes).unwrap();
        check_patched_pod(&case["review"]["request"]["object"], &patch);
        response["response"]["patch"] = patch;
    }
    let outcome = match admission.outcome {
        Outcome::Mutated => "mutated",
        Outcome::Untouched => "untouched",
        Outcome::Error => "error",
    };
    // The service account is looked up for mutated pods only, and by the pod's namespace.
    let asked = asked.into_inner();
    match admission.outcome {
        Outcome::Mutated => assert_eq!(asked.len(), 1, "{asked:?}"),
        _ => assert!(asked.is_empty(), "{asked:?}"),
    }
    assert_eq!(
        admission.service_account_unknown.is_some(),
        matches!(sa, ServiceAccountInfo::Unknown) && admission.outcome == Outcome::Mutated
    );
    json!({ "outcome": outcome, "review": response })
}

fn config(overrides: Option<&Value>) -> MutationConfig {
    let get = |k: &str| overrides.and_then(|o| o.get(k));
    MutationConfig {
        full_uri: get("fullUri")
            .and_then(Value::as_str)
            .unwrap_or(FULL_URI_IPV4)
            .to_owned(),
        aws_default_region: get("awsDefaultRegion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        regional_sts: get("regionalSts").and_then(Value::as_bool).unwrap_or(false),
        token_expiration: get("tokenExpiration")
            .and_then(Value::as_i64)
            .unwrap_or(86_400),
        jitter: Jitter::Fixed(GOLDEN_JITTER),
    }
}

/// The patch applies to the pod, and the result is still a valid `k8s-openapi` Pod in which
/// every non-skipped container mounts the token volume read-only.
fn check_patched_pod(pod: &Value, patch: &Value) {
    let mut patched = pod.clone();
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
    json_patch::patch(&mut patched, &ops).unwrap();
    let typed: Pod = serde_json::from_value(patched).unwrap();
    let spec = typed.spec.unwrap();
    let volume = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "eks-pod-identity-token")
        .unwrap();
    if let Some(projected) = volume.projected {
        let token = projected.sources.unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(token.audience.as_deref(), Some("pods.eks.amazonaws.com"));
        assert!(token.expiration_seconds.unwrap() >= 600);
    }
    assert_eq!(
        typed
            .metadata
            .labels
            .unwrap()
            .get("eks.amazonaws.com/pod-identity")
            .map(String::as_str),
        Some("enabled")
    );
}
