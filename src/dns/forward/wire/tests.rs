use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn query(name: &str, id: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    if let Some((size, dnssec_ok)) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        opt.flags_mut().dnssec_ok = dnssec_ok;
        message.set_edns(opt);
    }
    message.to_vec().unwrap()
}

fn a(name: &str, ttl: u32, last: u8) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        ttl,
        RData::A(A::new(192, 0, 2, last)),
    )
}

fn soa(ttl: u32, minimum: u32) -> Record {
    let soa = SOA::new(
        Name::from_ascii("ns.example.").unwrap(),
        Name::from_ascii("admin.example.").unwrap(),
        1,
        3600,
        600,
        86400,
        minimum,
    );
    Record::from_rdata(Name::from_ascii("example.").unwrap(), ttl, RData::SOA(soa))
}

/// An upstream's response to `x.example. A`, question lowercase.
fn response(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Message {
    let mut message = Message::response(0x7777, OpCode::Query);
    message.metadata.response_code = rcode;
    message.metadata.recursion_available = true;
    message.add_query(Query::query(
        Name::from_ascii("x.example.").unwrap(),
        RecordType::A,
    ));
    message.add_answers(answers);
    message.add_authorities(authorities);
    message
}

fn prepare(message: &Message) -> Option<Prepared> {
    let client = query("x.example.", 1, None);
    let client = ClientQuery::parse(&client).unwrap();
    Prepared::new(&message.to_vec().unwrap(), client.lowercase_question(), 300)
}

fn written(prepared: &Prepared, client: &[u8], age: u32, stale: bool, limit: usize) -> Message {
    let client = ClientQuery::parse(client).unwrap();
    let mut out = Vec::new();
    prepared.write(&client, age, stale, limit, &mut out);
    Message::from_vec(&out).unwrap()
}

#[test]
fn client_questions_give_case_blind_keys_with_the_do_bit() {
    let plain = query("WwW.Example.COM.", 1, None);
    let plain = ClientQuery::parse(&plain).unwrap();
    let other = query("www.example.com.", 2, Some((4096, false)));
    let other = ClientQuery::parse(&other).unwrap();
    let signed = query("www.example.com.", 3, Some((1400, true)));
    let signed = ClientQuery::parse(&signed).unwrap();
    assert_eq!(plain.key(), other.key());
    assert_ne!(plain.key(), signed.key());
    assert_eq!((plain.edns, plain.udp_limit), (false, 512));
    assert_eq!((other.edns, other.udp_limit), (true, 1232));
    assert_eq!((signed.dnssec_ok, signed.udp_limit), (true, 1232));
    assert_eq!(plain.qtype(), 1);
    assert_eq!(&plain.question()[1..4], b"WwW");
}

#[test]
fn rfc4035_3_2_2_the_cd_bit_is_part_of_the_key_and_kept_apart_from_do() {
    let checked = query("www.example.com.", 1, Some((1232, true)));
    let mut unchecked = checked.clone();
    unchecked[3] |= 0x10;
    let checked = ClientQuery::parse(&checked).unwrap();
    let unchecked = ClientQuery::parse(&unchecked).unwrap();
    assert!(unchecked.checking_disabled && !checked.checking_disabled);
    assert_ne!(checked.key(), unchecked.key());
    // The question that goes upstream is the same.
    assert_eq!(checked.lowercase_question(), unchecked.lowercase_question());
    let plain = query("www.example.com.", 1, None);
    let mut cd_only = plain.clone();
    cd_only[3] |= 0x10;
    let (plain, cd_only) = (
        ClientQuery::parse(&plain).unwrap(),
        ClientQuery::parse(&cd_only).unwrap(),
    );
    // CD without DO is not DO without CD.
    assert_ne!(cd_only.key(), plain.key());
    assert_ne!(cd_only.key(), checked.key());
}

#[test]
fn answers_are_written_with_the_clients_id_question_and_aged_ttls() {
    let prepared = prepare(&response(
        ResponseCode::NoError,
        vec![a("x.example.", 120, 1), a("x.example.", 90, 2)],
        vec![],
    ))
    .unwrap();
    assert_eq!(prepared.lifetime, 90);
    assert!(!prepared.negative);

    let client = query("X.Example.", 0xbeef, Some((1232, false)));
    let message = written(&prepared, &client, 30, false, 512);
    assert_eq!(message.metadata.id, 0xbeef);
    assert_eq!(message.queries[0].name().to_ascii(), "X.Example.");
    assert!(message.metadata.recursion_available && !message.metadata.authoritative);
    let ttls: Vec<u32> = message.answers.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [90, 60]);
    assert!(message.edns.is_some(), "an EDNS client gets OPT");

    let stale = written(&prepared, &query("x.example.", 2, None), 500, true, 512);
    assert!(stale.answers.iter().all(|r| r.ttl == STALE_TTL));
    assert!(stale.edns.is_none(), "no OPT for a client without one");
}

#[test]
fn ttls_are_capped_and_negative_answers_live_for_the_soa_minimum() {
    let long = prepare(&response(
        ResponseCode::NoError,
        vec![a("x.example.", 86_400, 1)],
        vec![],
    ))
    .unwrap();
    assert_eq!(long.lifetime, 300);
    let message = written(&long, &query("x.example.", 1, None), 0, false, 512);
    assert_eq!(message.answers[0].ttl, 300);

    let nxdomain = prepare(&response(
        ResponseCode::NXDomain,
        vec![],
        vec![soa(3600, 30)],
    ))
    .unwrap();
    assert_eq!((nxdomain.lifetime, nxdomain.negative), (30, true));
    let message = written(&nxdomain, &query("x.example.", 1, None), 10, false, 512);
    assert_eq!(message.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(message.authorities[0].ttl, 20);

    let nodata = prepare(&response(ResponseCode::NoError, vec![], vec![soa(20, 600)])).unwrap();
    assert_eq!((nodata.lifetime, nodata.negative), (20, true));

    // Not cached: negative without SOA, zero TTL, failures, truncated.
    let bare = prepare(&response(ResponseCode::NXDomain, vec![], vec![])).unwrap();
    assert_eq!(bare.lifetime, 0);
    let zero = prepare(&response(
        ResponseCode::NoError,
        vec![a("x.example.", 0, 1)],
        vec![],
    ));
    assert_eq!(zero.unwrap().lifetime, 0);
    let servfail = prepare(&response(ResponseCode::ServFail, vec![], vec![soa(60, 60)]));
    assert_eq!(servfail.unwrap().lifetime, 0);
    let mut truncated = response(ResponseCode::NoError, vec![a("x.example.", 60, 1)], vec![]);
    truncated.metadata.truncation = true;
    assert_eq!(prepare(&truncated).unwrap().lifetime, 0);
}

#[test]
fn the_upstreams_opt_record_is_dropped_and_the_clients_own_added() {
    let mut message = response(ResponseCode::NoError, vec![a("x.example.", 60, 1)], vec![]);
    message.set_edns(Edns::new());
    let prepared = prepare(&message).unwrap();
    assert_eq!(&prepared.bytes()[10..12], &[0, 0]);
    let plain = written(&prepared, &query("x.example.", 1, None), 0, false, 512);
    assert!(plain.edns.is_none());
    let with_opt = written(
        &prepared,
        &query("x.example.", 1, Some((1232, false))),
        0,
        false,
        512,
    );
    assert_eq!(with_opt.edns.unwrap().max_payload(), 1232);
}

#[test]
fn long_answers_shrink_to_the_clients_limit() {
    let answers = (0..40).map(|i| a("x.example.", 60, i)).collect();
    let prepared = prepare(&response(ResponseCode::NoError, answers, vec![])).unwrap();
    let client = query("x.example.", 9, None);
    let parsed = ClientQuery::parse(&client).unwrap();
    let mut out = Vec::new();
    prepared.write(&parsed, 0, false, 512, &mut out);
    assert!(out.len() <= 512);
    let message = Message::from_vec(&out).unwrap();
    assert!(message.metadata.truncation);
    assert_eq!(message.metadata.id, 9);
    let full = written(&prepared, &client, 0, false, 65_535);
    assert_eq!(full.answers.len(), 40);
    assert!(!full.metadata.truncation);
}

#[test]
fn answers_to_another_question_are_not_taken() {
    let message = response(ResponseCode::NoError, vec![a("x.example.", 60, 1)], vec![]);
    let other = query("y.example.", 1, None);
    let other = ClientQuery::parse(&other).unwrap();
    assert!(Prepared::new(&message.to_vec().unwrap(), other.lowercase_question(), 300).is_none());
    let mut not_response = message.to_vec().unwrap();
    not_response[2] &= !0x80;
    assert!(prepare(&Message::from_vec(&not_response).unwrap()).is_none());
}

#[test]
fn wire_readers_survive_arbitrary_bytes() {
    let good_query = query("a.example.", 1, Some((1232, true)));
    let good = response(
        ResponseCode::NoError,
        vec![a("x.example.", 60, 1)],
        vec![soa(60, 30)],
    )
    .to_vec()
    .unwrap();
    let question = &good[HEADER_LEN..HEADER_LEN + 15];
    let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    inputs.extend((0..good_query.len()).map(|n| good_query[..n].to_vec()));
    let mut state: u32 = 0x1234_5678;
    for len in 0..2000 {
        let mut bytes: Vec<u8> = good.clone();
        for _ in 0..(len % 7) + 1 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let at = state as usize % bytes.len();
            bytes[at] = (state >> 8) as u8;
        }
        inputs.push(bytes);
    }
    let client = ClientQuery::parse(&good_query).unwrap();
    for input in &inputs {
        let _ = ClientQuery::parse(input);
        if let Some(prepared) = Prepared::new(input, question, 300) {
            let mut out = Vec::new();
            prepared.write(&client, 5, false, 512, &mut out);
            prepared.write(&client, 5, true, 20, &mut out);
        }
    }
}

#[test]
fn same_question_ignores_name_case_only() {
    // Type 0x0041 vs 0x0061 look like 'A' and 'a': must differ.
    let a = b"\x01x\x00\x00\x41\x00\x01";
    let b = b"\x01X\x00\x00\x41\x00\x01";
    let c = b"\x01x\x00\x00\x61\x00\x01";
    assert!(same_question(a, b));
    assert!(!same_question(a, c));
    assert!(!same_question(a, &a[..6]));
}
