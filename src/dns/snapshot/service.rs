//! One service's node: every instance registered under its name, and the
//! subsets they are answered in. Rebuilt whole when a batch of changes
//! touches the service: O(its instances) however many changed, so a
//! 100,000-instance listing into one service costs one pass, not one pass
//! per instance.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::nodes::{InstanceNode, Selection, Subset};
use crate::model::{Instance, InstanceId, Protocol, ServiceName};

/// A port's name and protocol.
type PortKey = (Box<str>, Protocol);

/// Two different tags, in the order a name gives them.
type TagPair = (Box<str>, Box<str>);

/// Everything registered under one service name.
#[derive(Debug)]
pub(crate) struct ServiceNode {
    pub(crate) all: Arc<Subset>,
    /// Tag filters, sorted by tag.
    tags: Box<[(Box<str>, Arc<Subset>)]>,
    /// Two-tag filters (`v2.primary.web`), one per ordered pair of
    /// different tags that some instance carries together, sorted: each
    /// order is its own name, with answers encoded at that name. Built with
    /// the service, O(Σ tags²) over its instances, so that no question
    /// intersects tags: see `Snapshot::lookup_below`.
    pairs: Box<[(TagPair, Arc<Subset>)]>,
    /// Named ports, sorted by name and protocol.
    ports: Box<[(PortKey, Arc<Subset>)]>,
    /// `_web._tcp` and `_web._udp` (one-label services only).
    pub(crate) rfc2782: [Option<Arc<Subset>>; 2],
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

impl ServiceNode {
    /// The subset for tag `tag`.
    pub(crate) fn tag(&self, tag: &str) -> Option<&Arc<Subset>> {
        let at = self.tags.binary_search_by(|(t, _)| (**t).cmp(tag)).ok()?;
        Some(&self.tags[at].1)
    }

    /// The subset for instances carrying both `first` and `second`, two
    /// different tags, named in that order.
    pub(crate) fn pair(&self, first: &str, second: &str) -> Option<&Arc<Subset>> {
        let at = (self.pairs)
            .binary_search_by(|((a, b), _)| (&**a, &**b).cmp(&(first, second)))
            .ok()?;
        Some(&self.pairs[at].1)
    }

    /// The subset for the port named `name` of instances speaking
    /// `protocol`.
    pub(crate) fn port(&self, name: &str, protocol: Protocol) -> Option<&Arc<Subset>> {
        let at = self
            .ports
            .binary_search_by(|((n, p), _)| (&**n, *p).cmp(&(name, protocol)))
            .ok()?;
        Some(&self.ports[at].1)
    }

    /// Every subset: the whole service, its tags and pairs of tags, its
    /// named ports, its RFC 2782 names.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(crate) fn subsets(&self) -> impl Iterator<Item = &Arc<Subset>> {
        let tags = self.tags.iter().map(|(_, subset)| subset);
        let pairs = self.pairs.iter().map(|(_, subset)| subset);
        let ports = self.ports.iter().map(|(_, subset)| subset);
        std::iter::once(&self.all)
            .chain(tags)
            .chain(pairs)
            .chain(ports)
            .chain(self.rfc2782.iter().flatten())
    }

    /// Whether some instance has a named port speaking the protocol with
    /// SRV label `label` (`_tcp`), which makes `_tcp.<service>` a name.
    pub(crate) fn has_ports_over(&self, label: &str) -> bool {
        self.ports.iter().any(|((_, p), _)| p.label() == label)
    }

    /// `service` after `changes`, or `None` when no instance is left.
    /// `changes` are sorted by id, one per id: the instance now, or `None`
    /// for gone. Instance nodes and subsets that did not change are kept,
    /// with the answers they have cached; `moved` gets the instance nodes
    /// that went and came.
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
        let mut tags: BTreeMap<&str, Vec<Arc<InstanceNode>>> = BTreeMap::new();
        let mut pairs: BTreeMap<(&str, &str), Vec<Arc<InstanceNode>>> = BTreeMap::new();
        let mut ports: BTreeMap<(&str, Protocol), Vec<Arc<InstanceNode>>> = BTreeMap::new();
        let mut rfc2782: [Vec<Arc<InstanceNode>>; 2] = Default::default();
        let rfc2782_form = service.is_single_label();
        // In id order, so every subset's members come out sorted.
        for node in &all {
            let instance = &node.instance;
            for tag in &instance.tags {
                tags.entry(&**tag).or_default().push(node.clone());
                for other in instance.tags.iter().filter(|other| *other != tag) {
                    pairs
                        .entry((&**tag, &**other))
                        .or_default()
                        .push(node.clone());
                }
            }
            for name in instance.ports.keys() {
                ports
                    .entry((name, instance.protocol))
                    .or_default()
                    .push(node.clone());
            }
            if rfc2782_form {
                rfc2782[protocol_slot(instance.protocol)].push(node.clone());
            }
        }
        let tags = tags
            .into_iter()
            .map(|(tag, members)| {
                let old = before.and_then(|s| s.tag(tag));
                let subset = keep_or_build(old, service, members, || Selection::Tag(tag.into()));
                (tag.into(), subset)
            })
            .collect();
        let pairs = pairs
            .into_iter()
            .map(|((first, second), members)| {
                let old = before.and_then(|s| s.pair(first, second));
                let subset = keep_or_build(old, service, members, || {
                    Selection::Tags(first.into(), second.into())
                });
                ((first.into(), second.into()), subset)
            })
            .collect();
        let ports = ports
            .into_iter()
            .map(|((name, protocol), members)| {
                let old = before.and_then(|s| s.port(name, protocol));
                let subset = keep_or_build(old, service, members, || {
                    Selection::Port(name.into(), protocol)
                });
                ((name.into(), protocol), subset)
            })
            .collect();
        let rfc2782 = [Protocol::Tcp, Protocol::Udp].map(|protocol| {
            let members = std::mem::take(&mut rfc2782[protocol_slot(protocol)]);
            let old = before.and_then(|s| s.rfc2782[protocol_slot(protocol)].as_ref());
            (!members.is_empty())
                .then(|| keep_or_build(old, service, members, || Selection::Rfc2782(protocol)))
        });
        let all = keep_or_build(before.map(|s| &s.all), service, all, || Selection::All);
        Some(ServiceNode {
            all,
            tags,
            pairs,
            ports,
            rfc2782,
        })
    }
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
        Some(old) if old.has_members(&members) => old.clone(),
        Some(old) => Arc::new(old.with_members(members.into_boxed_slice())),
        None => Arc::new(Subset::new(
            service.clone(),
            selection(),
            members.into_boxed_slice(),
        )),
    }
}
