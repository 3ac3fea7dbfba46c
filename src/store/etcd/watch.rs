//! The listing-and-watch loop: list the prefix at revision R, report it as
//! one full listing (the first in parts, as it is read), watch from R + 1
//! and report each watch response as one batch; on any break, start over
//! with a fresh listing.

use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions, WatchResponse};

use super::EtcdBackend;
use super::connect::{MAX_RESPONSE, REQUEST_TIMEOUT, describe};
use super::keys::{Entry, Layout, Skip};
use super::leases::LeaseTtls;
use super::listing::{self, ListError, Listed};
use crate::backoff::Backoff;
use crate::registry::{Change, ListingReport, ResyncCause, Sink, Update};
use crate::store::skips::SkipLog;

/// A watch that ran this long was healthy: the next break retries at once
/// rather than after a grown backoff.
const HEALTHY: Duration = Duration::from_secs(10);
/// Listings restarted because their revision was compacted mid-read.
const COMPACTED_RETRIES: usize = 3;

/// How a round of listing and watching ended.
enum End {
    /// The server is shutting down.
    SinkClosed,
    /// No listing could be read: the store is unreachable.
    Unreachable(String),
    /// The watch broke after a listing (a lost connection or member, a
    /// cancelled or compacted watch): resync.
    Broken(String),
    /// A progress request went unanswered past the proof interval: the
    /// watch is behind the store (or its connection silently stopped
    /// delivering). Resync on a new connection.
    Behind {
        /// The last revision the watch had applied.
        applied: i64,
    },
}

/// The state kept across rounds.
pub(super) struct Watcher<'b> {
    backend: &'b EtcdBackend,
    sink: Sink,
    skips: SkipLog,
    leases: LeaseTtls,
    backoff: Backoff,
    /// Whether `Stale` has been sent since the last listing.
    stale: bool,
    /// The revision applied when the watch was last found behind, until
    /// the listing after it tells how far behind.
    behind_at: Option<i64>,
    /// Whether any entry was sent yet: until then a listing goes out in
    /// parts as it is read, after that whole, since it replaces what was
    /// sent.
    reported: bool,
}

impl<'b> Watcher<'b> {
    pub fn new(backend: &'b EtcdBackend, sink: Sink) -> Self {
        Watcher {
            backend,
            sink,
            skips: SkipLog::new(backend.name.clone()),
            leases: LeaseTtls::default(),
            backoff: Backoff::new(),
            stale: false,
            behind_at: None,
            reported: false,
        }
    }

    /// Lists and watches until the server shuts down (the caller drops this
    /// future then) or stops listening.
    pub async fn run(&mut self) {
        loop {
            let started = Instant::now();
            match self.round().await {
                End::SinkClosed => return,
                End::Unreachable(reason) => {
                    tracing::debug!(registry = %self.backend.name, %reason, "etcd unreachable; retrying");
                    if !self.stale {
                        // Said once per outage: the snapshot writer logs it and
                        // marks the source stale until the next listing.
                        self.stale = true;
                        if !self.sink.send(Update::Stale { reason }) {
                            return;
                        }
                    }
                }
                End::Broken(reason) => {
                    tracing::info!(registry = %self.backend.name, %reason, "etcd watch ended; resyncing");
                    if started.elapsed() >= HEALTHY {
                        self.backoff.reset();
                    }
                    let (cause, detail) = (ResyncCause::WatchEnded, reason);
                    if !self.sink.send(Update::Resync { cause, detail }) {
                        return;
                    }
                }
                End::Behind { applied } => {
                    let detail = format!(
                        "no answer to a progress request within {:?}; last revision applied {applied}",
                        self.backend.proof_interval
                    );
                    self.behind_at = Some(applied);
                    let cause = ResyncCause::Behind;
                    if !self.sink.send(Update::Resync { cause, detail }) {
                        return;
                    }
                    // At once, on a new connection: the old one is the
                    // suspect.
                    self.backoff.reset();
                    continue;
                }
            }
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
    }

    /// Connects, lists, and watches until something breaks.
    async fn round(&mut self) -> End {
        let client = match self.backend.connector.connect().await {
            Ok(client) => client,
            Err(e) => return End::Unreachable(e.to_string()),
        };
        let revision = match self.resync(&client).await {
            Ok(revision) => revision,
            Err(end) => return end,
        };
        self.stale = false;
        self.watch(&client, revision).await
    }

    /// Reads the whole prefix and reports it as one full listing; returns
    /// the revision it was read at.
    async fn resync(&mut self, client: &Client) -> Result<i64, End> {
        let keys = &self.backend.keys;
        let prefix = keys.range_prefix();
        let kv = client.kv_client().max_decoding_message_size(MAX_RESPONSE);
        for _ in 0..COMPACTED_RETRIES {
            let started = Instant::now();
            self.skips.restart();
            self.leases.forget_keys();
            let mut instances = Vec::new();
            let mut records = Vec::new();
            let mut leased = Vec::new();
            let mut skipped = 0u64;
            let in_parts = !self.reported && keys.layout() == Layout::Native;
            let mut report = ListingReport::new(&self.sink, in_parts);
            let (skips, leases) = (&mut self.skips, &mut self.leases);
            let listed = listing::list(&kv, &prefix, |item| {
                let skip = match item {
                    Listed::Kv(kv) => match keys.put(kv.key(), kv.value(), None) {
                        Ok(Entry::Instance(instance)) => {
                            instances.push(instance);
                            return report.offer(&mut instances);
                        }
                        Ok(Entry::Record(record)) => {
                            if kv.lease() != 0 {
                                leases.attach(&record.key, kv.lease());
                                leased.push((records.len(), kv.lease()));
                            }
                            return records.push(record);
                        }
                        Err(skip) => skip,
                    },
                    Listed::TooLarge(key) => Box::new(Skip {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        reason: format!(
                            "the value is over the {} MiB response limit",
                            MAX_RESPONSE >> 20
                        ),
                        withdraw: None,
                    }),
                };
                skipped += 1;
                skips.skipped(&skip.key, &skip.reason);
            })
            .await;
            self.reported |= report.sent_parts();
            if !report.is_open() {
                return Err(End::SinkClosed);
            }
            let revision = match listed {
                Ok(revision) => revision,
                Err(ListError::Compacted) => continue,
                Err(ListError::Failed(reason)) => {
                    return Err(End::Unreachable(format!(
                        "cannot read etcd at {}: {reason}",
                        self.backend.endpoints
                    )));
                }
            };
            self.skips.listing_done();
            self.leases.prune();
            if !leased.is_empty() {
                self.leases.fetch_unknown(&client.lease_client()).await;
                for (index, lease) in leased {
                    records[index].lease_ttl = self.leases.ttl(lease);
                }
            }
            let count = report.count(&instances) + records.len();
            let sent = match keys.layout() {
                Layout::Native => report.finish(skipped, instances),
                Layout::SkyDns => report.finish_records(skipped, records),
            };
            self.reported = true;
            if !sent {
                return Err(End::SinkClosed);
            }
            tracing::info!(
                registry = %self.backend.name,
                revision,
                entries = count,
                skipped,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "etcd listing read"
            );
            let lag = match self.behind_at.take() {
                Some(applied) => {
                    tracing::warn!(
                        registry = %self.backend.name,
                        applied,
                        store = revision,
                        lag = revision - applied,
                        "etcd watch was behind the store; resynced"
                    );
                    revision - applied
                }
                None => 0,
            };
            if !self.sink.send(Update::Proved {
                position: revision,
                lag,
            }) {
                return Err(End::SinkClosed);
            }
            return Ok(revision);
        }
        Err(End::Unreachable(format!(
            "etcd at {} compacted every revision a listing started at",
            self.backend.endpoints
        )))
    }

    /// Watches from `revision + 1`, reporting each response as one batch.
    async fn watch(&mut self, client: &Client, revision: i64) -> End {
        let prefix = self.backend.keys.range_prefix();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut watch_client = client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE);
        let mut stream =
            match tokio::time::timeout(REQUEST_TIMEOUT, watch_client.watch(prefix, Some(options)))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    return End::Broken(format!("cannot start the watch: {}", describe(&e)));
                }
                Err(_) => return End::Broken("starting the watch timed out".to_owned()),
            };
        // A progress request every proof interval; the answer must come
        // before the next one is due. etcd answers only once the watch has
        // sent every event up to the revision it gives, so an answer proves
        // the watch current, and none means it is behind or not delivering.
        let interval = self.backend.proof_interval;
        let mut proof = (!interval.is_zero()).then(|| {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        let mut awaiting_progress = false;
        let mut applied = revision;
        loop {
            let response = tokio::select! {
                message = stream.message() => message,
                _ = async { proof.as_mut().expect("only polled when set").tick().await }, if proof.is_some() => {
                    if awaiting_progress {
                        return End::Behind { applied };
                    }
                    if stream.request_progress().await.is_err() {
                        return End::Broken("cannot send a progress request".to_owned());
                    }
                    awaiting_progress = true;
                    continue;
                }
            };
            let response = match response {
                Ok(Some(response)) => response,
                Ok(None) => return End::Broken("etcd closed the watch".to_owned()),
                Err(e) => return End::Broken(format!("the watch failed: {}", describe(&e))),
            };
            if response.canceled() {
                return End::Broken(if response.compact_revision() > 0 {
                    format!(
                        "the watch fell behind a compaction (compacted up to revision {})",
                        response.compact_revision()
                    )
                } else {
                    format!("etcd cancelled the watch: {}", response.cancel_reason())
                });
            }
            if response.events().is_empty() {
                // A progress notification (or the watch's creation): every
                // event up to the header's revision has been delivered.
                if !response.created()
                    && let Some(header) = response.header()
                {
                    applied = applied.max(header.revision());
                    awaiting_progress = false;
                    let proved = Update::Proved {
                        position: applied,
                        lag: 0,
                    };
                    if !self.sink.send(proved) {
                        return End::SinkClosed;
                    }
                }
                continue;
            }
            if let Some(last) = response
                .events()
                .iter()
                .filter_map(|e| e.kv())
                .map(|kv| kv.mod_revision())
                .max()
            {
                applied = applied.max(last);
            }
            if !self.apply(client, &response).await {
                return End::SinkClosed;
            }
        }
    }

    /// Reports one watch response as one batch; false once the server is
    /// shutting down.
    async fn apply(&mut self, client: &Client, response: &WatchResponse) -> bool {
        let keys = &self.backend.keys;
        let events = response.events();
        if keys.layout() == Layout::SkyDns {
            for event in events {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = std::str::from_utf8(kv.key()) else {
                    continue;
                };
                match event.event_type() {
                    EventType::Put => self.leases.attach(key, kv.lease()),
                    EventType::Delete => self.leases.detach(key),
                }
            }
            if self.leases.any_unknown() {
                self.leases.fetch_unknown(&client.lease_client()).await;
            }
        }
        let mut changes: Vec<Change> = Vec::with_capacity(events.len());
        let mut skipped = 0u64;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    let lease_ttl = (kv.lease() != 0)
                        .then(|| self.leases.ttl(kv.lease()))
                        .flatten();
                    match keys.put(kv.key(), kv.value(), lease_ttl) {
                        Ok(entry) => changes.push(entry.into()),
                        Err(skip) => {
                            skipped += 1;
                            self.skips.skipped(&skip.key, &skip.reason);
                            changes.extend(skip.withdraw);
                        }
                    }
                }
                EventType::Delete => changes.extend(keys.delete(kv.key())),
            }
        }
        if skipped > 0 && !self.sink.send(Update::Skipped { count: skipped }) {
            return false;
        }
        changes.is_empty() || self.sink.send(Update::Changes(changes))
    }
}
