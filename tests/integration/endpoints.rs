//! `/health`, `/ready` and `/metrics`.

use hickory_proto::rr::RecordType;

use crate::support::*;

#[tokio::test]
async fn health_ready_and_metrics_report_on_the_server() {
    let server =
        TestServer::start(vec![instance("web", "web-1", r#"{"address":"10.0.0.5"}"#)]).await;
    let (status, body) = server.http_get("/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = server.http_get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""ready":true"#), "{body}");

    server.udp("web.disco.internal.", RecordType::A).await;
    server.udp("nope.disco.internal.", RecordType::A).await;
    let metrics = server.metrics_text().await;
    for line in [
        "disco_queries_total{qtype=\"A\",rcode=\"NOERROR\"} 1",
        "disco_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\"} 1",
        "disco_query_duration_seconds_count 2",
        "disco_instances 1",
        "disco_registry_up{registry=\"memory\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert!(metrics.contains("disco_snapshot_age_seconds "), "{metrics}");
    assert_eq!(server.http_get("/nope").await.0, 404);
}

#[tokio::test]
async fn a_stale_registry_keeps_answering_and_says_so() {
    let server =
        TestServer::start(vec![instance("web", "web-1", r#"{"address":"10.0.0.5"}"#)]).await;
    server.registry.go_stale("connection refused");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let body = loop {
        let (status, body) = server.http_get("/ready").await;
        if body.contains(r#""stale":true"#) || std::time::Instant::now() > deadline {
            assert_eq!(status, 200, "stale beats down: still ready");
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(body.contains("connection refused"), "{body}");
    assert!(
        server
            .metrics_text()
            .await
            .contains("disco_registry_up{registry=\"memory\"} 0")
    );
    assert_eq!(
        answers(&server.udp("web.disco.internal.", RecordType::A).await),
        ["10.0.0.5"]
    );
    // A resync clears it and applies the fresh listing.
    server
        .registry
        .reset(vec![instance("web", "web-2", r#"{"address":"10.0.0.6"}"#)]);
    let fresh = server
        .eventually("web.disco.internal.", RecordType::A, |m| {
            answers(m) == ["10.0.0.6"]
        })
        .await;
    assert_eq!(answers(&fresh), ["10.0.0.6"]);
    assert!(
        server
            .http_get("/ready")
            .await
            .1
            .contains(r#""stale":false"#)
    );
}

#[tokio::test]
async fn shutdown_finishes_and_stops_answering() {
    let server =
        TestServer::start(vec![instance("web", "web-1", r#"{"address":"10.0.0.5"}"#)]).await;
    let dns = server.dns;
    assert!(
        server.stop().await,
        "every task finished within the grace period"
    );
    let packet = query_message("web.disco.internal.", RecordType::A, None);
    assert!(
        raw_udp(dns, &packet).await.is_none(),
        "no answer after shutdown"
    );
}
