//! What each source's state is, for `/ready`, `/metrics` and the log.

use std::sync::Mutex;
use std::time::SystemTime;

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
}

impl SourceStatus {
    /// Whether the source is synced and not stale.
    pub fn is_current(&self) -> bool {
        self.synced && self.stale_since.is_none()
    }
}

/// The status of every source, shared between the updater (writes) and
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
