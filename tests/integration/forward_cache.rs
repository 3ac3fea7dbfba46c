//! The forwarder's cache and its behaviour when upstreams fail: coalesced
//! misses, negative caching (RFC 2308), serve-stale (RFC 8767), garbage
//! from an upstream.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fake_upstream::{ANSWER, FakeUpstream, Script};
use crate::support::*;

/// A disco forwarding to `upstream`.
async fn forwarding_to(upstream: &str) -> TestServer {
    TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![upstream.to_owned()];
    })
    .await
}

/// An upstream disco serving `example.test.` from `zone`.
async fn upstream_serving(zone: &str) -> TestServer {
    TestServer::start_with(vec![], &[("example.test.zone", zone)], |_| {}).await
}

/// Queries the upstream disco answered, all types and rcodes together.
async fn answered(upstream: &TestServer) -> u64 {
    upstream
        .metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("disco_queries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A metric's value, as text.
async fn metric(server: &TestServer, name: &str) -> String {
    server
        .metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

#[tokio::test]
async fn a_hundred_identical_concurrent_misses_ask_the_upstream_once() {
    // Far slower than the burst takes to arrive, so the misses are in
    // flight together (any arriving after the answer are cache hits). The
    // upstream's slowness makes disco ask again: the direct UDP attempt
    // gives up after at most 500 ms and the pool asks with an ID of its
    // own, which hickory retransmits unchanged (every 333 ms or so). So
    // distinct IDs count attempts, two for the one question; a hundred
    // misses not coalesced would be a hundred.
    let upstream = FakeUpstream::start(Script::AnswerAfter(Duration::from_secs(1))).await;
    let server = forwarding_to(&upstream.addr.to_string()).await;
    let queries = (0..100).map(|_| server.udp("burst.example.test.", RecordType::A));
    let answers_seen = futures_util::future::join_all(queries).await;
    for message in &answers_seen {
        assert_eq!(answers(message), [ANSWER]);
    }
    let received = upstream.received();
    let mut ids: Vec<u16> = received.iter().map(|m| m.metadata.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(
        ids.len() <= 2,
        "100 misses in flight went upstream as one question: {} datagrams, IDs {ids:?}",
        received.len()
    );
}

#[tokio::test]
async fn negative_answers_are_cached_for_the_soa_minimum() {
    let upstream = upstream_serving(
        "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 1\nwww IN A 192.0.2.1\n",
    )
    .await;
    let server = forwarding_to(&upstream.dns.to_string()).await;
    let first = server.udp("nope.example.test.", RecordType::A).await;
    assert_eq!(rcode(&first), ResponseCode::NXDomain);
    assert!(authority_soa(&first).is_some_and(|(ttl, _)| ttl <= 1));
    let asked = answered(&upstream).await;

    let again = server.udp("nope.example.test.", RecordType::A).await;
    assert_eq!(rcode(&again), ResponseCode::NXDomain);
    assert_eq!(
        answered(&upstream).await,
        asked,
        "the NXDOMAIN came from the cache"
    );
    // NODATA is cached the same way.
    let nodata = server.udp("www.example.test.", RecordType::AAAA).await;
    assert_eq!(rcode(&nodata), ResponseCode::NoError);
    assert!(nodata.answers.is_empty() && authority_soa(&nodata).is_some());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = server.udp("nope.example.test.", RecordType::A).await;
    assert_eq!(rcode(&expired), ResponseCode::NXDomain);
    assert!(
        answered(&upstream).await > asked + 1,
        "after the SOA minimum (1 s) the upstream is asked again"
    );
}

#[tokio::test]
async fn expired_answers_are_served_stale_when_the_upstream_is_gone() {
    let upstream =
        upstream_serving("$TTL 1\n@ IN SOA ns hostmaster 1 3600 600 86400 1\nwww IN A 192.0.2.1\n")
            .await;
    let server = forwarding_to(&upstream.dns.to_string()).await;
    let live = server.udp("www.example.test.", RecordType::A).await;
    assert_eq!(answers(&live), ["192.0.2.1"]);
    assert!(upstream.stop().await);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let stale = server.tcp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&stale), ResponseCode::NoError);
    assert_eq!(answers(&stale), ["192.0.2.1"]);
    assert_eq!(
        stale.answers[0].ttl, 30,
        "RFC 8767 §4: stale answers carry TTL 30"
    );
    assert_eq!(metric(&server, "disco_forward_stale_total").await, "1");

    let never_cached = server.tcp("other.example.test.", RecordType::A).await;
    assert_eq!(rcode(&never_cached), ResponseCode::ServFail);
}

#[tokio::test]
async fn stale_answers_can_be_turned_off() {
    let upstream =
        upstream_serving("$TTL 1\n@ IN SOA ns hostmaster 1 3600 600 86400 1\nwww IN A 192.0.2.1\n")
            .await;
    let server = TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![upstream.dns.to_string()];
        args.serve_stale = Some("0".into());
    })
    .await;
    assert_eq!(
        answers(&server.udp("www.example.test.", RecordType::A).await),
        ["192.0.2.1"]
    );
    assert!(upstream.stop().await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let failed = server.tcp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&failed), ResponseCode::ServFail);
}

#[tokio::test]
async fn an_upstream_answering_garbage_gives_servfail_and_disco_carries_on() {
    let upstream = FakeUpstream::start(Script::Garbage).await;
    let server = forwarding_to(&upstream.addr.to_string()).await;
    let started = Instant::now();
    let failed = server.tcp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&failed), ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(upstream.queries() >= 1);
    // Still serving.
    assert_eq!(
        rcode(&server.udp("disco.internal.", RecordType::SOA).await),
        ResponseCode::NoError
    );
}
