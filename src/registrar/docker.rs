//! The Docker side of the DockStack form: the host port a container
//! publishes for `port/tcp` (what `docker port CONTAINER PORT` prints),
//! asked of the engine at `DOCKER_HOST` or `/var/run/docker.sock`.

use std::time::Duration;

/// How long the engine may take to answer: a registrar must not hang at
/// startup because a socket is there but nothing serves it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The host port `container` publishes for `port/tcp`. `Err` says why
/// there is none (no engine, no such container, the port not published),
/// and the caller falls back to the container field as a host.
pub async fn published_port(container: &str, port: u16) -> Result<u16, String> {
    let docker =
        bollard::Docker::connect_with_defaults().map_err(|e| format!("no Docker engine: {e}"))?;
    let inspected = tokio::time::timeout(TIMEOUT, docker.inspect_container(container, None))
        .await
        .map_err(|_| format!("the Docker engine did not answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("Docker has no container {container:?}: {e}"))?;
    let key = format!("{port}/tcp");
    inspected
        .network_settings
        .and_then(|settings| settings.ports)
        .and_then(|mut ports| ports.remove(&key))
        .flatten()
        .unwrap_or_default()
        .iter()
        .find_map(|binding| binding.host_port.as_deref()?.parse::<u16>().ok())
        .ok_or_else(|| format!("container {container:?} does not publish {key}"))
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
