//! Values shared by the reconciles that use them at the same time, and by no one after.
//!
//! HelmReleases of one chart (twenty podinfos, a dozen app-templates, three traefiks) each
//! loaded their own copy of the same artifact, and each copy lived as long as its release's
//! wait (the pending revision holds the chart's files for its record). With this map, a chart
//! loaded while another reconcile still holds it is that reconcile's copy: only weak
//! references are kept, so nothing stays loaded once its last user is done, and an idle
//! controller holds no chart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Live values by key (for charts: the artifact's URL, revision and digest).
pub struct Shared<T> {
    live: Mutex<HashMap<String, Weak<T>>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Shared<T> {
    /// The value of `key` if a reconcile still holds it.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.lock().get(key).and_then(Weak::upgrade)
    }

    /// Shares `value` as `key`'s; when another reconcile shared one meanwhile (both loaded it at
    /// once), that one is returned and `value` dropped. Entries whose values are gone are
    /// forgotten here.
    pub fn share(&self, key: String, value: T) -> Arc<T> {
        let mut live = self.lock();
        if let Some(v) = live.get(&key).and_then(Weak::upgrade) {
            return v;
        }
        live.retain(|_, w| w.strong_count() > 0);
        let v = Arc::new(value);
        live.insert(key, Arc::downgrade(&v));
        v
    }

    /// How many keys are remembered (live or not yet forgotten).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<T>>> {
        // The map holds weak references only: one a panicking thread left half written is
        // still a valid map.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use std::sync::Arc;

    #[test]
    fn a_value_is_shared_while_held_and_forgotten_after() {
        let shared = Shared::default();
        assert!(shared.get("a").is_none());
        let first = shared.share("a".into(), vec![1u8; 4]);
        let again = shared.get("a").expect("held by `first`");
        assert!(Arc::ptr_eq(&first, &again));
        // Loaded twice at once: the second load gets the first one's value.
        let raced = shared.share("a".into(), vec![2u8; 4]);
        assert!(Arc::ptr_eq(&first, &raced));
        assert_eq!(*raced, [1, 1, 1, 1]);
        drop((first, again, raced));
        assert!(shared.get("a").is_none(), "nobody holds it: not kept");
        // A dead entry is forgotten when another is shared.
        let b = shared.share("b".into(), vec![3u8]);
        assert_eq!(shared.len(), 1);
        // A new value for a key whose old one is gone.
        let a = shared.share("a".into(), vec![4u8]);
        assert_eq!(*a, [4]);
        assert_eq!(*shared.get("b").unwrap(), [3]);
        drop((a, b));
        assert!(shared.get("a").is_none() && shared.get("b").is_none());
    }
}
