//! Remembers the content hash of every watched ConfigMap or Secret (never the
//! data) and turns watch events into changes.
//!
//! A watch starts with a full listing (`init` … `init_done`). The first listing
//! only records hashes: nothing changed while we were not looking, as far as
//! we can know. A later re-listing (after the watch fell behind) compares with
//! what was recorded: a different hash is an update, an unknown object a
//! creation, and a recorded object missing from the listing a deletion.

use std::collections::{HashMap, HashSet};

use crate::hash::ContentHash;

/// Namespace and name.
pub type Key = (String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

/// What is kept per object: its hash and the two annotations that matter when
/// it is gone (`ignore`, `match`). About 100 bytes with the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub hash: ContentHash,
    pub ignored: bool,
    pub matched: bool,
}

#[derive(Debug, Default)]
pub struct Tracker {
    known: HashMap<Key, Entry>,
    /// Keys seen during a listing in progress.
    listing: Option<HashSet<Key>>,
    listed_once: bool,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.known.get(key)
    }

    /// A listing starts.
    pub fn init(&mut self) {
        self.listing = Some(HashSet::new());
    }

    /// An object of the listing.
    pub fn init_apply(&mut self, key: Key, entry: Entry) -> Option<Change> {
        if let Some(seen) = self.listing.as_mut() {
            seen.insert(key.clone());
        }
        let first = !self.listed_once;
        match self.known.insert(key, entry) {
            _ if first => None,
            Some(old) if old.hash != entry.hash => Some(Change::Updated),
            Some(_) => None,
            None => Some(Change::Created),
        }
    }

    /// The listing is complete: what was known and not listed is gone.
    pub fn init_done(&mut self) -> Vec<(Key, Entry)> {
        let seen = self.listing.take().unwrap_or_default();
        let first = !self.listed_once;
        self.listed_once = true;
        if first {
            return Vec::new();
        }
        let gone: Vec<Key> = self
            .known
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|k| self.known.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// An object was added or modified while watching.
    pub fn apply(&mut self, key: Key, entry: Entry) -> Option<Change> {
        match self.known.insert(key, entry) {
            Some(old) if old.hash != entry.hash => Some(Change::Updated),
            Some(_) => None,
            None => Some(Change::Created),
        }
    }

    /// An object was deleted while watching.
    pub fn delete(&mut self, key: &Key) -> Option<Entry> {
        self.known.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> Key {
        ("ns".to_string(), n.to_string())
    }

    fn entry(b: u8) -> Entry {
        Entry {
            hash: [b; 20],
            ignored: false,
            matched: false,
        }
    }

    #[test]
    fn first_listing_only_records() {
        let mut t = Tracker::new();
        t.init();
        assert_eq!(t.init_apply(key("a"), entry(1)), None);
        assert_eq!(t.init_apply(key("b"), entry(2)), None);
        assert!(t.init_done().is_empty());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn watch_events_report_real_changes_only() {
        let mut t = Tracker::new();
        t.init();
        t.init_apply(key("a"), entry(1));
        t.init_done();
        assert_eq!(
            t.apply(key("a"), entry(1)),
            None,
            "same data, e.g. a re-apply or a label change"
        );
        assert_eq!(t.apply(key("a"), entry(2)), Some(Change::Updated));
        assert_eq!(t.apply(key("new"), entry(3)), Some(Change::Created));
        assert_eq!(t.delete(&key("a")), Some(entry(2)));
        assert_eq!(t.delete(&key("a")), None);
    }

    #[test]
    fn relisting_finds_what_changed_in_the_gap() {
        let mut t = Tracker::new();
        t.init();
        t.init_apply(key("same"), entry(1));
        t.init_apply(key("changed"), entry(1));
        t.init_apply(key("deleted"), entry(1));
        t.init_done();

        t.init();
        assert_eq!(t.init_apply(key("same"), entry(1)), None);
        assert_eq!(
            t.init_apply(key("changed"), entry(9)),
            Some(Change::Updated)
        );
        assert_eq!(
            t.init_apply(key("created"), entry(5)),
            Some(Change::Created)
        );
        let gone = t.init_done();
        assert_eq!(gone, vec![(key("deleted"), entry(1))]);
        assert_eq!(t.len(), 3);
    }
}
