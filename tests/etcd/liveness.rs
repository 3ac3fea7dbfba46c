//! Watch liveness: a watch whose connection stays open but stops
//! delivering (the proxy swallows everything etcd sends on it) is found
//! behind by the next unanswered progress request, resynced on a new
//! connection, and counted; without the proofs only the HTTP/2 keepalive
//! (10 s + 5 s) would notice.

use std::time::Instant;

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::proxy::{Proxy, Swallow};
use crate::support::{Disco, ok, register};

#[tokio::test]
async fn a_watch_that_stops_delivering_is_resynced_within_the_bound() {
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.endpoint(0).parse().unwrap()).await;
    let url = format!("etcd://{}/disco", proxy.addr);
    let disco = Disco::start_proving(&url).await;
    disco.wait_ready().await;
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.1", 80).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;
    // Proved at least once while healthy.
    disco.until_proved_current(&url).await;
    assert!(disco.metrics().await.contains("disco_registry_position{"));

    proxy.swallow(Swallow::Everything);
    let dead = Instant::now();
    register(&mut client, "web", "web-2", "10.0.0.2", 80).await;
    disco
        .until_silent_watch_found(
            "etcd created",
            &url,
            dead,
            "web.disco.internal.",
            &["10.0.0.1", "10.0.0.2"],
        )
        .await;
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
