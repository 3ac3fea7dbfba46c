//! The merged registry: every source's instances, and which one is in
//! effect for each (service, instance id).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Change, SourceId};
use crate::model::{Instance, InstanceId, ServiceName};

type Key = (ServiceName, InstanceId);

/// A change to the effective set of instances.
#[derive(Debug, Clone)]
pub struct InstanceChange {
    /// What was in effect before, if anything.
    pub old: Option<Arc<Instance>>,
    /// What is in effect now, if anything.
    pub new: Option<Arc<Instance>>,
}

/// Every source's instances, merged.
#[derive(Debug, Default)]
pub struct Registry {
    sources: Vec<HashMap<Key, Arc<Instance>>>,
}

impl Registry {
    /// A registry with `sources` empty sources.
    pub fn new(sources: usize) -> Self {
        Registry {
            sources: vec![HashMap::new(); sources],
        }
    }

    /// The instance in effect for `key`: the lowest-numbered source's.
    fn effective(&self, key: &Key) -> Option<&Arc<Instance>> {
        self.sources.iter().find_map(|source| source.get(key))
    }

    /// Replaces everything `source` holds with `instances`.
    pub fn reset(&mut self, source: SourceId, instances: Vec<Instance>) -> Vec<InstanceChange> {
        let mut fresh: HashMap<Key, Arc<Instance>> = HashMap::with_capacity(instances.len());
        for instance in instances {
            fresh.insert(
                (instance.service.clone(), instance.id.clone()),
                Arc::new(instance),
            );
        }
        let mut keys: Vec<Key> = self.sources[source].keys().cloned().collect();
        keys.extend(
            fresh
                .keys()
                .filter(|k| !self.sources[source].contains_key(*k))
                .cloned(),
        );
        let before: Vec<Option<Arc<Instance>>> =
            keys.iter().map(|k| self.effective(k).cloned()).collect();
        // Unchanged values keep their Arc, so they produce no change below.
        for (key, instance) in fresh.iter_mut() {
            if let Some(old) = self.sources[source]
                .get(key)
                .filter(|old| **old == *instance)
            {
                *instance = old.clone();
            }
        }
        self.sources[source] = fresh;
        keys.iter()
            .zip(before)
            .filter_map(|(key, old)| self.changed(key, old))
            .collect()
    }

    /// Applies `changes` from `source`, in order.
    pub fn apply(&mut self, source: SourceId, changes: Vec<Change>) -> Vec<InstanceChange> {
        let mut result = Vec::with_capacity(changes.len());
        for change in changes {
            let (key, value) = match change {
                Change::Put(instance) => (
                    (instance.service.clone(), instance.id.clone()),
                    Some(instance),
                ),
                Change::Delete { service, id } => ((service, id), None),
                // SkyDNS entries are not indexed yet (issue: the etcd backend).
                Change::PutRecord(_) | Change::DeleteRecord { .. } => continue,
            };
            let old = self.effective(&key).cloned();
            match value {
                Some(instance) => {
                    if self.sources[source]
                        .get(&key)
                        .is_some_and(|existing| **existing == instance)
                    {
                        continue;
                    }
                    self.sources[source].insert(key.clone(), Arc::new(instance));
                }
                None => {
                    self.sources[source].remove(&key);
                }
            }
            result.extend(self.changed(&key, old));
        }
        result
    }

    fn changed(&self, key: &Key, old: Option<Arc<Instance>>) -> Option<InstanceChange> {
        let new = self.effective(key).cloned();
        match (&old, &new) {
            (None, None) => None,
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => None,
            _ => Some(InstanceChange { old, new }),
        }
    }

    /// Number of instances across sources (duplicates counted once per source).
    pub fn len(&self) -> usize {
        self.sources.iter().map(HashMap::len).sum()
    }

    /// Whether no source holds anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, address: &str) -> Instance {
        Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new(id).unwrap(),
            address.parse().unwrap(),
        )
    }

    #[test]
    fn a_reset_reports_only_what_changed() {
        let mut registry = Registry::new(1);
        let first = registry.reset(
            0,
            vec![instance("a", "10.0.0.1"), instance("b", "10.0.0.2")],
        );
        assert_eq!(first.len(), 2);
        let second = registry.reset(
            0,
            vec![instance("a", "10.0.0.1"), instance("c", "10.0.0.3")],
        );
        let mut ids: Vec<(Option<&str>, Option<&str>)> = second
            .iter()
            .map(|c| {
                (
                    c.old.as_ref().map(|i| i.id.as_str()),
                    c.new.as_ref().map(|i| i.id.as_str()),
                )
            })
            .collect();
        ids.sort();
        assert_eq!(ids, [(None, Some("c")), (Some("b"), None)]);
    }

    #[test]
    fn the_lower_source_wins_and_the_other_shows_through_when_it_leaves() {
        let mut registry = Registry::new(2);
        registry.apply(1, vec![Change::Put(instance("a", "10.0.0.2"))]);
        let changes = registry.apply(0, vec![Change::Put(instance("a", "10.0.0.1"))]);
        assert_eq!(
            changes[0].new.as_ref().unwrap().address.to_string(),
            "10.0.0.1"
        );
        let changes = registry.apply(
            0,
            vec![Change::Delete {
                service: ServiceName::new("web").unwrap(),
                id: InstanceId::new("a").unwrap(),
            }],
        );
        assert_eq!(
            changes[0].new.as_ref().unwrap().address.to_string(),
            "10.0.0.2"
        );
        // The higher source changing under the lower one changes nothing.
        registry.apply(0, vec![Change::Put(instance("a", "10.0.0.1"))]);
        assert!(
            registry
                .apply(1, vec![Change::Put(instance("a", "10.0.0.9"))])
                .is_empty()
        );
    }
}
