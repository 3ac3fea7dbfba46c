//! The backend contract and the merged registry.
//!
//! A backend (etcd, ZooKeeper, or one given by an embedding program, as
//! the tests give theirs in `tests/common/memory.rs`) watches its
//! store and reports through a [`Sink`]: a full listing first, then batches
//! of changes, and "I am stale" / a fresh full listing when it loses and
//! regains the store. The [`Registry`] merges every source into one set of
//! instances and tells the DNS side what changed. Nothing here knows about
//! DNS or about any store.

mod report;
mod state;
mod status;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{Instance, InstanceId, ServiceName, SkyEntry};

pub use report::ListingReport;
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
    /// Part of a source's first listing, sent while the rest is still
    /// being read so that it is folded in meanwhile (the store serving the
    /// next pages while disco indexes these). The source reported nothing
    /// before it, so a part only adds; [`Update::Listed`] ends the listing.
    /// A listing that fails half way is followed by a [`Update::Reset`].
    Part(Vec<Instance>),
    /// Every part of the first listing was sent: `count` entries in all.
    Listed {
        /// Entries the listing held.
        count: usize,
    },
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
    /// The watch was proved current: the store says every change up to
    /// `position` (an etcd revision, a ZooKeeper zxid) has been delivered.
    Proved {
        /// The store's position the proof reached.
        position: i64,
        /// How far behind the watch was found before this (0 when it was
        /// current), in the same unit.
        lag: i64,
    },
    /// A fresh listing follows, for this reason. A watch found behind
    /// also makes the source stale until that listing is applied.
    Resync {
        /// Why.
        cause: ResyncCause,
        /// What was seen, for `/ready` and the log.
        detail: String,
    },
}

/// Why a backend lists its store again instead of following its watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResyncCause {
    /// A proof found the watch behind the store (it stopped delivering
    /// while its connection stayed up, or did not answer in time).
    Behind,
    /// The watch ended: etcd closed or cancelled it, or it broke.
    WatchEnded,
    /// The ZooKeeper connection was lost and made again.
    Reconnected,
    /// The ZooKeeper session ended; a new one was opened.
    SessionEnded,
}

impl ResyncCause {
    /// Every cause, in the order `/metrics` shows them.
    pub const ALL: [ResyncCause; 4] = [
        ResyncCause::Behind,
        ResyncCause::WatchEnded,
        ResyncCause::Reconnected,
        ResyncCause::SessionEnded,
    ];

    /// The `cause` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncCause::Behind => "behind",
            ResyncCause::WatchEnded => "watch_ended",
            ResyncCause::Reconnected => "reconnected",
            ResyncCause::SessionEnded => "session_ended",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
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

    /// Runs the watch. Must send an [`Update::Reset`] (or [`Update::Part`]s
    /// and [`Update::Listed`]) once it has read the store, and must keep
    /// retrying (reporting [`Update::Stale`]) rather than return while the
    /// store is unreachable.
    fn run(
        self: Arc<Self>,
        sink: Sink,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}
