//! Resyncs: a watch that falls behind a compaction is replaced by a fresh
//! listing, and nothing lost or stale survives it.

use std::time::Duration;

use etcd_client::{CompactionOptions, DeleteOptions};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::proxy::Proxy;
use crate::support::{Disco, key, ok, put, register, registration};

#[tokio::test]
async fn a_watch_behind_a_compaction_resyncs_to_the_exact_state() {
    let etcd = Etcd::start();
    let proxy = Proxy::start(etcd.endpoint(0).parse().unwrap()).await;
    let disco = Disco::start(&[format!("etcd://{}/disco", proxy.addr)]).await;
    let mut client = etcd.client().await;
    for (id, address) in [("w1", "10.0.0.1"), ("w2", "10.0.0.2"), ("w3", "10.0.0.3")] {
        put(&mut client, &key("web", id), &registration(address, 80)).await;
    }
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        )
        .await;

    // Stall disco's connection, then change more than etcd will buffer for
    // a stalled watcher, so that its watch falls behind ...
    proxy.freeze();
    client.delete(key("web", "w1"), None).await.unwrap();
    register(&mut client, "web", "w2", "10.0.0.22", 80).await;
    register(&mut client, "web", "w4", "10.0.0.4", 80).await;
    let filler = format!(
        r#"{{"address":"10.1.0.1","meta":{{"pad":"{}"}}}}"#,
        "x".repeat(30_000)
    );
    for i in 0..600 {
        put(&mut client, &key("filler", &format!("f{i}")), &filler).await;
    }
    client
        .delete(
            "/disco/services/filler/",
            Some(DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    // ... and compact away every revision it has not seen.
    let revision = client
        .get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client
        .compact(revision, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.thaw();

    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.22", "10.0.0.3", "10.0.0.4"]),
        )
        .await;
    disco
        .until_answers(
            "filler.disco.internal.",
            RecordType::A,
            Err(ResponseCode::NXDomain),
        )
        .await;
    assert_eq!(
        disco.answers("w1.web.disco.internal.", RecordType::A).await,
        Err(ResponseCode::NXDomain)
    );
    // And the watch after the resync carries on.
    register(&mut client, "web", "w5", "10.0.0.5", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.22", "10.0.0.3", "10.0.0.4", "10.0.0.5"]),
        )
        .await;
    disco.stop().await;
}
