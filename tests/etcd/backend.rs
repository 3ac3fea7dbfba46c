//! The backend battery (`tests/common/battery.rs`) against a real
//! one-member etcd: keys without a lease for registrations owned by
//! nothing, keys on a lease of their own for owned ones.

use etcd_client::{Client, Txn, TxnOp};

use crate::battery::Store;
use crate::cluster::Etcd;
use crate::support::{key, put, put_leased};

/// A one-member etcd and a client of it.
pub struct EtcdStore {
    etcd: Etcd,
    client: Client,
}

/// etcd's default `--max-txn-ops`.
const PUTS_PER_TXN: usize = 128;

impl Store for EtcdStore {
    /// The lease the registration is on.
    type Owner = i64;

    async fn start() -> Self {
        let etcd = Etcd::start();
        let client = etcd.client().await;
        EtcdStore { etcd, client }
    }

    fn url(&self) -> String {
        self.etcd.url("etcd", "/disco")
    }

    async fn put(&mut self, service: &str, id: &str, value: &str) {
        put(&mut self.client, &key(service, id), value).await;
    }

    async fn put_owned(&mut self, service: &str, id: &str, value: &str) -> i64 {
        put_leased(&mut self.client, &key(service, id), value, 60).await
    }

    async fn end(&mut self, lease: i64) {
        self.client.lease_revoke(lease).await.unwrap();
    }

    async fn delete(&mut self, service: &str, id: &str) {
        self.client.delete(key(service, id), None).await.unwrap();
    }

    async fn put_many(&mut self, items: Vec<(String, String, String)>) {
        for chunk in items.chunks(PUTS_PER_TXN) {
            let puts: Vec<TxnOp> = chunk
                .iter()
                .map(|(service, id, value)| TxnOp::put(key(service, id), value.as_str(), None))
                .collect();
            self.client.txn(Txn::new().and_then(puts)).await.unwrap();
        }
    }

    fn stop(&mut self) {
        self.etcd.kill(0);
    }

    async fn restart(&mut self) {
        self.etcd.restart(0);
        self.client = self.etcd.client().await;
    }
}
