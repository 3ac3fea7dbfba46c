//! SkyDNS entries in the catalog: where an entry appears ([`sky_place`]),
//! how a batch's entry changes update the view and the timeline, and which
//! of an entry's fields changed.

use std::time::SystemTime;

use super::{Catalog, ChangeEvent, ChangeKind, Entry, Registration, View};
use crate::model::SkyEntry;
use crate::registry::RecordChange;

/// Where a SkyDNS entry named `name` appears in the catalog of `domain`:
/// (service, instance id), both relative to the domain. The first label is
/// the instance and the rest the service (`x1.web` is `x1` of `web`: what
/// CoreDNS answers for `web.<domain>` is every entry at or below it). An
/// entry one label below the domain (`/skydns/internal/disco/web`) is
/// the lone instance `web` of service `web`. `None` for the domain itself
/// and for names outside it (reverse entries): answered, but not services.
pub fn sky_place<'a>(name: &'a str, domain: &str) -> Option<(&'a str, &'a str)> {
    let domain = domain.trim_end_matches('.');
    let relative = name.strip_suffix(domain)?.strip_suffix('.')?;
    if relative.is_empty() {
        return None;
    }
    Some(match relative.split_once('.') {
        Some((id, service)) => (service, id),
        None => (relative, relative),
    })
}

impl Catalog {
    /// Takes one change of a SkyDNS entry into `view` and the timeline.
    pub(super) fn apply_record(&self, view: &mut View, change: &RecordChange, now: SystemTime) {
        let (kind, fields, entry) = match (&change.old, &change.new) {
            (None, Some(new)) => (ChangeKind::Added, Vec::new(), new),
            (Some(old), None) => (ChangeKind::Removed, Vec::new(), old),
            (Some(old), Some(new)) => (ChangeKind::Changed, changed_sky_fields(old, new), new),
            (None, None) => return,
        };
        let Some((service, id)) = sky_place(&entry.name, &self.domain) else {
            return;
        };
        let key = entry.key.as_str();
        match &change.new {
            Some(new) => {
                let instances = view.services.entry(service.to_owned()).or_default();
                let first_seen = instances.get(key).map_or(now, Entry::first_seen);
                let registration = Registration::SkyDns(new.clone());
                if (instances.insert(Entry::new(registration, change.source, first_seen))).is_none()
                {
                    view.instances += 1;
                }
            }
            None => {
                let Some(instances) = view.services.get_mut(service) else {
                    return;
                };
                if instances.remove(key).is_some() {
                    view.instances -= 1;
                }
                if instances.is_empty() {
                    view.services.remove(service);
                }
            }
        }
        self.timeline.push(ChangeEvent {
            seq: 0,
            time: now,
            registry: self.registry_name(change.source).to_owned(),
            kind,
            service: Some(service.to_owned()),
            instance: Some(id.to_owned()),
            fields,
            detail: None,
        });
    }
}

/// The fields that differ between two SkyDNS entries at one key, by the
/// names the store gives them.
pub fn changed_sky_fields(old: &SkyEntry, new: &SkyEntry) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut differs = |name, differ: bool| {
        if differ {
            fields.push(name);
        }
    };
    differs("host", old.host != new.host);
    differs("port", old.port != new.port);
    differs("priority", old.priority != new.priority);
    differs("weight", old.weight != new.weight);
    differs("text", old.text != new.text);
    differs("ttl", old.ttl != new.ttl || old.lease_ttl != new.lease_ttl);
    differs("targetstrip", old.target_strip != new.target_strip);
    differs("group", old.group != new.group);
    fields
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn sky(key: &str, json: &str) -> Arc<SkyEntry> {
        Arc::new(crate::model::parse_skydns("/skydns", key, json.as_bytes(), None).unwrap())
    }

    #[test]
    fn skydns_entries_are_instances_of_the_name_above_them() {
        assert_eq!(
            sky_place("x1.web.disco.internal", "disco.internal"),
            Some(("web", "x1"))
        );
        assert_eq!(
            sky_place("x1.api.billing.disco.internal", "disco.internal."),
            Some(("api.billing", "x1"))
        );
        assert_eq!(
            sky_place("web.disco.internal", "disco.internal"),
            Some(("web", "web"))
        );
        assert_eq!(sky_place("disco.internal", "disco.internal"), None);
        assert_eq!(sky_place("5.0.0.10.in-addr.arpa", "disco.internal"), None);
        assert_eq!(sky_place("xdisco.internal", "disco.internal"), None);

        let catalog = Catalog::new(vec!["skydns+etcd://a/skydns".into()], "disco.internal", 10);
        let x1 = sky(
            "/skydns/internal/disco/web/x1",
            r#"{"host":"10.0.0.1","port":80}"#,
        );
        let lone = sky("/skydns/internal/disco/web", r#"{"host":"db.example.org"}"#);
        let reverse = sky(
            "/skydns/arpa/in-addr/10/0/0/1",
            r#"{"host":"x1.web.disco.internal"}"#,
        );
        let put = |entry: &Arc<SkyEntry>| RecordChange {
            source: 0,
            old: None,
            new: Some(entry.clone()),
        };
        catalog.apply(&[], &[put(&x1), put(&lone), put(&reverse)]);
        let view = catalog.view();
        assert_eq!(view.instances, 2, "the reverse entry is no service");
        let web = &view.services["web"];
        let ids: Vec<&str> = web.values().map(Entry::id).collect();
        assert_eq!(ids, ["web", "x1"], "keyed by store key, one per key");
        let moved = sky(
            "/skydns/internal/disco/web/x1",
            r#"{"host":"10.0.0.2","port":80,"text":"t"}"#,
        );
        catalog.apply(
            &[],
            &[RecordChange {
                source: 0,
                old: Some(x1),
                new: Some(moved.clone()),
            }],
        );
        catalog.apply(
            &[],
            &[RecordChange {
                source: 0,
                old: Some(moved),
                new: None,
            }],
        );
        assert_eq!(catalog.view().instances, 1);
        let (events, _) = catalog.timeline().since(0, 10);
        let seen: Vec<_> = (events.iter())
            .map(|e| {
                (
                    e.kind,
                    e.service.clone().unwrap(),
                    e.instance.clone().unwrap(),
                    e.fields.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (ChangeKind::Added, "web".into(), "x1".into(), vec![]),
                (ChangeKind::Added, "web".into(), "web".into(), vec![]),
                (
                    ChangeKind::Changed,
                    "web".into(),
                    "x1".into(),
                    vec!["host", "text"]
                ),
                (ChangeKind::Removed, "web".into(), "x1".into(), vec![]),
            ]
        );
    }
}
