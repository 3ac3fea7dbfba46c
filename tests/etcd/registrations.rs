//! Registrations through etcd beyond the battery: lease expiry, several
//! registries at once.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, key, ok, put, put_leased, register, registration};

#[tokio::test]
async fn an_expired_lease_withdraws_the_instance() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let mut client = etcd.client().await;

    register(&mut client, "web", "stays", "10.0.0.1", 80).await;
    let granted = Instant::now();
    put_leased(
        &mut client,
        &key("web", "leased"),
        &registration("10.0.0.2", 80),
        2,
    )
    .await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;
    // Nothing keeps the lease alive: etcd expires it after 2 s and the key
    // goes with it, which disco sees as a delete.
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;
    assert!(
        granted.elapsed() >= Duration::from_secs(1),
        "the instance went before its lease could have expired"
    );
    disco.stop().await;
}

#[tokio::test]
async fn several_registries_combine_and_the_first_wins_a_tie() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    put(
        &mut client,
        "/a/services/web/w1",
        &registration("10.0.0.1", 80),
    )
    .await;
    put(
        &mut client,
        "/a/services/web/shared",
        &registration("10.0.0.2", 80),
    )
    .await;
    put(
        &mut client,
        "/b/services/web/w3",
        &registration("10.0.0.3", 80),
    )
    .await;
    put(
        &mut client,
        "/b/services/web/shared",
        &registration("10.0.0.4", 80),
    )
    .await;

    let disco = Disco::start(&[etcd.url("etcd", "/a"), etcd.url("etcd", "/b")]).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    );
    // Withdrawn from the first registry, the second one's shows through.
    client.delete("/a/services/web/shared", None).await.unwrap();
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.3", "10.0.0.4"]),
        )
        .await;
    disco.stop().await;
}
