//! One service's instances in the catalog, sorted by key.
//!
//! A million instances make a million of these entries, so each is kept
//! as small as the page needs: the registration it shares with the
//! registry, and the registry's index with when it was first seen in one
//! word: 24 bytes.
//! The key is not stored beside it: it is the registration's own instance
//! id (or a SkyDNS entry's store key), which the entries are sorted by.
//! An `imbl::OrdMap<String, Entry>` per service held a copy of the key (a
//! block of its own) and a 64-byte slot per instance in leaves of 16
//! slots: 124 bytes an instance at a million with ten a service, against
//! 38 here (`bench/heap.rs`).

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
    /// The registry it is answered from, in the top `REGISTRY_BITS`, and
    /// when disco first saw it, in milliseconds since the Unix epoch (what
    /// the JSON API shows), in the rest. One word rather than two makes an
    /// entry 24 bytes, and a service of ten instances one 256-byte block
    /// rather than a 384-byte one: 12 MiB at a million instances.
    seen: u64,
}

/// Bits of [`Entry::seen`] that hold the registry's index: 65,536
/// registries ([`MAX_REGISTRIES`]), and 48 bits of milliseconds, 8,900
/// years.
const REGISTRY_BITS: u32 = 16;
const MILLIS: u64 = u64::MAX >> REGISTRY_BITS;

/// The most registries a catalog tells apart (the configuration refuses
/// more).
pub const MAX_REGISTRIES: usize = 1 << REGISTRY_BITS;

impl Entry {
    /// An entry first seen at `first_seen`.
    pub fn new(registration: Registration, registry: SourceId, first_seen: SystemTime) -> Self {
        let since_epoch = first_seen.duration_since(SystemTime::UNIX_EPOCH);
        // A clock before 1970 or past the year 10,000 is no one's; the
        // epoch will do.
        let millis = since_epoch.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        let millis = if millis > MILLIS { 0 } else { millis };
        debug_assert!(
            registry < MAX_REGISTRIES,
            "the configuration caps registries"
        );
        let registry = (registry as u64).min(MAX_REGISTRIES as u64 - 1);
        Entry {
            registration,
            seen: registry << (64 - REGISTRY_BITS) | millis,
        }
    }

    /// The registry it is answered from.
    pub fn registry(&self) -> SourceId {
        (self.seen >> (64 - REGISTRY_BITS)) as SourceId
    }

    /// When disco first saw it (since this process started), to the
    /// millisecond.
    pub fn first_seen(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.seen & MILLIS)
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

/// Services with at most this many instances keep them in one block
/// sized to them; a service that grows past it moves to a B-tree, and
/// moves back once it has shrunk to half.
const FEW: usize = 32;

/// A service's instances, sorted by [`Entry::key`]. Persistent: a copy is
/// a pointer, and a change to one copies only what it changes, so the
/// view published after each batch costs what the batch changed.
#[derive(Debug, Clone, Default)]
pub struct Members(Repr);

/// Most services have a few instances, for which a B-tree leaf (room for
/// 16 entries, 544 bytes) is mostly empty: they are one exactly sized
/// block, copied whole on a change, which costs little at this size.
#[derive(Debug, Clone)]
enum Repr {
    Few(Arc<[ByKey]>),
    Many(OrdSet<ByKey>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Few(Arc::new([]))
    }
}

impl Members {
    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.0 {
            Repr::Few(few) => position(few, key).ok().map(|at| &few[at].0),
            Repr::Many(many) => many.get(key).map(|e| &e.0),
        }
    }

    /// Stores `entry` at its key, giving the one it replaces.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let mut staged = std::mem::take(self).stage();
        let replaced = staged.insert(entry);
        *self = staged.into_members();
        replaced
    }

    /// Takes out the entry at `key`.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let mut staged = std::mem::take(self).stage();
        let removed = staged.remove(key);
        *self = staged.into_members();
        removed
    }

    /// These instances to change in place, several changes at a time.
    pub fn stage(self) -> Staged {
        match self.0 {
            Repr::Few(few) => Staged(Open::Few(few.to_vec())),
            Repr::Many(many) => Staged(Open::Many(many)),
        }
    }

    /// Every entry, by key.
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.range((Bound::Unbounded, Bound::Unbounded))
            .map(|(_, entry)| entry)
    }

    /// The entries with keys within `range`, with their keys, by key.
    pub fn range<'a>(
        &'a self,
        range: (Bound<&str>, Bound<&str>),
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        // One of the two is empty.
        let (few, many) = match &self.0 {
            Repr::Few(few) => (within(few, range), None),
            Repr::Many(many) => (&[][..], Some(many.range::<_, str>(range))),
        };
        (few.iter().chain(many.into_iter().flatten())).map(|e| (e.0.key(), &e.0))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Few(few) => few.len(),
            Repr::Many(many) => many.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A service's instances while a batch changes them: taken out of their
/// [`Members`] once, changed in place, put back once
/// ([`Staged::into_members`]). A block copied whole on each of its
/// service's changes was a quarter of the catalog's share of a cold start
/// at a million instances, ten to a service.
#[derive(Debug)]
pub struct Staged(Open);

/// [`Repr`] open for changes: a block becomes a vector.
#[derive(Debug)]
enum Open {
    Few(Vec<ByKey>),
    Many(OrdSet<ByKey>),
}

impl Staged {
    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.0 {
            Open::Few(few) => position(few, key).ok().map(|at| &few[at].0),
            Open::Many(many) => many.get(key).map(|e| &e.0),
        }
    }

    /// Stores `entry` at its key, giving the one it replaces.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let entry = ByKey(entry);
        match &mut self.0 {
            Open::Many(many) => many.insert(entry).map(|e| e.0),
            Open::Few(few) => match position(few, entry.0.key()) {
                Ok(at) => Some(std::mem::replace(&mut few[at], entry).0),
                Err(at) => {
                    few.insert(at, entry);
                    None
                }
            },
        }
    }

    /// Takes out the entry at `key`.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        match &mut self.0 {
            Open::Few(few) => {
                let at = position(few, key).ok()?;
                Some(few.remove(at).0)
            }
            Open::Many(many) => many.remove(key).map(|e| e.0),
        }
    }

    /// Back to [`Members`]: a block when they are few, a B-tree past 32
    /// (`FEW`), and a block again once a B-tree has shrunk to half that.
    pub fn into_members(self) -> Members {
        Members(match self.0 {
            Open::Few(few) if few.len() > FEW => Repr::Many(few.into_iter().collect()),
            Open::Few(few) => Repr::Few(few.into()),
            Open::Many(many) if many.len() <= FEW / 2 => Repr::Few(many.into_iter().collect()),
            Open::Many(many) => Repr::Many(many),
        })
    }
}

/// Where `key` is among sorted `entries`, or would go.
fn position(entries: &[ByKey], key: &str) -> Result<usize, usize> {
    entries.binary_search_by(|e| e.0.key().cmp(key))
}

/// The part of sorted `entries` with keys within `range`.
fn within<'a>(entries: &'a [ByKey], (from, to): (Bound<&str>, Bound<&str>)) -> &'a [ByKey] {
    let below = |key: &str| entries.partition_point(|e| e.0.key() < key);
    let up_to = |key: &str| entries.partition_point(|e| e.0.key() <= key);
    let start = match from {
        Bound::Included(key) => below(key),
        Bound::Excluded(key) => up_to(key),
        Bound::Unbounded => 0,
    };
    let end = match to {
        Bound::Included(key) => up_to(key),
        Bound::Excluded(key) => below(key),
        Bound::Unbounded => entries.len(),
    };
    &entries[start..end.max(start)]
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
        // Kept to the millisecond.
        let seen = SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        let seen_ms = SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_000_000);
        let mut members = Members::default();
        assert!(
            members
                .insert(Entry::new(native("web-2"), 0, seen))
                .is_none()
        );
        members.insert(Entry::new(native("web-1"), MAX_REGISTRIES - 1, seen));
        members.insert(Entry::new(Registration::SkyDns(Arc::new(sky)), 0, seen));
        let replaced = members.insert(Entry::new(native("web-1"), 0, SystemTime::now()));
        assert_eq!(replaced.map(|e| e.registry()), Some(MAX_REGISTRIES - 1));
        let keys: Vec<&str> = members.values().map(Entry::key).collect();
        assert_eq!(keys, ["/skydns/internal/disco/web/x1", "web-1", "web-2"]);
        let web_2 = members.get("web-2").unwrap();
        assert_eq!((web_2.first_seen(), web_2.registry()), (seen_ms, 0));
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
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn a_service_growing_past_a_few_and_back_keeps_every_entry_in_order_and_copies_apart() {
        let entry = |n: usize| {
            let instance =
                parse_native("web", &format!("web-{n:03}"), br#"{"address":"10.0.0.1"}"#);
            let registration = Registration::Instance(Arc::new(instance.unwrap()));
            Entry::new(registration, 0, SystemTime::now())
        };
        let ids = |members: &Members| {
            members
                .values()
                .map(|e| e.id().to_owned())
                .collect::<Vec<_>>()
        };
        let mut members = Members::default();
        let mut published = Vec::new();
        // In an order that inserts at the front, the back and between.
        for n in (0..3 * FEW).rev().step_by(2).chain((0..3 * FEW).step_by(2)) {
            assert!(members.insert(entry(n)).is_none());
            published.push(members.clone());
        }
        let all: Vec<String> = (0..3 * FEW).map(|n| format!("web-{n:03}")).collect();
        assert_eq!(ids(&members), all);
        assert!(matches!(members.0, Repr::Many(_)));
        assert_eq!(
            ids(&published[0]),
            [format!("web-{:03}", 3 * FEW - 1)],
            "a copy is apart"
        );
        let from: Vec<&str> = members
            .range((Bound::Included("web-010"), Bound::Excluded("web-013")))
            .map(|(key, _)| key)
            .collect();
        assert_eq!(from, ["web-010", "web-011", "web-012"]);
        for n in 0..3 * FEW - 2 {
            assert_eq!(
                members.remove(&format!("web-{n:03}")).unwrap().id(),
                format!("web-{n:03}")
            );
        }
        assert!(matches!(members.0, Repr::Few(_)));
        assert_eq!(ids(&members), all[3 * FEW - 2..]);
        let replaced = members.insert(entry(3 * FEW - 1)).unwrap();
        assert_eq!(replaced.id(), format!("web-{:03}", 3 * FEW - 1));
        let from: Vec<&str> = members
            .range((Bound::Excluded("web-094"), Bound::Included("web-095")))
            .map(|(key, _)| key)
            .collect();
        assert_eq!(from, ["web-095"]);
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn changes_staged_together_come_out_as_made_one_by_one() {
        let entry = |n: usize| {
            let instance =
                parse_native("web", &format!("web-{n:03}"), br#"{"address":"10.0.0.1"}"#);
            let registration = Registration::Instance(Arc::new(instance.unwrap()));
            Entry::new(registration, n % 2, SystemTime::now())
        };
        let ids = |members: &Members| -> Vec<String> {
            members.values().map(|e| e.id().to_owned()).collect()
        };
        // Past a few and back, in one staging each way.
        let mut one_by_one = Members::default();
        let mut staged = Members::default().stage();
        for n in (0..2 * FEW).rev() {
            assert!(one_by_one.insert(entry(n)).is_none());
            assert!(staged.insert(entry(n)).is_none());
        }
        assert_eq!(staged.get("web-005").unwrap().registry(), 1);
        let published = staged.into_members();
        assert!(matches!(published.0, Repr::Many(_)));
        assert_eq!(ids(&published), ids(&one_by_one));
        let mut staged = published.clone().stage();
        for n in 0..2 * FEW - 3 {
            let id = format!("web-{n:03}");
            assert_eq!(one_by_one.remove(&id).unwrap().id(), id);
            assert_eq!(staged.remove(&id).unwrap().id(), id);
        }
        let shrunk = staged.into_members();
        assert!(matches!(shrunk.0, Repr::Few(_)));
        assert_eq!(ids(&shrunk), ids(&one_by_one));
        assert_eq!(
            published.len(),
            2 * FEW,
            "the copy published before is apart"
        );
    }
}
