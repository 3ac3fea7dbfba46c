//! How upstreams are used: TCP when a UDP answer comes back truncated, the
//! next upstream when one is silent or refuses.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

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

#[tokio::test]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    // 300 A records: more than the 1232 bytes disco asks for over UDP.
    let upstream = upstream_with(300).await;
    let server = TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![upstream.dns.to_string()];
    })
    .await;
    let full = server.tcp("web.big.test.", RecordType::A).await;
    assert_eq!(rcode(&full), ResponseCode::NoError);
    assert_eq!(full.answers.len(), 300);
    assert!(!full.metadata.truncation);
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
