//! CNAMEs that leave disco's zones are completed through the forwarder for
//! clients allowed recursion (DESIGN §2), from zone files and from SkyDNS
//! entries alike; everyone else gets the CNAME alone.

use std::time::{Duration, Instant};

use disco::cli::ServeArgs;
use disco::model::parse_skydns;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::*;

const UPSTREAM_ZONE: &str =
    "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nwww IN A 192.0.2.1\n";
const DISCO_ZONE: &str = "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\n\
    ext IN CNAME www.example.test.\n\
    gone IN CNAME nope.example.test.\n\
    local IN A 10.1.1.1\n";

/// An upstream serving `example.test.`, and a disco with CNAMEs into it
/// (zone file `ext`, `gone`; SkyDNS entry `sky`) forwarding to it.
async fn servers(adjust: impl FnOnce(&mut ServeArgs)) -> (TestServer, TestServer) {
    let upstream =
        TestServer::start_with(vec![], &[("example.test.zone", UPSTREAM_ZONE)], |_| {}).await;
    let server = TestServer::start_with(vec![], &[("disco.internal.zone", DISCO_ZONE)], |args| {
        args.upstream = vec![upstream.dns.to_string()];
        adjust(args);
    })
    .await;
    let entry = parse_skydns(
        "/skydns",
        "/skydns/internal/disco/sky",
        br#"{"host":"www.example.test"}"#,
        None,
    )
    .unwrap();
    server.registry.put_records(vec![entry]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .udp("sky.disco.internal.", RecordType::CNAME)
        .await
        .answers
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the SkyDNS entry was never served"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (upstream, server)
}

/// The answer section as `type data` strings, in order.
fn chain(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}

#[tokio::test]
async fn zone_file_cnames_out_of_the_zone_come_back_with_the_targets_records() {
    let (_upstream, server) = servers(|_| {}).await;
    for message in [
        server.udp("ext.disco.internal.", RecordType::A).await,
        server.tcp("EXT.disco.internal.", RecordType::A).await,
    ] {
        assert_eq!(rcode(&message), ResponseCode::NoError);
        assert_eq!(chain(&message), ["CNAME www.example.test.", "A 192.0.2.1"]);
        assert_eq!(message.answers[1].name.to_ascii(), "www.example.test.");
    }
    // Names disco answers itself are untouched.
    assert_eq!(
        answers(&server.udp("local.disco.internal.", RecordType::A).await),
        ["10.1.1.1"]
    );
}

#[tokio::test]
async fn skydns_cnames_out_of_the_zone_are_completed_too() {
    let (_upstream, server) = servers(|_| {}).await;
    let message = server.udp("sky.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&message), ResponseCode::NoError);
    assert_eq!(chain(&message), ["CNAME www.example.test.", "A 192.0.2.1"]);
}

#[tokio::test]
async fn a_target_without_that_type_gives_nodata_with_the_soa() {
    let (_upstream, server) = servers(|_| {}).await;
    for (name, rtype) in [
        ("ext.disco.internal.", RecordType::AAAA),
        ("gone.disco.internal.", RecordType::A),
        ("sky.disco.internal.", RecordType::AAAA),
    ] {
        let message = server.udp(name, rtype).await;
        assert_eq!(rcode(&message), ResponseCode::NoError, "{name} {rtype}");
        assert_eq!(message.answers.len(), 1, "{name} {rtype}: the CNAME alone");
        assert_eq!(message.answers[0].record_type(), RecordType::CNAME);
        let soa = message.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(_) => Some(r.name.to_ascii()),
            _ => None,
        });
        assert_eq!(soa.as_deref(), Some("example.test."), "{name} {rtype}");
    }
}

#[tokio::test]
async fn clients_outside_allow_recursion_get_the_cname_alone() {
    let (upstream, server) = servers(|args| args.allow_recursion = vec!["10.0.0.0/8".into()]).await;
    let asked = upstream.metrics_text().await;
    for name in ["ext.disco.internal.", "sky.disco.internal."] {
        let message = server.udp(name, RecordType::A).await;
        assert_eq!(rcode(&message), ResponseCode::NoError);
        assert_eq!(chain(&message), ["CNAME www.example.test."]);
    }
    let queries = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("disco_queries_total"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        queries(&upstream.metrics_text().await),
        queries(&asked),
        "nothing was forwarded"
    );
}
