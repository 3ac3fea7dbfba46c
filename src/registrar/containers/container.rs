//! What the engine says about one container, in the registrar's own terms:
//! filled by [`super::engine`] from a listing or an inspection, read by the
//! pure parts ([`super::labels`], [`super::select`]). No Docker type
//! appears here, so those parts are table-tested without an engine.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::model::Protocol;

/// The container's HEALTHCHECK state, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not yet passed (Docker's `starting`): not published.
    Starting,
    /// Docker calls it `healthy`: published.
    Healthy,
    /// Docker calls it `unhealthy`: withdrawn.
    Unhealthy,
}

/// One port the container exposes, and where the host publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The container's port.
    pub port: u16,
    /// Its protocol.
    pub protocol: Protocol,
    /// The host port it is published on, if it is.
    pub published: Option<u16>,
}

/// One running (or paused) container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The engine's id (64 hex digits).
    pub id: String,
    /// Its name, without the leading `/`.
    pub name: String,
    /// The image it runs, as given (`library/redis:7`).
    pub image: String,
    /// Its labels; for a swarm task, the service's labels under the
    /// container's own.
    pub labels: BTreeMap<String, String>,
    /// Its environment, `KEY=value` (registrator read `SERVICE_*` there).
    pub env: Vec<String>,
    /// Running and not paused.
    pub running: bool,
    /// The HEALTHCHECK state; `None` without a HEALTHCHECK.
    pub health: Option<Health>,
    /// Exposed ports, each once, sorted.
    pub ports: Vec<Port>,
    /// Its address on each network it is attached to (`None`: attached,
    /// without an address, e.g. the host network).
    pub networks: BTreeMap<String, Option<IpAddr>>,
    /// It shares the host's network stack (`--network host`).
    pub host_network: bool,
    /// The swarm service it is a task of, if any.
    pub swarm_service: Option<String>,
    /// Its own stop timeout (`docker run --stop-timeout`, compose's
    /// `stop_grace_period`), when an inspection gave one: what `docker
    /// stop` waits before SIGKILL, the container's drain.
    pub stop_timeout: Option<Duration>,
}

impl Container {
    /// The exposed port `port`/`protocol`, if the container exposes it.
    pub fn port(&self, port: u16, protocol: Protocol) -> Option<&Port> {
        self.ports
            .iter()
            .find(|p| p.port == port && p.protocol == protocol)
    }

    /// The image's base name, what registrator named a service without a
    /// name label after: `registry:5000/team/redis:7` is `redis`.
    pub fn image_name(&self) -> &str {
        let without_digest = self.image.split('@').next().unwrap_or_default();
        let last = without_digest.rsplit('/').next().unwrap_or_default();
        last.split(':').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_name_is_the_last_path_element_without_tag_or_digest() {
        let named = |image: &str| {
            let container = Container {
                image: image.to_owned(),
                ..Container::default()
            };
            container.image_name().to_owned()
        };
        assert_eq!(named("redis"), "redis");
        assert_eq!(named("library/redis:7"), "redis");
        assert_eq!(named("registry:5000/team/web:1.2"), "web");
        assert_eq!(named("web@sha256:abc"), "web");
    }
}
