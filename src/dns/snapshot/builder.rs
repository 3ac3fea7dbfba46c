//! Turns instance and SkyDNS entry changes into new snapshots, touching only
//! what changed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::nodes::{InstanceNode, ReverseNode, ServiceNode};
use super::skydns::SkyIndex;
use super::statics::StaticData;
use super::{DynNode, NameKey, Snapshot, name_key};
use crate::dns::records;
use crate::dns::zonefile::ZoneFile;
use crate::model::{Instance, ServiceName, SkyEntry};

/// Owns the mutable side of the index; hands out immutable [`Snapshot`]s
/// that share all unchanged nodes with the previous one.
#[derive(Debug)]
pub struct SnapshotBuilder {
    domain: Name,
    current: Snapshot,
    services: HashMap<ServiceName, Arc<ServiceNode>>,
    /// How many names need each empty non-terminal.
    empty_refs: HashMap<NameKey, usize>,
}

impl SnapshotBuilder {
    /// A builder serving `domain` (checked by [`crate::dns::validate_domain`]),
    /// with the static zones and no instances.
    pub fn new(domain: &str, zone_files: Vec<ZoneFile>, default_ttl: u32) -> Self {
        let mut domain = Name::from_ascii(domain).expect("domain validated with the configuration");
        domain.set_fqdn(true);
        let domain = &domain;
        // Without a zone file giving the domain's SOA or NS, its NS may come
        // from SkyDNS `ns.dns.<domain>` entries, as in CoreDNS.
        let apex_ns = !zone_files.iter().flat_map(|f| &f.records).any(|r| {
            matches!(r.record_type(), RecordType::SOA | RecordType::NS) && r.name == *domain
        });
        let statics = Arc::new(StaticData::new(zone_files, domain, default_ttl));
        SnapshotBuilder {
            domain: domain.clone(),
            current: Snapshot {
                statics,
                names: imbl::HashMap::new(),
                reverse: imbl::HashMap::new(),
                skydns: SkyIndex::new(domain.clone(), default_ttl, apex_ns),
                default_ttl,
                instances: 0,
            },
            services: HashMap::new(),
            empty_refs: HashMap::new(),
        }
    }

    /// The snapshot as of the last change: cheap, it shares every node.
    pub fn snapshot(&self) -> Snapshot {
        self.current.clone()
    }

    /// Replaces `old` (if any) with `new` (if any). Both describe the same
    /// service and instance id.
    pub fn apply(&mut self, old: Option<&Arc<Instance>>, new: Option<&Arc<Instance>>) {
        let Some(service_name) = old.or(new).map(|i| i.service.clone()) else {
            return;
        };
        let mut service = match self.services.get(&service_name).cloned() {
            Some(node) => {
                self.unlink(node.clone());
                (*node).clone()
            }
            None => ServiceNode::new(records::service_name(&service_name, &self.domain)),
        };
        if let Some(old) = old {
            service.remove(old);
            self.update_reverse(old.address, |members| {
                members.remove(&(Arc::from(old.service.as_str()), old.id.clone()));
            });
            self.current.instances -= 1;
        }
        if let Some(new) = new {
            let node = Arc::new(InstanceNode::new(new.clone(), &self.domain));
            service.insert(node.clone(), &self.domain);
            self.update_reverse(new.address, |members| {
                members.insert((Arc::from(new.service.as_str()), new.id.clone()), node);
            });
            self.current.instances += 1;
        }
        if service.is_empty() {
            self.services.remove(&service_name);
        } else {
            let service = Arc::new(service);
            self.link(service.clone());
            self.services.insert(service_name, service);
        }
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

    fn update_reverse(
        &mut self,
        address: IpAddr,
        change: impl FnOnce(&mut imbl::OrdMap<(Arc<str>, crate::model::InstanceId), Arc<InstanceNode>>),
    ) {
        let node = self
            .current
            .reverse
            .get(&address)
            .cloned()
            .unwrap_or_else(|| Arc::new(ReverseNode::new(address)));
        let mut members = node.members.clone();
        change(&mut members);
        if members.is_empty() {
            self.current.reverse.remove(&address);
        } else {
            self.current
                .reverse
                .insert(address, Arc::new(node.with_members(members)));
        }
    }

    /// The names a service occupies in the index besides its own: its RFC
    /// 2782 names, and the empty non-terminals above them and above it.
    fn occupied(&self, service: &ServiceNode) -> (Vec<(NameKey, DynNode)>, Vec<NameKey>) {
        let mut names = Vec::new();
        let mut empties = Vec::new();
        for subset in service.rfc2782.iter().flatten() {
            names.push((name_key(&subset.owner), DynNode::Rfc2782(subset.clone())));
            empties.push(name_key(&subset.owner.base_name()));
        }
        let mut ancestor = service.all.owner.base_name();
        while ancestor.num_labels() > self.domain.num_labels() {
            empties.push(name_key(&ancestor));
            ancestor = ancestor.base_name();
        }
        (names, empties)
    }

    fn link(&mut self, service: Arc<ServiceNode>) {
        let (names, empties) = self.occupied(&service);
        self.current
            .names
            .insert(name_key(&service.all.owner), DynNode::Service(service));
        for (key, node) in names {
            self.current.names.insert(key, node);
        }
        for key in empties {
            *self.empty_refs.entry(key.clone()).or_default() += 1;
            // A service or RFC 2782 name there takes precedence.
            if !self.current.names.contains_key(&key) {
                self.current.names.insert(key, DynNode::Empty);
            }
        }
    }

    fn unlink(&mut self, service: Arc<ServiceNode>) {
        let (names, empties) = self.occupied(&service);
        let own = name_key(&service.all.owner);
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
