//! The ZooKeeper side of the drivers: native registrations as persistent
//! nodes `<root>/services/<service>/<instance>` (persistent, so that what
//! `load` wrote outlives this process, as etcd's keys without a lease do).

use anyhow::{Context, Result};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error};

/// Requests in flight at once; ZooKeeper stops reading a client's socket
/// beyond 1,000.
const IN_FLIGHT: usize = 500;

const OPEN: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

pub async fn connect(hosts: &str) -> Result<Client> {
    Client::connect(hosts)
        .await
        .with_context(|| format!("connecting to ZooKeeper at {hosts}"))
}

/// Creates `<root>/services/<service>` and its parents.
pub async fn service_node(client: &Client, root: &str, service: &str) -> Result<()> {
    let path = format!("{root}/services/{service}");
    client.mkdir(&path, &OPEN).await.with_context(|| format!("mkdir {path}"))
}

/// Creates `path` with `value`, or sets it if it exists.
pub async fn put(client: &Client, path: &str, value: &[u8]) -> Result<()> {
    match client.create(path, value, &OPEN).await {
        Ok(_) => Ok(()),
        Err(Error::NodeExists) => Ok(client.set_data(path, value, None).await.map(|_| ())?),
        Err(e) => Err(e).with_context(|| format!("create {path}")),
    }
}

/// Deletes `path`; one already gone is fine.
pub async fn delete(client: &Client, path: &str) -> Result<()> {
    match client.delete(path, None).await {
        Ok(()) | Err(Error::NoNode) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("delete {path}")),
    }
}

/// Creates every `(path, value)`, many requests in flight (each is sent
/// when made; the answers are awaited after).
pub async fn load(client: &Client, nodes: &[(String, String)]) -> Result<()> {
    for chunk in nodes.chunks(IN_FLIGHT) {
        let sent: Vec<_> = chunk
            .iter()
            .map(|(path, value)| (path, client.create(path, value.as_bytes(), &OPEN)))
            .collect();
        for (path, answer) in sent {
            match answer.await {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(e).with_context(|| format!("create {path}")),
            }
        }
    }
    Ok(())
}
