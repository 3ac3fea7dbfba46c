//! Answers from SkyDNS entries, built as CoreDNS's `plugin/backend_lookup.go`
//! builds them (`A`, `AAAA`, `TXT`, `SRV`, `PTR`, `CNAME`, `NS`), from the
//! entries the index selects the way `plugin/etcd/etcd.go` reads them.
//!
//! Where CoreDNS asks its upstream resolver (a CNAME or SRV target outside
//! the zone) disco has none to ask from the snapshot: the CNAME is answered
//! alone and the client's resolver follows it, and an SRV target outside the
//! zone gets no address in the additional section.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::SkyIndex;
use super::select::{
    HostType, Item, group, is_wildcard, split255, srv_weights, strip_labels, wildcard_matches,
};
use crate::dns::answer::Sections;

/// Whether a zone-file record or a native service answers a name with a
/// type: a CNAME to such a name stands alone.
pub(crate) type OtherAnswers<'a> = &'a dyn Fn(&Name, RecordType) -> bool;

/// CoreDNS follows at most this many CNAMEs (`len(previousRecords) > 7`).
const MAX_CHAIN: usize = 7;

/// Resolves one question against one snapshot's entries.
pub(crate) struct Resolver<'a> {
    index: &'a SkyIndex,
    others: OtherAnswers<'a>,
    /// Set when the answer read names outside the question's subtree (a
    /// CNAME or SRV target in the zone): such an answer is not cached with
    /// the question's node, whose cache only changes with its subtree.
    looked_elsewhere: Cell<bool>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(index: &'a SkyIndex, others: OtherAnswers<'a>) -> Self {
        Resolver {
            index,
            others,
            looked_elsewhere: Cell::new(false),
        }
    }

    /// Whether the answer depended on more than the question's subtree.
    pub(crate) fn looked_elsewhere(&self) -> bool {
        self.looked_elsewhere.get()
    }

    /// The answer to `qname`/`qtype`, a name that has entries at or below
    /// it; `None` is NODATA.
    pub(crate) fn answer(&self, qname: &Name, qtype: RecordType) -> Option<Sections> {
        let mut sections = Sections::default();
        match qtype {
            RecordType::A | RecordType::AAAA => {
                sections.answers = self.addresses(qname, qtype, &mut Vec::new())?;
                // Shuffled like native answers (CoreDNS leaves that to its
                // `loadbalance` plugin), but never past a CNAME.
                sections.shuffle = sections.answers.iter().all(|r| r.record_type() == qtype);
            }
            RecordType::TXT => sections.answers = self.texts(qname, &mut Vec::new())?,
            RecordType::SRV => (sections.answers, sections.additionals) = self.srv(qname)?,
            RecordType::PTR => sections.answers = self.ptr(qname)?,
            RecordType::CNAME => sections.answers = self.cname(qname)?,
            RecordType::NS => (sections.answers, sections.additionals) = self.ns(qname)?,
            // RFC 8482: one RRset stands for the name.
            RecordType::ANY => {
                return [
                    RecordType::A,
                    RecordType::AAAA,
                    RecordType::TXT,
                    RecordType::PTR,
                ]
                .into_iter()
                .find_map(|qtype| self.answer(qname, qtype));
            }
            _ => return None,
        }
        if sections.answers.is_empty() {
            return None;
        }
        min_ttl_per_rrset(&mut sections.answers);
        min_ttl_per_rrset(&mut sections.additionals);
        Some(sections)
    }

    /// Whether `name` is in the served zone (`dns.IsSubDomain(zone, …)`).
    fn in_zone(&self, name: &Name) -> bool {
        self.index.config.zone.zone_of(name)
    }

    fn ttl(&self, item: &Item) -> u32 {
        item.ttl(self.index.config.default_ttl)
    }

    /// The entries `name` selects, as `Etcd.Services` returns them: the
    /// subtree (or, with `exact`, the entry at the name only), `*` and `any`
    /// labels matching any one label, entries that cannot answer `qtype`
    /// dropped, then `msg.Group`. `None` when no key is there at all
    /// (CoreDNS's `errKeyNotFound`).
    fn services(&self, name: &Name, exact: bool, qtype: RecordType) -> Option<Vec<&'a Item>> {
        let labels: Vec<String> = name
            .iter()
            .rev()
            .map(|label| {
                let label = std::str::from_utf8(label).ok()?;
                (!label.contains('/')).then(|| label.to_ascii_lowercase())
            })
            .collect::<Option<_>>()?;
        let star = labels.iter().position(|l| is_wildcard(l));
        let path = labels[..star.unwrap_or(labels.len())].join("/");
        let mut found = if exact {
            self.exact(&path)?
        } else {
            self.subtree(&path)?
        };
        if star.is_some() {
            let name_parts: Vec<&str> = labels.iter().map(String::as_str).collect();
            found.retain(|(path, _)| {
                wildcard_matches(&path.split('/').collect::<Vec<_>>(), &name_parts)
            });
        }
        let items = found
            .into_iter()
            .map(|(_, item)| item)
            .filter(|item| item.answers(qtype))
            .collect();
        Some(group(items))
    }

    /// Everything below `path` (its keys start with `path/`) or, when there
    /// is nothing below, the entry at `path`: the two reads `Etcd.get` makes.
    fn subtree(&self, path: &str) -> Option<Vec<(&'a str, &'a Item)>> {
        let from = format!("{path}/");
        // '0' follows '/': the first key past every `path/…`.
        let to = format!("{path}0");
        let below: Vec<(&'a str, &'a Item)> = self
            .index
            .entries
            .range::<_, str>((Bound::Included(from.as_str()), Bound::Excluded(to.as_str())))
            .flat_map(|(path, items)| items.iter().map(move |item| (&**path, item)))
            .collect();
        if below.is_empty() {
            self.exact(path)
        } else {
            Some(below)
        }
    }

    fn exact(&self, path: &str) -> Option<Vec<(&'a str, &'a Item)>> {
        let (path, items) = self.index.entries.get_key_value(path)?;
        Some(items.iter().map(|item| (&**path, item)).collect())
    }

    /// The entries an address question at `qname` reads: at the zone's own
    /// name, those under `apex.dns.<zone>` when there are any
    /// (`checkForApex`).
    fn address_services(&self, qname: &Name, qtype: RecordType) -> Option<Vec<&'a Item>> {
        let zone = &self.index.config.zone;
        if qname == zone {
            let apex = Name::from_ascii("apex.dns")
                .and_then(|apex| apex.append_domain(zone))
                .ok();
            if let Some(found) = apex.and_then(|apex| self.services(&apex, false, qtype)) {
                return Some(found);
            }
        }
        self.services(qname, false, qtype)
    }

    /// `backend_lookup.go` `A` and `AAAA`. `chain` holds the targets of the
    /// CNAMEs followed to get here. `None` when nothing is at `qname`.
    fn addresses(
        &self,
        qname: &Name,
        qtype: RecordType,
        chain: &mut Vec<Name>,
    ) -> Option<Vec<Record>> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        for item in self.address_services(qname, qtype)? {
            match (item.host_type(), qtype) {
                (HostType::Cname, _) => {
                    records.extend(self.follow(qname, item, qtype, chain, |target, chain| {
                        self.addresses(target, qtype, chain)
                    }));
                }
                (HostType::A(v4), RecordType::A) if seen.insert(&item.entry.host) => {
                    records.push(Record::from_rdata(
                        qname.clone(),
                        self.ttl(item),
                        RData::A(A(v4)),
                    ));
                }
                (HostType::Aaaa(v6), RecordType::AAAA) if seen.insert(&item.entry.host) => {
                    records.push(Record::from_rdata(
                        qname.clone(),
                        self.ttl(item),
                        RData::AAAA(AAAA(v6)),
                    ));
                }
                _ => {}
            }
        }
        Some(records)
    }

    /// `backend_lookup.go` `TXT`.
    fn texts(&self, qname: &Name, chain: &mut Vec<Name>) -> Option<Vec<Record>> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        for item in self.services(qname, false, RecordType::TXT)? {
            match item.host_type() {
                HostType::Cname => records.extend(self.follow(
                    qname,
                    item,
                    RecordType::TXT,
                    chain,
                    |target, chain| self.texts(target, chain),
                )),
                HostType::Txt if seen.insert(&item.entry.text) => {
                    records.push(Record::from_rdata(
                        qname.clone(),
                        self.ttl(item),
                        RData::TXT(TXT::from_bytes(split255(&item.entry.text))),
                    ));
                }
                _ => {}
            }
        }
        Some(records)
    }

    /// The CNAME from `qname` to `item`'s host, and what the target answers
    /// (`resolve`), as `A`, `AAAA` and `TXT` follow a host name: no CNAME to
    /// the question itself or below it (the subtree would loop), none past
    /// `MAX_CHAIN` links or back to a target already followed; a target in
    /// the zone must answer, or the CNAME is dropped (CoreDNS's test
    /// "unresolvable internal name").
    fn follow(
        &self,
        qname: &Name,
        item: &Item,
        qtype: RecordType,
        chain: &mut Vec<Name>,
        resolve: impl FnOnce(&Name, &mut Vec<Name>) -> Option<Vec<Record>>,
    ) -> Vec<Record> {
        let Some(target) = item.host_name() else {
            return Vec::new();
        };
        if qname.zone_of(&target) || chain.len() > MAX_CHAIN || chain.contains(&target) {
            return Vec::new();
        }
        let cname = Record::from_rdata(
            qname.clone(),
            self.ttl(item),
            RData::CNAME(CNAME(target.clone())),
        );
        if !self.in_zone(&target) {
            // CoreDNS asks its upstream here; the client's resolver will.
            return vec![cname];
        }
        self.looked_elsewhere.set(true);
        // A zone-file record or a native service answers the target before
        // entries do (as for any question): the CNAME stands alone and the
        // resolver follows it to that answer.
        if (self.others)(&target, qtype) {
            return vec![cname];
        }
        chain.push(target.clone());
        let next = resolve(&target, chain);
        chain.pop();
        match next {
            Some(next) if !next.is_empty() => std::iter::once(cname).chain(next).collect(),
            _ => Vec::new(),
        }
    }

    /// `backend_lookup.go` `SRV`: answers and additional records.
    fn srv(&self, qname: &Name) -> Option<(Vec<Record>, Vec<Record>)> {
        let items = self.services(qname, false, RecordType::SRV)?;
        let weights = srv_weights(
            &items
                .iter()
                .map(|i| (i.priority(), i.entry.weight))
                .collect::<Vec<_>>(),
        );
        let mut answers = Vec::new();
        let mut extra = Vec::new();
        let mut looked_up = HashSet::new();
        let mut seen_srv = HashSet::new();
        let mut seen_address = HashSet::new();
        for (item, weight) in items.into_iter().zip(weights) {
            let srv = |target: &Name| {
                Record::from_rdata(
                    qname.clone(),
                    self.ttl(item),
                    RData::SRV(SRV::new(
                        item.priority(),
                        weight,
                        item.entry.port,
                        target.clone(),
                    )),
                )
            };
            match item.host_type() {
                HostType::Cname => {
                    let Some(host) = item.host_name() else {
                        continue;
                    };
                    let target = strip_labels(&host, item.entry.target_strip);
                    answers.push(srv(&target));
                    if looked_up.insert(target.clone()) && self.in_zone(&target) {
                        // As CoreDNS: the target's A records (and CNAMEs),
                        // not AAAA (its "TODO(miek): AAAA as well here").
                        self.looked_elsewhere.set(true);
                        extra.extend(
                            self.addresses(&target, RecordType::A, &mut Vec::new())
                                .unwrap_or_default(),
                        );
                    }
                }
                HostType::A(_) | HostType::Aaaa(_) => {
                    let Some(own) = item.own_name() else {
                        continue;
                    };
                    let target = strip_labels(&own, item.entry.target_strip);
                    let key = target.to_lowercase().to_ascii();
                    if seen_srv.insert((key.clone(), item.entry.port)) {
                        answers.push(srv(&target));
                    }
                    if seen_address.insert((key, item.entry.host.clone())) {
                        extra.push(address_record(&target, item.host_type(), self.ttl(item)));
                    }
                }
                HostType::Txt => {}
            }
        }
        Some((answers, extra))
    }

    /// `backend_lookup.go` `PTR`: the entries at the name itself whose host
    /// is a name.
    fn ptr(&self, qname: &Name) -> Option<Vec<Record>> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        for item in self.services(qname, true, RecordType::PTR)? {
            if let Some(host) = item.host_name()
                && seen.insert(&item.entry.host)
            {
                records.push(Record::from_rdata(
                    qname.clone(),
                    self.ttl(item),
                    RData::PTR(PTR(host)),
                ));
            }
        }
        Some(records)
    }

    /// `backend_lookup.go` `CNAME`: the first entry at the name itself, when
    /// its host is a name.
    fn cname(&self, qname: &Name) -> Option<Vec<Record>> {
        let items = self.services(qname, true, RecordType::CNAME)?;
        let item = items.first()?;
        let target = item.host_name()?;
        Some(vec![Record::from_rdata(
            qname.clone(),
            self.ttl(item),
            RData::CNAME(CNAME(target)),
        )])
    }

    /// `backend_lookup.go` `NS`, at the zone's own name only and only when no
    /// zone file gives the zone's NS: one NS per entry under
    /// `ns.dns.<zone>`, named after its key, its address as glue. An entry
    /// whose host is a name is skipped (CoreDNS fails the whole answer).
    fn ns(&self, qname: &Name) -> Option<(Vec<Record>, Vec<Record>)> {
        let config = &self.index.config;
        if !config.apex_ns || *qname != config.zone {
            return None;
        }
        let ns = Name::from_ascii("ns.dns")
            .and_then(|ns| ns.append_domain(&config.zone))
            .ok()?;
        let mut answers = Vec::new();
        let mut glue = Vec::new();
        let mut seen = HashSet::new();
        for item in self.services(&ns, false, RecordType::NS)? {
            let host_type = item.host_type();
            if !matches!(host_type, HostType::A(_) | HostType::Aaaa(_)) {
                continue;
            }
            let Some(own) = item.own_name() else {
                continue;
            };
            let target = strip_labels(&own, item.entry.target_strip);
            glue.push(address_record(&target, host_type, self.ttl(item)));
            if seen.insert(target.clone()) {
                answers.push(Record::from_rdata(
                    qname.clone(),
                    self.ttl(item),
                    RData::NS(NS(target)),
                ));
            }
        }
        Some((answers, glue))
    }
}

fn address_record(owner: &Name, host_type: HostType, ttl: u32) -> Record {
    let data = match host_type {
        HostType::A(v4) => RData::A(A(v4)),
        HostType::Aaaa(v6) => RData::AAAA(AAAA(v6)),
        HostType::Cname | HostType::Txt => unreachable!("only addresses have address records"),
    };
    Record::from_rdata(owner.clone(), ttl, data)
}

/// RFC 2181 §5.2: the records of one RRset share one TTL; the smallest of
/// the entries' (CoreDNS sends each entry's own).
fn min_ttl_per_rrset(records: &mut [Record]) {
    let mut least: HashMap<(Name, RecordType), u32> = HashMap::new();
    for record in records.iter() {
        least
            .entry((record.name.clone(), record.record_type()))
            .and_modify(|ttl| *ttl = (*ttl).min(record.ttl))
            .or_insert(record.ttl);
    }
    if least.len() == records.len() {
        return;
    }
    for record in records.iter_mut() {
        record.ttl = least[&(record.name.clone(), record.record_type())];
    }
}
