//! The etcd publisher of `disco registrar`: the registration's key on a
//! lease of `--ttl`, kept alive while published, and watched, so that a key
//! deleted by hand or expired with its lease is noticed at once. Native
//! keys (`<prefix>/services/<service>/<instance>`) or SkyDNS keys (reversed
//! labels under the prefix), written by the model's pure mappings, which
//! the reading side parses back.

use std::time::Duration;

use etcd_client::{
    Client, EventType, LeaseKeepAliveStream, LeaseKeeper, PutOptions, WatchOptions, WatchStream,
};

use super::connect::{Connector, describe};
use crate::config::{EtcdSettings, RegistryUrl};
use crate::model::{self, Instance};
use crate::registrar::{Format, PublishError, Publisher, PublisherFuture, Target};

/// How long one request may take before etcd counts as unreachable. Short:
/// a withdrawal that waits is a failed service still answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A lease and what keeps it alive.
struct Lease {
    id: i64,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

/// Publishes one service to etcd.
pub struct EtcdPublisher {
    connector: Connector,
    registry: RegistryUrl,
    format: Format,
    domain: String,
    ttl: i64,
    client: Option<Client>,
    lease: Option<Lease>,
    /// The watch on the key, from just after our write.
    watch: Option<WatchStream>,
    /// The key last written, until it is known to be deleted.
    written: Option<String>,
}

impl EtcdPublisher {
    /// A publisher for `target`; connects at the first publish.
    pub fn new(target: &Target, settings: &EtcdSettings) -> Self {
        EtcdPublisher {
            connector: Connector::new(&target.registry, settings),
            registry: target.registry.clone(),
            format: target.format,
            domain: target.domain.clone(),
            ttl: target.ttl.as_secs().max(1) as i64,
            client: None,
            lease: None,
            watch: None,
            written: None,
        }
    }

    async fn client(&mut self) -> Result<Client, PublishError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = self.connector.connect().await.map_err(|e| {
            PublishError::Unavailable(format!(
                "cannot reach etcd at {}: {e}",
                self.registry.endpoints.join(",")
            ))
        })?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// After a failed request: forget the connection and the lease (a new
    /// one is granted; the old one expires by itself).
    fn reset(&mut self, error: etcd_client::Error) -> PublishError {
        self.client = None;
        self.lease = None;
        self.watch = None;
        PublishError::Unavailable(describe(&error))
    }

    async fn lease(&mut self, client: &mut Client) -> Result<i64, PublishError> {
        if let Some(lease) = &self.lease {
            return Ok(lease.id);
        }
        let granted = timed(client.lease_grant(self.ttl, None))
            .await?
            .map_err(|e| self.reset(e))?;
        let (keeper, responses) = timed(client.lease_keep_alive(granted.id()))
            .await?
            .map_err(|e| self.reset(e))?;
        self.lease = Some(Lease {
            id: granted.id(),
            keeper,
            responses,
        });
        Ok(granted.id())
    }

    async fn put(&mut self, registration: &Instance) -> Result<(), PublishError> {
        let (key, value) = key_value(self.format, &self.registry.path, &self.domain, registration);
        let mut client = self.client().await?;
        let lease = self.lease(&mut client).await?;
        self.watch = None;
        let options = PutOptions::new().with_lease(lease);
        let put = match timed(client.put(key.clone(), value.clone(), Some(options))).await? {
            Ok(put) => put,
            // The lease expired while we were away (a frozen registrar, an
            // etcd outage longer than the TTL): a new one, once.
            Err(error) if describe(&error).contains("lease not found") => {
                self.lease = None;
                let lease = self.lease(&mut client).await?;
                let options = PutOptions::new().with_lease(lease);
                timed(client.put(key.clone(), value, Some(options)))
                    .await?
                    .map_err(|e| self.reset(e))?
            }
            Err(error) => return Err(self.reset(error)),
        };
        self.written = Some(key.clone());
        let revision = put.header().map_or(0, |h| h.revision());
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let mut watch = timed(client.watch(key, Some(options)))
            .await?
            .map_err(|e| self.reset(e))?;
        // The first response confirms the watch is in place.
        timed(watch.message()).await?.map_err(|e| self.reset(e))?;
        self.watch = Some(watch);
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), PublishError> {
        let Some(lease) = self.lease.as_mut() else {
            return Err(PublishError::Lost("no lease".to_owned()));
        };
        let sent = lease.keeper.keep_alive().await;
        let answer = match sent {
            Ok(()) => timed(lease.responses.message()).await?,
            Err(error) => Err(error),
        };
        match answer {
            Ok(Some(response)) if response.ttl() > 0 => Ok(()),
            Ok(Some(_)) => {
                self.lease = None;
                self.watch = None;
                Err(PublishError::Lost("the lease expired".to_owned()))
            }
            Ok(None) => Err(self.reset(etcd_client::Error::WatchError(
                "the keep-alive stream ended".to_owned(),
            ))),
            Err(error) => Err(self.reset(error)),
        }
    }

    async fn delete(&mut self, revoke: bool) -> Result<(), PublishError> {
        self.watch = None;
        let Some(key) = self.written.clone() else {
            return Ok(());
        };
        let mut client = self.client().await?;
        timed(client.delete(key, None))
            .await?
            .map_err(|e| self.reset(e))?;
        self.written = None;
        if revoke && let Some(lease) = self.lease.take() {
            // Best effort: an unknown lease is as good as a revoked one.
            let _ = timed(client.lease_revoke(lease.id)).await;
        }
        Ok(())
    }

    async fn watch_for_loss(&mut self) -> PublishError {
        let Some(watch) = self.watch.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match watch.message().await {
                Ok(Some(response)) => {
                    if response.canceled() {
                        self.watch = None;
                        return PublishError::Unavailable(format!(
                            "the watch on the key was cancelled: {}",
                            response.cancel_reason()
                        ));
                    }
                    if response
                        .events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                    {
                        self.watch = None;
                        self.written = None;
                        return PublishError::Lost(
                            "the key was deleted (by hand, or with an expired lease)".to_owned(),
                        );
                    }
                }
                Ok(None) => {
                    self.watch = None;
                    return PublishError::Unavailable("the watch on the key ended".to_owned());
                }
                Err(error) => return self.reset(error),
            }
        }
    }
}

/// A request bounded by [`REQUEST_TIMEOUT`].
async fn timed<T>(request: impl Future<Output = T>) -> Result<T, PublishError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| {
            PublishError::Unavailable(format!(
                "etcd did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })
}

/// The key and value `registration` is written as.
fn key_value(
    format: Format,
    prefix: &str,
    domain: &str,
    registration: &Instance,
) -> (String, Vec<u8>) {
    match format {
        Format::SkyDns => (
            model::skydns_key(prefix, domain, registration),
            model::skydns_value(registration),
        ),
        // Nerve is refused for etcd before a publisher is built.
        Format::Native | Format::Nerve => (
            format!(
                "{}/services/{}/{}",
                prefix.trim_end_matches('/'),
                registration.service,
                registration.id
            ),
            model::native_value(registration),
        ),
    }
}

impl Publisher for EtcdPublisher {
    fn describe(&self) -> String {
        match &self.written {
            Some(key) => format!(
                "{}://{}{key}",
                self.registry.scheme,
                self.registry.endpoints.join(",")
            ),
            None => self.registry.to_string(),
        }
    }

    fn publish<'a>(
        &'a mut self,
        registration: &'a Instance,
    ) -> PublisherFuture<'a, Result<(), PublishError>> {
        Box::pin(self.put(registration))
    }

    fn keep_alive(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.refresh())
    }

    fn keep_alive_every(&self) -> Option<Duration> {
        // A third of the TTL: two keep-alives may be lost before it expires.
        Some(Duration::from_secs(self.ttl as u64) / 3)
    }

    fn lost(&mut self) -> PublisherFuture<'_, PublishError> {
        Box::pin(self.watch_for_loss())
    }

    fn withdraw(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.delete(false))
    }

    fn close(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.delete(true))
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::{Entry, Keys, Layout};
    use super::*;
    use crate::model::{InstanceId, ServiceName};

    fn web() -> Instance {
        let mut instance = Instance::new(
            ServiceName::new("api.billing").unwrap(),
            InstanceId::new("web-1").unwrap(),
            "fd00::5".parse().unwrap(),
        );
        instance.port = Some(8080);
        instance.tags = vec!["v2".into()].into_boxed_slice();
        instance
    }

    #[test]
    fn what_the_publisher_writes_the_backend_reads_back() {
        let (key, value) = key_value(Format::Native, "/disco", "disco.internal", &web());
        assert_eq!(key, "/disco/services/api.billing/web-1");
        match Keys::new(Layout::Native, "/disco").put(key.as_bytes(), &value, None) {
            Ok(Entry::Instance(read)) => assert_eq!(read, web()),
            other => panic!("not read back: {other:?}"),
        }
        let (key, value) = key_value(Format::SkyDns, "/skydns", "disco.internal", &web());
        assert_eq!(key, "/skydns/internal/disco/billing/api/web-1");
        match Keys::new(Layout::SkyDns, "/skydns").put(key.as_bytes(), &value, None) {
            Ok(Entry::Record(entry)) => {
                assert_eq!(entry.name, "web-1.api.billing.disco.internal");
                assert_eq!((entry.host.as_str(), entry.port), ("fd00::5", 8080));
            }
            other => panic!("not read back: {other:?}"),
        }
    }
}
