//! Registrations through etcd: put, delete, lease expiry, the listing at
//! startup, several registries at once.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, key, ok, put, put_leased, register, registration, srv};

#[tokio::test]
async fn a_put_is_answered_and_a_delete_is_nxdomain() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let mut client = etcd.client().await;

    put_leased(
        &mut client,
        &key("web", "web-1"),
        &registration("10.0.0.5", 8080),
        60,
    )
    .await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.5"]))
        .await;
    let message = disco.query("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv(&message), ["0 100 8080 web-1.web.disco.internal."]);

    client.delete(key("web", "web-1"), None).await.unwrap();
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            Err(ResponseCode::NXDomain),
        )
        .await;
    disco.stop().await;
}

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
async fn what_etcd_holds_at_startup_is_answered_at_once() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    register(&mut client, "web", "web-2", "10.0.0.6", 8080).await;
    put(
        &mut client,
        &key("api.billing", "a1"),
        r#"{"address":"fd00::1"}"#,
    )
    .await;
    // Not under the prefix: never read.
    put(
        &mut client,
        "/disco2/services/web/x",
        &registration("10.9.9.9", 1),
    )
    .await;

    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5", "10.0.0.6"])
    );
    assert_eq!(
        disco
            .answers("api.billing.disco.internal.", RecordType::AAAA)
            .await,
        ok(&["fd00::1"])
    );
    disco
        .until_metric(&format!(
            "disco_registry_skipped_total{{registry=\"{}\"}} 0",
            etcd.url("etcd", "/disco")
        ))
        .await;
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
