//! Any text as a zone file (`--zones-dir`): read as disco reads it, and when
//! accepted, served beside the [`fixture`] registrations and asked about
//! every name it holds. Whatever a file says, disco must not panic building
//! the snapshot or answering from it.
//!
//! The first byte picks the file's name, which is its origin: the served
//! domain (whose records mix with the registered ones), another zone, or a
//! reverse zone over the registered addresses.

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};

use super::{ask, fixture};

/// The file names a zone file is read under.
const FILE_NAMES: [&str; 3] = [
    "disco.internal.zone",
    "example.internal.zone",
    "0.10.in-addr.arpa.zone",
];

/// The types asked at each name the file holds.
const ASKED: [RecordType; 8] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::ANY,
];

/// At most this many of the file's records are asked about, to keep each
/// input fast.
const MAX_NAMES: usize = 16;

/// Reads `data` (after its first byte) as a zone file and serves it.
pub fn run(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = Path::new(FILE_NAMES[usize::from(which) % FILE_NAMES.len()]);
    let Ok(zone) = crate::dns::zonefile::parse(path, text) else {
        return;
    };
    // Each record's own name and type, the other types at its name, and a
    // name below it, which may or may not exist; and the registered names
    // the file may hide or lead to.
    let mut questions: Vec<(Name, RecordType)> = (zone.records.iter())
        .map(|r| (r.name.clone(), r.record_type()))
        .collect();
    questions.sort();
    questions.dedup();
    questions.truncate(MAX_NAMES);
    let mut names: Vec<Name> = questions.iter().map(|(name, _)| name.clone()).collect();
    names.dedup();
    let below: Vec<Name> = (names.iter())
        .filter_map(|name| Name::from_ascii("nx").ok()?.append_domain(name).ok())
        .collect();
    names.extend(below);
    for name in ["web.disco.internal.", "5.0.0.10.in-addr.arpa."] {
        names.push(Name::from_ascii(name).expect("a valid name"));
    }
    for name in &names {
        questions.extend(ASKED.map(|rtype| (name.clone(), rtype)));
    }
    let snapshot = fixture::snapshot(&fixture::fleet(), vec![zone]);
    let responder = fixture::responder(snapshot, true);
    for (name, rtype) in &questions {
        for edns in [None, Some(1232)] {
            ask::answer_checked(&responder, &ask::query_packet(name, *rtype, edns));
        }
    }
}
