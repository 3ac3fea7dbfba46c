//! Bad input gets FORMERR (or NOTIMP, REFUSED) or is dropped, never a panic,
//! and the server keeps answering.
//!
//! Packets are built by hand, byte by byte, so each test says exactly what is
//! sent. Packets that must be dropped are sent from one socket followed by a
//! good "control" query from the same socket: disco answers one client socket
//! in order, so any reply to a bad packet would arrive before the control's,
//! and waiting for the control bounds each check without fixed sleeps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::*;

const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;

const TYPE_A: u16 = 1;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// Flags of a standard query with RD set.
const QUERY_FLAGS: u16 = 0x0100;
/// The ID of the control query; every other ID in this file is below it.
const CONTROL_ID: u16 = 0xd15c;

/// `web.disco.internal.` in wire format.
const WEB: &[u8] = b"\x03web\x05disco\x08internal\x00";

async fn web_server() -> TestServer {
    TestServer::start(vec![instance(
        "web",
        "web-1",
        r#"{"address":"10.0.0.5","port":8080}"#,
    )])
    .await
}

/// The server still answers a normal query (hickory's client, UDP, fresh socket).
async fn assert_still_answers(server: &TestServer) {
    let message = server.udp("web.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&message), ["10.0.0.5"], "{message:?}");
}

// ---------------------------------------------------------------------------
// Packet building

/// A 12-byte header: ID, flags, then QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out
}

/// A question: the name exactly as given (wire format), QTYPE, QCLASS.
fn question(name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut out = name.to_vec();
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out
}

/// A standard query with one question and nothing else.
fn query(id: u16, name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut out = header(id, QUERY_FLAGS, [1, 0, 0, 0]);
    out.extend_from_slice(&question(name, qtype, qclass));
    out
}

/// Appends `records` to the additional section and bumps ARCOUNT.
fn with_additionals(mut packet: Vec<u8>, records: &[&[u8]]) -> Vec<u8> {
    let arcount = u16::from_be_bytes([packet[10], packet[11]]) + records.len() as u16;
    packet[10..12].copy_from_slice(&arcount.to_be_bytes());
    for record in records {
        packet.extend_from_slice(record);
    }
    packet
}

/// An OPT pseudo-record (RFC 6891 §6.1.2): root owner, TYPE 41, CLASS = UDP
/// payload size, TTL = extended RCODE, VERSION, flags; no options.
fn opt(payload: u16, version: u8) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, version, 0, 0, 0, 0]);
    out
}

/// A wire name of labels of the given lengths (filled with `a`), then the
/// given suffix (a wire name ending in the root).
fn long_name(label_lens: &[usize], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &len in label_lens {
        out.push(len as u8);
        out.extend(std::iter::repeat_n(b'a', len));
    }
    out.extend_from_slice(suffix);
    out
}

// ---------------------------------------------------------------------------
// Replies

fn id_of(reply: &[u8]) -> u16 {
    u16::from_be_bytes([reply[0], reply[1]])
}

fn rcode_of(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

fn count_of(reply: &[u8], index: usize) -> u16 {
    u16::from_be_bytes([reply[4 + 2 * index], reply[5 + 2 * index]])
}

/// Checks that `reply` is a response to `sent` with `rcode`: same ID, QR set,
/// same opcode, at most the one question. Returns the reply.
#[track_caller]
fn assert_reply(reply: Option<Vec<u8>>, sent: &[u8], rcode: u8, what: &str) -> Vec<u8> {
    let reply = reply.unwrap_or_else(|| panic!("{what}: no reply within 1 s"));
    assert!(reply.len() >= 12, "{what}: a {}-byte reply", reply.len());
    assert_eq!(id_of(&reply), id_of(sent), "{what}: the reply's ID");
    assert_ne!(reply[2] & 0x80, 0, "{what}: QR must be set");
    assert_eq!(
        reply[2] & 0x78,
        sent[2] & 0x78,
        "{what}: the opcode is copied"
    );
    assert_eq!(
        rcode_of(&reply),
        rcode,
        "{what}: rcode (reply {reply:02x?})"
    );
    assert!(
        count_of(&reply, 0) <= 1,
        "{what}: QDCOUNT {}",
        count_of(&reply, 0)
    );
    reply
}

/// Sends `packets` from one socket, then a good control query from the same
/// socket, and returns every reply that arrives before the control's answer
/// (see the module comment). Panics if the control is not answered in 2 s.
async fn replies_before_control(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for packet in packets {
        socket.send_to(packet, server).await.unwrap();
    }
    let control = query(CONTROL_ID, WEB, TYPE_A, CLASS_IN);
    socket.send_to(&control, server).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (len, _) = tokio::time::timeout(left, socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the control query was not answered within 2 s after {} packets ({} replies)",
                    packets.len(),
                    replies.len()
                )
            })
            .unwrap();
        let reply = buf[..len].to_vec();
        if len >= 12 && id_of(&reply) == CONTROL_ID {
            assert_eq!(rcode_of(&reply), NOERROR, "the control query");
            assert_eq!(count_of(&reply, 1), 1, "the control query's answer");
            return replies;
        }
        replies.push(reply);
    }
}

/// Sends `packets` and asserts that none of them is answered.
async fn assert_dropped(server: &TestServer, packets: &[Vec<u8>], what: &str) {
    let replies = replies_before_control(server.dns, packets).await;
    assert!(
        replies.is_empty(),
        "{what}: {} replies to packets that must be dropped, first: {:02x?}",
        replies.len(),
        replies[0]
    );
}

/// Whether disco must answer `packet` at all: it has a whole header and is
/// not itself a response (QR clear). Everything else is dropped.
fn must_be_answered(packet: &[u8]) -> bool {
    packet.len() >= 12 && packet[2] & 0x80 == 0
}

/// The end of the question section of `packet` when its first name is plain
/// labels: what disco echoes back.
fn question_end(packet: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = *packet.get(at)? as usize;
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    (at + 4 <= packet.len()).then_some(at + 4)
}

/// Checks a reply to an arbitrary packet: a well-formed DNS message, QR set,
/// the packet's ID and opcode, a plausible rcode, and the question (if any)
/// echoed byte for byte.
#[track_caller]
fn assert_sane_reply(sent: &[u8], reply: &[u8], what: &str) {
    assert!(
        must_be_answered(sent),
        "{what}: a reply to a packet that must be dropped: sent {sent:02x?}, got {reply:02x?}"
    );
    if let Err(err) = Message::from_vec(reply) {
        panic!("{what}: the reply does not parse ({err}): sent {sent:02x?}, got {reply:02x?}");
    }
    assert_eq!(id_of(reply), id_of(sent), "{what}: ID");
    assert_ne!(reply[2] & 0x80, 0, "{what}: QR must be set in {reply:02x?}");
    assert_eq!(reply[2] & 0x78, sent[2] & 0x78, "{what}: opcode");
    let rcode = rcode_of(reply);
    assert!(
        [NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED].contains(&rcode),
        "{what}: rcode {rcode}: sent {sent:02x?}, got {reply:02x?}"
    );
    match count_of(reply, 0) {
        0 => {}
        1 => {
            let end = question_end(reply).expect("an echoed question is plain labels");
            assert_eq!(
                reply.get(12..end),
                sent.get(12..end),
                "{what}: the question is echoed as asked: sent {sent:02x?}, got {reply:02x?}"
            );
        }
        n => panic!("{what}: QDCOUNT {n} in {reply:02x?}"),
    }
}

// ---------------------------------------------------------------------------
// Random input

/// xorshift64: deterministic, so a failure reproduces with the same packets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Entirely random bytes, 0..600 long.
fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(600);
    rng.bytes(len)
}

/// A query put together from random parts: a header that passes the first
/// checks (QR clear, opcode QUERY, QDCOUNT 1), a name of random labels, a
/// type and class from a mix of usual and odd values, then records of random
/// shape (OPT or not, root, pointer or random owner, RDLENGTH right or
/// wrong). Exercises the question and record parsers rather than the
/// header checks, which reject almost every entirely random packet.
fn random_query(rng: &mut Rng) -> Vec<u8> {
    let records = [rng.below(2), rng.below(2), rng.below(4)];
    let mut packet = header(
        0,
        (rng.next() as u16) & 0x07ff,
        [1, records[0] as u16, records[1] as u16, records[2] as u16],
    );
    for _ in 0..rng.below(5) {
        let len = if rng.below(16) == 0 {
            rng.next() as u8 as usize // any length byte, label type or pointer
        } else {
            1 + rng.below(20)
        };
        packet.push(len as u8);
        packet.extend(rng.bytes(len.min(63)));
    }
    packet.push(0);
    let pick = |rng: &mut Rng, usual: &[u16]| match usual.get(rng.below(usual.len() + 1)) {
        Some(&value) => value,
        None => rng.next() as u16,
    };
    let qtype = pick(rng, &[1, 28, 33, 16, 6, 2, 12, 255, 41, 0, 252, 251]);
    let qclass = pick(rng, &[1, 1, 1, 3, 4, 254, 255, 0]);
    packet.extend_from_slice(&question(&[], qtype, qclass));
    for _ in 0..records.iter().sum::<usize>() {
        match rng.below(4) {
            0 => packet.push(0),
            1 => packet.extend_from_slice(&[0xc0, 0x0c]),
            2 => packet.extend_from_slice(b"\x03web\x00"),
            _ => {
                let len = rng.below(6);
                packet.extend(rng.bytes(len));
            }
        }
        let rtype = pick(rng, &[41, 41, 1]);
        packet.extend_from_slice(&rtype.to_be_bytes());
        packet.extend(rng.bytes(6)); // CLASS (payload size), TTL (ext. rcode, version, flags)
        let rdata = rng.below(12);
        let claimed = if rng.below(4) == 0 {
            rng.below(16)
        } else {
            rdata
        };
        packet.extend_from_slice(&(claimed as u16).to_be_bytes());
        packet.extend(rng.bytes(rdata));
    }
    if rng.below(4) == 0 {
        let len = rng.below(20);
        packet.extend(rng.bytes(len));
    }
    packet
}

/// A good query (with EDNS half the time) with one to four bytes replaced at
/// random, or cut short.
fn mutated_query(rng: &mut Rng) -> Vec<u8> {
    let mut packet = query(0, WEB, TYPE_A, CLASS_IN);
    if rng.below(2) == 0 {
        packet = with_additionals(packet, &[&opt(1232, 0)]);
    }
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(packet.len());
        packet[at] = rng.next() as u8;
    }
    if rng.below(4) == 0 {
        let len = rng.below(packet.len());
        packet.truncate(len);
    }
    packet
}

/// Packets sent before each control query: few enough that neither socket
/// buffer can overflow, so no reply is lost on the way.
const BATCH: usize = 50;

/// Sends `count` packets from `make` in batches, each followed by a control
/// query, and checks every reply. The ID bytes of packet `i` are set to `i`
/// so each reply names the packet it answers.
async fn fuzz_udp(server: &TestServer, seed: u64, count: usize, make: fn(&mut Rng) -> Vec<u8>) {
    let mut rng = Rng(seed);
    let packets: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut packet = make(&mut rng);
            let id = (i as u16).to_be_bytes();
            for (byte, id) in packet.iter_mut().zip(id) {
                *byte = id;
            }
            packet
        })
        .collect();
    let mut answered = BTreeMap::new();
    for (batch_index, batch) in packets.chunks(BATCH).enumerate() {
        for reply in replies_before_control(server.dns, batch).await {
            assert!(reply.len() >= 2, "a {}-byte reply", reply.len());
            let id = id_of(&reply) as usize;
            let sent = packets
                .get(id)
                .filter(|_| id / BATCH == batch_index)
                .unwrap_or_else(|| panic!("a reply with ID {id} answers no packet: {reply:02x?}"));
            assert_sane_reply(sent, &reply, &format!("packet {id}"));
            assert!(
                answered.insert(id, reply).is_none(),
                "packet {id} answered twice"
            );
        }
    }
    let unanswered: Vec<usize> = (0..count)
        .filter(|&i| must_be_answered(&packets[i]) && !answered.contains_key(&i))
        .collect();
    assert!(
        unanswered.is_empty(),
        "{} packets with a query header got no reply (a panic in the query path?), first: packet {} = {:02x?}",
        unanswered.len(),
        unanswered[0],
        packets[unanswered[0]]
    );
}

#[tokio::test]
async fn random_datagrams_get_a_well_formed_reply_or_none() {
    let server = web_server().await;
    fuzz_udp(&server, 0x5eed_d15c_0000_0001, 2000, random_packet).await;
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn random_queries_get_a_well_formed_reply() {
    let server = web_server().await;
    fuzz_udp(&server, 0x5eed_d15c_0000_0002, 2000, random_query).await;
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn randomly_mutated_queries_get_a_well_formed_reply_or_none() {
    let server = web_server().await;
    fuzz_udp(&server, 0x5eed_d15c_0000_0003, 2000, mutated_query).await;
    assert_still_answers(&server).await;
}

/// Sends one length-prefixed frame and reads the response: `Some(reply)`, or
/// `None` when the server closed the connection. Panics when it does
/// neither within 2 s.
async fn tcp_exchange(stream: &mut TcpStream, frame: &[u8]) -> Option<Vec<u8>> {
    if stream.write_all(frame).await.is_err() {
        return None;
    }
    tokio::time::timeout(Duration::from_secs(2), async {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await.ok()?;
        let mut reply = vec![0u8; u16::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut reply).await.ok()?;
        Some(reply)
    })
    .await
    .expect("the server neither answered nor closed the connection within 2 s")
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut frame = (packet.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(packet);
    frame
}

#[tokio::test]
async fn random_tcp_frames_are_answered_or_the_connection_closed() {
    let server = web_server().await;
    let mut rng = Rng(0x5eed_d15c_0000_0004);
    let makers: [fn(&mut Rng) -> Vec<u8>; 3] = [random_packet, random_query, mutated_query];
    let mut stream = None;
    let mut closes = 0;
    for i in 0..90u16 {
        let mut packet = makers[i as usize % 3](&mut rng);
        for (byte, id) in packet.iter_mut().zip(i.to_be_bytes()) {
            *byte = id;
        }
        if stream.is_none() {
            stream = Some(TcpStream::connect(server.dns).await.unwrap());
        }
        let what = format!("TCP frame {i}");
        match tcp_exchange(stream.as_mut().unwrap(), &framed(&packet)).await {
            Some(reply) => assert_sane_reply(&packet, &reply, &what),
            None => {
                // Closing is how disco drops a message on TCP; a message
                // with a query header must be answered instead.
                assert!(
                    !must_be_answered(&packet),
                    "{what}: the connection closed without an answer to {packet:02x?}"
                );
                closes += 1;
                stream = None;
            }
        }
    }
    assert!(closes > 0, "some random frames are shorter than a header");

    // A frame cut short by the client closing its side: the server closes too.
    for partial in [&[0x00][..], &[0x00, 0x64, 0x12, 0x34, 0x01, 0x00][..]] {
        let mut stream = TcpStream::connect(server.dns).await.unwrap();
        stream.write_all(partial).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes a connection whose client stopped mid-frame");
        assert!(
            read.is_err() || rest.is_empty(),
            "a reply to a partial frame {partial:02x?}: {rest:02x?}"
        );
    }

    let tcp = server.tcp("web.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&tcp), ["10.0.0.5"]);
    assert_still_answers(&server).await;
}

// ---------------------------------------------------------------------------
// The header

#[tokio::test]
async fn rfc1035_section4_1_1_packets_shorter_than_a_header_are_dropped() {
    let server = web_server().await;
    let whole = query(0x1234, WEB, TYPE_A, CLASS_IN);
    let short: Vec<Vec<u8>> = (0..12).map(|len| whole[..len].to_vec()).collect();
    assert_dropped(&server, &short, "0..11 bytes of a query").await;

    // A whole header that promises a question it does not carry.
    let bare = header(0x2345, QUERY_FLAGS, [1, 0, 0, 0]);
    assert_reply(
        server.raw(&bare).await,
        &bare,
        FORMERR,
        "a header with QDCOUNT=1 and no question",
    );
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc1035_section4_1_2_exactly_one_question_or_formerr() {
    let server = web_server().await;
    let none = header(0x0a01, QUERY_FLAGS, [0, 0, 0, 0]);
    assert_reply(server.raw(&none).await, &none, FORMERR, "QDCOUNT=0");

    let mut two = header(0x0a02, QUERY_FLAGS, [2, 0, 0, 0]);
    two.extend_from_slice(&question(WEB, TYPE_A, CLASS_IN));
    two.extend_from_slice(&question(WEB, 28, CLASS_IN));
    assert_reply(server.raw(&two).await, &two, FORMERR, "QDCOUNT=2");

    // A good question, then ANCOUNT=1 with only 4 bytes of the record.
    let mut promised = query(0x0a03, WEB, TYPE_A, CLASS_IN);
    promised[7] = 1; // ANCOUNT=1, but only 4 bytes follow
    promised.extend_from_slice(&[0, 0, 1, 0]);
    assert_reply(
        server.raw(&promised).await,
        &promised,
        FORMERR,
        "ANCOUNT=1 with a truncated record",
    );
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc1035_section4_1_1_unimplemented_opcodes_get_notimp() {
    let server = web_server().await;
    // 1 IQUERY (obsolete, RFC 3425), 2 STATUS, 4 NOTIFY, 5 UPDATE, 6 DSO.
    for opcode in [1u16, 2, 4, 5, 6] {
        let mut packet = query(0x0b00 + opcode, WEB, TYPE_A, CLASS_IN);
        packet[2] = (packet[2] & !0x78) | (opcode << 3) as u8;
        assert_reply(
            server.raw(&packet).await,
            &packet,
            NOTIMP,
            &format!("opcode {opcode}"),
        );
    }
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn responses_are_never_answered_so_no_reflection_loop() {
    let server = web_server().await;
    // A well-formed response (QR=1, AA, NOERROR) to web.disco.internal. A,
    // as another server would send it; a FORMERR response; and a bare QR=1
    // header. Answering any of them could ping-pong with another server.
    let mut response = header(0x0c01, 0x8500, [1, 1, 0, 0]);
    response.extend_from_slice(&question(WEB, TYPE_A, CLASS_IN));
    response.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 5]);
    let mut formerr = header(0x0c02, 0x8101, [1, 0, 0, 0]);
    formerr.extend_from_slice(&question(WEB, TYPE_A, CLASS_IN));
    let bare = header(0x0c03, 0x8000, [0, 0, 0, 0]);
    assert_dropped(&server, &[response, formerr, bare], "QR=1").await;
    assert_still_answers(&server).await;
}

// ---------------------------------------------------------------------------
// Names

#[tokio::test]
async fn rfc1035_section4_1_4_compression_pointer_loops_get_formerr() {
    let server = web_server().await;
    // The question name is a pointer to itself (offset 12).
    let mut itself = header(0x0d01, QUERY_FLAGS, [1, 0, 0, 0]);
    itself.extend_from_slice(&question(&[0xc0, 0x0c], TYPE_A, CLASS_IN));
    assert_reply(
        server.raw(&itself).await,
        &itself,
        FORMERR,
        "a question name pointing at itself",
    );

    // Two pointers pointing at each other: 12 -> 14 -> 12.
    let mut pair = header(0x0d02, QUERY_FLAGS, [1, 0, 0, 0]);
    pair.extend_from_slice(&question(&[0xc0, 0x0e, 0xc0, 0x0c], TYPE_A, CLASS_IN));
    assert_reply(
        server.raw(&pair).await,
        &pair,
        FORMERR,
        "two pointers at each other",
    );

    // A pointer past the end of the packet.
    let mut beyond = header(0x0d03, QUERY_FLAGS, [1, 0, 0, 0]);
    beyond.extend_from_slice(&question(&[0xc3, 0xff], TYPE_A, CLASS_IN));
    assert_reply(
        server.raw(&beyond).await,
        &beyond,
        FORMERR,
        "a pointer past the end",
    );
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc6891_section6_1_2_an_opt_owned_by_a_pointer_loop_gets_formerr() {
    let server = web_server().await;
    // The OPT's owner, at offset 12 + 23 = 35, is a pointer to itself; an
    // OPT must be owned by the root.
    let good = query(0x0e01, WEB, TYPE_A, CLASS_IN);
    let owner_at = good.len() as u8;
    let mut record = vec![0xc0, owner_at];
    record.extend_from_slice(&opt(1232, 0)[1..]);
    let looped = with_additionals(good, &[&record]);
    assert_reply(
        server.raw(&looped).await,
        &looped,
        FORMERR,
        "an OPT owned by a pointer to itself",
    );
    assert_still_answers(&server).await;
}

/// An additional A record whose owner name is a pointer to itself, after a
/// good question. Such a message cannot be decompressed (RFC 1035 §4.1.4:
/// a pointer refers to a *prior* occurrence of a name).
fn query_with_looped_additional(id: u16) -> Vec<u8> {
    let good = query(id, WEB, TYPE_A, CLASS_IN);
    let owner_at = good.len() as u8;
    let record: &[u8] = &[
        0xc0, owner_at, // owner: a pointer to this very pointer
        0, 1, 0, 1, // A IN
        0, 0, 0, 60, // TTL
        0, 4, 192, 0, 2, 1, // RDLENGTH 4, 192.0.2.1
    ];
    with_additionals(good, &[record])
}

#[tokio::test]
async fn rfc1035_section4_1_4_a_pointer_loop_in_an_additional_owner_does_not_hang() {
    let server = web_server().await;
    let looped = query_with_looped_additional(0x0e02);
    let started = Instant::now();
    let replies = replies_before_control(server.dns, std::slice::from_ref(&looped)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answering took {:?}",
        started.elapsed()
    );
    // Whatever disco makes of it, the reply (if any) is a sane one.
    for reply in &replies {
        assert_sane_reply(&looped, reply, "a looped additional owner");
    }
    assert!(replies.len() <= 1);
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc1035_section4_1_4_a_pointer_loop_in_an_additional_owner_is_formerr_or_dropped() {
    let server = web_server().await;
    let looped = query_with_looped_additional(0x0e03);
    let replies = replies_before_control(server.dns, std::slice::from_ref(&looped)).await;
    for reply in &replies {
        assert_reply(
            Some(reply.clone()),
            &looped,
            FORMERR,
            "a looped additional owner",
        );
    }
}

#[tokio::test]
async fn rfc1035_section3_1_names_longer_than_255_bytes_get_formerr() {
    let server = web_server().await;
    let suffix = b"\x05disco\x08internal\x00"; // 16 bytes

    // 64 + 64 + 64 + 47 + 16 = 255 bytes: the longest legal name. It does
    // not exist, so NXDOMAIN, with the question echoed.
    let longest = long_name(&[63, 63, 63, 46], suffix);
    assert_eq!(longest.len(), 255);
    let packet = query(0x0f01, &longest, TYPE_A, CLASS_IN);
    let reply = assert_reply(server.raw(&packet).await, &packet, NXDOMAIN, "255 bytes");
    assert_eq!(reply[12..12 + 255 + 4], packet[12..]);

    // One byte more.
    let too_long = long_name(&[63, 63, 63, 47], suffix);
    assert_eq!(too_long.len(), 256);
    let packet = query(0x0f02, &too_long, TYPE_A, CLASS_IN);
    assert_reply(server.raw(&packet).await, &packet, FORMERR, "256 bytes");

    // Five 63-byte labels: 321 bytes.
    let five = long_name(&[63; 5], b"\x00");
    let packet = query(0x0f03, &five, TYPE_A, CLASS_IN);
    assert_reply(
        server.raw(&packet).await,
        &packet,
        FORMERR,
        "five 63-byte labels",
    );
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc1035_section4_1_4_reserved_label_types_get_formerr() {
    let server = web_server().await;
    // A label length byte of 64..=191 is no length: its top bits 01 and 10
    // are reserved (RFC 1035 §4.1.4); 01 was the extended label type, which
    // RFC 6891 §5 deprecates.
    for first in [0x40u8, 0x41, 0x7f, 0x80, 0xbf] {
        let mut name = vec![first];
        name.extend(std::iter::repeat_n(b'a', 70));
        name.push(0);
        let packet = query(0x1000 + first as u16, &name, TYPE_A, CLASS_IN);
        assert_reply(
            server.raw(&packet).await,
            &packet,
            FORMERR,
            &format!("label type byte {first:#04x} first"),
        );
        // And after a good label.
        let mut name = b"\x03web".to_vec();
        name.push(first);
        name.extend(std::iter::repeat_n(b'a', 70));
        name.push(0);
        let packet = query(0x1100 + first as u16, &name, TYPE_A, CLASS_IN);
        assert_reply(
            server.raw(&packet).await,
            &packet,
            FORMERR,
            &format!("label type byte {first:#04x} second"),
        );
    }
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn a_question_cut_short_gets_formerr() {
    let server = web_server().await;
    let whole = query(0x1201, WEB, TYPE_A, CLASS_IN);
    // Cut inside a label, at the root, and inside QTYPE/QCLASS.
    for len in [13, 15, 30, 31, 32, 34] {
        let packet = whole[..len].to_vec();
        assert_reply(
            server.raw(&packet).await,
            &packet,
            FORMERR,
            &format!("the first {len} of {} bytes", whole.len()),
        );
    }
    assert_still_answers(&server).await;
}

// ---------------------------------------------------------------------------
// Classes

#[tokio::test]
async fn rfc6895_section3_2_unusable_classes_get_formerr_and_chaos_is_refused() {
    let server = web_server().await;
    // Class 0 is reserved; 65280..=65534 are for private use: neither can
    // be a question disco understands.
    for class in [0u16, 65280, 65534] {
        let packet = query(0x1300 + (class & 0xff), WEB, TYPE_A, class);
        assert_reply(
            server.raw(&packet).await,
            &packet,
            FORMERR,
            &format!("QCLASS {class}"),
        );
    }
    // CHAOS (3) is a real class, just not one disco serves: REFUSED, with
    // the question echoed, as a server that is not authoritative for it.
    let chaos = query(0x1303, b"\x07version\x04bind\x00", 16, 3);
    let reply = assert_reply(server.raw(&chaos).await, &chaos, REFUSED, "QCLASS CH");
    assert_eq!(count_of(&reply, 0), 1, "the question is echoed");
    assert_eq!(&reply[12..], &chaos[12..]);
    assert_still_answers(&server).await;
}

// ---------------------------------------------------------------------------
// EDNS

#[tokio::test]
async fn rfc6891_section6_1_1_two_opt_records_get_formerr() {
    let server = web_server().await;
    let packet = with_additionals(
        query(0x1401, WEB, TYPE_A, CLASS_IN),
        &[&opt(1232, 0), &opt(4096, 0)],
    );
    assert_reply(
        server.raw(&packet).await,
        &packet,
        FORMERR,
        "two OPT records",
    );

    // RFC 6891 §6.1.2: the OPT's owner MUST be the root.
    let mut owned = b"\x03web".to_vec();
    owned.extend_from_slice(&opt(1232, 0));
    let packet = with_additionals(query(0x1402, WEB, TYPE_A, CLASS_IN), &[&owned]);
    assert_reply(
        server.raw(&packet).await,
        &packet,
        FORMERR,
        "an OPT not owned by the root",
    );
    assert_still_answers(&server).await;
}

#[tokio::test]
async fn rfc6891_section7_a_formerr_for_a_bad_opt_carries_an_opt() {
    // "If there is a problem with processing the OPT record itself [...] a
    // FORMERR MUST be returned. If this occurs, the response MUST include an
    // OPT record", so the client can tell EDNS errors from a server without
    // EDNS.
    let server = web_server().await;
    let packet = with_additionals(
        query(0x1403, WEB, TYPE_A, CLASS_IN),
        &[&opt(1232, 0), &opt(4096, 0)],
    );
    let reply = assert_reply(
        server.raw(&packet).await,
        &packet,
        FORMERR,
        "two OPT records",
    );
    let message = Message::from_vec(&reply).unwrap();
    assert!(message.edns.is_some(), "no OPT in {reply:02x?}");
}

#[tokio::test]
async fn rfc6891_section6_1_3_edns_version_1_gets_badvers() {
    let server = web_server().await;
    let packet = with_additionals(query(0x1501, WEB, TYPE_A, CLASS_IN), &[&opt(1232, 1)]);
    // BADVERS is extended rcode 16: 0 in the header, 1 in the OPT's upper bits.
    let reply = assert_reply(
        server.raw(&packet).await,
        &packet,
        NOERROR,
        "EDNS version 1",
    );
    assert_eq!(
        [
            count_of(&reply, 0),
            count_of(&reply, 1),
            count_of(&reply, 2),
            count_of(&reply, 3)
        ],
        [1, 0, 0, 1],
        "the question and an OPT, nothing else: {reply:02x?}"
    );
    let message = Message::from_vec(&reply).unwrap();
    let edns = message.edns.expect("an OPT in the reply");
    assert_eq!(edns.rcode_high(), 1, "extended rcode 16 = BADVERS");
    assert_eq!(edns.version(), 0, "disco's own EDNS version");
    assert!(message.answers.is_empty());

    // Version 0 from the same client is answered.
    let packet = with_additionals(query(0x1502, WEB, TYPE_A, CLASS_IN), &[&opt(1232, 0)]);
    let reply = assert_reply(
        server.raw(&packet).await,
        &packet,
        NOERROR,
        "EDNS version 0",
    );
    let message = Message::from_vec(&reply).unwrap();
    assert_eq!(answers(&message), ["10.0.0.5"]);
    assert_eq!(message.edns.map(|e| e.rcode_high()), Some(0));
    assert_still_answers(&server).await;
}
