//! The nodes of the dynamic part of a snapshot: services, their subsets (tag
//! filters, named ports, the RFC 2782 name), instances and reverse entries.
//!
//! Nodes are immutable and shared between snapshots: a registration rebuilds
//! only the nodes it touches, in O(log n) each, with persistent maps. Each
//! node encodes its answers lazily, once per query type, and keeps them for
//! as long as the node lives.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::{Name, RecordType};
use imbl::OrdMap;

use crate::dns::answer::{Sections, WireAnswer};
use crate::dns::records;
use crate::model::{Instance, InstanceId, Protocol};

/// The query types a dynamic node can answer, each with a cache slot.
const CACHED_TYPES: [RecordType; 6] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::PTR,
    RecordType::ANY,
];

/// Lazily encoded answers, one per query type; `None` inside means NODATA.
#[derive(Default)]
pub(crate) struct AnswerCache {
    slots: [OnceLock<Option<WireAnswer>>; CACHED_TYPES.len()],
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerCache")
    }
}

impl AnswerCache {
    /// The answer for `qtype`, encoding it with `build` the first time.
    /// Types outside the cached set have no data at dynamic nodes.
    pub(crate) fn get(
        &self,
        owner: &Name,
        qtype: RecordType,
        build: impl FnOnce(RecordType) -> Option<Sections>,
    ) -> Option<&WireAnswer> {
        let slot = CACHED_TYPES.iter().position(|&t| t == qtype)?;
        self.slots[slot]
            .get_or_init(|| {
                build(qtype).map(|sections| WireAnswer::encode(owner, qtype, &sections))
            })
            .as_ref()
    }
}

/// Which port of its members a subset answers SRV with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortChoice {
    /// The primary `port`.
    Primary,
    /// The port with this name.
    Named(Box<str>),
}

/// One registered instance and its own name (`web-1.web.disco.internal.`).
#[derive(Debug)]
pub(crate) struct InstanceNode {
    pub(crate) instance: Arc<Instance>,
    pub(crate) name: Name,
    cache: AnswerCache,
}

impl InstanceNode {
    pub(crate) fn new(instance: Arc<Instance>, zone: &Name) -> Self {
        let name = records::instance_name(&instance, zone);
        InstanceNode {
            instance,
            name,
            cache: AnswerCache::default(),
        }
    }

    fn ttl(&self, default_ttl: u32) -> u32 {
        self.instance.ttl.unwrap_or(default_ttl)
    }

    pub(crate) fn answer(&self, qtype: RecordType, default_ttl: u32) -> Option<&WireAnswer> {
        self.cache.get(&self.name, qtype, |qtype| {
            let i = &self.instance;
            let ttl = self.ttl(default_ttl);
            let mut sections = Sections::default();
            match qtype {
                RecordType::A | RecordType::AAAA | RecordType::ANY
                    if qtype == RecordType::ANY || address_type(i.address) == qtype =>
                {
                    sections
                        .answers
                        .push(records::address_record(&self.name, i.address, ttl));
                }
                RecordType::SRV => {
                    let port = i.port?;
                    sections
                        .answers
                        .push(records::srv_record(&self.name, i, port, &self.name, ttl));
                    sections
                        .additionals
                        .push(records::address_record(&self.name, i.address, ttl));
                }
                RecordType::TXT => sections
                    .answers
                    .extend(records::meta_record(&self.name, i, ttl)),
                _ => {}
            }
            (!sections.answers.is_empty()).then_some(sections)
        })
    }
}

fn address_type(address: IpAddr) -> RecordType {
    match address {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

/// A set of instances answered under one name: the whole service, one tag,
/// one named port, or the RFC 2782 name.
#[derive(Debug)]
pub(crate) struct Subset {
    pub(crate) owner: Name,
    pub(crate) port: PortChoice,
    /// `_service._proto` names answer SRV only.
    pub(crate) srv_only: bool,
    pub(crate) members: OrdMap<InstanceId, Arc<InstanceNode>>,
    cache: AnswerCache,
}

impl Subset {
    pub(crate) fn new(owner: Name, port: PortChoice, srv_only: bool) -> Self {
        Subset {
            owner,
            port,
            srv_only,
            members: OrdMap::new(),
            cache: AnswerCache::default(),
        }
    }

    /// A copy with `node` added or replaced; shares everything else.
    pub(crate) fn with(&self, node: Arc<InstanceNode>) -> Self {
        let mut members = self.members.clone();
        members.insert(node.instance.id.clone(), node);
        self.replaced(members)
    }

    /// A copy without the instance `id`.
    pub(crate) fn without(&self, id: &InstanceId) -> Self {
        let mut members = self.members.clone();
        members.remove(id);
        self.replaced(members)
    }

    fn replaced(&self, members: OrdMap<InstanceId, Arc<InstanceNode>>) -> Self {
        Subset {
            owner: self.owner.clone(),
            port: self.port.clone(),
            srv_only: self.srv_only,
            members,
            cache: AnswerCache::default(),
        }
    }

    fn port_of(&self, instance: &Instance) -> Option<u16> {
        match &self.port {
            PortChoice::Primary => instance.port,
            PortChoice::Named(name) => instance.ports.get(name).copied(),
        }
    }

    pub(crate) fn answer(&self, qtype: RecordType, default_ttl: u32) -> Option<&WireAnswer> {
        self.cache.get(&self.owner, qtype, |qtype| {
            let members: Vec<&InstanceNode> = self.members.values().map(|n| &**n).collect();
            subset_sections(
                &self.owner,
                &members,
                |i| self.port_of(i),
                self.srv_only,
                qtype,
                default_ttl,
            )
        })
    }
}

/// Builds the answer for a set of instances under `owner`. Shared by cached
/// subsets and by tag intersections computed per query.
pub(crate) fn subset_sections(
    owner: &Name,
    members: &[&InstanceNode],
    port_of: impl Fn(&Instance) -> Option<u16>,
    srv_only: bool,
    qtype: RecordType,
    default_ttl: u32,
) -> Option<Sections> {
    // RFC 2181 §5.2: one TTL per RRset, the smallest asked for.
    let ttl = members.iter().map(|n| n.ttl(default_ttl)).min()?;
    let mut sections = Sections::default();
    let qtype = if qtype == RecordType::ANY {
        // RFC 8482: one RRset, never the whole node.
        if srv_only {
            RecordType::SRV
        } else {
            [RecordType::A, RecordType::AAAA].into_iter().find(|&t| {
                members
                    .iter()
                    .any(|n| address_type(n.instance.address) == t)
            })?
        }
    } else {
        qtype
    };
    match qtype {
        RecordType::A | RecordType::AAAA if !srv_only => {
            sections.shuffle = true;
            for node in members
                .iter()
                .filter(|n| address_type(n.instance.address) == qtype)
            {
                sections
                    .answers
                    .push(records::address_record(owner, node.instance.address, ttl));
            }
        }
        RecordType::SRV => {
            for node in members {
                if let Some(port) = port_of(&node.instance) {
                    sections.answers.push(records::srv_record(
                        owner,
                        &node.instance,
                        port,
                        &node.name,
                        ttl,
                    ));
                    sections.additionals.push(records::address_record(
                        &node.name,
                        node.instance.address,
                        ttl,
                    ));
                }
            }
        }
        _ => {}
    }
    (!sections.answers.is_empty()).then_some(sections)
}

/// Everything registered under one service name.
#[derive(Debug, Clone)]
pub(crate) struct ServiceNode {
    pub(crate) all: Arc<Subset>,
    pub(crate) tags: imbl::HashMap<Box<str>, Arc<Subset>>,
    pub(crate) ports: imbl::HashMap<(Box<str>, Protocol), Arc<Subset>>,
    /// `_web._tcp` and `_web._udp` (one-label services only).
    pub(crate) rfc2782: [Option<Arc<Subset>>; 2],
}

fn protocol_slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    }
}

impl ServiceNode {
    pub(crate) fn new(owner: Name) -> Self {
        ServiceNode {
            all: Arc::new(Subset::new(owner, PortChoice::Primary, false)),
            tags: imbl::HashMap::new(),
            ports: imbl::HashMap::new(),
            rfc2782: [None, None],
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.all.members.is_empty()
    }

    /// Removes `instance` from every subset it is in; empty subsets go.
    pub(crate) fn remove(&mut self, instance: &Instance) {
        let id = &instance.id;
        self.all = Arc::new(self.all.without(id));
        for tag in &instance.tags {
            shrink(&mut self.tags, tag.clone(), id);
        }
        for name in instance.ports.keys() {
            shrink(&mut self.ports, (name.into(), instance.protocol), id);
        }
        let slot = &mut self.rfc2782[protocol_slot(instance.protocol)];
        if let Some(subset) = slot.take() {
            let subset = subset.without(id);
            *slot = (!subset.members.is_empty()).then(|| Arc::new(subset));
        }
    }

    /// Adds `node` to the subsets its instance belongs in.
    pub(crate) fn insert(&mut self, node: Arc<InstanceNode>, zone: &Name) {
        let instance = node.instance.clone();
        let owner = self.all.owner.clone();
        self.all = Arc::new(self.all.with(node.clone()));
        for tag in &instance.tags {
            let subset = self.tags.get(&**tag).map_or_else(
                || {
                    Subset::new(
                        records::tag_name(&[tag], &owner),
                        PortChoice::Primary,
                        false,
                    )
                    .with(node.clone())
                },
                |s| s.with(node.clone()),
            );
            self.tags.insert(tag.clone(), Arc::new(subset));
        }
        for name in instance.ports.keys() {
            let key: (Box<str>, Protocol) = (name.into(), instance.protocol);
            let subset = self.ports.get(&key).map_or_else(
                || {
                    let owner = records::named_port_name(name, instance.protocol, &owner);
                    Subset::new(owner, PortChoice::Named(name.into()), true).with(node.clone())
                },
                |s| s.with(node.clone()),
            );
            self.ports.insert(key, Arc::new(subset));
        }
        if instance.service.is_single_label() {
            let slot = &mut self.rfc2782[protocol_slot(instance.protocol)];
            let subset = slot.as_ref().map_or_else(
                || {
                    let owner = records::rfc2782_name(&instance.service, instance.protocol, zone);
                    Subset::new(owner, PortChoice::Primary, true).with(node.clone())
                },
                |s| s.with(node.clone()),
            );
            *slot = Some(Arc::new(subset));
        }
    }
}

fn shrink<K: std::hash::Hash + Eq + Clone>(
    map: &mut imbl::HashMap<K, Arc<Subset>>,
    key: K,
    id: &InstanceId,
) {
    if let Some(subset) = map.get(&key) {
        let subset = subset.without(id);
        if subset.members.is_empty() {
            map.remove(&key);
        } else {
            map.insert(key, Arc::new(subset));
        }
    }
}

/// The instances registered at one address, answered as PTR.
#[derive(Debug)]
pub(crate) struct ReverseNode {
    pub(crate) owner: Name,
    pub(crate) members: OrdMap<(Arc<str>, InstanceId), Arc<InstanceNode>>,
    cache: AnswerCache,
}

impl ReverseNode {
    pub(crate) fn new(address: IpAddr) -> Self {
        ReverseNode {
            owner: records::arpa_name(address),
            members: OrdMap::new(),
            cache: AnswerCache::default(),
        }
    }

    pub(crate) fn with_members(
        &self,
        members: OrdMap<(Arc<str>, InstanceId), Arc<InstanceNode>>,
    ) -> Self {
        ReverseNode {
            owner: self.owner.clone(),
            members,
            cache: AnswerCache::default(),
        }
    }

    pub(crate) fn answer(&self, qtype: RecordType, default_ttl: u32) -> Option<&WireAnswer> {
        self.cache.get(&self.owner, qtype, |qtype| {
            if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
                return None;
            }
            let ttl = self.members.values().map(|n| n.ttl(default_ttl)).min()?;
            let answers = self
                .members
                .values()
                .map(|n| records::ptr_record(&self.owner, &n.name, ttl))
                .collect();
            Some(Sections {
                answers,
                ..Sections::default()
            })
        })
    }
}
