//! Size caps every backend enforces on a [`Txn`](crate::Txn), before it reaches storage.
//!
//! They match etcd's defaults so that a workload which runs on SQLite also runs on etcd.

use crate::{Error, Op, Result, Txn};

/// etcd's `--max-txn-ops` default; a transaction beyond it would fail only on the etcd backend.
pub const MAX_TXN_OPS: usize = 128;
/// Same cap for compares (etcd applies `--max-txn-ops` to them as well).
pub const MAX_TXN_COMPARES: usize = 128;
/// etcd refuses requests over 1.5 MiB (`--max-request-bytes`); 1 MiB per value leaves headroom
/// for the key and framing. podid's records are a few KiB.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Keys are short hierarchical names (`assoc/<cluster>/<id>`); a long one is a caller bug.
pub const MAX_KEY_BYTES: usize = 4096;

/// Refuse a transaction that breaks a cap.
pub(crate) fn check_txn(txn: &Txn) -> Result<()> {
    if txn.ops.len() > MAX_TXN_OPS {
        return Err(Error::TooLarge {
            what: "transaction ops",
            max: MAX_TXN_OPS,
        });
    }
    if txn.compares.len() > MAX_TXN_COMPARES {
        return Err(Error::TooLarge {
            what: "transaction compares",
            max: MAX_TXN_COMPARES,
        });
    }
    let compare_keys = txn.compares.iter().map(|c| match c {
        crate::Compare::Absent(k)
        | crate::Compare::Present(k)
        | crate::Compare::ModRevision(k, _) => k,
    });
    let op_keys = txn.ops.iter().map(|op| match op {
        Op::Put { key, .. } | Op::Delete { key } => key,
    });
    if compare_keys.chain(op_keys).any(|k| k.len() > MAX_KEY_BYTES) {
        return Err(Error::TooLarge {
            what: "key",
            max: MAX_KEY_BYTES,
        });
    }
    let too_big = |op: &Op| matches!(op, Op::Put { value, .. } if value.len() > MAX_VALUE_BYTES);
    if txn.ops.iter().any(too_big) {
        return Err(Error::TooLarge {
            what: "value",
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}
