//! The one task that writes snapshots: it drains backend updates in
//! batches, merges them into the [`Registry`], and publishes a new
//! [`Snapshot`] per batch with a single atomic swap.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::catalog::{Catalog, ChangeKind};
use crate::dns::{Snapshot, SnapshotBuilder};
use crate::heavy::without_stalling;
use crate::metrics::Metrics;
use crate::registry::{Change, Changes, Registry, ResyncCause, SourceEvent, StatusBoard, Update};

/// Most updates folded into one snapshot, so a flood still publishes often.
const MAX_BATCH: usize = 4096;

/// After a snapshot that took `t` to build, the next one waits until
/// `IDLE_PER_BUILD × t` has passed (at most [`MAX_WAIT`]), and changes that
/// come meanwhile are folded into it. Building then takes at most about a
/// fifth of a core however fast the store is written: a touched service is
/// rebuilt whole, so a flood of changes to a service of 100,000 instances
/// would otherwise rebuild it for every change. A build takes tens of
/// microseconds in the usual case, so a change is published at once. At a
/// million instances and 5,000 changes a second a build of 25 changes
/// takes about a millisecond: the wait after it (4 ms; 9 ms and 10 ms
/// before) is most of a change's time to its answer (`bench/scale.sh`).
const IDLE_PER_BUILD: u32 = 4;

/// The longest a change waits for the snapshot it goes into.
const MAX_WAIT: Duration = Duration::from_millis(5);

/// Applies updates until every sender is gone.
pub async fn run(
    mut events: mpsc::UnboundedReceiver<SourceEvent>,
    mut builder: SnapshotBuilder,
    mut registry: Registry,
    live: Arc<ArcSwap<Snapshot>>,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    catalog: Arc<Catalog>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut listed = Vec::new();
    // Tokio's clock, so tests can pause it.
    let mut next_build = Instant::now();
    // Parts of a listing built but not yet published (see below).
    let mut held_back = false;
    while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut changes = Changes::default();
        // Whether the batch holds anything but parts of a listing.
        let mut whole = false;
        let mut fold = |batch: &mut Vec<SourceEvent>, changes: &mut Changes| {
            for event in batch.drain(..) {
                whole |= !matches!(event.update, Update::Part(_));
                match &event.update {
                    Update::Reset(instances) => listed.push((event.source, instances.len())),
                    Update::ResetRecords(entries) => listed.push((event.source, entries.len())),
                    Update::Listed { count } => listed.push((event.source, *count)),
                    _ => {}
                }
                apply(event, &mut registry, &status, &catalog, changes);
            }
        };
        if is_heavy(&batch) {
            without_stalling(|| fold(&mut batch, &mut changes));
        } else {
            fold(&mut batch, &mut changes);
        }
        if !changes.is_empty() && Instant::now() < next_build {
            tokio::time::sleep_until(next_build).await;
            // What came meanwhile goes into the same snapshot.
            while batch.len() < MAX_BATCH {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            fold(&mut batch, &mut changes);
        }
        if !changes.is_empty() || (held_back && whole) {
            // A batch of nothing but parts of a listing is built but not
            // published: the builder leaves their reverse index to the
            // batch that ends the listing (`apply_part`), and the parts are
            // built as they come so that little is left to do after the
            // last (a million instances from a restarted etcd: 4.2 → 3.7 s
            // to `/ready`, `bench/cold_start.sh`).
            // Off the runtime's threads: a first listing of 100,000
            // instances takes a second to build (ten in a debug build), and
            // TCP, HTTP, forwards and the stores' keepalives run there. The
            // builder gets its own copy of the batch (pointers, not
            // instances) so that the catalog is folded in meanwhile, on
            // another core where there is one: a first listing of a
            // million instances takes seconds of each.
            let (instances, records) = (changes.instances.clone(), changes.records.clone());
            let building = tokio::task::spawn_blocking(move || {
                let building = std::time::Instant::now();
                // The whole batch at once: the builder rebuilds each service
                // it touches once, however many of its instances changed.
                let instances = instances.into_iter().map(|c| (c.old, c.new));
                if !whole {
                    builder.apply_part(instances);
                    return (builder, None, building.elapsed());
                }
                builder.apply(instances);
                for change in records {
                    builder.apply_record(change.source, change.old.as_ref(), change.new.as_ref());
                }
                let snapshot = builder.snapshot();
                (builder, Some(snapshot), building.elapsed())
            });
            // The catalog is done before the snapshot is swapped in: after
            // would be later than DNS, and this is off the query path.
            let apply_to_catalog = || catalog.apply(&changes.instances, &changes.records);
            if changes.instances.len() + changes.records.len() > HEAVY_BATCH {
                without_stalling(apply_to_catalog);
            } else {
                apply_to_catalog();
            }
            let built = building.await;
            let (kept, snapshot, took) = match built {
                Ok(built) => built,
                // A panic in the builder ends the snapshot writer, as it did when
                // it ran here.
                Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
                Err(_) => return,
            };
            builder = kept;
            held_back = snapshot.is_none();
            if let Some(snapshot) = snapshot {
                metrics.record_snapshot(snapshot.instances());
                live.store(Arc::new(snapshot));
            }
            next_build = Instant::now() + (took * IDLE_PER_BUILD).min(MAX_WAIT);
        }
        // Synced (and so ready) only once the listing is what DNS answers.
        for (source, count) in listed.drain(..) {
            status.update(source, |s| {
                if !s.synced {
                    tracing::info!(registry = %s.name, entries = count, "registry synced");
                    catalog.registry_event(
                        source,
                        ChangeKind::Synced,
                        Some(format!("{count} entries")),
                    );
                }
                s.synced = true;
            });
        }
    }
}

/// Updates in a batch past which folding it in is done off the runtime's
/// workers (see [`crate::heavy`]); a listing or a part of one always is.
const HEAVY_BATCH: usize = 256;

fn is_heavy(batch: &[SourceEvent]) -> bool {
    batch.len() > HEAVY_BATCH
        || (batch.iter()).any(|e| {
            matches!(
                e.update,
                Update::Reset(_) | Update::ResetRecords(_) | Update::Part(_)
            )
        })
}

/// Applies one update to the registry, adding what it changed to `changes`.
fn apply(
    event: SourceEvent,
    registry: &mut Registry,
    status: &StatusBoard,
    catalog: &Catalog,
    changes: &mut Changes,
) {
    let source = event.source;
    let (instances, records) = match event.update {
        Update::Reset(instances) => {
            mark_current(status, catalog, source);
            (registry.reset(source, instances), Vec::new())
        }
        Update::Changes(changes) => {
            mark_current(status, catalog, source);
            status.update(source, |s| s.last_event = Some(SystemTime::now()));
            let changes = registry.apply(source, changes);
            (changes.instances, changes.records)
        }
        Update::ResetRecords(entries) => {
            mark_current(status, catalog, source);
            (Vec::new(), registry.reset_records(source, entries))
        }
        Update::Part(instances) => {
            mark_current(status, catalog, source);
            // The source held nothing before its first listing: each
            // instance is a put.
            let puts = instances.into_iter().map(Change::Put).collect();
            (registry.apply(source, puts).instances, Vec::new())
        }
        // Its parts were applied as they came; the caller marks it synced.
        Update::Listed { .. } => return,
        Update::Stale { reason } => {
            status.update(source, |s| {
                // Said once when it starts, not once per retry.
                if s.stale_since.is_none() {
                    if s.synced {
                        tracing::warn!(registry = %s.name, %reason, "registry unreachable; answering from the last snapshot");
                    } else {
                        tracing::warn!(registry = %s.name, %reason, "registry unreachable; retrying");
                    }
                    s.stale_since = Some(SystemTime::now());
                    catalog.registry_event(source, ChangeKind::Stale, Some(reason.clone()));
                }
                s.stale_reason = Some(reason);
            });
            return;
        }
        Update::Skipped { count } => {
            status.update(source, |s| s.skipped += count);
            return;
        }
        Update::Proved { position, lag } => {
            status.update(source, |s| {
                s.position = Some(position);
                s.last_proof = Some(SystemTime::now());
                s.lag = lag;
            });
            return;
        }
        Update::Resync { cause, detail } => {
            status.update(source, |s| {
                s.count_resync(cause);
                // Behind is stale: what DNS answers may miss changes, until
                // the fresh listing is applied (mark_current).
                if cause == ResyncCause::Behind {
                    tracing::warn!(registry = %s.name, %detail, "watch behind the store; resyncing");
                    s.stale_since.get_or_insert_with(SystemTime::now);
                    s.stale_reason = Some(format!("watch behind the store: {detail}"));
                    catalog.registry_event(source, ChangeKind::Stale, s.stale_reason.clone());
                }
                let why = format!("{}: {detail}", cause.as_str());
                catalog.registry_event(source, ChangeKind::Resynced, Some(why));
            });
            return;
        }
    };
    changes.instances.extend(instances);
    changes.records.extend(records);
}

fn mark_current(status: &StatusBoard, catalog: &Catalog, source: usize) {
    status.update(source, |s| {
        if let Some(since) = s.stale_since.take() {
            let stale_for = since.elapsed().unwrap_or_default();
            tracing::info!(registry = %s.name, stale_seconds = stale_for.as_secs(), "registry reachable again");
            let detail = format!("stale for {}s", stale_for.as_secs());
            catalog.registry_event(source, ChangeKind::Current, Some(detail));
            s.stale_reason = None;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_native;

    fn put(id: usize) -> SourceEvent {
        SourceEvent {
            source: 0,
            update: Update::Changes(vec![Change::Put(instance(id))]),
        }
    }

    fn instance(id: usize) -> crate::model::Instance {
        let value = format!(r#"{{"address": "10.0.{}.{}"}}"#, id / 256, id % 256);
        parse_native("web", &format!("web-{id}"), value.as_bytes()).unwrap()
    }

    fn snapshots_published(metrics: &Metrics) -> u64 {
        let text = metrics.render(&[]);
        let line = text
            .lines()
            .find(|line| line.starts_with("disco_snapshot_updates_total "))
            .expect("the counter is always rendered");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// A snapshot writer on one source, running, and what it publishes to.
    struct Writer {
        events: mpsc::UnboundedSender<SourceEvent>,
        live: Arc<ArcSwap<Snapshot>>,
        status: Arc<StatusBoard>,
        metrics: Arc<Metrics>,
        task: tokio::task::JoinHandle<()>,
    }

    fn writer() -> Writer {
        let (events, receiver) = mpsc::unbounded_channel();
        let builder = SnapshotBuilder::new("disco.internal", Vec::new(), 5, &[]);
        let live = Arc::new(ArcSwap::from_pointee(builder.snapshot()));
        let status = Arc::new(StatusBoard::new(vec!["test".into()]));
        let metrics = Arc::new(Metrics::new());
        let task = tokio::spawn(run(
            receiver,
            builder,
            Registry::new(1),
            live.clone(),
            status.clone(),
            metrics.clone(),
            Arc::new(Catalog::new(vec!["test".into()], "disco.internal", 10)),
        ));
        Writer {
            events,
            live,
            status,
            metrics,
            task,
        }
    }

    // Time is paused: it moves only when every task waits for a timer.
    #[tokio::test(start_paused = true)]
    async fn a_lone_change_is_published_at_once_and_a_burst_shares_one_snapshot() {
        let Writer {
            events,
            live,
            metrics,
            ..
        } = writer();
        let started = Instant::now();

        events.send(put(0)).unwrap();
        while live.load().instances() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "the lone change waited");
        assert_eq!(snapshots_published(&metrics), 1);

        // A burst right after it: each change sent on its own, as a store's
        // watch delivers them.
        for id in 1..=100 {
            events.send(put(id)).unwrap();
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(MAX_WAIT).await;
        assert_eq!(live.load().instances(), 101);
        assert_eq!(snapshots_published(&metrics), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_in_parts_is_answered_and_ready_only_once_whole() {
        let Writer {
            events,
            live,
            status,
            metrics,
            task,
        } = writer();
        let send = |update| events.send(SourceEvent { source: 0, update }).unwrap();
        send(Update::Part((0..300).map(instance).collect()));
        send(Update::Part((300..600).map(instance).collect()));
        // Both parts built (the writer waits for its next event), neither
        // published.
        tokio::time::sleep(MAX_WAIT * 4).await;
        assert_eq!(live.load().instances(), 0);
        assert_eq!(snapshots_published(&metrics), 0);
        assert!(!status.all_synced());

        send(Update::Listed { count: 600 });
        while live.load().instances() == 0 {
            tokio::time::sleep(MAX_WAIT).await;
        }
        assert_eq!(live.load().instances(), 600);
        assert_eq!(snapshots_published(&metrics), 1);
        assert!(status.all_synced());
        drop(events);
        task.await.unwrap();
    }
}
