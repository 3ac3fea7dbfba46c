//! Nothing a client sends stops disco (issue 16): the packet that used to
//! end a UDP thread, a panic in the answer path caught per packet, a
//! listener that ends restarted and reported on `/ready`, and a storm of
//! random and mutated packets that a well-behaved client never notices.
//!
//! The fault points (`Faults`) exist in test builds only (the `failpoints`
//! feature).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use disco::dns::responder::Transport;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::*;

/// How long a test waits for a state it expects.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server with one UDP socket, so that every packet of a client socket
/// reaches the same listener thread.
async fn one_socket_server() -> TestServer {
    TestServer::start_with(
        vec![instance(
            "web",
            "web-1",
            r#"{"address":"10.0.0.5","port":8080,"tags":["v2"]}"#,
        )],
        &[],
        |args| args.udp_sockets = Some(1),
    )
    .await
}

/// A client socket that sends and waits for the reply to what it sent.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Client {
    async fn new(server: SocketAddr) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Client { socket, server }
    }

    /// Sends `packet` and returns the reply with its ID, if one comes in 2 s.
    async fn ask(&self, packet: &[u8]) -> Option<Message> {
        self.socket.send_to(packet, self.server).await.unwrap();
        let id = &packet[..2];
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = vec![0; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let len = tokio::time::timeout(left, self.socket.recv(&mut buf))
                .await
                .ok()?
                .unwrap();
            if buf[..len.min(2)] == *id {
                return Some(Message::from_vec(&buf[..len]).expect("a reply that parses"));
            }
        }
    }
}

/// `name` `rtype` as a raw query with the given ID and RD set, the name's
/// labels written as given (hickory's `Name` would not take `+5`).
fn query_with_id(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&u16::from(rtype).to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet
}

async fn ready_status(server: &TestServer) -> (u16, serde_json::Value) {
    let (status, body) = server.http_get("/ready").await;
    (status, serde_json::from_str(&body).expect("/ready is JSON"))
}

/// Polls `/ready` until `check` holds for its status and body.
async fn ready_until(
    server: &TestServer,
    what: &str,
    check: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = ready_status(server).await;
        if check(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /ready stayed {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the metric line starting with `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// `dig -q +5.0.0.10.in-addr.arpa -t PTR` used to be looked up as
/// 5.0.0.10.in-addr.arpa, and the stored answer, its question one byte
/// shorter, was written over the asked one: the UDP thread panicked, and
/// two such packets stopped every UDP answer on a 2-core host.
#[tokio::test]
async fn a_reverse_label_with_a_sign_is_no_address_and_the_socket_serves_on() {
    let server = one_socket_server().await;
    let client = Client::new(server.dns).await;
    for id in 1..=3 {
        let signed = query_with_id(id, "+5.0.0.10.in-addr.arpa.", RecordType::PTR);
        let reply = client
            .ask(&signed)
            .await
            .expect("the signed name is answered");
        // Not an address name: not disco's to answer, and no upstream here.
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
        let first_label = reply.queries[0].name().iter().next().unwrap();
        assert_eq!(first_label, b"+5", "the question is echoed as asked");
    }
    let canonical = query_with_id(10, "5.0.0.10.in-addr.arpa.", RecordType::PTR);
    let reply = client
        .ask(&canonical)
        .await
        .expect("the same socket answers");
    assert_eq!(answers(&reply), ["web-1.web.disco.internal."]);
    let web = query_with_id(11, "web.disco.internal.", RecordType::A);
    assert_eq!(answers(&client.ask(&web).await.unwrap()), ["10.0.0.5"]);
    let (status, body) = ready_status(&server).await;
    assert_eq!(status, 200, "{body}");
    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, "disco_query_panics_total{transport=\"udp\"}"),
        Some(0.0)
    );
}

/// A reverse name in another spelling than the canonical one never gets the
/// address's answer, whatever the spelling (leading zero, sign, hex digit
/// pairs in ip6.arpa).
#[tokio::test]
async fn only_the_canonical_reverse_name_answers_ptr() {
    let server = TestServer::start(vec![instance(
        "web",
        "web-1",
        r#"{"address":"fd00::5","port":8080}"#,
    )])
    .await;
    let client = Client::new(server.dns).await;
    let v6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    let reply = client
        .ask(&query_with_id(1, v6, RecordType::PTR))
        .await
        .unwrap();
    assert_eq!(answers(&reply), ["web-1.web.disco.internal."]);
    for (id, name) in [
        (2, format!("05.{}", &v6[2..])),
        (3, format!("+5.{}", &v6[2..])),
        (
            4,
            format!("{}.{}", "0d", &v6[..v6.len() - "d.f.ip6.arpa.".len()]) + "f.ip6.arpa.",
        ),
    ] {
        let reply = client
            .ask(&query_with_id(id, &name, RecordType::PTR))
            .await
            .unwrap();
        assert!(reply.answers.is_empty(), "{name}: {reply:?}");
    }
}

/// A panic while answering one packet costs that answer (SERVFAIL), is
/// counted, and the same socket, or TCP connection, answers the next.
#[tokio::test]
async fn a_panic_answering_a_packet_is_caught_counted_and_the_listener_serves_on() {
    let server = one_socket_server().await;
    server
        .faults()
        .panic_answering(Some("boom.disco.internal."));
    let client = Client::new(server.dns).await;
    for id in 1..=3 {
        let boom = query_with_id(id, "BOOM.disco.internal.", RecordType::A);
        let reply = client
            .ask(&boom)
            .await
            .expect("a panic still gets an answer");
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    let web = query_with_id(9, "web.disco.internal.", RecordType::A);
    assert_eq!(answers(&client.ask(&web).await.unwrap()), ["10.0.0.5"]);

    let mut tcp = TcpStream::connect(server.dns).await.unwrap();
    let boom = tcp_ask(
        &mut tcp,
        &query_with_id(20, "boom.disco.internal.", RecordType::A),
    )
    .await;
    assert_eq!(boom.metadata.response_code, ResponseCode::ServFail);
    let web = tcp_ask(
        &mut tcp,
        &query_with_id(21, "web.disco.internal.", RecordType::A),
    )
    .await;
    assert_eq!(
        answers(&web),
        ["10.0.0.5"],
        "the same connection answers on"
    );

    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, "disco_query_panics_total{transport=\"udp\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, "disco_query_panics_total{transport=\"tcp\"}"),
        Some(1.0)
    );
    let (status, body) = ready_status(&server).await;
    assert_eq!(status, 200, "{body}");
}

/// Sends one framed query on `stream` and reads one framed reply.
async fn tcp_ask(stream: &mut TcpStream, packet: &[u8]) -> Message {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.unwrap();
    let read = async {
        let mut prefix = [0; 2];
        stream.read_exact(&mut prefix).await?;
        let mut reply = vec![0; u16::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut reply).await?;
        std::io::Result::Ok(reply)
    };
    let reply = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .expect("a TCP reply within 2 s")
        .expect("the connection stays open");
    Message::from_vec(&reply).expect("a reply that parses")
}

/// A UDP listener that ends is reported on `/ready` (503, naming it) and
/// `/metrics` until it is serving again, and it is started again by itself.
#[tokio::test]
async fn a_udp_listener_held_down_makes_ready_503_naming_it_until_it_is_back() {
    let server = one_socket_server().await;
    let name = format!("udp {} #0", server.dns);
    server.faults().hold_down(Transport::Udp, true);
    let body = ready_until(&server, "the UDP listener down", |status, _| status == 503).await;
    let listener = (body["listeners"].as_array().unwrap().iter())
        .find(|l| l["listener"] == name.as_str())
        .unwrap_or_else(|| panic!("/ready names {name}: {body}"))
        .clone();
    assert_eq!(listener["serving"], false, "{body}");
    assert!(
        listener["reason"].as_str().unwrap().contains("held down"),
        "{body}"
    );
    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, &format!("disco_listener_up{{listener=\"{name}\"}}")),
        Some(0.0)
    );

    server.faults().hold_down(Transport::Udp, false);
    ready_until(&server, "the UDP listener back", |status, _| status == 200).await;
    let client = Client::new(server.dns).await;
    let web = query_with_id(1, "web.disco.internal.", RecordType::A);
    assert_eq!(answers(&client.ask(&web).await.unwrap()), ["10.0.0.5"]);
    let text = server.metrics_text().await;
    let restarts = metric(
        &text,
        &format!("disco_listener_restarts_total{{listener=\"{name}\"}}"),
    );
    assert!(restarts.is_some_and(|n| n >= 1.0), "{text}");
}

/// The same for the TCP accept loop, which ends at its next connection.
#[tokio::test]
async fn a_tcp_listener_held_down_makes_ready_503_until_it_is_back() {
    let server = one_socket_server().await;
    let name = format!("tcp {}", server.dns);
    server.faults().hold_down(Transport::Tcp, true);
    // The accept loop notices at its next connection.
    let _knock = TcpStream::connect(server.dns).await.unwrap();
    let body = ready_until(&server, "the TCP listener down", |status, _| status == 503).await;
    assert!(body.to_string().contains(&name), "{body}");
    server.faults().hold_down(Transport::Tcp, false);
    ready_until(&server, "the TCP listener back", |status, _| status == 200).await;
    let mut tcp = TcpStream::connect(server.dns).await.unwrap();
    let web = tcp_ask(
        &mut tcp,
        &query_with_id(1, "web.disco.internal.", RecordType::A),
    )
    .await;
    assert_eq!(answers(&web), ["10.0.0.5"]);
}

/// The storm's seeds: the `query` fuzz target's checked-in corpus
/// (`fuzz/seeds/query/`, every crash found among them), and valid queries
/// of many shapes.
fn storm_seeds() -> Vec<Vec<u8>> {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/query");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|err| panic!("{}: {err}", corpus.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    // In a fixed order, so that the fixed random seed replays the storm.
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(
        seeds.len() > 10,
        "the query corpus has {} files",
        seeds.len()
    );
    let names = [
        "web.disco.internal.",
        "v2.web.disco.internal.",
        "v2.v2.v2.web.disco.internal.",
        "web-1.web.disco.internal.",
        "_web._tcp.disco.internal.",
        "5.0.0.10.in-addr.arpa.",
        "+5.0.0.10.in-addr.arpa.",
        "0.10.in-addr.arpa.",
        "nope.disco.internal.",
        "disco.internal.",
        "*.disco.internal.",
        "example.com.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::SRV,
        RecordType::TXT,
        RecordType::PTR,
        RecordType::ANY,
        RecordType::SOA,
        RecordType::NS,
    ];
    for (i, name) in names.iter().enumerate() {
        for (j, rtype) in types.iter().enumerate() {
            let mut packet = query_with_id((i * 16 + j) as u16, name, *rtype);
            if j % 2 == 0 {
                // An OPT record: payload 4096, DO set, a COOKIE option.
                packet[11] = 1;
                packet.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 12, 0, 10, 0, 8]);
                packet.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            }
            seeds.push(packet);
        }
    }
    seeds
}

/// A mutation of a random seed: bits flipped, bytes set, cut, stretched,
/// spliced with another, or plain random bytes.
fn mutant(rng: &mut impl rand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut packet = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..4) {
        let len = packet.len().max(1);
        match rng.random_range(0..7) {
            0 => {
                for _ in 0..rng.random_range(1..8) {
                    let at = rng.random_range(0..len);
                    if let Some(byte) = packet.get_mut(at) {
                        *byte ^= 1 << rng.random_range(0..8);
                    }
                }
            }
            1 => {
                let at = rng.random_range(0..len);
                if let Some(byte) = packet.get_mut(at) {
                    *byte = [0, 0xff, 0x3f, 0x40, 0xc0, 0x7f, 1][rng.random_range(0..7)];
                }
            }
            2 => packet.truncate(rng.random_range(0..len)),
            3 => {
                let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                let at = rng.random_range(0..=packet.len());
                packet.splice(at..at, extra);
            }
            4 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let at = rng.random_range(0..=packet.len().min(other.len()));
                packet.truncate(at);
                packet.extend_from_slice(&other[at..]);
            }
            5 => {
                // Counts: the header's four 16-bit counts set at random.
                if packet.len() >= 12 {
                    let at = 4 + 2 * rng.random_range(0..4);
                    packet[at..at + 2].copy_from_slice(&rng.random::<u16>().to_be_bytes());
                }
            }
            _ => {
                packet = (0..rng.random_range(0..600))
                    .map(|_| rng.random())
                    .collect()
            }
        }
    }
    packet
}

/// 20,000 random and mutated packets, 16,000 over UDP and 4,000 over TCP,
/// interleaved with a well-behaved client's 2,000 queries (over UDP, and
/// every fourth over TCP): every one of those is answered correctly, no
/// panic is caught (a caught panic is still a bug), and `/ready` stays 200.
#[tokio::test]
async fn a_storm_of_bad_packets_leaves_a_good_client_answered() {
    use rand::{Rng, SeedableRng};
    let server = one_socket_server().await;
    let seeds = storm_seeds();
    // Fixed seed: a failure is reproduced by running the test again.
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let hostile_udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let hostile_tcp = |server: SocketAddr| async move {
        let stream = TcpStream::connect(server).await.unwrap();
        let (mut read, write) = stream.into_split();
        // Replies are read and thrown away, as a client that reads them.
        tokio::spawn(async move {
            let mut sink = vec![0; 65536];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        write
    };
    let mut hostile_stream = hostile_tcp(server.dns).await;
    let good = Client::new(server.dns).await;
    let mut good_tcp = TcpStream::connect(server.dns).await.unwrap();
    let checks: [(&str, RecordType, &[&str], ResponseCode); 5] = [
        (
            "web.disco.internal.",
            RecordType::A,
            &["10.0.0.5"],
            ResponseCode::NoError,
        ),
        (
            "v2.web.disco.internal.",
            RecordType::A,
            &["10.0.0.5"],
            ResponseCode::NoError,
        ),
        (
            "5.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            &["web-1.web.disco.internal."],
            ResponseCode::NoError,
        ),
        (
            "web.disco.internal.",
            RecordType::SRV,
            &["0 100 8080 web-1.web.disco.internal."],
            ResponseCode::NoError,
        ),
        (
            "nope.disco.internal.",
            RecordType::A,
            &[],
            ResponseCode::NXDomain,
        ),
    ];
    let mut sent = (0, 0);
    for round in 0..2000u16 {
        for _ in 0..8 {
            let _ = hostile_udp
                .send_to(&mutant(&mut rng, &seeds), server.dns)
                .await;
            sent.0 += 1;
        }
        for _ in 0..2 {
            let packet = mutant(&mut rng, &seeds);
            let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
            if rng.random_ratio(1, 50) {
                // A length that lies.
                framed = rng.random::<[u8; 2]>().to_vec();
            }
            framed.extend_from_slice(&packet);
            if hostile_stream.write_all(&framed).await.is_err() {
                // Closed by the server (a lie, or an idle timeout): again.
                hostile_stream = hostile_tcp(server.dns).await;
            }
            sent.1 += 1;
        }
        let (name, rtype, expected, rcode) = checks[round as usize % checks.len()];
        let packet = query_with_id(round, name, rtype);
        let reply = match round % 4 {
            3 => tcp_ask(&mut good_tcp, &packet).await,
            _ => (good.ask(&packet).await)
                .unwrap_or_else(|| panic!("round {round}: {name} {rtype} not answered")),
        };
        assert_eq!(
            reply.metadata.response_code, rcode,
            "round {round}: {name} {rtype}"
        );
        assert_eq!(answers(&reply), expected, "round {round}: {name} {rtype}");
    }
    assert_eq!(sent, (16_000, 4_000));
    let text = server.metrics_text().await;
    for transport in ["udp", "tcp"] {
        let series = format!("disco_query_panics_total{{transport=\"{transport}\"}}");
        assert_eq!(metric(&text, &series), Some(0.0), "{series}");
    }
    let (status, body) = ready_status(&server).await;
    assert_eq!(status, 200, "{body}");
}
