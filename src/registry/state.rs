//! The merged registry: every source's instances, and which one is in
//! effect for each (service, instance id); and every source's SkyDNS
//! entries, keyed by (source, store key).

mod instances;

use std::collections::HashMap;
use std::sync::Arc;

use super::{Change, SourceId};
use crate::model::{Instance, SkyEntry};
use instances::{Identified, Instances};

/// A change to the effective set of instances.
#[derive(Debug, Clone)]
pub struct InstanceChange {
    /// What was in effect before, if anything.
    pub old: Option<Arc<Instance>>,
    /// What is in effect now, if anything.
    pub new: Option<Arc<Instance>>,
    /// The source `new` is in effect from (0 when there is no `new`).
    pub source: SourceId,
}

/// A change to one source's SkyDNS entries. Entries are records at names,
/// not identities that sources compete for: every source's entries are
/// answered, so there is no "effective" one to pick.
#[derive(Debug, Clone)]
pub struct RecordChange {
    /// Which source holds the entry.
    pub source: SourceId,
    /// The entry before, if any.
    pub old: Option<Arc<SkyEntry>>,
    /// The entry now, if any; same key as `old`.
    pub new: Option<Arc<SkyEntry>>,
}

/// What one batch of [`Change`]s changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Instances in effect.
    pub instances: Vec<InstanceChange>,
    /// SkyDNS entries.
    pub records: Vec<RecordChange>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.records.is_empty()
    }
}

/// Every source's instances, merged, and every source's SkyDNS entries.
#[derive(Debug, Default)]
pub struct Registry {
    sources: Vec<Instances>,
    /// Per source, SkyDNS entries by store key.
    records: Vec<HashMap<String, Arc<SkyEntry>>>,
}

impl Registry {
    /// A registry with `sources` empty sources.
    pub fn new(sources: usize) -> Self {
        Registry {
            sources: vec![Instances::default(); sources],
            records: vec![HashMap::new(); sources],
        }
    }

    /// The instance in effect for `key`: the lowest-numbered source's,
    /// and that source.
    fn effective(&self, key: &dyn Identified) -> Option<InSource> {
        (self.sources.iter().enumerate())
            .find_map(|(at, source)| Some((at, source.get(key)?.clone())))
    }

    /// Replaces everything `source` holds with `instances`. The changes
    /// come in the order the instances were listed, which a store gives
    /// grouped by service: what takes them next (the catalog, the
    /// snapshot) then reads the instances in the order they were made
    /// rather than in the order of their hashes, all over memory. With
    /// the catalog's and the snapshot's use of that order, a cold start
    /// at a million instances took 10 CPU-seconds instead of 16
    /// (`bench/scale.sh`).
    pub fn reset(&mut self, source: SourceId, instances: Vec<Instance>) -> Vec<InstanceChange> {
        let mut old = std::mem::take(&mut self.sources[source]);
        let mut fresh = Instances::with_capacity(instances.len());
        let mut listed = Vec::with_capacity(instances.len());
        let mut repeated = false;
        for instance in instances {
            // Unchanged instances keep their Arc, so they produce no change.
            let instance = match old.get(&instance) {
                Some(before) if **before == instance => before.clone(),
                _ => Arc::new(instance),
            };
            repeated |= fresh.insert(instance.clone()).is_some();
            listed.push(instance);
        }
        let mut changes = Vec::with_capacity(listed.len());
        for instance in listed {
            // An instance listed twice (Nerve's sequential nodes can be)
            // is what its last listing says, the one kept.
            let kept = || {
                fresh
                    .get(&*instance)
                    .is_some_and(|k| Arc::ptr_eq(k, &instance))
            };
            if repeated && !kept() {
                continue;
            }
            let before = if old.is_empty() {
                None
            } else {
                old.remove(&*instance)
            };
            let after = Some(instance.clone());
            changes.extend(self.change_in(source, &*instance, before, after));
        }
        for before in old.drain() {
            changes.extend(self.change_in(source, &*before, Some(before.clone()), None));
        }
        self.sources[source] = fresh;
        changes
    }

    /// The change in effect at `key` when `source`'s instance there goes
    /// from `before` to `after`, while `source` is being replaced.
    fn change_in(
        &self,
        source: SourceId,
        key: &dyn Identified,
        before: Option<Arc<Instance>>,
        after: Option<Arc<Instance>>,
    ) -> Option<InstanceChange> {
        // A lower-numbered source's instance is in effect either way.
        if self.sources[..source].iter().any(|s| s.contains(key)) {
            return None;
        }
        let below = || {
            (self.sources[source + 1..].iter().enumerate())
                .find_map(|(at, s)| Some((source + 1 + at, s.get(key)?.clone())))
        };
        let from_source = |instance: Option<Arc<Instance>>| instance.map(|i| (source, i));
        difference(
            from_source(before).or_else(below),
            from_source(after).or_else(below),
        )
    }

    /// Replaces every SkyDNS entry `source` holds with `entries`, in one
    /// step (a resync): entries that did not change produce no change.
    pub fn reset_records(&mut self, source: SourceId, entries: Vec<SkyEntry>) -> Vec<RecordChange> {
        let mut fresh: HashMap<String, Arc<SkyEntry>> = HashMap::with_capacity(entries.len());
        for entry in entries {
            fresh.insert(entry.key.clone(), Arc::new(entry));
        }
        let mut old = std::mem::take(&mut self.records[source]);
        let mut changes = Vec::new();
        for (key, entry) in fresh.iter_mut() {
            match old.remove(key) {
                Some(before) if *before == **entry => *entry = before,
                before => changes.push(RecordChange {
                    source,
                    old: before,
                    new: Some(entry.clone()),
                }),
            }
        }
        changes.extend(old.into_values().map(|before| RecordChange {
            source,
            old: Some(before),
            new: None,
        }));
        self.records[source] = fresh;
        changes
    }

    /// Applies `changes` from `source`, in order.
    pub fn apply(&mut self, source: SourceId, changes: Vec<Change>) -> Changes {
        let mut result = Changes::default();
        for change in changes {
            match change {
                Change::Put(instance) => result.instances.extend(self.put(source, instance)),
                Change::Delete { service, id } => {
                    result.instances.extend(self.delete(source, &(service, id)));
                }
                Change::PutRecord(entry) => result.records.extend(self.put_record(source, entry)),
                Change::DeleteRecord { key } => {
                    result
                        .records
                        .extend(self.records[source].remove(&key).map(|old| RecordChange {
                            source,
                            old: Some(old),
                            new: None,
                        }));
                }
            }
        }
        result
    }

    fn put(&mut self, source: SourceId, instance: Instance) -> Option<InstanceChange> {
        if (self.sources[source].get(&instance)).is_some_and(|existing| **existing == instance) {
            return None;
        }
        let old = self.effective(&instance);
        let instance = Arc::new(instance);
        self.sources[source].insert(instance.clone());
        difference(old, self.effective(&*instance))
    }

    fn delete(&mut self, source: SourceId, key: &dyn Identified) -> Option<InstanceChange> {
        let old = self.effective(key);
        self.sources[source].remove(key)?;
        difference(old, self.effective(key))
    }

    fn put_record(&mut self, source: SourceId, entry: SkyEntry) -> Option<RecordChange> {
        let records = &mut self.records[source];
        if records.get(&entry.key).is_some_and(|old| **old == entry) {
            return None;
        }
        let new = Arc::new(entry);
        let old = records.insert(new.key.clone(), new.clone());
        Some(RecordChange {
            source,
            old,
            new: Some(new),
        })
    }

    /// Number of instances across sources (duplicates counted once per source).
    pub fn len(&self) -> usize {
        self.sources.iter().map(Instances::len).sum()
    }

    /// Whether no source holds anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.record_count() == 0
    }

    /// Number of SkyDNS entries across sources.
    pub fn record_count(&self) -> usize {
        self.records.iter().map(HashMap::len).sum()
    }
}

/// An instance and the source it comes from.
type InSource = (SourceId, Arc<Instance>);

/// The change from `old` to `new`, if they differ.
fn difference(old: Option<InSource>, new: Option<InSource>) -> Option<InstanceChange> {
    match (&old, &new) {
        (None, None) => None,
        (Some((_, a)), Some((_, b))) if Arc::ptr_eq(a, b) => None,
        _ => Some(InstanceChange {
            old: old.map(|(_, instance)| instance),
            source: new.as_ref().map_or(0, |(source, _)| *source),
            new: new.map(|(_, instance)| instance),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceId, ServiceName};

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
    fn a_listing_is_reported_in_its_order_and_an_instance_listed_twice_as_its_last() {
        let mut registry = Registry::new(1);
        let listed = ["d", "b", "a", "b", "c"];
        let addresses = ["10.0.0.4", "10.0.0.2", "10.0.0.1", "10.0.0.22", "10.0.0.3"];
        let instances = (listed.iter().zip(addresses)).map(|(id, a)| instance(id, a));
        let changes = registry.reset(0, instances.collect());
        let reported: Vec<(&str, String)> = (changes.iter())
            .map(|c| {
                let new = c.new.as_ref().unwrap();
                (new.id.as_str(), new.address.to_string())
            })
            .collect();
        assert_eq!(
            reported,
            [
                ("d", "10.0.0.4".to_owned()),
                ("a", "10.0.0.1".to_owned()),
                ("b", "10.0.0.22".to_owned()),
                ("c", "10.0.0.3".to_owned()),
            ]
        );
        assert_eq!(registry.len(), 4);
    }

    #[test]
    fn the_lower_source_wins_and_the_other_shows_through_when_it_leaves() {
        let mut registry = Registry::new(2);
        registry.apply(1, vec![Change::Put(instance("a", "10.0.0.2"))]);
        let changes = registry
            .apply(0, vec![Change::Put(instance("a", "10.0.0.1"))])
            .instances;
        assert_eq!(
            changes[0].new.as_ref().unwrap().address.to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            changes[0].old.as_ref().unwrap().address.to_string(),
            "10.0.0.2",
            "what was answered before, from the higher source"
        );
        assert_eq!(changes[0].source, 0);
        let changes = registry
            .apply(
                0,
                vec![Change::Delete {
                    service: ServiceName::new("web").unwrap(),
                    id: InstanceId::new("a").unwrap(),
                }],
            )
            .instances;
        assert_eq!(
            changes[0].new.as_ref().unwrap().address.to_string(),
            "10.0.0.2"
        );
        assert_eq!(changes[0].source, 1, "the source it shows through from");
        // The higher source changing under the lower one changes nothing.
        registry.apply(0, vec![Change::Put(instance("a", "10.0.0.1"))]);
        assert!(
            registry
                .apply(1, vec![Change::Put(instance("a", "10.0.0.9"))])
                .is_empty()
        );
    }

    #[test]
    fn a_reset_under_a_lower_source_changes_nothing_until_that_one_leaves() {
        let mut registry = Registry::new(2);
        registry.reset(0, vec![instance("a", "10.0.0.1")]);
        assert!(
            registry
                .reset(
                    1,
                    vec![instance("a", "10.0.0.2"), instance("b", "10.0.0.3")]
                )
                .iter()
                .all(|c| c.new.as_ref().unwrap().id.as_str() == "b")
        );
        let changes = registry.reset(0, Vec::new());
        assert_eq!(changes.len(), 1);
        let change = &changes[0];
        assert_eq!(
            (
                change.old.as_ref().unwrap().address.to_string(),
                change.new.as_ref().unwrap().address.to_string()
            ),
            ("10.0.0.1".into(), "10.0.0.2".into())
        );
        let changes = registry.reset(1, vec![instance("b", "10.0.0.3")]);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].new.is_none());
    }

    fn entry(key: &str, host: &str) -> SkyEntry {
        crate::model::parse_skydns(
            "/skydns",
            key,
            format!(r#"{{"host":"{host}"}}"#).as_bytes(),
            None,
        )
        .unwrap()
    }

    fn summary(changes: &[RecordChange]) -> Vec<(usize, Option<String>, Option<String>)> {
        let mut out: Vec<_> = changes
            .iter()
            .map(|c| {
                (
                    c.source,
                    c.old.as_ref().map(|e| format!("{}={}", e.key, e.host)),
                    c.new.as_ref().map(|e| format!("{}={}", e.key, e.host)),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn record_changes_are_per_source_and_skip_repeats() {
        let mut registry = Registry::new(2);
        let put = |e| Change::PutRecord(e);
        let first = registry.apply(0, vec![put(entry("/skydns/internal/disco/a", "10.0.0.1"))]);
        assert_eq!(first.records.len(), 1);
        assert!(first.instances.is_empty());
        // The same key in another source is another entry.
        let other = registry.apply(1, vec![put(entry("/skydns/internal/disco/a", "10.0.0.2"))]);
        assert_eq!(
            summary(&other.records),
            [(1, None, Some("/skydns/internal/disco/a=10.0.0.2".into()))]
        );
        assert!(
            registry
                .apply(0, vec![put(entry("/skydns/internal/disco/a", "10.0.0.1"))])
                .is_empty()
        );
        let deleted = registry.apply(
            0,
            vec![
                Change::DeleteRecord {
                    key: "/skydns/internal/disco/a".into(),
                },
                Change::DeleteRecord {
                    key: "/skydns/internal/disco/never".into(),
                },
            ],
        );
        assert_eq!(
            summary(&deleted.records),
            [(0, Some("/skydns/internal/disco/a=10.0.0.1".into()), None)]
        );
        assert_eq!(registry.record_count(), 1);
    }

    #[test]
    fn a_record_reset_replaces_one_source_and_reports_only_differences() {
        let mut registry = Registry::new(2);
        registry.reset_records(
            0,
            vec![
                entry("/skydns/internal/disco/a", "10.0.0.1"),
                entry("/skydns/internal/disco/b", "10.0.0.2"),
            ],
        );
        registry.reset_records(1, vec![entry("/skydns/internal/disco/a", "10.0.0.9")]);
        let changes = registry.reset_records(
            0,
            vec![
                entry("/skydns/internal/disco/a", "10.0.0.1"),
                entry("/skydns/internal/disco/b", "10.0.0.3"),
                entry("/skydns/internal/disco/c", "10.0.0.4"),
            ],
        );
        assert_eq!(
            summary(&changes),
            [
                (0, None, Some("/skydns/internal/disco/c=10.0.0.4".into())),
                (
                    0,
                    Some("/skydns/internal/disco/b=10.0.0.2".into()),
                    Some("/skydns/internal/disco/b=10.0.0.3".into())
                ),
            ]
        );
        let emptied = registry.reset_records(0, Vec::new());
        assert_eq!(emptied.len(), 3);
        assert!(emptied.iter().all(|c| c.new.is_none() && c.source == 0));
        // Source 1 is untouched.
        assert_eq!(registry.record_count(), 1);
    }
}
