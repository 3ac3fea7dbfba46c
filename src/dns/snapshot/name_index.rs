//! The index of dynamic names (services, their RFC 2782 names, the empty
//! non-terminals above them): flat hash tables that most lookups end in,
//! and small persistent maps of what changed since each was built.
//!
//! Every query probes this index once or twice. A persistent hash trie
//! alone (`imbl`) is cheap to update but several nodes deep, and at a
//! million instances (200,000 names) each node is a load that misses the
//! cache: its lookups were the query path's largest user-space cost, and
//! flat tables in its place answered 6 to 9% more queries a second there
//! (`bench/cold_start.sh`, `BENCHMARKS.md`). A flat table cannot be shared
//! between snapshots that differ, so changes go to a persistent map beside
//! it and are folded into a new table once they are more than an eighth of
//! it. The names are split by hash over [`SHARDS`] such pairs so that a
//! fold copies a small table: one table of 200,000 names took 37 ms to
//! copy, a stall of every registration behind it (`bench/heap.rs`).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::DynNode;
use crate::dns::name::NameKey;

/// Tables the names are spread over: about 3,000 names each at a million
/// instances, well under a millisecond to copy.
const SHARDS: usize = 64;

/// Changes a shard holds beside its table before folding them in, at
/// least. A first listing's names all arrive as changes and are folded in
/// at its end.
const MIN_CHANGES_HELD: usize = 64;

/// A table: one probe. Its keys come from registrations, never from
/// queries, which only look up.
type Table = HashMap<NameKey, DynNode, foldhash::fast::RandomState>;

/// Dynamic names and what each is; cloned in O(1).
#[derive(Debug, Clone)]
pub(super) struct NameIndex {
    shards: Arc<[Shard]>,
}

/// One table and the changes since it was built.
#[derive(Debug, Clone, Default)]
struct Shard {
    /// Built at once and never changed after: shared by every snapshot
    /// taken since.
    table: Arc<Table>,
    /// Names set (`Some`) or removed (`None`) since the table was built.
    changes: imbl::HashMap<NameKey, Option<DynNode>>,
}

impl Default for NameIndex {
    fn default() -> Self {
        NameIndex {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl NameIndex {
    /// The shard of `key`: fixed, so that a key stays in its shard from
    /// one snapshot to the next.
    fn shard_of(key: &[u8]) -> usize {
        (foldhash::fast::FixedState::default().hash_one(key) % SHARDS as u64) as usize
    }

    /// What `key` is, if it is in the index.
    pub(super) fn get(&self, key: &[u8]) -> Option<&DynNode> {
        let shard = &self.shards[Self::shard_of(key)];
        // Most shards have no changes held: one probe, then.
        if !shard.changes.is_empty()
            && let Some(changed) = shard.changes.get(key)
        {
            return changed.as_ref();
        }
        shard.table.get(key)
    }

    /// Whether `key` is in the index.
    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The shard of `key`, to change; the shards are copied first if a
    /// snapshot shares them (64 pointers).
    fn shard_mut(&mut self, key: &[u8]) -> &mut Shard {
        &mut Arc::make_mut(&mut self.shards)[Self::shard_of(key)]
    }

    /// Sets what `key` is.
    pub(super) fn insert(&mut self, key: NameKey, node: DynNode) {
        self.shard_mut(&key).changes.insert(key, Some(node));
    }

    /// Removes `key`.
    pub(super) fn remove(&mut self, key: &[u8]) {
        let shard = self.shard_mut(key);
        if shard.table.contains_key(key) {
            shard.changes.insert(key.into(), None);
        } else {
            shard.changes.remove(key);
        }
    }

    /// Folds each shard's changes into a new table once they are more
    /// than an eighth of it: after a batch, before its snapshot is taken.
    pub(super) fn settle(&mut self) {
        let due = |shard: &Shard| shard.changes.len() > MIN_CHANGES_HELD.max(shard.table.len() / 8);
        if !self.shards.iter().any(due) {
            return;
        }
        for shard in Arc::make_mut(&mut self.shards)
            .iter_mut()
            .filter(|s| due(s))
        {
            // A copy when a snapshot still holds the table, as it usually
            // does.
            let table = Arc::make_mut(&mut shard.table);
            for (key, node) in std::mem::take(&mut shard.changes) {
                match node {
                    Some(node) => table.insert(key, node),
                    None => table.remove(&key),
                };
            }
        }
    }

    /// Every node in the index, in no particular order.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(super) fn values(&self) -> impl Iterator<Item = &DynNode> {
        self.shards.iter().flat_map(|shard| {
            let unchanged = (shard.table.iter())
                .filter(|(key, _)| shard.changes.get(&key[..]).is_none())
                .map(|(_, node)| node);
            unchanged.chain(shard.changes.values().flatten())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> NameKey {
        name.as_bytes().into()
    }

    fn is(index: &NameIndex, name: &str) -> bool {
        index.contains_key(name.as_bytes())
    }

    fn held(index: &NameIndex) -> usize {
        index.shards.iter().map(|s| s.changes.len()).sum()
    }

    fn in_tables(index: &NameIndex) -> usize {
        index.shards.iter().map(|s| s.table.len()).sum()
    }

    #[test]
    fn names_set_and_removed_before_and_after_the_tables_are_rebuilt() {
        let mut index = NameIndex::default();
        let names: Vec<String> = (0..50_000).map(|i| format!("s{i}")).collect();
        for name in &names {
            index.insert(key(name), DynNode::Empty);
        }
        index.settle();
        assert_eq!(held(&index), 0, "50,000 changes to no table fold in");
        assert_eq!(in_tables(&index), 50_000);
        let before = index.clone();
        // Held as changes: removed from a table, set anew, set then
        // removed, never there.
        index.remove(b"s1");
        index.insert(key("new"), DynNode::Empty);
        index.insert(key("brief"), DynNode::Empty);
        index.remove(b"brief");
        index.remove(b"absent");
        index.settle();
        assert_eq!(held(&index), 2, "s1 removed, new set");
        assert!(!is(&index, "s1") && is(&index, "new") && is(&index, "s2"));
        assert!(!is(&index, "brief") && !is(&index, "absent"));
        // The clone taken before is a snapshot: none of that reached it.
        assert!(is(&before, "s1") && !is(&before, "new"));
        // A fifth of every shard's names removed: more than an eighth of
        // each table, so every shard folds its changes in, and the tables
        // the clone shares are untouched.
        for name in &names[..10_000] {
            index.remove(name.as_bytes());
        }
        index.settle();
        assert_eq!(held(&index), 0);
        assert_eq!(in_tables(&index), 40_001);
        assert!(!is(&index, "s9999") && is(&index, "s10000") && is(&index, "new"));
        assert!(is(&before, "s9999") && in_tables(&before) == 50_000);
    }

    #[test]
    fn a_fold_copies_only_the_shards_due() {
        let mut index = NameIndex::default();
        for i in 0..50_000 {
            index.insert(key(&format!("s{i}")), DynNode::Empty);
        }
        index.settle();
        let before = index.clone();
        // Changes enough for one shard's table (about 780 names), spread
        // over every shard: none is due.
        for i in 0..(SHARDS * 20) {
            index.insert(key(&format!("new{i}")), DynNode::Empty);
        }
        index.settle();
        let shared = |index: &NameIndex| {
            (index.shards.iter().zip(before.shards.iter()))
                .filter(|(a, b)| Arc::ptr_eq(&a.table, &b.table))
                .count()
        };
        assert_eq!(shared(&index), SHARDS, "no table copied");
        // Then one shard's worth more, in one shard: that one alone.
        let first = NameIndex::shard_of(b"s0");
        let more: Vec<String> = (0..)
            .map(|i| format!("more{i}"))
            .filter(|name| NameIndex::shard_of(name.as_bytes()) == first)
            .take(200)
            .collect();
        for name in &more {
            index.insert(key(name), DynNode::Empty);
        }
        index.settle();
        assert_eq!(shared(&index), SHARDS - 1, "one table copied");
        assert!(more.iter().all(|name| is(&index, name)) && is(&index, "new0"));
    }
}
