//! `disco registrar`: the sidecar that health-checks services and publishes
//! or withdraws their registrations in etcd or ZooKeeper (DESIGN §5).
//!
//! # Layout
//!
//! - [`crate::store::publish`]: the store-agnostic
//!   [`Publisher`](crate::store::publish::Publisher) contract the
//!   registrar writes through, and the
//!   [`Target`](crate::store::publish::Target) it publishes to. It lives
//!   with the stores that implement it, so the registrar depends on the
//!   backends and never the reverse; [`crate::store::publisher_for`]
//!   picks one for a target.
//! - [`config`]: flags, environment, the config file and `-s` specs merged
//!   into validated services (bad input exits 64 before anything is
//!   published); [`dockstack`] parses `-s`, [`address`] answers
//!   `--address auto`.
//! - [`check`]: the checks, one file per kind behind one trait.
//! - [`health`]: the rise/fall state machine (pure).
//! - [`checker`]: runs the checks every interval, with jitter, into the
//!   state machine.
//! - [`publishing`]: the publisher loop, following health, maintenance
//!   and the registration.
//! - [`follow`]: a DockStack registration follows its container's
//!   published port while its checks fail.
//! - [`containers`]: `--docker`, registrations from the engine's
//!   containers and their labels, kept equal to the engine.
//! - [`role`]: `--elect`: the fencing rule, the role file and the hook;
//!   the publisher loop drives the store's election with them.
//! - [`maintenance`], [`docker`], [`endpoints`], [`status`]: the
//!   maintenance file, the DockStack port lookup, `/health` `/ready`
//!   `/metrics`, and what they report.
//!
//! Each service runs two tasks: its checker, which keeps checking whatever
//! the store does, and its publisher loop, which makes the store agree
//! with the checker (and the maintenance file) and retries while the store
//! is away.

pub mod address;
pub mod check;
pub mod checker;
pub mod config;
pub mod containers;
pub mod docker;
pub mod dockstack;
pub mod endpoints;
pub mod follow;
pub mod health;
pub mod maintenance;
mod page;
pub mod publishing;
pub mod role;
pub mod status;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use config::{RegistrarConfig, ServiceConfig};
use status::{CheckStatus, ServiceStatus};

/// Why the registrar could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// Bad configuration found while preparing (exit 64).
    #[error("{0}")]
    Config(String),
    /// A runtime failure such as a port in use (exit 1).
    #[error("{0}")]
    Runtime(String),
}

/// A running registrar.
pub struct Running {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    publishers: TaskTracker,
    drain: Duration,
    /// Where the endpoints listen, if they do.
    pub http_addr: Option<SocketAddr>,
}

impl Running {
    /// Withdraws every registration (and ends the leases or sessions),
    /// waits `--drain`, and stops.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.publishers.close();
        self.publishers.wait().await;
        if !self.drain.is_zero() {
            tracing::info!(drain = ?self.drain, "withdrawn; draining before exit");
            tokio::time::sleep(self.drain).await;
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// A DockStack registration whose port Docker gave: the container and the
/// host's address, to follow it.
struct FromDocker {
    spec: dockstack::DockStackSpec,
    address: IpAddr,
}

/// Resolves a DockStack service: the published port from Docker, else the
/// container field as the host; the instance id from those; the check from
/// the spec's type. `Some` when Docker gave the port: that one is followed.
async fn resolve_dockstack(
    service: &mut ServiceConfig,
) -> Result<Option<FromDocker>, RegistrarError> {
    let Some(spec) = service.dockstack.clone() else {
        return Ok(None);
    };
    let (host, port, from_docker) = match docker::published_port(&spec.container, spec.port).await {
        Ok(published) => {
            let host = match std::env::var("SERVICE_HOST").ok().filter(|h| !h.is_empty()) {
                Some(host) => host,
                None => address::auto()
                    .map_err(|e| {
                        RegistrarError::Config(format!(
                            "-s {}: set SERVICE_HOST, the host's address ({e})",
                            spec.name
                        ))
                    })?
                    .to_string(),
            };
            tracing::info!(container = %spec.container, port = spec.port, published, "Docker publishes the container's port");
            (host, published, true)
        }
        Err(reason) => {
            tracing::info!(container = %spec.container, %reason, "no Docker container; checking and registering the field as a host");
            (
                spec.container.trim_matches(['[', ']']).to_owned(),
                spec.port,
                false,
            )
        }
    };
    let address = resolve_host(&host).await.map_err(|e| {
        RegistrarError::Config(format!("-s {}: cannot resolve {host:?}: {e}", spec.name))
    })?;
    service.registration.address = address;
    service.registration.port = Some(port);
    service.registration.id = dockstack::instance_id(address, port);
    service.checks = vec![dockstack::check_spec(
        spec.check,
        SocketAddr::new(address, port),
    )];
    Ok(from_docker.then_some(FromDocker { spec, address }))
}

/// Two `-s` specs that came to register one instance (the same address
/// and port, service and node directory) would each delete the other's
/// node as an older one of its own.
fn refuse_twice_registered(services: &[ServiceConfig]) -> Result<(), RegistrarError> {
    let mut seen = std::collections::HashMap::new();
    for service in services {
        let Some(spec) = &service.dockstack else {
            continue;
        };
        let registration = &service.registration;
        let key = (
            service.target.registry.to_string(),
            service.target.path.clone(),
            registration.service.clone(),
            registration.id.clone(),
        );
        if let Some(first) = seen.insert(key, spec) {
            let at = SocketAddr::new(registration.address, registration.port.unwrap_or(spec.port));
            return Err(RegistrarError::Config(format!(
                "-s {}: containers {:?} and {:?} both register it at {at}, one instance twice",
                spec.name, first.container, spec.container
            )));
        }
    }
    Ok(())
}

/// `host`'s first address (an IP is its own).
async fn resolve_host(host: &str) -> std::io::Result<IpAddr> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    (tokio::net::lookup_host((host, 0)).await?)
        .map(|a| a.ip())
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address"))
}

/// Starts checking and publishing every service, and the endpoints.
/// Nothing is published before the publishers are built and the
/// maintenance file has been looked at.
pub async fn start(mut config: RegistrarConfig) -> Result<Running, RegistrarError> {
    let mut from_docker = Vec::new();
    for service in &mut config.services {
        from_docker.push(resolve_dockstack(service).await?);
    }
    refuse_twice_registered(&config.services)?;
    let mut prepared = Vec::new();
    for (service, from_docker) in config.services.into_iter().zip(from_docker) {
        let publisher = if service.elect.is_some() {
            crate::store::elected_publisher_for(&service.target, &config.etcd, &config.zk)
        } else {
            crate::store::publisher_for(&service.target, &config.etcd, &config.zk)
        }
        .map_err(|e| RegistrarError::Config(e.to_string()))?;
        let checks = service
            .checks
            .iter()
            .map(|spec| spec.build(service.timeout))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RegistrarError::Config(e.to_string()))?;
        prepared.push((service, publisher, checks, from_docker));
    }
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let publishers = TaskTracker::new();
    let in_maintenance = config
        .maintenance_file
        .as_deref()
        .is_some_and(maintenance::exists);
    let (maintenance_tx, maintenance_rx) = watch::channel(in_maintenance);
    if in_maintenance {
        tracing::warn!("maintenance file present: nothing is published until it is removed");
    }
    if let Some(path) = config.maintenance_file.clone() {
        tracker.spawn(maintenance::follow(path, maintenance_tx, shutdown.clone()));
    }
    let docker_report = config.docker.clone().map(|docker| {
        let report = containers::new_report();
        let source = containers::source::Source {
            options: docker.options,
            resync: docker.resync,
            target: docker.target,
            etcd: config.etcd.clone(),
            zk: config.zk.clone(),
            maintenance: maintenance_rx.clone(),
            publishers: publishers.clone(),
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
            report: report.clone(),
        };
        tracing::info!(resync = ?docker.resync, "registering the Docker engine's containers");
        tracker.spawn(source.run());
        report
    });
    let mut statuses = Vec::new();
    for (service, publisher, checks, from_docker) in prepared {
        let registration = service.registration;
        let name = format!("{}/{}", registration.service, registration.id);
        let check_status = checks
            .iter()
            .map(|c| CheckStatus::new(c.describe()))
            .collect();
        let status = Arc::new(ServiceStatus::new(name, publisher.describe(), check_status));
        status.set_maintenance(in_maintenance);
        statuses.push(status.clone());
        let (healthy_tx, healthy_rx) = watch::channel(false);
        let (registration_tx, registration_rx) = watch::channel(registration.clone());
        let following = from_docker.map(|FromDocker { spec, address }| follow::Following {
            follow: dockstack::PortFollow::new(
                registration.port.unwrap_or(spec.port),
                service.interval,
                tokio::time::Instant::now(),
            ),
            lookup: docker::lookup(spec.container.clone(), spec.port),
            container: spec.container,
            check: spec.check,
            address,
            timeout: service.timeout,
            registration: registration_tx,
        });
        let checker = checker::Checker {
            checks,
            interval: service.interval,
            thresholds: service.thresholds,
            status: status.clone(),
            following,
        };
        tracker.spawn(checker.run(healthy_tx, shutdown.clone()));
        let mut maintenance = maintenance_rx.clone();
        let for_status = status.clone();
        let shutdown_for_maintenance = shutdown.clone();
        tracker.spawn(async move {
            let follow = async {
                while maintenance.changed().await.is_ok() {
                    for_status.set_maintenance(*maintenance.borrow());
                }
            };
            shutdown_for_maintenance.run_until_cancelled(follow).await;
        });
        tracing::info!(service = %status.name, target = %status.target, address = %registration.address, port = ?registration.port, "checking");
        let electing = service.elect.map(|config| {
            let hooks = config.on_role_change.clone().map(|command| {
                let (hooks, changes) = tokio::sync::mpsc::unbounded_channel();
                tracker.spawn(role::report::run_hooks(
                    command,
                    registration.service.to_string(),
                    changes,
                    shutdown.clone(),
                ));
                hooks
            });
            tracing::info!(service = %status.name, tag = %config.tag, "campaigning while healthy (--elect)");
            publishing::Electing { config, hooks }
        });
        let publishing = publishing::Publishing {
            publisher,
            registration: registration_rx,
            status,
        };
        publishers.spawn(publishing.run_with_roles(
            healthy_rx,
            maintenance_rx.clone(),
            shutdown.clone(),
            electing,
        ));
    }
    let http_addr = match config.http_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| RegistrarError::Runtime(format!("cannot listen on {addr}: {e}")))?;
            let local = listener.local_addr().ok();
            if let Some(local) = local {
                tracing::info!("endpoints on {local} (/health, /ready, /metrics)");
            }
            let router = match docker_report {
                Some(report) => containers::report::router(report),
                None => endpoints::router(statuses.into()),
            };
            tracker.spawn(crate::http::serve(
                listener,
                router,
                shutdown.clone(),
                tracker.clone(),
            ));
            local
        }
        None => None,
    };
    Ok(Running {
        shutdown,
        tracker,
        publishers,
        drain: config.drain,
        http_addr,
    })
}
