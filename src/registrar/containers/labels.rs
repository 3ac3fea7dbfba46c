//! A container's labels (and, for registrator's, its environment) read
//! into the services it asks to be registered as. Pure.
//!
//! disco's own labels, container-wide or per port (`disco.<port>.<key>`,
//! which makes that port a service of its own): `service`, `port`,
//! `port-name`, `tags`, `meta.<key>`, `check` and `check.<n>`,
//! `interval`, `timeout`, `rise`, `fall`, `network`, `elect` (the
//! leader's tag, empty for `primary`: the container campaigns as
//! `--elect` does), `drain` (how long a stopping container that still
//! runs stays withdrawn, beyond its own stop timeout).
//!
//! Without a `disco.service` label anywhere, registrator's `SERVICE_*`
//! labels and environment variables are read as registrator read them
//! (`bridge/util.go`, `serviceMetaData`): labels over environment, a
//! `SERVICE_<port>_<KEY>` over `SERVICE_<KEY>` for that port, one service
//! per published port (every exposed port with `--internal`), named
//! `SERVICE_NAME` with `-<port>` added when the container has several
//! ports and the name is not the port's own, or after the image with
//! `--all`. `SERVICE_IGNORE` skips; `SERVICE_ID`, `SERVICE_TAGS`,
//! `SERVICE_CHECK_HTTP`/`_HTTPS`/`_TCP`/`_INTERVAL`/`_TIMEOUT` are read;
//! other keys become metadata, lowercased, as registrator passed them on.

use std::collections::BTreeMap;
use std::time::Duration;

use super::container::{Container, Port};
use crate::model::{InstanceId, Protocol, ServiceName};
use crate::registrar::role;

/// The prefix of disco's own labels.
pub const PREFIX: &str = "disco.";

/// A check a label asks for, before the address it checks is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelCheck {
    /// The registrar's check syntax (`tcp`, `http://…`, `exec:CMD`).
    Text(String),
    /// registrator's `SERVICE_CHECK_HTTP(S)=/path`: that path on the
    /// registered address and port.
    HttpPath {
        /// `https` rather than `http`.
        https: bool,
        /// The path, from its `/`.
        path: String,
    },
}

/// One service a container asks to be registered as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLabels {
    /// The service.
    pub service: ServiceName,
    /// The container port; `None`: the one port the container exposes.
    pub port: Option<(u16, Protocol)>,
    /// A name for the port (`_name._tcp.<service>`).
    pub port_name: Option<InstanceId>,
    /// Tags.
    pub tags: Vec<InstanceId>,
    /// Metadata (TXT).
    pub meta: Vec<(String, String)>,
    /// Checks run by the registrar, besides the HEALTHCHECK.
    pub checks: Vec<LabelCheck>,
    /// Time between checks.
    pub interval: Option<Duration>,
    /// Time one check may take.
    pub timeout: Option<Duration>,
    /// Passing rounds to become healthy.
    pub rise: Option<u32>,
    /// Failing rounds to become unhealthy.
    pub fall: Option<u32>,
    /// The network whose address is registered.
    pub network: Option<String>,
    /// The instance id asked for (registrator's `SERVICE_ID`).
    pub id: Option<String>,
    /// `disco.elect`: the leader's tag (`primary` when the label is
    /// empty); the instance campaigns while healthy.
    pub elect: Option<InstanceId>,
    /// `disco.drain`: once stopping, withdrawn at least this long while
    /// it still runs.
    pub drain: Option<Duration>,
}

/// A label that cannot be used: the container is skipped and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// The label (or variable) as written.
    pub label: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "label {}: {}", self.label, self.reason)
    }
}

fn error(label: &str, reason: impl ToString) -> LabelError {
    LabelError {
        label: label.to_owned(),
        reason: reason.to_string(),
    }
}

/// The services `container` asks for; empty when it asks for none (no
/// label, and not `all`). `internal`: registrator's one service per
/// exposed port, rather than per published port.
pub fn read(
    container: &Container,
    all: bool,
    internal: bool,
) -> Result<Vec<ServiceLabels>, LabelError> {
    let ours = container
        .labels
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect::<Vec<_>>();
    if ours.is_empty() {
        return registrator(container, all, internal);
    }
    disco(&ours)
}

/// The raw fields of one block of disco labels (container-wide, or one
/// port's).
#[derive(Debug, Default, Clone)]
struct Fields {
    service: Option<(String, String)>,
    port: Option<(String, String)>,
    port_name: Option<(String, String)>,
    tags: Option<(String, String)>,
    meta: BTreeMap<String, String>,
    checks: BTreeMap<String, (String, String)>,
    interval: Option<(String, String)>,
    timeout: Option<(String, String)>,
    rise: Option<(String, String)>,
    fall: Option<(String, String)>,
    network: Option<(String, String)>,
    elect: Option<(String, String)>,
    drain: Option<(String, String)>,
}

impl Fields {
    /// `other`'s fields where this one has none (a port's block over the
    /// container-wide one).
    fn over(mut self, common: &Fields) -> Fields {
        fn pick(a: &mut Option<(String, String)>, b: &Option<(String, String)>) {
            if a.is_none() {
                a.clone_from(b);
            }
        }
        pick(&mut self.port_name, &common.port_name);
        pick(&mut self.tags, &common.tags);
        pick(&mut self.interval, &common.interval);
        pick(&mut self.timeout, &common.timeout);
        pick(&mut self.rise, &common.rise);
        pick(&mut self.fall, &common.fall);
        pick(&mut self.network, &common.network);
        pick(&mut self.elect, &common.elect);
        pick(&mut self.drain, &common.drain);
        for (k, v) in &common.meta {
            self.meta.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if self.checks.is_empty() {
            self.checks = common.checks.clone();
        }
        self
    }
}

/// `8080` or `53/udp`.
fn parse_port(label: &str, text: &str) -> Result<(u16, Protocol), LabelError> {
    let (number, protocol) = match text.trim().split_once('/') {
        None => (text.trim(), Protocol::Tcp),
        Some((number, "tcp")) => (number, Protocol::Tcp),
        Some((number, "udp")) => (number, Protocol::Udp),
        Some(_) => return Err(error(label, "expected PORT, PORT/tcp or PORT/udp")),
    };
    match number.parse::<u16>() {
        Ok(port) if port > 0 => Ok((port, protocol)),
        _ => Err(error(
            label,
            format!("{text:?} is not a port from 1 to 65535"),
        )),
    }
}

fn disco(labels: &[(&String, &String)]) -> Result<Vec<ServiceLabels>, LabelError> {
    let mut common = Fields::default();
    let mut ports: BTreeMap<(u16, Protocol), Fields> = BTreeMap::new();
    for (key, value) in labels {
        let rest = &key[PREFIX.len()..];
        let (first, after) = rest.split_once('.').unwrap_or((rest, ""));
        let (fields, field) = if first.starts_with(|c: char| c.is_ascii_digit()) {
            let port = parse_port(key, first)?;
            if after.is_empty() {
                return Err(error(key, "expected disco.<port>.<key>"));
            }
            (ports.entry(port).or_default(), after)
        } else {
            (&mut common, rest)
        };
        let entry = Some(((*key).clone(), (*value).clone()));
        match field {
            "service" => fields.service = entry,
            "port" => fields.port = entry,
            "port-name" => fields.port_name = entry,
            "tags" => fields.tags = entry,
            "interval" => fields.interval = entry,
            "timeout" => fields.timeout = entry,
            "rise" => fields.rise = entry,
            "fall" => fields.fall = entry,
            "network" => fields.network = entry,
            "check" => {
                fields
                    .checks
                    .insert(String::new(), ((*key).clone(), (*value).clone()));
            }
            "elect" => fields.elect = entry,
            "drain" => fields.drain = entry,
            other => {
                if let Some(n) = other.strip_prefix("check.") {
                    fields
                        .checks
                        .insert(n.to_owned(), ((*key).clone(), (*value).clone()));
                } else if let Some(meta) = other.strip_prefix("meta.")
                    && !meta.is_empty()
                {
                    fields.meta.insert(meta.to_owned(), (*value).clone());
                } else {
                    return Err(error(
                        key,
                        "unknown key; disco reads service, port, port-name, tags, meta.<key>, \
                         check[.<n>], interval, timeout, rise, fall, network, elect, drain, and \
                         disco.<port>.<key>",
                    ));
                }
            }
        }
    }
    let mut services = Vec::new();
    if let Some((label, name)) = &common.service {
        let port = match &common.port {
            Some((label, text)) => Some(parse_port(label, text)?),
            None => None,
        };
        services.push(service(label, name, port, &common)?);
    } else if let Some((label, _)) = common.port.as_ref().or(common.port_name.as_ref()) {
        return Err(error(label, "given without disco.service"));
    }
    for (port, fields) in ports {
        let Some((label, name)) = fields.service.clone() else {
            let any = fields
                .port_name
                .as_ref()
                .or(fields.tags.as_ref())
                .map_or_else(|| format!("disco.{}.*", port.0), |(l, _)| l.clone());
            return Err(error(
                &any,
                format!(
                    "give disco.{}.service too: a port block is a service",
                    port.0
                ),
            ));
        };
        if let Some((label, _)) = &fields.port {
            return Err(error(label, "the port is the block's own"));
        }
        let merged = fields.over(&common);
        services.push(service(&label, &name, Some(port), &merged)?);
    }
    Ok(services)
}

fn service(
    label: &str,
    name: &str,
    port: Option<(u16, Protocol)>,
    fields: &Fields,
) -> Result<ServiceLabels, LabelError> {
    let service = ServiceName::new(name.trim()).map_err(|e| error(label, e))?;
    let port_name = match &fields.port_name {
        Some((label, text)) => Some(InstanceId::new(text.trim()).map_err(|e| error(label, e))?),
        None => None,
    };
    let tags = match &fields.tags {
        Some((label, text)) => tags(label, text)?,
        None => Vec::new(),
    };
    let duration = |field: &Option<(String, String)>| -> Result<Option<Duration>, LabelError> {
        let Some((label, text)) = field else {
            return Ok(None);
        };
        parse_duration(text)
            .map(Some)
            .map_err(|reason| error(label, reason))
    };
    let count = |field: &Option<(String, String)>| -> Result<Option<u32>, LabelError> {
        let Some((label, text)) = field else {
            return Ok(None);
        };
        match text.trim().parse::<u32>() {
            Ok(n @ 1..=1000) => Ok(Some(n)),
            _ => Err(error(label, "expected a whole number from 1 to 1000")),
        }
    };
    let elect = match &fields.elect {
        Some((label, text)) => Some(elect(label, text, &tags)?),
        None => None,
    };
    Ok(ServiceLabels {
        service,
        port,
        port_name,
        tags,
        meta: fields
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        checks: fields
            .checks
            .values()
            .map(|(_, text)| LabelCheck::Text(text.clone()))
            .collect(),
        interval: duration(&fields.interval)?,
        timeout: duration(&fields.timeout)?,
        rise: count(&fields.rise)?,
        fall: count(&fields.fall)?,
        network: fields
            .network
            .as_ref()
            .map(|(_, n)| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        id: None,
        elect,
        drain: match &fields.drain {
            Some((label, text)) => Some(parse_drain(text).map_err(|reason| error(label, reason))?),
            None => None,
        },
    })
}

/// `disco.elect`'s tag, checked as `--elect [TAG]` is: a DNS label, not
/// `replica`, neither tag among the service's own (the election sets
/// them). The instance id is checked once it is known
/// ([`super::select`]).
fn elect(label: &str, text: &str, tags: &[InstanceId]) -> Result<InstanceId, LabelError> {
    let text = text.trim();
    let text = if text.is_empty() || text.eq_ignore_ascii_case("true") {
        role::DEFAULT_TAG
    } else {
        text
    };
    let tag = InstanceId::new(text).map_err(|e| error(label, e))?;
    if tag.as_str() == role::REPLICA_TAG {
        return Err(error(
            label,
            "names the replicas; give the leader's tag, e.g. primary (or leave it empty)",
        ));
    }
    if let Some(taken) = tags
        .iter()
        .find(|t| **t == tag || t.as_str() == role::REPLICA_TAG)
    {
        return Err(error(
            label,
            format!(
                "disco.tags has {taken}: the election sets the primary and replica tags itself"
            ),
        ));
    }
    Ok(tag)
}

fn tags(label: &str, text: &str) -> Result<Vec<InstanceId>, LabelError> {
    let mut tags: Vec<InstanceId> = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let tag = InstanceId::new(tag).map_err(|e| error(label, e))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// `disco.drain`: a duration as the others, zero allowed (the default).
fn parse_drain(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => {
            humantime::parse_duration(text).map_err(|e| format!("{e}; expected e.g. 30s, or 0"))
        }
    }
}

/// `2s`, `500ms`, or plain seconds (registrator's intervals are `15s`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{e}; expected e.g. 2s or 500ms"))?,
    };
    if duration < Duration::from_millis(10) {
        return Err("at least 10ms".to_owned());
    }
    Ok(duration)
}

/// registrator's `serviceMetaData`: the `SERVICE_*` keys for `port`,
/// lowercased without the prefix, from the environment then the labels;
/// a key given for the port wins over the container-wide one. The second
/// map says which keys came from the port's own.
fn registrator_meta(
    container: &Container,
    port: u16,
) -> (BTreeMap<String, (String, String)>, Vec<String>) {
    let port = port.to_string();
    let mut meta: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut from_port: Vec<String> = Vec::new();
    let pairs = container
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .chain(
            container
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
    for (name, value) in pairs {
        let Some(key) = name.strip_prefix("SERVICE_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if from_port.contains(&key) {
            continue;
        }
        match key.split_once('_') {
            Some((number, rest)) if number.parse::<u32>().is_ok() => {
                if number != port {
                    continue;
                }
                meta.insert(rest.to_owned(), (name.to_owned(), value.to_owned()));
                from_port.push(rest.to_owned());
            }
            _ => {
                meta.insert(key, (name.to_owned(), value.to_owned()));
            }
        }
    }
    (meta, from_port)
}

fn registrator(
    container: &Container,
    all: bool,
    internal: bool,
) -> Result<Vec<ServiceLabels>, LabelError> {
    let ports: Vec<&Port> = container
        .ports
        .iter()
        .filter(|p| internal || p.published.is_some())
        .collect();
    let group = ports.len() > 1;
    let mut services = Vec::new();
    for port in ports {
        let (mut meta, from_port) = registrator_meta(container, port.port);
        if meta.get("ignore").is_some_and(|(_, v)| !v.is_empty()) {
            continue;
        }
        let (label, mut name) = match meta.remove("name").filter(|(_, v)| !v.is_empty()) {
            Some((label, name)) => (label, name),
            None if all => (
                format!("image {}", container.image),
                container.image_name().replace('_', "-"),
            ),
            None => continue,
        };
        if group && !from_port.iter().any(|k| k == "name") {
            name = format!("{name}-{}", port.port);
        }
        let service = ServiceName::new(&name).map_err(|e| error(&label, e))?;
        let id = meta.remove("id").map(|(_, v)| v).filter(|v| !v.is_empty());
        let tags = match meta.remove("tags") {
            Some((label, text)) => tags(&label, &text)?,
            None => Vec::new(),
        };
        let mut checks = Vec::new();
        for (key, https) in [("check_http", false), ("check_https", true)] {
            if let Some((label, path)) = meta.remove(key) {
                if !path.starts_with('/') {
                    return Err(error(&label, "expected a path, e.g. /health"));
                }
                checks.push(LabelCheck::HttpPath { https, path });
            }
        }
        if let Some((_, on)) = meta.remove("check_tcp")
            && on.eq_ignore_ascii_case("true")
        {
            checks.push(LabelCheck::Text("tcp".to_owned()));
        }
        let mut duration = |key: &str| match meta.remove(key) {
            Some((label, text)) => parse_duration(&text)
                .map(Some)
                .map_err(|reason| error(&label, reason)),
            None => Ok(None),
        };
        let interval = duration("check_interval")?;
        let timeout = duration("check_timeout")?;
        // registrator's other checks (script, ttl, docker, …) were Consul's.
        meta.retain(|key, _| !key.starts_with("check_"));
        services.push(ServiceLabels {
            service,
            port: Some((port.port, port.protocol)),
            port_name: None,
            tags,
            meta: meta.into_iter().map(|(k, (_, v))| (k, v)).collect(),
            checks,
            interval,
            timeout,
            rise: None,
            fall: None,
            network: None,
            id,
            elect: None,
            drain: None,
        });
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)], env: &[&str], ports: &[(u16, Option<u16>)]) -> Container {
        Container {
            id: "c1".into(),
            name: "web-1".into(),
            image: "team/web:2".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            running: true,
            ports: ports
                .iter()
                .map(|&(port, published)| Port {
                    port,
                    protocol: Protocol::Tcp,
                    published,
                })
                .collect(),
            ..Container::default()
        }
    }

    fn names(services: &[ServiceLabels]) -> Vec<String> {
        services.iter().map(|s| s.service.to_string()).collect()
    }

    #[test]
    fn disco_labels_make_a_service_with_tags_metadata_and_checks() {
        let c = container(
            &[
                ("disco.service", "web"),
                ("disco.port", "8080"),
                ("disco.port-name", "http"),
                ("disco.tags", "v2, primary,v2"),
                ("disco.meta.version", "1.4.2"),
                ("disco.check", "http"),
                ("disco.check.2", "tcp"),
                ("disco.interval", "500ms"),
                ("disco.rise", "1"),
                ("other", "x"),
            ],
            &[],
            &[(8080, Some(32768))],
        );
        let services = read(&c, false, false).unwrap();
        assert_eq!(services.len(), 1);
        let web = &services[0];
        assert_eq!(web.service.as_str(), "web");
        assert_eq!(web.port, Some((8080, Protocol::Tcp)));
        assert_eq!(web.port_name.as_ref().unwrap().as_str(), "http");
        let tags: Vec<&str> = web.tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, ["v2", "primary"]);
        assert_eq!(web.meta, [("version".to_owned(), "1.4.2".to_owned())]);
        assert_eq!(
            web.checks,
            [
                LabelCheck::Text("http".into()),
                LabelCheck::Text("tcp".into())
            ]
        );
        assert_eq!(web.interval, Some(Duration::from_millis(500)));
        assert_eq!((web.rise, web.fall), (Some(1), None));
        assert_eq!(web.drain, None);
        let drained = |value: &str| {
            let c = container(
                &[("disco.service", "web"), ("disco.drain", value)],
                &[],
                &[(8080, Some(1))],
            );
            read(&c, false, false).unwrap()[0].drain
        };
        assert_eq!(drained("30s"), Some(Duration::from_secs(30)));
        assert_eq!(drained("0"), Some(Duration::ZERO));
    }

    #[test]
    fn port_blocks_are_services_of_their_own_over_the_container_wide_labels() {
        let c = container(
            &[
                ("disco.tags", "blue"),
                ("disco.8080.service", "web"),
                ("disco.9100.service", "metrics"),
                ("disco.9100.tags", "scrape"),
            ],
            &[],
            &[(8080, Some(1)), (9100, Some(2))],
        );
        let services = read(&c, false, false).unwrap();
        assert_eq!(names(&services), ["web", "metrics"]);
        assert_eq!(services[0].tags[0].as_str(), "blue");
        assert_eq!(services[1].tags[0].as_str(), "scrape");
        assert_eq!(services[1].port, Some((9100, Protocol::Tcp)));
    }

    #[test]
    fn a_container_without_labels_is_registered_only_with_all_named_after_its_image() {
        let c = container(&[], &[], &[(8080, Some(32768))]);
        assert_eq!(read(&c, false, false).unwrap(), []);
        assert_eq!(names(&read(&c, true, false).unwrap()), ["web"]);
        // Exposed but not published: registrator's default registered nothing.
        let c = container(&[], &[], &[(8080, None)]);
        assert_eq!(read(&c, true, false).unwrap(), []);
        assert_eq!(names(&read(&c, true, true).unwrap()), ["web"]);
    }

    #[test]
    fn bad_labels_name_the_label_and_why() {
        let bad = |labels: &[(&str, &str)]| {
            read(&container(labels, &[], &[(80, Some(1))]), false, false)
                .unwrap_err()
                .label
        };
        assert_eq!(bad(&[("disco.service", "web!")]), "disco.service");
        assert_eq!(
            bad(&[("disco.service", "web"), ("disco.port", "http")]),
            "disco.port"
        );
        assert_eq!(
            bad(&[("disco.service", "web"), ("disco.tags", "a b")]),
            "disco.tags"
        );
        assert_eq!(
            bad(&[("disco.service", "web"), ("disco.rise", "0")]),
            "disco.rise"
        );
        assert_eq!(
            bad(&[("disco.service", "web"), ("disco.colour", "red")]),
            "disco.colour"
        );
        assert_eq!(
            bad(&[("disco.service", "web"), ("disco.drain", "soon")]),
            "disco.drain"
        );
        assert_eq!(bad(&[("disco.port", "80")]), "disco.port");
        assert_eq!(bad(&[("disco.80.tags", "x")]), "disco.80.tags");
    }

    /// Each row: the `disco.elect` label (and the tags beside it); the
    /// tag, or the label an error names.
    #[test]
    fn disco_elect_takes_an_optional_tag_checked_as_the_flag_checks_it() {
        let elect = |value: &str, tags: &str| {
            let mut labels = vec![("disco.service", "db"), ("disco.elect", value)];
            if !tags.is_empty() {
                labels.push(("disco.tags", tags));
            }
            read(&container(&labels, &[], &[(6379, Some(1))]), false, false)
                .map(|s| s[0].elect.as_ref().map(|t| t.as_str().to_owned()))
                .map_err(|e| e.label)
        };
        // (label value, disco.tags, the tag elected or the label refused)
        type Row<'a> = (&'a str, &'a str, Result<Option<&'a str>, &'a str>);
        let rows: [Row; 9] = [
            ("", "", Ok(Some("primary"))),
            (" ", "", Ok(Some("primary"))),
            ("true", "", Ok(Some("primary"))),
            ("leader", "", Ok(Some("leader"))),
            ("Leader", "v2", Ok(Some("leader"))),
            ("replica", "", Err("disco.elect")),
            ("two words", "", Err("disco.elect")),
            ("", "primary", Err("disco.elect")),
            ("", "replica,v2", Err("disco.elect")),
        ];
        for (value, tags, expected) in rows {
            let expected = expected
                .map(|t| t.map(str::to_owned))
                .map_err(str::to_owned);
            assert_eq!(
                elect(value, tags),
                expected,
                "disco.elect={value:?} tags={tags:?}"
            );
        }
        // Without the label: no election.
        let c = container(&[("disco.service", "db")], &[], &[(6379, Some(1))]);
        assert_eq!(read(&c, false, false).unwrap()[0].elect, None);
        // A port block inherits the container-wide label, or gives its own.
        let c = container(
            &[
                ("disco.elect", ""),
                ("disco.6379.service", "db"),
                ("disco.9121.service", "db-metrics"),
                ("disco.9121.elect", "scraped"),
            ],
            &[],
            &[(6379, Some(1)), (9121, Some(2))],
        );
        let tags: Vec<_> = read(&c, false, false)
            .unwrap()
            .iter()
            .map(|s| s.elect.as_ref().unwrap().as_str().to_owned())
            .collect();
        assert_eq!(tags, ["primary", "scraped"]);
    }

    #[test]
    fn registrator_labels_and_environment_are_read_as_registrator_read_them() {
        let c = container(
            &[
                ("SERVICE_NAME", "api"),
                ("SERVICE_TAGS", "v1,green"),
                ("SERVICE_9100_NAME", "api-metrics"),
                ("SERVICE_CHECK_HTTP", "/health"),
                ("SERVICE_CHECK_INTERVAL", "15s"),
            ],
            &[
                "SERVICE_NAME=ignored-by-the-label",
                "SERVICE_REGION=eu",
                "SERVICE_8080_ID=api-one",
                "PATH=/bin",
            ],
            &[(8080, Some(1)), (9100, Some(2)), (9999, None)],
        );
        let services = read(&c, false, false).unwrap();
        // Two published ports: a group, so the container-wide name gets the
        // port; the port's own name does not.
        assert_eq!(names(&services), ["api-8080", "api-metrics"]);
        let api = &services[0];
        assert_eq!(api.id.as_deref(), Some("api-one"));
        assert_eq!(api.tags.len(), 2);
        assert_eq!(api.meta, [("region".to_owned(), "eu".to_owned())]);
        assert_eq!(
            api.checks,
            [LabelCheck::HttpPath {
                https: false,
                path: "/health".into()
            }]
        );
        assert_eq!(api.interval, Some(Duration::from_secs(15)));
        assert_eq!(services[1].id, None);
    }

    #[test]
    fn service_ignore_skips_the_container_or_one_port() {
        let c = container(
            &[("SERVICE_NAME", "api"), ("SERVICE_IGNORE", "true")],
            &[],
            &[(8080, Some(1))],
        );
        assert_eq!(read(&c, true, false).unwrap(), []);
        let c = container(
            &[("SERVICE_NAME", "api"), ("SERVICE_9100_IGNORE", "1")],
            &[],
            &[(8080, Some(1)), (9100, Some(2))],
        );
        assert_eq!(names(&read(&c, false, false).unwrap()), ["api-8080"]);
    }
}
