//! What the Docker source reports, and its `/health`, `/ready` and
//! `/metrics`: containers seen, registrations published, containers
//! skipped with the reason, the engine's connection, reconciles and
//! events; then every registration's own families, as the registrar
//! reports a flagged service. Atomics, and std mutexes that nothing holds
//! across an await.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::select::Skip;
use crate::http::{Reply, Router};
use crate::prometheus::label_value;
use crate::registrar::endpoints;
use crate::registrar::status::ServiceStatus;

/// The Docker source's state, read by the endpoints.
#[derive(Debug, Default)]
pub struct Report {
    engine_up: AtomicBool,
    synced: AtomicBool,
    seen: AtomicU64,
    reconciles: AtomicU64,
    last_reconcile_us: AtomicU64,
    events: AtomicU64,
    reopens: AtomicU64,
    /// Skipped containers by name: why.
    skipped: Mutex<BTreeMap<String, Skip>>,
    /// The registrations running now.
    services: Mutex<Vec<Arc<ServiceStatus>>>,
}

impl Report {
    /// Whether the engine answers (and the event stream is open).
    pub fn set_engine(&self, up: bool) {
        self.engine_up.store(up, Relaxed);
    }

    /// A full reconcile finished: `seen` running containers, in `took`.
    pub fn reconciled(&self, seen: usize, took: Duration) {
        self.synced.store(true, Relaxed);
        self.seen.store(seen as u64, Relaxed);
        self.reconciles.fetch_add(1, Relaxed);
        self.last_reconcile_us
            .store(took.as_micros() as u64, Relaxed);
    }

    /// Counts an event acted on.
    pub fn event(&self) {
        self.events.fetch_add(1, Relaxed);
    }

    /// Counts a reopened event stream.
    pub fn reopened(&self) {
        self.reopens.fetch_add(1, Relaxed);
    }

    /// Records why `container` is skipped; `true` when that is news (to
    /// be logged: each bad label is logged once, not every resync).
    pub fn skip(&self, container: &str, skip: &Skip) -> bool {
        let mut skipped = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        skipped.insert(container.to_owned(), skip.clone()).as_ref() != Some(skip)
    }

    /// `container` is no longer skipped (registered, or gone).
    pub fn unskip(&self, container: &str) {
        let mut skipped = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        skipped.remove(container);
    }

    /// Keeps only the skipped containers in `running` (a full reconcile).
    pub fn retain_skipped(&self, running: &[&str]) {
        let mut skipped = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        skipped.retain(|name, _| running.contains(&name.as_str()));
    }

    /// The registrations running now.
    pub fn set_services(&self, services: Vec<Arc<ServiceStatus>>) {
        *self.services.lock().unwrap_or_else(|p| p.into_inner()) = services;
    }

    fn services(&self) -> Vec<Arc<ServiceStatus>> {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn skipped(&self) -> BTreeMap<String, Skip> {
        self.skipped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The routes for the Docker source.
pub fn router(report: Arc<Report>) -> Router {
    let for_ready = report.clone();
    Router::new()
        .route("/health", || Reply::text(200, "ok\n"))
        .route("/ready", move || ready(&for_ready))
        .route("/metrics", move || Reply::prometheus(render(&report)))
}

/// Ready: the engine answers, the first reconcile is done, and every
/// registration that its checks and HEALTHCHECK call healthy is published
/// (or withdrawn by maintenance).
fn ready(report: &Report) -> Reply {
    let services = report.services();
    let skipped = report.skipped();
    let engine = report.engine_up.load(Relaxed);
    let synced = report.synced.load(Relaxed);
    let published = services.iter().filter(|s| s.published()).count();
    let caught_up = services
        .iter()
        .all(|s| s.published() || !s.healthy() || s.maintenance());
    let is_ready = engine && synced && caught_up;
    let body = serde_json::json!({
        "ready": is_ready,
        "engine": if engine { "up" } else { "down" },
        "containers": {
            "seen": report.seen.load(Relaxed),
            "skipped": skipped.len(),
        },
        "registrations": {
            "running": services.len(),
            "published": published,
        },
        "skipped": skipped.iter().map(|(container, skip)| serde_json::json!({
            "container": container,
            "reason": skip.reason,
            "message": skip.message,
        })).collect::<Vec<_>>(),
        "services": services.iter().map(|s| serde_json::json!({
            "service": s.name,
            "target": s.target,
            "healthy": s.healthy(),
            "maintenance": s.maintenance(),
            "published": s.published(),
        })).collect::<Vec<_>>(),
    });
    Reply::json(if is_ready { 200 } else { 503 }, &body)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The Prometheus text of the source, then of every registration.
pub fn render(report: &Report) -> String {
    let services = report.services();
    let skipped = report.skipped();
    let mut out = String::with_capacity(2048);
    let plain = |value: u64| vec![(String::new(), value)];
    family(
        &mut out,
        "disco_registrar_docker_engine_up",
        "gauge",
        "Whether the Docker engine answers and its event stream is open.",
        &plain(report.engine_up.load(Relaxed) as u64),
    );
    family(
        &mut out,
        "disco_registrar_docker_containers_seen",
        "gauge",
        "Running containers at the last reconcile.",
        &plain(report.seen.load(Relaxed)),
    );
    let mut by_reason: BTreeMap<&str, u64> = ["label", "network", "port"]
        .iter()
        .map(|r| (*r, 0))
        .collect();
    for skip in skipped.values() {
        *by_reason.entry(skip.reason).or_default() += 1;
    }
    family(
        &mut out,
        "disco_registrar_docker_containers_skipped",
        "gauge",
        "Containers that ask to be registered and are not, by reason.",
        &by_reason
            .iter()
            .map(|(reason, n)| (format!("reason=\"{}\"", label_value(reason)), *n))
            .collect::<Vec<_>>(),
    );
    let published = services.iter().filter(|s| s.published()).count() as u64;
    family(
        &mut out,
        "disco_registrar_docker_registrations",
        "gauge",
        "Registrations of running containers, and how many are published.",
        &[
            ("state=\"running\"".to_owned(), services.len() as u64),
            ("state=\"published\"".to_owned(), published),
        ],
    );
    family(
        &mut out,
        "disco_registrar_docker_reconciles_total",
        "counter",
        "Full reconciles of the engine's containers with the registrations.",
        &plain(report.reconciles.load(Relaxed)),
    );
    let _ = writeln!(
        out,
        "# HELP disco_registrar_docker_reconcile_seconds How long the last reconcile took.\n\
         # TYPE disco_registrar_docker_reconcile_seconds gauge\n\
         disco_registrar_docker_reconcile_seconds {}",
        report.last_reconcile_us.load(Relaxed) as f64 / 1e6
    );
    family(
        &mut out,
        "disco_registrar_docker_events_total",
        "counter",
        "Engine events acted on.",
        &plain(report.events.load(Relaxed)),
    );
    family(
        &mut out,
        "disco_registrar_docker_stream_reopens_total",
        "counter",
        "Times the engine's event stream closed or failed and was reopened.",
        &plain(report.reopens.load(Relaxed)),
    );
    out.push_str(&endpoints::render(&services));
    out
}
