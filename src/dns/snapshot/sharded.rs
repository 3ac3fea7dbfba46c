//! A persistent map for many small entries: the reverse index, which has an
//! entry per address, as many as there are instances.
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
/// them changes), and a change copies the 128 pointers of its group and
/// of the table of groups, where one flat table of 1,024 shards copied
/// 8 KiB of pointers and a shard of about 1,000 entries per change.
const GROUPS: usize = 128;
const SHARDS_PER_GROUP: usize = 128;

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

    /// The group and the shard within it that hold `key`.
    fn shard_of(key: &K) -> (usize, usize) {
        // A fixed hasher: shards must be the same from one snapshot to the
        // next. The keys come from registrations, not from queries.
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = (hasher.finish() % (GROUPS * SHARDS_PER_GROUP) as u64) as usize;
        (shard / SHARDS_PER_GROUP, shard % SHARDS_PER_GROUP)
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let (group, shard) = Self::shard_of(key);
        let shard = &self.groups[group][shard];
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
        mut items: Vec<T>,
        key: impl Fn(&T) -> &K,
        mut value: impl FnMut(&K, &[T], Option<&V>) -> Option<V>,
    ) {
        if items.is_empty() {
            return;
        }
        items.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        // Stable: still sorted by key within each shard.
        items.sort_by_cached_key(|item| Self::shard_of(key(item)));
        let mut groups = self.groups.to_vec();
        let mut rest = &items[..];
        while let Some(first) = rest.first() {
            let (group, _) = Self::shard_of(key(first));
            let end = rest.partition_point(|item| Self::shard_of(key(item)).0 <= group);
            let (in_group, after) = rest.split_at(end);
            let mut shards = groups[group].to_vec();
            let mut rest_of_group = in_group;
            while let Some(first) = rest_of_group.first() {
                let (_, shard) = Self::shard_of(key(first));
                let end =
                    rest_of_group.partition_point(|item| Self::shard_of(key(item)).1 <= shard);
                let (these, later) = rest_of_group.split_at(end);
                shards[shard] = merge(&shards[shard], these, &key, &mut value).into();
                rest_of_group = later;
            }
            groups[group] = shards.into();
            rest = after;
        }
        self.groups = groups.into();
    }
}

/// `shard` with the entries `items` (sorted by key) are about updated, in
/// one pass.
fn merge<K: Ord + Clone, V: Clone, T>(
    shard: &[(K, V)],
    items: &[T],
    key: &impl Fn(&T) -> &K,
    value: &mut impl FnMut(&K, &[T], Option<&V>) -> Option<V>,
) -> Vec<(K, V)> {
    let mut merged = Vec::with_capacity(shard.len() + items.len());
    let mut rest = shard;
    for items in items.chunk_by(|a, b| key(a) == key(b)) {
        let k = key(&items[0]);
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
        map.update((0..5000).collect(), |i| i, |&i, _, _| Some(i * 2));
        let before = map.clone();
        map.update(
            vec![9000, 8, 7, 8],
            |i| i,
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
