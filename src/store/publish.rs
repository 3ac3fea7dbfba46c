//! The publisher contract: how `disco registrar` puts one registration
//! into a store, keeps it there, notices when the store lost it, and takes
//! it out again. Store-agnostic: no store type appears here. Each store
//! implements it in its own folder ([`super::etcd::publish`],
//! [`super::zookeeper::publish`]), for each format it writes.
//!
//! Why here, beside the stores, and not in the registrar or in
//! [`crate::registry`]: the registrar calls the stores (through
//! [`super::publisher_for`]), so if the contract were the registrar's the
//! stores would import the registrar back and the two would form a circle.
//! Here the layers run one way: the registrar depends on the backends,
//! which know nothing of it. [`crate::registry`], where the serving
//! contract (`Backend`, `Sink`) lives, is the wrong home: it is what
//! `disco serve` merges, knows nothing of any store or of the
//! configuration, while a [`Target`] names a [`RegistryUrl`] and a lease
//! or session TTL.
//!
//! The loop (`crate::registrar::publishing`) owns the decisions (when to
//! publish, when to withdraw, when to retry and how long to back off); a
//! publisher only does what it is asked, once, and reports what went wrong.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::election::Election;
use crate::config::RegistryUrl;
use crate::model::Instance;

/// A boxed future borrowing the publisher, so that `dyn Publisher` works.
pub type PublisherFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a registration is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// disco's own JSON under `<prefix>/services/<service>/<instance>`
    /// (DESIGN §3), read by `etcd://` and `zk://` registries.
    #[default]
    Native,
    /// CoreDNS/SkyDNS etcd keys (reversed labels under the prefix), read by
    /// `skydns+etcd://`.
    SkyDns,
    /// Airbnb Nerve's ephemeral sequential znodes, read by `nerve+zk://` and
    /// by Synapse.
    Nerve,
}

impl Format {
    /// The name `--format` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::SkyDns => "skydns",
            Format::Nerve => "nerve",
        }
    }
}

/// Where and how one service is published: everything a store's publisher
/// needs besides the registration itself.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registry: `etcd://h1:2379/disco`, `zk://h1:2181/disco`, … Its
    /// path is the key prefix (etcd) or the chroot (ZooKeeper).
    pub registry: RegistryUrl,
    /// The format written.
    pub format: Format,
    /// How long the store keeps the registration of a registrar that stopped
    /// answering: the etcd lease TTL, the ZooKeeper session timeout
    /// (`--ttl`).
    pub ttl: Duration,
    /// The DNS zone, for formats whose keys spell the whole name (SkyDNS:
    /// `/skydns/internal/disco/web/web-1`). Lowercase, no trailing dot.
    pub domain: String,
    /// The exact directory the node goes into, when the user gave one (the
    /// DockStack form: `-d zk://h/base -s …:/path` is `/base/path`). `None`:
    /// the format's own layout under the registry's path.
    pub path: Option<String>,
}

/// Why a publisher could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store did not answer or refused the request (connection refused,
    /// timeout, no leader, lost session). The loop keeps checking and
    /// retries with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// The store dropped the registration on its own: an expired lease or
    /// session, a key or node deleted by hand. The loop republishes.
    #[error("registration lost: {0}")]
    Lost(String),
}

/// Puts one service's registration in one store and keeps it there.
///
/// One publisher per service and target; the loop calls it from one task,
/// never two methods at once. Every method may be called in any state (a
/// `withdraw` when nothing is published is a success), so the loop never
/// has to track what the store holds beyond "published or not".
pub trait Publisher: Send {
    /// The registry and key or node, for logs and `/metrics`
    /// (`etcd://127.0.0.1:2379/disco/services/web/web-1`).
    fn describe(&self) -> String;

    /// Makes the store hold `registration`: connects, opens a lease or
    /// session if there is none, and writes the key or node (replacing what
    /// is there, including a lingering node of an older session). Returns
    /// once the store has acknowledged the write.
    fn publish<'a>(
        &'a mut self,
        registration: &'a Instance,
    ) -> PublisherFuture<'a, Result<(), PublishError>>;

    /// Refreshes what keeps the registration alive (an etcd lease
    /// keep-alive). Called every [`Publisher::keep_alive_every`] while
    /// published. `Err(Lost)` when the store says it is gone.
    fn keep_alive(&mut self) -> PublisherFuture<'_, Result<(), PublishError>>;

    /// How often [`Publisher::keep_alive`] is called while published;
    /// `None` when the store's client keeps the session alive by itself.
    fn keep_alive_every(&self) -> Option<Duration>;

    /// Resolves when the store has lost the registration without being
    /// asked to (lease expired, session expired, key or node deleted by
    /// hand, the watch on it broken). Pending forever while nothing is
    /// published. Must be cancel-safe: the loop polls it beside its timers
    /// and drops it to do other work.
    fn lost(&mut self) -> PublisherFuture<'_, PublishError>;

    /// Removes the registration at once (the service failed its checks, or
    /// maintenance began). The lease or session may stay open for the next
    /// publish.
    fn withdraw(&mut self) -> PublisherFuture<'_, Result<(), PublishError>>;

    /// Withdraws and ends the lease or session, for shutdown (SIGTERM).
    /// Best effort: whatever it could not remove expires with the lease or
    /// session.
    fn close(&mut self) -> PublisherFuture<'_, Result<(), PublishError>>;

    /// The store's leader election on this publisher's lease or session
    /// (`--elect`), if the store and format have one.
    fn election(&mut self) -> Option<&mut dyn Election> {
        None
    }
}
