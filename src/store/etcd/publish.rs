//! The etcd publisher of `disco registrar`: the registration's key on a
//! lease of `--ttl`, kept alive while published, and watched, so that a key
//! deleted by hand or expired with its lease is noticed at once. Native
//! keys (`<prefix>/services/<service>/<instance>`) or SkyDNS keys (reversed
//! labels under the prefix), written by the model's pure mappings, which
//! the reading side parses back.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, PutOptions, WatchOptions, WatchStream};

use super::connect::describe;
use super::election::Candidacy;
use super::session::{Session, timed};
use crate::config::{EtcdSettings, RegistryUrl};
use crate::model::{self, Instance};
use crate::store::election::Election;
use crate::store::publish::{Format, PublishError, Publisher, PublisherFuture, Target};

/// Publishes one service to etcd, on the lease its registry's publishers
/// share.
pub struct EtcdPublisher {
    pub(super) session: Arc<Session>,
    pub(super) registry: RegistryUrl,
    pub(super) format: Format,
    pub(super) domain: String,
    /// The lease generation the key was written on.
    generation: u64,
    /// The watch on the key, from just after our write.
    watch: Option<WatchStream>,
    /// The key last written, until it is known to be deleted.
    written: Option<String>,
    /// Counted among the session's users (until closed or dropped).
    joined: bool,
    /// The candidacy, with `--elect`.
    pub(super) candidacy: Candidacy,
}

impl EtcdPublisher {
    /// A publisher for `target`, on the lease its registry's publishers
    /// share; connects at the first publish.
    pub fn new(target: &Target, settings: &EtcdSettings) -> Self {
        let ttl = target.ttl.as_secs().max(1) as i64;
        Self::on(Session::shared(&target.registry, settings, ttl), target)
    }

    /// A publisher for `target` on a connection and lease of its own: a
    /// candidate's (`super::election`), whose key etcd names after the
    /// lease.
    pub fn with_own_lease(target: &Target, settings: &EtcdSettings) -> Self {
        let ttl = target.ttl.as_secs().max(1) as i64;
        Self::on(Session::own(&target.registry, settings, ttl), target)
    }

    fn on(session: Arc<Session>, target: &Target) -> Self {
        session.join();
        EtcdPublisher {
            session,
            registry: target.registry.clone(),
            format: target.format,
            domain: target.domain.clone(),
            generation: 0,
            watch: None,
            written: None,
            joined: true,
            candidacy: Candidacy::default(),
        }
    }

    /// `error` from a request on the session: the session drops the
    /// connection and lease it was made on.
    pub(super) async fn failed(&mut self, error: etcd_client::Error) -> PublishError {
        self.watch = None;
        let error = PublishError::Unavailable(describe(&error));
        self.session.failed(self.generation, error).await
    }

    async fn put(&mut self, registration: &Instance) -> Result<(), PublishError> {
        let (key, value) = key_value(self.format, &self.registry.path, &self.domain, registration);
        self.watch = None;
        let mut granted = self.session.lease().await?;
        self.generation = granted.generation;
        let options = PutOptions::new().with_lease(granted.lease);
        let mut put = timed(
            granted
                .client
                .put(key.clone(), value.clone(), Some(options)),
        )
        .await?;
        if let Err(error) = &put
            && describe(error).contains("lease not found")
        {
            // The lease expired while we were away (a frozen registrar, an
            // etcd outage longer than the TTL): a new one, once.
            self.session.lease_lost(granted.generation).await;
            granted = self.session.lease().await?;
            self.generation = granted.generation;
            let options = PutOptions::new().with_lease(granted.lease);
            put = timed(granted.client.put(key.clone(), value, Some(options))).await?;
        }
        let put = match put {
            Ok(put) => put,
            Err(error) => return Err(self.failed(error).await),
        };
        self.written = Some(key.clone());
        let revision = put.header().map_or(0, |h| h.revision());
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let mut watch = match timed(granted.client.watch(key, Some(options))).await? {
            Ok(watch) => watch,
            Err(error) => return Err(self.failed(error).await),
        };
        // The first response confirms the watch is in place.
        if let Err(error) = timed(watch.message()).await? {
            return Err(self.failed(error).await);
        }
        self.watch = Some(watch);
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), PublishError> {
        let every = self.keep_alive_every().unwrap_or_default();
        let result = self.session.keep_alive(self.generation, every).await;
        if result.is_err() {
            self.watch = None;
        }
        result
    }

    async fn delete(&mut self, revoke: bool) -> Result<(), PublishError> {
        self.watch = None;
        if let Some(key) = self.written.clone() {
            let mut client = self.session.client().await?;
            if let Err(error) = timed(client.delete(key, None)).await? {
                return Err(self.failed(error).await);
            }
            self.written = None;
        }
        // Several publishers share the lease (the services of a config
        // file, the containers of `--docker`): only the last to close
        // revokes it, which would delete the others' keys with it.
        if revoke && std::mem::take(&mut self.joined) && self.session.leave() {
            self.session.revoke().await;
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
                Err(error) => return self.failed(error).await,
            }
        }
    }
}

impl Drop for EtcdPublisher {
    fn drop(&mut self) {
        if self.joined {
            self.session.leave();
        }
    }
}

/// The key and value `registration` is written as.
pub(super) fn key_value(
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
        Some(Duration::from_secs(self.session.ttl() as u64) / 3)
    }

    fn lost(&mut self) -> PublisherFuture<'_, PublishError> {
        Box::pin(self.watch_for_loss())
    }

    fn withdraw(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.delete(false))
    }

    fn close(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        // The lease's revocation deletes the candidate's key with the rest.
        self.candidacy = Candidacy::default();
        Box::pin(self.delete(true))
    }

    fn election(&mut self) -> Option<&mut dyn Election> {
        Some(self)
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
        instance.tags = ["v2"].into_iter().collect();
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
