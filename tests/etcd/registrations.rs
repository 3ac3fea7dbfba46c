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

/// Publishers of one registry share one lease (the services of a config
/// file, the containers of `registrar --docker`). One of them closing (its
/// container gone) must not revoke the lease under the others: only the
/// last one to close does.
#[tokio::test]
async fn closing_one_publisher_keeps_the_others_on_the_shared_lease() {
    use disco::config::{EtcdSettings, RegistryUrl, ZkSettings};
    use disco::model::{Instance, InstanceId, ServiceName};
    use disco::store::publish::{Format, Target};

    let etcd = Etcd::start();
    let url = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    let target = Target {
        registry: RegistryUrl::parse(&url).unwrap(),
        format: Format::Native,
        ttl: Duration::from_secs(10),
        domain: "disco.internal".into(),
        path: None,
    };
    let publisher = || {
        disco::store::publisher_for(&target, &EtcdSettings::default(), &ZkSettings::default())
            .unwrap()
    };
    let instance = |id: &str, address: &str| {
        let mut instance = Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new(id).unwrap(),
            address.parse().unwrap(),
        );
        instance.port = Some(80);
        instance
    };
    let (mut first, mut second) = (publisher(), publisher());
    first.publish(&instance("one", "10.0.0.1")).await.unwrap();
    second.publish(&instance("two", "10.0.0.2")).await.unwrap();
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;

    first.close().await.unwrap();
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.2"]))
        .await;
    let stayed = disco
        .answers_steadily("web.disco.internal.", RecordType::A, &ok(&["10.0.0.2"]))
        .await;
    assert!(stayed > 0);

    // The last one revokes: its key goes at once, not at the TTL.
    let closed = Instant::now();
    second.close().await.unwrap();
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            Err(hickory_proto::op::ResponseCode::NXDomain),
        )
        .await;
    assert!(closed.elapsed() < Duration::from_secs(5));
}
