//! The domain layer: what podid decides, independent of any wire format.
//!
//! Owns: who is calling ([`caller`]) and how access keys resolve to callers ([`credentials`]);
//! the IAM entity model and its in-memory index ([`iam`]); authorization by policy evaluation
//! ([`authz`]); the one path that turns a trusted request into a role session ([`assume`]),
//! behind the [`assume::Issuer`] interface; cluster and association writes ([`writes`]); token
//! verifiers per cluster ([`verifiers`]); the sealing key ring ([`keyring`]); which stored records
//! are secret and how they are sealed at rest ([`secrets`]); and the audit trail ([`audit`]). Imports only from `state` below it; never from `api`, `protocol` or `edge`.
//! Refusals are typed errors here; each protocol decides their wire shape.

pub(crate) mod assume;
pub(crate) mod audit;
pub(crate) mod authz;
pub(crate) mod caller;
pub(crate) mod credentials;
pub(crate) mod iam;
pub(crate) mod keyring;
pub(crate) mod secrets;
pub(crate) mod verifiers;
pub(crate) mod writes;
