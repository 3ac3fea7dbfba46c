//! Turns instance and SkyDNS entry changes into new snapshots, touching only
//! what changed: the services and addresses a batch of changes touches are
//! rebuilt once per batch, everything else is shared with the previous
//! snapshot.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::name_index::NameIndex;
use super::nodes::{InstanceNode, ReverseEntry, ServedDomain};
use super::reverse::ReverseIndex;
use super::service::{Moved, ServiceNode};
use super::skydns::SkyIndex;
use super::sorted_set::AddressSet;
use super::statics::StaticData;
use super::{DynNode, Snapshot};
use crate::dns::name::{NameKey, name_key};
use crate::dns::zonefile::ZoneFile;
use crate::model::{Instance, InstanceId, ServiceName, SkyEntry};

/// An instance before and after a change: the same service and id, `None`
/// for absent.
type Change = (Option<Arc<Instance>>, Option<Arc<Instance>>);

/// The service and id a change is about.
fn subject(change: &Change) -> (&ServiceName, &InstanceId) {
    let instance =
        (change.0.as_ref().or(change.1.as_ref())).expect("changes to nothing are dropped");
    (&instance.service, &instance.id)
}

/// The key of the name made of `labels` (lowercase, each valid) above
/// `zone`, a key itself.
fn key_of<'l>(labels: impl IntoIterator<Item = &'l str>, zone: &[u8]) -> NameKey {
    let mut key = Vec::with_capacity(64);
    for label in labels {
        key.push(label.len() as u8);
        key.extend_from_slice(label.as_bytes());
    }
    key.extend_from_slice(zone);
    key.into()
}

/// Groups `changes` by service and sorts each service's by id, keeping the
/// order of changes to one instance. A listing comes grouped already (the
/// registry keeps a store's order, and a store lists by key): then each
/// service's few changes are sorted where they are, in memory read in the
/// order it was written. Otherwise the whole batch is sorted by
/// [`sort_by_subject`].
fn group_by_subject(changes: &mut Vec<Change>) {
    let mut seen = HashSet::with_hasher(foldhash::fast::FixedState::default());
    let grouped = (changes.chunk_by(|a, b| subject(a).0 == subject(b).0))
        .all(|run| seen.insert(subject(&run[0]).0.as_str()));
    drop(seen);
    if !grouped {
        return sort_by_subject(changes);
    }
    for run in changes.chunk_by_mut(|a, b| subject(a).0 == subject(b).0) {
        // Stable, and all but free when the run is sorted already.
        run.sort_by(|a, b| subject(a).1.cmp(subject(b).1));
    }
}

/// Sorts `changes` by service, then id, keeping the order of changes to
/// one instance. Services come in the order of their names' hashes (that
/// each is together is all that matters), and their names are compared
/// only when two hash alike: a stable sort by the names compared strings
/// some 20 million times for a listing of a million instances, 30% of
/// building its first snapshot (bench/heap.rs).
fn sort_by_subject(changes: &mut Vec<Change>) {
    let hash = |service: &ServiceName| {
        let mut hasher = DefaultHasher::new();
        service.as_str().hash(&mut hasher);
        hasher.finish()
    };
    let mut order: Vec<(u64, usize)> = (changes.iter().enumerate())
        .map(|(at, change)| (hash(subject(change).0), at))
        .collect();
    order.sort_unstable_by(|&(hash_a, a), &(hash_b, b)| {
        let subjects = || subject(&changes[a]).cmp(&subject(&changes[b]));
        hash_a.cmp(&hash_b).then_with(subjects).then(a.cmp(&b))
    });
    let mut taken: Vec<Option<Change>> = changes.drain(..).map(Some).collect();
    changes.extend(order.into_iter().filter_map(|(_, at)| taken[at].take()));
}

/// The reverse entry at `address` once the nodes `moved` there have left
/// or arrived; `None` when no instance is left.
fn reverse_entry_after(
    &address: &IpAddr,
    moved: &[Moved],
    entry: Option<&ReverseEntry>,
) -> Option<ReverseEntry> {
    // Identities, sorted: a node is at one address, once.
    let mut gone: Vec<*const InstanceNode> = (moved.iter())
        .filter(|m| !m.added)
        .map(|m| Arc::as_ptr(&m.node))
        .collect();
    gone.sort_unstable();
    let stays = |node: &&Arc<InstanceNode>| gone.binary_search(&Arc::as_ptr(node)).is_err();
    let before = entry.map_or(&[][..], ReverseEntry::members);
    // A node added by one part of a listing may be gone by a later one
    // (a key listed twice, in two spellings): never within one batch.
    let added = moved.iter().filter(|m| m.added).map(|m| &m.node);
    let mut members: Vec<Arc<InstanceNode>> = (before.iter().filter(stays))
        .chain(added.filter(stays))
        .cloned()
        .collect();
    members.sort_by(|a, b| a.service_and_id().cmp(&b.service_and_id()));
    ReverseEntry::new(address, members)
}

/// Whether every name `instance` is answered at fits in a DNS name below
/// `zone`: the model bounds each label and the service name, not what they
/// add up to with the served domain, nor what hickory's names refuse. An
/// instance that does not fit is left out (as withdrawn), with a warning:
/// building its records would panic, and stop every update after it.
fn names_fit(instance: &Instance, zone: &Name) -> bool {
    if plainly_fits(instance, zone) {
        return true;
    }
    let fits = |relative: &str| {
        Name::from_ascii(relative)
            .and_then(|name| name.append_domain(zone))
            .is_ok()
    };
    let service = &instance.service;
    let protocol = instance.protocol.label();
    // The RFC 2782 name prefixes the service's first label with `_`: a
    // 63-byte label, valid alone, makes it 64 (found by fuzzing,
    // fuzz/seeds/registration/crash-service-label-63-bytes-rfc2782-name).
    let fit = fits(&format!("{}.{service}", instance.id))
        && fits(&format!("_{service}.{protocol}"))
        && (instance.tags.iter()).all(|tag| fits(&format!("{tag}.{service}")))
        && (instance.ports.keys()).all(|port| fits(&format!("_{port}.{protocol}.{service}")));
    if !fit {
        tracing::warn!(
            service = %service,
            instance = %instance.id,
            zone = %zone,
            "registration left out: its names do not fit in DNS names below the served domain"
        );
    }
    fit
}

/// The usual case, decided without building a name (which was a quarter
/// of a cold start's CPU, bench/scale.sh): every label is 1 to 62 bytes of
/// letters, digits, `-` and `_` (62, so that the `_` prefix of the RFC 2782
/// and named-port names still fits 63), and the longest name, with the
/// served domain, stays well under 255 bytes on the wire. Anything else
/// takes the careful path above.
fn plainly_fits(instance: &Instance, zone: &Name) -> bool {
    // One pass over the bytes: splitting at dots was a fifth of building
    // a million instances' first snapshot.
    let plain = |text: &str| {
        let mut label = 0;
        for &b in text.as_bytes() {
            if b == b'.' && label > 0 {
                label = 0;
            } else if (b.is_ascii_alphanumeric() || b == b'-' || b == b'_') && label < 62 {
                label += 1;
            } else {
                return false;
            }
        }
        label > 0
    };
    let service = instance.service.as_str();
    let id = instance.id.as_str();
    let tags = instance.tags.iter().map(|tag| &**tag);
    let longest_label = tags
        .clone()
        .chain(instance.ports.keys())
        .chain([id, instance.protocol.label()])
        .map(str::len)
        .max()
        .unwrap_or(0);
    // `_port.protocol.service.zone`, the longest of the names but for a
    // longer first label: two dots, an underscore, the root's byte.
    let longest = longest_label + instance.protocol.label().len() + service.len() + 4;
    longest + zone.len() <= 250
        && plain(service)
        && plain(id)
        && tags.clone().all(plain)
        && instance.ports.keys().all(plain)
}

/// Owns the mutable side of the index; hands out immutable [`Snapshot`]s
/// that share all unchanged nodes with the previous one.
#[derive(Debug)]
pub struct SnapshotBuilder {
    current: Snapshot,
    services: HashMap<ServiceName, Arc<ServiceNode>>,
    /// How many names need each empty non-terminal.
    empty_refs: HashMap<NameKey, usize>,
    /// The served domain's key, which every dynamic name ends in.
    zone_key: NameKey,
    /// Instance nodes that parts of a listing moved, for the reverse index
    /// to take in at the next [`SnapshotBuilder::apply`].
    deferred_moves: Vec<Moved>,
}

impl SnapshotBuilder {
    /// A builder serving `domain` (checked by [`crate::dns::validate_domain`]),
    /// with the static zones and no instances. Without a zone file for
    /// `domain`, its NS is synthesised as `ns.<domain>` with `ns_addresses`
    /// as its A and AAAA records.
    pub fn new(
        domain: &str,
        zone_files: Vec<ZoneFile>,
        default_ttl: u32,
        ns_addresses: &[IpAddr],
    ) -> Self {
        let mut domain = Name::from_ascii(domain).expect("domain validated with the configuration");
        domain.set_fqdn(true);
        let domain = &domain;
        // Without a zone file giving the domain's SOA or NS, its NS may come
        // from SkyDNS `ns.dns.<domain>` entries, as in CoreDNS.
        let apex_ns = !zone_files.iter().flat_map(|f| &f.records).any(|r| {
            matches!(r.record_type(), RecordType::SOA | RecordType::NS) && r.name == *domain
        });
        let statics = Arc::new(StaticData::new(
            zone_files,
            domain,
            default_ttl,
            ns_addresses,
        ));
        SnapshotBuilder {
            current: Snapshot {
                statics,
                names: NameIndex::default(),
                reverse: ReverseIndex::new(),
                addresses: AddressSet::new(),
                skydns: SkyIndex::new(domain.clone(), default_ttl, apex_ns),
                zone: ServedDomain {
                    name: domain.clone(),
                    default_ttl,
                },
                instances: 0,
            },
            services: HashMap::new(),
            empty_refs: HashMap::new(),
            zone_key: name_key(domain),
            deferred_moves: Vec::new(),
        }
    }

    /// The name servers of the static zones (the served domain's included)
    /// that have no address in them: a resolver delegated to such a zone
    /// cannot reach it. Each as (zone, name server).
    pub fn name_servers_without_address(&self) -> Vec<(String, String)> {
        self.current.statics.name_servers_without_address()
    }

    /// The snapshot as of the last change: cheap, it shares every node.
    pub fn snapshot(&self) -> Snapshot {
        self.current.clone()
    }

    /// Applies one batch of instance changes: each is an instance before
    /// and after (same service and id; `None` for absent), in the order they
    /// happened. Every service and address the batch touches is rebuilt
    /// once, whatever the number of changes to it.
    pub fn apply(
        &mut self,
        changes: impl IntoIterator<Item = (Option<Arc<Instance>>, Option<Arc<Instance>>)>,
    ) {
        let mut moved = std::mem::take(&mut self.deferred_moves);
        self.rebuild_services(changes, &mut moved);
        self.update_reverse(moved);
        self.current.names.settle();
    }

    /// Applies part of a listing as [`SnapshotBuilder::apply`] does, but
    /// leaves the reverse index to the next `apply`, which takes in every
    /// part's addresses at once: the index is a sorted map, and a part of
    /// a listing touches all of it, so updating it for each part would copy
    /// it whole each time. What [`SnapshotBuilder::snapshot`] returns
    /// meanwhile has no PTR for these parts: hold it back.
    pub fn apply_part(
        &mut self,
        changes: impl IntoIterator<Item = (Option<Arc<Instance>>, Option<Arc<Instance>>)>,
    ) {
        let mut moved = std::mem::take(&mut self.deferred_moves);
        self.rebuild_services(changes, &mut moved);
        self.deferred_moves = moved;
    }

    /// Rebuilds every service `changes` touch, adding the instance nodes
    /// they moved to `moved`.
    fn rebuild_services(
        &mut self,
        changes: impl IntoIterator<Item = (Option<Arc<Instance>>, Option<Arc<Instance>>)>,
        moved: &mut Vec<Moved>,
    ) {
        // Collected in place when the caller's changes are a vector.
        let mut changes: Vec<Change> = (changes.into_iter())
            .filter(|(old, new)| old.is_some() || new.is_some())
            .collect();
        // Grouped by service, sorted by id; of several changes to one
        // instance the last one is last, and says what holds now.
        group_by_subject(&mut changes);
        changes.dedup_by(|later, kept| {
            let same = subject(later) == subject(kept);
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let zone = self.current.zone.name.clone();
        for changes in changes.chunk_by(|a, b| subject(a).0 == subject(b).0) {
            // A new instance whose names do not fit is as absent. Checked
            // here, a service at a time, rather than as the batch is
            // collected: its instances are then still in the cache when
            // the service is rebuilt (a tenth of a million-instance cold
            // start was this check fetching each instance from memory).
            let now = (changes.iter()).map(|c| {
                (
                    subject(c).1,
                    c.1.as_ref().filter(|new| names_fit(new, &zone)),
                )
            });
            self.rebuild_service(subject(&changes[0]).0, now, moved);
        }
        self.current.skydns.next_version();
    }

    fn rebuild_service<'c>(
        &mut self,
        service: &ServiceName,
        changes: impl ExactSizeIterator<Item = (&'c InstanceId, Option<&'c Arc<Instance>>)>,
        moved: &mut Vec<Moved>,
    ) {
        let before = self.services.remove(service);
        let after = ServiceNode::rebuild(before.as_deref(), service, changes, moved).map(Arc::new);
        match (&before, &after) {
            // The same names, now the rebuilt node's: set over the old,
            // with no removal between (a removal from a name table is a
            // change of its own, a tenth of a churned batch's time).
            (Some(before), Some(after))
                if before.rfc2782_protocols().eq(after.rfc2782_protocols()) =>
            {
                self.relink(after)
            }
            _ => {
                if let Some(before) = &before {
                    self.unlink(before);
                }
                if let Some(after) = &after {
                    self.link(after);
                }
            }
        }
        if let Some(before) = &before {
            self.current.instances -= before.all.members().len();
        }
        if let Some(after) = after {
            self.current.instances += after.all.members().len();
            self.services.insert(service.clone(), after);
        }
    }

    /// Updates the reverse index for the instance nodes a batch moved:
    /// each address they left or came to is rebuilt once.
    fn update_reverse(&mut self, moved: Vec<Moved>) {
        let mut addresses = Vec::new();
        let entry_after = |address: IpAddr, moved: &[Moved], entry: Option<&ReverseEntry>| {
            let after = reverse_entry_after(&address, moved, entry);
            addresses.push((address, after.is_some()));
            after
        };
        (self.current.reverse).update(moved, |m| m.address, entry_after);
        self.current.addresses.update(addresses);
    }

    /// Replaces the SkyDNS entry `old` (if any) of `source` with `new` (if
    /// any). Both have the same key.
    pub fn apply_record(
        &mut self,
        source: usize,
        old: Option<&Arc<SkyEntry>>,
        new: Option<&Arc<SkyEntry>>,
    ) {
        if let Some(old) = old {
            self.current.skydns.remove(source, old);
        }
        if let Some(new) = new {
            self.current.skydns.insert(source, new.clone());
        }
    }

    /// The names a service occupies in the index besides its own: its RFC
    /// 2782 names, and the empty non-terminals above them and above it.
    /// Keys are built as bytes from the service's labels and the zone's
    /// key, not through hickory names: a change links and unlinks its
    /// service, and building names for it was a fifth of the change's cost
    /// (bench/heap.rs's churn under callgrind).
    fn occupied(&self, service: &Arc<ServiceNode>) -> (Vec<(NameKey, DynNode)>, Vec<NameKey>) {
        let zone = &self.zone_key;
        let mut names = Vec::new();
        let mut empties = Vec::new();
        for protocol in service.rfc2782_protocols() {
            let label = service.name().as_str();
            let owner = key_of([&format!("_{label}"), protocol.label()], zone);
            names.push((owner, DynNode::Rfc2782(service.clone(), protocol)));
            empties.push(key_of([protocol.label()], zone));
        }
        // The names between the service's and the zone's: `billing.<zone>`
        // above `api.billing.<zone>`.
        let labels: Vec<&str> = service.name().as_str().split('.').collect();
        for first in 1..labels.len() {
            empties.push(key_of(labels[first..].iter().copied(), zone));
        }
        (names, empties)
    }

    /// The key of the service's own name.
    fn own_key(&self, service: &ServiceNode) -> NameKey {
        key_of(service.name().as_str().split('.'), &self.zone_key)
    }

    fn link(&mut self, service: &Arc<ServiceNode>) {
        let (names, empties) = self.occupied(service);
        self.set_names(service, names);
        for key in empties {
            *self.empty_refs.entry(key.clone()).or_default() += 1;
            // A service or RFC 2782 name there takes precedence.
            if !self.current.names.contains_key(&key) {
                self.current.names.insert(key, DynNode::Empty);
            }
        }
    }

    /// Points the names a service occupies at its rebuilt node, which
    /// occupies the same names (its RFC 2782 names are those of the node
    /// it replaces): the empty non-terminals around it stay as they are.
    fn relink(&mut self, service: &Arc<ServiceNode>) {
        let (names, _) = self.occupied(service);
        self.set_names(service, names);
    }

    /// Sets the service's own name and `names` (its RFC 2782 names).
    fn set_names(&mut self, service: &Arc<ServiceNode>, names: Vec<(NameKey, DynNode)>) {
        let own = self.own_key(service);
        (self.current.names).insert(own, DynNode::Service(service.clone()));
        for (key, node) in names {
            self.current.names.insert(key, node);
        }
    }

    fn unlink(&mut self, service: &Arc<ServiceNode>) {
        let (names, empties) = self.occupied(service);
        let own = self.own_key(service);
        self.current.names.remove(&own);
        for (key, _) in &names {
            self.current.names.remove(key);
        }
        for key in empties {
            let refs = self.empty_refs.get_mut(&key).expect("linked before");
            *refs -= 1;
            if *refs == 0 {
                self.empty_refs.remove(&key);
                if matches!(self.current.names.get(&key), Some(DynNode::Empty)) {
                    self.current.names.remove(&key);
                }
            }
        }
        // Names this service shadowed as empty non-terminals come back.
        for key in std::iter::once(own).chain(names.into_iter().map(|(k, _)| k)) {
            if self.empty_refs.contains_key(&key) && !self.current.names.contains_key(&key) {
                self.current.names.insert(key, DynNode::Empty);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::snapshot::Lookup;
    use crate::model::parse_native;

    fn instance(service: &str, id: &str, json: &str) -> Arc<Instance> {
        Arc::new(parse_native(service, id, json.as_bytes()).unwrap())
    }

    fn builder() -> SnapshotBuilder {
        SnapshotBuilder::new("disco.internal.", Vec::new(), 30, &[])
    }

    /// What the snapshot answers, as text: the encoded answer, or the kind
    /// of negative answer.
    fn answer(snapshot: &Snapshot, name: &str, qtype: RecordType) -> String {
        let key = name_key(&Name::from_ascii(name).unwrap());
        match snapshot.lookup(&key, qtype) {
            Lookup::Answer(answer) => format!("{answer:?}"),
            Lookup::NoData(_) => "NODATA".into(),
            Lookup::NxDomain(_) => "NXDOMAIN".into(),
            Lookup::NotAuthoritative | Lookup::Refused => "REFUSED".into(),
        }
    }

    /// Found by fuzzing (fuzz/seeds/registration/
    /// native-names-too-long-for-the-domain): a 199-byte service and a
    /// 63-byte id are each valid, but not together below the domain, and
    /// building the instance's name panicked the snapshot writer. Likewise a 63-byte
    /// service label, whose RFC 2782 name `_<label>._tcp` has a 64-byte
    /// label (crash-service-label-63-bytes-rfc2782-name).
    #[test]
    fn an_instance_whose_names_do_not_fit_is_left_out_and_the_rest_served() {
        let long_service = vec!["a".repeat(49); 4].join(".");
        let long_port = format!(
            r#"{{"address":"10.9.0.1","ports":{{"{}":2}}}}"#,
            "c".repeat(63)
        );
        let too_long = [
            instance(&long_service, &"b".repeat(63), r#"{"address":"10.9.0.1"}"#),
            instance(&vec!["a".repeat(49); 3].join("."), "x", &long_port),
            instance(&"d".repeat(63), "x", r#"{"address":"10.9.0.1","port":80}"#),
        ];
        let mut builder = builder();
        let web = instance("web", "web-1", r#"{"address":"10.0.0.1","port":80}"#);
        let changes = too_long.iter().map(|i| (None, Some(i.clone())));
        builder.apply(changes.chain([(None, Some(web))]));
        let snapshot = builder.snapshot();
        assert_eq!(snapshot.instances(), 1);
        assert_ne!(
            answer(&snapshot, "web.disco.internal.", RecordType::A),
            "NXDOMAIN"
        );
        // Withdrawing what was left out changes nothing.
        builder.apply(too_long.iter().map(|i| (Some(i.clone()), None)));
        assert_eq!(builder.snapshot().instances(), 1);
    }

    #[test]
    fn a_rebuilt_service_s_rfc2782_names_follow_its_instances_protocols() {
        let mut builder = builder();
        let tcp = instance("web", "web-1", r#"{"address":"10.0.0.1","port":80}"#);
        let moved = instance("web", "web-1", r#"{"address":"10.0.0.3","port":80}"#);
        let udp = instance(
            "web",
            "web-2",
            r#"{"address":"10.0.0.2","port":53,"protocol":"udp"}"#,
        );
        let srv = |builder: &SnapshotBuilder, name: &str| {
            answer(&builder.snapshot(), name, RecordType::SRV)
        };
        builder.apply([(None, Some(tcp.clone()))]);
        assert_eq!(srv(&builder, "_web._udp.disco.internal."), "NXDOMAIN");
        let before = srv(&builder, "_web._tcp.disco.internal.");
        // The same names, pointed at the rebuilt service.
        builder.apply([(Some(tcp.clone()), Some(moved.clone()))]);
        let after = srv(&builder, "_web._tcp.disco.internal.");
        // The moved address is in the additional section now.
        assert!(after != before && after != "NXDOMAIN", "{after}");
        // A name more, then one fewer.
        builder.apply([(None, Some(udp.clone()))]);
        assert_ne!(srv(&builder, "_web._udp.disco.internal."), "NXDOMAIN");
        assert_ne!(srv(&builder, "_udp.disco.internal."), "NXDOMAIN");
        builder.apply([(Some(udp), None)]);
        assert_eq!(srv(&builder, "_web._udp.disco.internal."), "NXDOMAIN");
        assert_eq!(srv(&builder, "_udp.disco.internal."), "NXDOMAIN");
        assert_eq!(srv(&builder, "_web._tcp.disco.internal."), after);
        builder.apply([(Some(moved), None)]);
        assert_eq!(srv(&builder, "_web._tcp.disco.internal."), "NXDOMAIN");
        assert_eq!(srv(&builder, "_tcp.disco.internal."), "NXDOMAIN");
    }

    const NAMES: [&str; 9] = [
        "web.disco.internal.",
        "_web._tcp.disco.internal.",
        "_http._tcp.web.disco.internal.",
        "v2.web.disco.internal.",
        "v2.canary.web.disco.internal.",
        "web-1.web.disco.internal.",
        "web-2.web.disco.internal.",
        "1.0.0.10.in-addr.arpa.",
        "2.0.0.10.in-addr.arpa.",
    ];

    fn answers(snapshot: &Snapshot) -> Vec<String> {
        let types = [RecordType::A, RecordType::SRV, RecordType::PTR];
        NAMES
            .iter()
            .flat_map(|name| types.map(|qtype| answer(snapshot, name, qtype)))
            .collect()
    }

    #[test]
    fn a_batch_answers_as_its_changes_applied_one_by_one() {
        let web_1 = instance(
            "web",
            "web-1",
            r#"{"address":"10.0.0.1","port":80,"ports":{"http":80},"tags":["v2"]}"#,
        );
        let web_1_moved = instance(
            "web",
            "web-1",
            r#"{"address":"10.0.0.2","port":80,"tags":["v2","canary"]}"#,
        );
        let web_2 = instance("web", "web-2", r#"{"address":"10.0.0.2","port":81}"#);
        let web_3 = instance("web", "web-3", r#"{"address":"10.0.0.1","tags":["v2"]}"#);
        let changes = [
            (None, Some(web_1.clone())),
            (None, Some(web_3.clone())),
            (None, Some(web_2.clone())),
            (Some(web_1.clone()), Some(web_1_moved.clone())),
            (Some(web_3.clone()), None),
        ];
        let mut batched = builder();
        batched.apply(changes.clone());
        let mut one_by_one = builder();
        for change in changes {
            one_by_one.apply([change]);
        }
        assert_eq!(batched.snapshot().instances(), 2);
        assert_eq!(
            answers(&batched.snapshot()),
            answers(&one_by_one.snapshot())
        );
        // And both as if the batch's net effect had been applied at once.
        let mut net = builder();
        net.apply([(None, Some(web_2)), (None, Some(web_1_moved))]);
        assert_eq!(answers(&batched.snapshot()), answers(&net.snapshot()));
    }

    #[test]
    fn a_listing_built_in_parts_answers_as_the_whole_batch_with_its_reverse_names() {
        let web_1 = instance("web", "web-1", r#"{"address":"10.0.0.1","port":80}"#);
        let web_2 = instance("web", "web-2", r#"{"address":"10.0.0.2","port":81}"#);
        // The same instance again in a later part, elsewhere (a key listed
        // twice in two spellings): the first address leaves.
        let web_1_again = instance("web", "web-1", r#"{"address":"10.0.0.2","port":80}"#);
        let mut parts = builder();
        parts.apply_part([(None, Some(web_1.clone()))]);
        parts.apply_part([(None, Some(web_2.clone()))]);
        parts.apply([(Some(web_1), Some(web_1_again.clone()))]);
        let mut whole = builder();
        whole.apply([(None, Some(web_1_again)), (None, Some(web_2))]);
        assert_eq!(answers(&parts.snapshot()), answers(&whole.snapshot()));
        let ptr_count = |name| {
            let key = name_key(&Name::from_ascii(name).unwrap());
            match parts.snapshot().lookup(&key, RecordType::PTR) {
                Lookup::Answer(answer) => answer.answer_count(),
                _ => 0,
            }
        };
        assert_eq!(ptr_count("1.0.0.10.in-addr.arpa."), 0);
        assert_eq!(ptr_count("2.0.0.10.in-addr.arpa."), 2);
    }

    #[test]
    fn changes_are_grouped_by_service_and_sorted_by_id_keeping_each_instance_s_order() {
        let at = |service: &str, id: &str, address: &str| {
            let json = format!(r#"{{"address":"{address}"}}"#);
            Some(instance(service, id, &json))
        };
        let summary = |changes: &[Change]| -> Vec<String> {
            (changes.iter())
                .map(|c| {
                    let now =
                        c.1.as_ref()
                            .map_or("gone".into(), |i| i.address.to_string());
                    let (service, id) = subject(c);
                    format!("{}/{} {now}", service.as_str(), id.as_str())
                })
                .collect()
        };
        // As a listing comes: each service together, its ids in any order.
        let mut listed = vec![
            (None, at("web", "web-2", "10.0.0.2")),
            (None, at("web", "web-1", "10.0.0.1")),
            (at("web", "web-1", "10.0.0.1"), None),
            (None, at("db", "db-1", "10.0.1.1")),
        ];
        group_by_subject(&mut listed);
        assert_eq!(
            summary(&listed),
            [
                "web/web-1 10.0.0.1",
                "web/web-1 gone",
                "web/web-2 10.0.0.2",
                "db/db-1 10.0.1.1"
            ]
        );
        // As a watch delivers them: a service comes back after another.
        let mut watched = vec![
            (None, at("web", "web-2", "10.0.0.2")),
            (None, at("db", "db-1", "10.0.1.1")),
            (None, at("web", "web-1", "10.0.0.1")),
            (
                at("web", "web-2", "10.0.0.2"),
                at("web", "web-2", "10.0.0.3"),
            ),
        ];
        group_by_subject(&mut watched);
        let mut services = summary(&watched);
        services.dedup_by(|a, b| a.split('/').next() == b.split('/').next());
        assert_eq!(services.len(), 2, "each service together: {watched:?}");
        let web: Vec<String> = (summary(&watched).into_iter())
            .filter(|c| c.starts_with("web/"))
            .collect();
        assert_eq!(
            web,
            [
                "web/web-1 10.0.0.1",
                "web/web-2 10.0.0.2",
                "web/web-2 10.0.0.3"
            ]
        );
    }

    #[test]
    fn an_instance_put_and_withdrawn_in_one_batch_leaves_nothing() {
        let web_1 = instance("web", "web-1", r#"{"address":"10.0.0.1"}"#);
        let mut builder = builder();
        builder.apply([(None, Some(web_1.clone())), (Some(web_1), None)]);
        let snapshot = builder.snapshot();
        assert_eq!(snapshot.instances(), 0);
        assert_eq!(
            answer(&snapshot, "web.disco.internal.", RecordType::A),
            "NXDOMAIN"
        );
        assert!(builder.services.is_empty());
    }

    #[test]
    fn subsets_a_batch_does_not_change_are_kept_with_their_answers() {
        let web_1 = instance("web", "web-1", r#"{"address":"10.0.0.1","tags":["a"]}"#);
        let web_2 = instance("web", "web-2", r#"{"address":"10.0.0.2","tags":["b"]}"#);
        let mut builder = builder();
        builder.apply([(None, Some(web_1)), (None, Some(web_2.clone()))]);
        let before = builder.services.values().next().unwrap().clone();
        // Asked, so built: a subset nobody asked for is built when it is.
        let (a, b) = (
            before.tag("a").unwrap().clone(),
            before.tag("b").unwrap().clone(),
        );
        let web_2_moved = instance("web", "web-2", r#"{"address":"10.0.0.3","tags":["b"]}"#);
        builder.apply([(Some(web_2), Some(web_2_moved))]);
        let after = builder.services.values().next().unwrap().clone();
        assert!(Arc::ptr_eq(&a, after.tag("a").unwrap()));
        assert!(!Arc::ptr_eq(&b, after.tag("b").unwrap()));
        assert!(Arc::ptr_eq(
            &before.all.members()[0],
            &after.all.members()[0]
        ));
    }

    #[test]
    fn an_asked_pair_of_tags_is_carried_into_the_rebuilt_service_while_it_exists() {
        let tagged = |id: &str, address: &str, tags: &str| {
            let json = format!(r#"{{"address":"{address}","port":80,"tags":[{tags}]}}"#);
            instance("web", id, &json)
        };
        let web_1 = tagged("web-1", "10.0.0.1", r#""v2","canary""#);
        let web_2 = tagged("web-2", "10.0.0.2", r#""v2""#);
        let mut builder = builder();
        builder.apply([(None, Some(web_1.clone())), (None, Some(web_2.clone()))]);
        let name = "canary.v2.web.disco.internal.";
        let asked = answer(&builder.snapshot(), name, RecordType::A);
        assert_ne!(asked, "NXDOMAIN");
        let service = builder.services.values().next().unwrap().clone();
        let pair = service.pair_subsets.built().next().unwrap().1.clone();
        let ids: Vec<_> = pair.members().iter().map(|n| n.id()).collect();
        assert_eq!(ids, ["web-1"]);
        // Another instance changes: the pair keeps its node and answers.
        let web_2_moved = tagged("web-2", "10.0.0.3", r#""v2""#);
        builder.apply([(Some(web_2), Some(web_2_moved))]);
        let service = builder.services.values().next().unwrap().clone();
        assert!(Arc::ptr_eq(
            service.pair_subsets.built().next().unwrap().1,
            &pair
        ));
        assert_eq!(answer(&builder.snapshot(), name, RecordType::A), asked);
        // Its one member drops a tag: no instance carries both any more.
        let web_1_plain = tagged("web-1", "10.0.0.1", r#""v2""#);
        builder.apply([(Some(web_1), Some(web_1_plain))]);
        assert_eq!(answer(&builder.snapshot(), name, RecordType::A), "NXDOMAIN");
        let service = builder.services.values().next().unwrap().clone();
        assert_eq!(service.pair_subsets.built().count(), 0);
    }

    #[test]
    fn instances_sharing_an_address_share_its_reverse_name_until_one_leaves() {
        let web_1 = instance("web", "web-1", r#"{"address":"10.0.0.1"}"#);
        let api_1 = instance("api", "api-1", r#"{"address":"10.0.0.1"}"#);
        let ptr_count = |builder: &SnapshotBuilder| {
            let key = name_key(&Name::from_ascii("1.0.0.10.in-addr.arpa.").unwrap());
            match builder.snapshot().lookup(&key, RecordType::PTR) {
                Lookup::Answer(answer) => answer.answer_count(),
                _ => 0,
            }
        };
        let mut builder = builder();
        builder.apply([(None, Some(web_1.clone())), (None, Some(api_1))]);
        assert_eq!(ptr_count(&builder), 2);
        builder.apply([(Some(web_1), None)]);
        assert_eq!(ptr_count(&builder), 1);
    }
}
