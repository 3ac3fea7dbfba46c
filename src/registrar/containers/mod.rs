//! `disco registrar --docker`: one registrar per host registers the
//! running containers whose labels ask for it, and keeps the store equal
//! to the engine (DESIGN §5, "Registration from Docker"). Another source
//! of the same registrations: the checker, the health machine and the
//! publishers do not know that a registration came from a container.
//!
//! # Layout
//!
//! - [`container`]: what the engine says about one container, in our
//!   terms (pure data).
//! - [`labels`]: a container's labels (disco's, and registrator's
//!   `SERVICE_*` labels and environment) into the services it asks for.
//! - [`select`]: a container and the flags into the registrations it
//!   wants: address and port, network, stable instance id, checks.
//! - [`plan`]: the reconcile, wanted against running, both ways.
//! - [`engine`]: the Docker engine (bollard): listing, inspecting,
//!   events, swarm service labels.
//! - [`source`]: the event loop: reconnects with backoff, reconciles at
//!   start, after every reopened stream and every `--resync`, and runs
//!   each registration's publisher loop and checks.
//! - [`report`]: `/health`, `/ready` and `/metrics` for it.
//!
//! The first four are pure and table-tested; the engine is met in
//! `tests/containers/registrar_docker.rs`.

pub mod container;
pub mod engine;
pub mod labels;
pub mod plan;
pub mod report;
pub mod select;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use crate::store::publish::Target;

/// The validated `--docker` settings.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// How containers are read into registrations.
    pub options: select::Options,
    /// `--resync`: time between full reconciles.
    pub resync: Duration,
    /// Where and how registrations are published.
    pub target: Target,
}

/// The shared report a started source writes and the endpoints read.
pub fn new_report() -> Arc<report::Report> {
    Arc::new(report::Report::default())
}
