//! Response bodies in the members of botocore's EKS shapes.

use podid_model::{Association, Cluster};
use serde_json::{Map, Value, json};

/// Seconds since the epoch, the rest-json timestamp format botocore parses.
pub(crate) fn epoch_seconds(ms: i64) -> Value {
    // i64 milliseconds → f64 seconds is exact for any date within the next 285,000 years.
    #[allow(clippy::cast_precision_loss)]
    let secs = ms as f64 / 1000.0;
    json!(secs)
}

/// `PodIdentityAssociation`.
pub(crate) fn association(a: &Association) -> Value {
    let mut m = Map::new();
    m.insert("clusterName".into(), a.cluster_name.clone().into());
    m.insert("namespace".into(), a.namespace.clone().into());
    m.insert("serviceAccount".into(), a.service_account.clone().into());
    m.insert("roleArn".into(), a.role_arn.clone().into());
    m.insert("associationArn".into(), a.association_arn.clone().into());
    m.insert("associationId".into(), a.association_id.as_str().into());
    m.insert("tags".into(), json!(a.tags));
    m.insert("createdAt".into(), epoch_seconds(a.created_at_ms));
    m.insert("modifiedAt".into(), epoch_seconds(a.modified_at_ms));
    if let Some(owner) = &a.owner_arn {
        m.insert("ownerArn".into(), owner.clone().into());
    }
    m.insert("disableSessionTags".into(), a.disable_session_tags.into());
    if let Some(t) = &a.target_role_arn {
        m.insert("targetRoleArn".into(), t.clone().into());
    }
    if let Some(e) = &a.external_id {
        m.insert("externalId".into(), e.clone().into());
    }
    if let Some(p) = &a.policy {
        m.insert("policy".into(), p.clone().into());
    }
    Value::Object(m)
}

/// `PodIdentityAssociationSummary`.
pub(crate) fn association_summary(a: &Association) -> Value {
    let mut m = Map::new();
    m.insert("clusterName".into(), a.cluster_name.clone().into());
    m.insert("namespace".into(), a.namespace.clone().into());
    m.insert("serviceAccount".into(), a.service_account.clone().into());
    m.insert("associationArn".into(), a.association_arn.clone().into());
    m.insert("associationId".into(), a.association_id.as_str().into());
    if let Some(owner) = &a.owner_arn {
        m.insert("ownerArn".into(), owner.clone().into());
    }
    Value::Object(m)
}

/// `Cluster`, with the members a registered (not EKS-managed) cluster has.
pub(crate) fn cluster(c: &Cluster) -> Value {
    json!({
        "name": c.name,
        "arn": c.arn,
        "id": c.id,
        "createdAt": epoch_seconds(c.created_at_ms),
        "status": "ACTIVE",
        "identity": { "oidc": { "issuer": c.issuer } },
        "tags": c.tags,
    })
}
