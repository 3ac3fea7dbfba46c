//! Asking a responder, and what every response it sends must be.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question};
use hickory_proto::rr::{Name, RecordType};

use crate::dns::Responder;
use crate::dns::packet::Query;
use crate::dns::responder::{Outcome, Transport};

/// A query for `name` and `rtype`, RD set, with EDNS when `edns_size` is
/// given.
pub fn query_packet(name: &Name, rtype: RecordType, edns_size: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Question::query(name.clone(), rtype));
    if let Some(size) = edns_size {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.set_edns(edns);
    }
    message.to_vec().expect("a query with one question encodes")
}

/// Answers `packet` over UDP and over TCP, from a loopback client, and
/// checks each response: it goes only to something with a header, carries
/// the query's ID, QR set, and the question as asked, fits the transport,
/// and parses. Panics otherwise.
pub fn answer_checked(responder: &Responder, packet: &[u8]) {
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut out = Vec::new();
        let outcome = responder.respond(packet, client, transport, &mut out);
        if !matches!(outcome, Outcome::Reply | Outcome::CompleteCname) {
            continue;
        }
        assert!(packet.len() >= 12, "a reply to {} bytes", packet.len());
        assert_eq!(out[..2], packet[..2], "the query's ID");
        assert!(out[2] & 0x80 != 0, "QR set");
        let query = Query::parse(packet);
        let limit = match transport {
            Transport::Udp => query.as_ref().map_or(512, Query::udp_limit),
            Transport::Tcp => 65_535,
        };
        assert!(
            out.len() <= limit,
            "a reply of {} bytes over a {limit}-byte limit",
            out.len()
        );
        if let Ok(query) = &query {
            let question = query.question_bytes();
            assert_eq!(
                out.get(12..12 + question.len()),
                Some(question),
                "the question echoed as asked"
            );
        }
        let message = Message::from_vec(&out).expect("disco's reply parses");
        assert!(message.queries.len() <= 1);
    }
}
