//! The full listing of a registry's tree: the children of each level, then
//! the data of every leaf. Reads go to ZooKeeper batched, [`BATCH`] to a
//! multi-read request (ZooKeeper ≥ 3.6), with several requests in flight
//! at once (a request is sent when it is made and its answer awaited
//! later), so 100,000 nodes cost a few hundred requests and a few round
//! trips' worth of waiting rather than 100,000 of each.

use std::collections::VecDeque;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use zookeeper_client::{Client, Error, MultiReadResult, MultiReader};

use super::connect::REQUEST_TIMEOUT;
use super::paths::{Layout, Paths};
use crate::heavy::without_stalling;

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

/// Reads handed to [`list`]'s caller at once: enough that taking each off
/// the runtime's worker (see [`crate::heavy`]) costs little beside parsing
/// it.
const CHUNK: usize = 4096;
/// Chunks read and not yet parsed, at most.
const CHUNKS_AHEAD: usize = 2;

/// Every leaf below the root and what reading it found, handed to `each`
/// a chunk at a time (off the runtime's worker) in the order the leaves
/// were listed.
///
/// A task of its own reads the leaves, so ZooKeeper answers the next reads
/// while `each` parses the answered ones, and only a few chunks are held
/// at once: read whole, then parsed, a million leaves' answers were all
/// held together (`bench/cold_start.sh`).
pub(super) async fn list(
    client: &Client,
    paths: &Paths,
    mut each: impl FnMut(Vec<(String, Read)>),
) -> Result<(), ListError> {
    let leaves = leaves(client, paths).await?;
    let (chunks, mut read) = mpsc::channel(CHUNKS_AHEAD);
    // Aborted if the listing is dropped half way (the session ended).
    let reader = AbortOnDropHandle::new(tokio::spawn(read_chunks(client.clone(), leaves, chunks)));
    while let Some(chunk) = read.recv().await {
        without_stalling(|| each(chunk));
    }
    // The reader closed the channel: it is done, or failed.
    match reader.await {
        Ok(done) => done,
        Err(e) => Err(Error::UnexpectedError(format!("the listing's reader: {e}"))),
    }
}

/// The path of every leaf below the root.
async fn leaves(client: &Client, paths: &Paths) -> Result<Vec<String>, ListError> {
    let base = paths.services();
    let services = children_of(client, vec![base.clone()]).await?;
    match paths.layout() {
        // <root>/services/<service>/<instance>
        Layout::Native => children_of(client, services).await,
        Layout::Nerve => {
            // <root>/<service>/services/<node> or <root>/<service>/<node>
            let (containers, mut leaves): (Vec<String>, Vec<String>) =
                children_of(client, services)
                    .await?
                    .into_iter()
                    .partition(|path| path.ends_with("/services"));
            leaves.extend(children_of(client, containers).await?);
            Ok(leaves)
        }
    }
}

/// Reads every node in `leaves` and sends what each read found to
/// `chunks`, [`CHUNK`] at a time, in order. Stops when the receiver is
/// gone.
async fn read_chunks(
    client: Client,
    leaves: Vec<String>,
    chunks: mpsc::Sender<Vec<(String, Read)>>,
) -> Result<(), ListError> {
    let mut batches = Batches::new(&client, leaves, get_data);
    let mut chunk = Vec::with_capacity(CHUNK);
    while let Some(answered) = batches.next().await? {
        for (path, answer) in answered {
            chunk.push((path, read_of(answer)?));
        }
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if chunks.send(full).await.is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.is_empty() {
        // A receiver gone by now wanted nothing more.
        let _ = chunks.send(chunk).await;
    }
    Ok(())
}

/// Reads every node in `paths`: its data and how many children it has.
pub(super) async fn read_all(
    client: &Client,
    paths: Vec<String>,
) -> Result<Vec<(String, Read)>, ListError> {
    let mut batches = Batches::new(client, paths, get_data);
    let mut out = Vec::new();
    while let Some(answered) = batches.next().await? {
        for (path, answer) in answered {
            out.push((path, read_of(answer)?));
        }
    }
    Ok(out)
}

/// Asks for a node's data in a multi-read.
fn get_data(reader: &mut MultiReader<'_>, path: &str) -> Result<(), Error> {
    reader.add_get_data(path)
}

/// What a `getData` in a multi-read found.
fn read_of(answer: MultiReadResult) -> Result<Read, Error> {
    match answer {
        MultiReadResult::Data { data, stat } => Ok(Read::Data(data, stat.num_children, stat.mzxid)),
        MultiReadResult::Error { err: Error::NoNode } => Ok(Read::Gone),
        MultiReadResult::Error { err } => Err(err),
        other => Err(unexpected(other)),
    }
}

/// The path of every child of every node in `parents`; a parent that does
/// not exist has none.
async fn children_of(client: &Client, parents: Vec<String>) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    let get_children = |reader: &mut MultiReader<'_>, path: &str| reader.add_get_children(path);
    let mut batches = Batches::new(client, parents, get_children);
    while let Some(answered) = batches.next().await? {
        for (parent, listed) in answered {
            match listed {
                MultiReadResult::Children { children } => {
                    out.extend(children.into_iter().map(|n| format!("{parent}/{n}")));
                }
                MultiReadResult::Error { err: Error::NoNode } => {}
                MultiReadResult::Error { err } => return Err(err),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(out)
}

/// A multi-read sent and not yet awaited.
type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<MultiReadResult>, Error>> + Send + 'a>>;

/// Reads of many paths, asked for in [`BATCH`]es with at most
/// [`IN_FLIGHT`] unanswered at once, each answered batch given in order.
/// A request unanswered for [`REQUEST_TIMEOUT`] fails the lot (the client
/// notices a dead connection sooner and fails them itself).
struct Batches<'a, A> {
    client: &'a Client,
    paths: std::iter::Peekable<std::vec::IntoIter<String>>,
    /// Adds the read of one path to a multi-read.
    add: A,
    pending: VecDeque<(Vec<String>, Answer<'a>)>,
}

impl<'a, A: Fn(&mut MultiReader<'a>, &str) -> Result<(), Error>> Batches<'a, A> {
    fn new(client: &'a Client, paths: Vec<String>, add: A) -> Self {
        Batches {
            client,
            paths: paths.into_iter().peekable(),
            add,
            pending: VecDeque::with_capacity(IN_FLIGHT),
        }
    }

    /// The next batch's paths, each with its answer; `None` once every
    /// path is answered.
    async fn next(&mut self) -> Result<Option<Vec<(String, MultiReadResult)>>, ListError> {
        while self.pending.len() < IN_FLIGHT && self.paths.peek().is_some() {
            let batch: Vec<String> = self.paths.by_ref().take(BATCH).collect();
            let mut reader = self.client.new_multi_reader();
            for path in &batch {
                (self.add)(&mut reader, path)?;
            }
            self.pending.push_back((batch, Box::pin(reader.commit())));
        }
        let Some((batch, answer)) = self.pending.pop_front() else {
            return Ok(None);
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
        Ok(Some(batch.into_iter().zip(answers).collect()))
    }
}

/// An answer of the wrong kind: ZooKeeper broke the protocol.
fn unexpected(answer: MultiReadResult) -> Error {
    Error::UnexpectedError(format!("a multi-read answered {answer:?}"))
}
