//! The etcd backend: `etcd://` (native registrations) and `skydns+etcd://`
//! (CoreDNS/SkyDNS entries), `etcds://` and `skydns+etcds://` over TLS.
//!
//! One task per registry reads the whole prefix at a revision, reports it as
//! one full listing, then watches from the next revision and reports each
//! watch response as one batch of changes. Any break (a lost connection, a
//! cancelled watch, a watch revision etcd has compacted away) ends in a
//! fresh full listing, which replaces the source's state in one step, so
//! DNS never answers from a half-applied state. While no member answers,
//! the source is reported stale once and retried with backoff.
//!
//! - `connect`: endpoints, TLS, credentials, timeouts.
//! - `keys`: which key means what (pure).
//! - `listing`: the paged range read at one revision.
//! - `watch`: the listing-and-watch loop, resyncs, staleness.
//! - `leases`: granted lease TTLs for SkyDNS entries.
//! - [`publish`]: the other direction, what `disco registrar` writes;
//!   `session`: the connection and lease its publishers share.
//! - [`crate::store`]'s `skips` and `backoff`: bounded logging of skipped
//!   keys; retry delays (shared with ZooKeeper).

mod connect;
mod election;
mod keys;
mod leases;
mod listing;
pub mod publish;
mod session;
mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, EtcdSettings, RegistryUrl};
use crate::registry::{Backend, Sink};

use connect::Connector;
use keys::{Keys, Layout};

/// A registry kept in an etcd cluster.
pub struct EtcdBackend {
    name: String,
    endpoints: String,
    keys: Keys,
    connector: Connector,
    /// How often the watch is proved current (zero: never).
    proof_interval: Duration,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl EtcdBackend {
    /// A backend for `url` (an `etcd`, `etcds`, `skydns+etcd` or
    /// `skydns+etcds` URL). Connects only once run.
    pub fn new(url: &RegistryUrl, settings: &EtcdSettings) -> Result<Self, ConfigError> {
        let layout = match url.scheme.as_str() {
            "etcd" | "etcds" => Layout::Native,
            "skydns+etcd" | "skydns+etcds" => Layout::SkyDns,
            _ => {
                return Err(ConfigError::Invalid {
                    flag: "registry",
                    value: url.to_string(),
                    reason: "not an etcd registry".to_owned(),
                });
            }
        };
        Ok(EtcdBackend {
            name: url.to_string(),
            endpoints: url.endpoints.join(","),
            keys: Keys::new(layout, &url.path),
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

impl Backend for EtcdBackend {
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
