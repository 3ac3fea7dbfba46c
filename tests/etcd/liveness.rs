//! Watch liveness: a watch whose connection stays open but stops
//! delivering (the proxy swallows everything etcd sends on it) is found
//! behind by the next unanswered progress request, resynced on a new
//! connection, and counted; without the proofs only the HTTP/2 keepalive
//! (10 s + 5 s) would notice.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::proxy::{Proxy, Swallow};
use crate::support::{Disco, ok, register};

/// Two proof intervals and a new connection's listing, with room; at the
/// tests' 1 s interval well under the keepalive's 15 s.
fn bound() -> Duration {
    Disco::test_proof_interval() * 2 + Duration::from_secs(6)
}

#[tokio::test]
async fn a_watch_that_stops_delivering_is_resynced_within_the_bound() {
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.endpoint(0).parse().unwrap()).await;
    let url = format!("etcd://{}/disco", proxy.addr);
    let disco = Disco::start_with(std::slice::from_ref(&url), &[], |args| {
        let interval = Disco::test_proof_interval();
        args.watch_proof_interval = Some(format!("{}ms", interval.as_millis()));
    })
    .await;
    disco.wait_ready().await;
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.1", 80).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;
    // Proved at least once while healthy.
    let label = format!("registry=\"{url}\"");
    disco
        .until_metric(&format!(
            "disco_registry_resyncs_total{{{label},cause=\"behind\"}} 0"
        ))
        .await;
    assert!(disco.metrics().await.contains("disco_registry_position{"));

    proxy.swallow(Swallow::Everything);
    let dead = Instant::now();
    register(&mut client, "web", "web-2", "10.0.0.2", 80).await;
    let (detected, cause, answered) = disco
        .detection_and_answer(
            dead,
            &label,
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
            bound(),
        )
        .await;
    eprintln!(
        "LIVENESS etcd created interval={:?} detected={detected:?} cause={cause} answered={answered:?}",
        Disco::test_proof_interval()
    );
    if Disco::test_proof_interval() < Duration::from_secs(5) {
        // Well before etcd's HTTP/2 keepalive (15 s) could notice.
        assert_eq!(cause, "behind", "the proof found it");
    }
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("\"{cause}\":1")), "{body}");
    // A watch on the new connection delivers again.
    register(&mut client, "web", "web-3", "10.0.0.3", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        )
        .await;
    disco.stop().await;
}
