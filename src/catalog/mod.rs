//! What disco holds, for people and programs rather than DNS: every
//! instance in effect with the registry it came from and when it was first
//! seen ([`View`]), and the last changes, the registries' own among them
//! ([`Timeline`]).
//!
//! Native, Nerve and ZooKeeper registrations are [`Instance`]s; SkyDNS
//! entries are records at names, and appear here as the instances of the
//! name above them ([`sky_place`]): `x1.web.disco.internal` is instance
//! `x1` of service `web`, one instance per store key, its fields as stored
//! ([`Registration::SkyDns`]).
//!
//! The snapshot writer is the only writer, after each batch it applies; the HTTP
//! API and the web page read. Nothing here is on the query path: DNS
//! answers come from the snapshot, which knows nothing of this module. A
//! view is a persistent map (`imbl`), so publishing one after a batch
//! costs what the batch changed, and a reader holds a consistent copy for
//! as long as it needs without blocking the writer.

mod members;
mod skydns;
mod timeline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use imbl::OrdMap;

use crate::model::{Instance, SkyEntry};
use crate::registry::{InstanceChange, RecordChange, SourceId};

pub use members::{Entry, MAX_REGISTRIES, Members, Staged};
pub use skydns::{changed_sky_fields, sky_place};
pub use timeline::{ChangeEvent, ChangeKind, Live, Timeline};

/// Default `--change-history`: changes kept for `/v1/changes` and the page.
pub const DEFAULT_HISTORY: usize = 1000;

/// What an instance in the catalog was registered as.
#[derive(Debug, Clone)]
pub enum Registration {
    /// A registration in disco's own format, or Nerve's.
    Instance(Arc<Instance>),
    /// A SkyDNS / CoreDNS `etcd` plugin entry, as stored.
    SkyDns(Arc<SkyEntry>),
}

/// Every instance in effect, by service then [`Entry::key`], both sorted.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Service name to its instances.
    pub services: OrdMap<String, Members>,
    /// Instances in all.
    pub instances: usize,
}

/// The catalog: the current [`View`] and the [`Timeline`].
#[derive(Debug)]
pub struct Catalog {
    registries: Vec<String>,
    /// The served domain, without trailing dot: SkyDNS names are placed
    /// relative to it.
    domain: String,
    published: ArcSwap<View>,
    /// The writer's copy; only the snapshot writer locks it.
    working: Mutex<View>,
    timeline: Timeline,
}

impl Catalog {
    /// An empty catalog for registries with these names (credential-free,
    /// as [`crate::registry::Backend::name`] gives them), keeping the last
    /// `history` changes; SkyDNS entries are placed under `domain`.
    pub fn new(registries: Vec<String>, domain: &str, history: usize) -> Self {
        Catalog {
            registries,
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            published: ArcSwap::from_pointee(View::default()),
            working: Mutex::new(View::default()),
            timeline: Timeline::new(history),
        }
    }

    /// The registries' names, by [`SourceId`].
    pub fn registries(&self) -> &[String] {
        &self.registries
    }

    /// The name of registry `source`.
    pub fn registry_name(&self, source: SourceId) -> &str {
        self.registries.get(source).map_or("", String::as_str)
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        self.published.load_full()
    }

    /// The change timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Takes one batch of changes to the instances in effect and to SkyDNS
    /// entries.
    pub fn apply(&self, changes: &[InstanceChange], records: &[RecordChange]) {
        if changes.is_empty() && records.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let mut view = self.working.lock().expect("not poisoned");
        // Each service's instances are taken out of the view when the batch
        // first touches them, changed in place, and put back once at the
        // end: a listing of a million instances looks up the map of
        // services 100,000 times, not a million (3.6 s of a cold start at a
        // million, bench/heap.rs), and copies no service's block for each
        // of its instances. The changes come grouped by service when they
        // are a listing, so most services are looked up once per batch.
        let mut touched: HashMap<&str, Staged> = HashMap::new();
        // Changes no one could be given once this batch ends are only
        // numbered: a listing's million would be made and dropped.
        let untold = changes.len().saturating_sub(self.timeline.window());
        self.timeline.skip(untold);
        let mut at = 0;
        for run in changes.chunk_by(|a, b| service_of(a) == service_of(b)) {
            let Some(service) = service_of(&run[0]) else {
                at += run.len();
                continue;
            };
            let instances = touched
                .entry(service)
                .or_insert_with(|| view.services.remove(service).unwrap_or_default().stage());
            for change in run {
                let told = at >= untold;
                at += 1;
                let Some((kind, fields, id)) = describe(change) else {
                    continue;
                };
                let source = match &change.new {
                    Some(new) => {
                        let source = change.source;
                        let first_seen = instances.get(id).map_or(now, Entry::first_seen);
                        let registration = Registration::Instance(new.clone());
                        if (instances.insert(Entry::new(registration, source, first_seen)))
                            .is_none()
                        {
                            view.instances += 1;
                        }
                        source
                    }
                    None => {
                        let source = instances.remove(id).map(|e| e.registry());
                        if source.is_some() {
                            view.instances -= 1;
                        }
                        source.unwrap_or_default()
                    }
                };
                if told {
                    self.timeline.push(ChangeEvent {
                        seq: 0,
                        time: now,
                        registry: self.registry_name(source).to_owned(),
                        kind,
                        service: Some(service.to_owned()),
                        instance: Some(id.to_owned()),
                        fields,
                        detail: None,
                    });
                }
            }
        }
        for (service, instances) in touched {
            let instances = instances.into_members();
            if !instances.is_empty() {
                view.services.insert(service.to_owned(), instances);
            }
        }
        for change in records {
            self.apply_record(&mut view, change, now);
        }
        self.published.store(Arc::new(view.clone()));
    }

    /// Records a registry's own change of state (synced, stale, resynced,
    /// current again).
    pub fn registry_event(&self, source: SourceId, kind: ChangeKind, detail: Option<String>) {
        self.timeline.push(ChangeEvent {
            seq: 0,
            time: SystemTime::now(),
            registry: self.registry_name(source).to_owned(),
            kind,
            service: None,
            instance: None,
            fields: Vec::new(),
            detail,
        });
    }
}

/// The service `change` is to.
fn service_of(change: &InstanceChange) -> Option<&str> {
    (change.new.as_ref().or(change.old.as_ref())).map(|i| i.service.as_str())
}

/// What `change` did, the fields it changed, and to which instance id;
/// `None` for a change from nothing to nothing.
fn describe(change: &InstanceChange) -> Option<(ChangeKind, Vec<&'static str>, &str)> {
    let (kind, fields, instance) = match (&change.old, &change.new) {
        (None, Some(new)) => (ChangeKind::Added, Vec::new(), new),
        (Some(old), None) => (ChangeKind::Removed, Vec::new(), old),
        (Some(old), Some(new)) => (ChangeKind::Changed, changed_fields(old, new), new),
        (None, None) => return None,
    };
    Some((kind, fields, instance.id.as_str()))
}

/// The fields that differ between two registrations of one instance.
pub fn changed_fields(old: &Instance, new: &Instance) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut differs = |name, differ: bool| {
        if differ {
            fields.push(name);
        }
    };
    differs("address", old.address != new.address);
    differs("port", old.port != new.port);
    differs("ports", !old.ports.iter().eq(new.ports.iter()));
    differs("protocol", old.protocol != new.protocol);
    differs("tags", old.tags != new.tags);
    differs("priority", old.priority != new.priority);
    differs("weight", old.weight != new.weight);
    differs("ttl", old.ttl != new.ttl);
    differs("meta", !old.meta.iter().eq(new.meta.iter()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_native;

    fn instance(id: &str, json: &str) -> Arc<Instance> {
        Arc::new(parse_native("web", id, json.as_bytes()).unwrap())
    }

    #[test]
    fn a_batch_updates_the_view_and_the_timeline_with_what_changed() {
        let catalog = Catalog::new(vec!["etcd://a/disco".into()], "disco.internal", 10);
        let one = instance("web-1", r#"{"address":"10.0.0.1","port":80}"#);
        catalog.apply(
            &[InstanceChange {
                old: None,
                new: Some(one.clone()),
                source: 0,
            }],
            &[],
        );
        let first_seen = catalog.view().services["web"]
            .get("web-1")
            .unwrap()
            .first_seen();
        let moved = instance("web-1", r#"{"address":"10.0.0.2","port":80,"tags":["a"]}"#);
        catalog.apply(
            &[InstanceChange {
                old: Some(one),
                new: Some(moved.clone()),
                source: 0,
            }],
            &[],
        );
        let view = catalog.view();
        assert_eq!(view.instances, 1);
        let entry = view.services["web"].get("web-1").unwrap();
        let Registration::Instance(instance) = &entry.registration else {
            panic!("a native registration");
        };
        assert_eq!(instance.address.to_string(), "10.0.0.2");
        assert_eq!(entry.first_seen(), first_seen, "a change keeps first seen");
        catalog.apply(
            &[InstanceChange {
                old: Some(moved),
                new: None,
                source: 0,
            }],
            &[],
        );
        assert!(catalog.view().services.is_empty());
        assert_eq!(catalog.view().instances, 0);
        let (events, latest) = catalog.timeline().since(0, 10);
        assert_eq!(latest, 3);
        let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.fields.clone())).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Added, vec![]),
                (ChangeKind::Changed, vec!["address", "tags"]),
                (ChangeKind::Removed, vec![]),
            ]
        );
        assert!(events.iter().all(|e| e.registry == "etcd://a/disco"));
    }
}
