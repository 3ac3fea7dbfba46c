//! The Docker engine's side: listing running containers, inspecting one,
//! the event stream, a swarm service's labels. Docker's types stay here;
//! what leaves is a [`Container`] or an [`Event`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::models;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures_util::{Stream, StreamExt};

use super::container::{Container, Health, Port};
use crate::model::Protocol;

/// How long one request may take: an engine that hangs is an engine down.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The label Docker puts on a swarm task's container.
const SWARM_SERVICE_ID: &str = "com.docker.swarm.service.id";

/// Signals of `docker kill`/`docker stop` that end a container: a `kill`
/// event with another (`HUP` to reload) withdraws nothing.
const STOPPING_SIGNALS: [&str; 8] = [
    "15", "9", "2", "3", "SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT",
];

/// What an event asks of the registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Inspect the container again and register what it wants now
    /// (`start`, `unpause`, `health_status`, network connect/disconnect).
    Refresh {
        /// The container.
        id: String,
        /// `start`, `unpause`, `restart`: whatever stopped it is over.
        started: bool,
    },
    /// Withdraw its registrations at once: `kill`/`stop` (it is stopping,
    /// and stays withdrawn while it does), `pause`.
    Withdraw {
        /// The container.
        id: String,
        /// `kill` or `stop`: it is on its way out.
        stopping: bool,
    },
    /// It has exited or is gone (`die`, `destroy`).
    Gone(String),
}

/// A connected engine.
pub struct Engine {
    docker: Docker,
    /// The engine's host name (`docker info`'s Name).
    pub host: String,
    /// Each swarm service's labels, asked once per reconcile.
    services: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Each container's environment, which does not change in its life
    /// and which a listing does not carry.
    env: Mutex<HashMap<String, Vec<String>>>,
}

/// Why the Docker engine could not be asked: the source logs it, and
/// reconnects with backoff.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No connection, or the engine answered with an error.
    #[error("{0}")]
    Request(#[from] bollard::errors::Error),
    /// The engine did not answer in time.
    #[error("the engine did not answer within {0:?}")]
    NoAnswer(std::time::Duration),
}

async fn timed<T>(
    request: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(TIMEOUT, request).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(EngineError::NoAnswer(TIMEOUT)),
    }
}

impl Engine {
    /// Connects to `DOCKER_HOST`, else `/var/run/docker.sock`, speaking the
    /// engine's API version.
    pub async fn connect() -> Result<Engine, EngineError> {
        let docker = Docker::connect_with_defaults()?;
        let docker = timed(docker.negotiate_version()).await?;
        let info = timed(docker.info()).await?;
        Ok(Engine {
            docker,
            host: info.name.unwrap_or_default(),
            services: Mutex::default(),
            env: Mutex::default(),
        })
    }

    /// The running and paused containers (a paused one is listed with
    /// `running: false`), each with its swarm service's labels when
    /// `swarm`.
    pub async fn list(&self, swarm: bool) -> Result<Vec<Container>, EngineError> {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let summaries = timed(
            self.docker
                .list_containers(Some(ListContainersOptions::default())),
        )
        .await?;
        let mut containers = Vec::with_capacity(summaries.len());
        let mut listed = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let mut container = from_summary(summary);
            listed.push(container.id.clone());
            let known = self
                .env
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&container.id)
                .cloned();
            container.env = match known {
                Some(env) => env,
                None => match self.inspect(&container.id, false).await? {
                    Some(inspected) => inspected.env,
                    // Gone between the listing and now.
                    None => continue,
                },
            };
            if swarm {
                self.add_service_labels(&mut container).await;
            }
            containers.push(container);
        }
        self.env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| listed.contains(id));
        Ok(containers)
    }

    /// One container as it is now; `None` when the engine has no such
    /// container any more.
    pub async fn inspect(&self, id: &str, swarm: bool) -> Result<Option<Container>, EngineError> {
        let inspected = match tokio::time::timeout(TIMEOUT, self.docker.inspect_container(id, None))
            .await
        {
            Ok(Ok(inspected)) => inspected,
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => return Ok(None),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(EngineError::NoAnswer(TIMEOUT)),
        };
        let mut container = from_inspect(inspected);
        self.env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(container.id.clone(), container.env.clone());
        if swarm {
            self.add_service_labels(&mut container).await;
        }
        Ok(Some(container))
    }

    /// A swarm task's service labels under its container's own (the
    /// `deploy.labels` of a stack file land on the service).
    async fn add_service_labels(&self, container: &mut Container) {
        let Some(service) = container.swarm_service.clone() else {
            return;
        };
        let known = self
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&service)
            .cloned();
        let labels = match known {
            Some(labels) => labels,
            None => match timed(self.docker.inspect_service(&service, None)).await {
                Ok(found) => {
                    let labels: BTreeMap<String, String> = found
                        .spec
                        .and_then(|spec| spec.labels)
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    self.services
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(service.clone(), labels.clone());
                    labels
                }
                Err(error) => {
                    tracing::debug!(%service, %error, "cannot read the swarm service's labels");
                    BTreeMap::new()
                }
            },
        };
        for (key, value) in labels {
            container.labels.entry(key).or_insert(value);
        }
    }

    /// The events that concern registrations, from `since` (time since
    /// the epoch) on. Ends (or yields an error) when the engine closes the
    /// stream.
    pub fn events(
        &self,
        since: Duration,
    ) -> impl Stream<Item = Result<Option<Event>, EngineError>> + use<> {
        let filters = HashMap::from([(
            "type".to_owned(),
            vec!["container".to_owned(), "network".to_owned()],
        )]);
        let options = EventsOptions {
            filters: Some(filters),
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            ..EventsOptions::default()
        };
        self.docker
            .events(Some(options))
            .map(|message| message.map(event).map_err(EngineError::from))
    }
}

/// What a Docker event asks, if anything.
fn event(message: models::EventMessage) -> Option<Event> {
    let actor = message.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    let action = message.action.unwrap_or_default();
    match message.typ? {
        models::EventMessageTypeEnum::NETWORK => match action.as_str() {
            "connect" | "disconnect" => attributes.get("container").map(|id| Event::Refresh {
                id: id.clone(),
                started: false,
            }),
            _ => None,
        },
        models::EventMessageTypeEnum::CONTAINER => {
            let id = actor.id?;
            match action.as_str() {
                "start" | "unpause" | "restart" => Some(Event::Refresh { id, started: true }),
                "rename" | "update" => Some(Event::Refresh { id, started: false }),
                "kill" => {
                    let signal = attributes.get("signal").map(String::as_str).unwrap_or("15");
                    STOPPING_SIGNALS
                        .contains(&signal)
                        .then_some(Event::Withdraw { id, stopping: true })
                }
                "stop" => Some(Event::Withdraw { id, stopping: true }),
                "pause" => Some(Event::Withdraw {
                    id,
                    stopping: false,
                }),
                "die" | "destroy" | "oom" => Some(Event::Gone(id)),
                other if other.starts_with("health_status") => {
                    Some(Event::Refresh { id, started: false })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn protocol(text: &str) -> Option<Protocol> {
    match text {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// `8080/tcp` → (8080, tcp).
fn port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, protocol(proto)?))
}

fn address(endpoint: &models::EndpointSettings) -> Option<IpAddr> {
    [&endpoint.ip_address, &endpoint.global_ipv6_address]
        .into_iter()
        .flatten()
        .find_map(|text| text.parse().ok())
}

fn add_port(ports: &mut Vec<Port>, port: u16, protocol: Protocol, published: Option<u16>) {
    match ports
        .iter_mut()
        .find(|p| p.port == port && p.protocol == protocol)
    {
        Some(known) => known.published = known.published.or(published),
        None => ports.push(Port {
            port,
            protocol,
            published,
        }),
    }
}

fn from_inspect(inspected: models::ContainerInspectResponse) -> Container {
    let config = inspected.config.unwrap_or_default();
    let state = inspected.state.unwrap_or_default();
    let settings = inspected.network_settings.unwrap_or_default();
    let mut ports = Vec::new();
    for key in config.exposed_ports.unwrap_or_default() {
        if let Some((port, protocol)) = port_key(&key) {
            add_port(&mut ports, port, protocol, None);
        }
    }
    for (key, bindings) in settings.ports.unwrap_or_default() {
        let Some((port, protocol)) = port_key(&key) else {
            continue;
        };
        let published = bindings
            .unwrap_or_default()
            .iter()
            .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok());
        add_port(&mut ports, port, protocol, published);
    }
    ports.sort_by_key(|p| (p.port, p.protocol == Protocol::Udp));
    let health = state.health.and_then(|h| match h.status? {
        models::HealthStatusEnum::HEALTHY => Some(Health::Healthy),
        models::HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
        models::HealthStatusEnum::STARTING => Some(Health::Starting),
        _ => None,
    });
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    Container {
        id: inspected.id.unwrap_or_default(),
        name: inspected
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        swarm_service: labels.get(SWARM_SERVICE_ID).cloned(),
        labels,
        env: config.env.unwrap_or_default(),
        running: state.running.unwrap_or(false) && !state.paused.unwrap_or(false),
        health,
        ports,
        networks: settings
            .networks
            .unwrap_or_default()
            .iter()
            .map(|(name, endpoint)| (name.clone(), address(endpoint)))
            .collect(),
        host_network: inspected
            .host_config
            .and_then(|h| h.network_mode)
            .is_some_and(|mode| mode == "host"),
        stop_timeout: config
            .stop_timeout
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
    }
}

fn from_summary(summary: models::ContainerSummary) -> Container {
    let mut ports = Vec::new();
    for port in summary.ports.unwrap_or_default() {
        let protocol = match port.typ {
            Some(models::PortSummaryTypeEnum::UDP) => Protocol::Udp,
            Some(models::PortSummaryTypeEnum::TCP) | None => Protocol::Tcp,
            Some(_) => continue,
        };
        add_port(&mut ports, port.private_port, protocol, port.public_port);
    }
    ports.sort_by_key(|p| (p.port, p.protocol == Protocol::Udp));
    // The listing says the HEALTHCHECK's state in its status text
    // ("Up 2 minutes (healthy)") for engines older than API 1.50.
    let status = summary.status.unwrap_or_default();
    let health = if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    };
    let labels: BTreeMap<String, String> = summary.labels.unwrap_or_default().into_iter().collect();
    Container {
        id: summary.id.unwrap_or_default(),
        name: summary
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image: summary.image.unwrap_or_default(),
        swarm_service: labels.get(SWARM_SERVICE_ID).cloned(),
        labels,
        env: Vec::new(),
        running: summary.state == Some(models::ContainerSummaryStateEnum::RUNNING),
        health,
        ports,
        networks: summary
            .network_settings
            .and_then(|s| s.networks)
            .unwrap_or_default()
            .iter()
            .map(|(name, endpoint)| (name.clone(), address(endpoint)))
            .collect(),
        host_network: summary
            .host_config
            .and_then(|h| h.network_mode)
            .is_some_and(|mode| mode == "host"),
        stop_timeout: None,
    }
}
