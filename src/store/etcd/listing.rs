//! The full listing of a prefix at one revision, read in pages so that a
//! large registry (100,000 keys and more) never needs one huge response.

use etcd_client::{GetOptions, KeyValue, KvClient};

use super::connect::{REQUEST_TIMEOUT, describe};

/// Keys in the first page. Later pages are sized from the bytes per key
/// seen so far, to about [`PAGE_BYTES`].
const FIRST_PAGE_KEYS: i64 = 1000;
/// The size a page aims at. etcd counts every key from a page's start to
/// the end of the prefix for every page (its `count` field, even with a
/// limit), so small pages cost O(n²): 100,000 keys take 2 s in pages of
/// 1,000 keys and 0.3 s in pages of 4 MiB.
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

/// Reads every key under `prefix` at one revision, page by page, handing
/// each to `each`; returns that revision.
pub(super) async fn list(
    kv: &mut KvClient,
    prefix: &str,
    mut each: impl FnMut(Listed),
) -> Result<i64, ListError> {
    let range_end = prefix_end(prefix.as_bytes());
    let mut start = prefix.as_bytes().to_vec();
    // 0 reads the newest revision; the first page fixes it for the rest.
    let mut revision = 0;
    let mut limit = FIRST_PAGE_KEYS;
    loop {
        let options = GetOptions::new()
            .with_range(range_end.clone())
            .with_limit(limit)
            .with_revision(revision);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, kv.get(start.clone(), Some(options)))
            .await
            .map_err(|_| {
                ListError::Failed(format!(
                    "listing {prefix}: no answer within {}s",
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?;
        let mut response = match response {
            Ok(response) => response,
            Err(e) if is_too_large(&e) && limit > 1 => {
                // Some value in this page is huge: smaller pages until the
                // page is that value alone.
                limit = (limit / 8).max(1);
                continue;
            }
            Err(e) if is_too_large(&e) => {
                let key = first_key(kv, &start, &range_end, revision).await?;
                start = after(&key);
                each(Listed::TooLarge(key));
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
        let bytes: usize = kvs.iter().map(|kv| kv.key().len() + kv.value().len()).sum();
        if let Some(last) = kvs.last() {
            start = after(last.key());
        }
        limit = next_limit(limit, kvs.len(), bytes);
        for kv in kvs {
            each(Listed::Kv(kv));
        }
        if !more {
            return Ok(revision);
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
