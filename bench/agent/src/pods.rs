//! Synthetic pods: distinct pod UIDs in one namespace/service account, and their projected
//! tokens minted with the dev cluster's signing key (what the kubelet would write).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use podid_token::{DevSigner, MintRequest};

/// The issuer `podid dev` registers for cluster `dev`.
const DEV_ISSUER: &str = "https://podid.dev/clusters/dev";
/// The signing key's file name inside the dev data dir.
const SIGNING_KEY_FILE: &str = "dev-cluster-signing-key.pem";
/// One service-account UID for every token, as a real service account has.
const SA_UID: &str = "5a0c0a55-0000-4000-8000-00000000be0c";

/// Mints tokens for `namespace`/`service_account`.
pub(crate) struct Minter {
    signer: DevSigner,
    namespace: String,
    service_account: String,
    /// Distinguishes runs so each run's pods are new to a long-running agent.
    run_tag: u32,
}

impl Minter {
    pub(crate) fn load(
        data_dir: &Path,
        namespace: &str,
        service_account: &str,
    ) -> anyhow::Result<Self> {
        let path = data_dir.join(SIGNING_KEY_FILE);
        let signer =
            DevSigner::load(&path).with_context(|| format!("loading {}", path.display()))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos();
        Ok(Self {
            signer,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            run_tag: nanos,
        })
    }

    /// The UID of pod `index` of group `group` in this run (UUID-shaped, as Kubernetes makes).
    pub(crate) fn pod_uid(&self, group: u16, index: u64) -> String {
        format!("{:08x}-{group:04x}-4000-8000-{index:012x}", self.run_tag)
    }

    /// A token for pod `index` of `group`; `age_secs` back-dates `iat`/`nbf` (a rotated token is
    /// minted with a later `iat` than the one it replaces, so the two always differ).
    pub(crate) fn token(&self, group: u16, index: u64, age_secs: i64) -> anyhow::Result<String> {
        let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
        let mut req = MintRequest::new(
            DEV_ISSUER,
            &*self.namespace,
            &*self.service_account,
            now - age_secs,
        );
        req.service_account_uid = Some(SA_UID.to_owned());
        req = req.with_pod(
            format!("bench-{group}-{index}"),
            Some(self.pod_uid(group, index)),
        );
        req = req.with_node(
            "bench-node",
            Some("0de00000-0000-4000-8000-000000000001".to_owned()),
        );
        Ok(self.signer.mint(&req)?)
    }

    /// Tokens for pods `0..count` of `group`.
    pub(crate) fn tokens(
        &self,
        group: u16,
        count: u64,
        age_secs: i64,
    ) -> anyhow::Result<Vec<String>> {
        (0..count).map(|i| self.token(group, i, age_secs)).collect()
    }
}
