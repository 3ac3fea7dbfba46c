//! Logging skipped keys (etcd) and nodes (ZooKeeper) without flooding the
//! log: each at most once per window, at most [`PER_WINDOW`] per window,
//! then a count. A window is one listing and the watch after it, or an hour
//! of watching. Every skip is counted in `/metrics` whether it is logged or
//! not.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Keys logged per window.
const PER_WINDOW: usize = 10;
/// The longest window while a watch runs.
const WINDOW: Duration = Duration::from_secs(3600);

/// What has been logged in the current window.
#[derive(Debug)]
pub(crate) struct SkipLog {
    registry: String,
    logged: HashSet<String>,
    unlogged: u64,
    since: Instant,
}

impl SkipLog {
    /// A log for the registry called `registry`.
    pub fn new(registry: String) -> Self {
        SkipLog {
            registry,
            logged: HashSet::new(),
            unlogged: 0,
            since: Instant::now(),
        }
    }

    /// Starts a window (a new listing).
    pub fn restart(&mut self) {
        self.logged.clear();
        self.unlogged = 0;
        self.since = Instant::now();
    }

    /// Records one skipped key or node, logging it if the window allows.
    pub fn skipped(&mut self, key: &str, reason: &str) {
        if self.since.elapsed() > WINDOW {
            self.restart();
        }
        if self.logged.contains(key) {
            return;
        }
        if self.logged.len() < PER_WINDOW {
            tracing::warn!(registry = %self.registry, key, reason, "skipping a registration");
            self.logged.insert(key.to_owned());
            if self.logged.len() == PER_WINDOW {
                tracing::warn!(registry = %self.registry, "more skipped keys are counted in disco_registry_skipped_total but not logged until the next resync or for an hour");
            }
        } else {
            self.unlogged += 1;
        }
    }

    /// Ends a listing: says how many skipped keys went unlogged in it.
    pub fn listing_done(&mut self) {
        if self.unlogged > 0 {
            tracing::warn!(registry = %self.registry, unlogged = self.unlogged, "skipped more than were logged in this listing");
            self.unlogged = 0;
        }
    }

    /// How many keys have been logged in this window.
    #[cfg(test)]
    fn logged(&self) -> usize {
        self.logged.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_logged_once_and_the_rest_counted() {
        let mut log = SkipLog::new("etcd://x/disco".to_owned());
        for _ in 0..3 {
            log.skipped("/disco/a", "bad");
        }
        assert_eq!(log.logged(), 1);
        for i in 0..100 {
            log.skipped(&format!("/disco/k{i}"), "bad");
        }
        assert_eq!(log.logged(), PER_WINDOW);
        assert_eq!(log.unlogged, 100 - (PER_WINDOW as u64 - 1));
        log.restart();
        assert_eq!((log.logged(), log.unlogged), (0, 0));
    }
}
