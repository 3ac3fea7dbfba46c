//! Names outside disco's zones go upstream, for clients allowed to recurse.
//! The upstream is a second DNS server started by the test on loopback.

use disco::cli::ServeArgs;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;

const UPSTREAM_ZONE: &str =
    "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nwww IN A 192.0.2.1\n";

/// An upstream on loopback serving `example.test.`, and a disco with `web-1`
/// registered that forwards to it, its flags then adjusted by `adjust`.
/// Returns both: the upstream stops when dropped.
async fn upstream_and_disco(adjust: impl FnOnce(&mut ServeArgs)) -> (TestServer, TestServer) {
    let upstream =
        TestServer::start_with(vec![], &[("example.test.zone", UPSTREAM_ZONE)], |_| {}).await;
    let server = TestServer::start_with(
        vec![instance("web", "web-1", r#"{"address":"10.0.0.5"}"#)],
        &[],
        |args| {
            args.upstream = vec![upstream.dns.to_string()];
            adjust(args);
        },
    )
    .await;
    (upstream, server)
}

/// The upstream's query counters.
async fn queries_answered(server: &TestServer) -> Vec<String> {
    server
        .metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("disco_queries_total"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn other_names_are_forwarded_and_cached() {
    let (upstream, server) = upstream_and_disco(|_| {}).await;
    let forwarded = server.udp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&forwarded), ResponseCode::NoError);
    assert_eq!(answers(&forwarded), ["192.0.2.1"]);
    assert!(forwarded.metadata.recursion_available);
    assert!(
        !forwarded.metadata.authoritative,
        "disco is not the authority for a forwarded name"
    );
    let missing = server.tcp("nope.example.test.", RecordType::A).await;
    assert_eq!(rcode(&missing), ResponseCode::NXDomain);

    let served_upstream = queries_answered(&upstream).await;
    let again = server.udp("www.example.test.", RecordType::A).await;
    assert_eq!(answers(&again), ["192.0.2.1"]);
    assert!(again.answers[0].ttl <= 60);
    assert_eq!(
        queries_answered(&upstream).await,
        served_upstream,
        "the second answer came from the cache"
    );
    assert!(
        server
            .metrics_text()
            .await
            .contains("disco_forward_cache_hits_total 1")
    );
    // disco's own names are still answered by disco.
    assert_eq!(
        answers(&server.udp("web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
}

#[tokio::test]
async fn clients_outside_allow_recursion_are_refused() {
    let (_upstream, server) = upstream_and_disco(|args| {
        args.allow_recursion = vec!["10.0.0.0/8".into()];
    })
    .await;
    let refused = server.udp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&refused), ResponseCode::Refused);
    assert!(refused.answers.is_empty());
    assert!(!refused.metadata.recursion_available);
    // Authoritative data is for everyone.
    assert_eq!(
        answers(&server.udp("web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
}

#[tokio::test]
async fn an_unreachable_upstream_gives_servfail() {
    // A bound socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![silent.local_addr().unwrap().to_string()];
    })
    .await;
    let started = std::time::Instant::now();
    let failed = server.tcp("www.example.test.", RecordType::A).await;
    assert_eq!(rcode(&failed), ResponseCode::ServFail);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
