//! The index of dynamic names (services, their RFC 2782 names, the empty
//! non-terminals above them): a flat hash table that most lookups end in,
//! and a small persistent map of what changed since it was built.
//!
//! Every query probes this index once or twice. A persistent hash trie
//! alone (`imbl`) is cheap to update but several nodes deep, and at a
//! million instances (200,000 names) each node is a load that misses the
//! cache: its lookups were the query path's largest user-space cost, and
//! a flat table in its place answered 6% more queries a second there
//! (`bench/cold_start.sh`, `BENCHMARKS.md`). A flat table cannot be shared
//! between snapshots that differ, so changes go to the persistent map
//! beside it, and are folded into a new table once they are more than an
//! eighth of it: a snapshot clone stays O(1), and a change stays small.

use std::collections::HashMap;
use std::sync::Arc;

use super::DynNode;
use crate::dns::name::NameKey;

/// Changes held beside the table before it is rebuilt with them, at least.
/// A first listing's names all arrive as changes and are folded in at its
/// end.
const MIN_CHANGES_HELD: usize = 1024;

/// The table: foldhash, one probe. Its keys come from registrations, never
/// from queries, which only look up.
type Table = HashMap<NameKey, DynNode, foldhash::fast::RandomState>;

/// Dynamic names and what each is; cloned in O(1).
#[derive(Debug, Clone, Default)]
pub(super) struct NameIndex {
    /// Built at once and never changed after: shared by every snapshot
    /// taken since.
    table: Arc<Table>,
    /// Names set (`Some`) or removed (`None`) since the table was built.
    changes: imbl::HashMap<NameKey, Option<DynNode>>,
}

impl NameIndex {
    /// What `key` is, if it is in the index.
    pub(super) fn get(&self, key: &[u8]) -> Option<&DynNode> {
        // Most snapshots have no changes held: one probe, then.
        if !self.changes.is_empty()
            && let Some(changed) = self.changes.get(key)
        {
            return changed.as_ref();
        }
        self.table.get(key)
    }

    /// Whether `key` is in the index.
    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets what `key` is.
    pub(super) fn insert(&mut self, key: NameKey, node: DynNode) {
        self.changes.insert(key, Some(node));
    }

    /// Removes `key`.
    pub(super) fn remove(&mut self, key: &[u8]) {
        if self.table.contains_key(key) {
            self.changes.insert(key.into(), None);
        } else {
            self.changes.remove(key);
        }
    }

    /// Folds the changes into a new table once they are more than an
    /// eighth of it: after a batch, before its snapshot is taken.
    pub(super) fn settle(&mut self) {
        if self.changes.len() <= MIN_CHANGES_HELD.max(self.table.len() / 8) {
            return;
        }
        // A copy when a snapshot still holds the table, as it usually does.
        let table = Arc::make_mut(&mut self.table);
        for (key, node) in std::mem::take(&mut self.changes) {
            match node {
                Some(node) => table.insert(key, node),
                None => table.remove(&key),
            };
        }
    }

    /// Every node in the index, in no particular order.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(super) fn values(&self) -> impl Iterator<Item = &DynNode> {
        let unchanged = (self.table.iter())
            .filter(|(key, _)| self.changes.get(&key[..]).is_none())
            .map(|(_, node)| node);
        let changed = self.changes.values().flatten();
        unchanged.chain(changed)
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

    #[test]
    fn names_set_and_removed_before_and_after_the_table_is_rebuilt() {
        let mut index = NameIndex::default();
        let names: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
        for name in &names {
            index.insert(key(name), DynNode::Empty);
        }
        index.settle();
        assert!(
            index.changes.is_empty(),
            "5,000 changes to no table fold in"
        );
        assert_eq!(index.table.len(), 5000);
        let before = index.clone();
        // Held as changes: removed from the table, set anew, set then
        // removed, never there.
        index.remove(b"s1");
        index.insert(key("new"), DynNode::Empty);
        index.insert(key("brief"), DynNode::Empty);
        index.remove(b"brief");
        index.remove(b"absent");
        index.settle();
        assert_eq!(index.changes.len(), 2, "s1 removed, new set");
        assert!(!is(&index, "s1") && is(&index, "new") && is(&index, "s2"));
        assert!(!is(&index, "brief") && !is(&index, "absent"));
        // The clone taken before is a snapshot: none of that reached it.
        assert!(is(&before, "s1") && !is(&before, "new"));
        // More changes than held at least (1,024): folded in, and the
        // table the clone shares is untouched.
        for name in &names[..1100] {
            index.remove(name.as_bytes());
        }
        index.settle();
        assert!(index.changes.is_empty());
        assert_eq!(index.table.len(), 3901);
        assert!(!is(&index, "s1099") && is(&index, "s1100") && is(&index, "new"));
        assert!(is(&before, "s999") && before.table.len() == 5000);
    }
}
