//! The Docker side of the DockStack form: the host port a container
//! publishes for `port/tcp` (what `docker port CONTAINER PORT` prints),
//! asked of the engine at `DOCKER_HOST` or `/var/run/docker.sock`.

use std::time::Duration;

/// How long the engine may take to answer: a registrar must not hang at
/// startup because a socket is there but nothing serves it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Why Docker gives no published port for a DockStack container. The
/// caller falls back to the container field as a host, logging this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortLookupError {
    /// No engine to ask at `DOCKER_HOST` or the default socket.
    #[error("no Docker engine (DOCKER_HOST or /var/run/docker.sock): {0}")]
    NoEngine(String),
    /// The engine's socket is there, but nothing answered in time.
    #[error("the Docker engine did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The engine does not know the container.
    #[error("Docker has no container {container:?}: {reason}")]
    NoContainer {
        /// The `-s` field's container.
        container: String,
        /// The engine's answer.
        reason: String,
    },
    /// The container runs but does not publish the port.
    #[error(
        "container {container:?} does not publish {port}/tcp (publish it with -p, or give the host in -s)"
    )]
    NotPublished {
        /// The `-s` field's container.
        container: String,
        /// The container's port asked for.
        port: u16,
    },
}

/// The host port `container` publishes for `port/tcp`. `Err` says why
/// there is none (no engine, no such container, the port not published),
/// and the caller falls back to the container field as a host.
pub async fn published_port(container: &str, port: u16) -> Result<u16, PortLookupError> {
    let docker = bollard::Docker::connect_with_defaults()
        .map_err(|e| PortLookupError::NoEngine(e.to_string()))?;
    let inspected = tokio::time::timeout(TIMEOUT, docker.inspect_container(container, None))
        .await
        .map_err(|_| PortLookupError::NoAnswer(TIMEOUT))?
        .map_err(|e| PortLookupError::NoContainer {
            container: container.to_owned(),
            reason: e.to_string(),
        })?;
    let key = format!("{port}/tcp");
    inspected
        .network_settings
        .and_then(|settings| settings.ports)
        .and_then(|mut ports| ports.remove(&key))
        .flatten()
        .unwrap_or_default()
        .iter()
        .find_map(|binding| binding.host_port.as_deref()?.parse::<u16>().ok())
        .ok_or_else(|| PortLookupError::NotPublished {
            container: container.to_owned(),
            port,
        })
}

/// The lookup a DockStack registration follows its container with: each
/// call asks the engine again (a new client each time, so that an engine
/// restarted meanwhile is found again).
pub fn lookup(container: String, port: u16) -> super::follow::PortLookup {
    Box::new(move || {
        let container = container.clone();
        Box::pin(async move { published_port(&container, port).await })
    })
}
