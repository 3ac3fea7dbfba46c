//! SkyDNS / CoreDNS `etcd` plugin entries, end to end: entries put through
//! the in-process backend, questions over UDP and TCP.
//!
//! The tables translate CoreDNS's own (plugin/etcd/lookup_test.go,
//! other_test.go, cname_test.go, group_test.go) from `skydns.test.` to
//! `disco.internal.`, with `--ttl 300s` standing in for CoreDNS's fixed
//! 300 s default so TTLs read the same. Rows where disco answers
//! differently say so.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use disco::cli::ServeArgs;
use disco::model::{SkyEntry, parse_skydns};

use crate::support::*;

const NOERROR: ResponseCode = ResponseCode::NoError;
const NXDOMAIN: ResponseCode = ResponseCode::NXDomain;

/// One question and the answer CoreDNS gives (or disco, where noted):
/// records as "owner ttl type data", in any order.
struct Row {
    qname: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    answer: &'static [&'static str],
    extra: &'static [&'static str],
}

const fn row(
    qname: &'static str,
    qtype: RecordType,
    answer: &'static [&'static str],
    extra: &'static [&'static str],
) -> Row {
    Row {
        qname,
        qtype,
        rcode: NOERROR,
        answer,
        extra,
    }
}

/// NOERROR with no answer: the SOA comes in the authority section.
const fn nodata(qname: &'static str, qtype: RecordType) -> Row {
    row(qname, qtype, &[], &[])
}

const fn nxdomain(qname: &'static str, qtype: RecordType) -> Row {
    Row {
        qname,
        qtype,
        rcode: NXDOMAIN,
        answer: &[],
        extra: &[],
    }
}

/// The store key of `name` under `disco.internal.` (`a.b` is
/// `/skydns/internal/disco/b/a`); a name starting with `/` is a key as is.
fn key(name: &str) -> String {
    if name.starts_with('/') {
        return name.to_owned();
    }
    let mut key = String::from("/skydns/internal/disco");
    for label in name.rsplit('.') {
        key.push('/');
        key.push_str(label);
    }
    key
}

fn entries(keys: &[(&str, &str)]) -> Vec<SkyEntry> {
    keys.iter()
        .map(|(name, json)| {
            parse_skydns("/skydns", &key(name), json.as_bytes(), None)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

async fn snapshots(server: &TestServer) -> u64 {
    server
        .metrics_text()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("disco_snapshot_updates_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the snapshot counter")
}

/// Runs `change` and waits until the server has published the snapshot it
/// makes.
async fn settle(server: &TestServer, change: impl FnOnce(&TestServer)) {
    let before = snapshots(server).await;
    change(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while snapshots(server).await == before {
        assert!(Instant::now() < deadline, "the change was never published");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A server with `keys` put, TTLs defaulting to 300 s as in CoreDNS.
async fn serve(keys: &[(&str, &str)]) -> TestServer {
    serve_with(keys, &[], |args| args.ttl = Some("300s".into())).await
}

async fn serve_with(
    keys: &[(&str, &str)],
    zones: &[(&str, &str)],
    adjust: impl FnOnce(&mut ServeArgs),
) -> TestServer {
    let server = TestServer::start_with(Vec::new(), zones, adjust).await;
    if !keys.is_empty() {
        let entries = entries(keys);
        settle(&server, |s| s.registry.put_records(entries)).await;
    }
    server
}

fn line(record: &Record) -> String {
    let data = match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| format!("{:?}", String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(" "),
        data => data.to_string(),
    };
    format!(
        "{} {} {} {}",
        record.name,
        record.ttl,
        record.record_type(),
        data
    )
}

fn lines(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(line)
        .collect();
    out.sort();
    out
}

fn sorted(expected: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

fn check_one(message: &Message, row: &Row, transport: &str) {
    let what = format!("{} {} over {transport}", row.qname, row.qtype);
    assert_eq!(rcode(message), row.rcode, "{what}: {message:?}");
    assert!(message.metadata.authoritative, "{what}: not authoritative");
    // hickory's client lowercases the names it sends; the raw UDP question
    // keeps the row's case, and the answer's owner must follow it.
    let case = |lines: Vec<String>| match transport {
        "UDP" => lines,
        _ => lines.into_iter().map(|l| l.to_lowercase()).collect(),
    };
    assert_eq!(
        case(lines(&message.answers)),
        case(sorted(row.answer)),
        "{what}: answer"
    );
    assert_eq!(
        case(lines(&message.additionals)),
        case(sorted(row.extra)),
        "{what}: extra"
    );
    if row.answer.is_empty() {
        assert!(authority_soa(message).is_some(), "{what}: no SOA");
    }
}

/// A UDP question (with EDNS) exactly as `qname` is written.
async fn udp_as_written(server: &TestServer, qname: &str, qtype: RecordType) -> Message {
    let mut packet = query_message(qname, qtype, Some(1232));
    let mut at = 12;
    for label in qname.trim_end_matches('.').split('.') {
        packet[at] = label.len() as u8;
        packet[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
        at += 1 + label.len();
    }
    let response = server.raw(&packet).await.expect("an answer over UDP");
    Message::from_vec(&response).unwrap()
}

/// Asks every row over UDP and over TCP.
async fn check(server: &TestServer, rows: &[Row]) {
    for row in rows {
        check_one(
            &udp_as_written(server, row.qname, row.qtype).await,
            row,
            "UDP",
        );
        check_one(&server.tcp(row.qname, row.qtype).await, row, "TCP");
    }
}

/// plugin/etcd/lookup_test.go `services` (the skydns.test. ones).
const LOOKUP_KEYS: &[(&str, &str)] = &[
    (
        "a.server1.dev.region1",
        r#"{"host":"dev.server1","port":8080}"#,
    ),
    (
        "a.server1.prod.region1",
        r#"{"host":"10.0.0.1","port":8080}"#,
    ),
    (
        "b.server1.prod.region1",
        r#"{"host":"10.0.0.2","port":8080}"#,
    ),
    ("b.server6.prod.region1", r#"{"host":"::1","port":8080}"#),
    // Unresolvable internal name.
    (
        "cname.prod.region1",
        r#"{"host":"unresolvable.disco.internal"}"#,
    ),
    // Priority.
    (
        "priority",
        r#"{"host":"priority.server1","priority":333,"port":8080}"#,
    ),
    // Subdomain.
    ("a.sub.region1", r#"{"host":"sub.server1","port":0}"#),
    ("b.sub.region1", r#"{"host":"sub.server2","port":80}"#),
    ("c.sub.region1", r#"{"host":"10.0.0.1","port":8080}"#),
    // CNAME loop.
    ("b.cname", r#"{"host":"a.cname.disco.internal"}"#),
    ("a.cname", r#"{"host":"b.cname.disco.internal"}"#),
    // Name servers.
    ("a.ns.dns", r#"{"host":"10.0.0.2"}"#),
    ("b.ns.dns", r#"{"host":"10.0.0.3"}"#),
    // Reverse.
    (
        "/skydns/arpa/in-addr/10/0/0/1",
        r#"{"host":"reverse.example.com"}"#,
    ),
];

/// plugin/etcd/lookup_test.go `dnsTestCases`.
const LOOKUP: &[Row] = &[
    row(
        "a.server1.dev.region1.disco.internal.",
        RecordType::SRV,
        &["a.server1.dev.region1.disco.internal. 300 SRV 10 100 8080 dev.server1."],
        &[],
    ),
    // Names compare case-insensitively; the owner is the question as asked.
    row(
        "a.SERVer1.dEv.region1.disco.INTERNAL.",
        RecordType::SRV,
        &["a.SERVer1.dEv.region1.disco.INTERNAL. 300 SRV 10 100 8080 dev.server1."],
        &[],
    ),
    nxdomain("doesnotexist.disco.internal.", RecordType::A),
    row(
        "a.server1.prod.region1.disco.internal.",
        RecordType::A,
        &["a.server1.prod.region1.disco.internal. 300 A 10.0.0.1"],
        &[],
    ),
    // An address host: the SRV target is the entry's own name.
    row(
        "a.server1.prod.region1.disco.internal.",
        RecordType::SRV,
        &[
            "a.server1.prod.region1.disco.internal. 300 SRV 10 100 8080 a.server1.prod.region1.disco.internal.",
        ],
        &["a.server1.prod.region1.disco.internal. 300 A 10.0.0.1"],
    ),
    row(
        "b.server6.prod.region1.disco.internal.",
        RecordType::AAAA,
        &["b.server6.prod.region1.disco.internal. 300 AAAA ::1"],
        &[],
    ),
    // A name answers with its subtree.
    row(
        "server1.prod.region1.disco.internal.",
        RecordType::A,
        &[
            "server1.prod.region1.disco.internal. 300 A 10.0.0.1",
            "server1.prod.region1.disco.internal. 300 A 10.0.0.2",
        ],
        &[],
    ),
    row(
        "priority.disco.internal.",
        RecordType::SRV,
        &["priority.disco.internal. 300 SRV 333 100 8080 priority.server1."],
        &[],
    ),
    // Weights split within the priority: 100/3 each.
    row(
        "sub.region1.disco.internal.",
        RecordType::SRV,
        &[
            "sub.region1.disco.internal. 300 SRV 10 33 0 sub.server1.",
            "sub.region1.disco.internal. 300 SRV 10 33 80 sub.server2.",
            "sub.region1.disco.internal. 300 SRV 10 33 8080 c.sub.region1.disco.internal.",
        ],
        &["c.sub.region1.disco.internal. 300 A 10.0.0.1"],
    ),
    // A CNAME to a name in the zone that has nothing: dropped.
    nodata("cname.prod.region1.disco.internal.", RecordType::A),
    row(
        "*.region1.disco.internal.",
        RecordType::SRV,
        &[
            "*.region1.disco.internal. 300 SRV 10 12 0 sub.server1.",
            "*.region1.disco.internal. 300 SRV 10 12 0 unresolvable.disco.internal.",
            "*.region1.disco.internal. 300 SRV 10 12 80 sub.server2.",
            "*.region1.disco.internal. 300 SRV 10 12 8080 a.server1.prod.region1.disco.internal.",
            "*.region1.disco.internal. 300 SRV 10 12 8080 b.server1.prod.region1.disco.internal.",
            "*.region1.disco.internal. 300 SRV 10 12 8080 b.server6.prod.region1.disco.internal.",
            "*.region1.disco.internal. 300 SRV 10 12 8080 c.sub.region1.disco.internal.",
            "*.region1.disco.internal. 300 SRV 10 12 8080 dev.server1.",
        ],
        &[
            "a.server1.prod.region1.disco.internal. 300 A 10.0.0.1",
            "b.server1.prod.region1.disco.internal. 300 A 10.0.0.2",
            "b.server6.prod.region1.disco.internal. 300 AAAA ::1",
            "c.sub.region1.disco.internal. 300 A 10.0.0.1",
        ],
    ),
    row(
        "prod.*.disco.internal.",
        RecordType::SRV,
        &[
            "prod.*.disco.internal. 300 SRV 10 25 0 unresolvable.disco.internal.",
            "prod.*.disco.internal. 300 SRV 10 25 8080 a.server1.prod.region1.disco.internal.",
            "prod.*.disco.internal. 300 SRV 10 25 8080 b.server1.prod.region1.disco.internal.",
            "prod.*.disco.internal. 300 SRV 10 25 8080 b.server6.prod.region1.disco.internal.",
        ],
        &[
            "a.server1.prod.region1.disco.internal. 300 A 10.0.0.1",
            "b.server1.prod.region1.disco.internal. 300 A 10.0.0.2",
            "b.server6.prod.region1.disco.internal. 300 AAAA ::1",
        ],
    ),
    row(
        "prod.any.disco.internal.",
        RecordType::SRV,
        &[
            "prod.any.disco.internal. 300 SRV 10 25 0 unresolvable.disco.internal.",
            "prod.any.disco.internal. 300 SRV 10 25 8080 a.server1.prod.region1.disco.internal.",
            "prod.any.disco.internal. 300 SRV 10 25 8080 b.server1.prod.region1.disco.internal.",
            "prod.any.disco.internal. 300 SRV 10 25 8080 b.server6.prod.region1.disco.internal.",
        ],
        &[
            "a.server1.prod.region1.disco.internal. 300 A 10.0.0.1",
            "b.server1.prod.region1.disco.internal. 300 A 10.0.0.2",
            "b.server6.prod.region1.disco.internal. 300 AAAA ::1",
        ],
    ),
    // CNAME loop detection.
    nodata("a.cname.disco.internal.", RecordType::A),
    // CoreDNS asks its upstream for the TXT of an outside CNAME target (and
    // its test expects NODATA because that fails); disco has no resolver
    // there and answers the CNAME for the client's resolver to follow.
    row(
        "a.server1.dev.region1.disco.internal.",
        RecordType::TXT,
        &["a.server1.dev.region1.disco.internal. 300 CNAME dev.server1."],
        &[],
    ),
    nodata("a.server1.dev.region1.disco.internal.", RecordType::HINFO),
    nxdomain(
        "a.server1.nonexistent.region1.disco.internal.",
        RecordType::HINFO,
    ),
    row(
        "disco.internal.",
        RecordType::NS,
        &[
            "disco.internal. 300 NS a.ns.dns.disco.internal.",
            "disco.internal. 300 NS b.ns.dns.disco.internal.",
        ],
        &[
            "a.ns.dns.disco.internal. 300 A 10.0.0.2",
            "b.ns.dns.disco.internal. 300 A 10.0.0.3",
        ],
    ),
    nxdomain("a.disco.internal.", RecordType::NS),
    row(
        "ns.dns.disco.internal.",
        RecordType::A,
        &[
            "ns.dns.disco.internal. 300 A 10.0.0.2",
            "ns.dns.disco.internal. 300 A 10.0.0.3",
        ],
        &[],
    ),
    row(
        "1.0.0.10.in-addr.arpa.",
        RecordType::PTR,
        &["1.0.0.10.in-addr.arpa. 300 PTR reverse.example.com."],
        &[],
    ),
];

#[tokio::test]
async fn coredns_lookup_table() {
    let server = serve(LOOKUP_KEYS).await;
    check(&server, LOOKUP).await;
}

/// The zone's own name (lookup_test.go's `skydns_zone[a-d]`, and the
/// README's `/skydns/local/skydns/` key).
#[tokio::test]
async fn coredns_zone_name_tables() {
    // All entries below the zone answer for it, the key ending in `/` too.
    let server = serve(&[
        ("/skydns/internal/disco/", r#"{"host":"1.1.1.1","ttl":60}"#),
        ("x", r#"{"host":"10.0.0.2"}"#),
        ("y", r#"{"host":"10.0.0.3"}"#),
    ])
    .await;
    check(
        &server,
        &[row(
            "disco.internal.",
            RecordType::A,
            &[
                "disco.internal. 60 A 1.1.1.1",
                "disco.internal. 60 A 10.0.0.2",
                "disco.internal. 60 A 10.0.0.3",
            ],
            &[],
        )],
    )
    .await;
    // `apex.dns` entries, when there are any, are the zone's addresses.
    let server = serve(&[
        ("x", r#"{"host":"10.0.0.2"}"#),
        ("y", r#"{"host":"10.0.0.3"}"#),
        ("a1.apex.dns", r#"{"host":"10.0.0.4"}"#),
        ("a2.apex.dns", r#"{"host":"10.0.0.5"}"#),
        ("a3.apex.dns", r#"{"host":"2003::8:1"}"#),
        ("a4.apex.dns", r#"{"host":"2003::8:2"}"#),
    ])
    .await;
    check(
        &server,
        &[
            row(
                "disco.internal.",
                RecordType::A,
                &[
                    "disco.internal. 300 A 10.0.0.4",
                    "disco.internal. 300 A 10.0.0.5",
                ],
                &[],
            ),
            row(
                "disco.internal.",
                RecordType::AAAA,
                &[
                    "disco.internal. 300 AAAA 2003::8:1",
                    "disco.internal. 300 AAAA 2003::8:2",
                ],
                &[],
            ),
        ],
    )
    .await;
}

/// plugin/etcd/other_test.go (MX left out: disco does not read `mail`).
const OTHER_KEYS: &[(&str, &str)] = &[
    (
        "a.server1.dev.region1",
        r#"{"host":"dev.server1","port":8080}"#,
    ),
    (
        "a.mail",
        r#"{"host":"mx.disco.internal","priority":50,"mail":true}"#,
    ),
    ("a1.txt", r#"{"text":"abc"}"#),
    ("a2.txt", r#"{"text":"abc abc"}"#),
    ("ipv4.ns.dns", r#"{"host":"172.17.1.1"}"#),
    ("http.multiport.http", r#"{"host":"10.11.11.10","port":80}"#),
    (
        "https.multiport.http",
        r#"{"host":"10.11.11.10","port":443}"#,
    ),
];

const OTHER: &[Row] = &[
    nodata("a.server1.dev.region1.disco.internal.", RecordType::MX),
    nodata("a.mail.disco.internal.", RecordType::MX),
    row(
        "a1.txt.disco.internal.",
        RecordType::TXT,
        &["a1.txt.disco.internal. 300 TXT \"abc\""],
        &[],
    ),
    row(
        "a2.txt.disco.internal.",
        RecordType::TXT,
        &["a2.txt.disco.internal. 300 TXT \"abc abc\""],
        &[],
    ),
    // Both text entries below `txt`.
    row(
        "txt.disco.internal.",
        RecordType::TXT,
        &[
            "txt.disco.internal. 300 TXT \"abc\"",
            "txt.disco.internal. 300 TXT \"abc abc\"",
        ],
        &[],
    ),
    // The NS name is the key's name, not something built from the zone.
    row(
        "disco.internal.",
        RecordType::NS,
        &["disco.internal. 300 NS ipv4.ns.dns.disco.internal."],
        &["ipv4.ns.dns.disco.internal. 300 A 172.17.1.1"],
    ),
    // One address however many entries have it.
    row(
        "multiport.http.disco.internal.",
        RecordType::A,
        &["multiport.http.disco.internal. 300 A 10.11.11.10"],
        &[],
    ),
];

#[tokio::test]
async fn coredns_other_table() {
    let server = serve(OTHER_KEYS).await;
    check(&server, OTHER).await;
}

#[tokio::test]
async fn long_text_is_split_into_255_byte_strings() {
    let long = "0".repeat(400);
    let json = format!(r#"{{"text":"{long}"}}"#);
    let server = serve(&[("large400", &json)]).await;
    let message = server
        .tcp("large400.disco.internal.", RecordType::TXT)
        .await;
    let RData::TXT(txt) = &message.answers[0].data else {
        panic!("not TXT: {message:?}")
    };
    let lengths: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
    assert_eq!(lengths, [255, 145]);
}

/// plugin/etcd/cname_test.go.
const CNAME_KEYS: &[(&str, &str)] = &[
    (
        "a.server1.dev.region1",
        r#"{"host":"cname1.region2.disco.internal"}"#,
    ),
    (
        "cname1.region2",
        r#"{"host":"cname2.region2.disco.internal"}"#,
    ),
    (
        "cname2.region2",
        r#"{"host":"cname3.region2.disco.internal"}"#,
    ),
    (
        "cname3.region2",
        r#"{"host":"cname4.region2.disco.internal"}"#,
    ),
    (
        "cname4.region2",
        r#"{"host":"cname5.region2.disco.internal"}"#,
    ),
    (
        "cname5.region2",
        r#"{"host":"cname6.region2.disco.internal"}"#,
    ),
    (
        "cname6.region2",
        r#"{"host":"endpoint.region2.disco.internal"}"#,
    ),
    (
        "region2",
        r#"{"host":"mainendpoint.region2.disco.internal"}"#,
    ),
    ("region3", r#"{"host":"","text":"SOME-RECORD-TEXT"}"#),
    ("endpoint.region2", r#"{"host":"10.240.0.1"}"#),
];

const CNAME: &[Row] = &[
    // An SRV target in the zone: its A records (CNAMEs included) as extra.
    row(
        "a.server1.dev.region1.disco.internal.",
        RecordType::SRV,
        &["a.server1.dev.region1.disco.internal. 300 SRV 10 100 0 cname1.region2.disco.internal."],
        &[
            "cname1.region2.disco.internal. 300 CNAME cname2.region2.disco.internal.",
            "cname2.region2.disco.internal. 300 CNAME cname3.region2.disco.internal.",
            "cname3.region2.disco.internal. 300 CNAME cname4.region2.disco.internal.",
            "cname4.region2.disco.internal. 300 CNAME cname5.region2.disco.internal.",
            "cname5.region2.disco.internal. 300 CNAME cname6.region2.disco.internal.",
            "cname6.region2.disco.internal. 300 CNAME endpoint.region2.disco.internal.",
            "endpoint.region2.disco.internal. 300 A 10.240.0.1",
        ],
    ),
    // The same chain, followed for an A question.
    row(
        "cname5.region2.disco.internal.",
        RecordType::A,
        &[
            "cname5.region2.disco.internal. 300 CNAME cname6.region2.disco.internal.",
            "cname6.region2.disco.internal. 300 CNAME endpoint.region2.disco.internal.",
            "endpoint.region2.disco.internal. 300 A 10.240.0.1",
        ],
        &[],
    ),
    row(
        "region2.disco.internal.",
        RecordType::CNAME,
        &["region2.disco.internal. 300 CNAME mainendpoint.region2.disco.internal."],
        &[],
    ),
    nodata("region3.disco.internal.", RecordType::CNAME),
    row(
        "region3.disco.internal.",
        RecordType::TXT,
        &["region3.disco.internal. 300 TXT \"SOME-RECORD-TEXT\""],
        &[],
    ),
];

#[tokio::test]
async fn coredns_cname_table() {
    let server = serve(CNAME_KEYS).await;
    check(&server, CNAME).await;
}

/// plugin/etcd/group_test.go.
const GROUP_KEYS: &[(&str, &str)] = &[
    ("a.dom", r#"{"host":"127.0.0.1","group":"g1"}"#),
    ("b.sub.dom", r#"{"host":"127.0.0.2","group":"g1"}"#),
    ("a.dom2", r#"{"host":"127.0.0.1","group":"g1"}"#),
    ("b.sub.dom2", r#"{"host":"127.0.0.2","group":""}"#),
    ("a.dom1", r#"{"host":"127.0.0.1","group":"g1"}"#),
    ("b.sub.dom1", r#"{"host":"127.0.0.2","group":"g2"}"#),
];

const GROUP: &[Row] = &[
    // Hits group g1 and only includes those records.
    row(
        "dom.disco.internal.",
        RecordType::A,
        &[
            "dom.disco.internal. 300 A 127.0.0.1",
            "dom.disco.internal. 300 A 127.0.0.2",
        ],
        &[],
    ),
    // One has group g1, the other none and is deeper in the tree.
    row(
        "dom2.disco.internal.",
        RecordType::A,
        &[
            "dom2.disco.internal. 300 A 127.0.0.1",
            "dom2.disco.internal. 300 A 127.0.0.2",
        ],
        &[],
    ),
    // One has group g1, the other g2 and is deeper in the tree.
    row(
        "dom1.disco.internal.",
        RecordType::A,
        &["dom1.disco.internal. 300 A 127.0.0.1"],
        &[],
    ),
];

#[tokio::test]
async fn coredns_group_table() {
    let server = serve(GROUP_KEYS).await;
    check(&server, GROUP).await;
}

/// disco's own rules around the CoreDNS ones: `--ttl`, leases,
/// `targetstrip`, NODATA against NXDOMAIN.
#[tokio::test]
async fn ttls_leases_and_target_strip() {
    let server = serve_with(&[], &[], |_| {}).await;
    let mut leased = entries(&[
        ("a.ttl", r#"{"host":"10.0.0.1","ttl":60}"#),
        ("b.ttl", r#"{"host":"10.0.0.2","ttl":60}"#),
        ("c.ttl", r#"{"host":"10.0.0.3"}"#),
        ("d.ttl", r#"{"host":"10.0.0.4"}"#),
        (
            "x1.strip",
            r#"{"host":"10.0.0.9","port":80,"targetstrip":1}"#,
        ),
    ]);
    // b is on a 30 s lease, d on a 600 s one.
    leased[1].lease_ttl = Some(30);
    leased[3].lease_ttl = Some(600);
    settle(&server, |s| s.registry.put_records(leased)).await;
    check(
        &server,
        &[
            row(
                "a.ttl.disco.internal.",
                RecordType::A,
                &["a.ttl.disco.internal. 60 A 10.0.0.1"],
                &[],
            ),
            // The lease bounds the TTL.
            row(
                "b.ttl.disco.internal.",
                RecordType::A,
                &["b.ttl.disco.internal. 30 A 10.0.0.2"],
                &[],
            ),
            // No `ttl`: `--ttl` (5 s by default), the lease only lowers it.
            row(
                "c.ttl.disco.internal.",
                RecordType::A,
                &["c.ttl.disco.internal. 5 A 10.0.0.3"],
                &[],
            ),
            row(
                "d.ttl.disco.internal.",
                RecordType::A,
                &["d.ttl.disco.internal. 5 A 10.0.0.4"],
                &[],
            ),
            // One RRset, one TTL: the smallest.
            row(
                "ttl.disco.internal.",
                RecordType::A,
                &[
                    "ttl.disco.internal. 5 A 10.0.0.1",
                    "ttl.disco.internal. 5 A 10.0.0.2",
                    "ttl.disco.internal. 5 A 10.0.0.3",
                    "ttl.disco.internal. 5 A 10.0.0.4",
                ],
                &[],
            ),
            // The target loses its leftmost label, so does its address.
            row(
                "x1.strip.disco.internal.",
                RecordType::SRV,
                &["x1.strip.disco.internal. 5 SRV 10 100 80 strip.disco.internal."],
                &["strip.disco.internal. 5 A 10.0.0.9"],
            ),
            nodata("x1.strip.disco.internal.", RecordType::TXT),
            nodata("ttl.disco.internal.", RecordType::AAAA),
            nxdomain("e.ttl.disco.internal.", RecordType::A),
        ],
    )
    .await;
    let nodata = server.udp("ttl.disco.internal.", RecordType::AAAA).await;
    assert_eq!(
        authority_soa(&nodata),
        Some((5, 5)),
        "SOA with the negative TTL"
    );
}

async fn web(server: &TestServer) -> Vec<String> {
    answers(&server.udp("web.disco.internal.", RecordType::A).await)
}

#[tokio::test]
async fn puts_deletes_and_resyncs_change_answers() {
    let server = serve_with(&[], &[], |_| {}).await;
    settle(&server, |s| {
        s.registry.put_records(entries(&[
            ("x1.web", r#"{"host":"10.0.0.1"}"#),
            ("x2.web", r#"{"host":"10.0.0.2"}"#),
        ]))
    })
    .await;
    assert_eq!(web(&server).await, ["10.0.0.1", "10.0.0.2"]);
    settle(&server, |s| {
        s.registry
            .delete_records(&["/skydns/internal/disco/web/x1"])
    })
    .await;
    assert_eq!(web(&server).await, ["10.0.0.2"]);
    // A resync replaces everything the source had, in one snapshot.
    settle(&server, |s| {
        s.registry
            .reset_records(entries(&[("x3.web", r#"{"host":"10.0.0.3"}"#)]))
    })
    .await;
    assert_eq!(web(&server).await, ["10.0.0.3"]);
    assert_eq!(
        rcode(&server.udp("x2.web.disco.internal.", RecordType::A).await),
        NXDOMAIN
    );
    settle(&server, |s| s.registry.reset_records(Vec::new())).await;
    assert_eq!(
        rcode(&server.udp("web.disco.internal.", RecordType::A).await),
        NXDOMAIN
    );
}

#[tokio::test]
async fn entries_outside_the_zone_are_not_answered() {
    let server = serve(&[
        ("/skydns/local/skydns/x1", r#"{"host":"10.0.0.1"}"#),
        ("x1", r#"{"host":"10.0.0.2"}"#),
    ])
    .await;
    // No upstream, not disco's zone: refused, as any outside name.
    assert_eq!(
        rcode(&server.udp("x1.skydns.local.", RecordType::A).await),
        ResponseCode::Refused
    );
    assert_eq!(
        answers(&server.udp("x1.disco.internal.", RecordType::A).await),
        ["10.0.0.2"]
    );
}

#[tokio::test]
async fn zone_files_then_native_services_then_skydns_entries() {
    let zone = "$TTL 60\n@ IN SOA ns1.disco.internal. ops.example. 7 3600 600 86400 15\n@ IN NS ns1.disco.internal.\nns1 IN A 192.0.2.53\nstatic IN A 192.0.2.1\n";
    let server = TestServer::start_with(
        vec![instance(
            "web",
            "web-1",
            r#"{"address":"10.0.0.5","port":8080}"#,
        )],
        &[("disco.internal.zone", zone)],
        |_| {},
    )
    .await;
    settle(&server, |s| {
        s.registry.put_records(entries(&[
            ("static", r#"{"host":"10.9.9.1"}"#),
            ("t.web", r#"{"text":"from skydns"}"#),
            ("/skydns/internal/disco/web/", r#"{"host":"10.9.9.3"}"#),
            ("ns1.ns.dns", r#"{"host":"10.9.9.53"}"#),
            ("alias", r#"{"host":"web.disco.internal"}"#),
        ]))
    })
    .await;
    // The zone file's record wins, and its NS.
    assert_eq!(
        answers(&server.udp("static.disco.internal.", RecordType::A).await),
        ["192.0.2.1"]
    );
    assert_eq!(
        answers(&server.udp("disco.internal.", RecordType::NS).await),
        ["ns1.disco.internal."]
    );
    // The native service's addresses win...
    assert_eq!(
        answers(&server.udp("web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
    // ...and a type it does not answer falls to the entries.
    let txt = server.udp("web.disco.internal.", RecordType::TXT).await;
    assert_eq!(answers(&txt), ["from skydns"]);
    // A CNAME to a native name is answered alone, for the resolver to follow.
    let alias = server.udp("alias.disco.internal.", RecordType::A).await;
    assert_eq!(
        lines(&alias.answers),
        ["alias.disco.internal. 5 CNAME web.disco.internal."]
    );
    // An entry-only name below the service still answers.
    assert_eq!(
        answers(&server.udp("t.web.disco.internal.", RecordType::TXT).await),
        ["from skydns"]
    );
    assert_eq!(
        rcode(&server.udp("nothing.disco.internal.", RecordType::A).await),
        NXDOMAIN
    );
}

#[tokio::test]
async fn a_two_thousand_entry_subtree_is_complete_over_tcp() {
    let keys: Vec<(String, String)> = (0..2000)
        .map(|i| {
            (
                format!("n{i}.big"),
                format!(
                    r#"{{"host":"10.{}.{}.{}"}}"#,
                    i / 65536,
                    (i / 256) % 256,
                    i % 256
                ),
            )
        })
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = serve(&keys).await;
    let tcp = server.tcp("big.disco.internal.", RecordType::A).await;
    assert_eq!(tcp.answers.len(), 2000);
    let udp = server
        .raw(&query_message(
            "big.disco.internal.",
            RecordType::A,
            Some(1232),
        ))
        .await
        .unwrap();
    let udp = Message::from_vec(&udp).unwrap();
    assert!(udp.metadata.truncation, "UDP sets TC for a TCP retry");
    // The one name is still answered exactly.
    assert_eq!(
        answers(&server.udp("n1999.big.disco.internal.", RecordType::A).await),
        ["10.0.7.207"]
    );
}
