//! A map from names to values sized for an instance's named ports: a
//! handful of entries each, times a million instances. A `BTreeMap`
//! allocates a ~500-byte node even for one entry; a sorted boxed slice
//! holds exactly its entries and finds one by binary search, and the names,
//! the same few across instances (`http`, `metrics`), are shared copies.

use std::ops::Index;
use std::sync::Arc;

use super::shared_labels::shared;

/// Entries sorted by name, names unique. Built with `collect()`; replaced
/// whole rather than edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallMap<V>(Box<[(Arc<str>, V)]>);

impl<V> SmallMap<V> {
    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        let at = self.0.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        Some(&self.0[at].1)
    }

    /// The entries, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> {
        self.0.iter().map(|(name, value)| (&**name, value))
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(|(name, _)| &**name)
    }

    /// The values, in the order of their names.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.0.iter().map(|(_, value)| value)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap(Box::default())
    }
}

/// As inserting into a map in turn: of entries with the same name, the last
/// one stays.
impl<K: AsRef<str>, V> FromIterator<(K, V)> for SmallMap<V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut entries: Vec<(K, V)> = entries.into_iter().collect();
        // Stable, so equal names keep their order and the last can win.
        entries.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        entries.dedup_by(|later, kept| {
            let same = later.0.as_ref() == kept.0.as_ref();
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        // Sized exactly: one allocation, and none to shrink it.
        let mut shared_entries = Vec::with_capacity(entries.len());
        shared_entries
            .extend((entries.into_iter()).map(|(name, value)| (shared(name.as_ref()), value)));
        SmallMap(shared_entries.into_boxed_slice())
    }
}

impl<V> Index<&str> for SmallMap<V> {
    type Output = V;

    /// The value under `name`; panics when there is none, as maps do.
    fn index(&self, name: &str) -> &V {
        self.get(name).expect("no entry with that name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_and_the_last_of_a_name_wins() {
        let map: SmallMap<u16> = [("metrics", 9100), ("http", 80), ("http", 8080)]
            .into_iter()
            .collect();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [("http", &8080), ("metrics", &9100)]
        );
        assert_eq!(map.get("metrics"), Some(&9100));
        assert_eq!(map.get("grpc"), None);
        assert_eq!(map["http"], 8080);
        assert_eq!(map.len(), 2);
        assert!(SmallMap::<u16>::default().is_empty());
        let again: SmallMap<u16> = [("http", 1)].into_iter().collect();
        assert!(
            Arc::ptr_eq(&map.0[0].0, &again.0[0].0),
            "one copy of a name"
        );
    }
}
