//! disco against hickory-server, for questions a fuzzer makes up: both
//! answer from the same records (the [`fixture`] snapshot, and its RRsets
//! loaded into hickory-server's in-memory zones by [`reference::catalog`],
//! as `tests/integration/hickory_parity.rs` does for a fixed list of
//! names), and must agree on the response code, the answer section (as a
//! set) and the authority section (as a set).
//!
//! The input is read with `arbitrary` as up to eight questions, each a
//! name built over the names the snapshot holds (one of them, some labels
//! taken off its front, labels put on: the data set's own labels, `*`,
//! `any`, `_tcp`, or bytes from the input; letters' case flipped), an
//! arbitrary type, class IN, with or without RD and EDNS. Both are asked
//! over TCP, so that neither truncates.
//!
//! Deliberate differences, undone or left out before comparing (each is
//! disco's on purpose, or hickory's own, and said in DESIGN §2 or the
//! parity test):
//! - The SOA of a negative answer has the lesser of its TTL and MINIMUM
//!   as TTL (RFC 2308 §5), as disco's does; hickory sends the SOA's TTL.
//! - hickory answers an SOA question with the zone's NS in the authority
//!   section too; disco sends the SOA alone (RFC 1034 §4.3.2 asks no more).
//! - OPT as a question's type is FORMERR from disco (RFC 6891 §6.1.1: an
//!   OPT record lives in the additional section only); hickory looks it
//!   up as any type. IXFR is REFUSED by disco, as AXFR is by both (no zone
//!   transfers); hickory answers it as an ordinary question. For these
//!   two types disco's response code is checked, not compared.
//! - disco answers in the reverse trees (`in-addr.arpa.`, `ip6.arpa.`)
//!   for the registered addresses only, and leaves every other name there
//!   to its upstream (REFUSED without one); hickory is given the whole
//!   trees, with a placeholder SOA. There, a REFUSED from disco is not
//!   compared, nor the authority section of a negative answer: disco's
//!   cites the served domain's SOA, owned by the tree's top.
//! - The additional section is not compared: hickory adds the addresses
//!   of the first SRV, MX or NS target only, disco those of every target.
//!
//! The data set has no SkyDNS entries ([`Snapshot::rrsets`] does not list
//! the subtree answers they give), so `*` and `any` names are compared as
//! any other name, not as SkyDNS wildcards.
//!
//! [`Snapshot::rrsets`]: crate::dns::Snapshot::rrsets

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::zone_handler::Catalog;

use super::{ask, fixture, reference};
use crate::dns::Responder;
use crate::dns::responder::{Outcome, Transport};

/// At most this many questions per input.
const MAX_QUESTIONS: usize = 8;

/// Types worth asking more often than an arbitrary number finds them.
const TYPES: [RecordType; 22] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::ANY,
    RecordType::CAA,
    RecordType::HTTPS,
    RecordType::SVCB,
    RecordType::NULL,
    RecordType::HINFO,
    RecordType::DS,
    // Meta types, which no RRset has.
    RecordType::AXFR,
    RecordType::IXFR,
    RecordType::OPT,
    RecordType::TSIG,
    RecordType::ZERO,
    RecordType::Unknown(254),
];

/// At most this many of hickory's responses are remembered.
const REMEMBERED: usize = 100_000;

/// Labels put on the front of names, beside the data set's own.
const EXTRA_LABELS: [&str; 8] = ["*", "any", "_tcp", "_udp", "nope", "0", "-", "xn--a"];

/// What both servers answer from, and what questions are made of.
struct World {
    disco: Responder,
    hickory: Catalog,
    /// Every owner name of the data set, the domain, and names with no data.
    names: Vec<Name>,
    /// Every label of those names.
    labels: Vec<Vec<u8>>,
    /// `in-addr.arpa.` and `ip6.arpa.`.
    reverse: [Name; 2],
    /// hickory's response to each packet asked before. Its lookups are
    /// most of an input's cost (instrumented comparisons of names in its
    /// B-tree), the same questions come back often, and the reference's
    /// answer to a packet never changes; disco is asked every time.
    remembered: Mutex<HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl World {
    /// hickory's response to `packet`, asked once.
    fn reference(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let mut remembered = self.remembered.lock().expect("not poisoned");
        if let Some(response) = remembered.get(packet) {
            return response.clone();
        }
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        let response = reference::respond(&self.hickory, packet);
        remembered.insert(packet.to_vec(), response.clone());
        response
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let zones = fixture::zone_files(&[fixture::ZONE_FILE]);
        let snapshot = fixture::snapshot(&fixture::fleet(), zones);
        let domain = Name::from_ascii(fixture::DOMAIN).expect("a name");
        let rrsets = snapshot.rrsets();
        let hickory = reference::catalog(&domain, &rrsets);
        let mut names: Vec<Name> = rrsets.iter().map(|rrset| rrset.name.clone()).collect();
        names.extend(
            ["example.com.", "in-addr.arpa.", "ip6.arpa.", "."]
                .map(|n| Name::from_ascii(n).expect("a name")),
        );
        names.push(domain);
        names.sort();
        names.dedup();
        let mut labels: Vec<Vec<u8>> = (names.iter())
            .flat_map(|name| name.iter().map(<[u8]>::to_vec))
            .chain(EXTRA_LABELS.map(|l| l.as_bytes().to_vec()))
            .collect();
        labels.sort();
        labels.dedup();
        World {
            // No upstream, as the parity test runs it: a name outside the
            // zones is REFUSED, as hickory's catalog refuses it.
            disco: fixture::responder(snapshot, false),
            hickory,
            names,
            labels,
            reverse: ["in-addr.arpa.", "ip6.arpa."].map(|n| Name::from_ascii(n).expect("a name")),
            remembered: Mutex::default(),
        }
    })
}

/// One made-up question and how it is asked.
#[derive(Debug)]
struct Asked {
    name: Name,
    rtype: RecordType,
    recursion_desired: bool,
    edns: bool,
}

impl Asked {
    fn arbitrary(u: &mut Unstructured<'_>, world: &World) -> arbitrary::Result<Self> {
        let mut name = u.choose(&world.names)?.clone();
        for _ in 0..u.int_in_range(0..=3)? {
            name = name.base_name();
        }
        for _ in 0..u.int_in_range(0..=3)? {
            let label = if u.ratio(1, 4)? {
                let len = u.int_in_range(1..=8)?;
                u.bytes(len)?.to_vec()
            } else {
                u.choose(&world.labels)?.clone()
            };
            if let Ok(longer) = Name::from_labels([label]).and_then(|l| l.append_domain(&name)) {
                name = longer;
            }
        }
        if u.arbitrary()? {
            name = flip_case(&name, u.arbitrary()?);
        }
        let rtype = if u.ratio(3, 4)? {
            *u.choose(&TYPES)?
        } else {
            RecordType::from(u16::arbitrary(u)?)
        };
        Ok(Asked {
            name,
            rtype,
            recursion_desired: u.arbitrary()?,
            edns: u.arbitrary()?,
        })
    }

    fn packet(&self) -> Vec<u8> {
        let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = self.recursion_desired;
        let mut question = Question::query(self.name.clone(), self.rtype);
        question.set_query_class(DNSClass::IN);
        message.add_query(question);
        if self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            message.set_edns(edns);
        }
        message.to_vec().expect("a query with one question encodes")
    }
}

/// `name` with the case of each letter flipped where `mask`'s bit (by the
/// letter's place, cycling) is set.
fn flip_case(name: &Name, mask: u32) -> Name {
    let mut place = 0;
    let labels = name.iter().map(|label| {
        (label.iter())
            .map(|&b| {
                place = (place + 1) % 32;
                if b.is_ascii_alphabetic() && mask & (1 << place) != 0 {
                    b ^ 0x20
                } else {
                    b
                }
            })
            .collect::<Vec<u8>>()
    });
    Name::from_labels(labels.collect::<Vec<_>>()).unwrap_or_else(|_| name.clone())
}

/// Asks both servers the questions `data` makes, and compares.
pub fn run(data: &[u8]) {
    let world = world();
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_QUESTIONS {
        if u.is_empty() {
            break;
        }
        let Ok(asked) = Asked::arbitrary(&mut u, world) else {
            break;
        };
        compare(world, &asked);
    }
}

/// Asks `asked` of both servers; panics, saying how, when they differ.
fn compare(world: &World, asked: &Asked) {
    let packet = asked.packet();
    ask::answer_checked(&world.disco, &packet);
    let mut out = Vec::new();
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let outcome = (world.disco).respond(&packet, client, Transport::Tcp, &mut out);
    assert_eq!(
        outcome,
        Outcome::Reply,
        "{asked:?}: a query disco does not answer"
    );
    let ours = Message::from_vec(&out).expect("disco's reply parses");
    let rcode = ours.metadata.response_code;
    // Checked here, and hickory not asked, where the two differ on purpose
    // (see the module's doc); hickory's lookup is most of the cost.
    match asked.rtype {
        RecordType::OPT => {
            assert_eq!(rcode, ResponseCode::FormErr, "{asked:?}");
            return;
        }
        RecordType::IXFR => {
            assert_eq!(rcode, ResponseCode::Refused, "{asked:?}");
            return;
        }
        _ => {}
    }
    let reverse = world.reverse.iter().any(|tree| tree.zone_of(&asked.name));
    if reverse && rcode == ResponseCode::Refused {
        // Not a registered address: not disco's name.
        return;
    }
    let Some(theirs) = world.reference(&packet) else {
        return;
    };
    let theirs = Message::from_vec(&theirs).expect("hickory's reply parses");
    let differences = differences(asked.rtype, reverse, &ours, &theirs);
    assert!(
        differences.is_empty(),
        "{} {} (RD {}, EDNS {}): {}\ndisco: {ours}\nhickory: {theirs}",
        asked.name,
        asked.rtype,
        asked.recursion_desired,
        asked.edns,
        differences.join("; ")
    );
}

/// How the two responses differ, after the normalisations of the module's
/// doc.
fn differences(
    qtype: RecordType,
    reverse: bool,
    disco: &Message,
    hickory: &Message,
) -> Vec<String> {
    let mut differences = Vec::new();
    let (ours, theirs) = (disco.metadata.response_code, hickory.metadata.response_code);
    if ours != theirs {
        differences.push(format!("rcode {ours} against {theirs}"));
    }
    if set(&disco.answers) != set(&hickory.answers) {
        differences.push("answer sections differ".into());
    }
    let mut authority = hickory.authorities.clone();
    if hickory.answers.is_empty() {
        for record in &mut authority {
            if let RData::SOA(soa) = &record.data {
                record.ttl = record.ttl.min(soa.minimum);
            }
        }
    }
    if qtype == RecordType::SOA {
        authority.retain(|r| r.record_type() != RecordType::NS);
    }
    let placeholder = reverse && hickory.answers.is_empty();
    if !placeholder && set(&disco.authorities) != set(&authority) {
        differences.push("authority sections differ".into());
    }
    differences
}

/// Records as a set: each written out, names in lower case, sorted.
fn set(records: &[Record]) -> Vec<String> {
    let mut set: Vec<String> = (records.iter())
        .map(|r| r.to_string().to_ascii_lowercase())
        .collect();
    set.sort();
    set.dedup();
    set
}
