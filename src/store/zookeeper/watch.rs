//! The watch-and-listing loop: open a session, add one persistent recursive
//! watch on the root, list the tree and report it as one full listing, then
//! report each burst of watch events as one batch. After a reconnection
//! within the session: add the watch again and list again. After the
//! session expired: a new session, and the same from the start.

use std::time::{Duration, Instant};

use zookeeper_client::{
    AddWatchMode, Client, EventType, PersistentWatcher, SessionState, StateWatcher,
};

use super::ZkBackend;
use super::audit::Audit;
use super::connect::REQUEST_TIMEOUT;
use super::events;
use super::listing::{self, Read};
use super::nodes::NerveNodes;
use super::paths::{Layout, Node, Paths};
use super::proof::{self, Failed, Reading, Window};
use crate::backoff::Backoff;
use crate::heavy::without_stalling;
use crate::model::Instance;
use crate::registry::{Change, ListingReport, ResyncCause, Sink, Update};
use crate::store::skips::SkipLog;

/// A session that lasted this long was healthy: the next one is tried at
/// once rather than after a grown backoff.
const HEALTHY: Duration = Duration::from_secs(10);
/// Watch events taken into one batch at most.
const MAX_BATCH: usize = 4096;

/// How a session ended.
enum End {
    /// The server is shutting down.
    SinkClosed,
    /// No session could be opened, or it broke before a listing: the store
    /// is unreachable (or refuses disco).
    Unreachable(String),
    /// The session expired, was closed or refused after it had listed:
    /// open a new one.
    Ended(String),
    /// A proof found the watch behind: a new session at once.
    Behind(String),
}

/// How following the watch of one connection ended.
enum Follow {
    SinkClosed,
    /// The connection was lost; the session may still be reconnected.
    Disconnected,
    /// The session is over.
    Ended(SessionState),
    /// A proof found the watch behind the store: a new session.
    Behind(String),
}

/// The state kept across sessions.
pub(super) struct Watcher<'b> {
    backend: &'b ZkBackend,
    sink: Sink,
    skips: SkipLog,
    nerve: NerveNodes,
    /// The `mzxid` of every leaf read, for the proofs' slices.
    audit: Audit,
    backoff: Backoff,
    /// Whether `Stale` has been sent since the last listing.
    stale: bool,
    /// The zxid the watch was last known current at when it was found
    /// behind, until the first proof after the resync tells the lag.
    behind_at: Option<i64>,
    /// Whether any instance was sent yet: until then a listing goes out
    /// in parts as it is read, after that whole, since it replaces what
    /// was sent.
    reported: bool,
}

impl<'b> Watcher<'b> {
    pub fn new(backend: &'b ZkBackend, sink: Sink) -> Self {
        Watcher {
            backend,
            sink,
            skips: SkipLog::new(backend.name.clone()),
            nerve: NerveNodes::default(),
            audit: Audit::default(),
            backoff: Backoff::new(),
            stale: false,
            behind_at: None,
            reported: false,
        }
    }

    /// Watches until the server shuts down (the caller drops this future
    /// then) or stops listening.
    pub async fn run(&mut self) {
        loop {
            let started = Instant::now();
            match self.session().await {
                End::SinkClosed => return,
                End::Unreachable(reason) => {
                    tracing::debug!(registry = %self.backend.name, %reason, "ZooKeeper unreachable; retrying");
                    if !self.mark_stale(reason) {
                        return;
                    }
                }
                End::Ended(reason) => {
                    tracing::info!(registry = %self.backend.name, %reason, "ZooKeeper session ended; opening a new one");
                    if started.elapsed() >= HEALTHY {
                        self.backoff.reset();
                    }
                    let (cause, detail) = (ResyncCause::SessionEnded, reason);
                    if !self.sink.send(Update::Resync { cause, detail }) {
                        return;
                    }
                }
                End::Behind(detail) => {
                    let cause = ResyncCause::Behind;
                    if !self.sink.send(Update::Resync { cause, detail }) {
                        return;
                    }
                    // At once, in a new session: the old one is the suspect.
                    self.backoff.reset();
                    continue;
                }
            }
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
    }

    /// Reports the source stale, once per outage; false once the server
    /// is shutting down.
    fn mark_stale(&mut self, reason: String) -> bool {
        if self.stale {
            return true;
        }
        self.stale = true;
        self.sink.send(Update::Stale { reason })
    }

    /// One session: connect, then for each connection of it, watch, list
    /// and follow.
    async fn session(&mut self) -> End {
        let client = match self.backend.connector.connect().await {
            Ok(client) => client,
            Err(error) => return End::Unreachable(error.to_string()),
        };
        let mut state = client.state_watcher();
        let mut listed_once = false;
        let mut old_watch: Option<PersistentWatcher> = None;
        loop {
            // Re-arm the watch on every connection, not only the first:
            // zookeeper-client 0.11 re-sends the one-shot watches of a
            // session when it reconnects, but not its persistent ones
            // (`resend_watches` only ever sends the first three kinds of
            // SetWatches), so after a network blip or a ZooKeeper restart
            // the server holds no watch for disco and the old watcher never
            // fires again: the bug that left Synapse with stale backends.
            // Adding it again while the old one exists sends no removal.
            // The listing after it covers whatever changed meanwhile
            // (events during a disconnection are lost anyway, ZOOKEEPER-4698).
            let watch = self.arm(&client).await;
            drop(old_watch.take());
            let mut watch = match watch {
                Ok(watch) => watch,
                Err(e) => {
                    match self
                        .after_failure(&client, &mut state, e, listed_once)
                        .await
                    {
                        Some(end) => return end,
                        None => continue,
                    }
                }
            };
            // The proofs' baseline, read before the listing: a change
            // after it either reaches the watch or shows in a proof.
            let baseline = self.baseline(&client).await;
            if let Err(e) = self.resync(&client).await {
                old_watch = Some(watch);
                match self
                    .after_failure(&client, &mut state, e, listed_once)
                    .await
                {
                    Some(end) => return end,
                    None => continue,
                }
            }
            listed_once = true;
            self.stale = false;
            match self.follow(&client, &mut watch, baseline).await {
                Follow::SinkClosed => return End::SinkClosed,
                Follow::Ended(session) => {
                    return End::Ended(format!("the session is {session}"));
                }
                Follow::Behind(detail) => return End::Behind(detail),
                Follow::Disconnected => {
                    let (cause, detail) = (ResyncCause::Reconnected, "connection lost".to_owned());
                    if !self.sink.send(Update::Resync { cause, detail }) {
                        return End::SinkClosed;
                    }
                    if !self.mark_stale(format!(
                        "lost the connection to ZooKeeper at {}; reconnecting",
                        self.backend.connector.hosts()
                    )) {
                        return End::SinkClosed;
                    }
                    old_watch = Some(watch);
                    if let Err(session) = wait_connected(&mut state).await {
                        return End::Ended(format!("the session is {session}"));
                    }
                }
            }
        }
    }

    /// The first reading of the proofs, when they are on.
    async fn baseline(&self, client: &Client) -> Option<Reading> {
        let interval = self.backend.proof_interval;
        if interval.is_zero() {
            return None;
        }
        proof::prove(client, self.backend.paths.root(), interval, Vec::new())
            .await
            .ok()
            .map(|(reading, _)| reading)
    }

    /// Adds the persistent recursive watch on the root.
    async fn arm(&self, client: &Client) -> Result<PersistentWatcher, zookeeper_client::Error> {
        let root = self.backend.paths.root();
        match tokio::time::timeout(
            REQUEST_TIMEOUT,
            client.watch(root, AddWatchMode::PersistentRecursive),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(zookeeper_client::Error::Timeout),
        }
    }

    /// After a request failed: `None` to try again on the same session
    /// once it is connected again, or how the session ends.
    async fn after_failure(
        &mut self,
        client: &Client,
        state: &mut StateWatcher,
        error: zookeeper_client::Error,
        listed_once: bool,
    ) -> Option<End> {
        let reason = format!(
            "cannot read {} from ZooKeeper at {}: {error}",
            self.backend.paths.root(),
            self.backend.connector.hosts(),
        );
        match client.state() {
            SessionState::Disconnected => {
                if !self.mark_stale(reason) {
                    return Some(End::SinkClosed);
                }
                match wait_connected(state).await {
                    Ok(()) => None,
                    Err(session) => Some(End::Ended(format!("the session is {session}"))),
                }
            }
            ended if ended.is_terminated() && listed_once => Some(End::Ended(reason)),
            // Refused on a live session (NoAuth), or no answer in time, or
            // the session ended before its first listing: a new session,
            // after the backoff, with the source stale meanwhile.
            _ => Some(End::Unreachable(reason)),
        }
    }

    /// Lists the whole tree and reports it as one full listing (the first
    /// in parts, as it is read).
    async fn resync(&mut self, client: &Client) -> Result<(), zookeeper_client::Error> {
        let started = Instant::now();
        let paths = &self.backend.paths;
        // Off the runtime's worker, as each chunk's parse is: meanwhile the
        // client must keep hearing from the server, or it drops the
        // connection (see `crate::heavy`).
        without_stalling(|| {
            self.skips.restart();
            self.audit.clear();
        });
        let (skips, audit) = (&mut self.skips, &mut self.audit);
        // Nerve's nodes are reduced over the whole listing: it goes whole.
        let in_parts = !self.reported && paths.layout() == Layout::Native;
        let mut report = ListingReport::new(&self.sink, in_parts);
        let mut native = Vec::new();
        let mut nerve = Vec::new();
        let mut skipped = 0u64;
        let listed = listing::list(client, paths, |chunk| {
            for (path, read) in chunk {
                let Read::Data(data, children, mzxid) = read else {
                    continue;
                };
                let Node::Leaf { service, name } = paths.node(&path) else {
                    continue;
                };
                audit.read(&path, mzxid);
                match paths.parse(service, name, &data, children) {
                    Ok(instance) if paths.layout() == Layout::Native => native.push(instance),
                    Ok(instance) => nerve.push((path, instance)),
                    Err(reason) => {
                        skipped += 1;
                        skips.skipped(&path, &reason.to_string());
                    }
                }
            }
            // A closed sink is noticed at the listing's end.
            report.offer(&mut native);
        })
        .await;
        self.reported |= report.sent_parts();
        listed?;
        let instances = without_stalling(|| {
            self.skips.listing_done();
            match paths.layout() {
                Layout::Native => native,
                Layout::Nerve => self.nerve.reset(nerve),
            }
        });
        let count = report.count(&instances);
        self.reported = true;
        if !report.finish(skipped, instances) {
            // The server is going away; the caller notices on its next send.
            return Ok(());
        }
        // After the listing is sent, so that it is not waited for.
        without_stalling(|| self.audit.compact());
        tracing::info!(
            registry = %self.backend.name,
            instances = count,
            skipped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ZooKeeper listing read"
        );
        Ok(())
    }

    /// Reports watch events in batches until the connection or the session
    /// ends. The watcher hears of every change of the session's state, in
    /// order with the node events: a disconnection, however short, is seen
    /// here even if the session reconnected long before.
    async fn follow(
        &mut self,
        client: &Client,
        watch: &mut PersistentWatcher,
        baseline: Option<Reading>,
    ) -> Follow {
        let interval = self.backend.proof_interval;
        let mut timer = (!interval.is_zero()).then(|| {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        let mut window = Window::starting_at(baseline);
        loop {
            let mut events = Vec::new();
            let (mut next, reading) = tokio::select! {
                event = watch.changed() => (Some(event), None),
                _ = async { timer.as_mut().expect("only polled when set").tick().await }, if timer.is_some() => {
                    let root = self.backend.paths.root();
                    let slice = self.audit.next_slice();
                    let proving = Instant::now();
                    match proof::prove(client, root, interval, slice).await {
                        // Every event sent before the answer is in the
                        // watcher by now.
                        Ok(read) => (now_or_never(watch).await, Some((read, proving.elapsed()))),
                        Err(Failed::TimedOut) => {
                            return Follow::Behind(format!(
                                "sync and stat of {root} not answered within {interval:?}"
                            ));
                        }
                        Err(Failed::Error(e)) => {
                            tracing::debug!(registry = %self.backend.name, error = %e, "a watch proof failed");
                            return match client.state() {
                                ended if ended.is_terminated() => Follow::Ended(ended),
                                _ => Follow::Disconnected,
                            };
                        }
                    }
                }
            };
            while let Some(event) = next.take() {
                match (event.event_type, event.session_state) {
                    // A terminal state must end here: the watcher panics
                    // if polled after one.
                    (EventType::Session, ended) if ended.is_terminated() => {
                        return Follow::Ended(ended);
                    }
                    (EventType::Session, SessionState::Disconnected) => {
                        return Follow::Disconnected;
                    }
                    (EventType::Session, _) => {}
                    (kind, _) => events.push((kind, event.path)),
                }
                if events.len() < MAX_BATCH {
                    // Whatever else has already arrived joins this batch.
                    next = now_or_never(watch).await;
                }
            }
            window.events(events.len());
            // A full batch may leave events of the proof's window unread:
            // its slice is not judged.
            let all_applied = events.len() < MAX_BATCH;
            match self.apply(client, events).await {
                Ok(true) => {}
                Ok(false) => return Follow::SinkClosed,
                Err(e) => {
                    // A read failed: the connection is going, or went and
                    // came back. Either way: watch and list again.
                    tracing::debug!(registry = %self.backend.name, error = %e, "a read after a watch event failed");
                    return match client.state() {
                        ended if ended.is_terminated() => Follow::Ended(ended),
                        _ => Follow::Disconnected,
                    };
                }
            }
            let Some(((reading, slice), took)) = reading else {
                continue;
            };
            // `bench/zk_proof.sh` reads this line for the proof's cost.
            tracing::trace!(registry = %self.backend.name, ?reading, ?window, slice = slice.len(), took_us = took.as_micros() as u64, "watch proof read");
            if all_applied && let Err(missed) = self.audit.judge(&slice) {
                self.behind_at = Some(missed.seen);
                let store = match missed.store {
                    Some(mzxid) => format!("changed at zxid {mzxid}"),
                    None => "gone".to_owned(),
                };
                return Follow::Behind(format!(
                    "{} {store} in the store, but disco last read it at zxid {}, and no watch event came for it",
                    missed.path, missed.seen,
                ));
            }
            if let Err(behind) = window.proved(reading) {
                self.behind_at = Some(behind.seen.zxid);
                return Follow::Behind(format!(
                    "{} nodes under {} at zxid {}, but {} at zxid {} when last proved, and no watch event came between",
                    behind.store.nodes,
                    self.backend.paths.root(),
                    behind.store.zxid,
                    behind.seen.nodes,
                    behind.seen.zxid,
                ));
            }
            let lag = match self.behind_at.take() {
                Some(seen) => {
                    tracing::warn!(
                        registry = %self.backend.name,
                        applied = seen,
                        store = reading.zxid,
                        "ZooKeeper watch was behind the store; resynced"
                    );
                    reading.zxid - seen
                }
                None => 0,
            };
            if !self.sink.send(Update::Proved {
                position: reading.zxid,
                lag,
            }) {
                return Follow::SinkClosed;
            }
        }
    }

    /// Reads what a batch of events touched and reports it as one batch of
    /// changes; false once the server is shutting down.
    async fn apply(
        &mut self,
        client: &Client,
        events: Vec<(EventType, String)>,
    ) -> Result<bool, zookeeper_client::Error> {
        let paths = &self.backend.paths;
        let (to_read, mut reads) = events::touched_leaves(paths, &events);
        reads.extend(listing::read_all(client, to_read).await?);
        let mut changes = Vec::with_capacity(reads.len());
        let mut skipped = 0u64;
        for (path, read) in reads {
            let Node::Leaf { service, name } = paths.node(&path) else {
                continue;
            };
            let parsed = match read {
                Read::Data(data, children, mzxid) => {
                    self.audit.read(&path, mzxid);
                    Some(paths.parse(service, name, &data, children))
                }
                Read::Gone => {
                    self.audit.gone(&path);
                    None
                }
            };
            let instance: Option<Instance> = match parsed {
                Some(Ok(instance)) => Some(instance),
                Some(Err(reason)) => {
                    // A node that held a registration and now holds
                    // garbage registers nothing: withdrawn below.
                    skipped += 1;
                    self.skips.skipped(&path, &reason.to_string());
                    None
                }
                None => None,
            };
            match (paths.layout(), instance) {
                (Layout::Native, Some(instance)) => changes.push(Change::Put(instance)),
                (Layout::Native, None) => {
                    if let Some((service, id)) = Paths::native_key(service, name) {
                        changes.push(Change::Delete { service, id });
                    }
                }
                (Layout::Nerve, Some(instance)) => self.nerve.put(&path, instance, &mut changes),
                (Layout::Nerve, None) => self.nerve.delete(&path, &mut changes),
            }
        }
        if self.audit.compaction_due() {
            without_stalling(|| self.audit.compact());
        }
        if skipped > 0 && !self.sink.send(Update::Skipped { count: skipped }) {
            return Ok(false);
        }
        Ok(changes.is_empty() || self.sink.send(Update::Changes(changes)))
    }
}

/// The watcher's next event if one has already arrived.
async fn now_or_never(watch: &mut PersistentWatcher) -> Option<zookeeper_client::WatchedEvent> {
    tokio::select! {
        biased;
        event = watch.changed() => Some(event),
        () = std::future::ready(()) => None,
    }
}

/// Waits until the session is connected again; the terminal state if it
/// ends instead.
async fn wait_connected(state: &mut StateWatcher) -> Result<(), SessionState> {
    let mut current = state.state();
    loop {
        match current {
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => return Ok(()),
            s if s.is_terminated() => return Err(s),
            _ => current = state.changed().await,
        }
    }
}
