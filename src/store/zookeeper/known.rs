//! The `mzxid` of every leaf the audit holds, packed. A
//! `BTreeMap<Box<str>, i64>` of a million leaves took 90 MiB (the path's
//! own block, about 48 bytes, and a B-tree's share of a 24-byte entry);
//! this takes under 15.
//!
//! The paths are kept sorted and front-coded: each keeps only the bytes
//! that differ from the path before it, after one byte saying how many it
//! shares and one saying how many follow (`services/web/web-7` after
//! `services/web/web-6` is 1 + 1 + 1 bytes), and every [`BLOCK`]th is kept
//! whole, so that a search starts there. Beside them, each block's start
//! (4 bytes) and each path's `mzxid` (8). Changes
//! since the packed paths were built go to a small ordered overlay, merged
//! in by [`KnownLeaves::compact`] once the overlay holds more than an
//! eighth as many. Pure, no I/O.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Paths in a block: the first whole, the rest front-coded against the one
/// before. A lookup decodes at most this many.
const BLOCK: usize = 16;

/// Changes held in the overlay before [`KnownLeaves::compaction_due`], at
/// least: below this a merge costs more than the overlay it frees.
const MIN_OVERLAY: usize = 4096;

/// Leaf paths and their `mzxid`s.
#[derive(Debug, Default)]
pub(super) struct KnownLeaves {
    packed: Packed,
    /// Changes since `packed` was built; `None`: gone from it.
    overlay: BTreeMap<Box<str>, Option<i64>>,
    len: usize,
}

impl KnownLeaves {
    /// How many leaves are known.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets every leaf.
    pub fn clear(&mut self) {
        *self = KnownLeaves::default();
    }

    /// Holds exactly the leaves of `listed`.
    pub fn load(&mut self, listed: Listed) {
        self.packed = listed.packed();
        self.overlay = BTreeMap::new();
        self.len = self.packed.len();
    }

    /// The `mzxid` known for `path`.
    pub fn get(&self, path: &str) -> Option<i64> {
        match self.overlay.get(path) {
            Some(changed) => *changed,
            None => self.packed.get(path),
        }
    }

    /// `path` is at `mzxid`.
    pub fn insert(&mut self, path: &str, mzxid: i64) {
        if self.get(path).is_none() {
            self.len += 1;
        }
        match self.overlay.get_mut(path) {
            Some(changed) => *changed = Some(mzxid),
            None => {
                self.overlay.insert(path.into(), Some(mzxid));
            }
        }
    }

    /// `path` is gone.
    pub fn remove(&mut self, path: &str) {
        if self.get(path).is_none() {
            return;
        }
        self.len -= 1;
        if self.packed.get(path).is_some() {
            self.overlay.insert(path.into(), None);
        } else {
            self.overlay.remove(path);
        }
    }

    /// Up to `count` paths after `after` (from the first when `None`), in
    /// order.
    pub fn paths_after(&self, after: Option<&str>, count: usize) -> Vec<String> {
        let (from, overlay) = match after {
            Some(after) => (
                self.packed.position_after(after),
                self.overlay
                    .range::<str, _>((Bound::Excluded(after), Bound::Unbounded)),
            ),
            None => (0, self.overlay.range::<str, _>(..)),
        };
        merged(self.packed.iter_from(from), overlay)
            .map(|(path, _)| path)
            .take(count)
            .collect()
    }

    /// Whether the overlay has grown enough to be merged in.
    pub fn compaction_due(&self) -> bool {
        self.overlay.len() > MIN_OVERLAY.max(self.packed.len() / 8)
    }

    /// Merges the overlay into the packed paths. Linear in the leaves: a
    /// million take tens of milliseconds, so the caller runs it off the
    /// runtime's worker.
    pub fn compact(&mut self) {
        let overlay = std::mem::take(&mut self.overlay);
        let mut packing = Packing::default();
        for (path, mzxid) in merged(self.packed.iter_from(0), overlay.range::<str, _>(..)) {
            packing.push(&path, mzxid);
        }
        self.packed = packing.done();
    }
}

/// The packed paths and the overlay's range, merged in order: the
/// overlay's entry wins over a packed one of the same path, and its gone
/// entries are left out.
fn merged<'a>(
    packed: impl Iterator<Item = (String, i64)> + 'a,
    overlay: impl Iterator<Item = (&'a Box<str>, &'a Option<i64>)> + 'a,
) -> impl Iterator<Item = (String, i64)> + 'a {
    let mut packed = packed.peekable();
    let mut overlay = overlay.peekable();
    std::iter::from_fn(move || {
        loop {
            let order = match (packed.peek(), overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((path, _)), Some((changed, _))) => path.as_str().cmp(changed),
            };
            match order {
                Ordering::Less => return packed.next(),
                // The overlay's says what holds now.
                Ordering::Equal => drop(packed.next()),
                Ordering::Greater => {}
            }
            let (path, mzxid) = overlay.next().expect("peeked");
            if let Some(mzxid) = mzxid {
                return Some((path.to_string(), *mzxid));
            }
        }
    })
}

/// Sorted, front-coded paths and their `mzxid`s.
#[derive(Debug, Default)]
struct Packed {
    /// Each path in turn: how many bytes it shares with the path before
    /// (0 at a block's first), how many bytes follow (LEB128), those bytes.
    bytes: Vec<u8>,
    /// Where each block's first path starts in `bytes`.
    block_starts: Vec<u32>,
    mzxids: Vec<i64>,
}

/// Appends `len` in LEB128: one byte below 128.
fn push_len(bytes: &mut Vec<u8>, mut len: usize) {
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

/// The LEB128 length at `at`, and where what it counts starts.
fn read_len(bytes: &[u8], mut at: usize) -> (usize, usize) {
    let (mut len, mut shift) = (0, 0);
    loop {
        let byte = bytes[at];
        at += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (len, at);
        }
        shift += 7;
    }
}

impl Packed {
    fn len(&self) -> usize {
        self.mzxids.len()
    }

    /// The path starting at byte `at` decoded onto `path`, which holds the
    /// path before it (or anything at a block's first); where the next
    /// path starts.
    fn decode_at(&self, at: usize, path: &mut Vec<u8>) -> usize {
        let shared = usize::from(self.bytes[at]);
        let (len, at) = read_len(&self.bytes, at + 1);
        path.truncate(shared);
        path.extend_from_slice(&self.bytes[at..at + len]);
        at + len
    }

    /// The path that starts block `block`, whole.
    fn block_first(&self, block: usize) -> &[u8] {
        let at = self.block_starts[block] as usize;
        let (len, at) = read_len(&self.bytes, at + 1);
        &self.bytes[at..at + len]
    }

    /// Where `path` is, or where it would go.
    fn search(&self, path: &str) -> Result<usize, usize> {
        // The first block whose first path is after `path`; `path` is in
        // the one before it, if anywhere.
        let (mut block, mut end) = (0, self.len().div_ceil(BLOCK));
        while block < end {
            let middle = (block + end) / 2;
            if self.block_first(middle) <= path.as_bytes() {
                block = middle + 1;
            } else {
                end = middle;
            }
        }
        if block == 0 {
            return Err(0);
        }
        let first = (block - 1) * BLOCK;
        let mut decoded = Vec::new();
        let mut at = self.block_starts[block - 1] as usize;
        for i in first..(first + BLOCK).min(self.len()) {
            at = self.decode_at(at, &mut decoded);
            match decoded.as_slice().cmp(path.as_bytes()) {
                Ordering::Less => {}
                Ordering::Equal => return Ok(i),
                Ordering::Greater => return Err(i),
            }
        }
        Err((first + BLOCK).min(self.len()))
    }

    fn get(&self, path: &str) -> Option<i64> {
        self.search(path).ok().map(|i| self.mzxids[i])
    }

    /// The position of the first path after `path`.
    fn position_after(&self, path: &str) -> usize {
        match self.search(path) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The paths from position `from` on, in order.
    fn iter_from(&self, from: usize) -> impl Iterator<Item = (String, i64)> + '_ {
        let mut decoded = Vec::new();
        // Decoding starts at the block's first, which is whole.
        let start = from - from % BLOCK;
        let mut at = (self.block_starts.get(start / BLOCK)).map_or(0, |&at| at as usize);
        (start..self.len()).filter_map(move |i| {
            at = self.decode_at(at, &mut decoded);
            (i >= from).then(|| {
                let path = String::from_utf8(decoded.clone()).expect("packed from strings");
                (path, self.mzxids[i])
            })
        })
    }
}

/// The leaves a listing read, in the order it read them, for
/// [`KnownLeaves::load`]. Kept in two large blocks rather than one small
/// one per path: a listing's parse also allocates what stays (the
/// registrations), and small blocks freed among those would be kept from
/// the system (a million from ZooKeeper: 546 → 530 MiB when the paths went
/// to a map first, the map's pages still half held).
#[derive(Debug, Default)]
pub(super) struct Listed {
    bytes: Vec<u8>,
    /// Each path's start and length in `bytes`, and its `mzxid`.
    leaves: Vec<(u32, u32, i64)>,
}

impl Listed {
    /// The leaf at `path` was read at `mzxid`.
    pub fn push(&mut self, path: &str, mzxid: i64) {
        let start = u32::try_from(self.bytes.len()).expect("under 4 GiB of paths");
        self.bytes.extend_from_slice(path.as_bytes());
        let len = u32::try_from(path.len()).expect("a path is short");
        self.leaves.push((start, len, mzxid));
    }

    /// Sorted and packed. Paths under one root share most of their bytes,
    /// so each is sorted first by the 8 bytes after what every path shares
    /// (a service's name, mostly), and only ties compare whole paths.
    fn packed(self) -> Packed {
        let bytes = self.bytes.as_slice();
        let path = |leaf: &(u32, u32, i64)| path_in(bytes, leaf);
        let shared = match self.leaves.first() {
            Some(first) => {
                let first = path(first);
                (self.leaves.iter().map(path))
                    .map(|other| first.iter().zip(other).take_while(|(a, b)| a == b).count())
                    .min()
                    .unwrap_or(0)
            }
            None => 0,
        };
        let key = |leaf: &(u32, u32, i64)| {
            let mut key = [0u8; 8];
            let rest = path(leaf).get(shared..).unwrap_or_default();
            let n = rest.len().min(8);
            key[..n].copy_from_slice(&rest[..n]);
            u64::from_be_bytes(key)
        };
        let mut order: Vec<(u64, u32)> = (self.leaves.iter().enumerate())
            .map(|(i, leaf)| (key(leaf), i as u32))
            .collect();
        order.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0)).then_with(|| {
                path(&self.leaves[a.1 as usize]).cmp(path(&self.leaves[b.1 as usize]))
            })
        });
        let mut packing = Packing::default();
        let mut previous: Option<&[u8]> = None;
        for (_, i) in order {
            let leaf = &self.leaves[i as usize];
            // A path read twice is kept once, at the later read.
            if previous == Some(path(leaf)) {
                packing.replace_last(leaf.2.max(*packing.packed.mzxids.last().expect("pushed")));
                continue;
            }
            packing.push(
                std::str::from_utf8(path(leaf)).expect("pushed as a str"),
                leaf.2,
            );
            previous = Some(path(leaf));
        }
        packing.done()
    }
}

/// A [`Listed`] leaf's path.
fn path_in<'b>(bytes: &'b [u8], &(start, len, _): &(u32, u32, i64)) -> &'b [u8] {
    &bytes[start as usize..(start + len) as usize]
}

/// Builds a [`Packed`] from paths pushed in order.
#[derive(Default)]
struct Packing {
    packed: Packed,
    last: Vec<u8>,
}

impl Packing {
    fn push(&mut self, path: &str, mzxid: i64) {
        let packed = &mut self.packed;
        let path = path.as_bytes();
        let shared = if packed.len().is_multiple_of(BLOCK) {
            0
        } else {
            (self.last.iter().zip(path))
                .take(u8::MAX as usize)
                .take_while(|(a, b)| a == b)
                .count()
        };
        if packed.len().is_multiple_of(BLOCK) {
            let at = u32::try_from(packed.bytes.len()).expect("under 4 GiB of paths");
            packed.block_starts.push(at);
        }
        packed.bytes.push(shared as u8);
        push_len(&mut packed.bytes, path.len() - shared);
        packed.bytes.extend_from_slice(&path[shared..]);
        packed.mzxids.push(mzxid);
        self.last.clear();
        self.last.extend_from_slice(path);
    }

    /// The last path pushed is at `mzxid` instead.
    fn replace_last(&mut self, mzxid: i64) {
        *self.packed.mzxids.last_mut().expect("pushed") = mzxid;
    }

    fn done(mut self) -> Packed {
        let packed = &mut self.packed;
        packed.bytes.shrink_to_fit();
        packed.block_starts.shrink_to_fit();
        packed.mzxids.shrink_to_fit();
        self.packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic shuffle of operations, checked against a BTreeMap
    /// after each, with compactions at random points.
    #[test]
    fn holds_what_a_btreemap_would_through_changes_and_compactions() {
        let mut known = KnownLeaves::default();
        let mut model = BTreeMap::<String, i64>::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..20_000 {
            let r = next();
            let path = format!("/d/services/svc{}/svc{}-{}", r % 37, r % 37, (r >> 8) % 13);
            match (r >> 16) % 10 {
                0..=5 => {
                    known.insert(&path, step);
                    model.insert(path.clone(), step);
                }
                6..=8 => {
                    known.remove(&path);
                    model.remove(&path);
                }
                _ => known.compact(),
            }
            assert_eq!(known.get(&path), model.get(&path).copied(), "step {step}");
            assert_eq!(known.len(), model.len(), "step {step}");
            if step % 97 == 0 {
                let after = (r % 3 != 0).then_some(path.as_str());
                let expected: Vec<String> = match after {
                    Some(after) => (model
                        .range::<str, _>((Bound::Excluded(after), Bound::Unbounded)))
                    .map(|(p, _)| p.clone())
                    .take(40)
                    .collect(),
                    None => model.keys().take(40).cloned().collect(),
                };
                assert_eq!(known.paths_after(after, 40), expected, "step {step}");
            }
        }
        known.compact();
        for (path, mzxid) in &model {
            assert_eq!(known.get(path), Some(*mzxid));
        }
        assert_eq!(
            known.paths_after(None, usize::MAX),
            model.keys().cloned().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_listing_read_in_any_order_is_held_in_order_the_later_read_of_a_path_kept() {
        let mut listed = Listed::default();
        let mut model = BTreeMap::new();
        // Services and instances in a scrambled order, some paths shorter
        // than the 8 bytes after the shared prefix, one read twice.
        for n in (0..500u64).map(|n| n * 7919 % 500) {
            let path = format!("/root/services/s{}/i{}", n % 23, n / 23);
            listed.push(&path, n as i64);
            model.insert(path, n as i64);
        }
        listed.push("/root/services/s1/i1", 1000);
        model.insert("/root/services/s1/i1".into(), 1000);
        listed.push("/root/services/s", 7);
        model.insert("/root/services/s".into(), 7);
        let mut known = KnownLeaves::default();
        known.load(listed);
        assert_eq!(known.len(), model.len());
        assert_eq!(
            known.paths_after(None, usize::MAX),
            model.keys().cloned().collect::<Vec<_>>()
        );
        for (path, mzxid) in &model {
            assert_eq!(known.get(path), Some(*mzxid), "{path}");
        }
    }

    #[test]
    fn a_path_sharing_more_than_255_bytes_with_the_one_before_is_kept_whole() {
        let long = "x".repeat(300);
        let mut known = KnownLeaves::default();
        for i in 0..5 {
            known.insert(&format!("/{long}/{i}"), i);
        }
        known.compact();
        for i in 0..5 {
            assert_eq!(known.get(&format!("/{long}/{i}")), Some(i));
        }
    }

    #[test]
    fn leaves_take_under_15_bytes_each_once_compacted() {
        let mut known = KnownLeaves::default();
        for s in 0..10_000 {
            for i in 0..10 {
                known.insert(
                    &format!("/scale1000000/services/svc{s}/svc{s}-{i}"),
                    1 << 32 | s,
                );
            }
        }
        known.compact();
        let packed = &known.packed;
        let bytes = packed.bytes.capacity()
            + 4 * packed.block_starts.capacity()
            + 8 * packed.mzxids.capacity();
        assert!(bytes < 15 * 100_000, "{bytes} bytes for 100,000 leaves");
    }
}
