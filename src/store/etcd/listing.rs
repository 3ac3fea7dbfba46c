//! The full listing of a prefix at one revision, read in pages so that a
//! large registry (100,000 keys and more) never needs one huge response.
//!
//! etcd (3.4 at least) counts every key between a page's start and its
//! range end for every page, even with a limit: pages that each reach to
//! the end of the prefix cost O(n²), and a million keys took over 30 s of
//! etcd's CPU in pages of 4 MiB (`bench/scale.sh`; a count of a million
//! keys is about a second). So after the first page each request is a
//! window about a page wide, sized from where the keys seen so far lie.
//! A task of its own asks for the pages, the next [`IN_FLIGHT`] windows
//! ahead of the answer awaited, while the listing's caller parses the
//! pages already answered.

use std::collections::VecDeque;

use etcd_client::{GetOptions, GetResponse, KeyValue, KvClient};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::error::Elapsed;
use tokio_util::task::AbortOnDropHandle;

use super::connect::{REQUEST_TIMEOUT, describe};
use crate::heavy::without_stalling;

/// Keys in the first page. Later pages are sized from the bytes per key
/// seen so far, to about [`PAGE_BYTES`].
const FIRST_PAGE_KEYS: i64 = 1000;
/// The size a page aims at: fewer round trips, at a few MiB held at once.
const PAGE_BYTES: usize = 4 << 20;
/// The most keys in one page.
const MAX_PAGE_KEYS: i64 = 200_000;
/// Requests asked for at once. A window is rarely the size it aims at
/// (keys are not spread evenly over the bytes that place them: 20,000
/// keys, then 2,000, then none), and with one request ahead etcd answered
/// a small one and waited while disco parsed a big one. Three took a
/// million keys' listing from 7.6 to 7.0 s; eight did no better
/// (`bench/cold_start.sh`).
const IN_FLIGHT: usize = 3;
/// Answered pages held for the parse at most: two pages of about
/// [`PAGE_BYTES`] wait while one is parsed, and etcd is not asked for more
/// until the parse catches up.
const PAGES_AHEAD: usize = 2;

/// One key of the listing.
pub(super) enum Listed {
    /// A key and its value.
    Kv(KeyValue),
    /// A key whose value alone is larger than the response limit: skipped
    /// unread.
    TooLarge(Vec<u8>),
}

/// Why a listing failed.
pub(super) enum ListError {
    /// The revision the listing started at was compacted between pages:
    /// start again.
    Compacted,
    /// etcd did not answer, or refused.
    Failed(String),
}

/// One request of the listing: the keys in `[start, end)`, at most `limit`,
/// part of the window that ends at `through`.
#[derive(Clone)]
struct Page {
    start: Vec<u8>,
    end: Vec<u8>,
    limit: i64,
    through: Vec<u8>,
}

/// What a page's answer held: its first and last keys, how many, and
/// their keys' and values' bytes.
struct Held<'a> {
    first: &'a [u8],
    last: &'a [u8],
    keys: usize,
    bytes: usize,
}

impl<'a> Held<'a> {
    fn of(kvs: &'a [KeyValue]) -> Option<Self> {
        Some(Held {
            first: kvs.first()?.key(),
            last: kvs.last()?.key(),
            keys: kvs.len(),
            bytes: kvs.iter().map(|kv| kv.key().len() + kv.value().len()).sum(),
        })
    }
}

/// Reads every key under `prefix` at one revision, page by page, handing
/// each to `each` in key order (off the runtime's worker, see
/// [`crate::heavy`]); returns that revision.
///
/// The pages are asked for by a task of their own ([`fetch`]), which asks
/// for the next one as soon as an answer says where it starts: when the
/// loop that parses also asked, the next page of a window that held more
/// than a page waited for the parse of the one before, and etcd and disco
/// took turns (a million keys: 3.9 s of listing for 1.9 s of parsing and
/// about as much of etcd's serving).
pub(super) async fn list(
    kv: &KvClient,
    prefix: &str,
    mut each: impl FnMut(Listed),
) -> Result<i64, ListError> {
    let (pages, mut fetched) = mpsc::channel(PAGES_AHEAD);
    // Aborted if the listing is dropped half way (its watch ended).
    let fetcher = AbortOnDropHandle::new(tokio::spawn(fetch(kv.clone(), prefix.to_owned(), pages)));
    while let Some(page) = fetched.recv().await {
        match page {
            Fetched::Page(kvs) => without_stalling(|| {
                for kv in kvs {
                    each(Listed::Kv(kv));
                }
            }),
            Fetched::TooLarge(key) => each(Listed::TooLarge(key)),
        }
    }
    // The fetcher closed the channel: it is done, or failed.
    match fetcher.await {
        Ok(listed) => listed,
        Err(e) => Err(ListError::Failed(format!("listing {prefix}: {e}"))),
    }
}

/// What [`fetch`] hands the parsing loop, in key order.
enum Fetched {
    /// A page's keys and values.
    Page(Vec<KeyValue>),
    /// A key whose value alone is over the response limit.
    TooLarge(Vec<u8>),
}

/// Asks for every page of the listing of `prefix` and sends each answer
/// to `pages` in key order; returns the revision read at. Stops when the
/// receiver is gone.
async fn fetch(
    mut kv: KvClient,
    prefix: String,
    pages: mpsc::Sender<Fetched>,
) -> Result<i64, ListError> {
    let kv = &mut kv;
    let prefix = prefix.as_str();
    let (mut plan, first) = Plan::new(prefix.as_bytes());
    // 0 reads the newest revision; the first page fixes it for the rest,
    // so it is asked for alone.
    let mut revision = 0;
    // Requests in key order: each page's keys come before the next one's.
    let mut asked = VecDeque::from([(first.clone(), ask(kv, &first, revision))]);
    while let Some((mut page, pending)) = asked.pop_front() {
        let mut response = match answer(pending, prefix).await? {
            Ok(response) => response,
            Err(e) if is_too_large(&e) && page.limit > 1 => {
                // Some value in this page is huge: smaller pages until the
                // page is that value alone.
                page.limit = (page.limit / 8).max(1);
                asked.push_front((page.clone(), ask(kv, &page, revision)));
                continue;
            }
            Err(e) if is_too_large(&e) => {
                let key = first_key(kv, &page.start, &page.end, revision).await?;
                page.start = after(&key);
                if pages.send(Fetched::TooLarge(key)).await.is_err() {
                    break;
                }
                asked.push_front((page.clone(), ask(kv, &page, revision)));
                continue;
            }
            Err(e) if is_compacted(&e) => return Err(ListError::Compacted),
            Err(e) => {
                return Err(ListError::Failed(format!(
                    "listing {prefix}: {}",
                    describe(&e)
                )));
            }
        };
        if revision == 0 {
            revision = response.header().map_or(0, |h| h.revision());
        }
        let more = response.more();
        let kvs = response.take_kvs();
        // Asked for before this page is handed on: first the rest of this
        // page's window, then windows after the last one asked for.
        if let Some(rest) = plan.answered(&page, more, Held::of(&kvs)) {
            asked.push_front((rest.clone(), ask(kv, &rest, revision)));
        }
        while asked.len() < IN_FLIGHT {
            let Some(window) = plan.next_window() else {
                break;
            };
            asked.push_back((window.clone(), ask(kv, &window, revision)));
        }
        if pages.send(Fetched::Page(kvs)).await.is_err() {
            break;
        }
    }
    Ok(revision)
}

/// Which pages a listing asks for, from the answers so far: the first
/// page spans the whole prefix; after it, windows about a page of keys
/// wide follow each other to the end of the range, so no key is left
/// between them, and a window that held more than a page is read to its
/// end before the keys after it.
struct Plan {
    range: Range,
    /// Where the next window starts; `None` while no window is due (before
    /// the first page's answer, and once the windows reach the range's
    /// end).
    frontier: Option<Vec<u8>>,
    /// The next window's width, in positions ([`Range::position`]).
    span: u128,
    /// The next page's limit.
    limit: i64,
}

impl Plan {
    /// The plan of a listing of `prefix`, and its first page.
    fn new(prefix: &[u8]) -> (Self, Page) {
        let range = Range::new(prefix);
        // Nothing is known yet of where the keys lie: the first page spans
        // the whole prefix.
        let first = Page {
            start: prefix.to_vec(),
            end: range.end.clone(),
            limit: FIRST_PAGE_KEYS,
            through: range.end.clone(),
        };
        let plan = Plan {
            range,
            frontier: None,
            span: 1,
            limit: FIRST_PAGE_KEYS,
        };
        (plan, first)
    }

    /// Takes the answer to `page`, which `held` what it did and said
    /// whether `more` keys are left in it; gives the next part of its
    /// window, to be read before any window after it. Windows, and the
    /// parts of one that held more than a page, span about seven eighths of
    /// a page of keys, as far apart as this page's were; after a page of one
    /// key or none, eight times wider.
    fn answered(&mut self, page: &Page, more: bool, held: Option<Held>) -> Option<Page> {
        let (keys, bytes) = held.as_ref().map_or((0, 0), |held| (held.keys, held.bytes));
        self.limit = next_limit(page.limit, keys, bytes);
        match &held {
            Some(held) if held.keys > 1 => {
                let spanned = self.range.position(held.last) - self.range.position(held.first) + 1;
                let wanted = u128::try_from(self.limit).unwrap_or(1) * 7 / 8;
                self.span = (spanned / held.keys as u128)
                    .max(1)
                    .saturating_mul(wanted.max(1));
            }
            _ => self.span = self.span.saturating_mul(8),
        }
        let next = match held.filter(|_| more) {
            Some(held) if page.end == self.range.end => {
                // The first page, or a window that reached the end: windows
                // from here, never one request that etcd would count to
                // the end.
                self.frontier = Some(after(held.last));
                return None;
            }
            Some(held) => after(held.last),
            None if page.end == page.through => return None,
            None => page.end.clone(),
        };
        // The rest of a window a page at a time: one request for all of
        // it would count every key to its end, again for each page.
        Some(self.window(next, page.through.clone()))
    }

    /// A window from `start`, `span` wide, ending at `through` at most.
    fn window(&self, start: Vec<u8>, through: Vec<u8>) -> Page {
        let reach = self
            .range
            .key_at(self.range.position(&start).checked_add(self.span));
        let end = if through != self.range.end && reach > through {
            through.clone()
        } else {
            reach
        };
        Page {
            start,
            end,
            limit: self.limit,
            through,
        }
    }

    /// The next window, if the windows have not reached the range's end.
    fn next_window(&mut self) -> Option<Page> {
        let start = self.frontier.take()?;
        let mut window = self.window(start, self.range.end.clone());
        window.through = window.end.clone();
        if window.end != self.range.end {
            self.frontier = Some(window.end.clone());
        }
        Some(window)
    }
}

/// A request sent by [`ask`]: etcd's answer, or the timeout's.
type Pending = JoinHandle<Result<Result<GetResponse, etcd_client::Error>, Elapsed>>;

/// Sends the request for `page`, at `revision` (0 for the newest); it goes
/// on while the caller parses the page before.
fn ask(kv: &KvClient, page: &Page, revision: i64) -> Pending {
    let mut kv = kv.clone();
    let options = GetOptions::new()
        .with_range(page.end.clone())
        .with_limit(page.limit)
        .with_revision(revision);
    let start = page.start.clone();
    tokio::spawn(async move {
        tokio::time::timeout(REQUEST_TIMEOUT, kv.get(start, Some(options))).await
    })
}

/// The answer to a request sent by [`ask`]: etcd's, or why none came.
async fn answer(
    pending: Pending,
    prefix: &str,
) -> Result<Result<GetResponse, etcd_client::Error>, ListError> {
    match pending.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(_)) => Err(ListError::Failed(format!(
            "listing {prefix}: no answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        ))),
        Err(e) => Err(ListError::Failed(format!("listing {prefix}: {e}"))),
    }
}

/// The keys under a prefix, and where in them a key lies: its first
/// [`POSITION_BYTES`] bytes after the prefix as a number, so that a window
/// of keys can be sized by the keys seen before it. Keys alike in those
/// bytes share a position; windows are then wider than a page, never wrong.
struct Range {
    prefix: Vec<u8>,
    /// The end of the range (exclusive); `[0]` is the end of the keyspace.
    end: Vec<u8>,
}

/// Bytes of a key after the prefix that make its position.
const POSITION_BYTES: usize = 16;

impl Range {
    fn new(prefix: &[u8]) -> Self {
        Range {
            prefix: prefix.to_vec(),
            end: prefix_end(prefix),
        }
    }

    /// Where `key` (under the prefix) lies.
    fn position(&self, key: &[u8]) -> u128 {
        let mut bytes = [0; POSITION_BYTES];
        let rest = key.get(self.prefix.len()..).unwrap_or_default();
        let n = rest.len().min(POSITION_BYTES);
        bytes[..n].copy_from_slice(&rest[..n]);
        u128::from_be_bytes(bytes)
    }

    /// The key at `position`, or the range's end when that is past it.
    fn key_at(&self, position: Option<u128>) -> Vec<u8> {
        let Some(position) = position else {
            return self.end.clone();
        };
        let mut key = self.prefix.clone();
        key.extend_from_slice(&position.to_be_bytes());
        let before_end = self.end == [0] || key < self.end;
        if before_end { key } else { self.end.clone() }
    }
}

/// The first key at or after `start`, without its value.
async fn first_key(
    kv: &mut KvClient,
    start: &[u8],
    range_end: &[u8],
    revision: i64,
) -> Result<Vec<u8>, ListError> {
    let options = GetOptions::new()
        .with_range(range_end.to_vec())
        .with_limit(1)
        .with_revision(revision)
        .with_keys_only();
    let response = tokio::time::timeout(REQUEST_TIMEOUT, kv.get(start.to_vec(), Some(options)))
        .await
        .map_err(|_| ListError::Failed("listing: no answer".to_owned()))?
        .map_err(|e| ListError::Failed(describe(&e)))?;
    response
        .kvs()
        .first()
        .map(|kv| kv.key().to_vec())
        .ok_or_else(|| ListError::Failed("listing: a key vanished at a fixed revision".to_owned()))
}

/// The next page's limit: about [`PAGE_BYTES`] at the bytes per key of
/// this page, growing at most eightfold at a time (large values tend to sit
/// together, so a page of small ones says little about the next).
fn next_limit(limit: i64, keys: usize, bytes: usize) -> i64 {
    if keys == 0 {
        return limit;
    }
    let per_key = (bytes / keys).max(1);
    let fits = i64::try_from(PAGE_BYTES / per_key).unwrap_or(MAX_PAGE_KEYS);
    fits.min(limit.saturating_mul(8)).clamp(1, MAX_PAGE_KEYS)
}

/// The smallest key after `key`.
fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// The end of the range of keys that start with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte is 0xff: to the end of the keyspace.
    vec![0]
}

/// The client refused a response over [`super::connect::MAX_RESPONSE`].
fn is_too_large(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status)
        if status.message().contains("decoded message length too large"))
}

/// etcd reports a compacted revision as OutOfRange "...has been compacted".
pub(super) fn is_compacted(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status)
        if status.message().contains("compacted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_exactly_the_prefixed_keys() {
        assert_eq!(prefix_end(b"/disco/"), b"/disco0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
        assert_eq!(after(b"/a"), b"/a\0");
    }

    /// What a page of `keys` (100 bytes each with its value) held.
    fn held<'a>(keys: &'a [Vec<u8>]) -> Option<Held<'a>> {
        Some(Held {
            first: keys.first()?,
            last: keys.last()?,
            keys: keys.len(),
            bytes: 100 * keys.len(),
        })
    }

    /// Lists `keys` (sorted, under `prefix`) as [`list`] does, each page
    /// answered as etcd would: the keys in the order they were handed on,
    /// and for each page asked, how many keys etcd counted for it (those
    /// from its start to its end).
    fn listing(prefix: &[u8], keys: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<usize>) {
        let (mut plan, first) = Plan::new(prefix);
        let mut asked = VecDeque::from([first]);
        let (mut listed, mut counted) = (Vec::new(), Vec::new());
        while let Some(page) = asked.pop_front() {
            let from = keys.partition_point(|k| *k < page.start);
            let to = keys.partition_point(|k| *k < page.end);
            let limit = usize::try_from(page.limit).unwrap();
            let answer = &keys[from..to.min(from + limit)];
            counted.push(to - from);
            if let Some(rest) = plan.answered(&page, to - from > limit, held(answer)) {
                asked.push_front(rest);
            }
            while asked.len() < IN_FLIGHT {
                let Some(window) = plan.next_window() else {
                    break;
                };
                asked.push_back(window);
            }
            listed.extend_from_slice(answer);
        }
        (listed, counted)
    }

    #[test]
    fn every_key_is_listed_once_in_order_and_etcd_counts_each_a_few_times() {
        // Spread evenly (ten apart, as 4-byte numbers), and as
        // registrations are: `services/` and `svc` in every key, so that 16
        // bytes after the prefix tell apart only a thousand services.
        let even: Vec<Vec<u8>> = (0..100_000u32)
            .map(|n| [&b"/disco/"[..], &(10 * n).to_be_bytes()].concat())
            .collect();
        let mut services: Vec<Vec<u8>> = (0..20_000)
            .flat_map(|s| (0..10).map(move |i| format!("/disco/services/svc{s}/svc{s}-{i}")))
            .map(String::into_bytes)
            .collect();
        services.sort();
        for keys in [even, services] {
            let (listed, counted) = listing(b"/disco/", &keys);
            assert!(listed == keys, "every key once, in order");
            // The first page counts them all; each later one about a page
            // of keys (41,943 at 100 bytes a key), where pages reaching to
            // the end counted 100,000 keys, then 99,000, 91,000...
            assert_eq!(counted[0], keys.len());
            let after_first: usize = counted[1..].iter().sum();
            assert!(after_first < 3 * keys.len(), "{counted:?}");
            // And about as many pages as a page at a time would take (at
            // seven eighths of 41,943 a page, 3 and 6); empty windows, as
            // where no key lies, cost a round trip each and no reading.
            let read = counted.iter().filter(|&&n| n > 0).count();
            assert!(read <= 2 + 2 * keys.len() / 36_000, "{counted:?}");
        }
    }

    #[test]
    fn a_listing_within_the_first_page_is_that_page_alone() {
        let keys: Vec<Vec<u8>> = (0..10).map(|n| format!("/d/{n}").into_bytes()).collect();
        assert_eq!(listing(b"/d/", &keys), (keys.clone(), vec![10]));
        assert_eq!(listing(b"/d/", &[]), (Vec::new(), vec![0]));
    }

    #[test]
    fn pages_aim_at_a_few_megabytes() {
        // 100-byte registrations: 8x growth, then the byte target.
        assert_eq!(next_limit(1000, 1000, 100_000), 8000);
        assert_eq!(next_limit(8000, 8000, 800_000), 41_943);
        // Megabyte values: a few per page, never none.
        assert_eq!(next_limit(1000, 10, 10 << 20), 4);
        assert_eq!(next_limit(4, 1, 64 << 20), 1);
        assert_eq!(next_limit(7, 0, 0), 7);
    }
}
