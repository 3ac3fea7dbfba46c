//! The snapshot as a list of RRsets: what a conventional authoritative
//! server, one that stores records and builds every response, would need to
//! answer as disco does. The tests serve that list from hickory-server and
//! compare its responses with disco's byte for byte
//! (`tests/integration/hickory_parity.rs`). Nothing on the query path uses
//! it.

use hickory_proto::rr::{Name, Record, RecordType};

use super::{DynNode, Snapshot, nodes};
use crate::dns::name::name_key;
use crate::dns::records;

/// The types an instance's own name has records of.
const INSTANCE_TYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
];

/// The types a subset's name (a service, a tag, a port) has records of.
const SUBSET_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::SRV];

/// The records of one name and type.
#[derive(Debug, Clone)]
pub struct RrSet {
    /// The owner name.
    pub name: Name,
    /// The type of every record.
    pub rtype: RecordType,
    /// The records, in the order disco answers them (before any shuffle).
    pub records: Vec<Record>,
}

impl Snapshot {
    /// Every RRset the snapshot holds at a fixed name: the zone files'
    /// records with the served domain's SOA and NS (synthesised or not),
    /// and for each native service the records at its name, its tags' and
    /// pairs of tags' (`v2.primary.web.<domain>`, both orders), its named
    /// ports', its RFC 2782 names, its instances' and their addresses'
    /// reverse names. A zone-file record hides a registered one of the same
    /// name and type, as in [`Snapshot::lookup`].
    ///
    /// Not listed: SkyDNS entries (whose answers are subtrees).
    /// O(instances), for tests and tools only.
    pub fn rrsets(&self) -> Vec<RrSet> {
        let mut all: Vec<RrSet> = (self.statics.rrsets())
            .map(|records| RrSet {
                name: records[0].name.clone(),
                rtype: records[0].record_type(),
                records: records.to_vec(),
            })
            .collect();
        let zone = &self.zone;
        let mut dynamic = Vec::new();
        for node in self.names.values() {
            // RFC 2782 subsets are listed with their service.
            let DynNode::Service(service) = node else {
                continue;
            };
            for subset in service.subsets() {
                let owner = subset.owner(&zone.name);
                for rtype in SUBSET_TYPES {
                    let records = subset.sections(&owner, rtype, zone);
                    dynamic.push((owner.clone(), rtype, records.map(|s| s.answers)));
                }
            }
            for instance in service.all.members() {
                let name = instance.name(zone);
                for rtype in INSTANCE_TYPES {
                    let records = instance.sections(&name, rtype, zone);
                    dynamic.push((name.clone(), rtype, records.map(|s| s.answers)));
                }
            }
        }
        for (address, entry) in self.reverse.iter() {
            let owner = records::arpa_name(address);
            let records = nodes::ptr_records(&owner, entry.members(), zone);
            dynamic.push((owner, RecordType::PTR, Some(records)));
        }
        let hidden_by_zone_files = |name: &Name, rtype| {
            (self.statics.nodes.get(&name_key(name))).is_some_and(|n| n.answer(rtype).is_some())
        };
        all.extend(dynamic.into_iter().filter_map(|(name, rtype, records)| {
            let records = records.filter(|r| !r.is_empty())?;
            (!hidden_by_zone_files(&name, rtype)).then_some(RrSet {
                name,
                rtype,
                records,
            })
        }));
        all
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::dns::SnapshotBuilder;
    use crate::dns::zonefile::load_file;
    use crate::model::parse_native;

    #[test]
    fn every_name_of_the_design_table_is_listed_and_zone_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disco.internal.zone");
        let zone = "@ 30 IN SOA ns hostmaster 1 3600 600 86400 5\nweb 30 IN A 192.0.2.1\n";
        std::fs::write(&path, zone).unwrap();
        let mut builder =
            SnapshotBuilder::new("disco.internal.", vec![load_file(&path).unwrap()], 5, &[]);
        let web_1 = parse_native(
            "web",
            "web-1",
            br#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080},"tags":["v2"],
                "meta":{"version":"1.4.2"}}"#,
        );
        builder.apply([(None, Some(Arc::new(web_1.unwrap())))]);
        let mut listed: Vec<String> = (builder.snapshot().rrsets().iter())
            .map(|rrset| format!("{} {} {}", rrset.name, rrset.rtype, rrset.records[0].data))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "5.0.0.10.in-addr.arpa. PTR web-1.web.disco.internal.",
                "_http._tcp.web.disco.internal. SRV 0 100 8080 web-1.web.disco.internal.",
                "_web._tcp.disco.internal. SRV 0 100 8080 web-1.web.disco.internal.",
                "disco.internal. SOA ns.disco.internal. hostmaster.disco.internal. 1 3600 600 86400 5",
                "v2.web.disco.internal. A 10.0.0.5",
                "v2.web.disco.internal. SRV 0 100 8080 web-1.web.disco.internal.",
                "web-1.web.disco.internal. A 10.0.0.5",
                "web-1.web.disco.internal. SRV 0 100 8080 web-1.web.disco.internal.",
                "web-1.web.disco.internal. TXT version=1.4.2",
                // The zone file's address, not the registered one.
                "web.disco.internal. A 192.0.2.1",
                "web.disco.internal. SRV 0 100 8080 web-1.web.disco.internal.",
            ]
        );
    }
}
