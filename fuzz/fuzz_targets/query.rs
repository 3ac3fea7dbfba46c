//! Any bytes, as a UDP or TCP query, against a snapshot with registered
//! services and a static zone: disco must never panic, and whatever it sends
//! must be a well-formed response to that query that fits the transport.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use disco::dns::handler::{Outcome, RecursionAcl, Responder, Transport};
use disco::dns::packet::Query;
use disco::dns::{SnapshotBuilder, ZoneFile};
use disco::metrics::Metrics;
use disco::model::parse_native;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn responder() -> &'static Responder {
    static RESPONDER: OnceLock<Responder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let zone_dir = std::env::temp_dir().join("disco-fuzz-zones");
        std::fs::create_dir_all(&zone_dir).unwrap();
        let zone = zone_dir.join("example.internal.zone");
        std::fs::write(&zone, "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\nwww IN A 192.0.2.1\nalias IN CNAME www\n").unwrap();
        // Zone-file CNAMEs into registered names are completed per query.
        let own = zone_dir.join("disco.internal.zone");
        std::fs::write(&own, "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\nwww IN CNAME web\nold IN CNAME www\ntagged IN CNAME primary.web\ngone IN CNAME nothing\n").unwrap();
        let zones: Vec<ZoneFile> = [&zone, &own]
            .into_iter()
            .map(|file| disco::dns::zonefile::load_file(file).unwrap())
            .collect();
        let mut builder = SnapshotBuilder::new("disco.internal", zones, 5);
        for (service, id, json) in [
            ("web", "web-1", r#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080},"tags":["v2","primary"],"meta":{"k":"v"}}"#),
            ("web", "web-2", r#"{"address":"fd00::7","port":8080,"tags":["v2"]}"#),
            ("api.billing", "b-1", r#"{"address":"10.1.0.1","port":9000,"protocol":"udp"}"#),
        ] {
            let instance = Arc::new(parse_native(service, id, json.as_bytes()).unwrap());
            builder.apply([(None, Some(instance))]);
        }
        let snapshot = Arc::new(ArcSwap::from_pointee(builder.snapshot()));
        let acl = RecursionAcl::new(vec!["127.0.0.0/8".parse().unwrap()]);
        Responder::new(snapshot, acl, true, Arc::new(Metrics::new()))
    })
}

fuzz_target!(|data: &[u8]| {
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut out = Vec::new();
        if responder().respond(data, client, transport, &mut out) != Outcome::Reply {
            continue;
        }
        // A reply goes only to something with a header, and carries its ID.
        assert!(data.len() >= 12);
        assert_eq!(out[..2], data[..2]);
        assert!(out[2] & 0x80 != 0, "QR set");
        let limit = match transport {
            Transport::Udp => Query::parse(data).map_or(512, |q| q.udp_limit()),
            Transport::Tcp => 65_535,
        };
        assert!(out.len() <= limit, "a reply of {} bytes over a {limit}-byte limit", out.len());
        let message = Message::from_vec(&out).expect("disco's reply parses");
        assert!(message.queries.len() <= 1);
    }
});
