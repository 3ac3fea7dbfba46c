//! The etcd side of the tests' helpers: keys, puts and the "lists, then
//! watches" assertions; the disco side is `tests/common/disco.rs`.

#[path = "../common/disco.rs"]
mod disco;

pub use disco::*;

use etcd_client::{Client, PutOptions};
use hickory_proto::rr::RecordType;

/// The native key of `service`/`instance` under `/disco`.
pub fn key(service: &str, instance: &str) -> String {
    format!("/disco/services/{service}/{instance}")
}

/// Puts `value` at `key` on a lease of `ttl` seconds (not kept alive: the
/// tests that let it expire want that; the others finish well before).
pub async fn put_leased(client: &mut Client, key: &str, value: &str, ttl: i64) -> i64 {
    let lease = client.lease_grant(ttl, None).await.unwrap().id();
    client
        .put(key, value, Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    lease
}

/// Puts `value` at `key`, with no lease.
pub async fn put(client: &mut Client, key: &str, value: &str) {
    client.put(key, value, None).await.unwrap();
}

/// Registers `service`/`id` at `address`:`port` (native format, no lease).
pub async fn register(client: &mut Client, service: &str, id: &str, address: &str, port: u16) {
    put(client, &key(service, id), &registration(address, port)).await;
}

/// A native registration at `address`:`port`.
pub fn registration(address: &str, port: u16) -> String {
    format!(r#"{{"address":"{address}","port":{port}}}"#)
}

/// Asserts that disco, once ready, answers what etcd held at startup
/// (`web-1` at 10.0.0.5), then a registration made through `client`
/// afterwards: both the listing and the watch work on this connection.
pub async fn assert_lists_then_watches(disco: &Disco, client: &mut Client) {
    disco.wait_ready().await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5"])
    );
    assert_watches(disco, client).await;
}

/// Registers `web-2` at 10.0.0.6 through `client` and waits until disco
/// answers it beside `web-1` at 10.0.0.5: the watch delivers changes.
pub async fn assert_watches(disco: &Disco, client: &mut Client) {
    register(client, "web", "web-2", "10.0.0.6", 8080).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.5", "10.0.0.6"]),
        )
        .await;
}
