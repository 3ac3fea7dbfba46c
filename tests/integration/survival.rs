//! Nothing a client sends stops disco (issue 16): the packet that used to
//! end a UDP thread, a panic in the answer path caught per packet, a
//! listener that ends restarted and reported on `/ready`, and a storm of
//! random and mutated packets that a well-behaved client never notices.
//!
//! The fault points (`Faults`) exist in test builds only (the `failpoints`
//! feature).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use disco::dns::handler::Transport;
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
