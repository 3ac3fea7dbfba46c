//! Any registration value, in each format disco reads (native, SkyDNS,
//! Nerve): parsed as a backend parses it, and when accepted, served beside
//! the [`fixture`] registrations, asked about every name it gives, then
//! withdrawn. A value the parser accepts must never make building the
//! snapshot or answering from it panic, and withdrawing it must leave the
//! rest as it was.
//!
//! The input is the format (its first byte, modulo 3), then the key's
//! parts and the value, separated by newlines: `service\ninstance\nvalue`
//! (native), `key\nvalue` (SkyDNS, below `/skydns`), `directory\nnode
//! name\nvalue` (Nerve).

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{ask, fixture};
use crate::dns::records;
use crate::dns::{SnapshotBuilder, ZoneFile};
use crate::model::{Instance, SkyEntry, native_value, parse_native, parse_nerve, parse_skydns};

/// The SkyDNS prefix keys are read below.
const SKYDNS_PREFIX: &str = "/skydns";

/// The types asked at each name a registration gives.
const ASKED: [RecordType; 9] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::PTR,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::MX,
    RecordType::ANY,
];

/// Parses `data` as one registration and serves it.
pub fn run(data: &[u8]) {
    let Some((&format, rest)) = data.split_first() else {
        return;
    };
    match format % 3 {
        0 => {
            let Some((key, value)) = split_lines(rest, 2) else {
                return;
            };
            let [service, id] = key[..] else { return };
            if let Ok(instance) = parse_native(service, id, value) {
                // What the registrar writes reads back the same.
                let written = native_value(&instance);
                let read = parse_native(instance.service.as_str(), instance.id.as_str(), &written);
                assert_eq!(
                    read.ok().as_ref(),
                    Some(&instance),
                    "native value round trip"
                );
                serve_instance(instance);
            }
        }
        1 => {
            let Some((key, value)) = split_lines(rest, 1) else {
                return;
            };
            if let Ok(entry) = parse_skydns(SKYDNS_PREFIX, key[0], value, None) {
                serve_entry(entry);
            }
        }
        _ => {
            let Some((key, value)) = split_lines(rest, 2) else {
                return;
            };
            let [directory, node] = key[..] else { return };
            if let Ok(instance) = parse_nerve(directory, node, value) {
                serve_instance(instance);
            }
        }
    }
}

/// The first `n` lines of `data`, as text (the key's parts), and the rest
/// (the value, read as bytes as the backends read it).
fn split_lines(data: &[u8], n: usize) -> Option<(Vec<&str>, &[u8])> {
    let mut parts = data.splitn(n + 1, |&b| b == b'\n');
    let lines = (parts.by_ref().take(n))
        .map(|line| std::str::from_utf8(line).ok())
        .collect::<Option<Vec<&str>>>()?;
    Some((lines, parts.next()?))
}

/// A builder holding the fixture's data.
fn fixture_builder() -> SnapshotBuilder {
    let zones: Vec<ZoneFile> = fixture::zone_files(&[fixture::ZONE_FILE]);
    let mut builder = SnapshotBuilder::new(fixture::DOMAIN, zones, fixture::TTL, &[]);
    let fleet = fixture::fleet();
    builder.apply(fleet.into_iter().map(|i| (None, Some(Arc::new(i)))));
    builder
}

fn serve_instance(instance: Instance) {
    let instance = Arc::new(instance);
    let mut builder = fixture_builder();
    let before = builder.snapshot().instances();
    let replaced = (fixture::fleet().iter())
        .find(|i| i.service == instance.service && i.id == instance.id)
        .map(|i| Arc::new(i.clone()));
    builder.apply([(replaced.clone(), Some(instance.clone()))]);
    let after = builder.snapshot().instances();
    let replacing = usize::from(replaced.is_some());
    if after + replacing == before {
        // Left out, as withdrawn: its names do not fit below the domain.
        return;
    }
    assert_eq!(after, before + 1 - replacing, "added or replaced");

    let zone = Name::from_ascii(fixture::DOMAIN).expect("a valid name");
    let service = records::service_name(&instance.service, &zone);
    let tags: Vec<&str> = instance.tags.iter().map(|t| &**t).collect();
    let mut names = vec![
        service.clone(),
        records::instance_name(&instance, &zone),
        records::arpa_name(instance.address),
        records::rfc2782_name(&instance.service, instance.protocol, &zone),
    ];
    names.extend(tags.iter().map(|tag| records::tag_name(&[tag], &service)));
    // All its tags at once, when they fit in a name.
    let all_tags = Name::from_ascii(tags.join(".")).and_then(|t| t.append_domain(&service));
    names.extend(all_tags.ok().filter(|_| !tags.is_empty()));
    names.extend(
        (instance.ports.keys())
            .map(|port| records::named_port_name(port, instance.protocol, &service)),
    );
    ask_about(&builder, &names);

    builder.apply([(Some(instance), replaced)]);
    assert_eq!(builder.snapshot().instances(), before, "withdrawn");
}

fn serve_entry(entry: SkyEntry) {
    let entry = Arc::new(entry);
    let mut builder = fixture_builder();
    builder.apply_record(0, None, Some(&entry));
    // The entry's name, the names above it (whose answers hold its
    // subtree), wildcards beside it, and its host as a name.
    let mut names = Vec::new();
    if let Ok(name) = Name::from_ascii(format!("{}.", entry.name)) {
        let mut above = name.clone();
        while above.num_labels() > 0 {
            let wildcard = Name::from_ascii("*").and_then(|w| w.append_domain(&above));
            names.extend(wildcard.ok());
            names.push(above.clone());
            above = above.base_name();
        }
    }
    names.extend(Name::from_ascii(format!("{}.", entry.host)).ok());
    if let Ok(address) = entry.host.parse() {
        names.push(records::arpa_name(address));
    }
    names.truncate(16);
    ask_about(&builder, &names);
    builder.apply_record(0, Some(&entry), None);
}

/// Asks the builder's snapshot about every name with every type of
/// [`ASKED`].
fn ask_about(builder: &SnapshotBuilder, names: &[Name]) {
    let responder = fixture::responder(builder.snapshot(), true);
    for name in names {
        for rtype in ASKED {
            ask::answer_checked(&responder, &ask::query_packet(name, rtype, Some(1232)));
        }
    }
}
