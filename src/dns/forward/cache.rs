//! The wire cache: prepared upstream answers by question, served as bytes.
//!
//! A hit copies the stored message into the caller's buffer and patches the
//! ID, flags, question and TTLs in place ([`Prepared::write`]); no parse, no
//! encode, and no allocation once the buffer has grown to the answer's
//! size. The map is split into shards, each behind a std mutex held only for
//! the lookup and that copy (nothing awaits under it), so that the UDP
//! threads rarely meet on one lock.
//!
//! Positive and negative answers have separate bounds. Expired entries stay
//! for the serve-stale window (RFC 8767), answered only when every upstream
//! fails; they are the first to go when a shard is full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::wire::{ClientQuery, Prepared};

/// Shards of the map; a power of two.
const SHARDS: usize = 16;

/// How big the cache may grow and how long it keeps things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most positive answers held.
    pub positive: usize,
    /// Most negative answers (NXDOMAIN, NODATA) held.
    pub negative: usize,
    /// Longest TTL an answer is cached (and relayed) with, seconds.
    pub max_ttl: u32,
    /// How long past its TTL an answer may still be served when every
    /// upstream fails (0: never).
    pub stale_window: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            positive: 10_000,
            negative: 5_000,
            max_ttl: 300,
            stale_window: Duration::from_secs(86_400),
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// A live answer was written; its rcode.
    Fresh(u8),
    /// An expired answer within the stale window was written, TTLs 30 s.
    Stale(u8),
}

/// Prepared answers by question.
#[derive(Debug)]
pub struct WireCache {
    shards: Box<[Mutex<Shard>]>,
    limits: CacheLimits,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Box<[u8]>, Entry>,
    negatives: usize,
}

#[derive(Debug)]
struct Entry {
    answer: Arc<Prepared>,
    stored: Instant,
}

impl Entry {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }

    fn fresh(&self, now: Instant) -> bool {
        self.age(now) < Duration::from_secs(u64::from(self.answer.lifetime))
    }

    fn within(&self, now: Instant, stale_window: Duration) -> bool {
        self.age(now) < Duration::from_secs(u64::from(self.answer.lifetime)) + stale_window
    }
}

impl WireCache {
    /// An empty cache with these bounds.
    pub fn new(limits: CacheLimits) -> Self {
        WireCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limits,
        }
    }

    /// Its bounds.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Writes the live answer for `client` into `out`, if there is one.
    pub fn write_fresh(
        &self,
        client: &ClientQuery<'_>,
        now: Instant,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Option<Hit> {
        self.write(client, now, false, limit, out)
    }

    /// Writes an expired answer for `client` within the stale window, with
    /// TTLs of 30 s (RFC 8767 §4), if there is one.
    pub fn write_stale(
        &self,
        client: &ClientQuery<'_>,
        now: Instant,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Option<Hit> {
        self.write(client, now, true, limit, out)
    }

    fn write(
        &self,
        client: &ClientQuery<'_>,
        now: Instant,
        stale: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Option<Hit> {
        let shard = self.shard(client.key());
        let entry = shard.entries.get(client.key())?;
        let usable = if stale {
            entry.within(now, self.limits.stale_window)
        } else {
            entry.fresh(now)
        };
        if !usable {
            return None;
        }
        let age = u32::try_from(entry.age(now).as_secs()).unwrap_or(u32::MAX);
        entry.answer.write(client, age, stale, limit, out);
        let rcode = entry.answer.rcode();
        Some(if stale {
            Hit::Stale(rcode)
        } else {
            Hit::Fresh(rcode)
        })
    }

    /// Stores `answer` under `key` if it is cacheable.
    pub fn insert(&self, key: &[u8], answer: Arc<Prepared>, now: Instant) {
        if answer.lifetime == 0 {
            return;
        }
        let limits = self.limits;
        let per_shard = |total: usize| total.div_ceil(SHARDS);
        let mut shard = self.shard(key);
        let (held, bound) = if answer.negative {
            (shard.negatives, per_shard(limits.negative))
        } else {
            (
                shard.entries.len() - shard.negatives,
                per_shard(limits.positive),
            )
        };
        if held >= bound && !shard.entries.contains_key(key) {
            shard.make_room(answer.negative, bound, now, limits.stale_window);
        }
        let negative = answer.negative;
        let replaced = shard.entries.insert(
            key.into(),
            Entry {
                answer,
                stored: now,
            },
        );
        if replaced.is_some_and(|old| old.answer.negative) {
            shard.negatives -= 1;
        }
        if negative {
            shard.negatives += 1;
        }
    }

    /// Entries held: positive, negative.
    pub fn entries(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(p, n), shard| {
            let shard = lock(shard);
            (
                p + shard.entries.len() - shard.negatives,
                n + shard.negatives,
            )
        })
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        // FNV-1a: cheap, and only picks a shard; the map hashes properly.
        let hash = key.iter().fold(0x811c_9dc5u32, |hash, &byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        lock(&self.shards[hash as usize % SHARDS])
    }
}

/// A shard even if a panic elsewhere poisoned its lock: no operation leaves
/// the map half-updated.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    /// Makes room among the positive or the negative entries: drop every
    /// entry past its stale window, then every expired one of that kind;
    /// if that kind is still at its bound, drop every other one of it.
    /// Crude but bounded and free of bookkeeping; O(n) only once per many
    /// inserts, and what is lost is fetched again on its next query.
    fn make_room(&mut self, negative: bool, bound: usize, now: Instant, stale_window: Duration) {
        self.entries.retain(|_, entry| {
            entry.within(now, stale_window)
                && (entry.answer.negative != negative || entry.fresh(now))
        });
        let held = |shard: &Shard| {
            shard
                .entries
                .values()
                .filter(|e| e.answer.negative == negative)
                .count()
        };
        if held(self) >= bound {
            let mut keep = false;
            self.entries.retain(|_, entry| {
                if entry.answer.negative != negative {
                    return true;
                }
                keep = !keep;
                keep
            });
        }
        self.negatives = self.entries.values().filter(|e| e.answer.negative).count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prepared answer to `name`/A: positive with TTL 60, or NXDOMAIN
    /// with an SOA whose minimum is 30.
    fn prepared(name: &str, negative: bool) -> (Vec<u8>, Arc<Prepared>) {
        let mut question = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            question.push(label.len() as u8);
            question.extend_from_slice(label.as_bytes());
        }
        question.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut bytes = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&question);
        if negative {
            bytes[3] |= 3;
            bytes[9] = 1;
            // SOA at the question's name: names "." and ".", 5 numbers.
            bytes.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 22, 0, 0]);
            bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 30]);
        } else {
            bytes[7] = 1;
            bytes.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        }
        let prepared = Prepared::new(&bytes, &question, 300).unwrap();
        let query = {
            let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            query.extend_from_slice(&question);
            query
        };
        (query, Arc::new(prepared))
    }

    fn limits() -> CacheLimits {
        CacheLimits {
            positive: 64,
            negative: 32,
            max_ttl: 300,
            stale_window: Duration::from_secs(3600),
        }
    }

    /// A cache holding the answer to `name` stored at the instant returned,
    /// and the query that asks for it.
    fn holding(name: &str, negative: bool) -> (WireCache, Vec<u8>, Instant) {
        let cache = WireCache::new(limits());
        let (query, answer) = prepared(name, negative);
        let now = Instant::now();
        cache.insert(ClientQuery::parse(&query).unwrap().key(), answer, now);
        (cache, query, now)
    }

    #[test]
    fn answers_are_fresh_for_their_ttl_then_stale_for_the_window() {
        let (cache, query, now) = holding("a.example.", false);
        let client = ClientQuery::parse(&query).unwrap();
        let mut out = Vec::new();
        let at = |secs| now + Duration::from_secs(secs);
        assert_eq!(
            cache.write_fresh(&client, at(59), 512, &mut out),
            Some(Hit::Fresh(0))
        );
        // TTL 60 aged by 59 s.
        assert_eq!(&out[out.len() - 10..out.len() - 6], &1u32.to_be_bytes());
        assert_eq!(cache.write_fresh(&client, at(60), 512, &mut out), None);
        assert_eq!(
            cache.write_stale(&client, at(60), 512, &mut out),
            Some(Hit::Stale(0))
        );
        assert_eq!(&out[out.len() - 10..out.len() - 6], &30u32.to_be_bytes());
        assert_eq!(
            cache.write_stale(&client, at(60 + 3600), 512, &mut out),
            None
        );
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum() {
        let (cache, query, now) = holding("gone.example.", true);
        let client = ClientQuery::parse(&query).unwrap();
        let mut out = Vec::new();
        let at = |secs| now + Duration::from_secs(secs);
        assert_eq!(
            cache.write_fresh(&client, at(29), 512, &mut out),
            Some(Hit::Fresh(3))
        );
        assert_eq!(cache.write_fresh(&client, at(30), 512, &mut out), None);
        assert_eq!(cache.entries(), (0, 1));
    }

    #[test]
    fn positive_and_negative_entries_stay_within_their_bounds() {
        let cache = WireCache::new(limits());
        let now = Instant::now();
        for i in 0..1_000 {
            let (query, answer) = prepared(&format!("p{i}.example."), false);
            let client = ClientQuery::parse(&query).unwrap();
            cache.insert(client.key(), answer, now);
            let (query, answer) = prepared(&format!("n{i}.example."), true);
            let client = ClientQuery::parse(&query).unwrap();
            cache.insert(client.key(), answer, now);
            let (positive, negative) = cache.entries();
            assert!(
                positive <= 64 + SHARDS && negative <= 32 + SHARDS,
                "{positive} {negative}"
            );
        }
        // The newest is always kept.
        let (query, _) = prepared("p999.example.", false);
        let client = ClientQuery::parse(&query).unwrap();
        assert!(
            cache
                .write_fresh(&client, now, 512, &mut Vec::new())
                .is_some()
        );
    }
}
