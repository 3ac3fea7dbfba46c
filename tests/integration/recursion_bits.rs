//! The header bits a resolver sets for recursion: RD (RFC 1034 §4.3.1)
//! decides whether disco may forward a question or complete a CNAME
//! through its upstreams; CD (RFC 4035 §3.2.2) goes upstream as the client
//! set it, and answers with and without it are cached apart.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake_upstream::{ANSWER, FakeUpstream, Script};
use crate::support::*;

const DISCO_ZONE: &str = "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\n\
    ext IN CNAME www.example.test.\n";

/// A disco serving `DISCO_ZONE` and forwarding to a watched upstream that
/// answers every name with `ANSWER`.
async fn servers() -> (FakeUpstream, TestServer) {
    let upstream = FakeUpstream::start(Script::AnswerAfter(Duration::ZERO)).await;
    let server = TestServer::start_with(vec![], &[("disco.internal.zone", DISCO_ZONE)], |args| {
        args.upstream = vec![upstream.addr.to_string()];
    })
    .await;
    (upstream, server)
}

/// A query for `name`/`rtype` with EDNS, RD and CD as given.
fn query(name: &str, rtype: RecordType, rd: bool, cd: bool) -> Vec<u8> {
    let mut packet = query_message(name, rtype, Some(1232));
    packet[2] = if rd {
        packet[2] | 0x01
    } else {
        packet[2] & !0x01
    };
    if cd {
        packet[3] |= 0x10;
    }
    packet
}

async fn ask(server: &TestServer, packet: &[u8]) -> Message {
    let bytes = server.raw(packet).await.expect("an answer over UDP");
    Message::from_vec(&bytes).unwrap()
}

async fn ask_tcp(server: &TestServer, packet: &[u8]) -> Message {
    let mut stream = TcpStream::connect(server.dns).await.unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut bytes).await.unwrap();
    Message::from_vec(&bytes).unwrap()
}

/// The names the upstream was asked, lowercase, in order.
fn asked(upstream: &FakeUpstream) -> Vec<String> {
    (upstream.received().iter())
        .map(|m| m.queries[0].name().to_lowercase().to_ascii())
        .collect()
}

/// Asks `name` with RD set and waits for its forwarded answer: every
/// question disco sent upstream before it has arrived there by then.
async fn barrier(server: &TestServer, name: &str) {
    let message = ask(server, &query(name, RecordType::A, true, false)).await;
    assert_eq!(answers(&message), [ANSWER], "{name} was forwarded");
}

#[tokio::test]
async fn rfc1034_4_3_1_rd_clear_out_of_the_zones_is_refused_and_never_sent_upstream() {
    let (upstream, server) = servers().await;
    // Cached with RD set: RD clear must not be answered from the cache
    // either.
    barrier(&server, "cached.example.test.").await;
    for name in ["cached.example.test.", "other.example.test."] {
        let packet = query(name, RecordType::A, false, false);
        for message in [ask(&server, &packet).await, ask_tcp(&server, &packet).await] {
            assert_eq!(rcode(&message), ResponseCode::Refused, "{name}");
            assert!(message.answers.is_empty());
            assert!(!message.metadata.recursion_desired);
        }
    }
    barrier(&server, "after.example.test.").await;
    assert_eq!(
        asked(&upstream),
        ["cached.example.test.", "after.example.test."]
    );
    // Disco's own names are answered whatever RD says.
    let own = ask(
        &server,
        &query("ext.disco.internal.", RecordType::CNAME, false, false),
    )
    .await;
    assert_eq!(rcode(&own), ResponseCode::NoError);
    assert_eq!(answers(&own), ["www.example.test."]);
}

#[tokio::test]
async fn rfc1034_4_3_1_rd_clear_leaves_a_cname_out_of_the_zones_alone() {
    let (upstream, server) = servers().await;
    let completed = ask(
        &server,
        &query("ext.disco.internal.", RecordType::A, true, false),
    )
    .await;
    assert_eq!(answers(&completed), [ANSWER, "www.example.test."]);
    // The target is now in the forward cache: RD clear still gets the
    // CNAME alone.
    let packet = query("ext.disco.internal.", RecordType::A, false, false);
    for alone in [ask(&server, &packet).await, ask_tcp(&server, &packet).await] {
        assert_eq!(rcode(&alone), ResponseCode::NoError);
        assert_eq!(answers(&alone), ["www.example.test."]);
        assert_eq!(alone.answers[0].record_type(), RecordType::CNAME);
    }
    barrier(&server, "after.example.test.").await;
    assert_eq!(
        asked(&upstream),
        ["www.example.test.", "after.example.test."]
    );
}

#[tokio::test]
async fn rfc4035_3_2_2_cd_goes_upstream_and_answers_with_and_without_it_are_cached_apart() {
    let (upstream, server) = servers().await;
    let name = "signed.example.test.";
    let plain = query(name, RecordType::A, true, false);
    let unchecked = query(name, RecordType::A, true, true);
    let first = ask(&server, &plain).await;
    assert!(!first.metadata.checking_disabled);
    let second = ask(&server, &unchecked).await;
    assert_eq!(answers(&second), [ANSWER]);
    // The response echoes the client's CD bit.
    assert!(second.metadata.checking_disabled);
    let cd_upstream: Vec<bool> = (upstream.received().iter())
        .map(|m| m.metadata.checking_disabled)
        .collect();
    assert_eq!(cd_upstream, [false, true], "one question each, CD as sent");
    // Each is now cached under its own key: asked again, neither goes
    // upstream, and each keeps its CD bit.
    for _ in 0..3 {
        assert!(!ask(&server, &plain).await.metadata.checking_disabled);
        assert!(ask(&server, &unchecked).await.metadata.checking_disabled);
    }
    barrier(&server, "after.example.test.").await;
    assert_eq!(upstream.queries(), 3);
}
