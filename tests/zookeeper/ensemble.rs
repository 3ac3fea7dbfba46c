//! A three-server ensemble losing the server disco is connected to: no
//! query fails, and new registrations arrive through the survivors.

use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::server::ZooKeeper;
use crate::support::{Disco, connect, eventually, ok, register};

#[tokio::test]
async fn losing_disco_s_server_fails_no_answer_and_registrations_still_arrive() {
    let mut zk = ZooKeeper::ensemble(3);
    let disco = Disco::start(&[zk.url("zk", "/disco")]).await;
    // Only disco holds a session yet: its server is the one with a client
    // connection besides the one asking (`mntr` counts itself).
    let disco_server = || (0..3).find(|&i| zk.connections(i) > 1);
    eventually("disco's server found", Duration::from_secs(10), || async {
        disco_server().is_some()
    })
    .await;
    let serving = disco_server().unwrap();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != serving).collect();
    let owner = connect(&zk.endpoint(survivors[0]).to_string()).await;
    register(&owner, "web", "web-1", "10.0.0.5", 8080).await;
    register(&owner, "web", "web-2", "10.0.0.6", 8080).await;
    let expected = ok(&["10.0.0.5", "10.0.0.6"]);
    disco
        .until_answers("web.disco.internal.", RecordType::A, expected.clone())
        .await;

    // Query without pause while disco's server dies: every answer whole.
    let querying = disco.answers_steadily("web.disco.internal.", RecordType::A, &expected);
    let killing = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        zk.kill(serving);
    };
    let (count, ()) = tokio::join!(querying, killing);
    assert!(count > 10, "only {count} queries in 3 s");

    register(&owner, "web", "web-3", "10.0.0.7", 8080).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.5", "10.0.0.6", "10.0.0.7"]),
        )
        .await;
    disco.until_ready_says("\"stale\":false").await;
    disco.stop().await;
}
