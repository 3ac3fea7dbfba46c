//! DNS over TCP as RFC 7766 asks and as a hostile client tries it:
//! pipelined queries answered out of order past a slow forward, the caps on
//! connections (per client address, in total), and clients that trickle a
//! message or never read their answers closed within the bound, each
//! counted in /metrics, while a well-behaved client keeps being answered.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::fake_upstream::{ANSWER, FakeUpstream, Script};
use crate::support::*;

/// What the server allows a message or a write to take (`TCP_IO`).
const TCP_IO: Duration = Duration::from_secs(2);

fn framed_query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_str(name).unwrap(), rtype));
    let bytes = message.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend(bytes);
    framed
}

/// The next message on `stream`, within `wait`.
async fn read_message(stream: &mut TcpStream, wait: Duration) -> Message {
    tokio::time::timeout(wait, async {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await.unwrap();
        let mut bytes = vec![0u8; u16::from_be_bytes(prefix).into()];
        stream.read_exact(&mut bytes).await.unwrap();
        Message::from_vec(&bytes).unwrap()
    })
    .await
    .expect("an answer in time")
}

/// Whether the server closes `stream` (end of stream or reset) within
/// `wait`, without sending anything.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(wait, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the server sent bytes on a connection it should close"),
        Err(_) => false,
    }
}

/// A connection from `source` (any loopback address: all reach the server).
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// One query over a connection, answered with the service's address.
async fn assert_served(stream: &mut TcpStream, id: u16) {
    stream
        .write_all(&framed_query(id, "svc0.disco.internal.", RecordType::A))
        .await
        .unwrap();
    let answer = read_message(stream, Duration::from_secs(5)).await;
    assert_eq!(answer.metadata.id, id);
    assert_eq!(answers(&answer), ["10.0.0.10"]);
}

/// A metric's value from `/metrics` (0 when absent).
async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.metrics_text().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Polls `/metrics` until `name` reaches `want`, at most `wait`; how long
/// it took.
async fn metric_reaches(server: &TestServer, name: &str, want: u64, wait: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let value = metric(server, name).await;
        if value >= want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < wait,
            "{name} is {value} after {wait:?}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ten services svc0..svc9 at 10.0.0.10..19, forwarding other names to
/// `upstream`, with the flags adjusted by `adjust`.
async fn server_with(
    upstream: Option<&FakeUpstream>,
    adjust: impl FnOnce(&mut disco::cli::ServeArgs),
) -> TestServer {
    let instances = (0..10)
        .map(|n| {
            instance(
                &format!("svc{n}"),
                "i1",
                &format!(r#"{{"address":"10.0.0.{}"}}"#, 10 + n),
            )
        })
        .collect();
    TestServer::start_with(instances, &[], |args| {
        if let Some(upstream) = upstream {
            args.upstream = vec![upstream.addr.to_string()];
        }
        adjust(args);
    })
    .await
}

/// Checks that a client on its own connection, and one over UDP, are still
/// answered at once.
async fn assert_others_served(server: &TestServer) {
    let started = Instant::now();
    let tcp = server.tcp("svc1.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&tcp), ["10.0.0.11"]);
    let udp = server.udp("svc2.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&udp), ["10.0.0.12"]);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn rfc7766_section6_2_1_1_pipelined_queries_are_answered_out_of_order_past_a_slow_forward() {
    let delay = Duration::from_millis(1500);
    let upstream = FakeUpstream::start(Script::SlowFor("slow.example.", delay)).await;
    let server = server_with(Some(&upstream), |_| {}).await;

    // The slow name first, then ten zone names, all in one write.
    let mut wire = framed_query(100, "slow.example.", RecordType::A);
    for n in 0..10u16 {
        wire.extend(framed_query(
            n,
            &format!("svc{n}.disco.internal."),
            RecordType::A,
        ));
    }
    let mut stream = TcpStream::connect(server.dns).await.unwrap();
    let started = Instant::now();
    stream.write_all(&wire).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..11 {
        let answer = read_message(&mut stream, Duration::from_secs(5)).await;
        let id = answer.metadata.id;
        let want = match id {
            100 => ANSWER.to_owned(),
            n => format!("10.0.0.{}", 10 + n),
        };
        assert_eq!(answers(&answer), [want], "answer {id}");
        if id != 100 {
            assert!(
                started.elapsed() < delay,
                "zone answer {id} waited for the slow forward"
            );
        }
        order.push(id);
    }
    assert_eq!(order.last(), Some(&100), "the slow forward comes last");
    order.sort();
    assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
}

#[tokio::test]
async fn rfc7766_section6_2_2_one_client_address_is_refused_past_its_cap_and_others_served() {
    let server = server_with(None, |args| {
        args.tcp_connections_per_client = Some(4);
    })
    .await;
    let mut held = Vec::new();
    for id in 0..4 {
        let mut stream = connect_from("127.0.0.1", server.dns).await;
        assert_served(&mut stream, id).await;
        held.push(stream);
    }
    for _ in 0..3 {
        let mut refused = connect_from("127.0.0.1", server.dns).await;
        assert!(
            closed_within(&mut refused, Duration::from_secs(2)).await,
            "a fifth connection from one address is closed at once"
        );
    }
    let refused = "disco_tcp_connections_refused_total{reason=\"per_client\"}";
    assert_eq!(metric(&server, refused).await, 3);

    // Another address is served, and so are the four held.
    let mut other = connect_from("127.0.0.2", server.dns).await;
    assert_served(&mut other, 10).await;
    for (id, stream) in held.iter_mut().enumerate() {
        assert_served(stream, 20 + id as u16).await;
    }
    // One closed makes room for one more from that address.
    held.pop();
    let mut again = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while again.is_none() {
        assert!(Instant::now() < deadline, "no room after a close");
        let mut stream = connect_from("127.0.0.1", server.dns).await;
        if !closed_within(&mut stream, Duration::from_millis(100)).await {
            assert_served(&mut stream, 30).await;
            again = Some(stream);
        }
    }
    assert_eq!(
        metric(&server, "disco_tcp_connections_accepted_total").await,
        4 + 1 + 1
    );
}

#[tokio::test]
async fn at_the_total_cap_the_idlest_connection_makes_room_and_with_none_idle_new_ones_are_refused()
{
    let upstream = FakeUpstream::start(Script::SlowFor(
        "slow.example.",
        Duration::from_millis(1500),
    ))
    .await;
    let server = server_with(Some(&upstream), |args| {
        args.tcp_connections = Some(3);
    })
    .await;
    let mut oldest = TcpStream::connect(server.dns).await.unwrap();
    assert_served(&mut oldest, 1).await;
    let mut busy = Vec::new();
    for id in 2..4 {
        let mut stream = TcpStream::connect(server.dns).await.unwrap();
        assert_served(&mut stream, id).await;
        busy.push(stream);
    }
    // A fourth: the oldest idle one is closed for it.
    let mut fourth = TcpStream::connect(server.dns).await.unwrap();
    assert_served(&mut fourth, 4).await;
    assert!(
        closed_within(&mut oldest, Duration::from_secs(2)).await,
        "the idlest connection is closed"
    );
    let evicted = "disco_tcp_connections_closed_total{reason=\"evicted\"}";
    assert_eq!(metric(&server, evicted).await, 1);

    // All three busy with a slow forward: a fifth is refused.
    busy.push(fourth);
    for (id, stream) in busy.iter_mut().enumerate() {
        // Names of their own, so that no two are coalesced into one.
        let name = format!("q{id}.slow.example.");
        let query = framed_query(200 + id as u16, &name, RecordType::A);
        stream.write_all(&query).await.unwrap();
    }
    // Until the server has read them, the connections are idle: wait for
    // the upstream to have been asked all three.
    let deadline = Instant::now() + Duration::from_secs(1);
    while upstream.queries() < 3 {
        assert!(
            Instant::now() < deadline,
            "the slow name was never forwarded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut fifth = TcpStream::connect(server.dns).await.unwrap();
    assert!(
        closed_within(&mut fifth, Duration::from_secs(1)).await,
        "with every connection busy, a new one is refused"
    );
    let refused = "disco_tcp_connections_refused_total{reason=\"total\"}";
    assert_eq!(metric(&server, refused).await, 1);
    // The busy ones get their answers.
    for stream in &mut busy {
        let answer = read_message(stream, Duration::from_secs(5)).await;
        assert_eq!(answers(&answer), [ANSWER]);
    }
    assert_others_served(&server).await;
}

#[tokio::test]
async fn a_client_trickling_a_message_byte_by_byte_is_closed_within_the_bound() {
    let server = server_with(None, |_| {}).await;
    let query = framed_query(7, "svc0.disco.internal.", RecordType::A);
    let mut stream = TcpStream::connect(server.dns).await.unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    for byte in &query {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        if closed_within(&mut stream, Duration::from_millis(250)).await {
            closed_after = Some(started.elapsed());
            break;
        }
        assert_others_served(&server).await;
    }
    let closed_after = closed_after.expect("the trickling client was closed");
    assert!(
        closed_after >= TCP_IO && closed_after < TCP_IO + Duration::from_secs(2),
        "closed after {closed_after:?}"
    );
    let slow_read = "disco_tcp_connections_closed_total{reason=\"slow_read\"}";
    assert_eq!(metric(&server, slow_read).await, 1);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed_within_the_bound() {
    // Answers of some 35 KiB each (SRV with addresses), so that unread
    // ones fill the socket buffers quickly.
    let big: Vec<_> = (0..500)
        .map(|n| {
            instance(
                "big",
                &format!("instance-{n:04}"),
                &format!(
                    r#"{{"address":"10.1.{}.{}","port":8080}}"#,
                    n / 250,
                    n % 250
                ),
            )
        })
        .collect();
    let server = TestServer::start(big).await;
    let socket = TcpSocket::new_v4().unwrap();
    // A small window: the client's kernel takes little on its behalf.
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.dns).await.unwrap();
    let mut wire = Vec::new();
    for id in 0..200 {
        wire.extend(framed_query(id, "big.disco.internal.", RecordType::SRV));
    }
    stream.write_all(&wire).await.unwrap();
    let slow_write = "disco_tcp_connections_closed_total{reason=\"slow_write\"}";
    let waited = metric_reaches(&server, slow_write, 1, Duration::from_secs(10)).await;
    // The clock here starts when the client's write returns, a little
    // after the server's first write blocked.
    assert!(
        waited >= TCP_IO - Duration::from_millis(500),
        "closed after {waited:?}, before the bound"
    );
    assert!(
        waited < TCP_IO + Duration::from_secs(3),
        "closed after {waited:?}"
    );
    // Meanwhile, and after, others are answered.
    let srv = server.tcp("big.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv.answers.len(), 500);
}
