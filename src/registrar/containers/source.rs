//! The Docker source's event loop: connects to the engine (retrying with
//! backoff, never exiting because of it), opens the event stream, runs a
//! full reconcile, then acts on each event and reconciles again every
//! `--resync`. A stream that closes or fails is logged once, reopened with
//! backoff and followed by a reconcile, so a missed event costs at most
//! one interval.
//!
//! Each registration runs as a flagged service does: its publisher loop
//! ([`crate::registrar::publishing`]), its checker when labels give
//! checks, and a small task that turns the HEALTHCHECK's verdict and the
//! checks' into one "healthy". Stopping a registration cancels its tasks;
//! the publisher loop withdraws it. A registration started again under the
//! same key waits for the old one's withdrawal, so the two never race on
//! one key.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::engine::{Engine, Event};
use super::plan::{Changes, Scope, plan, stopping_window};
use super::report::Report;
use super::select::{Key, Options, Wanted, registrations};
use crate::backoff::Backoff;
use crate::config::{EtcdSettings, ZkSettings};
use crate::model::Instance;
use crate::registrar::checker::Checker;
use crate::registrar::publishing::{Electing, Publishing};
use crate::registrar::role::ElectConfig;
use crate::registrar::status::{CheckStatus, ServiceStatus};
use crate::store::publish::Target;

/// Everything the source needs, built by [`crate::registrar::start`].
pub struct Source {
    /// How containers are read.
    pub options: Options,
    /// Time between full reconciles.
    pub resync: Duration,
    /// Where registrations go.
    pub target: Target,
    /// etcd TLS and credentials.
    pub etcd: EtcdSettings,
    /// ZooKeeper credentials.
    pub zk: ZkSettings,
    /// Whether the maintenance file exists.
    pub maintenance: watch::Receiver<bool>,
    /// Where publisher loops run (waited for at shutdown).
    pub publishers: TaskTracker,
    /// Where checkers and helpers run.
    pub tracker: TaskTracker,
    /// SIGTERM.
    pub shutdown: CancellationToken,
    /// What the endpoints read.
    pub report: Arc<Report>,
}

/// One running registration.
struct Entry {
    wanted: Wanted,
    registration: watch::Sender<Instance>,
    docker_health: watch::Sender<bool>,
    cancel: CancellationToken,
    publishing: JoinHandle<()>,
    status: Arc<ServiceStatus>,
}

impl Borrow<Wanted> for Entry {
    fn borrow(&self) -> &Wanted {
        &self.wanted
    }
}

/// The loop's state.
struct State {
    source: Source,
    running: BTreeMap<Key, Entry>,
    /// Registrations stopped and still withdrawing.
    closing: HashMap<Key, JoinHandle<()>>,
    /// Containers withdrawn at `kill`/`stop`, until they die (or start
    /// again), at most until the instant given
    /// ([`super::plan::stopping_window`]): a reconcile meanwhile does not
    /// publish them again.
    stopping: HashMap<String, Instant>,
}

/// Why the connection to the engine is given up and made again.
struct Broken(String);

impl Source {
    /// Runs until `shutdown`.
    pub async fn run(self) {
        let shutdown = self.shutdown.clone();
        let mut state = State {
            source: self,
            running: BTreeMap::new(),
            closing: HashMap::new(),
            stopping: HashMap::new(),
        };
        shutdown.run_until_cancelled(state.connected_loop()).await;
    }
}

impl State {
    async fn connected_loop(&mut self) {
        let mut backoff = Backoff::new();
        let mut outage = false;
        loop {
            let result = match Engine::connect().await {
                Ok(engine) => {
                    self.source.options.host = engine.host.clone();
                    self.follow(&engine, &mut outage, &mut backoff).await
                }
                Err(error) => Err(Broken(format!("cannot reach the Docker engine: {error}"))),
            };
            let Err(Broken(reason)) = result;
            self.source.report.set_engine(false);
            if outage {
                tracing::debug!(%reason, "the Docker engine is still away");
            } else {
                outage = true;
                self.source.report.reopened();
                tracing::warn!(%reason, "lost the Docker engine's events; registrations stay as they are, reopening with backoff");
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Opens the event stream, reconciles, then follows events and
    /// reconciles every `--resync` until something breaks.
    async fn follow(
        &mut self,
        engine: &Engine,
        outage: &mut bool,
        backoff: &mut Backoff,
    ) -> Result<std::convert::Infallible, Broken> {
        // Events from just before the listing: one that happens while it
        // runs is replayed rather than missed (acting twice is harmless).
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(Duration::from_secs(1));
        let mut events = Box::pin(engine.events(since));
        self.reconcile(engine).await?;
        self.source.report.set_engine(true);
        if std::mem::take(outage) {
            tracing::info!("the Docker engine answers again; reconciled");
        }
        backoff.reset();
        let mut resync = tokio::time::interval(self.source.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        loop {
            tokio::select! {
                _ = resync.tick() => self.reconcile(engine).await?,
                item = events.next() => match item {
                    Some(Ok(Some(event))) => {
                        self.source.report.event();
                        self.on_event(engine, event).await;
                    }
                    Some(Ok(None)) => {}
                    Some(Err(error)) => {
                        return Err(Broken(format!("the event stream failed: {error}")));
                    }
                    None => return Err(Broken("the engine closed the event stream".to_owned())),
                },
            }
        }
    }

    /// The engine's running containers against the running registrations,
    /// both ways.
    async fn reconcile(&mut self, engine: &Engine) -> Result<(), Broken> {
        let started = Instant::now();
        let containers = engine
            .list(self.source.options.swarm)
            .await
            .map_err(|e| Broken(format!("cannot list containers: {e}")))?;
        let now = Instant::now();
        self.stopping.retain(|_, until| now < *until);
        let mut wanted = Vec::new();
        let mut names = Vec::new();
        for container in &containers {
            names.push(container.name.as_str());
            if !container.running || self.stopping.contains_key(&container.id) {
                continue;
            }
            match registrations(container, &self.source.options) {
                Ok(more) => {
                    self.source.report.unskip(&container.name);
                    wanted.extend(more);
                }
                Err(skip) => self.skipped(&container.name, &skip),
            }
        }
        self.source.report.retain_skipped(&names);
        let changes = plan(&wanted, &self.running, Scope::All);
        if !changes.start.is_empty() || !changes.stop.is_empty() {
            tracing::info!(
                containers = containers.len(),
                start = changes.start.len(),
                stop = changes.stop.len(),
                "reconciled with the engine"
            );
        }
        self.apply(changes);
        self.source
            .report
            .reconciled(containers.len(), started.elapsed());
        Ok(())
    }

    fn skipped(&self, container: &str, skip: &super::select::Skip) {
        if self.source.report.skip(container, skip) {
            tracing::warn!(%container, reason = skip.reason, "not registered: {}", skip.message);
        }
    }

    async fn on_event(&mut self, engine: &Engine, event: Event) {
        match event {
            Event::Refresh { id, started } => {
                if started {
                    self.stopping.remove(&id);
                }
                if self.stopping.contains_key(&id) {
                    return;
                }
                let wanted = match engine.inspect(&id, self.source.options.swarm).await {
                    Ok(Some(container)) if container.running => {
                        match registrations(&container, &self.source.options) {
                            Ok(wanted) => {
                                self.source.report.unskip(&container.name);
                                wanted
                            }
                            Err(skip) => {
                                self.skipped(&container.name, &skip);
                                Vec::new()
                            }
                        }
                    }
                    Ok(_) => Vec::new(),
                    Err(error) => {
                        // The next reconcile repairs it.
                        tracing::debug!(container = %id, %error, "cannot inspect the container");
                        return;
                    }
                };
                let changes = plan(&wanted, &self.running, Scope::Container(&id));
                self.apply(changes);
            }
            Event::Withdraw { id, stopping } => {
                // Withdrawn first; how long it stays so is asked after.
                let drain = self
                    .running
                    .values()
                    .filter(|entry| entry.wanted.key.container == id)
                    .filter_map(|entry| entry.wanted.drain)
                    .max();
                let resync = self.source.resync;
                let window = |stop_timeout| stopping_window(resync, stop_timeout, drain);
                if stopping {
                    self.stopping
                        .insert(id.clone(), Instant::now() + window(None));
                }
                let changes = plan(&[], &self.running, Scope::Container(&id));
                self.apply(changes);
                if stopping
                    && let Ok(Some(container)) = engine.inspect(&id, false).await
                    && container.stop_timeout.is_some()
                    && let Some(until) = self.stopping.get_mut(&id)
                {
                    *until = Instant::now() + window(container.stop_timeout);
                }
            }
            Event::Gone(id) => {
                self.stopping.remove(&id);
                let changes = plan(&[], &self.running, Scope::Container(&id));
                self.apply(changes);
            }
        }
    }

    fn apply(&mut self, changes: Changes) {
        if changes.is_empty() {
            return;
        }
        self.closing.retain(|_, handle| !handle.is_finished());
        for key in &changes.stop {
            self.stop(key, "withdrawing");
        }
        for wanted in changes.restart {
            self.stop(&wanted.key, "its checks changed; registering anew");
            self.start(wanted);
        }
        for wanted in changes.start {
            self.start(wanted);
        }
        for wanted in changes.update {
            if let Some(entry) = self.running.get_mut(&wanted.key) {
                entry.registration.send_replace(wanted.registration.clone());
                entry.wanted = wanted;
            }
        }
        for (key, healthy) in changes.health {
            if let Some(entry) = self.running.get_mut(&key) {
                tracing::info!(service = %entry.status.name, container = %entry.wanted.container_name, healthy, "the HEALTHCHECK says");
                entry.docker_health.send_replace(healthy);
                entry.wanted.docker_health = Some(healthy);
            }
        }
        self.source.report.set_services(
            self.running
                .values()
                .map(|entry| entry.status.clone())
                .collect(),
        );
    }

    fn stop(&mut self, key: &Key, why: &str) {
        if let Some(entry) = self.running.remove(key) {
            tracing::info!(service = %entry.status.name, container = %entry.wanted.container_name, "{why}");
            entry.cancel.cancel();
            self.closing.insert(key.clone(), entry.publishing);
        }
    }

    fn start(&mut self, wanted: Wanted) {
        let source = &self.source;
        let publisher = if wanted.elect.is_some() {
            crate::store::elected_publisher_for(&source.target, &source.etcd, &source.zk)
        } else {
            crate::store::publisher_for(&source.target, &source.etcd, &source.zk)
        };
        let publisher = match publisher {
            Ok(publisher) => publisher,
            Err(error) => {
                // The target was checked at startup.
                tracing::error!(%error, "cannot publish");
                return;
            }
        };
        let checks = match wanted
            .checks
            .iter()
            .map(|spec| spec.build(wanted.timeout))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(checks) => checks,
            Err(error) => {
                let skip = super::select::Skip {
                    reason: "label",
                    message: format!("a check cannot be built: {error}"),
                };
                self.skipped(&wanted.container_name, &skip);
                return;
            }
        };
        let registration = &wanted.registration;
        let name = format!("{}/{}", registration.service, registration.id);
        let status = Arc::new(ServiceStatus::new(
            name,
            publisher.describe(),
            checks
                .iter()
                .map(|c| CheckStatus::new(c.describe()))
                .collect(),
        ));
        status.set_maintenance(*source.maintenance.borrow());
        let cancel = source.shutdown.child_token();
        let (docker_tx, docker_rx) = watch::channel(wanted.docker_health.unwrap_or(true));
        let (healthy_tx, healthy_rx) = watch::channel(false);
        let checks_rx = if checks.is_empty() {
            None
        } else {
            let (checks_tx, checks_rx) = watch::channel(false);
            let checker = Checker {
                checks,
                interval: wanted.interval,
                thresholds: wanted.thresholds,
                status: status.clone(),
                following: None,
            };
            source.tracker.spawn(checker.run(checks_tx, cancel.clone()));
            Some(checks_rx)
        };
        source.tracker.spawn(combine(
            docker_rx,
            checks_rx,
            source.maintenance.clone(),
            healthy_tx,
            status.clone(),
            cancel.clone(),
        ));
        let (registration_tx, registration_rx) = watch::channel(registration.clone());
        let publishing = Publishing {
            publisher,
            registration: registration_rx,
            status: status.clone(),
        };
        // `disco.elect`: the role is told through DNS (and `/ready`,
        // `/metrics`) only; a label runs no command in the registrar.
        let electing = wanted.elect.clone().map(|tag| {
            tracing::info!(service = %status.name, container = %wanted.container_name, %tag, "campaigning while healthy (disco.elect)");
            Electing {
                config: ElectConfig {
                    tag,
                    role_file: None,
                    on_role_change: None,
                },
                hooks: None,
            }
        });
        let earlier = self.closing.remove(&wanted.key);
        let maintenance = source.maintenance.clone();
        let shutdown = cancel.clone();
        let handle = source.publishers.spawn(async move {
            if let Some(earlier) = earlier {
                let _ = earlier.await;
            }
            publishing
                .run_with_roles(healthy_rx, maintenance, shutdown, electing)
                .await;
        });
        tracing::info!(service = %status.name, container = %wanted.container_name, address = %registration.address, port = ?registration.port, healthcheck = wanted.docker_health.is_some(), "registering");
        self.running.insert(
            wanted.key.clone(),
            Entry {
                wanted,
                registration: registration_tx,
                docker_health: docker_tx,
                cancel,
                publishing: handle,
                status,
            },
        );
    }
}

/// Healthy while the HEALTHCHECK (if any) and the label checks (if any)
/// both say so; also follows maintenance into the status.
async fn combine(
    mut docker: watch::Receiver<bool>,
    mut checks: Option<watch::Receiver<bool>>,
    mut maintenance: watch::Receiver<bool>,
    healthy: watch::Sender<bool>,
    status: Arc<ServiceStatus>,
    cancel: CancellationToken,
) {
    let follow = async {
        loop {
            let docker_ok = *docker.borrow_and_update();
            let checks_ok = checks.as_mut().is_none_or(|c| *c.borrow_and_update());
            if checks.is_none() {
                status.set_healthy(docker_ok);
            }
            status.set_maintenance(*maintenance.borrow_and_update());
            healthy.send_if_modified(|state| {
                let now = docker_ok && checks_ok;
                std::mem::replace(state, now) != now
            });
            let checks_changed = async {
                match checks.as_mut() {
                    Some(c) => c.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Ok(()) = docker.changed() => {}
                Ok(()) = checks_changed => {}
                Ok(()) = maintenance.changed() => {}
                else => break,
            }
        }
    };
    cancel.run_until_cancelled(follow).await;
}
