//! SkyDNS / CoreDNS `etcd` plugin entries in the snapshot.
//!
//! CoreDNS range-reads etcd on every query: the keys under the question's
//! reversed name (`/skydns/internal/disco/web/` for `web.disco.internal.`),
//! or the key at the name when nothing is under it. disco keeps the same
//! keys in memory, in a persistent ordered map keyed by the reversed name
//! (`internal/disco/web/x1`), so "this name and everything below it" is one
//! range scan: O(log n + answer size), never a scan of every entry.
//!
//! Every name with entries at or below it also has a node in a hash map:
//! "does this name exist" is one probe, and the node keeps its answers,
//! encoded on first use, until something in its subtree changes (a change
//! replaces the nodes of the entry's name and of its ancestors). Answers
//! that read other names (a CNAME or SRV target in the zone) are kept for
//! one version of the snapshot (`super::versioned`), recomputed on the
//! first question after any change.
//!
//! A question with `*` or `any` labels reads the subtree of the name right
//! of its first wildcard (CoreDNS range-reads etcd there on every such
//! question, however big the subtree) and keeps the entries that match.
//! Here the node of that name keeps the answers to the first
//! [`WILDCARD_PATTERNS`] patterns asked of it (the labels left of it, as
//! spelled, and the type), each computed once; a further pattern is
//! REFUSED until the subtree changes. So a client can make disco scan a
//! subtree at most that many times per version of it, never once per
//! question.
//!
//! Entries are served under the served domain; PTR entries also under
//! `in-addr.arpa.` and `ip6.arpa.`. Entries anywhere else are kept by the
//! registry but never answered.

mod answer;
mod select;

use std::sync::{Arc, OnceLock};

use hickory_proto::rr::{Name, RecordType};
use imbl::OrdMap;

use super::AnswerRef;
use super::versioned::VersionedAnswer;
use crate::dns::answer::WireAnswer;
use crate::dns::name::{NameKey, name_key};
use crate::model::SkyEntry;
pub(crate) use answer::OtherAnswers;
use answer::Resolver;
use select::{Item, is_wildcard};

/// What the SkyDNS entries say about a name.
#[derive(Debug)]
pub(crate) enum SkyLookup<'s> {
    /// Records.
    Answer(AnswerRef<'s>),
    /// Entries at or below the name, none answering this type.
    NoData,
    /// No entry at or below the name.
    Absent,
    /// A wildcard question beyond the patterns its subtree answers.
    Refused,
}

/// Wildcard patterns a node answers per version of its subtree.
pub(crate) const WILDCARD_PATTERNS: usize = 16;

/// What does not change between snapshots.
#[derive(Debug)]
struct Config {
    /// The served domain.
    zone: Name,
    /// Zones whose names are answered PTR only.
    reverse_zones: [Name; 2],
    default_ttl: u32,
    /// Whether the zone's NS come from `ns.dns.<zone>` entries (no zone file
    /// gives them).
    apex_ns: bool,
}

/// The SkyDNS entries of a snapshot, indexed.
#[derive(Debug, Clone)]
pub(crate) struct SkyIndex {
    config: Arc<Config>,
    /// Reversed name (`internal/disco/web/x1`, with a trailing `/` for a key
    /// that ends in one) → the entries there, by (source, key).
    entries: OrdMap<Box<str>, Arc<[Item]>>,
    /// Every name with entries at or below it.
    nodes: imbl::HashMap<NameKey, Arc<SkyNode>>,
    /// The snapshot's version: moved on by every change to the entries
    /// here, and by the snapshot builder for every other change, which
    /// answers reading other names depend on.
    version: u64,
}

/// The query types a node caches answers for.
const CACHED_TYPES: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::PTR,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::ANY,
];

#[derive(Debug)]
enum Cached {
    Answer(WireAnswer),
    NoData,
    /// The answer reads other names: kept for one version.
    Versioned(VersionedAnswer),
}

/// A name with entries at or below it.
#[derive(Debug)]
struct SkyNode {
    owner: Name,
    /// Entries at or below the name.
    count: usize,
    /// Allocated on the first question, so names never asked cost little.
    cache: OnceLock<Box<[OnceLock<Cached>; CACHED_TYPES.len()]>>,
    /// Answers to wildcard questions reading this subtree, filled in the
    /// order asked: the labels left of the name as asked (lowercase wire
    /// form) and the type, then the answer.
    wildcards: OnceLock<Box<[OnceLock<WildcardAnswer>; WILDCARD_PATTERNS]>>,
}

/// A wildcard pattern and type (the labels left of the node's name, then
/// the type's two bytes), and its answer.
type WildcardAnswer = (Box<[u8]>, Cached);

impl SkyNode {
    fn new(owner: Name, count: usize) -> Self {
        SkyNode {
            owner,
            count,
            cache: OnceLock::new(),
            wildcards: OnceLock::new(),
        }
    }

    /// The answer to `key`, a wildcard question whose labels left of this
    /// node's name are `key[..read_at]`: from the slot holding that pattern
    /// and type, else computed into the first free slot, else REFUSED.
    fn wildcard_answer<'s>(
        &'s self,
        index: &'s SkyIndex,
        key: &[u8],
        read_at: usize,
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> SkyLookup<'s> {
        let pattern = &key[..read_at];
        let qtype_bytes = u16::from(qtype).to_be_bytes();
        let same = |stored: &[u8]| {
            stored.len() == pattern.len() + 2
                && stored[..pattern.len()] == *pattern
                && stored[pattern.len()..] == qtype_bytes
        };
        let slots = self.wildcards.get_or_init(Default::default);
        for slot in slots.iter() {
            let (stored, cached) = match slot.get() {
                Some(filled) => filled,
                None => slot.get_or_init(|| {
                    let mut stored = pattern.to_vec();
                    stored.extend_from_slice(&qtype_bytes);
                    let cached = match index.wildcard_sections(key, qtype, others) {
                        (answer, true) => {
                            let versioned = VersionedAnswer::default();
                            versioned.get(index.version, || answer);
                            Cached::Versioned(versioned)
                        }
                        (Some(answer), false) => Cached::Answer(answer),
                        (None, false) => Cached::NoData,
                    };
                    (stored.into(), cached)
                }),
            };
            if !same(stored) {
                continue;
            }
            return match cached {
                Cached::Answer(answer) => SkyLookup::Answer(AnswerRef::Borrowed(answer)),
                Cached::NoData => SkyLookup::NoData,
                Cached::Versioned(versioned) => {
                    let compute = || index.wildcard_sections(key, qtype, others).0;
                    match versioned.get(index.version, compute) {
                        Some(answer) => SkyLookup::Answer(AnswerRef::Shared(answer)),
                        None => SkyLookup::NoData,
                    }
                }
            };
        }
        SkyLookup::Refused
    }

    fn answer<'s>(
        &'s self,
        index: &'s SkyIndex,
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> SkyLookup<'s> {
        let Some(slot) = CACHED_TYPES.iter().position(|&t| t == qtype) else {
            return SkyLookup::NoData;
        };
        let slot = &self.cache.get_or_init(Default::default)[slot];
        let compute = || {
            let resolver = Resolver::new(index, others);
            let answer = resolver
                .answer(&self.owner, qtype)
                .map(|sections| WireAnswer::encode(&self.owner, qtype, &sections));
            (answer, resolver.looked_elsewhere())
        };
        let cached = slot.get_or_init(|| match compute() {
            (answer, true) => {
                let versioned = VersionedAnswer::default();
                versioned.get(index.version, || answer);
                Cached::Versioned(versioned)
            }
            (Some(answer), false) => Cached::Answer(answer),
            (None, false) => Cached::NoData,
        });
        match cached {
            Cached::Answer(answer) => SkyLookup::Answer(AnswerRef::Borrowed(answer)),
            Cached::NoData => SkyLookup::NoData,
            Cached::Versioned(versioned) => match versioned.get(index.version, || compute().0) {
                Some(answer) => SkyLookup::Answer(AnswerRef::Shared(answer)),
                None => SkyLookup::NoData,
            },
        }
    }
}

impl SkyIndex {
    /// An empty index for `zone`; `apex_ns` says whether the zone's NS come
    /// from entries (no zone file gives them).
    pub(crate) fn new(zone: Name, default_ttl: u32, apex_ns: bool) -> Self {
        let reverse = |z: &str| Name::from_ascii(z).expect("a valid name");
        SkyIndex {
            config: Arc::new(Config {
                zone: zone.to_lowercase(),
                reverse_zones: [reverse("in-addr.arpa."), reverse("ip6.arpa.")],
                default_ttl,
                apex_ns,
            }),
            entries: OrdMap::new(),
            nodes: imbl::HashMap::new(),
            version: 0,
        }
    }

    /// The snapshot's version (see the field).
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Moves the snapshot's version on, for a change made elsewhere.
    pub(crate) fn next_version(&mut self) {
        self.version += 1;
    }

    /// Whether the zone's NS come from `ns.dns.<zone>` entries.
    pub(crate) fn answers_apex_ns(&self) -> bool {
        self.config.apex_ns && !self.nodes.is_empty()
    }

    /// What the entries say about `key` (a lowercase wire-format name in
    /// the served zone).
    pub(crate) fn lookup(
        &self,
        key: &[u8],
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> SkyLookup<'_> {
        if self.nodes.is_empty() {
            return SkyLookup::Absent;
        }
        if wire_labels(key).any(|label| std::str::from_utf8(label).is_ok_and(is_wildcard)) {
            return self.lookup_wildcard(key, qtype, others);
        }
        match self.nodes.get(key) {
            Some(node) => node.answer(self, qtype, others),
            None => SkyLookup::Absent,
        }
    }

    /// Whether entries are at or below `key`.
    pub(crate) fn has_name(&self, key: &[u8]) -> bool {
        self.nodes.contains_key(key)
    }

    /// The PTR answer at `key` (any name, reverse zones included), if an
    /// entry there has a name for a host.
    pub(crate) fn reverse(
        &self,
        key: &[u8],
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> Option<AnswerRef<'_>> {
        if qtype != RecordType::PTR {
            return None;
        }
        match self.nodes.get(key)?.answer(self, qtype, others) {
            SkyLookup::Answer(answer) => Some(answer),
            _ => None,
        }
    }

    /// A question with `*` or `any` labels: CoreDNS reads the subtree above
    /// the first wildcard (from the right) and keeps the keys that match;
    /// the node there keeps the answer (see [`SkyNode::wildcard_answer`]).
    fn lookup_wildcard(
        &self,
        key: &[u8],
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> SkyLookup<'_> {
        // Where the name right of the rightmost wildcard starts.
        let mut read_at = None;
        let mut at = 0;
        for label in wire_labels(key) {
            at += 1 + label.len();
            if std::str::from_utf8(label).is_ok_and(is_wildcard) {
                read_at = Some(at);
            }
        }
        let Some(read_at) = read_at else {
            return SkyLookup::Absent;
        };
        match self.nodes.get(&key[read_at..]) {
            Some(node) => node.wildcard_answer(self, key, read_at, qtype, others),
            None => SkyLookup::Absent,
        }
    }

    /// The answer to the wildcard question `key`, computed (`None`:
    /// NODATA), and whether it read names outside the subtree.
    fn wildcard_sections(
        &self,
        key: &[u8],
        qtype: RecordType,
        others: OtherAnswers<'_>,
    ) -> (Option<WireAnswer>, bool) {
        let Ok(qname) = Name::from_labels(wire_labels(key)) else {
            return (None, false);
        };
        let resolver = Resolver::new(self, others);
        let answer = resolver
            .answer(&qname, qtype)
            .map(|sections| WireAnswer::encode(&qname, qtype, &sections));
        (answer, resolver.looked_elsewhere())
    }

    /// Adds or replaces the entry `source` holds at `entry.key`.
    pub(crate) fn insert(&mut self, source: usize, entry: Arc<SkyEntry>) {
        self.version += 1;
        let Some((name, zone_labels)) = self.place(&entry) else {
            return;
        };
        let path = entry_path(&entry);
        let mut items: Vec<Item> = self
            .entries
            .get(&*path)
            .map(|items| items.to_vec())
            .unwrap_or_default();
        let added = match find(&items, source, &entry.key) {
            Ok(at) => {
                items[at] = Item { source, entry };
                false
            }
            Err(at) => {
                items.insert(at, Item { source, entry });
                true
            }
        };
        self.entries.insert(path, items.into());
        self.touch(name, zone_labels, if added { 1 } else { 0 });
    }

    /// Removes the entry `source` holds at `entry.key`, if indexed.
    pub(crate) fn remove(&mut self, source: usize, entry: &SkyEntry) {
        self.version += 1;
        let Some((name, zone_labels)) = self.place(entry) else {
            return;
        };
        let path = entry_path(entry);
        let Some(items) = self.entries.get(&*path) else {
            return;
        };
        let Ok(at) = find(items, source, &entry.key) else {
            return;
        };
        let mut items = items.to_vec();
        items.remove(at);
        if items.is_empty() {
            self.entries.remove(&*path);
        } else {
            self.entries.insert(path, items.into());
        }
        self.touch(name, zone_labels, -1);
    }

    /// The entry's name, and how many labels the zone it is served in has;
    /// `None` for an entry outside every served zone.
    fn place(&self, entry: &SkyEntry) -> Option<(Name, usize)> {
        let name = Name::from_labels(entry.name.split('.').map(str::as_bytes)).ok()?;
        std::iter::once(&self.config.zone)
            .chain(&self.config.reverse_zones)
            .find(|zone| zone.zone_of(&name))
            .map(|zone| (name, zone.iter().count()))
    }

    /// Replaces the nodes of `name` and its ancestors down to the zone,
    /// which drops their cached answers, with `delta` entries more.
    fn touch(&mut self, mut name: Name, zone_labels: usize, delta: isize) {
        loop {
            let key = name_key(&name);
            let count = self.nodes.get(&key).map_or(0, |node| node.count);
            let count = count.saturating_add_signed(delta);
            if count == 0 {
                self.nodes.remove(&key);
            } else {
                self.nodes
                    .insert(key, Arc::new(SkyNode::new(name.clone(), count)));
            }
            if name.iter().count() <= zone_labels {
                break;
            }
            name = name.base_name();
        }
    }
}

/// Where an item sits in a path's entries, ordered by (source, key).
fn find(items: &[Item], source: usize, key: &str) -> Result<usize, usize> {
    items.binary_search_by(|item| (item.source, item.entry.key.as_str()).cmp(&(source, key)))
}

/// The index key of an entry: its name's labels reversed, joined by `/`,
/// with the trailing `/` of a key that has one (a key at the name itself
/// that CoreDNS reads with the subtree).
fn entry_path(entry: &SkyEntry) -> Box<str> {
    let mut path = entry.name.rsplit('.').collect::<Vec<_>>().join("/");
    if entry.key.ends_with('/') {
        path.push('/');
    }
    path.into_boxed_str()
}

/// The labels of a wire-format name, leftmost first.
fn wire_labels(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = *key.get(at)? as usize;
        if len == 0 {
            return None;
        }
        let label = key.get(at + 1..at + 1 + len)?;
        at += 1 + len;
        Some(label)
    })
}

#[cfg(test)]
mod tests;
