//! A three-member cluster losing a member: no query fails, and the watch
//! carries on through the survivors.

use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, ok, register};

#[tokio::test]
async fn one_member_down_fails_no_answer_and_the_watch_continues() {
    let mut etcd = Etcd::start_with(3, &[]);
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    register(&mut client, "web", "web-2", "10.0.0.6", 8080).await;
    let expected = ok(&["10.0.0.5", "10.0.0.6"]);
    disco
        .until_answers("web.disco.internal.", RecordType::A, expected.clone())
        .await;

    // Query without pause while a member dies: every answer must be whole.
    let querying = disco.answers_steadily("web.disco.internal.", RecordType::A, &expected);
    // Kill the member that serves disco's watch, so the watch must move.
    let watching = (0..3)
        .find(|&i| etcd.watchers(i) > 0)
        .expect("one member serves disco's watch");
    let survivor = (watching + 1) % 3;
    let killing = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        etcd.kill(watching);
    };
    let (count, ()) = tokio::join!(querying, killing);
    assert!(count > 10, "only {count} queries in 3 s");

    let mut survivor = etcd_client::Client::connect([etcd.endpoint(survivor)], None)
        .await
        .unwrap();
    register(&mut survivor, "web", "web-3", "10.0.0.7", 8080).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.5", "10.0.0.6", "10.0.0.7"]),
        )
        .await;
    drop(client);
    disco.stop().await;
}
