//! One service's settings, checked and turned into a [`ServiceConfig`]:
//! names, port, address, checks, the target and its format.

use std::net::IpAddr;
use std::time::Duration;

use super::file::{FileCheck, Settings, Shared};
use super::{
    DEFAULT_DOMAIN, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE, DEFAULT_TIMEOUT, DEFAULT_TTL,
    Origin, RegistrarConfigError, ServiceConfig,
};
use crate::config::RegistryUrl;
use crate::model::{Instance, InstanceId, Ports, ServiceName, Tags};
use crate::registrar::address::NoAutoAddress;
use crate::registrar::check::CheckSpec;
use crate::registrar::dockstack::{self, DockStackSpec};
use crate::registrar::health::Thresholds;
use crate::registrar::role::{self, ElectConfig};
use crate::store::publish::{Format, Target};

/// A duration such as `2s`, `500ms` or `1m`, or plain seconds.
pub(super) fn parse_duration(
    origin: &Origin,
    field: &str,
    value: &str,
) -> Result<Duration, RegistrarConfigError> {
    match value.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(value)
            .map_err(|e| origin.invalid(field, value, format!("{e}; expected e.g. 2s or 500ms"))),
    }
}

/// A TOML value (string or integer) or a flag's text, as text.
pub(super) fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub(super) fn duration_or(
    origin: &Origin,
    field: &str,
    value: &Option<toml::Value>,
    default: Duration,
) -> Result<Duration, RegistrarConfigError> {
    value
        .as_ref()
        .map_or(Ok(default), |v| parse_duration(origin, field, &text(v)))
}

pub(super) fn count_or(
    origin: &Origin,
    field: &str,
    value: &Option<toml::Value>,
    default: u32,
) -> Result<u32, RegistrarConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let shown = text(value);
    match shown.trim().parse::<u32>() {
        Ok(0) => Err(origin.invalid(field, &shown, "must be at least 1")),
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err(origin.invalid(field, &shown, "expected a whole number from 1 to 1000")),
    }
}

/// The shared settings of one service, checked.
pub(super) struct Common {
    pub(super) target: Target,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) thresholds: Thresholds,
}

pub(super) fn common(origin: &Origin, shared: &Shared) -> Result<Common, RegistrarConfigError> {
    let registry_text = shared.registry.as_deref().ok_or_else(|| {
        RegistrarConfigError::Missing(format!(
            "{} is required: where to publish, e.g. etcd://127.0.0.1:2379/disco",
            origin.setting("registry")
        ))
    })?;
    let mut registry = RegistryUrl::parse(registry_text)?;
    let format = match shared.format.as_deref() {
        None => None,
        Some("native") => Some(Format::Native),
        Some("skydns") => Some(Format::SkyDns),
        Some("nerve") => Some(Format::Nerve),
        Some(other) => {
            return Err(origin.invalid("format", other, "expected native, skydns or nerve"));
        }
    };
    // The reader's scheme says the format too: skydns+etcd:// is SkyDNS,
    // nerve+zk:// is Nerve. A registrar writes through the plain store URL.
    let scheme_format = match registry.scheme.as_str() {
        "skydns+etcd" | "skydns+etcds" => Some(Format::SkyDns),
        "nerve+zk" => Some(Format::Nerve),
        _ => None,
    };
    if let (Some(from_flag), Some(from_scheme)) = (format, scheme_format)
        && from_flag != from_scheme
    {
        return Err(origin.invalid(
            "format",
            from_flag.as_str(),
            format!(
                "the registry {registry} holds {} entries",
                from_scheme.as_str()
            ),
        ));
    }
    let format = format.or(scheme_format).unwrap_or_default();
    if scheme_format.is_some() {
        registry.scheme = registry
            .scheme
            .rsplit('+')
            .next()
            .unwrap_or_default()
            .to_owned();
    }
    // The roots `disco serve` reads when its URL names none, so that a
    // registrar and a server given the same bare URL meet.
    if registry.path == "/" {
        registry.path = match format {
            Format::SkyDns => "/skydns",
            Format::Nerve => "/nerve/services",
            Format::Native => "/disco",
        }
        .to_owned();
    }
    if registry.is_etcd() && format == Format::Nerve {
        return Err(origin.invalid(
            "format",
            "nerve",
            "Nerve's format lives in ZooKeeper; use a zk:// registry",
        ));
    }
    if !registry.is_etcd() && format == Format::SkyDns {
        return Err(origin.invalid(
            "format",
            "skydns",
            "SkyDNS keys live in etcd; use an etcd:// registry",
        ));
    }
    let interval = duration_or(origin, "interval", &shared.interval, DEFAULT_INTERVAL)?;
    if interval < Duration::from_millis(10) {
        return Err(origin.invalid("interval", &format!("{interval:?}"), "at least 10ms"));
    }
    let timeout = duration_or(
        origin,
        "timeout",
        &shared.timeout,
        DEFAULT_TIMEOUT.min(interval),
    )?;
    if timeout.is_zero() {
        return Err(origin.invalid("timeout", "0", "must be more than 0"));
    }
    if timeout > interval {
        return Err(origin.invalid(
            "timeout",
            &humantime::format_duration(timeout).to_string(),
            format!(
                "longer than the interval ({}): checks would overlap",
                humantime::format_duration(interval)
            ),
        ));
    }
    let thresholds = Thresholds {
        rise: count_or(origin, "rise", &shared.rise, DEFAULT_RISE)?,
        fall: count_or(origin, "fall", &shared.fall, DEFAULT_FALL)?,
    };
    let ttl = duration_or(origin, "ttl", &shared.ttl, DEFAULT_TTL)?;
    if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
        return Err(origin.invalid(
            "ttl",
            &humantime::format_duration(ttl).to_string(),
            "expected whole seconds, at least 1s",
        ));
    }
    let domain = shared
        .domain
        .clone()
        .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned())
        .trim_end_matches('.')
        .to_ascii_lowercase();
    crate::dns::validate_domain(&domain)
        .map_err(|reason| origin.invalid("domain", &domain, reason))?;
    Ok(Common {
        target: Target {
            registry,
            format,
            ttl,
            domain,
            path: None,
        },
        interval,
        timeout,
        thresholds,
    })
}

/// A service from the flags or the file.
pub(super) fn service(
    origin: &Origin,
    settings: Settings,
    shared: &Shared,
    address_auto: &dyn Fn() -> Result<IpAddr, NoAutoAddress>,
) -> Result<ServiceConfig, RegistrarConfigError> {
    let shared_settings = settings.shared.clone().or(shared);
    let name_text = settings.service.as_deref().ok_or_else(|| {
        RegistrarConfigError::Missing(format!("{} is required", origin.setting("service")))
    })?;
    let name = ServiceName::new(name_text).map_err(|e| origin.invalid("service", name_text, e))?;
    let port_text = settings.port.as_ref().map(text).ok_or_else(|| {
        RegistrarConfigError::Missing(format!("{} is required", origin.setting("port")))
    })?;
    let port = parse_port(origin, "port", &port_text)?;
    let address = match settings.address.as_deref() {
        None | Some("auto") => address_auto().map_err(|reason| {
            origin.invalid(
                "address",
                "auto",
                format!("{reason}; give the address to register, e.g. --address 10.0.0.5"),
            )
        })?,
        Some(text) => text
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map_err(|_| {
                origin.invalid("address", text, "expected auto or an IPv4 or IPv6 address")
            })?,
    };
    let common = common(origin, &shared_settings)?;
    let id = instance_id(origin, settings.instance.as_deref(), port)?;
    let mut registration = Instance::new(name, id, address);
    registration.port = Some(port);
    if let Some(port_name) = &settings.port_name {
        let label =
            InstanceId::new(port_name).map_err(|e| origin.invalid("port-name", port_name, e))?;
        registration.ports = [(label.as_str().to_owned(), port)]
            .into_iter()
            .collect::<Ports>();
    }
    registration.tags = tags(origin, &settings.tags, &registration.id)?;
    registration.meta = settings.meta.into_iter().collect();
    let elect = elect(
        origin,
        settings.elect.as_ref(),
        settings.role_file,
        settings.on_role_change,
        &registration,
        common.target.format,
    )?;
    let address_text = address.to_string();
    let mut checks = Vec::new();
    let check_texts = if settings.checks.is_empty() {
        vec![FileCheck::Text("tcp".to_owned())]
    } else {
        settings.checks
    };
    for check in check_texts {
        let (url, body, host) = match check {
            FileCheck::Text(text) => (
                text,
                shared_settings.http_body.clone(),
                shared_settings.http_host.clone(),
            ),
            FileCheck::Table(table) => (table.url, table.body, table.host),
        };
        let mut spec = CheckSpec::parse(&url, &address_text, port)
            .map_err(|reason| origin.invalid("check", &url, reason))?;
        if let CheckSpec::Http {
            body: spec_body,
            host: spec_host,
            ..
        } = &mut spec
        {
            *spec_body = body;
            *spec_host = host;
        }
        // Build once now, so that a bad Host header is a usage error.
        spec.build(common.timeout)
            .map_err(|reason| origin.invalid("check", &url, reason))?;
        checks.push(spec);
    }
    Ok(ServiceConfig {
        registration,
        target: common.target,
        checks,
        interval: common.interval,
        timeout: common.timeout,
        thresholds: common.thresholds,
        dockstack: None,
        elect,
    })
}

/// A service from a DockStack `-s` spec: the registry from `-d`, the check
/// from the spec's type, the node under the registry's path plus the
/// spec's, in Nerve's format (unless `--format` says otherwise).
pub(super) fn dockstack_service(
    origin: &Origin,
    spec: DockStackSpec,
    shared: &Shared,
) -> Result<ServiceConfig, RegistrarConfigError> {
    let mut shared = shared.clone();
    if shared.format.is_none()
        && shared
            .registry
            .as_deref()
            .is_some_and(|r| r.starts_with("zk://"))
    {
        shared.format = Some("nerve".to_owned());
    }
    let mut common = common(origin, &shared)?;
    let base = common.target.registry.path.trim_end_matches('/');
    let path = format!("{base}{}", spec.path);
    if common.target.registry.is_etcd() {
        // etcd has no node directory: the path is the key prefix, read
        // back by `--registry etcd://…/base/path`.
        common.target.registry.path = path;
    } else {
        common.target.path = Some(path);
    }
    let name =
        ServiceName::new(&spec.name).map_err(|e| origin.invalid("service", &spec.name, e))?;
    // Until Docker answers, the fallback: the container field as the host.
    // The id follows the address and port registered (`start` sets both).
    let address = spec
        .fallback_address()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let id = dockstack::instance_id(address, spec.port);
    let mut registration = Instance::new(name, id, address);
    registration.port = Some(spec.port);
    Ok(ServiceConfig {
        registration,
        target: common.target,
        checks: Vec::new(),
        interval: common.interval,
        timeout: common.timeout,
        thresholds: common.thresholds,
        dockstack: Some(spec),
        elect: None,
    })
}

/// `--elect [TAG]` with `--role-file` and `--on-role-change`: the tag a
/// DNS label other than `replica`, the instance id and the service's own
/// tags; only in disco's own format, the only one with tags.
fn elect(
    origin: &Origin,
    given: Option<&toml::Value>,
    role_file: Option<std::path::PathBuf>,
    on_role_change: Option<String>,
    registration: &Instance,
    format: Format,
) -> Result<Option<ElectConfig>, RegistrarConfigError> {
    let tag = match given {
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(role::DEFAULT_TAG.to_owned()),
        Some(toml::Value::String(tag)) if tag.is_empty() => Some(role::DEFAULT_TAG.to_owned()),
        Some(toml::Value::String(tag)) => Some(tag.clone()),
        Some(other) => {
            return Err(origin.invalid("elect", &other.to_string(), "expected true or a tag"));
        }
    };
    let Some(tag) = tag else {
        if let Some(path) = role_file {
            return Err(origin.invalid(
                "role-file",
                &path.display().to_string(),
                "needs --elect: only an elected service has a role",
            ));
        }
        if let Some(command) = on_role_change {
            return Err(origin.invalid(
                "on-role-change",
                &command,
                "needs --elect: only an elected service has a role",
            ));
        }
        return Ok(None);
    };
    let label = InstanceId::new(&tag).map_err(|e| origin.invalid("elect", &tag, e))?;
    let tag = label.as_str().to_owned();
    if tag == role::REPLICA_TAG || label == registration.id {
        return Err(origin.invalid(
            "elect",
            &tag,
            "names the replicas or the instance; give another tag, e.g. primary",
        ));
    }
    if registration
        .tags
        .iter()
        .any(|t| **t == *tag || &**t == role::REPLICA_TAG)
    {
        return Err(origin.invalid(
            "tag",
            &tag,
            "the election sets the primary and replica tags itself",
        ));
    }
    if format != Format::Native {
        return Err(origin.invalid(
            "elect",
            &tag,
            format!(
                "roles are tags, which only disco's own format carries (not {})",
                format.as_str()
            ),
        ));
    }
    if let Some(command) = &on_role_change
        && command.trim().is_empty()
    {
        return Err(origin.invalid("on-role-change", command, "an empty command"));
    }
    Ok(Some(ElectConfig {
        tag,
        role_file,
        on_role_change,
    }))
}

pub(super) fn parse_port(
    origin: &Origin,
    field: &str,
    text: &str,
) -> Result<u16, RegistrarConfigError> {
    match text.trim().parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(origin.invalid(field, text, "expected a port from 1 to 65535")),
    }
}

/// The instance id given, else `<host name>-<port>`: unique on the host
/// (two registrars of one service on one host differ in port) and readable.
pub(super) fn instance_id(
    origin: &Origin,
    given: Option<&str>,
    port: u16,
) -> Result<InstanceId, RegistrarConfigError> {
    if let Some(text) = given {
        return InstanceId::new(text).map_err(|e| origin.invalid("instance", text, e));
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let label: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let label = label.trim_matches('-');
    let label = if label.is_empty() { "instance" } else { label };
    let id = format!("{label}-{port}");
    InstanceId::new(&id)
        .map_err(|e| origin.invalid("instance", &id, format!("{e}; give --instance")))
}

/// Tags, each a DNS label, once, never the instance's own id (a label
/// under the service names an instance before a tag).
pub(super) fn tags(
    origin: &Origin,
    given: &[String],
    id: &InstanceId,
) -> Result<Tags, RegistrarConfigError> {
    let mut tags: Vec<InstanceId> = Vec::new();
    for text in given {
        let tag = InstanceId::new(text).map_err(|e| origin.invalid("tag", text, e))?;
        if tag == *id {
            return Err(origin.invalid(
                "tag",
                text,
                "equals the instance id; a label under the service names the instance first",
            ));
        }
        tags.push(tag);
    }
    Ok(tags.iter().map(InstanceId::as_str).collect())
}
