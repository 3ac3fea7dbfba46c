//! The nodes of the dynamic part of a snapshot: instances, the subsets of a
//! service they are answered in (the whole service, a tag filter, a named
//! port, the RFC 2782 name), and the instances sharing an address.
//!
//! Nodes are immutable and shared between snapshots: a batch of changes
//! rebuilds only the services and addresses it touches. Each node encodes
//! its answers lazily, once per query type, and keeps them for as long as it
//! lives.
//!
//! A server holds one instance node per registration, 100,000 or more, so
//! they are kept small: no DNS names (a hickory `Name` is larger than the
//! rest of the node; names are built when an answer is first encoded), and
//! no answer slots until the first query, which most nodes never get.

use std::borrow::Borrow;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::rr::{Name, Record, RecordType};
use once_cell::race::OnceBox;

use crate::dns::answer::{Sections, WireAnswer};
use crate::dns::records;
use crate::model::{Instance, Protocol, ServiceName};

/// What encoding an answer needs besides the node: the served domain, which
/// instance names end in, and the TTL of registrations that set none. (Not
/// a zone: the zone files' records are `statics`.)
#[derive(Debug, Clone)]
pub(crate) struct ServedDomain {
    pub(crate) name: Name,
    pub(crate) default_ttl: u32,
}

/// What an instance's own name answers.
const INSTANCE_TYPES: [RecordType; 5] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::ANY,
];

/// What a subset's name answers (metadata is answered per instance only).
const SUBSET_TYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::ANY,
];

/// What an address's reverse name answers.
const REVERSE_TYPES: [RecordType; 2] = [RecordType::PTR, RecordType::ANY];

/// The slot of `qtype` in a node's table; `None` means the node has no data
/// of that type.
fn slot(types: &[RecordType], qtype: RecordType) -> Option<usize> {
    types.iter().position(|&t| t == qtype)
}

/// Lazily encoded answers, `N` slots; `None` in a slot means NODATA. The
/// slots are allocated on the first query, so a node never asked anything
/// pays one pointer for them: a `OnceBox` rather than a `OnceLock`, whose
/// state word made it 16 bytes and an instance's node 48 with its `Arc`
/// (mimalloc's class) rather than 32, 15 MiB at a million instances. Two
/// threads asking a fresh node at once may each allocate the slots; one
/// keeps them. Reading a filled slot takes two atomic loads and no lock.
struct AnswerCache<const N: usize> {
    slots: OnceBox<[OnceLock<Option<WireAnswer>>; N]>,
}

impl<const N: usize> Default for AnswerCache<N> {
    fn default() -> Self {
        AnswerCache {
            slots: OnceBox::new(),
        }
    }
}

impl<const N: usize> std::fmt::Debug for AnswerCache<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerCache")
    }
}

impl<const N: usize> AnswerCache<N> {
    /// The answer in `slot`, encoded by `encode` the first time.
    fn get(&self, slot: usize, encode: impl FnOnce() -> Option<WireAnswer>) -> Option<&WireAnswer> {
        let slots = self
            .slots
            .get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        slots[slot].get_or_init(encode).as_ref()
    }
}

fn encode(owner: &Name, qtype: RecordType, sections: Option<Sections>) -> Option<WireAnswer> {
    sections.map(|sections| WireAnswer::encode(owner, qtype, &sections))
}

/// Which instances of a service a subset holds; it also gives the
/// subset's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Every instance, at the service's name (`web.<zone>`).
    All,
    /// Instances with this tag (`primary.web.<zone>`).
    Tag(Box<str>),
    /// Instances with both of these different tags, at the name that gives
    /// them in this order (`v2.primary.web.<zone>`).
    Tags(Box<str>, Box<str>),
    /// Instances with a port of this name over this protocol
    /// (`_http._tcp.web.<zone>`): SRV only, with that port.
    Port(Box<str>, Protocol),
    /// Instances over this protocol, at the RFC 2782 name
    /// (`_web._tcp.<zone>`): SRV only.
    Rfc2782(Protocol),
}

/// One registered instance, answered at its own name
/// (`web-1.web.disco.internal.`), and at its address's reverse name while
/// no other instance has that address.
#[derive(Debug)]
pub(crate) struct InstanceNode {
    pub(crate) instance: Arc<Instance>,
    /// Its own name's answers (`INSTANCE_TYPES`), then its address's
    /// (`REVERSE_TYPES`): one allocation for both, made on the first query.
    cache: AnswerCache<{ INSTANCE_TYPES.len() + REVERSE_TYPES.len() }>,
}

// One per instance: two pointers, so that with its `Arc`'s counts it is
// mimalloc's 32-byte class.
const _: () = assert!(std::mem::size_of::<InstanceNode>() == 16);

impl InstanceNode {
    pub(crate) fn new(instance: Arc<Instance>) -> Self {
        InstanceNode {
            instance,
            cache: AnswerCache::default(),
        }
    }

    /// Its id: what subsets are sorted and searched by.
    pub(crate) fn id(&self) -> &str {
        self.instance.id.as_str()
    }

    /// Its service and id: the order instances sharing an address are
    /// answered in.
    pub(crate) fn service_and_id(&self) -> (&str, &str) {
        (self.instance.service.as_str(), self.id())
    }

    /// `web-1.web.disco.internal.`: its own name, and the target of SRV
    /// records pointing at it.
    pub(crate) fn name(&self, zone: &ServedDomain) -> Name {
        records::instance_name(&self.instance, &zone.name)
    }

    fn ttl(&self, default_ttl: u32) -> u32 {
        self.instance.ttl.unwrap_or(default_ttl)
    }

    pub(crate) fn answer(&self, qtype: RecordType, zone: &ServedDomain) -> Option<&WireAnswer> {
        self.cache.get(slot(&INSTANCE_TYPES, qtype)?, || {
            let name = self.name(zone);
            encode(&name, qtype, self.sections(&name, qtype, zone))
        })
    }

    /// The sections of its answer to `qtype` at its own name, `name`;
    /// `None` for NODATA.
    pub(crate) fn sections(
        &self,
        name: &Name,
        qtype: RecordType,
        zone: &ServedDomain,
    ) -> Option<Sections> {
        let i = &self.instance;
        let ttl = self.ttl(zone.default_ttl);
        let mut sections = Sections::default();
        match qtype {
            RecordType::A | RecordType::AAAA | RecordType::ANY
                if qtype == RecordType::ANY || address_type(i.address) == qtype =>
            {
                sections
                    .answers
                    .push(records::address_record(name, i.address, ttl));
            }
            RecordType::SRV => {
                let port = i.port?;
                sections
                    .answers
                    .push(records::srv_record(name, i, port, name, ttl));
                sections
                    .additionals
                    .push(records::address_record(name, i.address, ttl));
            }
            RecordType::TXT => sections.answers.extend(records::meta_record(name, i, ttl)),
            _ => {}
        }
        (!sections.answers.is_empty()).then_some(sections)
    }

    /// The answer at its address's reverse name, for when it is the only
    /// instance there: then the answer depends on nothing but this node.
    fn reverse_answer(&self, qtype: RecordType, zone: &ServedDomain) -> Option<&WireAnswer> {
        let at = INSTANCE_TYPES.len() + slot(&REVERSE_TYPES, qtype)?;
        self.cache.get(at, || {
            reverse_answer(self.instance.address, &[self], qtype, zone)
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
    service: ServiceName,
    selection: Selection,
    /// Sorted by id, ids unique.
    members: Box<[Arc<InstanceNode>]>,
    /// The members by the hash of their id, built on the first search.
    by_id: OnceLock<Box<[(u32, u32)]>>,
    cache: AnswerCache<{ SUBSET_TYPES.len() }>,
}

/// Which `members` a search by id reads: each member's id hashed, with
/// its index, sorted. A binary search over the members reads three blocks
/// a step (the node, its instance, the id), each mostly a cache miss at a
/// million instances; this reads one small array, then the member it
/// names. Instances' names and names below a service that are none, at a
/// million: 101,000 answers/s against 97,000 (`bench/cold_start.sh` with
/// `QUERIES`, medians of 5; `BENCHMARKS.md`). Built the first time a
/// member is asked for, a pass over the members, as the subsets below a
/// service are.
fn id_index(members: &[Arc<InstanceNode>]) -> Box<[(u32, u32)]> {
    let mut index: Vec<(u32, u32)> = (members.iter().zip(0..))
        .map(|(node, at)| (id_hash(node.id()), at))
        .collect();
    index.sort_unstable();
    index.into_boxed_slice()
}

/// An id's hash, the same in every process: the ids come from
/// registrations, and a collision costs only one more comparison.
fn id_hash(id: &str) -> u32 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(id) as u32
}

impl Subset {
    /// The `selection` of `service`'s instances: `members`, sorted by id.
    pub(crate) fn new(
        service: ServiceName,
        selection: Selection,
        members: Box<[Arc<InstanceNode>]>,
    ) -> Self {
        debug_assert!(members.is_sorted_by(|a, b| a.id() < b.id()));
        Subset {
            service,
            selection,
            members,
            by_id: OnceLock::new(),
            cache: AnswerCache::default(),
        }
    }

    /// A subset like this one with other members (sorted by id): a fresh
    /// node, with nothing cached.
    pub(crate) fn with_members(&self, members: Box<[Arc<InstanceNode>]>) -> Self {
        Subset::new(self.service.clone(), self.selection.clone(), members)
    }

    /// The service it selects from.
    pub(crate) fn service(&self) -> &ServiceName {
        &self.service
    }

    /// The name it is answered at.
    pub(crate) fn owner(&self, zone: &Name) -> Name {
        let service = || records::service_name(&self.service, zone);
        match &self.selection {
            Selection::All => service(),
            Selection::Tag(tag) => records::tag_name(&[tag], &service()),
            Selection::Tags(first, second) => records::tag_name(&[first, second], &service()),
            Selection::Port(name, protocol) => {
                records::named_port_name(name, *protocol, &service())
            }
            Selection::Rfc2782(protocol) => records::rfc2782_name(&self.service, *protocol, zone),
        }
    }

    /// Whether it answers SRV only (`_service._proto` names).
    fn srv_only(&self) -> bool {
        matches!(self.selection, Selection::Port(..) | Selection::Rfc2782(_))
    }

    /// The port its SRV records give for `instance`.
    fn port_of(&self, instance: &Instance) -> Option<u16> {
        match &self.selection {
            Selection::Port(name, _) => instance.ports.get(name).copied(),
            _ => instance.port,
        }
    }

    /// The members, sorted by id.
    pub(crate) fn members(&self) -> &[Arc<InstanceNode>] {
        &self.members
    }

    /// The member with id `id`.
    pub(crate) fn member(&self, id: &str) -> Option<&InstanceNode> {
        let index = self.by_id.get_or_init(|| id_index(&self.members));
        let hash = id_hash(id);
        let first = index.partition_point(|&(h, _)| h < hash);
        (index[first..].iter())
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, at)| &*self.members[at as usize])
            .find(|node| node.id() == id)
    }

    /// Whether `members` are this subset's, node for node: then the subset
    /// can stay, with the answers it has cached.
    pub(crate) fn has_members(&self, members: &[Arc<InstanceNode>]) -> bool {
        self.members.len() == members.len()
            && self
                .members
                .iter()
                .zip(members)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }

    pub(crate) fn answer(&self, qtype: RecordType, zone: &ServedDomain) -> Option<&WireAnswer> {
        self.cache.get(slot(&SUBSET_TYPES, qtype)?, || {
            let owner = self.owner(&zone.name);
            encode(&owner, qtype, self.sections(&owner, qtype, zone))
        })
    }

    /// The sections of its answer to `qtype` at its name, `owner`; `None`
    /// for NODATA.
    pub(crate) fn sections(
        &self,
        owner: &Name,
        qtype: RecordType,
        zone: &ServedDomain,
    ) -> Option<Sections> {
        let port_of = |i: &Instance| self.port_of(i);
        subset_sections(owner, &self.members, port_of, self.srv_only(), qtype, zone)
    }
}

/// Builds the answer for a set of instances under `owner`.
pub(crate) fn subset_sections(
    owner: &Name,
    members: &[impl Borrow<InstanceNode>],
    port_of: impl Fn(&Instance) -> Option<u16>,
    srv_only: bool,
    qtype: RecordType,
    zone: &ServedDomain,
) -> Option<Sections> {
    let members = || members.iter().map(Borrow::borrow);
    // RFC 2181 §5.2: one TTL per RRset, the smallest asked for.
    let ttl = members().map(|n| n.ttl(zone.default_ttl)).min()?;
    let mut sections = Sections::default();
    let qtype = if qtype == RecordType::ANY {
        // RFC 8482: one RRset, never the whole node.
        if srv_only {
            RecordType::SRV
        } else {
            [RecordType::A, RecordType::AAAA]
                .into_iter()
                .find(|&t| members().any(|n| address_type(n.instance.address) == t))?
        }
    } else {
        qtype
    };
    match qtype {
        RecordType::A | RecordType::AAAA if !srv_only => {
            sections.shuffle = true;
            for node in members().filter(|n| address_type(n.instance.address) == qtype) {
                sections
                    .answers
                    .push(records::address_record(owner, node.instance.address, ttl));
            }
        }
        RecordType::SRV => {
            for node in members() {
                if let Some(port) = port_of(&node.instance) {
                    let target = node.name(zone);
                    sections.answers.push(records::srv_record(
                        owner,
                        &node.instance,
                        port,
                        &target,
                        ttl,
                    ));
                    // The target's address RRset, with the TTL it has at
                    // its own name, not the SRV set's.
                    sections.additionals.push(records::address_record(
                        &target,
                        node.instance.address,
                        node.ttl(zone.default_ttl),
                    ));
                }
            }
        }
        _ => {}
    }
    (!sections.answers.is_empty()).then_some(sections)
}

/// The instances registered at one address, answered as PTR.
#[derive(Debug, Clone)]
pub(crate) enum ReverseEntry {
    /// The usual case, one instance: it caches the answer itself, which
    /// saves a node per address.
    One(Arc<InstanceNode>),
    /// Several instances.
    Many(Arc<ReverseNode>),
}

impl ReverseEntry {
    /// The entry for `members`, sorted by [`InstanceNode::service_and_id`];
    /// `None` if empty.
    pub(crate) fn new(address: IpAddr, mut members: Vec<Arc<InstanceNode>>) -> Option<Self> {
        match members.len() {
            0 => None,
            1 => members.pop().map(ReverseEntry::One),
            _ => Some(ReverseEntry::Many(Arc::new(ReverseNode {
                address,
                members: members.into_boxed_slice(),
                cache: AnswerCache::default(),
            }))),
        }
    }

    /// The instances at the address, sorted by service and id.
    pub(crate) fn members(&self) -> &[Arc<InstanceNode>] {
        match self {
            ReverseEntry::One(node) => std::slice::from_ref(node),
            ReverseEntry::Many(node) => &node.members,
        }
    }

    pub(crate) fn answer(&self, qtype: RecordType, zone: &ServedDomain) -> Option<&WireAnswer> {
        match self {
            ReverseEntry::One(node) => node.reverse_answer(qtype, zone),
            ReverseEntry::Many(node) => node.cache.get(slot(&REVERSE_TYPES, qtype)?, || {
                reverse_answer(node.address, &node.members, qtype, zone)
            }),
        }
    }
}

/// Several instances sharing one address.
#[derive(Debug)]
pub(crate) struct ReverseNode {
    address: IpAddr,
    /// Sorted by service and id.
    members: Box<[Arc<InstanceNode>]>,
    cache: AnswerCache<{ REVERSE_TYPES.len() }>,
}

/// The PTR answer at `address`'s reverse name: one record per member.
fn reverse_answer(
    address: IpAddr,
    members: &[impl Borrow<InstanceNode>],
    qtype: RecordType,
    zone: &ServedDomain,
) -> Option<WireAnswer> {
    let owner = records::arpa_name(address);
    let answers = ptr_records(&owner, members, zone);
    if answers.is_empty() {
        return None;
    }
    let sections = Sections {
        answers,
        ..Sections::default()
    };
    encode(&owner, qtype, Some(sections))
}

/// The PTR records at `owner`, an address's reverse name: one per instance
/// there, all with the smallest TTL among them.
pub(crate) fn ptr_records(
    owner: &Name,
    members: &[impl Borrow<InstanceNode>],
    zone: &ServedDomain,
) -> Vec<Record> {
    let members = || members.iter().map(Borrow::borrow);
    let Some(ttl) = members().map(|n| n.ttl(zone.default_ttl)).min() else {
        return Vec::new();
    };
    members()
        .map(|n| records::ptr_record(owner, &n.name(zone), ttl))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_native;

    fn node(id: &str, json: &str) -> Arc<InstanceNode> {
        let instance = parse_native("web", id, json.as_bytes()).unwrap();
        Arc::new(InstanceNode::new(Arc::new(instance)))
    }

    #[test]
    fn every_member_is_found_by_its_id_and_no_other_name_is() {
        let mut members: Vec<_> = (0..1000)
            .map(|n| node(&format!("web-{n}"), r#"{"address":"10.0.0.1"}"#))
            .collect();
        members.sort_by(|a, b| a.id().cmp(b.id()));
        let service = ServiceName::new("web").unwrap();
        let all = Subset::new(service, Selection::All, members.into());
        for n in 0..1000 {
            let id = format!("web-{n}");
            assert_eq!(all.member(&id).map(InstanceNode::id), Some(&*id));
        }
        for missing in ["web-1000", "web", "", "primary", "web-01"] {
            assert!(all.member(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn rfc2181_srv_answers_share_one_ttl_and_addresses_keep_their_own() {
        let zone = ServedDomain {
            name: Name::from_ascii("disco.internal.").unwrap(),
            default_ttl: 5,
        };
        let members = [
            node("web-1", r#"{"address":"10.0.0.1","port":80,"ttl":3}"#),
            node("web-2", r#"{"address":"10.0.0.2","port":80,"ttl":60}"#),
        ];
        let owner = Name::from_ascii("web.disco.internal.").unwrap();
        let sections =
            subset_sections(&owner, &members, |i| i.port, false, RecordType::SRV, &zone).unwrap();
        let ttls = |records: &[hickory_proto::rr::Record]| {
            records.iter().map(|r| r.ttl).collect::<Vec<_>>()
        };
        assert_eq!(ttls(&sections.answers), [3, 3]);
        // As `web-2.web.disco.internal. A` is answered on its own.
        assert_eq!(ttls(&sections.additionals), [3, 60]);
    }
}
