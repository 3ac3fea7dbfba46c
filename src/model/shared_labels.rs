//! One copy of each short label that many instances repeat (port names:
//! a million instances with `http` and `metrics` would otherwise hold two
//! million copies of two words, each a heap block of its own).
//!
//! Shared by the whole process, so that every parser, whatever the store
//! or the source, gets the same copies without being handed a table. It
//! cannot grow without bound under churn: once it has doubled since it was
//! last pruned, it drops the labels no one else holds.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Labels below this count are never pruned: a small table costs nothing.
const SMALLEST_PRUNE: usize = 64;

/// The process's shared labels.
static SHARED: LazyLock<Mutex<Labels>> = LazyLock::new(|| Mutex::new(Labels::default()));

/// The shared copy of `label`.
pub(super) fn shared(label: &str) -> Arc<str> {
    // A std Mutex: nothing awaits while it is held, and it is held for one
    // lookup.
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(label)
}

/// A table of labels, pruned as it grows.
#[derive(Debug)]
struct Labels {
    labels: HashSet<Arc<str>>,
    /// The size at which the next insertion prunes first.
    prune_at: usize,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            labels: HashSet::new(),
            prune_at: SMALLEST_PRUNE,
        }
    }
}

impl Labels {
    fn get(&mut self, label: &str) -> Arc<str> {
        if let Some(shared) = self.labels.get(label) {
            return shared.clone();
        }
        if self.labels.len() >= self.prune_at {
            // Held by the table alone: no instance has it any more.
            self.labels.retain(|l| Arc::strong_count(l) > 1);
            self.prune_at = (self.labels.len() * 2).max(SMALLEST_PRUNE);
        }
        let shared: Arc<str> = label.into();
        self.labels.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_shared_while_held_and_pruned_once_not() {
        let mut table = Labels::default();
        let http = table.get("http");
        assert!(Arc::ptr_eq(&http, &table.get("http")));
        // Churn of labels no one keeps: the table stays within twice what
        // is held, and what is held stays shared.
        for n in 0..10_000 {
            table.get(&format!("churn{n}"));
            assert!(table.labels.len() <= SMALLEST_PRUNE + 1);
        }
        assert!(Arc::ptr_eq(&http, &table.get("http")));
        let kept: Vec<Arc<str>> = (0..1000).map(|n| table.get(&format!("kept{n}"))).collect();
        for n in 0..10_000 {
            table.get(&format!("more{n}"));
            assert!(table.labels.len() <= 2 * (kept.len() + 1) + 1);
        }
        assert!(Arc::ptr_eq(&kept[7], &table.get("kept7")));
    }

    #[test]
    fn the_process_table_gives_one_copy() {
        assert!(Arc::ptr_eq(&shared("metrics"), &shared("metrics")));
    }
}
