//! The full listing of a registry's tree: the children of each level, then
//! the data of every leaf. Reads go to ZooKeeper batched, [`BATCH`] to a
//! multi-read request (ZooKeeper ≥ 3.6), with several requests in flight
//! at once (a request is sent when it is made and its answer awaited
//! later), so 100,000 nodes cost a few hundred requests and a few round
//! trips' worth of waiting rather than 100,000 of each.

use std::collections::VecDeque;

use zookeeper_client::{Client, Error, MultiReadResult, MultiReader};

use super::connect::REQUEST_TIMEOUT;
use super::paths::{Layout, Paths};

/// Reads in one multi-read request. One request per read made ZooKeeper's
/// request pipeline the bottleneck of a cold start: 100,000 `getData`
/// requests, 512 in flight, took 4 s to list where 800 multi-reads of 128
/// take 0.7 s (`bench/registration_zk.sh`); batches of 64 to 1,000 did no
/// better. A batch's answer stays far below the 1 MB a client is
/// conventionally sent at once (`jute.maxbuffer`) unless a node is itself
/// that large.
const BATCH: usize = 128;

/// Multi-read requests in flight at once: enough to keep the server busy
/// while answers travel, far below the 1,000 outstanding requests after
/// which ZooKeeper stops reading a client's socket
/// (`globalOutstandingLimit`).
const IN_FLIGHT: usize = 8;

/// What reading a node found.
pub(super) enum Read {
    /// Its data, how many children it has, and the zxid of its last data
    /// change (`mzxid`).
    Data(Vec<u8>, i32, i64),
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
    batched(client, paths, |reader, path| reader.add_get_data(path))
        .await?
        .into_iter()
        .map(|(path, read)| match read {
            MultiReadResult::Data { data, stat } => {
                Ok((path, Read::Data(data, stat.num_children, stat.mzxid)))
            }
            MultiReadResult::Error { err: Error::NoNode } => Ok((path, Read::Gone)),
            MultiReadResult::Error { err } => Err(err),
            other => Err(unexpected(other)),
        })
        .collect()
}

/// The path of every child of every node in `parents`; a parent that does
/// not exist has none.
async fn children_of(client: &Client, parents: Vec<String>) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    let listed = batched(client, parents, |reader, path| {
        reader.add_get_children(path)
    })
    .await?;
    for (parent, listed) in listed {
        match listed {
            MultiReadResult::Children { children } => {
                out.extend(children.into_iter().map(|n| format!("{parent}/{n}")));
            }
            MultiReadResult::Error { err: Error::NoNode } => {}
            MultiReadResult::Error { err } => return Err(err),
            other => return Err(unexpected(other)),
        }
    }
    Ok(out)
}

/// Asks for every path in [`BATCH`]es, at most [`IN_FLIGHT`] unanswered
/// at once, and pairs each path with its answer. A request unanswered for
/// [`REQUEST_TIMEOUT`] fails the lot (the client notices a dead connection
/// sooner and fails them itself).
async fn batched(
    client: &Client,
    paths: Vec<String>,
    add: impl Fn(&mut MultiReader<'_>, &str) -> Result<(), Error>,
) -> Result<Vec<(String, MultiReadResult)>, ListError> {
    let mut out = Vec::with_capacity(paths.len());
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut paths = paths.into_iter().peekable();
    loop {
        while pending.len() < IN_FLIGHT && paths.peek().is_some() {
            let batch: Vec<String> = paths.by_ref().take(BATCH).collect();
            let mut reader = client.new_multi_reader();
            for path in &batch {
                add(&mut reader, path)?;
            }
            pending.push_back((batch, reader.commit()));
        }
        let Some((batch, answer)) = pending.pop_front() else {
            return Ok(out);
        };
        let answers = tokio::time::timeout(REQUEST_TIMEOUT, answer)
            .await
            .map_err(|_| Error::Timeout)??;
        if answers.len() != batch.len() {
            return Err(Error::UnexpectedError(format!(
                "a multi-read of {} nodes was answered with {} results",
                batch.len(),
                answers.len()
            )));
        }
        out.extend(batch.into_iter().zip(answers));
    }
}

/// An answer of the wrong kind: ZooKeeper broke the protocol.
fn unexpected(answer: MultiReadResult) -> Error {
    Error::UnexpectedError(format!("a multi-read answered {answer:?}"))
}
