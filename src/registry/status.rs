//! What each source's state is, for `/ready`, `/metrics` and the log.

use std::sync::Mutex;
use std::time::SystemTime;

use super::ResyncCause;

/// The state of one registry source.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    /// Its name (the URL without credentials).
    pub name: String,
    /// Whether its first full listing has arrived.
    pub synced: bool,
    /// Since when the store has been unreachable, if it is.
    pub stale_since: Option<SystemTime>,
    /// Why it is stale.
    pub stale_reason: Option<String>,
    /// Registrations skipped as malformed.
    pub skipped: u64,
    /// The store position last proved or listed (etcd revision, ZooKeeper
    /// zxid), if any yet.
    pub position: Option<i64>,
    /// When the watch last delivered a change.
    pub last_event: Option<SystemTime>,
    /// When the watch was last proved current (or listed).
    pub last_proof: Option<SystemTime>,
    /// How far behind the last proof found the watch (0: current).
    pub lag: i64,
    /// Resyncs so far, by [`ResyncCause`] (indexed as [`ResyncCause::ALL`]).
    pub resyncs: [u64; ResyncCause::ALL.len()],
}

impl SourceStatus {
    /// Resyncs so far for `cause`.
    pub fn resyncs(&self, cause: ResyncCause) -> u64 {
        self.resyncs[cause.index()]
    }

    /// Counts one resync for `cause`.
    pub fn count_resync(&mut self, cause: ResyncCause) {
        self.resyncs[cause.index()] += 1;
    }

    /// Whether the source is synced and not stale.
    pub fn is_current(&self) -> bool {
        self.synced && self.stale_since.is_none()
    }
}

/// The status of every source, shared between the snapshot writer (writes) and
/// the HTTP endpoints (reads). A std Mutex: nothing awaits while it is
/// held, and the query path never touches it.
#[derive(Debug, Default)]
pub struct StatusBoard {
    sources: Mutex<Vec<SourceStatus>>,
}

impl StatusBoard {
    /// A board for sources with these names, none synced yet.
    pub fn new(names: Vec<String>) -> Self {
        let sources = names
            .into_iter()
            .map(|name| SourceStatus {
                name,
                synced: false,
                stale_since: None,
                stale_reason: None,
                skipped: 0,
                position: None,
                last_event: None,
                last_proof: None,
                lag: 0,
                resyncs: [0; ResyncCause::ALL.len()],
            })
            .collect();
        StatusBoard {
            sources: Mutex::new(sources),
        }
    }

    /// A copy of every source's status.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.sources.lock().expect("not poisoned").clone()
    }

    /// Whether every source has delivered its first listing.
    pub fn all_synced(&self) -> bool {
        self.sources
            .lock()
            .expect("not poisoned")
            .iter()
            .all(|s| s.synced)
    }

    /// Changes one source's status.
    pub fn update(&self, source: usize, change: impl FnOnce(&mut SourceStatus)) {
        if let Some(status) = self.sources.lock().expect("not poisoned").get_mut(source) {
            change(status);
        }
    }
}
