//! One service's node: every instance registered under its name, and the
//! names below it that select some of them (a tag, two tags, a named port,
//! the RFC 2782 name). Rebuilt whole when a batch of changes touches the
//! service: O(its instances) however many changed, so a 100,000-instance
//! listing into one service costs one pass, not one pass per instance.
//!
//! Only the whole service is built with it. The other subsets are built
//! the first time their name is asked (a pass over the service's
//! instances, then kept for as long as the node lives): most are never
//! asked, and building every one up front took 41% of the heap at
//! 100,000 instances (`BENCHMARKS.md`, "Where the memory goes at scale"),
//! the two-tag ones most, one per ordered pair of tags an instance
//! carries. What the node keeps of them until then is which exist, as
//! indexes into its instances, so that NXDOMAIN and NODATA stay exact and
//! no question scans: a name's existence is a binary search, and a first
//! ask builds one subset.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::nodes::{InstanceNode, Selection, Subset};
use crate::model::{Instance, InstanceId, Protocol, ServiceName};

/// Where a name below the service is spelled: the `index`th tag, or named
/// port, of the service's `member`th instance. Borrowed rather than copied,
/// so a service keeps no string of its own.
#[derive(Debug, Clone, Copy)]
struct Spelled {
    member: u32,
    index: u32,
}

impl Spelled {
    /// The tag it spells among the service's instances `all`.
    fn tag(self, all: &[Arc<InstanceNode>]) -> &str {
        &all[self.member as usize].instance.tags[self.index as usize]
    }

    /// The named port it spells among `all`, with its protocol.
    fn port(self, all: &[Arc<InstanceNode>]) -> (&str, Protocol) {
        let instance = &all[self.member as usize].instance;
        let name = instance.ports.keys().nth(self.index as usize);
        (name.expect("spelled by this instance"), instance.protocol)
    }
}

/// Subsets built the first time they are asked for, one cell per entry of
/// a table the service keeps; the cells themselves are allocated on the
/// first ask of any, so a service never asked below its name pays 8 bytes.
/// Filling a cell blocks only the questions for that same name, never
/// another name's.
#[derive(Debug, Default)]
pub(super) struct Lazy {
    cells: OnceLock<Box<[OnceLock<Arc<Subset>>]>>,
}

impl Lazy {
    /// The subset in cell `at` of `len`, built by `build` the first time.
    fn get(&self, len: usize, at: usize, build: impl FnOnce() -> Arc<Subset>) -> &Arc<Subset> {
        let cells = (self.cells).get_or_init(|| (0..len).map(|_| OnceLock::new()).collect());
        cells[at].get_or_init(build)
    }

    /// The subsets built so far, with their cells.
    pub(super) fn built(&self) -> impl Iterator<Item = (usize, &Arc<Subset>)> {
        let cells = self.cells.get().map_or(&[][..], |cells| &cells[..]);
        (cells.iter().enumerate()).filter_map(|(at, cell)| Some((at, cell.get()?)))
    }

    /// A table of `len` cells holding `kept` (cell, subset) already.
    fn holding(len: usize, kept: Vec<(usize, Arc<Subset>)>) -> Lazy {
        let lazy = Lazy::default();
        if !kept.is_empty() {
            let cells: Box<[OnceLock<Arc<Subset>>]> = (0..len).map(|_| OnceLock::new()).collect();
            for (at, subset) in kept {
                let _ = cells[at].set(subset);
            }
            let _ = lazy.cells.set(cells);
        }
        lazy
    }
}

/// Everything registered under one service name.
#[derive(Debug)]
pub(crate) struct ServiceNode {
    pub(crate) all: Arc<Subset>,
    /// Its distinct tags, sorted.
    tags: Box<[Spelled]>,
    tag_subsets: Lazy,
    /// The pairs of different tags some instance carries together, as
    /// indexes into `tags`, lower first, sorted. Each pair is two names
    /// (`v2.primary.web` and `primary.v2.web`), each with answers encoded
    /// at that name: cells `2p` and `2p + 1`. Found with the service,
    /// O(Σ tags²) over its instances, so that whether a pair exists is a
    /// binary search, never an intersection per question: see
    /// `Snapshot::lookup_below`.
    pairs: Box<[(u32, u32)]>,
    pub(super) pair_subsets: Lazy,
    /// Its distinct named ports with their protocol, sorted by name then
    /// protocol.
    ports: Box<[Spelled]>,
    port_subsets: Lazy,
    /// Whether `_web._tcp` and `_web._udp` exist (one-label services with
    /// instances over that protocol).
    rfc2782: [bool; 2],
    rfc2782_subsets: Lazy,
}

/// An instance node a rebuild dropped or created: the reverse index
/// follows it at its address.
#[derive(Debug)]
pub(crate) struct Moved {
    pub(crate) address: IpAddr,
    /// Created, rather than dropped.
    pub(crate) added: bool,
    pub(crate) node: Arc<InstanceNode>,
}

impl Moved {
    fn new(node: &Arc<InstanceNode>, added: bool) -> Self {
        Moved {
            address: node.instance.address,
            added,
            node: node.clone(),
        }
    }
}

fn protocol_slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    }
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];

impl ServiceNode {
    /// Its name.
    pub(crate) fn name(&self) -> &ServiceName {
        self.all.service()
    }

    fn tag_text(&self, tag: Spelled) -> &str {
        tag.tag(self.all.members())
    }

    fn port_key(&self, port: Spelled) -> (&str, Protocol) {
        port.port(self.all.members())
    }

    fn tag_index(&self, tag: &str) -> Option<usize> {
        (self.tags.binary_search_by(|&t| self.tag_text(t).cmp(tag))).ok()
    }

    fn port_index(&self, name: &str, protocol: Protocol) -> Option<usize> {
        (self
            .ports
            .binary_search_by(|&p| self.port_key(p).cmp(&(name, protocol))))
        .ok()
    }

    /// The cell of the pair of tags `first` then `second` (indexes into
    /// `tags`), if some instance carries both.
    fn pair_cell(&self, first: usize, second: usize) -> Option<usize> {
        let (low, high) = (first.min(second) as u32, first.max(second) as u32);
        let at = self.pairs.binary_search(&(low, high)).ok()?;
        Some(2 * at + usize::from(first > second))
    }

    /// A subset of this service's instances: those `keep` selects, in id
    /// order.
    fn select(&self, selection: Selection, keep: impl Fn(&Instance) -> bool) -> Arc<Subset> {
        let members = self.members_where(keep);
        Arc::new(Subset::new(self.name().clone(), selection, members.into()))
    }

    fn members_where(&self, keep: impl Fn(&Instance) -> bool) -> Vec<Arc<InstanceNode>> {
        let all = self.all.members().iter();
        all.filter(|node| keep(&node.instance)).cloned().collect()
    }

    /// The subset for tag `tag`.
    pub(crate) fn tag(&self, tag: &str) -> Option<&Arc<Subset>> {
        let at = self.tag_index(tag)?;
        Some(self.tag_subsets.get(self.tags.len(), at, || {
            self.select(Selection::Tag(tag.into()), |i| has_tag(i, tag))
        }))
    }

    /// The subset for instances carrying both `first` and `second`, two
    /// different tags, named in that order.
    pub(crate) fn pair(&self, first: &str, second: &str) -> Option<&Arc<Subset>> {
        let cell = self.pair_cell(self.tag_index(first)?, self.tag_index(second)?)?;
        Some(self.pair_subsets.get(2 * self.pairs.len(), cell, || {
            let selection = Selection::Tags(first.into(), second.into());
            self.select(selection, |i| has_tag(i, first) && has_tag(i, second))
        }))
    }

    /// The subset for the port named `name` of instances speaking
    /// `protocol`.
    pub(crate) fn port(&self, name: &str, protocol: Protocol) -> Option<&Arc<Subset>> {
        let at = self.port_index(name, protocol)?;
        Some(self.port_subsets.get(self.ports.len(), at, || {
            let selection = Selection::Port(name.into(), protocol);
            self.select(selection, |i| has_port(i, name, protocol))
        }))
    }

    /// The subset at the RFC 2782 name over `protocol` (`_web._tcp`).
    pub(crate) fn rfc2782(&self, protocol: Protocol) -> Option<&Arc<Subset>> {
        let slot = protocol_slot(protocol);
        self.rfc2782[slot].then(|| {
            self.rfc2782_subsets.get(2, slot, || {
                self.select(Selection::Rfc2782(protocol), |i| i.protocol == protocol)
            })
        })
    }

    /// The protocols it has an RFC 2782 name for.
    pub(crate) fn rfc2782_protocols(&self) -> impl Iterator<Item = Protocol> + '_ {
        PROTOCOLS
            .into_iter()
            .filter(|&p| self.rfc2782[protocol_slot(p)])
    }

    /// Every subset: the whole service, its tags and pairs of tags, its
    /// named ports, its RFC 2782 names, each built now if not yet asked.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(crate) fn subsets(&self) -> Vec<&Arc<Subset>> {
        let mut subsets = vec![&self.all];
        let tags: Vec<&str> = self.tags.iter().map(|&t| self.tag_text(t)).collect();
        subsets.extend(tags.iter().filter_map(|tag| self.tag(tag)));
        for &(low, high) in &self.pairs {
            let (low, high) = (tags[low as usize], tags[high as usize]);
            subsets.extend(self.pair(low, high));
            subsets.extend(self.pair(high, low));
        }
        for &port in &self.ports {
            let (name, protocol) = self.port_key(port);
            subsets.extend(self.port(name, protocol));
        }
        subsets.extend(PROTOCOLS.into_iter().filter_map(|p| self.rfc2782(p)));
        subsets
    }

    /// Whether some instance has a named port speaking the protocol with
    /// SRV label `label` (`_tcp`), which makes `_tcp.<service>` a name.
    pub(crate) fn has_ports_over(&self, label: &str) -> bool {
        (self.ports.iter()).any(|&p| self.port_key(p).1.label() == label)
    }

    /// `service` after `changes`, or `None` when no instance is left.
    /// `changes` are sorted by id, one per id: the instance now, or `None`
    /// for gone. Instance nodes that did not change are kept, with the
    /// answers they have cached, and so are the subsets asked for before
    /// whose members stayed; `moved` gets the instance nodes that went and
    /// came.
    pub(crate) fn rebuild<'c>(
        before: Option<&ServiceNode>,
        service: &ServiceName,
        changes: impl IntoIterator<Item = (&'c InstanceId, Option<&'c Arc<Instance>>)>,
        moved: &mut Vec<Moved>,
    ) -> Option<ServiceNode> {
        let all = merge(before.map_or(&[], |s| s.all.members()), changes, moved);
        if all.is_empty() {
            return None;
        }
        let instances = || (0u32..).zip(all.iter().map(|node| &*node.instance));
        let mut tags: Vec<Spelled> = Vec::new();
        let mut ports: Vec<Spelled> = Vec::new();
        let mut rfc2782 = [false; 2];
        for (member, instance) in instances() {
            let spelled = |index: usize| Spelled {
                member,
                index: index as u32,
            };
            tags.extend((0..instance.tags.len()).map(spelled));
            ports.extend((0..instance.ports.len()).map(spelled));
            rfc2782[protocol_slot(instance.protocol)] = service.is_single_label();
        }
        let tag_text = |t: &Spelled| t.tag(&all);
        tags.sort_unstable_by(|a, b| tag_text(a).cmp(tag_text(b)));
        tags.dedup_by(|a, b| tag_text(a) == tag_text(b));
        let port_key = |p: &Spelled| p.port(&all);
        ports.sort_unstable_by(|a, b| port_key(a).cmp(&port_key(b)));
        ports.dedup_by(|a, b| port_key(a) == port_key(b));
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut carried: Vec<u32> = Vec::new();
        for (_, instance) in instances() {
            carried.clear();
            carried.extend(instance.tags.iter().filter_map(|tag| {
                let at = tags.binary_search_by(|t| tag_text(t).cmp(tag)).ok()?;
                Some(at as u32)
            }));
            carried.sort_unstable();
            for (n, &low) in carried.iter().enumerate() {
                pairs.extend(carried[n + 1..].iter().map(|&high| (low, high)));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut node = ServiceNode {
            all: keep_or_build(before.map(|s| &s.all), service, all, || Selection::All),
            tags: tags.into(),
            tag_subsets: Lazy::default(),
            pairs: pairs.into(),
            pair_subsets: Lazy::default(),
            ports: ports.into(),
            port_subsets: Lazy::default(),
            rfc2782,
            rfc2782_subsets: Lazy::default(),
        };
        if let Some(before) = before {
            node.keep_asked(before);
        }
        Some(node)
    }

    /// Carries over from `before` every subset a question built there that
    /// still exists here: the same node if its members stayed (with its
    /// answers), a rebuilt one if not. A name asked once is likely asked
    /// again, and costs a pass over the service either way.
    fn keep_asked(&mut self, before: &ServiceNode) {
        let kept = |old: &Arc<Subset>, keep: &dyn Fn(&Instance) -> bool| {
            keep_or_refill(old, self.members_where(keep))
        };
        let tags: Vec<_> = (before.tag_subsets.built())
            .filter_map(|(at, old)| {
                let tag = before.tag_text(before.tags[at]);
                Some((self.tag_index(tag)?, kept(old, &|i| has_tag(i, tag))))
            })
            .collect();
        let pairs: Vec<_> = (before.pair_subsets.built())
            .filter_map(|(cell, old)| {
                let (low, high) = before.pairs[cell / 2];
                let (low, high) = (before.tags[low as usize], before.tags[high as usize]);
                let (low, high) = (before.tag_text(low), before.tag_text(high));
                let (first, second) = if cell % 2 == 0 {
                    (low, high)
                } else {
                    (high, low)
                };
                let at = self.pair_cell(self.tag_index(first)?, self.tag_index(second)?)?;
                Some((at, kept(old, &|i| has_tag(i, first) && has_tag(i, second))))
            })
            .collect();
        let ports: Vec<_> = (before.port_subsets.built())
            .filter_map(|(at, old)| {
                let (name, protocol) = before.port_key(before.ports[at]);
                let at = self.port_index(name, protocol)?;
                Some((at, kept(old, &|i| has_port(i, name, protocol))))
            })
            .collect();
        let rfc2782: Vec<_> = (before.rfc2782_subsets.built())
            .filter(|&(slot, _)| self.rfc2782[slot])
            .map(|(slot, old)| (slot, kept(old, &|i| protocol_slot(i.protocol) == slot)))
            .collect();
        self.tag_subsets = Lazy::holding(self.tags.len(), tags);
        self.pair_subsets = Lazy::holding(2 * self.pairs.len(), pairs);
        self.port_subsets = Lazy::holding(self.ports.len(), ports);
        self.rfc2782_subsets = Lazy::holding(2, rfc2782);
    }
}

fn has_tag(instance: &Instance, tag: &str) -> bool {
    instance.tags.iter().any(|t| **t == *tag)
}

fn has_port(instance: &Instance, name: &str, protocol: Protocol) -> bool {
    instance.protocol == protocol && instance.ports.get(name).is_some()
}

/// The service's instance nodes after `changes`: `before` (sorted by id)
/// with each change merged in, in one pass.
fn merge<'c>(
    before: &[Arc<InstanceNode>],
    changes: impl IntoIterator<Item = (&'c InstanceId, Option<&'c Arc<Instance>>)>,
    moved: &mut Vec<Moved>,
) -> Vec<Arc<InstanceNode>> {
    let changes = changes.into_iter();
    let mut all = Vec::with_capacity(before.len() + changes.size_hint().0);
    let mut rest = before;
    for (id, now) in changes {
        let unchanged = rest.partition_point(|n| n.id() < id.as_str());
        all.extend_from_slice(&rest[..unchanged]);
        rest = &rest[unchanged..];
        let was = match rest.split_first() {
            Some((node, after)) if node.id() == id.as_str() => {
                rest = after;
                Some(node)
            }
            _ => None,
        };
        match (was, now) {
            (Some(node), Some(now)) if Arc::ptr_eq(&node.instance, now) => all.push(node.clone()),
            (was, now) => {
                moved.extend(was.map(|node| Moved::new(node, false)));
                if let Some(now) = now {
                    let node = Arc::new(InstanceNode::new(now.clone()));
                    moved.push(Moved::new(&node, true));
                    all.push(node);
                }
            }
        }
    }
    all.extend_from_slice(rest);
    all
}

/// `old` if it has exactly `members`, else a new subset of them: the same
/// selection as `old`, or for a subset new to the service, `selection()`.
fn keep_or_build(
    old: Option<&Arc<Subset>>,
    service: &ServiceName,
    members: Vec<Arc<InstanceNode>>,
    selection: impl FnOnce() -> Selection,
) -> Arc<Subset> {
    match old {
        Some(old) => keep_or_refill(old, members),
        None => Arc::new(Subset::new(service.clone(), selection(), members.into())),
    }
}

/// `old` if it has exactly `members`, else the same selection with them.
fn keep_or_refill(old: &Arc<Subset>, members: Vec<Arc<InstanceNode>>) -> Arc<Subset> {
    if old.has_members(&members) {
        old.clone()
    } else {
        Arc::new(old.with_members(members.into()))
    }
}
