//! One battery of backend behaviours, written once against the [`Store`]
//! trait and run unchanged against every store (hickory's
//! `basic_battery!` is the model): each test binary implements `Store` for
//! its real store and says `battery!(TheStore);`. What only one store does
//! (etcd's pages and compaction, ZooKeeper's sessions and Nerve's nodes)
//! is tested beside it, in that store's binary.
//!
//! Each binary includes this file with `#[macro_use] #[path]`, and has a
//! `support` module re-exporting `tests/common/disco.rs`.

#![allow(dead_code)]

use std::future::Future;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{Disco, ok, srv};

/// A real store, started for one test, holding native registrations under
/// `/disco` (`/disco/services/<service>/<instance>`).
pub trait Store: Sized {
    /// What keeps an owned registration alive (an etcd lease, a ZooKeeper
    /// session).
    type Owner;

    /// Starts an empty store.
    fn start() -> impl Future<Output = Self>;

    /// The `--registry` URL of its native registrations under `/disco`.
    fn url(&self) -> String;

    /// Writes `value` for `service`/`id`, owned by nothing: it stays until
    /// deleted.
    fn put(&mut self, service: &str, id: &str, value: &str) -> impl Future<Output = ()>;

    /// Writes `value` for `service`/`id`, owned by the returned owner.
    fn put_owned(
        &mut self,
        service: &str,
        id: &str,
        value: &str,
    ) -> impl Future<Output = Self::Owner>;

    /// The owner goes (the lease is revoked, the session closed), and its
    /// registrations with it.
    fn end(&mut self, owner: Self::Owner) -> impl Future<Output = ()>;

    /// Deletes `service`/`id`.
    fn delete(&mut self, service: &str, id: &str) -> impl Future<Output = ()>;

    /// Writes many `(service, id, value)` quickly (transactions,
    /// pipelining).
    fn put_many(&mut self, items: Vec<(String, String, String)>) -> impl Future<Output = ()>;

    /// Stops the store (disco loses it).
    fn stop(&mut self);

    /// Starts it again, on the same data.
    fn restart(&mut self) -> impl Future<Output = ()>;
}

/// A native registration at `address`:`port`.
pub fn native(address: &str, port: u16) -> String {
    format!(r#"{{"address":"{address}","port":{port}}}"#)
}

fn skipped_line(url: &str, count: u64) -> String {
    format!("disco_registry_skipped_total{{registry=\"{url}\"}} {count}")
}

/// Register → answered (A and SRV); delete → NXDOMAIN.
pub async fn a_registration_is_answered_and_a_delete_is_nxdomain<S: Store>() {
    let mut store = S::start().await;
    let disco = Disco::start(&[store.url()]).await;
    store.put("web", "web-1", &native("10.0.0.5", 8080)).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.5"]))
        .await;
    let message = disco.query("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv(&message), ["0 100 8080 web-1.web.disco.internal."]);

    store.delete("web", "web-1").await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            Err(ResponseCode::NXDomain),
        )
        .await;
    disco.stop().await;
}

/// The owner goes (lease revoked, session closed) → its instance is
/// withdrawn, the others stay.
pub async fn an_owner_gone_withdraws_its_instance<S: Store>() {
    let mut store = S::start().await;
    let disco = Disco::start(&[store.url()]).await;
    store.put("web", "stays", &native("10.0.0.1", 80)).await;
    let owner = store
        .put_owned("web", "owned", &native("10.0.0.2", 80))
        .await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;
    store.end(owner).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;
    assert_eq!(
        disco
            .answers("owned.web.disco.internal.", RecordType::A)
            .await,
        Err(ResponseCode::NXDomain)
    );
    disco.stop().await;
}

/// What the store holds when disco starts is answered once it is ready.
pub async fn what_the_store_holds_at_startup_is_answered_at_once<S: Store>() {
    let mut store = S::start().await;
    store.put("web", "web-1", &native("10.0.0.5", 8080)).await;
    store.put("web", "web-2", &native("10.0.0.6", 8080)).await;
    store
        .put("api.billing", "a1", r#"{"address":"fd00::1"}"#)
        .await;
    let url = store.url();
    let disco = Disco::start(std::slice::from_ref(&url)).await;
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
    disco.until_metric(&skipped_line(&url, 0)).await;
    disco.stop().await;
}

/// Store down → still answering, `/ready` 200 and stale; store back →
/// new registrations answered and the staleness cleared.
pub async fn answers_continue_while_the_store_is_down_and_resync_when_it_returns<S: Store>() {
    let mut store = S::start().await;
    let url = store.url();
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    store.put("web", "web-1", &native("10.0.0.5", 8080)).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.5"]))
        .await;

    store.stop();
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

    store.restart().await;
    store.put("web", "web-2", &native("10.0.0.6", 8080)).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.5", "10.0.0.6"]),
        )
        .await;
    disco.until_ready_says("\"stale\":false").await;
    disco
        .until_metric(&format!("disco_registry_up{{registry=\"{url}\"}} 1"))
        .await;
    disco.stop().await;
}

/// A store unreachable when disco starts is not fatal: zones are served,
/// `/ready` is 503 and says why, and the first listing arrives when the
/// store does.
pub async fn an_unreachable_store_at_startup_is_not_fatal<S: Store>() {
    let mut store = S::start().await;
    store.put("web", "web-1", &native("10.0.0.5", 8080)).await;
    store.stop();

    let zone = "$ORIGIN static.internal.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nhost IN A 192.0.2.7\n";
    let disco = Disco::start_with(&[store.url()], &[("static.internal.zone", zone)], |_| {}).await;
    assert_eq!(
        disco.answers("host.static.internal.", RecordType::A).await,
        ok(&["192.0.2.7"])
    );
    disco.until_ready_says("\"stale\":true").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"synced\":false"), "{body}");

    store.restart().await;
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

/// Values that are not JSON, name a bad address or are too large: skipped,
/// counted, never hiding the rest; garbage written over a good
/// registration withdraws it, a good value brings it back.
pub async fn malformed_values_are_skipped_counted_and_hide_nothing<S: Store>() {
    let mut store = S::start().await;
    let url = store.url();
    store.put("web", "web-1", &native("10.0.0.1", 80)).await;
    store.put("web", "web-2", &native("10.0.0.2", 80)).await;
    store.put("web", "bad-json", "{not json").await;
    store
        .put("web", "bad-address", r#"{"address":"10.0.0.300"}"#)
        .await;
    let big = format!(
        r#"{{"address":"10.0.0.9","meta":{{"pad":"{}"}}}}"#,
        "x".repeat(100 << 10)
    );
    store.put("web", "too-big", &big).await;

    let disco = Disco::start(std::slice::from_ref(&url)).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1", "10.0.0.2"])
    );
    disco.until_metric(&skipped_line(&url, 3)).await;

    store
        .put("web", "web-1", r#"{"address":"not-an-ip"}"#)
        .await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.2"]))
        .await;
    disco.until_metric(&skipped_line(&url, 4)).await;
    store.put("web", "web-1", &native("10.0.0.11", 80)).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.11", "10.0.0.2"]),
        )
        .await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"skipped\":4"), "{body}");
    disco.stop().await;
}

const MANY: usize = 100_000;

fn many_address(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// 100,000 instances in 1,000 services are listed without loss, and the
/// watch runs on from the listing.
pub async fn a_hundred_thousand_instances_are_listed_without_loss<S: Store>() {
    let mut store = S::start().await;
    let items = (0..MANY)
        .map(|i| {
            (
                format!("svc{}", i % 1000),
                format!("i{i}"),
                format!(
                    r#"{{"address":"{}","port":8080,"tags":["v2"],"meta":{{"version":"1.4.2"}}}}"#,
                    many_address(i)
                ),
            )
        })
        .collect();
    store.put_many(items).await;

    let url = store.url();
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    disco.until_metric(&format!("disco_instances {MANY}")).await;
    disco.until_metric(&skipped_line(&url, 0)).await;
    for i in [0, 1, 999, 1000, 54_321, 99_999] {
        let name = format!("i{i}.svc{}.disco.internal.", i % 1000);
        assert_eq!(
            disco.answers(&name, RecordType::A).await,
            ok(&[&many_address(i)]),
            "{name}"
        );
    }
    store.put("svc0", "new", &native("10.200.0.1", 80)).await;
    disco
        .until_answers(
            "new.svc0.disco.internal.",
            RecordType::A,
            ok(&["10.200.0.1"]),
        )
        .await;
    disco.stop().await;
}

/// Replicas: five `disco serve` processes watch one store; a burst of
/// registrations, changes and withdrawals (whole services among them) goes
/// in; every replica ends holding exactly what the store holds: each
/// service's SRV set, NXDOMAIN for the services withdrawn, the instance
/// count. (Twenty replicas on a store cluster: `bench/`.)
pub async fn five_replicas_converge_to_the_store_after_a_burst<S: Store>() {
    use std::collections::BTreeMap;

    const REPLICAS: usize = 5;
    let value = |s: usize, i: usize, port: u16| native(&format!("10.{}.{s}.{i}", port % 256), port);
    let mut store = S::start().await;
    // Before the replicas: 40 services of 10.
    let mut holds: BTreeMap<usize, BTreeMap<usize, u16>> = BTreeMap::new();
    let mut items = Vec::new();
    for s in 0..40 {
        for i in 0..10 {
            items.push((format!("svc{s}"), format!("i{i}"), value(s, i, 8080)));
            holds.entry(s).or_default().insert(i, 8080);
        }
    }
    store.put_many(items).await;
    let ports = crate::ports::free_ports(2 * REPLICAS);
    let url = store.url();
    let replicas: Vec<crate::support::Replica> = ports
        .chunks(2)
        .map(|pair| crate::support::Replica::spawn(&url, pair[0], pair[1]))
        .collect();
    for replica in &replicas {
        replica.wait_ready().await;
    }

    // The burst: five services withdrawn whole, five changed (a new port),
    // thirty grown to 20 instances, ten new ones of 15.
    for s in 0..5 {
        for i in 0..10 {
            store.delete(&format!("svc{s}"), &format!("i{i}")).await;
        }
        holds.remove(&s);
    }
    let mut items = Vec::new();
    for s in 5..10 {
        for i in 0..10 {
            // Withdrawn and registered again on another port (as a
            // ZooKeeper registrar does: its nodes are created, never set).
            store.delete(&format!("svc{s}"), &format!("i{i}")).await;
            items.push((format!("svc{s}"), format!("i{i}"), value(s, i, 9090)));
            holds.entry(s).or_default().insert(i, 9090);
        }
    }
    for s in 10..40 {
        for i in 10..20 {
            items.push((format!("svc{s}"), format!("i{i}"), value(s, i, 8080)));
            holds.entry(s).or_default().insert(i, 8080);
        }
    }
    for s in 40..50 {
        for i in 0..15 {
            items.push((format!("svc{s}"), format!("i{i}"), value(s, i, 7070)));
            holds.entry(s).or_default().insert(i, 7070);
        }
    }
    store.put_many(items).await;

    let total: usize = holds.values().map(BTreeMap::len).sum();
    for replica in &replicas {
        replica
            .until_metric(&format!("disco_instances {total}"))
            .await;
        for s in 0..50 {
            let name = format!("svc{s}.disco.internal.");
            let expected = match holds.get(&s) {
                None => Err(ResponseCode::NXDomain),
                Some(instances) => {
                    let mut set: Vec<String> = instances
                        .iter()
                        .map(|(i, port)| format!("0 100 {port} i{i}.svc{s}.disco.internal."))
                        .collect();
                    set.sort();
                    Ok(set)
                }
            };
            // The count can be right before the last change is: poll.
            let deadline = std::time::Instant::now() + crate::support::CONVERGE;
            loop {
                let got = replica.srv(&name).await;
                if got == expected {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} {name}: expected {expected:?}, still {got:?}",
                    replica.dns
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

/// Instantiates the battery for a [`Store`]: one `#[tokio::test]` per
/// behaviour, in a module `battery_for_store`.
macro_rules! battery {
    ($store:ty) => {
        mod battery_for_store {
            macro_rules! run {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        crate::battery::$name::<$store>().await;
                    }
                };
            }
            run!(a_registration_is_answered_and_a_delete_is_nxdomain);
            run!(an_owner_gone_withdraws_its_instance);
            run!(what_the_store_holds_at_startup_is_answered_at_once);
            run!(answers_continue_while_the_store_is_down_and_resync_when_it_returns);
            run!(an_unreachable_store_at_startup_is_not_fatal);
            run!(malformed_values_are_skipped_counted_and_hide_nothing);
            run!(a_hundred_thousand_instances_are_listed_without_loss);
            run!(five_replicas_converge_to_the_store_after_a_burst);
        }
    };
}
