//! Interned names: the namespace, service account and association id that every pod of one
//! association shares, held once however many of its pods are cached (an `Arc<str>` each per
//! entry otherwise: ~150 bytes a pod, issue 7).
//!
//! A name is dropped by [`Names::purge`] once no entry holds it; the refresh scan calls it every
//! tick, so the set never outgrows the names of the cached entries by more than one tick's worth.

use std::collections::HashSet;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// The set of names in use.
#[derive(Debug, Default)]
pub(crate) struct Names {
    set: Mutex<HashSet<Arc<str>, RandomState>>,
}

impl Names {
    /// The shared copy of `name`, added if new.
    pub(crate) fn intern(&self, name: &str) -> Arc<str> {
        let mut set = self.set.lock();
        if let Some(found) = set.get(name) {
            return Arc::clone(found);
        }
        let name: Arc<str> = Arc::from(name);
        set.insert(Arc::clone(&name));
        name
    }

    /// Forget the names no one but this set holds.
    pub(crate) fn purge(&self) {
        self.set.lock().retain(|name| Arc::strong_count(name) > 1);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_share_one_allocation_until_unused() {
        let names = Names::default();
        let a = names.intern("default");
        let b = names.intern("default");
        assert!(Arc::ptr_eq(&a, &b));
        let other = names.intern("kube-system");
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(names.len(), 2);
        drop(other);
        names.purge();
        assert_eq!(names.len(), 1, "unused names are dropped");
        drop((a, b));
        names.purge();
        assert_eq!(names.len(), 0);
    }
}
