//! Finding a data change the watch never delivered. The proof's node count
//! sees a node created or deleted without an event, but not a `setData` on
//! a node that stays: that moves neither the count nor the root's stat
//! (`pzxid` and `cversion` change only with children, `mzxid` only with
//! the root's own data). ZooKeeper has no read that summarises a subtree's
//! data, and the one store-wide position a client could compare, the zxid
//! in every reply's header after `sync`, is both hidden by
//! zookeeper-client 0.11 and moved by writes anywhere in the ensemble
//! (other roots, every session opened or closed), so it cannot say that
//! *this* root changed.
//!
//! So each proof also reads a slice of the nodes disco holds, in turn, and
//! compares each node's `mzxid` with the one disco last read for it: a
//! node the store holds at a newer `mzxid`, or no longer holds, with no
//! event for it delivered before the read's answer, means the watch is
//! behind. The slice is [`MIN_SLICE`] nodes, or a [`ROUNDS`]th of them
//! when that is more, at most [`MAX_SLICE`]: a registry of up to 128 nodes
//! is read whole at every proof; 100,000 nodes take 98 proofs to go round
//! (16 minutes at the default 10 s). The `mzxid`s are kept packed
//! ([`KnownLeaves`]): a million leaves in under 15 MB. Pure, no I/O.

use super::known::{KnownLeaves, Listed};

/// Nodes read at every proof at least.
pub(super) const MIN_SLICE: usize = 128;
/// Proofs to go round every node, when that reads more than [`MIN_SLICE`].
pub(super) const ROUNDS: usize = 30;
/// Nodes read at one proof at most: eight multi-reads.
pub(super) const MAX_SLICE: usize = 1024;

/// A node found newer in the store than in disco, with no event for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Missed {
    /// Its path.
    pub path: String,
    /// The `mzxid` disco last read it at.
    pub seen: i64,
    /// The store's `mzxid` now; `None` when the node is gone.
    pub store: Option<i64>,
}

/// The `mzxid` of every leaf disco last read, and where the next slice
/// starts.
#[derive(Debug, Default)]
pub(super) struct Audit {
    known: KnownLeaves,
    /// What the listing under way has read, until [`Audit::compact`].
    listing: Option<Listed>,
    /// The last path of the previous slice.
    cursor: Option<Box<str>>,
}

impl Audit {
    /// Forgets everything: a new listing follows, whose reads are held
    /// as they come until [`Audit::compact`].
    pub fn clear(&mut self) {
        self.known.clear();
        self.listing = Some(Listed::default());
    }

    /// The leaf at `path` was read at `mzxid`.
    pub fn read(&mut self, path: &str, mzxid: i64) {
        if let Some(listing) = &mut self.listing {
            return listing.push(path, mzxid);
        }
        if self.known.get(path).is_none_or(|known| known < mzxid) {
            self.known.insert(path, mzxid);
        }
    }

    /// The leaf at `path` is gone.
    pub fn gone(&mut self, path: &str) {
        self.compact_listing();
        self.known.remove(path);
    }

    /// Whether what was read since the last [`Audit::compact`] is worth
    /// packing: a listing always is.
    pub fn compaction_due(&self) -> bool {
        self.listing.is_some() || self.known.compaction_due()
    }

    /// Packs what was read since the last compaction: after a listing, and
    /// whenever [`Audit::compaction_due`]. Linear in the leaves (a listing's
    /// sorted too), so off the runtime's worker.
    pub fn compact(&mut self) {
        if self.listing.is_some() {
            self.compact_listing();
        } else {
            self.known.compact();
        }
    }

    fn compact_listing(&mut self) {
        if let Some(listed) = self.listing.take() {
            self.known.load(listed);
        }
    }

    /// The next slice to read, in path order, wrapping round.
    pub fn next_slice(&mut self) -> Vec<String> {
        self.compact_listing();
        let size = (self.known.len() / ROUNDS).clamp(MIN_SLICE, MAX_SLICE);
        let mut slice = self.known.paths_after(self.cursor.as_deref(), size);
        if slice.len() < size {
            // Round again from the start, up to where this slice began.
            let wrap = (self.known.paths_after(None, size - slice.len()).into_iter())
                .filter(|path| !slice.contains(path))
                .collect::<Vec<_>>();
            slice.extend(wrap);
        }
        self.cursor = slice.last().map(|path| path.as_str().into());
        slice
    }

    /// Judges a slice as read (`None`: gone), after every event that
    /// arrived before the read's answer was applied: a node newer in the
    /// store than disco's, or gone while disco still holds it, was missed.
    pub fn judge(&self, read: &[(String, Option<i64>)]) -> Result<(), Missed> {
        debug_assert!(self.listing.is_none(), "a slice was taken first");
        for (path, store) in read {
            let Some(seen) = self.known.get(path) else {
                // Gone from disco since: an event said so.
                continue;
            };
            if store.is_none_or(|store| store > seen) {
                return Err(Missed {
                    path: path.clone(),
                    seen,
                    store: *store,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(n: usize) -> Audit {
        let mut audit = Audit::default();
        for i in 0..n {
            audit.read(&format!("/d/services/web/w{i:06}"), i as i64 + 1);
        }
        audit
    }

    #[test]
    fn a_small_registry_is_read_whole_every_time() {
        let mut audit = holding(3);
        let first = audit.next_slice();
        assert_eq!(first.len(), 3);
        assert_eq!(audit.next_slice(), first);
    }

    #[test]
    fn a_large_registry_is_read_round_in_slices_without_gaps() {
        let mut audit = holding(10_000);
        let size = 10_000 / ROUNDS;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..ROUNDS + 1 {
            let slice = audit.next_slice();
            assert_eq!(slice.len(), size);
            seen.extend(slice);
        }
        assert_eq!(seen.len(), 10_000, "every node within ROUNDS + 1 proofs");
        let mut huge = holding(MAX_SLICE * ROUNDS + 100);
        assert_eq!(huge.next_slice().len(), MAX_SLICE);
    }

    #[test]
    fn a_newer_or_missing_node_with_no_event_is_missed() {
        let mut audit = Audit::default();
        audit.read("/d/a", 5);
        audit.read("/d/b", 6);
        assert!(audit.judge(&[("/d/a".into(), Some(5))]).is_ok());
        let missed = audit.judge(&[("/d/a".into(), Some(9))]).unwrap_err();
        assert_eq!((missed.seen, missed.store), (5, Some(9)));
        assert!(audit.judge(&[("/d/b".into(), None)]).is_err());
        // The event came with the proof and its read was applied first.
        audit.read("/d/a", 9);
        assert!(audit.judge(&[("/d/a".into(), Some(9))]).is_ok());
        audit.gone("/d/b");
        assert!(audit.judge(&[("/d/b".into(), None)]).is_ok());
        // Read newer by the event than by the slice: current.
        audit.read("/d/a", 12);
        assert!(audit.judge(&[("/d/a".into(), Some(9))]).is_ok());
    }
}
