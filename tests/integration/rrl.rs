//! Response rate limiting over real sockets: a burst of one question from
//! one client network is cut to the rate, every second answer over it
//! slipped as TC=1, while TCP and other questions are answered; loopback
//! (allowed recursion) is exempt by default.

use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::*;

const BURST: usize = 200;

fn web() -> Vec<disco::model::Instance> {
    vec![instance(
        "web",
        "web-1",
        r#"{"address":"10.0.0.5","port":8080}"#,
    )]
}

/// A number from the `/metrics` text: the sum of the lines starting with
/// `prefix`.
fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Sends `BURST` copies of a query for `name` from one socket at once,
/// and reads what comes back until every query is accounted for (an
/// answer, or a drop `/metrics` counted): (full answers, TC answers).
async fn burst(server: &TestServer, name: &str) -> (usize, usize) {
    let dropped_before = metric(&server.metrics_text().await, "disco_rrl_dropped_total");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let query = query_message(name, RecordType::A, Some(1232));
    for _ in 0..BURST {
        socket.send_to(&query, server.dns).await.unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0; 2048];
    loop {
        match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await {
            Ok(Ok(len)) => {
                let message = Message::from_vec(&buf[..len]).unwrap();
                match message.metadata.truncation {
                    true => {
                        assert!(message.answers.is_empty(), "a slip carries no records");
                        truncated += 1;
                    }
                    false => {
                        assert_eq!(answers(&message), ["10.0.0.5"]);
                        full += 1;
                    }
                }
            }
            _ => {
                let text = server.metrics_text().await;
                let dropped = metric(&text, "disco_rrl_dropped_total") - dropped_before;
                if full + truncated + dropped as usize >= BURST {
                    return (full, truncated);
                }
                assert!(
                    Instant::now() < deadline,
                    "{full} answers, {truncated} slipped, {dropped} dropped of {BURST}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_burst_from_one_network_is_cut_to_the_rate_and_every_second_answer_over_it_slipped() {
    let server = TestServer::start_with(web(), &[], |args| {
        args.rrl_responses = Some(20);
        args.rrl_exempt = vec!["none".into()];
    })
    .await;
    let (full, truncated) = burst(&server, "web.disco.internal.").await;
    // One second's worth, and what the rate refilled while the burst ran.
    assert!((20..=30).contains(&full), "{full} full answers");
    let limited = BURST - full;
    assert!(
        truncated.abs_diff(limited / 2) <= 1,
        "{truncated} slipped of {limited} limited"
    );
    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, "disco_rrl_slipped_total{class=\"response\"}"),
        truncated as u64,
        "{text}"
    );
    // Over TCP, and for another name, the client is answered.
    let tcp = server.tcp("web.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&tcp), ["10.0.0.5"]);
    let other = server.udp("web-1.web.disco.internal.", RecordType::A).await;
    assert_eq!(answers(&other), ["10.0.0.5"]);
}

#[tokio::test]
async fn loopback_is_exempt_by_default_and_a_rate_of_zero_limits_nothing() {
    let exempt = TestServer::start_with(web(), &[], |args| {
        args.rrl_responses = Some(20);
    })
    .await;
    assert_eq!(burst(&exempt, "web.disco.internal.").await, (BURST, 0));
    let off = TestServer::start_with(web(), &[], |args| {
        args.rrl_responses = Some(0);
        args.rrl_exempt = vec!["none".into()];
    })
    .await;
    assert_eq!(burst(&off, "web.disco.internal.").await, (BURST, 0));
}
