//! Response rate limiting and DNS cookies over real sockets: a burst of
//! one question from one client network is cut to the rate, every second
//! answer over it slipped as TC=1, while TCP and other questions are
//! answered; loopback (allowed recursion) is exempt by default; a client
//! cookie gets a server cookie (RFC 7873), which exempts the client that
//! sends it back, and a client with a cookie is slipped BADCOOKIE.

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

/// What a burst got back.
#[derive(Debug, Default, PartialEq, Eq)]
struct Got {
    full: usize,
    truncated: usize,
    bad_cookie: usize,
}

/// `query` (an EDNS one) with a COOKIE option holding `data`.
fn with_cookie(mut query: Vec<u8>, data: &[u8]) -> Vec<u8> {
    let len = query.len();
    query[len - 2..].copy_from_slice(&(4 + data.len() as u16).to_be_bytes());
    query.extend_from_slice(&[0, 10]);
    query.extend_from_slice(&(data.len() as u16).to_be_bytes());
    query.extend_from_slice(data);
    query
}

/// The COOKIE option's data a response ends with, and its full rcode.
fn cookie_of(response: &[u8]) -> Option<(Vec<u8>, u16)> {
    let len = response.len();
    let option = response.get(len.checked_sub(28)?..len - 24)?;
    if option != [0, 10, 0, 24] {
        return None;
    }
    let extended = response[len - 28 - 11 + 5];
    let rcode = u16::from(extended) << 4 | u16::from(response[3] & 0x0f);
    Some((response[len - 24..].to_vec(), rcode))
}

/// Sends `BURST` copies of a query for `name` from one socket at once,
/// and reads what comes back until every query is accounted for (an
/// answer, or a drop `/metrics` counted): (full answers, TC answers).
async fn burst(server: &TestServer, name: &str) -> (usize, usize) {
    let got = burst_of(server, &query_message(name, RecordType::A, Some(1232))).await;
    assert_eq!(got.bad_cookie, 0);
    (got.full, got.truncated)
}

/// Sends `BURST` copies of `query` from one socket at once, and reads what
/// comes back until every query is accounted for (an answer, or a drop
/// `/metrics` counted).
async fn burst_of(server: &TestServer, query: &[u8]) -> Got {
    let dropped_before = metric(&server.metrics_text().await, "disco_rrl_dropped_total");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..BURST {
        socket.send_to(query, server.dns).await.unwrap();
    }
    let mut got = Got::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0; 2048];
    loop {
        match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await {
            Ok(Ok(len)) => {
                if cookie_of(&buf[..len]).is_some_and(|(_, rcode)| rcode == 23) {
                    got.bad_cookie += 1;
                    continue;
                }
                let message = Message::from_vec(&buf[..len]).unwrap();
                match message.metadata.truncation {
                    true => {
                        assert!(message.answers.is_empty(), "a slip carries no records");
                        got.truncated += 1;
                    }
                    false => {
                        assert_eq!(answers(&message), ["10.0.0.5"]);
                        got.full += 1;
                    }
                }
            }
            _ => {
                let text = server.metrics_text().await;
                let dropped = metric(&text, "disco_rrl_dropped_total") - dropped_before;
                if got.full + got.truncated + got.bad_cookie + dropped as usize >= BURST {
                    return got;
                }
                assert!(
                    Instant::now() < deadline,
                    "{got:?} and {dropped} dropped of {BURST}"
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

#[tokio::test]
async fn rfc7873_a_server_cookie_sent_back_exempts_its_client_and_a_cookie_client_is_slipped_badcookie()
 {
    let server = TestServer::start_with(web(), &[], |args| {
        args.rrl_responses = Some(20);
        args.rrl_exempt = vec!["none".into()];
    })
    .await;
    let plain = query_message("web.disco.internal.", RecordType::A, Some(1232));
    let client_cookie = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    // §5.2.3: a client cookie alone is answered, with a server cookie.
    let first = server
        .raw(&with_cookie(plain.clone(), &client_cookie))
        .await
        .unwrap();
    assert_eq!(answers(&Message::from_vec(&first).unwrap()), ["10.0.0.5"]);
    let (cookie, rcode) = cookie_of(&first).expect("a COOKIE option in the answer");
    assert_eq!((&cookie[..8], cookie[8], rcode), (&client_cookie[..], 1, 0));

    // §5.2.5: sent back, it is valid and exempts the client.
    let got = burst_of(&server, &with_cookie(plain.clone(), &cookie)).await;
    assert_eq!(
        got,
        Got {
            full: BURST,
            ..Got::default()
        }
    );
    // Without it, the same client is limited; with a client cookie alone,
    // its slips are BADCOOKIE carrying a server cookie to send back.
    let got = burst_of(&server, &with_cookie(plain.clone(), &client_cookie)).await;
    assert!(got.full <= 25 && got.truncated == 0, "{got:?}");
    assert!(
        got.bad_cookie.abs_diff((BURST - got.full) / 2) <= 1,
        "{got:?}"
    );

    // §5.2.2: a COOKIE option of a bad length is FORMERR.
    let malformed = server
        .raw(&with_cookie(plain.clone(), &[1; 12]))
        .await
        .unwrap();
    assert_eq!(malformed[3] & 0x0f, 1, "FORMERR");
    // §5.4: a question-less query asks for a server cookie: NOERROR with
    // one, or BADCOOKIE for a server cookie not disco's.
    let mut no_question = vec![0x12, 0x34, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
    no_question.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    let asked = server
        .raw(&with_cookie(no_question.clone(), &client_cookie))
        .await
        .unwrap();
    let (fresh, rcode) = cookie_of(&asked).unwrap();
    assert_eq!((rcode, &fresh[..8]), (0, &client_cookie[..]));
    let mut forged = fresh.clone();
    forged[23] ^= 1;
    let refused = server
        .raw(&with_cookie(no_question, &forged))
        .await
        .unwrap();
    assert_eq!(cookie_of(&refused).unwrap().1, 23, "BADCOOKIE");
    let text = server.metrics_text().await;
    assert!(
        metric(&text, "disco_cookies_total{cookie=\"valid\"}") >= BURST as u64,
        "{text}"
    );
    assert!(
        metric(&text, "disco_cookies_total{cookie=\"invalid\"}") >= 1,
        "{text}"
    );
}
