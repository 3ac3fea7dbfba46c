//! A persistent map for many small entries: the reverse index's, which
//! have an entry per address, as many as there are instances.
//!
//! imbl's maps would do, but spend 50 to 200 bytes of node on every entry
//! (their nodes are fixed-size arrays, and sorted inserts leave B-tree leaves
//! half full). Here entries sit packed in sorted shards, a key's shard is
//! picked by its hash, and the shards are held in groups: an update copies
//! the table of groups, each group it touches and each shard it touches,
//! once. A snapshot clone shares everything, and a small change to a big
//! map stays small.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Groups per map, and shards per group: 16,384 shards in all. At a
/// million entries a shard holds about 60 (some 2 KiB to copy when one of
/// them changes), and a batch copies the table of groups once and the
/// group of each shard it changes, where one flat table of 1,024 shards
/// copied 8 KiB of pointers and a shard of about 1,000 entries per change.
/// Copying a pointer to a shard is a reference count taken, and dropped
/// with the snapshot, each a write that at a million mostly misses the
/// cache: with 128 groups of 128, a batch of 25 moved instances (50
/// addresses, most in groups of their own) took and dropped some 6,000;
/// with 512 of 32, about 2,000 (`bench/heap.rs`: 0.61 → 0.54 ms a batch,
/// with the change to `SnapshotBuilder::relink`).
const GROUPS: usize = 512;
const SHARDS_PER_GROUP: usize = 32;

/// A map from `K` to `V`, cloned in O(1), updated in batches.
#[derive(Clone)]
pub(crate) struct ShardedMap<K, V> {
    groups: Arc<[Group<K, V>]>,
}

/// `SHARDS_PER_GROUP` shards.
type Group<K, V> = Arc<[Shard<K, V>]>;

/// Entries sorted by key.
type Shard<K, V> = Arc<[(K, V)]>;

impl<K: Hash + Ord + Clone, V: Clone> ShardedMap<K, V> {
    /// An empty map: every group and shard one shared empty one.
    pub(crate) fn new() -> Self {
        let empty: Shard<K, V> = Arc::new([]);
        let group: Group<K, V> = (0..SHARDS_PER_GROUP).map(|_| empty.clone()).collect();
        ShardedMap {
            groups: (0..GROUPS).map(|_| group.clone()).collect(),
        }
    }

    /// The shard that holds `key`: group `shard / SHARDS_PER_GROUP`.
    fn shard_of(key: &K) -> usize {
        // A fixed hasher: shards must be the same from one snapshot to the
        // next. The keys come from registrations, not from queries.
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % (GROUPS * SHARDS_PER_GROUP) as u64) as usize
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let shard = Self::shard_of(key);
        let shard = &self.groups[shard / SHARDS_PER_GROUP][shard % SHARDS_PER_GROUP];
        let at = shard.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(&shard[at].1)
    }

    /// Every entry, in no particular order.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        let shards = self.groups.iter().flat_map(|group| group.iter());
        shards.flat_map(|shard| shard.iter())
    }

    /// Updates the entries `items` are about: `value` gets a key, the items
    /// with that key and the key's value now, and returns its value from
    /// now on (`None` removes it). Each group and shard touched is copied
    /// once, whatever the number of its keys.
    pub(crate) fn update<T>(
        &mut self,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
        mut value: impl FnMut(&K, &[T], Option<&V>) -> Option<V>,
    ) {
        if items.is_empty() {
            return;
        }
        // Each item's shard hashed once, and one sort by shard then key: a
        // first listing is a million items, and hashing each again in
        // every comparison and search was a tenth of building it.
        let mut placed: Vec<(usize, T)> = (items.into_iter())
            .map(|item| (Self::shard_of(&key(&item)), item))
            .collect();
        placed.sort_unstable_by(|(a, x), (b, y)| a.cmp(b).then_with(|| key(x).cmp(&key(y))));
        let (shards_of, items): (Vec<usize>, Vec<T>) = placed.into_iter().unzip();
        let mut groups = self.groups.to_vec();
        let mut start = 0;
        while start < items.len() {
            let group = shards_of[start] / SHARDS_PER_GROUP;
            let mut shards = groups[group].to_vec();
            while start < items.len() && shards_of[start] / SHARDS_PER_GROUP == group {
                let shard = shards_of[start];
                let end = start + shards_of[start..].partition_point(|&s| s == shard);
                let slot = &mut shards[shard % SHARDS_PER_GROUP];
                *slot = merge(slot, &items[start..end], &key, &mut value).into();
                start = end;
            }
            groups[group] = shards.into();
        }
        self.groups = groups.into();
    }
}

/// `shard` with the entries `items` (sorted by key) are about updated, in
/// one pass.
fn merge<K: Ord + Clone, V: Clone, T>(
    shard: &[(K, V)],
    items: &[T],
    key: &impl Fn(&T) -> K,
    value: &mut impl FnMut(&K, &[T], Option<&V>) -> Option<V>,
) -> Vec<(K, V)> {
    let mut merged = Vec::with_capacity(shard.len() + items.len());
    let mut rest = shard;
    for items in items.chunk_by(|a, b| key(a) == key(b)) {
        let k = &key(&items[0]);
        let before = rest.partition_point(|(other, _)| other < k);
        merged.extend_from_slice(&rest[..before]);
        rest = &rest[before..];
        let now = match rest.split_first() {
            Some(((other, v), after)) if other == k => {
                rest = after;
                Some(v)
            }
            _ => None,
        };
        merged.extend(value(k, items, now).map(|v| (k.clone(), v)));
    }
    merged.extend_from_slice(rest);
    merged
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shards = self.groups.iter().flat_map(|group| group.iter());
        let entries = shards.flat_map(|shard| shard.iter());
        f.debug_map().entries(entries.map(|(k, v)| (k, v))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_set_replace_and_remove() {
        let mut map = ShardedMap::new();
        map.update((0..5000).collect(), |&i| i, |&i, _, _| Some(i * 2));
        let before = map.clone();
        map.update(
            vec![9000, 8, 7, 8],
            |&i| i,
            |&i, items, now| match i {
                7 => now.map(|v| v - 14),
                8 => (items.len() == 1).then_some(0),
                _ => Some(1),
            },
        );
        assert_eq!(map.get(&7), Some(&0));
        assert_eq!(map.get(&8), None);
        assert_eq!(map.get(&9000), Some(&1));
        assert_eq!(map.get(&4999), Some(&9998));
        // The clone is a snapshot: the update did not reach it.
        assert_eq!(before.get(&7), Some(&14));
        assert_eq!(before.get(&8), Some(&16));
        assert_eq!(before.get(&9000), None);
    }
}
