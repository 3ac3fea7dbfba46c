//! disco's hand-written answers against hickory-server's, byte for byte, for
//! the same data.
//!
//! One data set covers every row of DESIGN §2 and a zone file
//! ([`disco::fuzzing::fixture`], which the fuzz targets answer from too). disco serves
//! it as `disco serve` does. hickory-server serves [`EXPECTED`]: the records
//! DESIGN §2 says that data gives, written out by hand in a zone file of
//! this test's own and read by hickory's parser, not taken from disco's
//! snapshot, from its in-memory zone handler behind its own `Server` and
//! `Catalog`. So both what disco answers (which names, targets, TTLs,
//! instances) and how (the query parser, the answers encoded once and
//! patched per query, the negative answers, EDNS) are compared. The
//! questions are every name and type of either side's records, so a name
//! disco serves that the expectation lacks is asked too. Both get the same
//! packets over UDP and TCP, with and without EDNS, each name as listed and
//! case-mixed, and every response is compared in order, byte for byte, with
//! names written out in full (the two compress names differently, see
//! [`wire::Wire`]), after the normalisations in [`normalise`]: each one
//! undoes a difference that is disco's on purpose or hickory's own, and
//! nothing else. The RA flag needs none: the harness gives disco no
//! upstream, so it offers no recursion, and hickory's authoritative zones
//! never do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::zone_handler::Catalog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use disco::config::ServeConfig;
use disco::dns::{Snapshot, SnapshotBuilder};
use disco::fuzzing::fixture::{DOMAIN, ZONE_FILE, fleet};
use disco::model::Instance;

use crate::support::*;
use wire::{ADDITIONAL, ANSWER, AUTHORITY, Wire, describe, first_difference, name_end, rtype_of};

mod wire;

/// What disco must serve for [`fleet`] and [`ZONE_FILE`], per DESIGN §2,
/// stated independently of its code: the zone file as is; per service its
/// addresses, one SRV per instance on its primary port (priority and
/// weight as registered, else 0 and 100) and its RFC 2782 name; per tag
/// and pair of tags (either order) the same for the instances carrying
/// them; per named port its Kubernetes-style SRV; per instance its
/// address, SRV and metadata as TXT strings (sorted by key); a PTR per
/// registered address. An RRset's TTL is the least of its records'
/// (RFC 2181 §5.2): a registration's `ttl`, else `--ttl` (5). A
/// registration without a port has no SRV. PTRs of one address are in
/// name order (the only multi-record answers not compared as multisets).
const EXPECTED: &str = r#"$ORIGIN disco.internal.
@                      30 IN SOA   ns hostmaster 2026112201 3600 600 86400 5
@                      30 IN NS    ns
@                      30 IN MX    10 mail
ns                     30 IN A     127.0.0.1
mail                   30 IN A     192.0.2.25
docs                   30 IN A     192.0.2.10
docs                   30 IN A     192.0.2.11
docs                   30 IN TXT   "owner=platform" "tier=2"
alias                  30 IN CNAME docs
www                    30 IN CNAME web
a.b.deep               30 IN TXT   "below two empty non-terminals"

web                     3 IN A     10.0.0.5
web                     3 IN A     10.0.0.6
web                     3 IN AAAA  fd00::7
web                     3 IN SRV   0 100 8080 web-1.web
web                     3 IN SRV   0 100 8080 web-2.web
web                     3 IN SRV   10 5 8080 web-3.web
_web._tcp               3 IN SRV   0 100 8080 web-1.web
_web._tcp               3 IN SRV   0 100 8080 web-2.web
_web._tcp               3 IN SRV   10 5 8080 web-3.web
v2.web                  5 IN A     10.0.0.5
v2.web                  5 IN A     10.0.0.6
v2.web                  5 IN SRV   0 100 8080 web-1.web
v2.web                  5 IN SRV   0 100 8080 web-2.web
primary.web             5 IN A     10.0.0.5
primary.web             5 IN SRV   0 100 8080 web-1.web
v2.primary.web          5 IN A     10.0.0.5
v2.primary.web          5 IN SRV   0 100 8080 web-1.web
primary.v2.web          5 IN A     10.0.0.5
primary.v2.web          5 IN SRV   0 100 8080 web-1.web
canary.web              3 IN AAAA  fd00::7
canary.web              3 IN SRV   10 5 8080 web-3.web
_http._tcp.web          5 IN SRV   0 100 8080 web-1.web
_http._tcp.web          5 IN SRV   0 100 8081 web-2.web
_metrics._tcp.web       5 IN SRV   0 100 9100 web-1.web
web-1.web               5 IN A     10.0.0.5
web-1.web               5 IN SRV   0 100 8080 web-1.web
web-1.web               5 IN TXT   "owner=team-a" "version=1.4.2"
web-2.web              60 IN A     10.0.0.6
web-2.web              60 IN SRV   0 100 8080 web-2.web
web-3.web               3 IN AAAA  fd00::7
web-3.web               3 IN SRV   10 5 8080 web-3.web

api.billing             5 IN A     10.1.0.1
api.billing             5 IN SRV   0 100 9000 b-1.api.billing
b-1.api.billing         5 IN A     10.1.0.1
b-1.api.billing         5 IN SRV   0 100 9000 b-1.api.billing
b-1.api.billing         5 IN TXT   "team=billing"

dns                     5 IN A     10.2.0.1
dns                     5 IN SRV   0 100 53 d-1.dns
_dns._udp               5 IN SRV   0 100 53 d-1.dns
d-1.dns                 5 IN A     10.2.0.1
d-1.dns                 5 IN SRV   0 100 53 d-1.dns

cache                   5 IN A     10.0.0.5
c-1.cache               5 IN A     10.0.0.5

5.0.0.10.in-addr.arpa.  5 IN PTR   c-1.cache
5.0.0.10.in-addr.arpa.  5 IN PTR   web-1.web
6.0.0.10.in-addr.arpa. 60 IN PTR   web-2.web
1.0.1.10.in-addr.arpa.  5 IN PTR   b-1.api.billing
1.0.2.10.in-addr.arpa.  5 IN PTR   d-1.dns
7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 3 IN PTR web-3.web
"#;

/// Questions with no data or no name, beside those the RRsets give.
const NEGATIVES: [(&str, RecordType); 15] = [
    // NXDOMAIN: no such name, and names under a service that are neither
    // tag nor instance nor named port.
    ("nope.disco.internal.", RecordType::A),
    ("nope.web.disco.internal.", RecordType::A),
    ("nope.v2.web.disco.internal.", RecordType::SRV),
    ("_nope._tcp.web.disco.internal.", RecordType::SRV),
    // NODATA: names with other types.
    ("disco.internal.", RecordType::A),
    ("docs.disco.internal.", RecordType::AAAA),
    ("web.disco.internal.", RecordType::TXT),
    ("web-1.web.disco.internal.", RecordType::MX),
    ("_web._tcp.disco.internal.", RecordType::A),
    ("cache.disco.internal.", RecordType::SRV),
    // NODATA: empty non-terminals, registered and static.
    ("billing.disco.internal.", RecordType::A),
    ("_tcp.disco.internal.", RecordType::SRV),
    ("_tcp.web.disco.internal.", RecordType::SRV),
    ("b.deep.disco.internal.", RecordType::TXT),
    // REFUSED: outside every zone, and no upstream to forward to.
    ("example.com.", RecordType::A),
];

/// Types asked at each CNAME, whose answers follow the alias.
const CHASED: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::TXT];

/// The EDNS size the queries advertise. hickory answers with the client's
/// size, disco with its own 1,232 (RFC 6891 lets each say its own): asking
/// with 1,232 keeps that one byte pair out of the comparison.
const EDNS_SIZE: u16 = 1232;

/// How each question is asked: over UDP and TCP, with and without EDNS.
const WAYS: [(Over, Option<u16>); 4] = [
    (Over::Udp, None),
    (Over::Udp, Some(EDNS_SIZE)),
    (Over::Tcp, None),
    (Over::Tcp, Some(EDNS_SIZE)),
];

#[tokio::test]
async fn disco_answers_as_hickory_server_does_for_the_same_records() {
    let disco = TestServer::start_with(fleet(), &[ZONE_FILE], |_| {}).await;
    let expected = expected_records();
    let hickory = HickoryServer::start(&expected).await;
    // disco's own RRsets only add questions: their answers come from
    // hickory's zone of the expected records.
    let served = snapshot(&fleet(), &[ZONE_FILE]).rrsets();
    let mut records: Vec<&Record> = expected.iter().collect();
    records.extend(served.iter().flat_map(|rrset| &rrset.records));

    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, rtype) in questions(&records) {
        // Names compare case-insensitively; the question is echoed as asked.
        for name in [name.clone(), mixed_case(&name)] {
            for (over, edns) in WAYS {
                let packet = query_message(&name, rtype, edns);
                let ours = over.exchange(disco.dns, &packet).await;
                let theirs = over.exchange(hickory.addr(over), &packet).await;
                compared += 1;
                if let Err(difference) = compare(rtype, &ours, &theirs) {
                    failures.push(format!(
                        "{name} {rtype} over {over:?}, EDNS size {edns:?}: {difference}\n\
                         disco:\n{}hickory:\n{}",
                        describe(&ours),
                        describe(&theirs),
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} responses differ from hickory-server's:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    disco.stop().await;
}

/// disco's snapshot of `instances` and `zones`, built from the same flags
/// and by the same code as `disco serve`'s.
fn snapshot(instances: &[Instance], zones: &[(&str, &str)]) -> Snapshot {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in zones {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let config = ServeConfig::from_args(test_args(dir.path())).unwrap();
    let mut builder = SnapshotBuilder::new(
        &config.domain,
        config.zones,
        config.ttl,
        &config.ns_addresses,
    );
    builder.apply(instances.iter().map(|i| (None, Some(Arc::new(i.clone())))));
    builder.snapshot()
}

/// [`EXPECTED`]'s records, as hickory's zone-file parser reads them.
fn expected_records() -> Vec<Record> {
    let origin = Name::from_ascii(DOMAIN).unwrap();
    let (_, sets) = Parser::new(EXPECTED, None, Some(origin))
        .parse()
        .expect("the expected zone parses");
    (sets.into_values())
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect()
}

/// Every (name, type) of the records, ANY at each of their names, the
/// types a CNAME's answer follows, and [`NEGATIVES`].
fn questions(records: &[&Record]) -> Vec<(String, RecordType)> {
    let mut questions: Vec<(String, RecordType)> = Vec::new();
    for record in records {
        let name = record.name.to_ascii();
        let rtype = record.record_type();
        let mut types = vec![rtype];
        if rtype == RecordType::CNAME {
            types.extend(CHASED);
        }
        questions.extend(types.into_iter().map(|t| (name.clone(), t)));
        questions.push((name, RecordType::ANY));
    }
    questions.extend(NEGATIVES.map(|(name, rtype)| (name.to_owned(), rtype)));
    questions.sort();
    questions.dedup();
    questions
}

/// hickory-server on 127.0.0.1, serving the RRsets from in-memory zones. It
/// stops when dropped.
struct HickoryServer {
    udp: SocketAddr,
    tcp: SocketAddr,
    _server: Server<Catalog>,
}

impl HickoryServer {
    async fn start(records: &[Record]) -> Self {
        // The loader the differential fuzz target shares: the served
        // domain's SOA from the records, a placeholder SOA for the reverse
        // trees, where disco answers PTR without an SOA of its own (only
        // negative answers, not compared there, would show it).
        let domain = Name::from_ascii(DOMAIN).unwrap();
        let catalog = disco::fuzzing::reference::records_catalog(&domain, records);
        let mut server = Server::new(catalog);
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65_535);
        HickoryServer {
            udp: addrs.0,
            tcp: addrs.1,
            _server: server,
        }
    }

    fn addr(&self, over: Over) -> SocketAddr {
        match over {
            Over::Udp => self.udp,
            Over::Tcp => self.tcp,
        }
    }
}

/// A transport.
#[derive(Debug, Clone, Copy)]
enum Over {
    Udp,
    Tcp,
}

impl Over {
    /// Sends one query to `server` and returns the response.
    async fn exchange(self, server: SocketAddr, packet: &[u8]) -> Vec<u8> {
        match self {
            Over::Udp => raw_udp(server, packet).await,
            Over::Tcp => tcp_exchange(server, packet).await,
        }
        .unwrap_or_else(|| panic!("no answer over {self:?} from {server}"))
    }
}

/// One query over a fresh TCP connection (RFC 1035 §4.2.2 framing); the
/// response, if one comes within 1 s.
async fn tcp_exchange(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        stream
            .write_all(&(packet.len() as u16).to_be_bytes())
            .await?;
        stream.write_all(packet).await?;
        let mut response = vec![0; stream.read_u16().await? as usize];
        stream.read_exact(&mut response).await?;
        std::io::Result::Ok(response)
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()?
        .ok()
}

/// `name` with every other letter in upper case.
fn mixed_case(name: &str) -> String {
    let mut upper = false;
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                upper = !upper;
            }
            if upper { c.to_ascii_uppercase() } else { c }
        })
        .collect()
}

/// Compares disco's response to a `qtype` question with hickory's.
fn compare(qtype: RecordType, disco: &[u8], hickory: &[u8]) -> Result<(), String> {
    let disco = Wire::cut(disco).map_err(|e| format!("disco: {e}"))?;
    let hickory = Wire::cut(hickory).map_err(|e| format!("hickory: {e}"))?;
    let (disco, hickory) = normalise(qtype, disco, hickory)?;
    match first_difference(&disco, &hickory) {
        None => Ok(()),
        Some(difference) => Err(difference),
    }
}

/// Undoes the differences that are disco's on purpose or hickory's own,
/// each by the narrowest change that does.
fn normalise(
    qtype: RecordType,
    mut disco: Wire,
    mut hickory: Wire,
) -> Result<(Wire, Wire), String> {
    // disco shuffles A and AAAA RRsets per response (DESIGN §2) by swapping
    // their records, each a fixed-size chunk, and rotates SRV sets; hickory
    // sends them in zone order. Such an answer is compared as a multiset of
    // records.
    for wire in [&mut disco, &mut hickory] {
        let answers = &mut wire.sections[ANSWER];
        let types = || answers.iter().map(|r| rtype_of(r));
        if answers.len() > 1
            && (types().all(|t| matches!(t, RecordType::A | RecordType::AAAA))
                || types().all(|t| t == RecordType::SRV))
        {
            answers.sort();
        }
    }
    // RFC 2308 §5: the SOA of a negative answer carries the lesser of its
    // TTL and its MINIMUM field as TTL, as disco's does; hickory sends the
    // SOA's own TTL.
    if hickory.sections[ANSWER].is_empty() {
        for record in &mut hickory.sections[AUTHORITY] {
            if rtype_of(record) == RecordType::SOA {
                let ttl_at = name_end(record) + 4;
                let ttl = u32::from_be_bytes(record[ttl_at..ttl_at + 4].try_into().unwrap());
                let minimum = u32::from_be_bytes(record[record.len() - 4..].try_into().unwrap());
                record[ttl_at..ttl_at + 4].copy_from_slice(&ttl.min(minimum).to_be_bytes());
            }
        }
    }
    // hickory answers SOA with the zone's NS RRset in the authority
    // section too; disco sends the SOA alone, which is all RFC 1034 §4.3.2
    // asks for.
    if qtype == RecordType::SOA {
        hickory.sections[AUTHORITY].retain(|r| rtype_of(r) != RecordType::NS);
    }
    // hickory's additional section holds the addresses of the first SRV,
    // MX or NS target only; disco's those of every target (DESIGN §2). The
    // first target's must be alike; the others' are left out, once checked
    // to be addresses.
    let has_targets = (disco.sections[ANSWER].iter()).any(|r| {
        matches!(
            rtype_of(r),
            RecordType::SRV | RecordType::MX | RecordType::NS
        )
    });
    if has_targets {
        let others: Vec<&Vec<u8>> = (disco.sections[ADDITIONAL].iter())
            .filter(|r| !hickory.sections[ADDITIONAL].contains(r))
            .collect();
        if let Some(other) = others
            .iter()
            .find(|r| !matches!(rtype_of(r), RecordType::A | RecordType::AAAA))
        {
            return Err(format!(
                "disco's additional {} record is not an address",
                rtype_of(other)
            ));
        }
        let hickorys = hickory.sections[ADDITIONAL].clone();
        disco.sections[ADDITIONAL].retain(|r| hickorys.contains(r));
    }
    Ok((disco, hickory))
}
