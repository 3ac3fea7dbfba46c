//! The ZooKeeper backend: `zk://` (native registrations under
//! `<chroot>/services/<service>/<instance>`) and `nerve+zk://` (Airbnb
//! Nerve's nodes, as SmartStack's Synapse reads them).
//!
//! One task per registry opens a session, adds one persistent recursive
//! watch on the root (ZooKeeper 3.6 and later), lists the tree and reports
//! it as one full listing, then reads what each burst of watch events
//! touched and reports it as one batch of changes. On every reconnection
//! the watch is added again and the tree listed again (zookeeper-client
//! 0.11 does not restore persistent watches itself: see `watch`); when the
//! session expires, a new one starts from scratch. While no server
//! answers, the source is reported stale once and retried with backoff.
//!
//! - `connect`: hosts, session timeout, digest credentials.
//! - `paths`: which node means what, in either layout (pure).
//! - `nodes`: Nerve nodes to instances, one answer per instance (pure).
//! - `listing`: the tree read level by level, in batched multi-reads.
//! - `events`: which leaves a burst of watch events touched (pure).
//! - `proof`: the watch proved current on a timer (sync, count, stat).
//! - `watch`: the watch-and-listing loop, reconnections, expiry.
//! - [`publish`]: the other direction, what `disco registrar` writes.
//! - [`crate::store`]'s `skips` and `backoff`, shared with etcd.

mod audit;
mod connect;
mod election;
mod events;
mod known;
mod listing;
mod nodes;
mod paths;
mod proof;
pub mod publish;
mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, RegistryUrl, ZkSettings};
use crate::registry::{Backend, Sink};

use connect::Connector;
use paths::{Layout, Paths};

/// A registry kept in a ZooKeeper ensemble.
pub struct ZkBackend {
    name: String,
    paths: Paths,
    connector: Connector,
    /// How often the watch is proved current (zero: never).
    proof_interval: Duration,
}

impl std::fmt::Debug for ZkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ZkBackend {
    /// A backend for `url` (a `zk` or `nerve+zk` URL). Connects only once
    /// run.
    pub fn new(url: &RegistryUrl, settings: &ZkSettings) -> Result<Self, ConfigError> {
        let layout = match url.scheme.as_str() {
            "zk" => Layout::Native,
            "nerve+zk" => Layout::Nerve,
            _ => {
                return Err(ConfigError::Invalid {
                    flag: "registry",
                    value: url.to_string(),
                    reason: "not a ZooKeeper registry".to_owned(),
                });
            }
        };
        Ok(ZkBackend {
            name: url.to_string(),
            paths: Paths::new(layout, &url.path),
            connector: Connector::new(url, settings),
            proof_interval: Duration::ZERO,
        })
    }

    /// The same, its watch proved current every `interval` (zero: never).
    pub fn with_proof_interval(self, interval: Duration) -> Self {
        Self {
            proof_interval: interval,
            ..self
        }
    }
}

impl Backend for ZkBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(
        self: Arc<Self>,
        sink: Sink,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut watcher = watch::Watcher::new(&self, sink);
            shutdown.run_until_cancelled(watcher.run()).await;
        })
    }
}
