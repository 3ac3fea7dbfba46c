//! The backend contract and the merged registry.
//!
//! A backend (etcd, ZooKeeper, the in-process one used by tests) watches its
//! store and reports through a [`Sink`]: a full listing first, then batches
//! of changes, and "I am stale" / a fresh full listing when it loses and
//! regains the store. The [`Registry`] merges every source into one set of
//! instances and tells the DNS side what changed. Nothing here knows about
//! DNS or about any store.

mod memory;
mod state;
mod status;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{Instance, InstanceId, ServiceName, SkyEntry};

pub use memory::{MemoryBackend, MemoryHandle};
pub use state::{Changes, InstanceChange, RecordChange, Registry};
pub use status::{SourceStatus, StatusBoard};

/// Index of a configured source (one `--registry`), in flag order. When two
/// sources register the same service and instance id, the lower index wins.
pub type SourceId = usize;

/// One change reported by a backend.
#[derive(Debug, Clone)]
pub enum Change {
    /// An instance appeared or changed.
    Put(Instance),
    /// An instance went away.
    Delete {
        /// Its service.
        service: ServiceName,
        /// Its id.
        id: InstanceId,
    },
    /// A SkyDNS entry appeared or changed.
    PutRecord(SkyEntry),
    /// A SkyDNS entry went away.
    DeleteRecord {
        /// Its store key.
        key: String,
    },
}

/// What a backend reports.
#[derive(Debug)]
pub enum Update {
    /// Everything the source holds now; replaces what it reported before.
    /// Sent first, and again after every resync.
    Reset(Vec<Instance>),
    /// The same for a source of SkyDNS entries.
    ResetRecords(Vec<SkyEntry>),
    /// Changes to apply together, in order.
    Changes(Vec<Change>),
    /// The store is unreachable: keep the last data, and say since when.
    Stale {
        /// Why, for `/ready` and the log.
        reason: String,
    },
    /// Entries that could not be read were skipped (counted in `/metrics`).
    Skipped {
        /// How many.
        count: u64,
    },
}

/// An update from one source.
#[derive(Debug)]
pub struct SourceEvent {
    /// Which source.
    pub source: SourceId,
    /// What it says.
    pub update: Update,
}

/// Where a backend sends its updates.
#[derive(Debug, Clone)]
pub struct Sink {
    source: SourceId,
    events: mpsc::UnboundedSender<SourceEvent>,
}

impl Sink {
    /// A sink for `source` feeding `events`.
    pub fn new(source: SourceId, events: mpsc::UnboundedSender<SourceEvent>) -> Self {
        Sink { source, events }
    }

    /// Sends an update; false once the server is shutting down.
    pub fn send(&self, update: Update) -> bool {
        self.events
            .send(SourceEvent {
                source: self.source,
                update,
            })
            .is_ok()
    }
}

/// A registry backend: watches a store and reports through a [`Sink`] until
/// `shutdown` is cancelled.
pub trait Backend: Send + Sync + 'static {
    /// A name for logs and metrics (the registry URL without credentials).
    fn name(&self) -> String;

    /// Runs the watch. Must send an [`Update::Reset`] once it has read the
    /// store, and must keep retrying (reporting [`Update::Stale`]) rather
    /// than return while the store is unreachable.
    fn run(
        self: Arc<Self>,
        sink: Sink,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}
