//! EDNS as RFC 6891, RFC 3225 and RFC 7873 want it, and the names above
//! registered reverse names (RFC 8020), checked on the bytes disco sends.

use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use crate::support::*;

const OPTION_COOKIE: u16 = 10;
/// A code from the range RFC 6891 §9 reserves for local or experimental use.
const OPTION_EXPERIMENTAL: u16 = 65001;

async fn server() -> TestServer {
    TestServer::start(vec![
        instance("web", "web-1", r#"{"address":"10.0.0.5","port":8080}"#),
        instance("web", "web-2", r#"{"address":"fd00::7","port":8080}"#),
    ])
    .await
}

/// A query with an OPT record: DO as given, and these options.
fn edns_query(name: &str, rtype: RecordType, dnssec_ok: bool, options: &[(u16, &[u8])]) -> Message {
    let mut message = Message::new(0x3225, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_str(name).unwrap(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(dnssec_ok);
    for &(code, data) in options {
        edns.options_mut()
            .insert(EdnsOption::Unknown(code, data.to_vec()));
    }
    message.set_edns(edns);
    message
}

/// Sends `query` over UDP; the response read back.
async fn ask(server: &TestServer, query: &Message) -> Message {
    let reply = server.raw(&query.to_vec().unwrap()).await.expect("a reply");
    Message::from_vec(&reply).expect("a well-formed reply")
}

/// Questions that get each kind of response disco sends from its snapshot.
const EACH_KIND: [(&str, RecordType, ResponseCode); 6] = [
    ("web.disco.internal.", RecordType::A, ResponseCode::NoError),
    (
        "web.disco.internal.",
        RecordType::SRV,
        ResponseCode::NoError,
    ),
    ("web.disco.internal.", RecordType::MX, ResponseCode::NoError),
    (
        "nope.disco.internal.",
        RecordType::A,
        ResponseCode::NXDomain,
    ),
    ("example.com.", RecordType::A, ResponseCode::Refused),
    (
        "web.disco.internal.",
        RecordType::AXFR,
        ResponseCode::Refused,
    ),
];

#[tokio::test]
async fn rfc3225_section3_the_do_bit_is_copied_into_every_response() {
    let server = server().await;
    for (name, rtype, rcode) in EACH_KIND {
        for dnssec_ok in [true, false] {
            let reply = ask(&server, &edns_query(name, rtype, dnssec_ok, &[])).await;
            assert_eq!(reply.metadata.response_code, rcode, "{name} {rtype}");
            let edns = reply
                .edns
                .as_ref()
                .unwrap_or_else(|| panic!("{name} {rtype}: no OPT"));
            assert_eq!(
                edns.flags().dnssec_ok,
                dnssec_ok,
                "{name} {rtype} DO={dnssec_ok}"
            );
        }
    }
    // BADVERS too.
    let mut version_1 = edns_query("web.disco.internal.", RecordType::A, true, &[]);
    version_1.edns.as_mut().unwrap().set_version(1);
    let reply = ask(&server, &version_1).await;
    let edns = reply.edns.expect("an OPT with BADVERS");
    assert_eq!((edns.rcode_high(), edns.flags().dnssec_ok), (1, true));
}

#[tokio::test]
async fn rfc6891_section6_1_2_unknown_options_are_ignored() {
    let server = server().await;
    let query = edns_query(
        "web.disco.internal.",
        RecordType::A,
        false,
        &[
            (OPTION_EXPERIMENTAL, b"anything"),
            (OPTION_EXPERIMENTAL + 1, b""),
        ],
    );
    let reply = ask(&server, &query).await;
    assert_eq!(answers(&reply), ["10.0.0.5"]);
    let edns = reply.edns.expect("an OPT");
    assert!(
        edns.options().as_ref().is_empty(),
        "no option echoed: {edns:?}"
    );
}

/// The data of a reply's COOKIE option, which hickory keeps as unknown.
fn cookie_bytes(option: Option<&hickory_proto::rr::rdata::opt::EdnsOption>) -> Vec<u8> {
    match option {
        Some(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(10, data)) => data.clone(),
        other => panic!("no COOKIE in the reply: {other:?}"),
    }
}

#[tokio::test]
async fn rfc7873_section5_2_a_client_cookie_gets_a_server_cookie_with_the_answer() {
    // §5.2.3 (a client cookie alone) and §5.2.4 (with a server cookie not
    // disco's): answered as usual, with the client cookie and a new RFC
    // 9018 server cookie (version 1) in the reply.
    let server = server().await;
    for cookie in [&b"\x01\x02\x03\x04\x05\x06\x07\x08"[..], &[7; 24]] {
        let query = edns_query(
            "web.disco.internal.",
            RecordType::A,
            false,
            &[(OPTION_COOKIE, cookie)],
        );
        let reply = ask(&server, &query).await;
        assert_eq!(answers(&reply), ["10.0.0.5"]);
        let edns = reply.edns.expect("an OPT");
        let bytes = cookie_bytes(edns.option(EdnsCode::Cookie));
        assert_eq!(bytes.len(), 24, "{bytes:?}");
        assert_eq!((&bytes[..8], bytes[8]), (&cookie[..8], 1));
    }
}

#[tokio::test]
async fn rfc7873_section5_4_a_cookie_only_query_gets_a_server_cookie() {
    // No question, an OPT with a client cookie: how a client asks for a
    // server cookie. NOERROR, the cookie, and the DO bit copied.
    let server = server().await;
    let mut query = edns_query(
        "web.disco.internal.",
        RecordType::A,
        true,
        &[(OPTION_COOKIE, &[1; 8])],
    );
    query.queries.clear();
    let reply = ask(&server, &query).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.metadata.id, 0x3225);
    let edns = reply.edns.expect("RFC 6891 §7: an OPT in the reply");
    assert!(edns.flags().dnssec_ok);
    assert_eq!(cookie_bytes(edns.option(EdnsCode::Cookie))[..8], [1; 8]);
    // Without a cookie, a question-less query is still FORMERR.
    let mut query = edns_query("web.disco.internal.", RecordType::A, true, &[]);
    query.queries.clear();
    let reply = ask(&server, &query).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
}

#[tokio::test]
async fn rfc6891_section7_every_response_to_an_edns_query_has_an_opt() {
    let server = server().await;
    let mut queries: Vec<Message> = EACH_KIND
        .iter()
        .map(|&(name, rtype, _)| edns_query(name, rtype, false, &[]))
        .collect();
    let mut notify = edns_query("web.disco.internal.", RecordType::SOA, false, &[]);
    notify.metadata.op_code = OpCode::Notify;
    queries.push(notify);
    let mut two_questions = edns_query("web.disco.internal.", RecordType::A, false, &[]);
    two_questions.add_query(Query::query(
        Name::from_str("x.disco.internal.").unwrap(),
        RecordType::A,
    ));
    queries.push(two_questions);
    let mut chaos = edns_query("version.bind.", RecordType::TXT, false, &[]);
    chaos.queries[0].query_class = hickory_proto::rr::DNSClass::CH;
    queries.push(chaos);
    for query in &queries {
        let reply = ask(&server, query).await;
        assert!(
            reply.edns.is_some(),
            "no OPT in the {:?} reply to {:?}",
            reply.metadata.response_code,
            query.queries
        );
    }
}

#[tokio::test]
async fn rfc8020_names_above_registered_reverse_names_are_nodata_with_an_soa() {
    let server = server().await;
    for name in [
        "0.0.10.in-addr.arpa.",
        "0.10.in-addr.arpa.",
        "10.in-addr.arpa.",
        "d.f.ip6.arpa.",
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
    ] {
        for rtype in [RecordType::PTR, RecordType::NS] {
            let reply = server.udp(name, rtype).await;
            assert_eq!(rcode(&reply), ResponseCode::NoError, "{name} {rtype}");
            assert!(reply.answers.is_empty(), "{name} {rtype}");
            assert!(authority_soa(&reply).is_some(), "{name} {rtype}: no SOA");
        }
    }
    // A registered address's other types: NODATA as well.
    let reply = server.udp("5.0.0.10.in-addr.arpa.", RecordType::A).await;
    assert_eq!(rcode(&reply), ResponseCode::NoError);
    assert!(reply.answers.is_empty() && authority_soa(&reply).is_some());
    // Beside them, nothing is registered: not disco's (forwarded, here
    // refused as there is no upstream).
    for name in [
        "1.10.in-addr.arpa.",
        "6.0.0.10.in-addr.arpa.",
        "11.in-addr.arpa.",
        "in-addr.arpa.",
    ] {
        assert_eq!(
            rcode(&server.udp(name, RecordType::PTR).await),
            ResponseCode::Refused,
            "{name}"
        );
    }
    // The registered one still answers.
    assert_eq!(
        answers(&server.udp("5.0.0.10.in-addr.arpa.", RecordType::PTR).await),
        ["web-1.web.disco.internal."]
    );
}
