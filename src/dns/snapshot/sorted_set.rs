//! A persistent ordered set for many small keys: the addresses that have
//! an instance, asked only whether any of them is in a network.
//!
//! imbl's `OrdSet` inserts one key at a time down its B-tree, copying the
//! path each time: that was a sixth of a million-instance first snapshot
//! (`bench/heap.rs` under perf), and its half-full leaves spend more on a
//! key than the key. Here keys sit packed in sorted runs; an update sorts
//! its batch once, copies the table of runs and each run it touches once,
//! and a first listing is one sort cut into runs.
//!
//! Each family has a set of its own integers ([`AddressSet`]): an IPv4
//! address takes 4 bytes there, where an `IpAddr` takes 17, 12 MiB at a
//! million instances.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The addresses that have an instance, IPv4 and IPv6 apart.
#[derive(Clone, Debug)]
pub(crate) struct AddressSet {
    v4: SortedSet<u32>,
    v6: SortedSet<u128>,
}

impl AddressSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        AddressSet {
            v4: SortedSet::new(),
            v6: SortedSet::new(),
        }
    }

    /// Whether any address lies in `range`, both ends of one family (a
    /// network's first and last).
    pub(crate) fn any_in(&self, range: RangeInclusive<IpAddr>) -> bool {
        match range.into_inner() {
            (IpAddr::V4(start), IpAddr::V4(end)) => self.v4.any_in(start.to_bits()..=end.to_bits()),
            (IpAddr::V6(start), IpAddr::V6(end)) => self.v6.any_in(start.to_bits()..=end.to_bits()),
            _ => false,
        }
    }

    /// Applies a batch of changes, as [`SortedSet::update`].
    pub(crate) fn update(&mut self, changes: Vec<(IpAddr, bool)>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (address, present) in changes {
            match address {
                IpAddr::V4(address) => v4.push((address.to_bits(), present)),
                IpAddr::V6(address) => v6.push((address.to_bits(), present)),
            }
        }
        self.v4.update(v4);
        self.v6.update(v6);
    }
}

/// Keys a run is cut to when it is built or split: room for a run to
/// grow by as much again before it is split.
const RUN_FILL: usize = 1024;
/// The most keys in a run; more and it is split into runs of
/// [`RUN_FILL`]. A million keys make about 1,000 runs, so an update
/// copies a table of some 1,000 pointers and a run of at most 8 KiB (an
/// IPv4 run; 32 KiB for IPv6). Copying a pointer takes a reference on its
/// run, a write into the run's own memory that at a million mostly misses
/// the cache: with runs of 256, the 4,000 taken and dropped per batch were
/// a sixth of disco's CPU under 5,000 changes a second (perf, 2026-12-04).
const RUN_MAX: usize = 2 * RUN_FILL;

/// A set of `K`, cloned in O(1), updated in batches.
#[derive(Clone)]
pub(crate) struct SortedSet<K> {
    /// Non-empty runs, each sorted; every key of a run is below every key
    /// of the next.
    runs: Arc<[Arc<[K]>]>,
}

impl<K: Ord + Clone> SortedSet<K> {
    /// An empty set.
    pub(crate) fn new() -> Self {
        SortedSet { runs: Arc::new([]) }
    }

    /// Whether any key lies in `range`.
    pub(crate) fn any_in(&self, range: RangeInclusive<K>) -> bool {
        let (start, end) = range.into_inner();
        // The first run that has a key at or past `start`.
        let at = (self.runs).partition_point(|run| run.last().is_some_and(|last| *last < start));
        let Some(run) = self.runs.get(at) else {
            return false;
        };
        let first = run.partition_point(|key| *key < start);
        run.get(first).is_some_and(|key| *key <= end)
    }

    /// Applies a batch of changes, each a key and whether it is in the
    /// set from now on; of changes to one key the last one holds.
    pub(crate) fn update(&mut self, mut changes: Vec<(K, bool)>) {
        if changes.is_empty() {
            return;
        }
        // Stable: of a key's changes the last one stays last.
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        changes.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        let mut rest = &changes[..];
        for (at, run) in self.runs.iter().enumerate() {
            // A run takes the changes below the next run's first key.
            let end = match self.runs.get(at + 1) {
                Some(next) => rest.partition_point(|(key, _)| *key < next[0]),
                None => rest.len(),
            };
            let (these, after) = rest.split_at(end);
            rest = after;
            if these.is_empty() {
                runs.push(run.clone());
            } else {
                push_cut(&mut runs, merge(run, these));
            }
        }
        if self.runs.is_empty() {
            push_cut(&mut runs, merge(&[], rest));
        }
        self.runs = runs.into();
    }
}

impl<K: fmt::Debug> fmt::Debug for SortedSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.runs.iter().flat_map(|run| run.iter()))
            .finish()
    }
}

/// `run` with `changes` (sorted by key, each key once) applied, in one
/// pass.
fn merge<K: Ord + Clone>(run: &[K], changes: &[(K, bool)]) -> Vec<K> {
    let mut merged = Vec::with_capacity(run.len() + changes.len());
    let mut rest = run;
    for (key, present) in changes {
        let before = rest.partition_point(|other| other < key);
        merged.extend_from_slice(&rest[..before]);
        rest = &rest[before..];
        if rest.first() == Some(key) {
            rest = &rest[1..];
        }
        if *present {
            merged.push(key.clone());
        }
    }
    merged.extend_from_slice(rest);
    merged
}

/// Pushes `keys` (sorted, all above the runs pushed so far) as runs: none
/// when empty, one when it fits, cut into runs of [`RUN_FILL`] when it is
/// over [`RUN_MAX`]. A run shrunk below a quarter of that joins the run
/// before it, so removals do not leave the table full of tiny runs.
fn push_cut<K: Clone>(runs: &mut Vec<Arc<[K]>>, mut keys: Vec<K>) {
    if keys.is_empty() {
        return;
    }
    if keys.len() < RUN_MAX / 4
        && let Some(before) = runs.last_mut()
        && before.len() + keys.len() <= RUN_MAX
    {
        keys.splice(0..0, before.iter().cloned());
        *before = keys.into();
        return;
    }
    if keys.len() <= RUN_MAX {
        runs.push(keys.into());
        return;
    }
    runs.extend(keys.chunks(RUN_FILL).map(Arc::from));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Whether `set` holds exactly `model`, run by run in order.
    fn holds(set: &SortedSet<u32>, model: &BTreeSet<u32>) -> bool {
        let keys: Vec<u32> = set
            .runs
            .iter()
            .flat_map(|run| run.iter().copied())
            .collect();
        let expected: Vec<u32> = model.iter().copied().collect();
        keys == expected
            && set
                .runs
                .iter()
                .all(|run| !run.is_empty() && run.len() <= RUN_MAX)
    }

    #[test]
    fn batches_of_inserts_and_removals_keep_the_set_a_sorted_set() {
        let mut set = SortedSet::new();
        let mut model = BTreeSet::new();
        // A first listing, then batches that grow, split, shrink and join
        // runs; xorshift keys, sized to the runs.
        let mut rng = 0x9e37_79b9_u32;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng % (80 * RUN_FILL as u32)
        };
        for batch in 0..60 {
            let size = if batch == 0 {
                40 * RUN_FILL
            } else {
                1 + next() as usize % (8 * RUN_FILL)
            };
            let present = batch % 3 != 2;
            let changes: Vec<(u32, bool)> = (0..size).map(|_| (next(), present)).collect();
            for (key, present) in &changes {
                if *present {
                    model.insert(*key);
                } else {
                    model.remove(key);
                }
            }
            let before = set.clone();
            let before_model: Vec<u32> = before.runs.iter().flat_map(|r| r.to_vec()).collect();
            set.update(changes);
            assert!(holds(&set, &model), "batch {batch}");
            // The clone is a snapshot: the update did not reach it.
            let after_clone: Vec<u32> = before.runs.iter().flat_map(|r| r.to_vec()).collect();
            assert_eq!(before_model, after_clone);
        }
    }

    #[test]
    fn addresses_of_each_family_are_found_in_their_networks_only() {
        let net = |text: &str| {
            let net: ipnet::IpNet = text.parse().unwrap();
            net.network()..=net.broadcast()
        };
        let mut set = AddressSet::new();
        let address = |text: &str| text.parse::<IpAddr>().unwrap();
        set.update(vec![
            (address("10.0.0.5"), true),
            (address("fd00::5"), true),
            (address("10.0.0.6"), true),
            (address("10.0.0.6"), false),
        ]);
        assert!(set.any_in(net("10.0.0.0/24")));
        assert!(set.any_in(net("10.0.0.5/32")));
        assert!(!set.any_in(net("10.0.0.6/32")));
        assert!(!set.any_in(net("10.0.1.0/24")));
        assert!(set.any_in(net("fd00::/64")));
        assert!(!set.any_in(net("fd00:1::/64")));
        // 10.0.0.5 as an IPv4-mapped IPv6 address is another address.
        assert!(!set.any_in(net("::ffff:10.0.0.0/120")));
        assert!(!set.any_in(address("10.0.0.0")..=address("fd00::ffff")));
    }

    #[test]
    fn the_last_change_to_a_key_in_a_batch_holds() {
        let mut set = SortedSet::new();
        set.update(vec![(5, true), (5, false), (7, false), (7, true)]);
        assert!(!set.any_in(5..=5));
        assert!(set.any_in(7..=7));
    }

    #[test]
    fn any_in_finds_a_key_in_a_range_and_nothing_between_keys() {
        let mut set = SortedSet::new();
        set.update((0..5_000).map(|k| (k * 10, true)).collect());
        assert!(set.any_in(0..=0));
        assert!(set.any_in(41_005..=41_010));
        assert!(!set.any_in(41_001..=41_009));
        assert!(set.any_in(49_990..=u32::MAX));
        assert!(!set.any_in(49_991..=u32::MAX));
        assert!(!SortedSet::<u32>::new().any_in(0..=u32::MAX));
    }
}
