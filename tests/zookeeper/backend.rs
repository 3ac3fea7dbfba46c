//! The backend battery (`tests/common/battery.rs`) against a real
//! standalone ZooKeeper: persistent nodes for registrations owned by
//! nothing, ephemeral nodes of a session of their own for owned ones.

use zookeeper_client::{Acls, Client, CreateMode};

use crate::battery::Store;
use crate::server::ZooKeeper;
use crate::support::{client, create, delete, node};

/// A standalone ZooKeeper and a session with it.
pub struct Zk {
    zk: ZooKeeper,
    client: Client,
}

/// Nodes created at once by `put_many`; ZooKeeper stops reading a
/// client's socket past 1,000 outstanding requests.
const IN_FLIGHT: usize = 500;

impl Store for Zk {
    type Owner = Client;

    async fn start() -> Self {
        let zk = ZooKeeper::start();
        let client = client(&zk).await;
        Zk { zk, client }
    }

    fn url(&self) -> String {
        self.zk.url("zk", "/disco")
    }

    async fn put(&mut self, service: &str, id: &str, value: &str) {
        let path = node(service, id);
        create(
            &self.client,
            &path,
            value.as_bytes(),
            CreateMode::Persistent,
        )
        .await;
    }

    async fn put_owned(&mut self, service: &str, id: &str, value: &str) -> Client {
        let owner = client(&self.zk).await;
        let path = node(service, id);
        create(&owner, &path, value.as_bytes(), CreateMode::Ephemeral).await;
        owner
    }

    async fn end(&mut self, owner: Client) {
        // Dropping the last handle closes the session; ZooKeeper deletes
        // its ephemeral nodes at once.
        drop(owner);
    }

    async fn delete(&mut self, service: &str, id: &str) {
        delete(&self.client, &node(service, id)).await;
    }

    async fn put_many(&mut self, items: Vec<(String, String, String)>) {
        let mut services: Vec<&str> = items.iter().map(|(s, _, _)| s.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        let parents = CreateMode::Persistent.with_acls(Acls::anyone_all());
        for service in services {
            self.client
                .mkdir(&format!("/disco/services/{service}"), &parents)
                .await
                .unwrap();
        }
        let paths: Vec<(String, &str)> = items
            .iter()
            .map(|(s, i, v)| (node(s, i), v.as_str()))
            .collect();
        for chunk in paths.chunks(IN_FLIGHT) {
            // Each request is sent when made; the answers are awaited after.
            let sent: Vec<_> = chunk
                .iter()
                .map(|(path, value)| self.client.create(path, value.as_bytes(), &parents))
                .collect();
            for answer in sent {
                answer.await.unwrap();
            }
        }
    }

    fn stop(&mut self) {
        self.zk.kill(0);
    }

    async fn restart(&mut self) {
        self.zk.restart(0);
        // The old session may or may not come back; a new one surely does.
        self.client = client(&self.zk).await;
    }
}
