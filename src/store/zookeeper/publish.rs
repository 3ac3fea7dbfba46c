//! The ZooKeeper publisher of `disco registrar`: one session per service,
//! with `--ttl` as its timeout, and the registration as an ephemeral node
//! of it, watched, so that a node deleted by hand or gone with an expired
//! session is noticed at once. Native nodes
//! (`<chroot>/services/<service>/<instance>`, disco's JSON) or Nerve's
//! (ephemeral sequential `<zk_path>/<instance>_<seq>`, Nerve's JSON, with
//! `zk_path` = `<chroot>/<service>/services` or the DockStack path), written
//! by the model's pure mappings, which the reading side parses back.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use zookeeper_client::{
    Acls, Client, CreateMode, Error, EventType, SessionState, StateWatcher, WatchedEvent,
};

use super::connect::Connector;
use super::election::Candidacy;
use crate::config::{RegistryUrl, ZkSettings};
use crate::model::{self, Instance};
use crate::store::election::Election;
use crate::store::publish::{Format, PublishError, Publisher, PublisherFuture, Target};

/// How long one request may take before ZooKeeper counts as unreachable.
/// Short: a withdrawal that waits is a failed service still answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The watch on the written node, kept across calls of `lost` (which the
/// loop drops and calls again).
type NodeWatch = Pin<Box<dyn Future<Output = WatchedEvent> + Send>>;

/// Publishes one service to ZooKeeper.
pub struct ZkPublisher {
    connector: Connector,
    pub(super) registry: RegistryUrl,
    format: Format,
    /// The node's directory when the user gave one (DockStack).
    path: Option<String>,
    pub(super) client: Option<Client>,
    /// The node last written, until it is known to be gone.
    pub(super) written: Option<String>,
    watch: Option<NodeWatch>,
    /// The candidacy, with `--elect`.
    pub(super) candidacy: Option<Candidacy>,
    /// When the request was sent whose answer last proved the session
    /// alive (with `--elect`).
    pub(super) acknowledged: Option<Instant>,
}

impl ZkPublisher {
    /// A publisher for `target`; connects at the first publish.
    pub fn new(target: &Target, settings: &ZkSettings) -> Self {
        ZkPublisher {
            connector: Connector::new(&target.registry, settings)
                .with_session_timeout(target.ttl.max(Duration::from_secs(1))),
            registry: target.registry.clone(),
            format: target.format,
            path: target.path.clone(),
            client: None,
            written: None,
            watch: None,
            candidacy: None,
            acknowledged: None,
        }
    }

    /// The session, a new one if there is none or it ended (an expired
    /// session loses its ephemeral nodes: what it wrote is gone).
    pub(super) async fn client(&mut self) -> Result<Client, PublishError> {
        if let Some(client) = &self.client
            && !client.state().is_terminated()
        {
            return Ok(client.clone());
        }
        self.client = None;
        self.watch = None;
        // A new session has no candidacy, and no proof yet.
        self.candidacy = None;
        self.acknowledged = None;
        let client = self
            .connector
            .connect()
            .await
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// After a failed request: a session that ended is forgotten (the next
    /// publish opens a new one); a live one is kept for the client's own
    /// reconnection.
    pub(super) fn failed(&mut self, what: &str, error: Error) -> PublishError {
        if self
            .client
            .as_ref()
            .is_some_and(|c| c.state().is_terminated())
        {
            self.client = None;
            self.watch = None;
        }
        PublishError::Unavailable(format!("{what}: {error}"))
    }

    /// The directory the node goes into, and the node's name (Nerve's is a
    /// prefix, completed by ZooKeeper's sequence number).
    fn place(&self, registration: &Instance) -> (String, String) {
        let root = self.registry.path.trim_end_matches('/');
        let dir = match (&self.path, self.format) {
            (Some(path), _) => path.trim_end_matches('/').to_owned(),
            (None, Format::Nerve) => format!("{root}/{}/services", registration.service),
            (None, _) => format!("{root}/services/{}", registration.service),
        };
        let name = match self.format {
            Format::Nerve => format!("{}_", registration.id),
            _ => registration.id.to_string(),
        };
        (dir, name)
    }

    async fn put(&mut self, registration: &Instance) -> Result<(), PublishError> {
        let client = self.client().await?;
        let (dir, name) = self.place(registration);
        let value = match self.format {
            Format::Nerve => model::nerve_json(registration).into_bytes(),
            _ => model::native_value(registration),
        };
        let directories = CreateMode::Persistent.with_acls(Acls::anyone_all());
        timed(client.mkdir(&dir, &directories))
            .await?
            .map_err(|e| self.failed(&format!("creating {dir}"), e))?;
        let path = match self.format {
            Format::Nerve => self.put_nerve(&client, &dir, &name, &value).await?,
            _ => {
                self.put_native(&client, &format!("{dir}/{name}"), &value)
                    .await?
            }
        };
        self.written = Some(path.clone());
        self.arm(&client, &path).await
    }

    /// Creates the ephemeral node at `path`, or takes it over: a node of an
    /// older session (a registrar restarted before that session expired)
    /// is deleted and created again under ours; one of ours gets the data.
    async fn put_native(
        &mut self,
        client: &Client,
        path: &str,
        value: &[u8],
    ) -> Result<String, PublishError> {
        let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        for _ in 0..3 {
            match timed(client.create(path, value, &ephemeral)).await? {
                Ok(_) => return Ok(path.to_owned()),
                Err(Error::NodeExists) => {}
                Err(e) => return Err(self.failed(&format!("creating {path}"), e)),
            }
            let stat = match timed(client.check_stat(path)).await? {
                Ok(Some(stat)) => stat,
                // Gone meanwhile: create it again.
                Ok(None) => continue,
                Err(e) => return Err(self.failed(&format!("reading {path}"), e)),
            };
            if stat.ephemeral_owner == client.session_id().0 {
                return match timed(client.set_data(path, value, None)).await? {
                    Ok(_) => Ok(path.to_owned()),
                    Err(e) => Err(self.failed(&format!("writing {path}"), e)),
                };
            }
            match timed(client.delete(path, Some(stat.version))).await? {
                Ok(()) | Err(Error::NoNode) | Err(Error::BadVersion) => {}
                Err(e) => return Err(self.failed(&format!("replacing {path}"), e)),
            }
        }
        Err(PublishError::Unavailable(format!(
            "{path} keeps being recreated by another session"
        )))
    }

    /// Writes Nerve's node: the one this session wrote gets the new data;
    /// otherwise a new sequential node, after which the nodes of older
    /// sessions for the same instance are deleted (disco answers one of
    /// them anyway, Synapse would list each).
    async fn put_nerve(
        &mut self,
        client: &Client,
        dir: &str,
        prefix: &str,
        value: &[u8],
    ) -> Result<String, PublishError> {
        if let Some(path) = self.written.clone() {
            match timed(client.check_stat(&path)).await? {
                Ok(Some(stat)) if stat.ephemeral_owner == client.session_id().0 => {
                    return match timed(client.set_data(&path, value, None)).await? {
                        Ok(_) => Ok(path),
                        Err(e) => Err(self.failed(&format!("writing {path}"), e)),
                    };
                }
                Ok(_) => {}
                Err(e) => return Err(self.failed(&format!("reading {path}"), e)),
            }
        }
        let sequential = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let node = format!("{dir}/{prefix}");
        let sequence = match timed(client.create(&node, value, &sequential)).await? {
            Ok((_, sequence)) => sequence,
            Err(e) => return Err(self.failed(&format!("creating {node}"), e)),
        };
        let path = format!("{node}{sequence}");
        let siblings = timed(client.list_children(dir)).await?.unwrap_or_default();
        for sibling in siblings {
            let other = format!("{dir}/{sibling}");
            let is_ours = sibling
                .strip_prefix(prefix)
                .is_some_and(|seq| seq.bytes().all(|b| b.is_ascii_digit()));
            if !is_ours || other == path {
                continue;
            }
            // Best effort: whatever is left expires with its session.
            if let Ok(Ok(Some(stat))) = timed(client.check_stat(&other)).await
                && stat.ephemeral_owner != client.session_id().0
            {
                let _ = timed(client.delete(&other, Some(stat.version))).await;
            }
        }
        Ok(path)
    }

    /// Watches the written node: its deletion, or the session's end, is
    /// what `lost` reports.
    async fn arm(&mut self, client: &Client, path: &str) -> Result<(), PublishError> {
        let (stat, watcher) = match timed(client.check_and_watch_stat(path)).await? {
            Ok(watched) => watched,
            Err(e) => return Err(self.failed(&format!("watching {path}"), e)),
        };
        if stat.is_none() {
            self.written = None;
            return Err(PublishError::Lost(format!(
                "{path} was deleted as it was written"
            )));
        }
        self.watch = Some(Box::pin(watcher.changed()));
        Ok(())
    }

    async fn watch_for_loss(&mut self) -> PublishError {
        loop {
            let Some(watch) = self.watch.as_mut() else {
                return std::future::pending().await;
            };
            let event = watch.await;
            self.watch = None;
            let path = self.written.clone().unwrap_or_default();
            match (event.event_type, event.session_state) {
                (EventType::NodeDeleted, _) => {
                    self.written = None;
                    return PublishError::Lost(format!("{path} was deleted by hand"));
                }
                (EventType::Session, state) if state.is_terminated() => {
                    self.written = None;
                    self.client = None;
                    return PublishError::Lost(format!("the ZooKeeper session is {state}"));
                }
                // Its data changed (by hand): still there; watch on.
                _ => {
                    let Some(client) = self.client.clone() else {
                        return PublishError::Unavailable("no session".to_owned());
                    };
                    if let Err(error) = self.arm(&client, &path).await {
                        return error;
                    }
                }
            }
        }
    }

    async fn delete(&mut self, close: bool) -> Result<(), PublishError> {
        self.watch = None;
        if let Some(path) = self.written.clone() {
            let client = self.client().await?;
            match timed(client.delete(&path, None)).await? {
                Ok(()) | Err(Error::NoNode) => self.written = None,
                Err(e) => return Err(self.failed(&format!("deleting {path}"), e)),
            }
        }
        if close && let Some(client) = self.client.take() {
            // Dropping the last handle closes the session; wait (briefly)
            // for ZooKeeper to have ended it, so nothing of it lingers.
            let mut state = client.state_watcher();
            drop(client);
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, closed(&mut state)).await;
        }
        Ok(())
    }
}

/// Waits until the session has ended.
async fn closed(state: &mut StateWatcher) {
    let mut current = state.state();
    while !current.is_terminated() {
        current = state.changed().await;
    }
    debug_assert!(matches!(
        current,
        SessionState::Closed | SessionState::Expired | SessionState::AuthFailed
    ));
}

/// A request bounded by [`REQUEST_TIMEOUT`].
pub(super) async fn timed<T>(request: impl Future<Output = T>) -> Result<T, PublishError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| {
            PublishError::Unavailable(format!(
                "ZooKeeper did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })
}

impl Publisher for ZkPublisher {
    fn describe(&self) -> String {
        match &self.written {
            Some(path) => format!(
                "{}://{}{path}",
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
        // The client pings the session by itself; a candidate proves it
        // alive with a request of its own, which the fence counts from.
        Box::pin(self.prove_alive())
    }

    fn keep_alive_every(&self) -> Option<Duration> {
        self.candidate_keep_alive()
    }

    fn lost(&mut self) -> PublisherFuture<'_, PublishError> {
        Box::pin(self.watch_for_loss())
    }

    fn withdraw(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.delete(false))
    }

    fn close(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        // The session's end deletes the candidate node with the rest.
        self.candidacy = None;
        Box::pin(self.delete(true))
    }

    fn election(&mut self) -> Option<&mut dyn Election> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::paths::{Layout, Node, Paths};
    use super::*;
    use crate::model::{InstanceId, ServiceName};

    fn web() -> Instance {
        let mut instance = Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new("web-1").unwrap(),
            "10.0.0.5".parse().unwrap(),
        );
        instance.port = Some(8080);
        instance
    }

    fn publisher(url: &str, format: Format, path: Option<&str>) -> ZkPublisher {
        let target = Target {
            registry: RegistryUrl::parse(url).unwrap(),
            format,
            ttl: Duration::from_secs(10),
            domain: "disco.internal".to_owned(),
            path: path.map(str::to_owned),
        };
        ZkPublisher::new(&target, &ZkSettings::default())
    }

    #[test]
    fn nodes_go_where_the_reading_side_looks() {
        let native = publisher("zk://h1:2181/disco", Format::Native, None);
        let (dir, name) = native.place(&web());
        let path = format!("{dir}/{name}");
        assert_eq!(path, "/disco/services/web/web-1");
        let paths = Paths::new(Layout::Native, "/disco");
        let Node::Leaf { service, name } = paths.node(&path) else {
            panic!("{path} is not a leaf");
        };
        let value = model::native_value(&web());
        assert_eq!(paths.parse(service, name, &value, 0).unwrap(), web());

        let nerve = publisher("zk://h1:2181/nerve/services", Format::Nerve, None);
        let (dir, prefix) = nerve.place(&web());
        let path = format!("{dir}/{prefix}0000000007");
        assert_eq!(path, "/nerve/services/web/services/web-1_0000000007");
        let paths = Paths::new(Layout::Nerve, "/nerve/services");
        let Node::Leaf { service, name } = paths.node(&path) else {
            panic!("{path} is not a leaf");
        };
        let value = model::nerve_json(&web());
        assert_eq!(
            paths.parse(service, name, value.as_bytes(), 0).unwrap(),
            web()
        );

        let dockstack = publisher("zk://h1:2181/nerve", Format::Nerve, Some("/nerve/mysql"));
        assert_eq!(dockstack.place(&web()).0, "/nerve/mysql");
    }
}
