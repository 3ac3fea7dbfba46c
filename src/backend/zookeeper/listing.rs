//! The full listing of a registry's tree: the children of each level, then
//! the data of every leaf, with many requests in flight at once (a request
//! is sent when it is made and its answer awaited later), so 100,000 nodes
//! cost a few round trips' worth of waiting rather than 100,000.

use std::collections::VecDeque;
use std::future::Future;

use zookeeper_client::{Client, Error};

use super::connect::REQUEST_TIMEOUT;
use super::paths::{Layout, Paths};

/// Requests in flight at once. ZooKeeper itself stops reading a client's
/// socket beyond 1,000 outstanding requests (`globalOutstandingLimit`).
const IN_FLIGHT: usize = 512;

/// What reading a node found.
pub(super) enum Read {
    /// Its data, and how many children it has.
    Data(Vec<u8>, i32),
    /// It was deleted between the listing of its parent and the read: not
    /// an error, the watch reports the deletion.
    Gone,
}

/// Why a listing failed: ZooKeeper did not answer, refused (`NoAuth`), or
/// the session ended.
pub(super) type ListError = Error;

/// Every leaf below the root and what reading it found.
pub(super) async fn list(client: &Client, paths: &Paths) -> Result<Vec<(String, Read)>, ListError> {
    let base = paths.services();
    let services = children_of(client, vec![base.clone()]).await?;
    let leaves = match paths.layout() {
        // <root>/services/<service>/<instance>
        Layout::Native => children_of(client, services).await?,
        Layout::Nerve => {
            // <root>/<service>/services/<node> or <root>/<service>/<node>
            let (containers, mut leaves): (Vec<String>, Vec<String>) =
                children_of(client, services)
                    .await?
                    .into_iter()
                    .partition(|path| path.ends_with("/services"));
            leaves.extend(children_of(client, containers).await?);
            leaves
        }
    };
    read_all(client, leaves).await
}

/// Reads every node in `paths`: its data and how many children it has.
pub(super) async fn read_all(
    client: &Client,
    paths: Vec<String>,
) -> Result<Vec<(String, Read)>, ListError> {
    pipelined(paths, |path| client.get_data(path))
        .await?
        .into_iter()
        .map(|(path, read)| match read {
            Ok((data, stat)) => Ok((path, Read::Data(data, stat.num_children))),
            Err(Error::NoNode) => Ok((path, Read::Gone)),
            Err(e) => Err(e),
        })
        .collect()
}

/// The path of every child of every node in `parents`; a parent that does
/// not exist has none.
async fn children_of(client: &Client, parents: Vec<String>) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    for (parent, listed) in pipelined(parents, |path| client.list_children(path)).await? {
        match listed {
            Ok(names) => out.extend(names.into_iter().map(|n| format!("{parent}/{n}"))),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Starts `request` for every item, at most [`IN_FLIGHT`] unanswered at
/// once, and pairs each item with its answer. A request unanswered for
/// [`REQUEST_TIMEOUT`] fails the lot (the client notices a dead connection
/// sooner and fails them itself).
async fn pipelined<'c, T, R, Fut>(
    items: Vec<T>,
    request: impl Fn(&T) -> Fut,
) -> Result<Vec<(T, Result<R, Error>)>, ListError>
where
    Fut: Future<Output = Result<R, Error>> + 'c,
{
    let mut out = Vec::with_capacity(items.len());
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut items = items.into_iter();
    loop {
        while pending.len() < IN_FLIGHT {
            let Some(item) = items.next() else { break };
            let answer = request(&item);
            pending.push_back((item, answer));
        }
        let Some((item, answer)) = pending.pop_front() else {
            return Ok(out);
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, answer)
            .await
            .map_err(|_| Error::Timeout)?;
        out.push((item, answer));
    }
}
