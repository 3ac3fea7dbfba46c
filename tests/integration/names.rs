//! One test per row of DESIGN §2, and the negative answers (RFC 2308).

use std::collections::BTreeSet;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::*;

fn fleet() -> Vec<disco::model::Instance> {
    vec![
        instance(
            "web",
            "web-1",
            r#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080,"metrics":9100},
                "tags":["v2","primary"],"meta":{"version":"1.4.2","owner":"team-a"}}"#,
        ),
        instance(
            "web",
            "web-2",
            r#"{"address":"10.0.0.6","port":8080,"ports":{"http":8081},"tags":["v2"],"ttl":7}"#,
        ),
        instance(
            "web",
            "web-3",
            r#"{"address":"fd00::7","port":8080,"tags":["canary"],"priority":10,"weight":5}"#,
        ),
        instance(
            "api.billing",
            "b-1",
            r#"{"address":"10.1.0.1","port":9000}"#,
        ),
        instance(
            "dns",
            "d-1",
            r#"{"address":"10.2.0.1","port":53,"protocol":"udp"}"#,
        ),
    ]
}

fn srv_targets(message: &hickory_proto::op::Message) -> BTreeSet<(String, u16)> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.target.to_ascii(), srv.port)),
            _ => None,
        })
        .collect()
}

fn additional_names(message: &hickory_proto::op::Message) -> BTreeSet<String> {
    message
        .additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| r.name.to_ascii())
        .collect()
}

#[tokio::test]
async fn service_a_and_aaaa_list_every_instance() {
    let server = TestServer::start(fleet()).await;
    let a = server.udp("web.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&a), ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(answers(&a), ["10.0.0.5", "10.0.0.6"]);
    let aaaa = server.tcp("web.disco.internal.", RecordType::AAAA).await;
    assert_eq!(answers(&aaaa), ["fd00::7"]);
}

#[tokio::test]
async fn service_addresses_are_shuffled() {
    let many: Vec<_> = (1..=8)
        .map(|i| {
            instance(
                "web",
                &format!("w{i}"),
                &format!(r#"{{"address":"10.0.0.{i}"}}"#),
            )
        })
        .collect();
    let server = TestServer::start(many).await;
    let mut orders = BTreeSet::new();
    for _ in 0..20 {
        let message = server.udp("web.disco.internal.", RecordType::A).await;
        assert_eq!(message.answers.len(), 8);
        orders.insert(
            message
                .answers
                .iter()
                .map(|r| r.data.to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert!(orders.len() > 1, "20 answers came in one order");
}

#[tokio::test]
async fn service_srv_targets_instances_with_addresses_in_additional() {
    let server = TestServer::start(fleet()).await;
    let srv = server.udp("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(
        srv_targets(&srv),
        BTreeSet::from([
            ("web-1.web.disco.internal.".to_owned(), 8080),
            ("web-2.web.disco.internal.".to_owned(), 8080),
            ("web-3.web.disco.internal.".to_owned(), 8080),
        ])
    );
    assert_eq!(
        additional_names(&srv),
        BTreeSet::from([
            "web-1.web.disco.internal.".into(),
            "web-2.web.disco.internal.".into(),
            "web-3.web.disco.internal.".into()
        ])
    );
    let web_3 = srv.answers.iter().find_map(|r| match &r.data {
        RData::SRV(s) if s.target.to_ascii().starts_with("web-3") => Some((s.priority, s.weight)),
        _ => None,
    });
    assert_eq!(web_3, Some((10, 5)), "priority and weight as registered");
    let web_1 = srv.answers.iter().find_map(|r| match &r.data {
        RData::SRV(s) if s.target.to_ascii().starts_with("web-1") => Some((s.priority, s.weight)),
        _ => None,
    });
    assert_eq!(web_1, Some((0, 100)), "defaults: priority 0, weight 100");
}

#[tokio::test]
async fn rfc2782_form_answers_the_same_srv_set() {
    let server = TestServer::start(fleet()).await;
    let plain = server.udp("web.disco.internal.", RecordType::SRV).await;
    let rfc = server
        .udp("_web._tcp.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(srv_targets(&plain), srv_targets(&rfc));
    let udp = server
        .udp("_dns._udp.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(
        srv_targets(&udp),
        BTreeSet::from([("d-1.dns.disco.internal.".to_owned(), 53)])
    );
    let wrong_protocol = server
        .udp("_dns._tcp.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(rcode(&wrong_protocol), ResponseCode::NXDomain);
}

#[tokio::test]
async fn named_port_form_answers_that_port_of_instances_having_it() {
    let server = TestServer::start(fleet()).await;
    let http = server
        .udp("_http._tcp.web.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(
        srv_targets(&http),
        BTreeSet::from([
            ("web-1.web.disco.internal.".to_owned(), 8080),
            ("web-2.web.disco.internal.".to_owned(), 8081)
        ])
    );
    let metrics = server
        .udp("_metrics._tcp.web.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(
        srv_targets(&metrics),
        BTreeSet::from([("web-1.web.disco.internal.".to_owned(), 9100)])
    );
    let none = server
        .udp("_grpc._tcp.web.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(rcode(&none), ResponseCode::NXDomain);
}

#[tokio::test]
async fn tags_filter_and_several_tags_are_anded() {
    let server = TestServer::start(fleet()).await;
    assert_eq!(
        answers(
            &server
                .udp("primary.web.disco.internal.", RecordType::A)
                .await
        ),
        ["10.0.0.5"]
    );
    assert_eq!(
        answers(&server.udp("v2.web.disco.internal.", RecordType::A).await),
        ["10.0.0.5", "10.0.0.6"]
    );
    assert_eq!(
        answers(
            &server
                .udp("v2.primary.web.disco.internal.", RecordType::A)
                .await
        ),
        ["10.0.0.5"]
    );
    assert_eq!(
        answers(
            &server
                .udp("primary.v2.web.disco.internal.", RecordType::A)
                .await
        ),
        ["10.0.0.5"]
    );
    let srv = server
        .udp("v2.primary.web.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(
        srv_targets(&srv),
        BTreeSet::from([("web-1.web.disco.internal.".to_owned(), 8080)])
    );
    let disjoint = server
        .udp("canary.primary.web.disco.internal.", RecordType::A)
        .await;
    assert_eq!(rcode(&disjoint), ResponseCode::NXDomain);
    let unknown = server.udp("blue.web.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&unknown), ResponseCode::NXDomain);
}

#[tokio::test]
async fn instance_names_answer_address_and_metadata() {
    let server = TestServer::start(fleet()).await;
    assert_eq!(
        answers(&server.udp("web-1.web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
    assert_eq!(
        answers(
            &server
                .udp("web-3.web.disco.internal.", RecordType::AAAA)
                .await
        ),
        ["fd00::7"]
    );
    let txt = server
        .udp("web-1.web.disco.internal.", RecordType::TXT)
        .await;
    let RData::TXT(data) = &txt.answers[0].data else {
        panic!("not TXT: {txt:?}")
    };
    let strings: Vec<String> = data
        .txt_data
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    assert_eq!(strings, ["owner=team-a", "version=1.4.2"]);
}

#[tokio::test]
async fn reverse_names_point_at_instances() {
    let server = TestServer::start(fleet()).await;
    let v4 = server.udp("5.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&v4), ["web-1.web.disco.internal."]);
    let v6_name = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(
        answers(&server.udp(v6_name, RecordType::PTR).await),
        ["web-3.web.disco.internal."]
    );
    // Not registered, and no upstream: not disco's to answer.
    assert_eq!(
        rcode(&server.udp("9.9.9.10.in-addr.arpa.", RecordType::PTR).await),
        ResponseCode::Refused
    );
}

#[tokio::test]
async fn the_apex_has_soa_and_ns_synthesised_without_a_zone_file() {
    let server = TestServer::start(fleet()).await;
    let soa = server.udp("disco.internal.", RecordType::SOA).await;
    let RData::SOA(data) = &soa.answers[0].data else {
        panic!("not SOA")
    };
    assert_eq!(data.mname.to_ascii(), "ns.disco.internal.");
    assert_eq!(data.minimum, 5, "the negative TTL is --ttl");
    assert_eq!(
        answers(&server.udp("disco.internal.", RecordType::NS).await),
        ["ns.disco.internal."]
    );
}

#[tokio::test]
async fn the_synthesised_ns_resolves_to_the_listen_address_and_comes_with_glue() {
    // A resolver priming a delegation to disco asks NS, then needs the
    // name server's address: in the additional section, and asked for.
    let server = TestServer::start(fleet()).await;
    let ns = server.udp("disco.internal.", RecordType::NS).await;
    assert_eq!(answers(&ns), ["ns.disco.internal."]);
    let glue: Vec<String> = records_of(&ns.additionals, RecordType::A)
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(glue, ["ns.disco.internal. 127.0.0.1"]);
    for transport in ["udp", "tcp"] {
        let a = match transport {
            "udp" => server.udp("ns.disco.internal.", RecordType::A).await,
            _ => server.tcp("ns.disco.internal.", RecordType::A).await,
        };
        assert_eq!(answers(&a), ["127.0.0.1"], "{transport}");
        assert!(a.metadata.authoritative);
    }
    let aaaa = server.udp("ns.disco.internal.", RecordType::AAAA).await;
    assert_eq!(
        (rcode(&aaaa), aaaa.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[tokio::test]
async fn ns_address_names_the_synthesised_ns_for_wildcard_or_nat_setups() {
    let server = TestServer::start_with(fleet(), &[], |args| {
        args.ns_address = vec!["192.0.2.53".into(), "2001:db8::53".into()];
    })
    .await;
    let ns = server.udp("disco.internal.", RecordType::NS).await;
    let mut glue: Vec<String> = ns.additionals.iter().map(|r| r.data.to_string()).collect();
    glue.sort();
    assert_eq!(glue, ["192.0.2.53", "2001:db8::53"]);
    assert_eq!(
        answers(&server.udp("ns.disco.internal.", RecordType::AAAA).await),
        ["2001:db8::53"]
    );
    assert_eq!(
        answers(&server.udp("ns.disco.internal.", RecordType::A).await),
        ["192.0.2.53"]
    );
}

#[tokio::test]
async fn the_apex_comes_from_the_zone_file_when_there_is_one() {
    let zone = "$TTL 60\n@ IN SOA ns1.disco.internal. ops.example. 7 3600 600 86400 15\n@ IN NS ns1.disco.internal.\nns1 IN A 192.0.2.53\n";
    let server = TestServer::start_with(fleet(), &[("disco.internal.zone", zone)], |_| {}).await;
    let soa = server.udp("disco.internal.", RecordType::SOA).await;
    let RData::SOA(data) = &soa.answers[0].data else {
        panic!("not SOA")
    };
    assert_eq!((data.serial, data.minimum), (7, 15));
    let ns = server.udp("disco.internal.", RecordType::NS).await;
    assert_eq!(answers(&ns), ["ns1.disco.internal."]);
    assert_eq!(
        records_of(&ns.additionals, RecordType::A).len(),
        1,
        "glue for the NS target"
    );
    // Registered services still answer beside the static records.
    assert_eq!(
        answers(&server.udp("web-1.web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
    let missing = server.udp("nope.disco.internal.", RecordType::A).await;
    assert_eq!(
        authority_soa(&missing),
        Some((15, 15)),
        "RFC 2308: negative TTL is min(SOA TTL, minimum)"
    );
}

#[tokio::test]
async fn rfc2308_nxdomain_and_nodata_carry_the_soa() {
    let server = TestServer::start(fleet()).await;
    let nx = server.udp("nope.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&nx), ResponseCode::NXDomain);
    assert!(nx.answers.is_empty());
    assert_eq!(authority_soa(&nx), Some((5, 5)));
    let deep = server
        .udp("a.b.web-1.web.disco.internal.", RecordType::A)
        .await;
    assert_eq!(rcode(&deep), ResponseCode::NXDomain);

    let nodata = server.udp("web.disco.internal.", RecordType::TXT).await;
    assert_eq!(rcode(&nodata), ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(authority_soa(&nodata), Some((5, 5)));
    // A v4-only instance has no AAAA: NODATA, not NXDOMAIN.
    let no_aaaa = server
        .udp("web-1.web.disco.internal.", RecordType::AAAA)
        .await;
    assert_eq!(
        (rcode(&no_aaaa), no_aaaa.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // Empty non-terminals exist (RFC 8020): above a multi-label service and
    // above `_web._tcp`.
    for name in [
        "billing.disco.internal.",
        "_tcp.disco.internal.",
        "_tcp.web.disco.internal.",
    ] {
        let ent = server.udp(name, RecordType::A).await;
        assert_eq!(rcode(&ent), ResponseCode::NoError, "{name}");
        assert!(authority_soa(&ent).is_some(), "{name}");
    }
}

#[tokio::test]
async fn multi_label_services_answer_like_single_label_ones() {
    let server = TestServer::start(fleet()).await;
    assert_eq!(
        answers(
            &server
                .udp("api.billing.disco.internal.", RecordType::A)
                .await
        ),
        ["10.1.0.1"]
    );
    let srv = server
        .udp("api.billing.disco.internal.", RecordType::SRV)
        .await;
    assert_eq!(
        srv_targets(&srv),
        BTreeSet::from([("b-1.api.billing.disco.internal.".to_owned(), 9000)])
    );
    assert_eq!(
        answers(
            &server
                .udp("b-1.api.billing.disco.internal.", RecordType::A)
                .await
        ),
        ["10.1.0.1"]
    );
}

#[tokio::test]
async fn ttl_is_the_registrations_else_the_default() {
    let server = TestServer::start(fleet()).await;
    let web_2 = server.udp("web-2.web.disco.internal.", RecordType::A).await;
    assert_eq!(web_2.answers[0].ttl, 7);
    let web_1 = server.udp("web-1.web.disco.internal.", RecordType::A).await;
    assert_eq!(web_1.answers[0].ttl, 5);
    // One RRset has one TTL (RFC 2181 §5.2): the smallest.
    let service = server.udp("web.disco.internal.", RecordType::A).await;
    assert!(service.answers.iter().all(|r| r.ttl == 5));

    let custom = TestServer::start_with(fleet(), &[], |args| args.ttl = Some("30s".into())).await;
    assert_eq!(
        custom
            .udp("web-1.web.disco.internal.", RecordType::A)
            .await
            .answers[0]
            .ttl,
        30
    );
}

/// hickory lowercases names it encodes; put the case back by hand.
fn with_case(mut packet: Vec<u8>, name: &[u8]) -> Vec<u8> {
    packet[12..12 + name.len()].copy_from_slice(name);
    packet
}

#[tokio::test]
async fn names_compare_case_insensitively_and_the_question_is_echoed() {
    let server = TestServer::start(fleet()).await;
    let packet = with_case(
        query_message("web-1.web.disco.internal.", RecordType::A, None),
        b"\x05WeB-1\x03wEb\x05DISCO",
    );
    let response =
        hickory_proto::op::Message::from_vec(&server.raw(&packet).await.unwrap()).unwrap();
    assert_eq!(
        response.queries[0].name.to_string(),
        "WeB-1.wEb.DISCO.internal."
    );
    assert_eq!(answers(&response), ["10.0.0.5"]);
    let packet = with_case(
        query_message("nope.disco.internal.", RecordType::A, None),
        b"\x04NOPE\x05Disco\x08Internal",
    );
    let response =
        hickory_proto::op::Message::from_vec(&server.raw(&packet).await.unwrap()).unwrap();
    assert_eq!(response.queries[0].name.to_string(), "NOPE.Disco.Internal.");
    assert_eq!(rcode(&response), ResponseCode::NXDomain);
}

#[tokio::test]
async fn rfc8482_any_gets_one_rrset() {
    let server = TestServer::start(fleet()).await;
    let any = server
        .udp("web-1.web.disco.internal.", RecordType::ANY)
        .await;
    let types: BTreeSet<RecordType> = any.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "{any:?}");
    let service = server.tcp("web.disco.internal.", RecordType::ANY).await;
    let types: BTreeSet<RecordType> = service.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, BTreeSet::from([RecordType::A]));
}

#[tokio::test]
async fn registrations_and_withdrawals_show_in_answers() {
    let server = TestServer::start(fleet()).await;
    server.registry.put(vec![instance(
        "cache",
        "c-1",
        r#"{"address":"10.9.0.1","port":6379}"#,
    )]);
    let added = server
        .eventually("cache.disco.internal.", RecordType::A, |m| {
            !m.answers.is_empty()
        })
        .await;
    assert_eq!(answers(&added), ["10.9.0.1"]);
    server.registry.apply(vec![disco::registry::Change::Delete {
        service: disco::model::ServiceName::new("cache").unwrap(),
        id: disco::model::InstanceId::new("c-1").unwrap(),
    }]);
    let gone = server
        .eventually("cache.disco.internal.", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    assert_eq!(rcode(&gone), ResponseCode::NXDomain);
    // A tag that lost its last instance goes with it.
    server.registry.put(vec![instance(
        "web",
        "web-1",
        r#"{"address":"10.0.0.5","port":8080}"#,
    )]);
    let untagged = server
        .eventually("primary.web.disco.internal.", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    assert_eq!(rcode(&untagged), ResponseCode::NXDomain);
    assert_eq!(
        answers(&server.udp("5.0.0.10.in-addr.arpa.", RecordType::PTR).await),
        ["web-1.web.disco.internal."]
    );
}

#[tokio::test]
async fn a_static_record_wins_over_a_registered_one() {
    let zone = "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\nweb IN A 192.0.2.80\n";
    let server = TestServer::start_with(fleet(), &[("disco.internal.zone", zone)], |_| {}).await;
    assert_eq!(
        answers(&server.udp("web.disco.internal.", RecordType::A).await),
        ["192.0.2.80"]
    );
    // Other types at that name still come from the registry.
    assert_eq!(
        srv_targets(&server.udp("web.disco.internal.", RecordType::SRV).await).len(),
        3
    );
}

#[tokio::test]
async fn static_zones_answer_cnames_with_their_target() {
    let zone = "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\ndb IN A 192.0.2.5\nalias IN CNAME db\n";
    let server = TestServer::start_with(vec![], &[("example.internal.zone", zone)], |_| {}).await;
    let message = server.udp("alias.example.internal.", RecordType::A).await;
    assert_eq!(answers(&message), ["192.0.2.5", "db.example.internal."]);
    let nx = server.udp("nope.example.internal.", RecordType::A).await;
    assert_eq!(rcode(&nx), ResponseCode::NXDomain);
}
