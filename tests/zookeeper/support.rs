//! The ZooKeeper side of the tests' helpers: sessions, nodes written as
//! `disco registrar` and Nerve write them; the disco side is
//! `tests/common/disco.rs`.

#[path = "../common/disco.rs"]
mod disco;

pub use disco::*;

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, Error};

use crate::server::ZooKeeper;

/// A new session with every server of `zk`.
pub async fn client(zk: &ZooKeeper) -> Client {
    connect(&zk.hosts()).await
}

/// A new session through `hosts` (`host:port,...`), as long as the server
/// allows up to 10 s: the tests' runtime has one thread, which a large
/// listing by disco keeps busy for a while.
pub async fn connect(hosts: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .unwrap_or_else(|e| panic!("a session with {hosts}: {e}"))
}

/// The native node of `service`/`instance` under `/disco`.
pub fn node(service: &str, instance: &str) -> String {
    format!("/disco/services/{service}/{instance}")
}

/// A native registration at `address`:`port`.
pub fn registration(address: &str, port: u16) -> String {
    format!(r#"{{"address":"{address}","port":{port}}}"#)
}

/// Creates `path`'s parents, then `path` with `mode`; a persistent node
/// that exists gets the new data. Returns the created path (sequential
/// nodes get a suffix).
pub async fn create(client: &Client, path: &str, value: &[u8], mode: CreateMode) -> String {
    let parent = &path[..path.rfind('/').unwrap()];
    if !parent.is_empty() {
        client
            .mkdir(
                parent,
                &CreateMode::Persistent.with_acls(Acls::anyone_all()),
            )
            .await
            .unwrap_or_else(|e| panic!("mkdir {parent}: {e}"));
    }
    match client
        .create(path, value, &mode.with_acls(Acls::anyone_all()))
        .await
    {
        Ok((_, sequence)) if matches!(mode, CreateMode::EphemeralSequential) => {
            format!("{path}{sequence}")
        }
        Ok(_) => path.to_owned(),
        Err(Error::NodeExists) if mode == CreateMode::Persistent => {
            client.set_data(path, value, None).await.unwrap();
            path.to_owned()
        }
        Err(e) => panic!("create {path}: {e}"),
    }
}

/// Registers `service`/`id` at `address`:`port` as an ephemeral node of
/// `client`'s session, as `disco registrar` does.
pub async fn register(client: &Client, service: &str, id: &str, address: &str, port: u16) {
    create(
        client,
        &node(service, id),
        registration(address, port).as_bytes(),
        CreateMode::Ephemeral,
    )
    .await;
}

/// Sets `path`'s data to `value` (the node stays: a data-only change).
pub async fn set_data(client: &Client, path: &str, value: &str) {
    client
        .set_data(path, value.as_bytes(), None)
        .await
        .unwrap_or_else(|e| panic!("set data of {path}: {e}"));
}

/// Deletes `path`.
pub async fn delete(client: &Client, path: &str) {
    client
        .delete(path, None)
        .await
        .unwrap_or_else(|e| panic!("delete {path}: {e}"));
}
