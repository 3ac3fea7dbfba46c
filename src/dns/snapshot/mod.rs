//! The snapshot: an immutable, indexed view of everything disco answers for,
//! swapped atomically on every update. The query path reads only this.
//!
//! Every lookup is a handful of probes (a hash lookup per label of the
//! question name at most, then a binary search within a service or a shard
//! of addresses), never a scan, so positive and negative answers cost about
//! the same with ten instances or a hundred thousand, and a name of 127
//! labels about what a name of three costs. SkyDNS entries (CoreDNS's
//! format, see `skydns`) answer a name with its whole subtree: one more
//! probe, and a range scan the first time a name is asked. Whatever a
//! client asks, the answer is bytes encoded once per version of the data
//! it reads, or a negative answer, or REFUSED: no question makes disco
//! scan or encode per query.
//!
//! Precedence under the served domain: zone-file records, then native
//! services, then SkyDNS entries; a name any of them has is NODATA, not
//! NXDOMAIN, for the types none of them answers.

mod builder;
// Test-only: the snapshot as RRsets, for the reference server the
// differential fuzz target and the parity test compare disco with.
#[cfg(feature = "fuzzing")]
mod listing;
mod name_index;
mod nodes;
mod reverse;
mod service;
mod sharded;
mod skydns;
mod sorted_set;
mod statics;
#[cfg(test)]
mod tests;
mod versioned;

use std::ops::Deref;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::IpNet;

pub use builder::SnapshotBuilder;
#[cfg(feature = "fuzzing")]
pub use listing::RrSet;
pub use statics::Apex;

use crate::dns::answer::{Sections, WireAnswer};
use crate::dns::name::{label_offsets, name_key};
use crate::dns::records;
use crate::model::Protocol;
use name_index::NameIndex;
use nodes::ServedDomain;
use reverse::ReverseIndex;
use service::ServiceNode;
use skydns::{SkyIndex, SkyLookup};
use sorted_set::AddressSet;
use statics::StaticData;

/// What a name in the dynamic index is.
#[derive(Debug, Clone)]
pub(crate) enum DynNode {
    /// A service name; names below it are resolved through it.
    Service(Arc<ServiceNode>),
    /// `_web._tcp.<domain>`: the service's RFC 2782 subset over that
    /// protocol.
    Rfc2782(Arc<ServiceNode>, Protocol),
    /// Exists only because names below it do (`_tcp.<domain>`, `billing.`
    /// above `api.billing.`).
    Empty,
}

/// An immutable view of the registry and the zone files.
#[derive(Debug, Clone)]
pub struct Snapshot {
    statics: Arc<StaticData>,
    names: NameIndex,
    /// An entry per address, as many as instances: see `reverse`.
    reverse: ReverseIndex,
    /// The same addresses, ordered: whether a network has any (the reverse
    /// names above an address exist, RFC 8020).
    addresses: AddressSet,
    skydns: SkyIndex,
    zone: ServedDomain,
    instances: usize,
}

/// The outcome of looking a question up in the snapshot.
#[derive(Debug)]
pub enum Lookup<'s> {
    /// A positive answer.
    Answer(AnswerRef<'s>),
    /// The name exists without data of that type.
    NoData(&'s Apex),
    /// The name does not exist in a zone disco serves.
    NxDomain(&'s Apex),
    /// Not a name disco is authoritative for: forward it or refuse.
    NotAuthoritative,
    /// A name disco serves, but a question it declines (REFUSED, never
    /// forwarded): a SkyDNS wildcard pattern beyond those its subtree
    /// answers, which would cost a scan.
    Refused,
}

/// A positive answer, encoded before the question came.
#[derive(Debug, Clone)]
pub enum AnswerRef<'s> {
    /// Kept by a node of the snapshot for as long as the node lives.
    Borrowed(&'s WireAnswer),
    /// Kept for one version of the snapshot: an answer that reads names
    /// whose data can change while its node stays.
    Shared(Arc<WireAnswer>),
}

impl Deref for AnswerRef<'_> {
    type Target = WireAnswer;

    fn deref(&self) -> &WireAnswer {
        match self {
            AnswerRef::Borrowed(answer) => answer,
            AnswerRef::Shared(answer) => answer,
        }
    }
}

impl Snapshot {
    /// Number of registered instances.
    pub fn instances(&self) -> usize {
        self.instances
    }

    /// Looks up a lowercase wire-format name.
    pub fn lookup(&self, key: &[u8], qtype: RecordType) -> Lookup<'_> {
        let offsets = label_offsets(key);
        let offsets = offsets.as_slice();
        let apex = self.apex_of(key, offsets);
        let others = |name: &Name, qtype| self.answered_before_entries(name, qtype);
        let Some((apex, apex_at)) = apex else {
            return self
                .lookup_reverse(key, qtype)
                .unwrap_or(Lookup::NotAuthoritative);
        };
        // The zone's NS from `ns.dns.<zone>` entries, unless a zone file
        // gives them (CoreDNS answers NS at the apex from there).
        if qtype == RecordType::NS
            && apex.dynamic
            && *key == *apex.key
            && self.skydns.answers_apex_ns()
            && let SkyLookup::Answer(answer) = self.skydns.lookup(key, qtype, &others)
        {
            return Lookup::Answer(answer);
        }
        let static_node = self.statics.nodes.get(key);
        if let Some((chain, held)) = static_node.and_then(|node| node.open_chain(qtype))
            && let Some(answer) =
                held.get(self.skydns.version(), || self.continue_chain(chain, qtype))
        {
            return Lookup::Answer(AnswerRef::Shared(answer));
        }
        if let Some(answer) = static_node.and_then(|node| node.answer(qtype)) {
            return Lookup::Answer(AnswerRef::Borrowed(answer));
        }
        if apex.dynamic {
            let native = self.lookup_native(key, offsets, apex_at, qtype, apex);
            if let Some(Lookup::Answer(answer)) = native {
                return Lookup::Answer(answer);
            }
            match self.skydns.lookup(key, qtype, &others) {
                SkyLookup::Answer(answer) => return Lookup::Answer(answer),
                SkyLookup::NoData => return Lookup::NoData(apex),
                SkyLookup::Refused => return Lookup::Refused,
                SkyLookup::Absent => {}
            }
            if native.is_some() {
                return Lookup::NoData(apex);
            }
        }
        match self.lookup_reverse(key, qtype) {
            Some(Lookup::Answer(answer)) => return Lookup::Answer(answer),
            // A zone file serves this part of a reverse tree: its SOA.
            Some(_) => return Lookup::NoData(apex),
            None => {}
        }
        if static_node.is_some() {
            return Lookup::NoData(apex);
        }
        Lookup::NxDomain(apex)
    }

    /// The zone `key` is in, the most specific one, and the offset of its
    /// apex in `key` (`offsets` are its labels'). Only suffixes with no
    /// more labels than the longest apex are probed: a name of 127 labels
    /// costs what a name of three does.
    fn apex_of(&self, key: &[u8], offsets: &[u8]) -> Option<(&Apex, usize)> {
        let deepest = offsets.len().saturating_sub(self.statics.apex_labels);
        (offsets[deepest..].iter())
            .map(|&at| at as usize)
            .chain([key.len() - 1])
            .find_map(|at| {
                self.statics
                    .apexes
                    .get(&key[at..])
                    .map(|apex| (&**apex, at))
            })
    }

    /// A zone file's CNAME chain followed into what the rest of the
    /// snapshot answers at its last target (RFC 1034 §4.3.2: an
    /// authoritative server goes on at the canonical name), so that a stub
    /// resolver, which never chases a CNAME itself, gets the addresses.
    /// `None` when the target has no such data: the chain stands alone.
    /// Kept for one version of the snapshot (the caller's `held`): the
    /// registered data changes under the static chain.
    fn continue_chain(&self, chain: &[Record], qtype: RecordType) -> Option<WireAnswer> {
        let RData::CNAME(target) = &chain.last()?.data else {
            return None;
        };
        // The target has no CNAME in the zone files (see `open_chain`), so
        // this lookup does not come back here.
        let Lookup::Answer(found) = self.lookup(&name_key(&target.0), qtype) else {
            return None;
        };
        let found = found.sections();
        let sections = Sections {
            answers: chain.iter().cloned().chain(found.answers).collect(),
            additionals: found.additionals,
            ..Sections::default()
        };
        Some(WireAnswer::encode(&chain[0].name, qtype, &sections))
    }

    /// What native services say about a name in the served domain: an
    /// answer, NODATA, or `None` when they do not have the name.
    fn lookup_native<'s>(
        &'s self,
        key: &[u8],
        offsets: &[u8],
        apex_at: usize,
        qtype: RecordType,
        apex: &'s Apex,
    ) -> Option<Lookup<'s>> {
        if let Some(node) = self.names.get(key) {
            return Some(match self.answer_dynamic(node, qtype) {
                Some(answer) => Lookup::Answer(AnswerRef::Borrowed(answer)),
                None => Lookup::NoData(apex),
            });
        }
        // A name below a service: an instance, a tag filter, a named port.
        // The longest suffix in the index decides. Every name in it has its
        // ancestors there too (as empty non-terminals), so the walk goes
        // from the apex leftwards and stops at the first suffix missing:
        // as many probes as the index is deep, not as the question is long.
        let below_apex = offsets.partition_point(|&at| (at as usize) < apex_at);
        let mut longest = None;
        for i in (1..below_apex).rev() {
            match self.names.get(&key[offsets[i] as usize..]) {
                Some(node) => longest = Some((i, node)),
                None => break,
            }
        }
        match longest? {
            (i, DynNode::Service(service)) => {
                self.lookup_below(service, key, &offsets[..i], qtype, apex)
            }
            _ => None,
        }
    }

    /// Whether a zone-file record or a native service answers `name` with
    /// `qtype`: a SkyDNS CNAME to such a name is answered alone, for the
    /// resolver to follow.
    fn answered_before_entries(&self, name: &Name, qtype: RecordType) -> bool {
        let key = name_key(&name.to_lowercase());
        if self
            .statics
            .nodes
            .get(&key)
            .is_some_and(|node| node.answer(qtype).is_some())
        {
            return true;
        }
        let offsets = label_offsets(&key);
        let offsets = offsets.as_slice();
        match self.apex_of(&key, offsets) {
            Some((apex, apex_at)) if apex.dynamic => matches!(
                self.lookup_native(&key, offsets, apex_at, qtype, apex),
                Some(Lookup::Answer(_))
            ),
            _ => false,
        }
    }

    fn answer_dynamic<'s>(
        &'s self,
        node: &'s DynNode,
        qtype: RecordType,
    ) -> Option<&'s WireAnswer> {
        match node {
            DynNode::Service(service) => service.all.answer(qtype, &self.zone),
            DynNode::Rfc2782(service, protocol) => {
                service.rfc2782(*protocol)?.answer(qtype, &self.zone)
            }
            DynNode::Empty => None,
        }
    }

    /// Resolves the labels before a service name (`prefix` are their offsets
    /// in `key`): an instance, one tag, two different tags in either order,
    /// or a named port. Which of them exist the service knows when it is
    /// built; each is a subset built the first time it is asked and
    /// answered from its cache after that: a few binary searches, whatever
    /// the question.
    ///
    /// A name carries at most two tags, each once: `v2.primary.web` and
    /// `primary.v2.web` are both tags (AND), `v2.v2.web` and
    /// `canary.v2.primary.web` do not exist. Answers to names built from
    /// any number of tags would have to be intersected and encoded per
    /// question (O(instances), and an allocation each), or kept for every
    /// combination a client can spell; two tags cover what users write (and
    /// Consul's DNS takes one).
    fn lookup_below<'s>(
        &'s self,
        service: &'s ServiceNode,
        key: &[u8],
        prefix: &[u8],
        qtype: RecordType,
        apex: &'s Apex,
    ) -> Option<Lookup<'s>> {
        let label = |i: usize| {
            let at = prefix[i] as usize;
            std::str::from_utf8(&key[at + 1..at + 1 + key[at] as usize]).ok()
        };
        let found = |answer: Option<&'s WireAnswer>| {
            Some(match answer {
                Some(answer) => Lookup::Answer(AnswerRef::Borrowed(answer)),
                None => Lookup::NoData(apex),
            })
        };
        let zone = &self.zone;
        match prefix.len() {
            1 => {
                let label = label(0)?;
                if let Some(instance) = service.all.member(label) {
                    return found(instance.answer(qtype, zone));
                }
                if let Some(tag) = service.tag(label) {
                    return found(tag.answer(qtype, zone));
                }
                if matches!(label, "_tcp" | "_udp") && service.has_ports_over(label) {
                    return found(None);
                }
                None
            }
            2 if label(0)?.starts_with('_') => {
                let protocol = match label(1)? {
                    "_tcp" => crate::model::Protocol::Tcp,
                    "_udp" => crate::model::Protocol::Udp,
                    _ => return None,
                };
                let port = service.port(&label(0)?[1..], protocol)?;
                found(port.answer(qtype, zone))
            }
            // Absent when no instance carries both, or a tag is repeated.
            2 => found(service.pair(label(0)?, label(1)?)?.answer(qtype, zone)),
            _ => None,
        }
    }

    /// What registered addresses and SkyDNS reverse entries say about a
    /// reverse name: PTR where one is registered, NODATA for its other
    /// types and for the names above registered ones (RFC 8020: they
    /// exist), `None` for the rest of the reverse trees, which are not
    /// disco's.
    fn lookup_reverse(&self, key: &[u8], qtype: RecordType) -> Option<Lookup<'_>> {
        let network = records::arpa_prefix(key);
        let native = (network.filter(|net| net.prefix_len() == net.max_prefix_len()))
            .and_then(|net| self.reverse.get(&net.addr()));
        if let Some(answer) = native.and_then(|node| node.answer(qtype, &self.zone)) {
            return Some(Lookup::Answer(AnswerRef::Borrowed(answer)));
        }
        let others = |name: &Name, qtype| self.answered_before_entries(name, qtype);
        if let Some(answer) = self.skydns.reverse(key, qtype, &others) {
            return Some(Lookup::Answer(answer));
        }
        let below = |net: IpNet| self.addresses.any_in(net.network()..=net.broadcast());
        let exists = native.is_some() || network.is_some_and(below) || self.skydns.has_name(key);
        exists
            .then(|| self.statics.reverse_apex(key))
            .flatten()
            .map(Lookup::NoData)
    }
}
