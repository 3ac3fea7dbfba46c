//! The full listing of a prefix at one revision, read in pages so that a
//! large registry (100,000 keys and more) never needs one huge response.
//!
//! etcd (3.4 at least) counts every key between a page's start and its
//! range end for every page, even with a limit: pages that each reach to
//! the end of the prefix cost O(n²), and a million keys took over 30 s of
//! etcd's CPU in pages of 4 MiB (`bench/scale.sh`; a count of a million
//! keys is about a second). So after the first page each request is a
//! window about a page wide, sized from where the keys seen so far lie,
//! and the next page is asked for while this one is parsed.

use etcd_client::{GetOptions, GetResponse, KeyValue, KvClient};
use tokio::task::JoinHandle;
use tokio::time::error::Elapsed;

use super::connect::{REQUEST_TIMEOUT, describe};
use crate::heavy::without_stalling;

/// Keys in the first page. Later pages are sized from the bytes per key
/// seen so far, to about [`PAGE_BYTES`].
const FIRST_PAGE_KEYS: i64 = 1000;
/// The size a page aims at: fewer round trips, at a few MiB held at once.
const PAGE_BYTES: usize = 4 << 20;
/// The most keys in one page.
const MAX_PAGE_KEYS: i64 = 200_000;

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

/// One request of the listing: the keys in `[start, end)`, at most `limit`.
#[derive(Clone)]
struct Page {
    start: Vec<u8>,
    end: Vec<u8>,
    limit: i64,
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
/// each to `each` (off the runtime's worker, see [`crate::heavy`]);
/// returns that revision.
pub(super) async fn list(
    kv: &mut KvClient,
    prefix: &str,
    mut each: impl FnMut(Listed),
) -> Result<i64, ListError> {
    let range = Range::new(prefix.as_bytes());
    // 0 reads the newest revision; the first page fixes it for the rest.
    let mut revision = 0;
    // Nothing is known yet of where the keys lie: the first page spans the
    // whole prefix.
    let mut page = Page {
        start: prefix.as_bytes().to_vec(),
        end: range.end.clone(),
        limit: FIRST_PAGE_KEYS,
    };
    let mut pending = ask(kv, &page, revision);
    loop {
        let mut response = match answer(pending, prefix).await? {
            Ok(response) => response,
            Err(e) if is_too_large(&e) && page.limit > 1 => {
                // Some value in this page is huge: smaller pages until the
                // page is that value alone.
                page.limit = (page.limit / 8).max(1);
                pending = ask(kv, &page, revision);
                continue;
            }
            Err(e) if is_too_large(&e) => {
                let key = first_key(kv, &page.start, &page.end, revision).await?;
                page.start = after(&key);
                each(Listed::TooLarge(key));
                pending = ask(kv, &page, revision);
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
        let next = range.next_page(&page, more, Held::of(&kvs));
        // Asked for before this page is parsed, so that etcd reads the
        // next page while disco parses this one.
        let following = next.map(|next| {
            let asked = ask(kv, &next, revision);
            (next, asked)
        });
        without_stalling(|| {
            for kv in kvs {
                each(Listed::Kv(kv));
            }
        });
        match following {
            Some(following) => (page, pending) = following,
            None => return Ok(revision),
        }
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

    /// The page after `page`, whose answer `held` what it did and said
    /// whether `more` keys are left in it; `None` when the listing is done. The
    /// next page starts after the last key read (or at the page's end when
    /// it was exhausted) and spans about seven eighths of a page of keys,
    /// as far apart as this page's were (after a page of one key or none,
    /// eight times this page's span). Pages follow each other to the end of
    /// the range, so no key is left between them.
    fn next_page(&self, page: &Page, more: bool, held: Option<Held>) -> Option<Page> {
        let (keys, bytes) = held.as_ref().map_or((0, 0), |held| (held.keys, held.bytes));
        let limit = next_limit(page.limit, keys, bytes);
        let start = match &held {
            Some(held) if more => after(held.last),
            _ if page.end == self.end => return None,
            _ => page.end.clone(),
        };
        let span = self.span_after(page, held.as_ref(), limit);
        let end = self.key_at(self.position(&start).checked_add(span));
        Some(Page { start, end, limit })
    }

    /// The width of the window after `page`, for about `limit` keys.
    fn span_after(&self, page: &Page, held: Option<&Held>, limit: i64) -> u128 {
        let wanted = u128::try_from(limit).unwrap_or(1) * 7 / 8;
        match held {
            Some(held) if held.keys > 1 => {
                let spanned = self.position(held.last) - self.position(held.first) + 1;
                (spanned / held.keys as u128)
                    .max(1)
                    .saturating_mul(wanted.max(1))
            }
            _ => {
                let start = self.position(&page.start);
                let end = match page.end == self.end {
                    true => u128::MAX,
                    false => self.position(&page.end),
                };
                end.saturating_sub(start).max(1).saturating_mul(8)
            }
        }
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

    #[test]
    fn after_the_first_page_a_page_reaches_about_a_page_of_keys_not_the_end_of_the_prefix() {
        let range = Range::new(b"/disco/");
        // The first page: the whole prefix, 1,000 of a million keys.
        let first = Page {
            start: b"/disco/".to_vec(),
            end: range.end.clone(),
            limit: 1000,
        };
        // Keys spread evenly: ten apart, as 4-byte numbers.
        let key = |n: u32| [&b"/disco/"[..], &n.to_be_bytes()].concat();
        let keys: Vec<Vec<u8>> = (0..1000).map(|i| key(10 * i)).collect();
        let second = range
            .next_page(&first, true, held(&keys))
            .expect("more keys");
        assert_eq!(second.start, after(&key(9990)));
        // Pages of 100-byte keys aim at 8,000 keys: the window ends where
        // about 7,000 more keys spaced as these were would, far before the
        // end of the prefix.
        assert_eq!(second.limit, 8000);
        assert!(second.end > key(9990 + 6000 * 10) && second.end < key(9990 + 8000 * 10));
    }

    #[test]
    fn pages_follow_each_other_to_the_end_of_the_prefix() {
        let range = Range::new(b"/d/");
        let window = Page {
            start: b"/d/a".to_vec(),
            end: b"/d/b".to_vec(),
            limit: 1000,
        };
        // An exhausted window: the next starts at its end, and widens
        // eightfold when it held one key or none.
        let next = range.next_page(&window, false, None).expect("not the end");
        assert_eq!(next.start, b"/d/b");
        assert_eq!(
            range.position(&next.end) - range.position(b"/d/b"),
            8 * (range.position(b"/d/b") - range.position(b"/d/a"))
        );
        // A window past the end of the prefix stops at it, and the listing
        // ends when that last window is exhausted.
        let last = Page {
            start: b"/d/z".to_vec(),
            end: range.end.clone(),
            limit: 1000,
        };
        assert!(
            range
                .next_page(&last, false, held(&[b"/d/z1".to_vec()]))
                .is_none()
        );
        let wide = range
            .next_page(
                &Page {
                    end: b"/d/\xf0".to_vec(),
                    ..last
                },
                false,
                None,
            )
            .expect("not the end");
        assert_eq!(wide.end, range.end);
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
