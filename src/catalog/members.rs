//! One service's instances in the catalog, sorted by key.
//!
//! A million instances make a million of these entries, so each is kept
//! as small as the page needs: the registration it shares with the
//! registry, the registry's index and when it was first seen, 32 bytes.
//! The key is not stored beside it: it is the registration's own instance
//! id (or a SkyDNS entry's store key), which the set sorts by. An
//! `imbl::OrdMap<String, Entry>` held a copy of the key (a block of its
//! own) and a 64-byte slot per instance: 124 bytes an instance at a
//! million, against 58 here (`bench/heap.rs`).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use imbl::OrdSet;

use super::Registration;
use crate::registry::SourceId;

/// One instance in effect.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The registration.
    pub registration: Registration,
    /// The registry it is answered from.
    pub registry: SourceId,
    /// When disco first saw it, in nanoseconds since the Unix epoch: half
    /// the size of a `SystemTime`.
    first_seen: u64,
}

impl Entry {
    /// An entry first seen at `first_seen`.
    pub fn new(registration: Registration, registry: SourceId, first_seen: SystemTime) -> Self {
        let since_epoch = first_seen.duration_since(SystemTime::UNIX_EPOCH);
        // A clock before 1970 or past 2554 is no one's; the epoch will do.
        let nanos = since_epoch.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        Entry {
            registration,
            registry,
            first_seen: nanos,
        }
    }

    /// When disco first saw it (since this process started).
    pub fn first_seen(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.first_seen)
    }

    /// Its tags (a SkyDNS entry has none).
    pub fn tags(&self) -> &[Arc<str>] {
        match &self.registration {
            Registration::Instance(instance) => &instance.tags,
            Registration::SkyDns(_) => &[],
        }
    }

    /// Its instance id: the registration's, or a SkyDNS entry's first label.
    pub fn id(&self) -> &str {
        match &self.registration {
            Registration::Instance(instance) => instance.id.as_str(),
            Registration::SkyDns(entry) => entry.name.split('.').next().unwrap_or_default(),
        }
    }

    /// Its key among its service's instances: the instance id, or for a
    /// SkyDNS entry its store key (two keys may name one id:
    /// `/skydns/internal/disco/web` and `…/web/`). A store key starts with
    /// `/`, which no instance id holds, so the two never meet.
    pub fn key(&self) -> &str {
        match &self.registration {
            Registration::Instance(instance) => instance.id.as_str(),
            Registration::SkyDns(entry) => &entry.key,
        }
    }
}

/// An entry as the set sees it: its key.
#[derive(Debug, Clone)]
struct ByKey(Entry);

impl Borrow<str> for ByKey {
    fn borrow(&self) -> &str {
        self.0.key()
    }
}

// Ordered and compared exactly as the borrowed key, as `Borrow` requires.
impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.key().cmp(other.0.key())
    }
}

impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for ByKey {}

/// A service's instances, sorted by [`Entry::key`]. A persistent set: a
/// copy is a pointer, and a change to one copies the path to what it
/// changes.
#[derive(Debug, Clone, Default)]
pub struct Members(OrdSet<ByKey>);

impl Members {
    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.0.get(key).map(|e| &e.0)
    }

    /// Stores `entry` at its key, giving the one it replaces.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.0.insert(ByKey(entry)).map(|e| e.0)
    }

    /// Takes out the entry at `key`.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        self.0.remove(key).map(|e| e.0)
    }

    /// Every entry, by key.
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.0.iter().map(|e| &e.0)
    }

    /// The entries with keys within `range`, with their keys, by key.
    pub fn range<'a>(
        &'a self,
        range: (Bound<&str>, Bound<&str>),
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        self.0.range::<_, str>(range).map(|e| (e.0.key(), &e.0))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_native, parse_skydns};

    #[test]
    fn entries_are_found_and_sorted_by_id_or_store_key_and_keep_first_seen() {
        let native = |id: &str| {
            let instance = parse_native("web", id, br#"{"address":"10.0.0.1"}"#).unwrap();
            Registration::Instance(Arc::new(instance))
        };
        let sky = parse_skydns(
            "/skydns",
            "/skydns/internal/disco/web/x1",
            br#"{"host":"10.0.0.2"}"#,
            None,
        )
        .unwrap();
        let seen = SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        let mut members = Members::default();
        assert!(
            members
                .insert(Entry::new(native("web-2"), 0, seen))
                .is_none()
        );
        members.insert(Entry::new(native("web-1"), 1, seen));
        members.insert(Entry::new(Registration::SkyDns(Arc::new(sky)), 0, seen));
        let replaced = members.insert(Entry::new(native("web-1"), 0, SystemTime::now()));
        assert_eq!(replaced.map(|e| e.registry), Some(1));
        let keys: Vec<&str> = members.values().map(Entry::key).collect();
        assert_eq!(keys, ["/skydns/internal/disco/web/x1", "web-1", "web-2"]);
        assert_eq!(members.get("web-2").unwrap().first_seen(), seen);
        assert_eq!(
            members.get("/skydns/internal/disco/web/x1").unwrap().id(),
            "x1"
        );
        let after: Vec<&str> = (members.range((Bound::Excluded("web-1"), Bound::Unbounded)))
            .map(|(key, _)| key)
            .collect();
        assert_eq!(after, ["web-2"]);
        assert!(members.remove("web-2").is_some());
        assert!(members.remove("web-2").is_none());
        assert_eq!(members.len(), 2);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }
}
