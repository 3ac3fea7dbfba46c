//! How upstreams are used: TCP when a UDP answer comes back truncated, the
//! next upstream when one is silent or refuses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use crate::support::*;

/// A disco serving `big.test.` with `count` instances of service `web`.
async fn upstream_with(count: usize) -> TestServer {
    let instances = (0..count)
        .map(|i| {
            let json = format!(r#"{{"address":"10.9.{}.{}"}}"#, i / 250, i % 250 + 1);
            instance("web", &format!("web-{i}"), &json)
        })
        .collect();
    TestServer::start_with(instances, &[], |args| args.domain = Some("big.test".into())).await
}

/// What passed through a [`Relay`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A UDP query, and whether the upstream's answer had TC set.
    Udp { truncated: bool },
    /// A TCP connection.
    Tcp,
}

/// A relay in front of an upstream, on one loopback port for both UDP and
/// TCP as a resolver's address is: it passes everything on and notes which
/// transport each query took, so a test sees the forwarder's UDP attempt
/// as well as its TCP retry. Stops when dropped.
struct Relay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: [JoinHandle<()>; 2],
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let (udp, tcp) = one_port_for_both().await;
        let addr = udp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let udp = Arc::new(udp);
        let noted = seen.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((len, client)) = udp.recv_from(&mut buf).await {
                let query = buf[..len].to_vec();
                let (udp, noted) = (udp.clone(), noted.clone());
                tokio::spawn(async move {
                    let out = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    out.send_to(&query, upstream).await.unwrap();
                    let mut answer = vec![0u8; 65_535];
                    let wait = Duration::from_secs(2);
                    let Ok(Ok(len)) = tokio::time::timeout(wait, out.recv(&mut answer)).await
                    else {
                        return;
                    };
                    let truncated = len > 2 && answer[2] & 0x02 != 0;
                    noted.lock().unwrap().push(Seen::Udp { truncated });
                    let _ = udp.send_to(&answer[..len], client).await;
                });
            }
        });
        let noted = seen.clone();
        let tcp_task = tokio::spawn(async move {
            while let Ok((mut client, _)) = tcp.accept().await {
                noted.lock().unwrap().push(Seen::Tcp);
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut out).await;
                    }
                });
            }
        });
        Relay {
            addr,
            seen,
            tasks: [udp_task, tcp_task],
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
async fn one_port_for_both() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

#[tokio::test]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    // 300 A records: more than the 1232 bytes disco asks for over UDP.
    let upstream = upstream_with(300).await;
    let relay = Relay::start(upstream.dns).await;
    let server = TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![relay.addr.to_string()];
    })
    .await;
    let full = server.tcp("web.big.test.", RecordType::A).await;
    assert_eq!(rcode(&full), ResponseCode::NoError);
    assert_eq!(full.answers.len(), 300);
    assert!(!full.metadata.truncation);
    // Asked over UDP first, answered truncated, then again over TCP: a
    // forwarder that only spoke TCP would not pass.
    assert_eq!(
        relay.seen(),
        [Seen::Udp { truncated: true }, Seen::Tcp],
        "the upstream asked over UDP, then over TCP"
    );
    // Over UDP the client gets what fits, TC set, and retries over TCP.
    let cut = server
        .raw(&query_message("web.big.test.", RecordType::A, None))
        .await
        .expect("an answer over UDP");
    assert!(cut.len() <= 512);
    assert!(cut[2] & 0x02 != 0, "TC set");
}

#[tokio::test]
async fn a_silent_upstream_is_passed_over_for_one_that_answers() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let working = upstream_with(1).await;
    let server = TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![
            silent.local_addr().unwrap().to_string(),
            working.dns.to_string(),
        ];
    })
    .await;
    let started = Instant::now();
    for _ in 0..3 {
        let answer = server.tcp("web.big.test.", RecordType::A).await;
        assert_eq!(answers(&answer), ["10.9.0.1"]);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}
