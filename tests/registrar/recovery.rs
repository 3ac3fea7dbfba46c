//! What silently drops a registration, and the registrar putting it back
//! without a restart: etcd restarted, the lease expired while the
//! registrar was frozen, the key deleted by hand.

use std::time::Duration;

use etcd_client::Client;
use nix::sys::signal::Signal;

use crate::cluster::Etcd;
use crate::harness::{
    Registrar, TestService, stays_answered, until_answered, until_gone, web_registrar,
};
use crate::support::{CONVERGE, Disco, eventually, key};

const NAME: &str = "web-1.web.disco.internal.";

async fn setup(etcd: &Etcd, disco: &Disco, web: &TestService, ttl: &str) -> Registrar {
    let registry = etcd.url("etcd", "/disco");
    let port = web.port();
    let registrar = web_registrar(&registry, &port, &["--ttl", ttl]);
    until_answered(disco, NAME).await;
    registrar
}

#[tokio::test]
async fn a_key_deleted_by_hand_is_put_back() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let web = TestService::start().await;
    let registrar = setup(&etcd, &disco, &web, "10s").await;
    let mut client = etcd.client().await;
    client.delete(key("web", "web-1"), None).await.unwrap();
    eventually("the registrar logs the loss", CONVERGE, || async {
        registrar.log().contains("lost the registration")
    })
    .await;
    // The loss is logged before the new put is acknowledged: wait for the
    // key itself, on a lease, rather than read it once.
    eventually("the key is put back on a lease", CONVERGE, || {
        let mut client = client.clone();
        async move {
            let stored = client.get(key("web", "web-1"), None).await.unwrap();
            stored.kvs().len() == 1 && stored.kvs()[0].lease() != 0
        }
    })
    .await;
    until_answered(&disco, NAME).await;
}

/// The lease web-1's key is attached to, if the key exists (0: none).
async fn lease_of(client: &mut Client) -> Option<i64> {
    let stored = client.get(key("web", "web-1"), None).await.unwrap();
    stored.kvs().first().map(|kv| kv.lease())
}

/// Waits until web-1's key sits on a lease other than `old`, and returns it.
async fn until_on_a_new_lease(client: &Client, old: i64) -> i64 {
    eventually("the key put on a new lease", CONVERGE, || {
        let mut client = client.clone();
        async move {
            lease_of(&mut client)
                .await
                .is_some_and(|l| l != 0 && l != old)
        }
    })
    .await;
    lease_of(&mut client.clone()).await.unwrap()
}

/// "And it stays": answered at every query for two TTLs (a lease not kept
/// alive expires within one), and still on the same `lease` afterwards (a
/// registration put back on another lease in between is not staying).
async fn stays_on(disco: &Disco, client: &mut Client, lease: i64) {
    stays_answered(disco, NAME, Duration::from_secs(4)).await;
    assert_eq!(lease_of(client).await, Some(lease), "kept on its lease");
}

#[tokio::test]
async fn a_lease_expired_while_frozen_is_replaced_on_waking() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let web = TestService::start().await;
    let registrar = setup(&etcd, &disco, &web, "2s").await;
    let mut client = etcd.client().await;
    let old = lease_of(&mut client).await.expect("registered");
    registrar.signal(Signal::SIGSTOP);
    until_gone(&disco, NAME).await;
    registrar.signal(Signal::SIGCONT);
    let lease = until_on_a_new_lease(&client, old).await;
    until_answered(&disco, NAME).await;
    // And it stays: the new lease is kept alive.
    stays_on(&disco, &mut client, lease).await;
}

#[tokio::test]
async fn an_etcd_restart_is_ridden_out_and_the_registration_stays() {
    let mut etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/disco")]).await;
    let web = TestService::start().await;
    let registrar = setup(&etcd, &disco, &web, "2s").await;
    let old = lease_of(&mut etcd.client().await)
        .await
        .expect("registered");
    etcd.kill(0);
    // Longer than the TTL: the old lease is gone from the registrar's view.
    tokio::time::sleep(Duration::from_secs(3)).await;
    etcd.restart(0);
    // disco answers from its last snapshot while etcd is down: wait for the
    // new lease in etcd itself, then for disco to have it.
    let mut client = etcd.client().await;
    let lease = until_on_a_new_lease(&client, old).await;
    until_answered(&disco, NAME).await;
    // Kept alive on its new lease, not expiring with the old one.
    stays_on(&disco, &mut client, lease).await;
    let log = registrar.log();
    let warnings = log.matches("retrying with backoff").count();
    assert_eq!(warnings, 1, "one warning per outage:\n{log}");
    assert!(log.contains("store reachable again"), "{log}");
}
