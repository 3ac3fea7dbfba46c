//! The static part of a snapshot: zone apexes (SOA, negative answers) and the
//! records from zone files, with their answers encoded once at load time.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::versioned::VersionedAnswer;
use crate::dns::answer::{NotThisQuestion, Sections, WireAnswer};
use crate::dns::name::{NameKey, name_key};
use crate::dns::packet::{Query, Rcode, push_opt, response_flags};
use crate::dns::zonefile::ZoneFile;

/// Types a static CNAME's answer is precomputed for, target included.
const CHASED_TYPES: [RecordType; 6] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::MX,
    RecordType::PTR,
];

/// A zone disco answers for with authority.
#[derive(Debug)]
pub struct Apex {
    pub(crate) key: NameKey,
    /// Whether registered services are served under it.
    pub(crate) dynamic: bool,
    /// The SOA record after the owner name, TTL set to the negative TTL,
    /// names uncompressed: appended to every negative answer.
    soa_tail: Box<[u8]>,
}

impl Apex {
    fn new(soa: &Record) -> Self {
        let RData::SOA(data) = &soa.data else {
            unreachable!("checked by the caller")
        };
        // RFC 2308 §5: the negative TTL is the lesser of the SOA's TTL and
        // its minimum field.
        let negative_ttl = soa.ttl.min(data.minimum);
        let mut tail = Vec::new();
        let mut encoder = BinEncoder::new(&mut tail);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        let mut record = soa.clone();
        record.name = Name::root();
        record.ttl = negative_ttl;
        record.emit(&mut encoder).expect("an SOA record encodes");
        tail.remove(0); // the root owner name
        Apex {
            key: name_key(&soa.name),
            dynamic: false,
            soa_tail: tail.into_boxed_slice(),
        }
    }

    /// Writes an NXDOMAIN or NODATA answer with the SOA in the authority
    /// section (RFC 2308). The SOA's owner points into the question, whose
    /// name must end with this apex: checked, since the question is the
    /// client's (nothing is written when it does not).
    pub fn write_negative(
        &self,
        query: &Query<'_>,
        rcode: Rcode,
        recursion_available: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), NotThisQuestion> {
        out.clear();
        let name = query.name_key();
        if !name.ends_with(&self.key) {
            return Err(NotThisQuestion);
        }
        out.extend_from_slice(&query.id().to_be_bytes());
        out.extend_from_slice(&response_flags(
            query.packet(),
            true,
            recursion_available,
            rcode,
        ));
        out.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0, 0]);
        out.extend_from_slice(query.question_bytes());
        // At most 12 + 255: a pointer reaches it.
        let apex_at = 12 + name.len() - self.key.len();
        out.extend_from_slice(&(0xc000 | apex_at as u16).to_be_bytes());
        out.extend_from_slice(&self.soa_tail);
        if let Some(edns) = query.edns {
            push_opt(out, edns.reply());
        }
        Ok(())
    }
}

/// Records at one static name, grouped by type, with their answers.
#[derive(Debug, Default)]
pub(crate) struct StaticNode {
    rrsets: BTreeMap<RecordType, Vec<Record>>,
    answers: Vec<(RecordType, WireAnswer)>,
    /// For a CNAME whose chain leaves the zone files' records before it
    /// reaches data of a type: the type and the chain, which the registry
    /// may complete at query time (see [`super::Snapshot::lookup`]), and
    /// that answer as of the snapshot's version.
    open_chains: Vec<(RecordType, Vec<Record>, VersionedAnswer)>,
}

/// What an ANY question is answered with, when the name has it (RFC 8482
/// §4.1: one RRset): the types a client still asking ANY most likely wants
/// (MTAs such as qmail ask it to find a CNAME or an MX), as hickory-server
/// picks them.
const ANY_FIRST: [RecordType; 4] = [
    RecordType::CNAME,
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
];

impl StaticNode {
    /// The answer for `qtype`, or `None` when the name has no such records.
    pub(crate) fn answer(&self, qtype: RecordType) -> Option<&WireAnswer> {
        let wanted = if qtype == RecordType::ANY {
            let likely = ANY_FIRST.into_iter().find(|t| self.rrsets.contains_key(t));
            likely.or_else(|| self.rrsets.keys().next().copied())?
        } else {
            qtype
        };
        let find = |rtype| {
            self.answers
                .iter()
                .find(|(t, _)| *t == rtype)
                .map(|(_, answer)| answer)
        };
        // A CNAME answers every type, with the target's records when they
        // were found here (see `chase`).
        find(wanted).or_else(|| {
            self.rrsets
                .contains_key(&RecordType::CNAME)
                .then(|| find(RecordType::CNAME))
                .flatten()
        })
    }

    /// The CNAME chain for `qtype` when the zone files leave it open: the
    /// registry may have what its last target holds.
    pub(crate) fn open_chain(&self, qtype: RecordType) -> Option<(&[Record], &VersionedAnswer)> {
        let (_, chain, held) = self.open_chains.iter().find(|(t, ..)| *t == qtype)?;
        Some((chain, held))
    }
}

/// Everything the zone files and the served domain's apex provide.
#[derive(Debug, Default)]
pub(crate) struct StaticData {
    pub(crate) apexes: HashMap<NameKey, Arc<Apex>>,
    /// The most labels an apex has: only that many of a question's
    /// suffixes can be one, so finding its zone takes that many probes
    /// however many labels the question has.
    pub(crate) apex_labels: usize,
    pub(crate) nodes: HashMap<NameKey, StaticNode>,
    /// `in-addr.arpa.` and `ip6.arpa.` with the served domain's SOA: the
    /// SOA of the NODATA answers at registered addresses' reverse names
    /// and the names above them. disco is no authority for the rest of
    /// those trees, which it forwards.
    reverse_apexes: Vec<Apex>,
    /// The zones' names.
    origins: Vec<Name>,
}

impl StaticData {
    /// Indexes the zone files, and synthesises SOA and NS for the served
    /// `domain` when no zone file provides them.
    pub(crate) fn new(
        zone_files: Vec<ZoneFile>,
        domain: &Name,
        default_ttl: u32,
        ns_addresses: &[IpAddr],
    ) -> Self {
        let mut data = StaticData::default();
        let mut origins = Vec::new();
        for file in zone_files {
            origins.push(file.origin.clone());
            for record in file.records {
                data.add(record);
            }
        }
        if !data
            .nodes
            .get(&name_key(domain))
            .is_some_and(|n| n.rrsets.contains_key(&RecordType::SOA))
        {
            origins.push(domain.clone());
            for record in synthesised_apex(domain, default_ttl, ns_addresses) {
                data.add(record);
            }
        }
        // Empty non-terminals: every name between a record and its origin
        // exists, so it is NODATA, not NXDOMAIN (RFC 8020).
        let names: Vec<Name> = data
            .nodes
            .values()
            .flat_map(|n| n.rrsets.values())
            .map(|r| r[0].name.clone())
            .collect();
        for name in names {
            let mut ancestor = name.base_name();
            while origins.iter().any(|o| o.zone_of(&ancestor)) && !ancestor.is_root() {
                data.nodes.entry(name_key(&ancestor)).or_default();
                ancestor = ancestor.base_name();
            }
        }
        for origin in &origins {
            let key = name_key(origin);
            if let Some(soa) = data
                .nodes
                .get(&key)
                .and_then(|n| n.rrsets.get(&RecordType::SOA))
            {
                let mut apex = Apex::new(&soa[0]);
                apex.dynamic = origin == domain;
                data.apexes.insert(key, Arc::new(apex));
                data.apex_labels = data.apex_labels.max(origin.num_labels().into());
            }
        }
        let domain_soa = &data.nodes[&name_key(domain)].rrsets[&RecordType::SOA][0];
        data.reverse_apexes = ["in-addr.arpa.", "ip6.arpa."]
            .into_iter()
            .map(|tree| {
                let mut soa = domain_soa.clone();
                soa.name = Name::from_ascii(tree).expect("a valid name");
                Apex::new(&soa)
            })
            .collect();
        data.origins = origins;
        data.encode_answers();
        data
    }

    /// In-zone name servers of the zones with no A or AAAA record here,
    /// as (zone, name server). One outside its zone needs no glue.
    pub(crate) fn name_servers_without_address(&self) -> Vec<(String, String)> {
        let mut missing = Vec::new();
        for origin in &self.origins {
            let apex = self.nodes.get(&name_key(origin));
            for record in apex
                .and_then(|n| n.rrsets.get(&RecordType::NS))
                .into_iter()
                .flatten()
            {
                let RData::NS(NS(target)) = &record.data else {
                    continue;
                };
                let has_address = self.nodes.get(&name_key(target)).is_some_and(|node| {
                    node.rrsets.contains_key(&RecordType::A)
                        || node.rrsets.contains_key(&RecordType::AAAA)
                });
                if origin.zone_of(target) && !has_address {
                    missing.push((origin.to_ascii(), target.to_ascii()));
                }
            }
        }
        missing
    }

    /// The reverse tree (`in-addr.arpa.` or `ip6.arpa.`) `key` is below.
    pub(crate) fn reverse_apex(&self, key: &[u8]) -> Option<&Apex> {
        (self.reverse_apexes.iter())
            .find(|apex| key.len() > apex.key.len() && key.ends_with(&apex.key))
    }

    /// Every RRset of the zone files and the served domain's apex.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(crate) fn rrsets(&self) -> impl Iterator<Item = &[Record]> {
        (self.nodes.values())
            .flat_map(|node| node.rrsets.values())
            .map(Vec::as_slice)
    }

    fn add(&mut self, record: Record) {
        let node = self.nodes.entry(name_key(&record.name)).or_default();
        node.rrsets
            .entry(record.record_type())
            .or_default()
            .push(record);
    }

    fn encode_answers(&mut self) {
        let mut encoded = Vec::new();
        let mut open_chains = Vec::new();
        for (key, node) in &self.nodes {
            for (&rtype, rrset) in &node.rrsets {
                let mut sections = Sections {
                    answers: rrset.clone(),
                    ..Sections::default()
                };
                sections.shuffle = matches!(rtype, RecordType::A | RecordType::AAAA);
                self.add_glue(rrset, &mut sections);
                encoded.push((
                    key.clone(),
                    rtype,
                    WireAnswer::encode(&rrset[0].name, rtype, &sections),
                ));
            }
            if let Some(cname) = node.rrsets.get(&RecordType::CNAME) {
                for rtype in CHASED_TYPES {
                    let answers = self.chase(&cname[0], rtype);
                    if self.is_open(&answers) {
                        open_chains.push((key.clone(), rtype, answers.clone()));
                    }
                    if answers.len() > 1 {
                        let sections = Sections {
                            answers,
                            ..Sections::default()
                        };
                        encoded.push((
                            key.clone(),
                            rtype,
                            WireAnswer::encode(&cname[0].name, rtype, &sections),
                        ));
                    }
                }
            }
        }
        for (key, rtype, answer) in encoded {
            self.nodes
                .get_mut(&key)
                .expect("encoded from this map")
                .answers
                .push((rtype, answer));
        }
        for (key, rtype, chain) in open_chains {
            let node = self.nodes.get_mut(&key).expect("chased from this map");
            node.open_chains
                .push((rtype, chain, VersionedAnswer::default()));
        }
    }

    /// Whether a chain from [`Self::chase`] ends at a name the zone files
    /// have no data of its type at, nor a CNAME (the chain did not stop on
    /// a loop): that name's data may come from the registry.
    fn is_open(&self, chain: &[Record]) -> bool {
        let Some(RData::CNAME(last)) = chain.last().map(|r| &r.data) else {
            return false;
        };
        !(self.nodes.get(&name_key(&last.0)))
            .is_some_and(|node| node.rrsets.contains_key(&RecordType::CNAME))
    }

    /// The CNAME chain from `cname` (at most 8 links, so loops end) and the
    /// final target's `rtype` records, as far as the zone files hold them.
    fn chase(&self, cname: &Record, rtype: RecordType) -> Vec<Record> {
        let mut answers = vec![cname.clone()];
        let mut target = cname.clone();
        for _ in 0..8 {
            let RData::CNAME(next) = &target.data else {
                break;
            };
            let Some(node) = self.nodes.get(&name_key(&next.0)) else {
                break;
            };
            if let Some(records) = node.rrsets.get(&rtype) {
                answers.extend(records.iter().cloned());
                break;
            }
            match node.rrsets.get(&RecordType::CNAME) {
                Some(records) => {
                    target = records[0].clone();
                    answers.push(target.clone());
                }
                None => break,
            }
        }
        answers
    }

    /// Addresses of the targets of SRV, MX and NS records, and the target's
    /// records of a CNAME, when this data has them.
    fn add_glue(&self, rrset: &[Record], sections: &mut Sections) {
        for record in rrset {
            let target = match &record.data {
                RData::SRV(srv) => &srv.target,
                RData::MX(mx) => &mx.exchange,
                RData::NS(ns) => &ns.0,
                _ => continue,
            };
            if let Some(node) = self.nodes.get(&name_key(target)) {
                for rtype in [RecordType::A, RecordType::AAAA] {
                    sections
                        .additionals
                        .extend(node.rrsets.get(&rtype).into_iter().flatten().cloned());
                }
            }
        }
    }
}

/// SOA and NS for a served domain that has no zone file, and the NS's
/// addresses (the glue a delegating resolver needs).
fn synthesised_apex(domain: &Name, default_ttl: u32, ns_addresses: &[IpAddr]) -> Vec<Record> {
    let label = |l: &str| {
        Name::from_ascii(l)
            .and_then(|n| n.append_domain(domain))
            .expect("valid label")
    };
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    let soa = SOA::new(
        label("ns"),
        label("hostmaster"),
        serial,
        3600,
        600,
        86400,
        default_ttl,
    );
    let mut records = vec![
        Record::from_rdata(domain.clone(), 3600, RData::SOA(soa)),
        Record::from_rdata(domain.clone(), 3600, RData::NS(NS(label("ns")))),
    ];
    for &address in ns_addresses {
        // The NS's TTL: a resolver keeps glue as long as the delegation.
        records.push(crate::dns::records::address_record(
            &label("ns"),
            address,
            3600,
        ));
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::SnapshotBuilder;
    use crate::dns::snapshot::Lookup;
    use crate::dns::zonefile::load_file;
    use crate::model::parse_native;

    fn zone_file(text: &str) -> ZoneFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disco.internal.zone");
        std::fs::write(&path, text).unwrap();
        load_file(&path).unwrap()
    }

    const APEX: &str = "$TTL 30\n@ IN SOA ns hostmaster 1 3600 600 86400 5\n@ IN NS ns\n";

    /// The types of the answer section's records.
    fn answered(answer: &WireAnswer) -> Vec<RecordType> {
        let sections = answer.sections();
        sections.answers.iter().map(Record::record_type).collect()
    }

    #[test]
    fn rfc8482_any_prefers_what_clients_ask_it_for() {
        let text = format!("{APEX}@ IN MX 10 mail\nmail IN A 192.0.2.25\n");
        let domain = Name::from_ascii("disco.internal.").unwrap();
        let data = StaticData::new(vec![zone_file(&text)], &domain, 5, &[]);
        let apex = &data.nodes[&name_key(&domain)];
        // MX rather than NS, the lowest type there.
        assert_eq!(
            answered(apex.answer(RecordType::ANY).unwrap()),
            [RecordType::MX]
        );
    }

    #[test]
    fn a_name_server_without_glue_is_reported() {
        let domain = Name::from_ascii("disco.internal.").unwrap();
        // Listening on a wildcard only: the synthesised NS has no address.
        let data = StaticData::new(Vec::new(), &domain, 5, &[]);
        let missing = [(
            "disco.internal.".to_owned(),
            "ns.disco.internal.".to_owned(),
        )];
        assert_eq!(data.name_servers_without_address(), missing);
        let address = "192.0.2.53".parse().unwrap();
        let data = StaticData::new(Vec::new(), &domain, 5, &[address]);
        assert_eq!(data.name_servers_without_address(), []);
        // The zone file's NS has its address.
        let text = format!("{APEX}ns IN AAAA 2001:db8::53\n");
        let data = StaticData::new(vec![zone_file(&text)], &domain, 5, &[]);
        assert_eq!(data.name_servers_without_address(), []);
    }

    #[test]
    fn rfc1034_a_cname_to_a_registered_name_is_followed_into_the_registry() {
        let text = format!("{APEX}www IN CNAME web\n");
        let mut builder = SnapshotBuilder::new("disco.internal.", vec![zone_file(&text)], 5, &[]);
        let key = name_key(&Name::from_ascii("www.disco.internal.").unwrap());
        let types = |builder: &SnapshotBuilder, qtype| match builder.snapshot().lookup(&key, qtype)
        {
            Lookup::Answer(answer) => answered(&answer),
            _ => Vec::new(),
        };
        assert_eq!(types(&builder, RecordType::A), [RecordType::CNAME]);
        let web_1 = parse_native("web", "web-1", br#"{"address":"10.0.0.1","port":80}"#);
        builder.apply([(None, Some(Arc::new(web_1.unwrap())))]);
        let types = |qtype| types(&builder, qtype);
        assert_eq!(types(RecordType::A), [RecordType::CNAME, RecordType::A]);
        assert_eq!(types(RecordType::SRV), [RecordType::CNAME, RecordType::SRV]);
        // Nothing of that type at the target: the CNAME alone, for the
        // resolver to ask about the target.
        assert_eq!(types(RecordType::TXT), [RecordType::CNAME]);
        assert_eq!(types(RecordType::CNAME), [RecordType::CNAME]);
    }
}
