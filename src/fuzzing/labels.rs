//! Any labels and environment on a container, read by `registrar --docker`
//! ([`crate::registrar::containers`]): whatever they say, reading them and
//! choosing the registrations never panics, and every registration chosen
//! is one the store and disco can take (a valid service and instance id,
//! no tag equal to the id, a port), and the reconcile starts each once.
//!
//! The input is a flags byte (bit 0 `--all`, bit 1 `--internal`, bit 2
//! `--swarm` and a swarm task, bit 3 a HEALTHCHECK), then lines:
//! `KEY=VALUE` a label, `env:KEY=VALUE` a variable, `port:N[/udp][:HOST]`
//! an exposed (and published) port, `net:NAME=IP` a network.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{InstanceId, Protocol, ServiceName};
use crate::registrar::containers::container::{Container, Health, Port};
use crate::registrar::containers::plan::{Scope, plan};
use crate::registrar::containers::select::{Options, Wanted, registrations};
use crate::registrar::health::Thresholds;

/// Reads `data` as a container and checks what is chosen for it.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut container = Container {
        id: "c0".into(),
        name: "fuzzed_container.1".into(),
        image: "registry:5000/team/fuzzed:1".into(),
        running: true,
        health: (flags & 8 != 0).then_some(Health::Healthy),
        swarm_service: (flags & 4 != 0).then(|| "svc".to_owned()),
        ..Container::default()
    };
    for line in text.lines() {
        if let Some(env) = line.strip_prefix("env:") {
            container.env.push(env.to_owned());
        } else if let Some(port) = line.strip_prefix("port:") {
            let (spec, published) = port.split_once(':').unwrap_or((port, ""));
            let (number, protocol) = match spec.strip_suffix("/udp") {
                Some(n) => (n, Protocol::Udp),
                None => (spec, Protocol::Tcp),
            };
            if let Ok(port) = number.parse::<u16>() {
                container.ports.push(Port {
                    port,
                    protocol,
                    published: published.parse().ok(),
                });
            }
        } else if let Some(net) = line.strip_prefix("net:") {
            let (name, ip) = net.split_once('=').unwrap_or((net, ""));
            container.networks.insert(name.to_owned(), ip.parse().ok());
        } else if let Some((key, value)) = line.split_once('=') {
            container.labels.insert(key.to_owned(), value.to_owned());
        }
    }
    let options = Options {
        address: "192.0.2.1".parse().expect("an address"),
        internal: flags & 2 != 0,
        network: None,
        all: flags & 1 != 0,
        host: "fuzz-host".into(),
        swarm: flags & 4 != 0,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        thresholds: Thresholds { rise: 2, fall: 3 },
        format: crate::store::publish::Format::Native,
    };
    let Ok(wanted) = registrations(&container, &options) else {
        return;
    };
    for want in &wanted {
        let registration = &want.registration;
        ServiceName::new(registration.service.as_str()).expect("a valid service");
        InstanceId::new(registration.id.as_str()).expect("a valid instance id");
        assert!(registration.id.as_str().len() <= 63);
        assert!(registration.port.is_some(), "a registration has a port");
        assert!(
            !registration
                .tags
                .iter()
                .any(|t| **t == *registration.id.as_str()),
            "a tag equals the instance id"
        );
        for check in &want.checks {
            let _ = check.build(want.timeout);
        }
    }
    let running: BTreeMap<_, Wanted> = BTreeMap::new();
    let changes = plan(&wanted, &running, Scope::All);
    let mut keys: Vec<_> = changes.start.iter().map(|w| &w.key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        wanted.len(),
        "each registration has its own key"
    );
}
