//! The local IAM entity model: stored records (roles, users, customer managed policies, access
//! keys), the bundled AWS managed-policy catalog, the in-memory index the credential and
//! authorization paths read, policy simulation, and the compare-and-swap write helper the IAM
//! API edits through.

pub(crate) mod catalog;
pub(crate) mod index;
pub(crate) mod records;
pub(crate) mod simulation;
pub(crate) mod store;

pub(crate) use index::{Iam, IamIndex, NamedPolicy, RoleView};
