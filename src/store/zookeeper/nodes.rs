//! Nerve nodes to instances. Two Nerve nodes can stand for one instance: a
//! re-registration races the old session's ephemeral node, which lingers
//! until that session expires. DNS answers the instance once, from the
//! newest node (the greatest name: the highest sequence number), and keeps
//! answering it until its last node is gone. Pure, no I/O.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Instance, InstanceId, ServiceName};
use crate::registry::Change;

type Key = (ServiceName, InstanceId);

/// The Nerve nodes of one registry and the instances they stand for.
#[derive(Debug, Default)]
pub(super) struct NerveNodes {
    by_path: HashMap<Box<str>, Key>,
    by_instance: HashMap<Key, BTreeMap<Box<str>, Instance>>,
}

impl NerveNodes {
    /// Replaces everything with a full listing of `(path, instance)`;
    /// returns each instance once.
    pub fn reset(&mut self, listed: Vec<(String, Instance)>) -> Vec<Instance> {
        *self = NerveNodes::default();
        for (path, instance) in listed {
            self.insert(&path, instance);
        }
        self.by_instance
            .values()
            .filter_map(|nodes| nodes.values().next_back().cloned())
            .collect()
    }

    /// The node at `path` now holds `instance`.
    pub fn put(&mut self, path: &str, instance: Instance, changes: &mut Vec<Change>) {
        let key = (instance.service.clone(), instance.id.clone());
        if self.by_path.get(path).is_some_and(|old| *old != key) {
            // Its data changed to another instance's: it leaves the old one.
            self.delete(path, changes);
        }
        let winner = self.insert(path, instance);
        if let Some(instance) = winner {
            changes.push(Change::Put(instance));
        }
    }

    /// The node at `path` is gone (or holds nothing usable any more).
    pub fn delete(&mut self, path: &str, changes: &mut Vec<Change>) {
        let Some(key) = self.by_path.remove(path) else {
            return;
        };
        let Some(nodes) = self.by_instance.get_mut(&key) else {
            return;
        };
        let was_winner = nodes.keys().next_back().is_some_and(|p| **p == *path);
        nodes.remove(path);
        match nodes.values().next_back() {
            Some(next) if was_winner => changes.push(Change::Put(next.clone())),
            Some(_) => {}
            None => {
                self.by_instance.remove(&key);
                changes.push(Change::Delete {
                    service: key.0,
                    id: key.1,
                });
            }
        }
    }

    /// Records the node; returns the instance if this node now answers.
    fn insert(&mut self, path: &str, instance: Instance) -> Option<Instance> {
        let key = (instance.service.clone(), instance.id.clone());
        self.by_path.insert(path.into(), key.clone());
        let nodes = self.by_instance.entry(key).or_default();
        nodes.insert(path.into(), instance);
        let (newest, instance) = nodes.iter().next_back()?;
        (**newest == *path).then(|| instance.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(id: &str, address: &str) -> Instance {
        Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new(id).unwrap(),
            address.parse().unwrap(),
        )
    }

    fn addresses(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Put(i) => format!("put {} {}", i.id, i.address),
                Change::Delete { id, .. } => format!("delete {id}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn two_nodes_of_one_instance_answer_once_from_the_newest() {
        let mut nodes = NerveNodes::default();
        let listed = nodes.reset(vec![
            (
                "/s/web/services/w1_0000000001".into(),
                web("w1", "10.0.0.1"),
            ),
            (
                "/s/web/services/w1_0000000002".into(),
                web("w1", "10.0.0.2"),
            ),
            (
                "/s/web/services/w2_0000000003".into(),
                web("w2", "10.0.0.3"),
            ),
        ]);
        let mut shown: Vec<String> = listed.iter().map(|i| i.address.to_string()).collect();
        shown.sort();
        assert_eq!(shown, ["10.0.0.2", "10.0.0.3"]);

        // The old session's node goes: nothing changes in DNS.
        let mut changes = Vec::new();
        nodes.delete("/s/web/services/w1_0000000001", &mut changes);
        assert!(changes.is_empty());
        // A newer node of w1 answers; the older one, going, leaves w1 as is.
        nodes.put(
            "/s/web/services/w1_0000000004",
            web("w1", "10.0.0.4"),
            &mut changes,
        );
        nodes.delete("/s/web/services/w1_0000000002", &mut changes);
        assert_eq!(addresses(&changes), ["put w1 10.0.0.4"]);
        // The newest going shows the one left; the last going withdraws.
        changes.clear();
        nodes.put(
            "/s/web/services/w1_0000000005",
            web("w1", "10.0.0.5"),
            &mut changes,
        );
        nodes.delete("/s/web/services/w1_0000000005", &mut changes);
        nodes.delete("/s/web/services/w1_0000000004", &mut changes);
        assert_eq!(
            addresses(&changes),
            ["put w1 10.0.0.5", "put w1 10.0.0.4", "delete w1"]
        );
    }

    #[test]
    fn a_node_whose_data_names_another_instance_moves() {
        let mut nodes = NerveNodes::default();
        nodes.reset(vec![("/s/web/n_1".into(), web("a", "10.0.0.1"))]);
        let mut changes = Vec::new();
        nodes.put("/s/web/n_1", web("b", "10.0.0.1"), &mut changes);
        assert_eq!(addresses(&changes), ["delete a", "put b 10.0.0.1"]);
        changes.clear();
        nodes.delete("/s/web/unknown_1", &mut changes);
        assert!(changes.is_empty());
    }
}
