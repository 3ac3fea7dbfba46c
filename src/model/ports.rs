//! An instance's named ports: a handful of entries each, times a million
//! instances. A `BTreeMap` allocates a ~500-byte node even for one entry;
//! a sorted slice holds exactly its entries and finds one by binary
//! search. And instances of a service nearly always name the same ports
//! (`http` 8080, `metrics` 9100), so the slice itself is a shared copy.

use std::ops::Index;

use super::shared::{List, NO_PORTS, Port, shared_ports};

/// Ports by name, sorted by name, names unique. Built with `collect()`;
/// replaced whole rather than edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(List<Port>);

impl Ports {
    /// The port named `name`.
    pub fn get(&self, name: &str) -> Option<&u16> {
        let at = self.0.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        Some(&self.0[at].1)
    }

    /// The entries, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &u16)> {
        self.0.iter().map(|(name, port)| (&**name, port))
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(|(name, _)| &**name)
    }

    /// The ports, in the order of their names.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &u16> {
        self.0.iter().map(|(_, port)| port)
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

impl Default for Ports {
    fn default() -> Self {
        Ports(NO_PORTS.clone())
    }
}

/// As inserting into a map in turn: of entries with the same name, the last
/// one stays.
impl<K: AsRef<str>> FromIterator<(K, u16)> for Ports {
    fn from_iter<I: IntoIterator<Item = (K, u16)>>(entries: I) -> Self {
        let mut entries: Vec<(K, u16)> = entries.into_iter().collect();
        // Stable, so equal names keep their order and the last can win.
        entries.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        entries.dedup_by(|later, kept| {
            let same = later.0.as_ref() == kept.0.as_ref();
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let named: Vec<(&str, u16)> = (entries.iter())
            .map(|(name, port)| (name.as_ref(), *port))
            .collect();
        Ports(shared_ports(&named))
    }
}

impl Index<&str> for Ports {
    type Output = u16;

    /// The port named `name`; panics when there is none, as maps do.
    fn index(&self, name: &str) -> &u16 {
        self.get(name).expect("no entry with that name")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn entries_are_sorted_the_last_of_a_name_wins_and_maps_are_shared() {
        let map: Ports = [("metrics", 9100), ("http", 80), ("http", 8080)]
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
        assert!(Ports::default().is_empty());
        let again: Ports = [("http", 8080), ("metrics", 9100)].into_iter().collect();
        assert!(Arc::ptr_eq(&map.0, &again.0), "one copy of the map");
        let other: Ports = [("http", 1)].into_iter().collect();
        assert!(
            Arc::ptr_eq(&map.0[0].0, &other.0[0].0),
            "one copy of a name"
        );
    }
}
