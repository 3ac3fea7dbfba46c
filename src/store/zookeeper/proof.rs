//! Proving the watch current without writing: `sync` the root, then count
//! the nodes under it (`getAllChildrenNumber`) and stat it. ZooKeeper
//! delivers a watch event before the answer to any later read on the same
//! connection, so when the count has changed between proofs, node events
//! must have arrived in between; none means the server holds no watch for
//! disco, or its connection stopped delivering. The judgement is pure
//! ([`Window`]); the reads are [`prove`]. The count cannot see a change of
//! a node's data: the same proof reads a slice of the nodes for that
//! (`super::audit`).

use std::time::Duration;

use zookeeper_client::{Client, Error};

use super::listing::{self, Read};

/// What one proof read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    /// Nodes under the root (0 when it does not exist).
    pub nodes: usize,
    /// The zxid of the root's last change or its children's (0 when it
    /// does not exist): the store position disco reports.
    pub zxid: i64,
}

/// Why a proof failed.
pub(super) enum Failed {
    /// No answer within the bound: the connection is not delivering.
    TimedOut,
    /// The read failed (the connection or session is going).
    Error(Error),
}

/// What a proof's slice read: each node's `mzxid`, `None` when it is gone.
pub(super) type Slice = Vec<(String, Option<i64>)>;

/// Syncs `root`, reads its node count and stat, then the nodes of `slice`,
/// all within `bound`.
pub(super) async fn prove(
    client: &Client,
    root: &str,
    bound: Duration,
    slice: Vec<String>,
) -> Result<(Reading, Slice), Failed> {
    let read = async {
        client.sync(root).await?;
        let nodes = match client.count_descendants_number(root).await {
            Ok(n) => n,
            Err(Error::NoNode) => 0,
            Err(e) => return Err(e),
        };
        let zxid = (client.check_stat(root).await?).map_or(0, |stat| stat.mzxid.max(stat.pzxid));
        // After the sync too: the answers follow every event of a change
        // they show.
        let slice = (listing::read_all(client, slice).await?.into_iter())
            .map(|(path, read)| match read {
                Read::Data(_, _, mzxid) => (path, Some(mzxid)),
                Read::Gone => (path, None),
            })
            .collect();
        Ok((Reading { nodes, zxid }, slice))
    };
    match tokio::time::timeout(bound, read).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(e)) => Err(Failed::Error(e)),
        Err(_) => Err(Failed::TimedOut),
    }
}

/// The judgement of the proofs: the node count at a proof after which no
/// node event arrived (the baseline), against each later proof's.
///
/// An event that arrives just after a proof's answer may be taken in with
/// that proof, while its change shows only in the next reading; so a
/// window with events makes the next proof the new baseline rather than
/// judging it. Behind: the count differs from the baseline and no node
/// event has arrived since.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// The reading changes are judged against, once there is one.
    baseline: Option<Reading>,
    /// Node events since the last proof.
    events: usize,
}

/// A watch found behind: what disco had seen and what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Behind {
    /// The baseline (what the watch was last known to match).
    pub seen: Reading,
    /// The reading now.
    pub store: Reading,
}

impl Window {
    /// A window whose baseline is `baseline`, read after the watch was
    /// armed and before the listing.
    pub fn starting_at(baseline: Option<Reading>) -> Self {
        Window {
            baseline,
            events: 0,
        }
    }

    /// Counts node events delivered by the watch.
    pub fn events(&mut self, count: usize) {
        self.events += count;
    }

    /// Takes a proof's reading (after every event that arrived with it was
    /// counted); `Err` when the watch is behind.
    pub fn proved(&mut self, reading: Reading) -> Result<(), Behind> {
        if std::mem::take(&mut self.events) > 0 {
            self.baseline = None;
            return Ok(());
        }
        match self.baseline {
            None => {
                self.baseline = Some(reading);
                Ok(())
            }
            Some(seen) if seen.nodes != reading.nodes => Err(Behind {
                seen,
                store: reading,
            }),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(nodes: usize) -> Reading {
        Reading {
            nodes,
            zxid: nodes as i64,
        }
    }

    #[test]
    fn a_count_that_changes_with_no_event_is_behind() {
        let mut window = Window::default();
        assert!(window.proved(reading(3)).is_ok());
        assert!(window.proved(reading(3)).is_ok());
        // A node was created and the watch said nothing.
        let behind = window.proved(reading(4)).unwrap_err();
        assert_eq!(behind.seen.nodes, 3);
        assert_eq!(behind.store.nodes, 4);
    }

    #[test]
    fn an_event_taken_in_by_the_proof_before_is_no_false_alarm() {
        let mut window = Window::default();
        assert!(window.proved(reading(3)).is_ok());
        // The creation's event arrived just after proof 2's answer and
        // was counted with it; proof 3 sees the new count and no event.
        window.events(1);
        assert!(window.proved(reading(3)).is_ok());
        assert!(window.proved(reading(4)).is_ok());
        assert!(window.proved(reading(4)).is_ok());
    }

    #[test]
    fn a_change_right_after_the_listing_is_caught_by_the_first_proof() {
        let mut window = Window::starting_at(Some(reading(3)));
        assert!(window.proved(reading(4)).is_err());
    }

    #[test]
    fn changes_with_their_events_are_current() {
        let mut window = Window::default();
        for nodes in 3..10 {
            window.events(1);
            assert!(window.proved(reading(nodes)).is_ok());
        }
    }
}
