//! From a container and the registrar's options to the registrations it
//! wants: which address and port (§ "Address and port" of the issue: the
//! host's address and the published port by default; the container's own
//! address on a network and its container port with `--internal`,
//! `disco.network` or for a swarm task), which instance id (stable per
//! container, so that a restarted registrar writes the same keys), which
//! checks. Pure; a container it cannot register is a [`Skip`] saying why.

use std::net::IpAddr;
use std::time::Duration;

use super::container::{Container, Health};
use super::labels::{self, LabelCheck, ServiceLabels};
use crate::model::{Instance, InstanceId, Ports, Protocol};
use crate::registrar::check::CheckSpec;
use crate::registrar::health::Thresholds;
use crate::store::publish::Format;

/// What the flags say about every container.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--address`: the host's, registered with published ports.
    pub address: IpAddr,
    /// `--internal`: the container's own address and port.
    pub internal: bool,
    /// `--network`: the network of a container on several.
    pub network: Option<String>,
    /// `--all`: containers without labels too.
    pub all: bool,
    /// The engine's host name, which instance ids begin with (container
    /// names are unique on a host only); empty for none.
    pub host: String,
    /// `--swarm`: swarm tasks are registered at their address on the
    /// service's network.
    pub swarm: bool,
    /// The checks' defaults (`--interval`, `--timeout`, `--rise`, `--fall`).
    pub interval: Duration,
    /// Default time one check may take.
    pub timeout: Duration,
    /// Default rise and fall.
    pub thresholds: Thresholds,
    /// The format written (`--format`): `disco.elect` needs disco's own,
    /// the only one with tags.
    pub format: Format,
}

/// Which registration of which container: the reconcile's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The container's id.
    pub container: String,
    /// The service.
    pub service: String,
    /// The instance id.
    pub instance: String,
}

/// One registration a container wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its key.
    pub key: Key,
    /// The container's name, for logs.
    pub container_name: String,
    /// What is published.
    pub registration: Instance,
    /// The registrar's own checks (labels); empty for none.
    pub checks: Vec<CheckSpec>,
    /// Between rounds of checks.
    pub interval: Duration,
    /// One check's limit.
    pub timeout: Duration,
    /// Rise and fall of the checks.
    pub thresholds: Thresholds,
    /// The HEALTHCHECK's verdict: `None` without one, else whether it
    /// says healthy.
    pub docker_health: Option<bool>,
    /// `disco.elect`: the leader's tag; the registration campaigns.
    pub elect: Option<String>,
    /// `disco.drain`: once the container is stopping, withdrawn at least
    /// this long while it still runs.
    pub drain: Option<Duration>,
}

/// Why a container that asked to be registered is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// For `/metrics`: `label`, `port` or `network`.
    pub reason: &'static str,
    /// For the log and `/ready`: what is wrong and what to do.
    pub message: String,
}

/// The registrations `container` wants; empty when it asks for none.
pub fn registrations(container: &Container, options: &Options) -> Result<Vec<Wanted>, Skip> {
    let swarm_task = options.swarm && container.swarm_service.is_some();
    let internal = options.internal || swarm_task;
    let services = labels::read(container, options.all, internal).map_err(|e| Skip {
        reason: "label",
        message: e.to_string(),
    })?;
    let mut wanted: Vec<Wanted> = Vec::new();
    for service in &services {
        wanted.push(one(container, options, service, internal)?);
    }
    // Two registrations of one service and id from one container: their
    // ids get the container port (and protocol, for UDP).
    for i in 0..wanted.len() {
        let twice = wanted.iter().enumerate().any(|(j, w)| {
            j != i
                && w.key.service == wanted[i].key.service
                && w.key.instance == wanted[i].key.instance
        });
        if twice {
            let (port, protocol) = container_port(container, &services[i])?;
            let suffix = match protocol {
                Protocol::Tcp => format!("{port}"),
                Protocol::Udp => format!("{port}-udp"),
            };
            let id = instance_id(&format!("{}-{suffix}", wanted[i].key.instance));
            wanted[i].registration.id = id.clone();
            wanted[i].key.instance = id.as_str().to_owned();
        }
    }
    if let Some(w) = wanted
        .iter()
        .find(|w| w.registration.tags.iter().any(|t| **t == *w.key.instance))
    {
        return Err(Skip {
            reason: "label",
            message: format!(
                "service {}: a tag equals the instance id {}",
                w.key.service, w.key.instance
            ),
        });
    }
    let mut keys: Vec<&Key> = wanted.iter().map(|w| &w.key).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    if keys.len() != before {
        return Err(Skip {
            reason: "label",
            message: "two registrations of one service with one instance id; give each port \
                      its own service or id"
                .to_owned(),
        });
    }
    Ok(wanted)
}

fn container_port(container: &Container, service: &ServiceLabels) -> Result<(u16, Protocol), Skip> {
    if let Some(port) = service.port {
        return Ok(port);
    }
    match container.ports.as_slice() {
        [only] => Ok((only.port, only.protocol)),
        [] => Err(Skip {
            reason: "port",
            message: format!(
                "service {} exposes no port; say which with disco.port",
                service.service
            ),
        }),
        several => Err(Skip {
            reason: "port",
            message: format!(
                "service {}: the container exposes {}; say which with disco.port",
                service.service,
                several
                    .iter()
                    .map(|p| format!("{}{}", p.port, udp_suffix(p.protocol)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn udp_suffix(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Udp => "/udp",
        Protocol::Tcp => "/tcp",
    }
}

/// The address and port of one service.
fn address(
    container: &Container,
    options: &Options,
    service: &ServiceLabels,
    internal: bool,
    (port, protocol): (u16, Protocol),
) -> Result<(IpAddr, u16), Skip> {
    let named = service.network.as_ref();
    if container.host_network {
        return Ok((options.address, port));
    }
    if !internal && named.is_none() {
        let published = container.port(port, protocol).and_then(|p| p.published);
        return match published {
            Some(host_port) => Ok((options.address, host_port)),
            None => Err(Skip {
                reason: "port",
                message: format!(
                    "service {}: port {port}{} is not published; publish it, or register \
                     the container's own address with --internal or disco.network",
                    service.service,
                    udp_suffix(protocol)
                ),
            }),
        };
    }
    // A swarm task is also on the ingress network, which is no address of
    // its own.
    let networks: Vec<(&String, &Option<IpAddr>)> = container
        .networks
        .iter()
        .filter(|(name, _)| container.swarm_service.is_none() || *name != "ingress")
        .collect();
    let network = match named.or(options.network.as_ref()) {
        Some(name) => name.clone(),
        None => match networks.as_slice() {
            [(only, _)] => (*only).clone(),
            [] => {
                return Err(Skip {
                    reason: "network",
                    message: format!(
                        "service {}: the container is on no network",
                        service.service
                    ),
                });
            }
            several => {
                return Err(Skip {
                    reason: "network",
                    message: format!(
                        "service {}: the container is on networks {}; name the one to register \
                         with the disco.network label or --network",
                        service.service,
                        several
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        },
    };
    match container.networks.get(&network) {
        Some(Some(ip)) => Ok((*ip, port)),
        Some(None) => Err(Skip {
            reason: "network",
            message: format!(
                "service {}: the container has no address on network {network}",
                service.service
            ),
        }),
        None => Err(Skip {
            reason: "network",
            message: format!(
                "service {}: the container is not on network {network} (it is on {})",
                service.service,
                container
                    .networks
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn one(
    container: &Container,
    options: &Options,
    service: &ServiceLabels,
    internal: bool,
) -> Result<Wanted, Skip> {
    let (port, protocol) = container_port(container, service)?;
    let (address, registered_port) =
        address(container, options, service, internal, (port, protocol))?;
    let id = match &service.id {
        Some(given) => instance_id(given),
        // A task's name is unique in the swarm already.
        None if options.host.is_empty() || container.swarm_service.is_some() => {
            instance_id(&container.name)
        }
        None => instance_id(&format!("{}-{}", options.host, container.name)),
    };
    let label_skip = |message: String| Skip {
        reason: "label",
        message,
    };
    if service.tags.contains(&id) {
        return Err(label_skip(format!(
            "service {}: a tag equals the instance id {id}",
            service.service
        )));
    }
    if let Some(tag) = &service.elect {
        if *tag == id {
            return Err(label_skip(format!(
                "label disco.elect: service {}: the tag {tag} is the instance id; give another, \
                 e.g. primary",
                service.service
            )));
        }
        if options.format != Format::Native {
            return Err(label_skip(format!(
                "label disco.elect: service {}: roles are tags, which only disco's own format \
                 carries (this registrar writes {})",
                service.service,
                options.format.as_str()
            )));
        }
    }
    let mut registration = Instance::new(service.service.clone(), id.clone(), address);
    registration.port = Some(registered_port);
    registration.protocol = protocol;
    if let Some(name) = &service.port_name {
        registration.ports = [(name.as_str().to_owned(), registered_port)]
            .into_iter()
            .collect::<Ports>();
    }
    registration.tags = service.tags.iter().map(InstanceId::as_str).collect();
    registration.meta = service.meta.iter().cloned().collect();
    let interval = service.interval.unwrap_or(options.interval);
    let timeout = service.timeout.unwrap_or(options.timeout).min(interval);
    let address_text = address.to_string();
    let checks = service
        .checks
        .iter()
        .map(|check| match check {
            LabelCheck::Text(text) => CheckSpec::parse(text, &address_text, registered_port)
                .map_err(|reason| label_skip(format!("check {text:?}: {reason}"))),
            LabelCheck::HttpPath { https, path } => {
                let scheme = if *https { "https" } else { "http" };
                let host = if address.is_ipv6() {
                    format!("[{address}]")
                } else {
                    address_text.clone()
                };
                Ok(CheckSpec::Http {
                    url: format!("{scheme}://{host}:{registered_port}{path}"),
                    body: None,
                    host: None,
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Wanted {
        key: Key {
            container: container.id.clone(),
            service: service.service.to_string(),
            instance: id.as_str().to_owned(),
        },
        container_name: container.name.clone(),
        registration,
        checks,
        interval,
        timeout,
        thresholds: Thresholds {
            rise: service.rise.unwrap_or(options.thresholds.rise),
            fall: service.fall.unwrap_or(options.thresholds.fall),
        },
        docker_health: container.health.map(|h| h == Health::Healthy),
        elect: service.elect.as_ref().map(|t| t.as_str().to_owned()),
        drain: service.drain,
    })
}

/// An instance id from a container's name (or registrator's `SERVICE_ID`):
/// lowercased, every character a DNS label cannot hold made `-`, and a
/// name longer than a label cut with a hash of the whole, so the same
/// container always gets the same id.
pub fn instance_id(name: &str) -> InstanceId {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while id.contains("--") {
        id = id.replace("--", "-");
    }
    let mut id = id.trim_matches('-').to_owned();
    if id.is_empty() {
        id = "container".to_owned();
    }
    if id.len() > 63 {
        // FNV-1a: stable across builds and processes, unlike std's hasher.
        let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        id = format!("{}-{hash:08x}", id[..54].trim_end_matches('-'));
    }
    InstanceId::new(&id).unwrap_or_else(|_| InstanceId::new("container").expect("a valid label"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::container::Port;
    use super::*;

    fn options() -> Options {
        Options {
            address: "192.0.2.1".parse().unwrap(),
            internal: false,
            network: None,
            all: false,
            host: String::new(),
            swarm: false,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            thresholds: Thresholds { rise: 2, fall: 3 },
            format: Format::Native,
        }
    }

    fn web(networks: &[(&str, &str)]) -> Container {
        Container {
            id: "c1".into(),
            name: "app-web-1".into(),
            image: "web".into(),
            labels: BTreeMap::from([("disco.service".into(), "web".into())]),
            running: true,
            ports: vec![Port {
                port: 8080,
                protocol: Protocol::Tcp,
                published: Some(32768),
            }],
            networks: networks
                .iter()
                .map(|(n, ip)| (n.to_string(), Some(ip.parse().unwrap())))
                .collect(),
            ..Container::default()
        }
    }

    fn at(wanted: &[Wanted]) -> Vec<String> {
        wanted
            .iter()
            .map(|w| {
                format!(
                    "{}/{} {}:{}",
                    w.key.service,
                    w.key.instance,
                    w.registration.address,
                    w.registration.port.unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn by_default_the_host_address_and_the_published_port() {
        let c = web(&[("bridge", "172.17.0.2")]);
        let wanted = registrations(&c, &options()).unwrap();
        assert_eq!(at(&wanted), ["web/app-web-1 192.0.2.1:32768"]);
        assert_eq!(wanted[0].docker_health, None);
    }

    #[test]
    fn instance_ids_begin_with_the_host_but_a_swarm_task_s_does_not() {
        let c = web(&[("bridge", "172.17.0.2")]);
        let on_host = Options {
            host: "Node1.example".into(),
            ..options()
        };
        assert_eq!(
            at(&registrations(&c, &on_host).unwrap()),
            ["web/node1-example-app-web-1 192.0.2.1:32768"]
        );
    }

    #[test]
    fn internal_registers_the_container_address_and_port_on_the_named_network() {
        let c = web(&[("front", "10.1.0.5"), ("back", "10.2.0.5")]);
        let internal = Options {
            internal: true,
            ..options()
        };
        let skip = registrations(&c, &internal).unwrap_err();
        assert_eq!(skip.reason, "network");
        assert!(skip.message.contains("back, front"), "{}", skip.message);
        let named = Options {
            network: Some("back".into()),
            ..internal.clone()
        };
        assert_eq!(
            at(&registrations(&c, &named).unwrap()),
            ["web/app-web-1 10.2.0.5:8080"]
        );
        let mut labelled = c.clone();
        labelled
            .labels
            .insert("disco.network".into(), "front".into());
        assert_eq!(
            at(&registrations(&labelled, &options()).unwrap()),
            ["web/app-web-1 10.1.0.5:8080"]
        );
    }

    #[test]
    fn an_unpublished_port_is_skipped_saying_what_to_do() {
        let mut c = web(&[("bridge", "172.17.0.2")]);
        c.ports[0].published = None;
        let skip = registrations(&c, &options()).unwrap_err();
        assert_eq!(skip.reason, "port");
        assert!(skip.message.contains("--internal"), "{}", skip.message);
    }

    #[test]
    fn a_swarm_task_is_registered_on_its_service_network_not_ingress() {
        let mut c = web(&[("ingress", "10.0.0.9"), ("app_net", "10.0.1.9")]);
        c.swarm_service = Some("svc".into());
        c.name = "app_web.1.x2k3".into();
        let swarm = Options {
            swarm: true,
            ..options()
        };
        assert_eq!(
            at(&registrations(&c, &swarm).unwrap()),
            ["web/app-web-1-x2k3 10.0.1.9:8080"]
        );
    }

    #[test]
    fn label_checks_check_the_registered_address() {
        let mut c = web(&[("bridge", "172.17.0.2")]);
        c.labels.insert("disco.check".into(), "http".into());
        c.health = Some(Health::Starting);
        let wanted = registrations(&c, &options()).unwrap();
        assert_eq!(
            wanted[0].checks,
            [CheckSpec::Http {
                url: "http://192.0.2.1:32768/".into(),
                body: None,
                host: None
            }]
        );
        assert_eq!(wanted[0].docker_health, Some(false));
    }

    #[test]
    fn disco_elect_is_carried_to_the_registration_in_disco_s_format_only() {
        let mut c = web(&[("bridge", "172.17.0.2")]);
        c.labels.insert("disco.elect".into(), String::new());
        let wanted = registrations(&c, &options()).unwrap();
        assert_eq!(wanted[0].elect.as_deref(), Some("primary"));
        // The tags stay the service's own: the loop adds the role's.
        assert!(wanted[0].registration.tags.is_empty());
        for format in [Format::SkyDns, Format::Nerve] {
            let other = Options {
                format,
                ..options()
            };
            let skip = registrations(&c, &other).unwrap_err();
            assert_eq!(skip.reason, "label");
            assert!(
                skip.message.contains("disco.elect") && skip.message.contains(format.as_str()),
                "{}",
                skip.message
            );
        }
        // The leader's tag may not be the instance id.
        c.labels.insert("disco.elect".into(), "app-web-1".into());
        let skip = registrations(&c, &options()).unwrap_err();
        assert!(skip.message.contains("instance id"), "{}", skip.message);
    }

    #[test]
    fn instance_ids_are_stable_dns_labels() {
        assert_eq!(instance_id("App_Web.1").as_str(), "app-web-1");
        let long = "x".repeat(80);
        let id = instance_id(&long);
        assert_eq!(id.as_str().len(), 63);
        assert_eq!(id, instance_id(&long));
        assert_ne!(id, instance_id(&"x".repeat(81)));
    }
}
