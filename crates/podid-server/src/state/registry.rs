//! The in-memory index of clusters and associations.
//!
//! Lookups by (cluster, namespace, service account) are two hash probes on borrowed `&str`s and never
//! touch the store; listings walk `BTreeMap`s keyed by association id, which makes keyset
//! pagination stable under concurrent writes. Fed only by [`super::follow`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use podid_model::{Association, AssociationId, Cluster};
use podid_store::{Event, KeyValue};

use super::follow::Index;
use super::keys;

type ById = BTreeMap<AssociationId, Arc<Association>>;

#[derive(Default)]
struct ClusterAssociations {
    by_id: ById,
    /// namespace → id → association, for namespace-filtered listings.
    by_namespace: HashMap<String, ById>,
    /// namespace → service account → association: the credential path's lookup.
    by_service_account: HashMap<String, HashMap<String, Arc<Association>>>,
    /// create `clientRequestToken` → association: SDKs send one with every create, so the
    /// idempotency check must not scan the cluster.
    by_create_token: HashMap<String, Arc<Association>>,
}

impl ClusterAssociations {
    fn insert(&mut self, a: Arc<Association>) {
        if let Some(old) = self.by_id.insert(a.association_id.clone(), a.clone()) {
            self.unlink(&old);
        }
        self.by_namespace
            .entry(a.namespace.clone())
            .or_default()
            .insert(a.association_id.clone(), a.clone());
        if let Some((token, _)) = &a.create_token {
            self.by_create_token.insert(token.clone(), a.clone());
        }
        self.by_service_account
            .entry(a.namespace.clone())
            .or_default()
            .insert(a.service_account.clone(), a);
    }

    fn remove(&mut self, id: &AssociationId) {
        if let Some(old) = self.by_id.remove(id) {
            self.unlink(&old);
        }
    }

    fn unlink(&mut self, old: &Association) {
        if let Some((token, _)) = &old.create_token
            && self
                .by_create_token
                .get(token)
                .is_some_and(|a| a.association_id == old.association_id)
        {
            self.by_create_token.remove(token);
        }
        if let Some(m) = self.by_namespace.get_mut(&old.namespace) {
            m.remove(&old.association_id);
            if m.is_empty() {
                self.by_namespace.remove(&old.namespace);
            }
        }
        if let Some(m) = self.by_service_account.get_mut(&old.namespace) {
            if m.get(&old.service_account)
                .is_some_and(|a| a.association_id == old.association_id)
            {
                m.remove(&old.service_account);
            }
            if m.is_empty() {
                self.by_service_account.remove(&old.namespace);
            }
        }
    }
}

/// Clusters and their associations, as of the last applied store revision.
#[derive(Default)]
pub(crate) struct Registry {
    clusters: RwLock<BTreeMap<String, Arc<Cluster>>>,
    associations: RwLock<HashMap<String, ClusterAssociations>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("clusters", &self.clusters.read().len())
            .finish()
    }
}

/// Filters of ListPodIdentityAssociations.
#[derive(Debug, Default)]
pub(crate) struct AssociationFilter<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) service_account: Option<&'a str>,
}

impl Registry {
    pub(crate) fn cluster(&self, name: &str) -> Option<Arc<Cluster>> {
        self.clusters.read().get(name).cloned()
    }

    /// Cluster names after `after`, at most `limit`.
    pub(crate) fn cluster_names(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        let clusters = self.clusters.read();
        let iter: Box<dyn Iterator<Item = &String>> = match after {
            Some(a) => Box::new(
                clusters
                    .range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(k, _)| k),
            ),
            None => Box::new(clusters.keys()),
        };
        iter.take(limit).cloned().collect()
    }

    pub(crate) fn association(
        &self,
        cluster: &str,
        id: &AssociationId,
    ) -> Option<Arc<Association>> {
        self.associations
            .read()
            .get(cluster)?
            .by_id
            .get(id)
            .cloned()
    }

    /// The association for a pod's service account: the credential path's lookup.
    pub(crate) fn lookup(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<Arc<Association>> {
        self.associations
            .read()
            .get(cluster)?
            .by_service_account
            .get(namespace)?
            .get(service_account)
            .cloned()
    }

    pub(crate) fn association_count(&self, cluster: &str) -> usize {
        self.associations
            .read()
            .get(cluster)
            .map_or(0, |c| c.by_id.len())
    }

    /// The association created with this client request token, if any.
    pub(crate) fn by_create_token(&self, cluster: &str, token: &str) -> Option<Arc<Association>> {
        self.associations
            .read()
            .get(cluster)?
            .by_create_token
            .get(token)
            .cloned()
    }

    /// One page of associations with ids greater than `after`, in id order.
    pub(crate) fn list(
        &self,
        cluster: &str,
        filter: &AssociationFilter<'_>,
        after: Option<&AssociationId>,
        limit: usize,
    ) -> (Vec<Arc<Association>>, bool) {
        let assocs = self.associations.read();
        let Some(c) = assocs.get(cluster) else {
            return (Vec::new(), false);
        };
        let source: Option<&ById> = match filter.namespace {
            Some(ns) => c.by_namespace.get(ns),
            None => Some(&c.by_id),
        };
        let Some(source) = source else {
            return (Vec::new(), false);
        };
        let range = match after {
            Some(a) => source.range((
                std::ops::Bound::Excluded(a.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => source.range(..),
        };
        let mut matching = range.map(|(_, a)| a).filter(|a| {
            filter
                .service_account
                .is_none_or(|sa| a.service_account == sa)
        });
        let page: Vec<_> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        (page, more)
    }
}

/// The clusters half of the registry, as a followed index.
pub(crate) struct ClusterIndex(pub(crate) Arc<Registry>);
/// The associations half of the registry, as a followed index.
pub(crate) struct AssociationIndex(pub(crate) Arc<Registry>);

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    match serde_json::from_slice(&kv.value) {
        Ok(v) => Some(v),
        Err(error) => {
            tracing::error!(key = %kv.key, %error, "skipping an unreadable stored record");
            None
        }
    }
}

impl Index for ClusterIndex {
    fn prefix(&self) -> &'static str {
        keys::CLUSTER_PREFIX
    }
    fn load(&self, kvs: &[KeyValue]) {
        let map = kvs
            .iter()
            .filter_map(decode::<Cluster>)
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect();
        *self.0.clusters.write() = map;
    }
    fn apply(&self, event: &Event) {
        match event {
            Event::Put(kv) => {
                if let Some(c) = decode::<Cluster>(kv) {
                    self.0.clusters.write().insert(c.name.clone(), Arc::new(c));
                }
            }
            Event::Delete { key, .. } => {
                if let Some(name) = key.strip_prefix(keys::CLUSTER_PREFIX) {
                    self.0.clusters.write().remove(name);
                }
            }
        }
    }
}

impl Index for AssociationIndex {
    fn prefix(&self) -> &'static str {
        keys::ASSOCIATION_PREFIX
    }
    fn load(&self, kvs: &[KeyValue]) {
        let mut map: HashMap<String, ClusterAssociations> = HashMap::new();
        for a in kvs.iter().filter_map(decode::<Association>) {
            map.entry(a.cluster_name.clone())
                .or_default()
                .insert(Arc::new(a));
        }
        *self.0.associations.write() = map;
    }
    fn apply(&self, event: &Event) {
        match event {
            Event::Put(kv) => {
                if let Some(a) = decode::<Association>(kv) {
                    let mut assocs = self.0.associations.write();
                    assocs
                        .entry(a.cluster_name.clone())
                        .or_default()
                        .insert(Arc::new(a));
                }
            }
            Event::Delete { key, .. } => {
                let Some((cluster, id)) = keys::parse_association_key(key) else {
                    return;
                };
                let mut assocs = self.0.associations.write();
                if let Some(c) = assocs.get_mut(cluster) {
                    c.remove(&id);
                    if c.by_id.is_empty() {
                        assocs.remove(cluster);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podid_model::{AssociationSpec, Scope, Tags};

    fn assoc(sa: &str, token: Option<&str>) -> Arc<Association> {
        let spec = AssociationSpec::validate(
            "arn:aws:iam::000000000000:role/r",
            None,
            false,
            None,
            "000000000000",
        )
        .unwrap();
        let scope = Scope {
            region: "us-east-1",
            account_id: "000000000000",
        };
        let mut a = Association::new(scope, "c", "ns", sa, spec, Tags::new(), 1).unwrap();
        a.create_token = token.map(|t| (t.to_owned(), "print".to_owned()));
        Arc::new(a)
    }

    #[test]
    fn create_tokens_and_service_accounts_are_indexed_and_unlinked() {
        let mut c = ClusterAssociations::default();
        let a = assoc("sa", Some("tok"));
        c.insert(a.clone());
        c.insert(assoc("other", None));
        assert_eq!(
            c.by_create_token
                .get("tok")
                .map(|x| x.association_id.clone()),
            Some(a.association_id.clone())
        );
        assert!(c.by_service_account["ns"].contains_key("sa"));
        c.remove(&a.association_id);
        assert!(c.by_create_token.is_empty());
        assert!(!c.by_service_account["ns"].contains_key("sa"));
        assert_eq!(c.by_namespace["ns"].len(), 1);
    }
}
