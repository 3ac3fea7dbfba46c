//! Connections lost and sessions expired: a TCP proxy between disco and
//! ZooKeeper cuts or holds disco's connection while registrations change.

use hickory_proto::rr::RecordType;

use crate::proxy::Proxy;
use crate::server::{SHORT_SESSION, ZooKeeper};
use crate::support::{Disco, client, delete, node, ok, register};

/// A cut connection is reconnected within the same session; the snapshot
/// after it is exact, and registrations after it are answered: the
/// persistent watch was added again (zookeeper-client 0.11 does not
/// restore it), or the watch would stay silent for good.
#[tokio::test]
async fn after_a_cut_connection_the_watch_is_armed_again() {
    let zk = ZooKeeper::start();
    let proxy = Proxy::start(zk.endpoint(0)).await;
    let owner = client(&zk).await;
    register(&owner, "web", "w1", "10.0.0.1", 80).await;
    register(&owner, "web", "w2", "10.0.0.2", 80).await;
    let disco = Disco::start(&[format!("zk://{}/disco", proxy.addr)]).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;

    for round in 0..2 {
        // Cut while registrations change: disco reconnects at once (the
        // proxy takes new connections), within its session.
        proxy.cut();
        delete(&owner, &node("web", &format!("w{}", round + 1))).await;
        register(
            &owner,
            "web",
            &format!("n{round}"),
            &format!("10.0.1.{round}"),
            80,
        )
        .await;
        let mut expected: Vec<String> = (round + 2..=2).map(|i| format!("10.0.0.{i}")).collect();
        expected.extend((0..=round).map(|r| format!("10.0.1.{r}")));
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        disco
            .until_answers("web.disco.internal.", RecordType::A, ok(&expected))
            .await;
        // Made after disco has listed again: only a watch delivers it.
        register(&owner, "later", &format!("l{round}"), "10.0.2.1", 80).await;
        disco
            .until_answers(
                &format!("l{round}.later.disco.internal."),
                RecordType::A,
                ok(&["10.0.2.1"]),
            )
            .await;
    }
    disco.until_ready_says("\"stale\":false").await;
    disco.stop().await;
}

/// disco's connection held past the session timeout: the session expires,
/// disco opens a new one and lists the exact state, then watches on.
#[tokio::test]
async fn after_the_session_expired_a_new_session_lists_the_exact_state() {
    let zk = ZooKeeper::start_short_sessions();
    let proxy = Proxy::start(zk.endpoint(0)).await;
    let owner = client(&zk).await;
    register(&owner, "web", "w1", "10.0.0.1", 80).await;
    register(&owner, "web", "w2", "10.0.0.2", 80).await;
    let leaving = client(&zk).await;
    register(&leaving, "web", "leaves", "10.0.0.9", 80).await;
    let disco = Disco::start(&[format!("zk://{}/disco", proxy.addr)]).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2", "10.0.0.9"]),
        )
        .await;

    proxy.freeze();
    delete(&owner, &node("web", "w1")).await;
    register(&owner, "web", "w3", "10.0.0.3", 80).await;
    drop(leaving);
    disco.until_ready_says("\"stale\":true").await;
    // Past the session timeout (and the client's own 7/5 of it).
    tokio::time::sleep(SHORT_SESSION * 2).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1", "10.0.0.2", "10.0.0.9"]),
        "stale beats down: the last snapshot answers"
    );
    proxy.thaw();

    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.2", "10.0.0.3"]),
        )
        .await;
    disco.until_ready_says("\"stale\":false").await;
    register(&owner, "web", "w4", "10.0.0.4", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.2", "10.0.0.3", "10.0.0.4"]),
        )
        .await;
    disco.stop().await;
}
