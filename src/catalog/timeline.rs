//! The change timeline: the last N changes in a ring, each numbered, and a
//! broadcast of each as it is recorded, for the live stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// An instance appeared.
    Added,
    /// An instance went away.
    Removed,
    /// An instance's registration changed (see the fields).
    Changed,
    /// A registry delivered its first listing.
    Synced,
    /// A registry became unreachable, or its watch was found behind.
    Stale,
    /// A registry was listed again (the detail says why).
    Resynced,
    /// A stale registry is current again.
    Current,
}

impl ChangeKind {
    /// The name the API and the page use.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
            ChangeKind::Synced => "synced",
            ChangeKind::Stale => "stale",
            ChangeKind::Resynced => "resynced",
            ChangeKind::Current => "current",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// Its number, from 1, increasing by one per change.
    pub seq: u64,
    /// When disco applied it.
    pub time: SystemTime,
    /// The registry's name.
    pub registry: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The service, for an instance's change.
    pub service: Option<String>,
    /// The instance id, for an instance's change.
    pub instance: Option<String>,
    /// The fields that changed, for [`ChangeKind::Changed`].
    pub fields: Vec<&'static str>,
    /// More, for a registry's change (why it is stale, why resynced).
    pub detail: Option<String>,
}

/// Changes a live stream may fall behind by: one that falls further is
/// closed, and its client reconnects and catches up from the ring.
const LIVE_BACKLOG: usize = 1024;

/// Changes as they are recorded, for one reader.
pub type Live = broadcast::Receiver<Arc<ChangeEvent>>;

/// The last changes, and their live stream.
#[derive(Debug)]
pub struct Timeline {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<ChangeEvent>>,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<ChangeEvent>>,
    capacity: usize,
    last_seq: u64,
}

impl Timeline {
    /// A timeline keeping the last `capacity` changes.
    pub fn new(capacity: usize) -> Self {
        Timeline {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(4096)),
                capacity,
                last_seq: 0,
            }),
            live: broadcast::channel(LIVE_BACKLOG).0,
        }
    }

    /// Records `event`, numbering it.
    pub fn push(&self, mut event: ChangeEvent) {
        let event = {
            let mut ring = self.ring.lock().expect("not poisoned");
            ring.last_seq += 1;
            event.seq = ring.last_seq;
            let event = Arc::new(event);
            if ring.capacity > 0 {
                if ring.events.len() == ring.capacity {
                    ring.events.pop_front();
                }
                ring.events.push_back(event.clone());
            }
            event
        };
        // No receiver is fine: nobody is watching.
        let _ = self.live.send(event);
    }

    /// The most changes in a row that anyone can still be given: the ones
    /// the ring keeps, or a live stream's backlog if that is longer. Of a
    /// longer run of changes only the last these many need be recorded.
    pub fn window(&self) -> usize {
        (self.ring.lock().expect("not poisoned").capacity).max(LIVE_BACKLOG)
    }

    /// Numbers `count` changes without recording them, as if they were
    /// pushed and then pushed out: they fall out of the ring as they would
    /// have, and a live stream sees the gap in the numbers.
    pub fn skip(&self, count: usize) {
        if count == 0 {
            return;
        }
        let mut ring = self.ring.lock().expect("not poisoned");
        ring.last_seq += count as u64;
        let gone = count.min(ring.events.len());
        ring.events.drain(..gone);
    }

    /// The kept changes numbered above `since`, at most `limit`, oldest
    /// first; and the number of the latest change recorded.
    pub fn since(&self, since: u64, limit: usize) -> (Vec<Arc<ChangeEvent>>, u64) {
        let ring = self.ring.lock().expect("not poisoned");
        let first = ring.events.front().map_or(ring.last_seq + 1, |e| e.seq);
        let skip = since.saturating_sub(first - 1) as usize;
        let events = ring.events.iter().skip(skip).take(limit).cloned().collect();
        (events, ring.last_seq)
    }

    /// Changes as they are recorded, with the kept ones above `since`
    /// first (the subscription starts before they are read, so none is
    /// missed between the two), and the number of the latest change
    /// recorded by then: the live changes follow on from it.
    pub fn subscribe(&self, since: u64) -> (Vec<Arc<ChangeEvent>>, u64, Live) {
        let receiver = self.live.subscribe();
        let (kept, latest) = self.since(since, usize::MAX);
        (kept, latest, receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ChangeEvent {
        ChangeEvent {
            seq: 0,
            time: SystemTime::now(),
            registry: "r".into(),
            kind: ChangeKind::Added,
            service: None,
            instance: None,
            fields: Vec::new(),
            detail: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_n_and_pages_by_number() {
        let timeline = Timeline::new(3);
        for _ in 0..5 {
            timeline.push(event());
        }
        let seqs = |since, limit| -> Vec<u64> {
            timeline
                .since(since, limit)
                .0
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(0, 10), [3, 4, 5]);
        assert_eq!(seqs(3, 10), [4, 5]);
        assert_eq!(seqs(4, 1), [5]);
        assert!(seqs(5, 10).is_empty());
        assert!(seqs(99, 10).is_empty());
        assert_eq!(timeline.since(0, 0).1, 5);

        // Two skipped push the two oldest out, as two pushed would.
        timeline.skip(2);
        timeline.push(event());
        assert_eq!(seqs(0, 10), [5, 8]);
        assert_eq!(timeline.since(0, 0).1, 8);
    }
}
