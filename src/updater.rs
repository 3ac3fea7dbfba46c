//! The one task that writes snapshots: it drains backend updates in
//! batches, merges them into the [`Registry`], and publishes a new
//! [`Snapshot`] per batch with a single atomic swap.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::dns::{Snapshot, SnapshotBuilder};
use crate::metrics::Metrics;
use crate::registry::{Changes, Registry, SourceEvent, StatusBoard, Update};

/// Most updates folded into one snapshot, so a flood still publishes often.
const MAX_BATCH: usize = 4096;

/// Applies updates until every sender is gone.
pub async fn run(
    mut events: mpsc::UnboundedReceiver<SourceEvent>,
    mut builder: SnapshotBuilder,
    mut registry: Registry,
    live: Arc<ArcSwap<Snapshot>>,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut listed = Vec::new();
    while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut changes = Changes::default();
        for event in batch.drain(..) {
            match &event.update {
                Update::Reset(instances) => listed.push((event.source, instances.len())),
                Update::ResetRecords(entries) => listed.push((event.source, entries.len())),
                _ => {}
            }
            apply(event, &mut registry, &status, &mut changes);
        }
        if !changes.is_empty() {
            // The whole batch at once: the builder rebuilds each service it
            // touches once, however many of its instances changed.
            builder.apply(changes.instances.into_iter().map(|c| (c.old, c.new)));
            for change in changes.records {
                builder.apply_record(change.source, change.old.as_ref(), change.new.as_ref());
            }
            let snapshot = builder.snapshot();
            metrics.record_snapshot(snapshot.instances());
            live.store(Arc::new(snapshot));
        }
        // Synced (and so ready) only once the listing is what DNS answers.
        for (source, count) in listed.drain(..) {
            status.update(source, |s| {
                if !s.synced {
                    tracing::info!(registry = %s.name, entries = count, "registry synced");
                }
                s.synced = true;
            });
        }
    }
}

/// Applies one update to the registry, adding what it changed to `changes`.
fn apply(event: SourceEvent, registry: &mut Registry, status: &StatusBoard, changes: &mut Changes) {
    let source = event.source;
    let (instances, records) = match event.update {
        Update::Reset(instances) => {
            mark_current(status, source);
            (registry.reset(source, instances), Vec::new())
        }
        Update::Changes(changes) => {
            mark_current(status, source);
            let changes = registry.apply(source, changes);
            (changes.instances, changes.records)
        }
        Update::ResetRecords(entries) => {
            mark_current(status, source);
            (Vec::new(), registry.reset_records(source, entries))
        }
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
                }
                s.stale_reason = Some(reason);
            });
            return;
        }
        Update::Skipped { count } => {
            status.update(source, |s| s.skipped += count);
            return;
        }
    };
    changes.instances.extend(instances);
    changes.records.extend(records);
}

fn mark_current(status: &StatusBoard, source: usize) {
    status.update(source, |s| {
        if let Some(since) = s.stale_since.take() {
            let stale_for = since.elapsed().unwrap_or_default();
            tracing::info!(registry = %s.name, stale_seconds = stale_for.as_secs(), "registry reachable again");
            s.stale_reason = None;
        }
    });
}
