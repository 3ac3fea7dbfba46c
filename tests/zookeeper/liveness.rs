//! Watch liveness: a connection that stays up, answers reads and pings,
//! but no longer delivers watch notifications (the proxy drops them: what
//! a server that lost disco's watch looks like, the Synapse bug) is found
//! behind by the proofs (sync, node count and stat of the root), resynced
//! in a new session, and counted. Without the proofs it is never noticed.

use std::time::Instant;

use hickory_proto::rr::RecordType;

use crate::proxy::{Proxy, Swallow};
use crate::server::ZooKeeper;
use crate::support::{Disco, client, node, ok, register, registration, set_data};

#[tokio::test]
async fn a_watch_that_stops_delivering_is_resynced_within_the_bound() {
    let zk = ZooKeeper::start();
    let proxy = Proxy::start(zk.endpoint(0)).await;
    let owner = client(&zk).await;
    register(&owner, "web", "w1", "10.0.0.1", 80).await;
    let url = format!("zk://{}/disco", proxy.addr);
    let disco = Disco::start_proving(&url).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;
    disco.until_proved_current(&url).await;

    proxy.swallow(Swallow::ZkNotifications);
    let dead = Instant::now();
    register(&owner, "web", "w2", "10.0.0.2", 80).await;
    disco
        .until_silent_watch_found(
            "zookeeper created",
            &url,
            dead,
            "web.disco.internal.",
            &["10.0.0.1", "10.0.0.2"],
        )
        .await;
    register(&owner, "web", "w3", "10.0.0.3", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        )
        .await;
    disco.stop().await;
}

/// A data-only change (`setData` on a node that stays) moves neither the
/// node count nor the root's stat: the proof's slice of nodes, compared
/// with the `mzxid` disco last read, finds it when the watch drops it.
#[tokio::test]
async fn a_dropped_data_change_is_found_and_answered_within_the_bound() {
    let zk = ZooKeeper::start();
    let proxy = Proxy::start(zk.endpoint(0)).await;
    let owner = client(&zk).await;
    register(&owner, "web", "w1", "10.0.0.1", 80).await;
    register(&owner, "web", "w2", "10.0.0.2", 80).await;
    let url = format!("zk://{}/disco", proxy.addr);
    let disco = Disco::start_proving(&url).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;
    // A delivered data change is no alarm.
    set_data(&owner, &node("web", "w2"), &registration("10.0.0.3", 80)).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.3"]),
        )
        .await;
    // Three proofs, each reading every node, find nothing amiss.
    tokio::time::sleep(Disco::test_proof_interval() * 3).await;
    disco.until_proved_current(&url).await;

    proxy.swallow(Swallow::ZkNotifications);
    let dead = Instant::now();
    set_data(&owner, &node("web", "w1"), &registration("10.0.0.9", 80)).await;
    disco
        .until_silent_watch_found(
            "zookeeper data-only",
            &url,
            dead,
            "web.disco.internal.",
            &["10.0.0.3", "10.0.0.9"],
        )
        .await;
    let (_, changes) = crate::api::get_json(disco.http, "/v1/changes").await;
    let resynced = (changes["changes"].as_array().unwrap().iter())
        .find(|c| c["kind"] == "resynced")
        .unwrap_or_else(|| panic!("no resync in {changes}"));
    let detail = resynced["detail"].as_str().unwrap();
    assert!(
        detail.contains("/disco/services/web/w1 changed at zxid"),
        "{detail}"
    );
    disco.stop().await;
}
