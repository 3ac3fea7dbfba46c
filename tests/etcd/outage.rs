//! Staying up: etcd stops while disco serves, or is not there when disco
//! starts.

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, assert_watches, ok, register};

#[tokio::test]
async fn answers_continue_while_etcd_is_down_and_resync_when_it_returns() {
    let mut etcd = Etcd::start();
    let url = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.5"]))
        .await;

    etcd.kill(0);
    disco.until_ready_says("\"stale\":true").await;
    disco
        .until_metric(&format!("disco_registry_up{{registry=\"{url}\"}} 0"))
        .await;
    // Stale beats down: the snapshot still answers, and disco stays ready.
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5"])
    );
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("stale_reason"), "{body}");

    etcd.restart(0);
    assert_watches(&disco, &mut etcd.client().await).await;
    disco.until_ready_says("\"stale\":false").await;
    disco
        .until_metric(&format!("disco_registry_up{{registry=\"{url}\"}} 1"))
        .await;
    disco.stop().await;
}

#[tokio::test]
async fn an_unreachable_etcd_at_startup_is_not_fatal() {
    let mut etcd = Etcd::start();
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    etcd.kill(0);

    let zone = "$ORIGIN static.internal.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nhost IN A 192.0.2.7\n";
    let disco = Disco::start_with(
        &[etcd.url("etcd", "/disco")],
        &[("static.internal.zone", zone)],
        |_| {},
    )
    .await;
    // Zones are served; the registry is not ready, and says why.
    assert_eq!(
        disco.answers("host.static.internal.", RecordType::A).await,
        ok(&["192.0.2.7"])
    );
    disco.until_ready_says("\"stale\":true").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"synced\":false"), "{body}");

    etcd.restart(0);
    disco.wait_ready().await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5"])
    );
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"stale\":false"), "{body}");
    disco.stop().await;
}
