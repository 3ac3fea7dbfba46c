//! The validated configuration of `disco registrar`: flags, environment,
//! the config file's `[registrar]` table and its `[[registrar.service]]`
//! entries, and the DockStack `-s` specs, merged into one list of services,
//! every value checked before anything is published. Any error exits 64 and
//! names the flag or the file's field.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::CheckSpec;
use super::dockstack::DockStackSpec;
use super::health::Thresholds;
use super::{Format, Target};
use crate::cli::{LogFormat, RegistrarArgs};
use crate::config::{ConfigError, EtcdSettings, RegistryUrl};
use crate::model::{Instance, InstanceId, ServiceName, SmallMap};

/// Default `--interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default `--rise`.
pub const DEFAULT_RISE: u32 = 2;
/// Default `--fall`.
pub const DEFAULT_FALL: u32 = 3;
/// Default `--ttl`: the lease TTL or session timeout.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Default `--domain`, for SkyDNS keys.
pub const DEFAULT_DOMAIN: &str = "disco.internal";

/// A registrar configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarConfigError {
    /// A setting has a bad value; `setting` names the flag (`--port`) or
    /// the file's field.
    #[error("invalid {setting} {value:?}: {reason}")]
    Invalid {
        /// `--port`, or `port of service 2 in services.toml`.
        setting: String,
        /// The value given.
        value: String,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// Something is missing.
    #[error("{0}")]
    Missing(String),
    /// The config file, the registry URL or the etcd settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Where a service's settings came from, to name a bad one.
#[derive(Debug, Clone)]
enum Origin {
    Flags,
    File { path: PathBuf, index: usize },
    DockStack { spec: String },
}

impl Origin {
    /// The name of `field` as the user wrote it.
    fn setting(&self, field: &str) -> String {
        match self {
            Origin::Flags => format!("--{field}"),
            Origin::File { path, index } => format!(
                "{field} of [[registrar.service]] {} in {}",
                index + 1,
                path.display()
            ),
            Origin::DockStack { spec } => format!("--{field} (for -s {spec})"),
        }
    }

    fn invalid(&self, field: &str, value: &str, reason: impl ToString) -> RegistrarConfigError {
        RegistrarConfigError::Invalid {
            setting: self.setting(field),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// One service: what is published where, and how it is checked.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The registration. For a DockStack service whose container is still
    /// to be looked up, the address and port are the fallback's.
    pub registration: Instance,
    /// Where it goes and in which format.
    pub target: Target,
    /// The checks, all of which must pass.
    pub checks: Vec<CheckSpec>,
    /// Time between rounds of checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Rounds in a row that turn the state.
    pub thresholds: Thresholds,
    /// For `-s`: the container whose published port is asked of Docker.
    pub dockstack: Option<DockStackSpec>,
}

/// The whole registrar, validated.
#[derive(Debug)]
pub struct RegistrarConfig {
    /// The services, in the order given (file first, then flags, then `-s`).
    pub services: Vec<ServiceConfig>,
    /// While this file exists, every registration is withdrawn.
    pub maintenance_file: Option<PathBuf>,
    /// Time between withdrawing at SIGTERM and exiting.
    pub drain: Duration,
    /// Where `/health`, `/ready` and `/metrics` are served.
    pub http_listen: Option<SocketAddr>,
    /// TLS and credentials for etcd registries.
    pub etcd: EtcdSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
}

/// A check in the config file: the `--check` text, or a table for an HTTP
/// check with a body or a Host header.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FileCheck {
    Text(String),
    Table(HttpCheckTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpCheckTable {
    url: String,
    body: Option<String>,
    host: Option<String>,
}

/// The settings one service may set, as written: from the flags or one
/// `[[registrar.service]]` entry. The shared ones (`registry` to
/// `http-host`) fall back to the flags, then to the `[registrar]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Settings {
    service: Option<String>,
    /// A number in the file, a string from a flag.
    port: Option<toml::Value>,
    instance: Option<String>,
    address: Option<String>,
    port_name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    checks: Vec<FileCheck>,
    #[serde(flatten)]
    shared: Shared,
}

/// Settings that apply to every service unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Shared {
    registry: Option<String>,
    interval: Option<toml::Value>,
    timeout: Option<toml::Value>,
    rise: Option<toml::Value>,
    fall: Option<toml::Value>,
    ttl: Option<toml::Value>,
    format: Option<String>,
    domain: Option<String>,
    http_body: Option<String>,
    http_host: Option<String>,
}

impl Shared {
    /// Each setting from `self`, else from `fallback`.
    fn or(self, fallback: &Shared) -> Shared {
        Shared {
            registry: self.registry.or_else(|| fallback.registry.clone()),
            interval: self.interval.or_else(|| fallback.interval.clone()),
            timeout: self.timeout.or_else(|| fallback.timeout.clone()),
            rise: self.rise.or_else(|| fallback.rise.clone()),
            fall: self.fall.or_else(|| fallback.fall.clone()),
            ttl: self.ttl.or_else(|| fallback.ttl.clone()),
            format: self.format.or_else(|| fallback.format.clone()),
            domain: self.domain.or_else(|| fallback.domain.clone()),
            http_body: self.http_body.or_else(|| fallback.http_body.clone()),
            http_host: self.http_host.or_else(|| fallback.http_host.clone()),
        }
    }
}

/// The `[registrar]` table. serde cannot refuse unknown keys of a table it
/// also flattens, so the shared keys are refused by hand (`KNOWN_KEYS`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileRegistrar {
    #[serde(default)]
    service: Vec<toml::Value>,
    maintenance_file: Option<PathBuf>,
    drain: Option<toml::Value>,
    http_listen: Option<String>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    #[serde(flatten)]
    shared: Shared,
}

/// The keys of a `[[registrar.service]]` entry (serde cannot refuse the
/// unknown ones itself: the shared keys are flattened in).
const SERVICE_KEYS: [&str; 18] = [
    "service",
    "port",
    "instance",
    "address",
    "port-name",
    "tags",
    "meta",
    "checks",
    "registry",
    "interval",
    "timeout",
    "rise",
    "fall",
    "ttl",
    "format",
    "domain",
    "http-body",
    "http-host",
];

const KNOWN_KEYS: [&str; 16] = [
    "service",
    "maintenance-file",
    "drain",
    "http-listen",
    "log-format",
    "log-level",
    "registry",
    "interval",
    "timeout",
    "rise",
    "fall",
    "ttl",
    "format",
    "domain",
    "http-body",
    "http-host",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    registrar: toml::Table,
}

fn file_error(path: &Path, reason: impl ToString) -> RegistrarConfigError {
    ConfigError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
    .into()
}

/// Reads the file: the `[registrar]` table and its services.
fn read_file(path: &Path) -> Result<(FileRegistrar, Vec<Settings>), RegistrarConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| file_error(path, e))?;
    refuse_unknown_keys(path, "[registrar]", &file.registrar, &KNOWN_KEYS)?;
    let registrar: FileRegistrar = toml::Value::Table(file.registrar)
        .try_into()
        .map_err(|e| file_error(path, format!("[registrar]: {e}")))?;
    let services = registrar
        .service
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let table_name = format!("[[registrar.service]] {}", index + 1);
            if let toml::Value::Table(table) = value {
                refuse_unknown_keys(path, &table_name, table, &SERVICE_KEYS)?;
            }
            value
                .clone()
                .try_into::<Settings>()
                .map_err(|e| file_error(path, format!("{table_name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((registrar, services))
}

fn refuse_unknown_keys(
    path: &Path,
    table_name: &str,
    table: &toml::Table,
    known: &[&str],
) -> Result<(), RegistrarConfigError> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(file_error(
            path,
            format!(
                "unknown key `{key}` in {table_name}; expected one of {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// A duration such as `2s`, `500ms` or `1m`, or plain seconds.
fn parse_duration(
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
fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn duration_or(
    origin: &Origin,
    field: &str,
    value: &Option<toml::Value>,
    default: Duration,
) -> Result<Duration, RegistrarConfigError> {
    value
        .as_ref()
        .map_or(Ok(default), |v| parse_duration(origin, field, &text(v)))
}

fn count_or(
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

impl RegistrarConfig {
    /// Merges and validates everything. `address_auto` answers
    /// `--address auto` (the real one reads the host's routes; tests pass
    /// their own).
    pub fn from_args(
        args: RegistrarArgs,
        address_auto: &dyn Fn() -> Result<IpAddr, String>,
    ) -> Result<Self, RegistrarConfigError> {
        let (file, file_services) = match &args.config {
            Some(path) => {
                let (file, services) = read_file(path)?;
                let services = services
                    .into_iter()
                    .enumerate()
                    .map(|(index, settings)| {
                        let origin = Origin::File {
                            path: path.clone(),
                            index,
                        };
                        (origin, settings)
                    })
                    .collect();
                (file, services)
            }
            None => (FileRegistrar::default(), Vec::new()),
        };
        let flags_shared = Shared {
            registry: args.registry,
            interval: args.interval.map(toml::Value::String),
            timeout: args.timeout.map(toml::Value::String),
            rise: args.rise.map(toml::Value::String),
            fall: args.fall.map(toml::Value::String),
            ttl: args.ttl.map(toml::Value::String),
            format: args.format,
            domain: args.domain,
            http_body: args.http_body,
            http_host: args.http_host,
        };
        let shared = flags_shared.or(&file.shared);
        let mut given: Vec<(Origin, Settings)> = file_services;
        let flag_service_given = args.service.is_some()
            || args.port.is_some()
            || args.instance.is_some()
            || !args.check.is_empty()
            || !args.tag.is_empty();
        if flag_service_given {
            let meta = args
                .meta
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| Origin::Flags.invalid("meta", pair, "expected KEY=VALUE"))
                })
                .collect::<Result<_, _>>()?;
            given.push((
                Origin::Flags,
                Settings {
                    service: args.service,
                    port: args.port.map(toml::Value::String),
                    instance: args.instance,
                    address: args.address.clone(),
                    port_name: args.port_name,
                    tags: args.tag,
                    meta,
                    checks: args.check.into_iter().map(FileCheck::Text).collect(),
                    shared: Shared::default(),
                },
            ));
        }
        let mut services = Vec::new();
        for (origin, settings) in given {
            services.push(service(&origin, settings, &shared, address_auto)?);
        }
        for spec in &args.dockstack {
            let origin = Origin::DockStack { spec: spec.clone() };
            let parsed = DockStackSpec::parse(spec).map_err(|e| RegistrarConfigError::Invalid {
                setting: "-s".to_owned(),
                value: spec.clone(),
                reason: e.to_string(),
            })?;
            services.push(dockstack_service(&origin, parsed, &shared)?);
        }
        if services.is_empty() {
            return Err(RegistrarConfigError::Missing(
                "nothing to register: give --service and --port, -s specs, or a --config file \
                 with [[registrar.service]] entries"
                    .to_owned(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for service in &services {
            let key = (
                service.target.registry.to_string(),
                service.registration.service.clone(),
                service.registration.id.clone(),
            );
            if !seen.insert(key) {
                return Err(RegistrarConfigError::Invalid {
                    setting: "--instance".to_owned(),
                    value: service.registration.id.to_string(),
                    reason: format!(
                        "service {} has this instance twice; give each its own --instance",
                        service.registration.service
                    ),
                });
            }
        }
        let drain_value = args.drain.map(toml::Value::String).or(file.drain);
        let drain = duration_or(&Origin::Flags, "drain", &drain_value, Duration::ZERO)?;
        let http_listen = match args.http_listen.or(file.http_listen).as_deref() {
            None | Some("off") => None,
            Some(value) => Some(value.parse::<SocketAddr>().map_err(|_| {
                Origin::Flags.invalid(
                    "http-listen",
                    value,
                    "expected IP:PORT, e.g. 127.0.0.1:9154, or off",
                )
            })?),
        };
        let log_level = args
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| Origin::Flags.invalid("log-level", &log_level, e))?;
        let registries: Vec<RegistryUrl> =
            services.iter().map(|s| s.target.registry.clone()).collect();
        let etcd = crate::config::etcd_settings_for(
            [
                args.etcd_ca,
                args.etcd_cert,
                args.etcd_key,
                args.etcd_password_file,
            ],
            &registries,
        )?;
        Ok(RegistrarConfig {
            services,
            maintenance_file: args.maintenance_file.or(file.maintenance_file),
            drain,
            http_listen,
            etcd,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level,
        })
    }
}

/// The shared settings of one service, checked.
struct Common {
    target: Target,
    interval: Duration,
    timeout: Duration,
    thresholds: Thresholds,
}

fn common(origin: &Origin, shared: &Shared) -> Result<Common, RegistrarConfigError> {
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
    if format == Format::SkyDns && registry.path == "/" {
        registry.path = "/skydns".to_owned();
    } else if registry.path == "/" {
        registry.path = "/disco".to_owned();
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
fn service(
    origin: &Origin,
    settings: Settings,
    shared: &Shared,
    address_auto: &dyn Fn() -> Result<IpAddr, String>,
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
            .collect::<SmallMap<u16>>();
    }
    registration.tags = tags(origin, &settings.tags, &registration.id)?;
    registration.meta = settings.meta.into_iter().collect();
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
    })
}

/// A service from a DockStack `-s` spec: the registry from `-d`, the check
/// from the spec's type, the node under the registry's path plus the
/// spec's, in Nerve's format (unless `--format` says otherwise).
fn dockstack_service(
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
    let id = instance_id(origin, None, spec.port)?;
    // Until Docker answers, the fallback: the container field as the host.
    let address = spec
        .fallback_address()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
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
    })
}

fn parse_port(origin: &Origin, field: &str, text: &str) -> Result<u16, RegistrarConfigError> {
    match text.trim().parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(origin.invalid(field, text, "expected a port from 1 to 65535")),
    }
}

/// The instance id given, else `<host name>-<port>`: unique on the host
/// (two registrars of one service on one host differ in port) and readable.
fn instance_id(
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
fn tags(
    origin: &Origin,
    given: &[String],
    id: &InstanceId,
) -> Result<Box<[Box<str>]>, RegistrarConfigError> {
    let mut tags: Vec<Box<str>> = Vec::new();
    for text in given {
        let tag = InstanceId::new(text).map_err(|e| origin.invalid("tag", text, e))?;
        if tag == *id {
            return Err(origin.invalid(
                "tag",
                text,
                "equals the instance id; a label under the service names the instance first",
            ));
        }
        if !tags.iter().any(|t| **t == *tag.as_str()) {
            tags.push(tag.as_str().into());
        }
    }
    Ok(tags.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Result<IpAddr, String> {
        Ok("10.0.0.5".parse().unwrap())
    }

    fn flags(extra: &[&str]) -> RegistrarArgs {
        use clap::Parser;
        let mut argv = vec![
            "disco",
            "registrar",
            "--registry",
            "etcd://127.0.0.1:2379/disco",
        ];
        argv.extend(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Registrar(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_make_one_service_with_the_defaults() {
        let config = RegistrarConfig::from_args(
            flags(&["--service", "Web", "--port", "8080", "--tag", "v2"]),
            &auto,
        )
        .unwrap();
        let service = &config.services[0];
        assert_eq!(service.registration.service.as_str(), "web");
        assert_eq!(
            service.registration.address,
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert!(service.registration.id.as_str().ends_with("-8080"));
        assert_eq!(
            service.checks,
            [CheckSpec::Tcp {
                target: "10.0.0.5:8080".into()
            }]
        );
        assert_eq!(
            (service.interval, service.timeout),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
        );
        assert_eq!(service.thresholds, Thresholds { rise: 2, fall: 3 });
        assert_eq!(service.target.ttl, DEFAULT_TTL);
        assert_eq!(service.target.registry.path, "/disco");
        assert_eq!(config.drain, Duration::ZERO);
    }

    #[test]
    fn a_service_in_the_file_wins_over_flags_which_win_over_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(
            &path,
            r#"
[registrar]
interval = "5s"
rise = 4
fall = 4
[[registrar.service]]
service = "a"
port = 1
address = "fd00::1"
[[registrar.service]]
service = "b"
port = 2
address = "10.0.0.2"
fall = 7
checks = [{ url = "http://10.0.0.2:2/h", body = "ok", host = "b.internal" }]
"#,
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let config =
            RegistrarConfig::from_args(flags(&["--config", path_text, "--rise", "3"]), &auto)
                .unwrap();
        let [a, b] = &config.services[..] else {
            panic!("two services")
        };
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.thresholds, Thresholds { rise: 3, fall: 4 });
        assert_eq!(b.thresholds, Thresholds { rise: 3, fall: 7 });
        assert_eq!(
            a.checks,
            [CheckSpec::Tcp {
                target: "[fd00::1]:1".into()
            }]
        );
        assert_eq!(
            b.checks,
            [CheckSpec::Http {
                url: "http://10.0.0.2:2/h".into(),
                body: Some("ok".into()),
                host: Some("b.internal".into())
            }]
        );
    }

    #[test]
    fn the_scheme_of_a_reader_sets_the_format() {
        let mut args = flags(&["--service", "web", "--port", "80"]);
        args.registry = Some("skydns+etcd://127.0.0.1:2379".into());
        let config = RegistrarConfig::from_args(args, &auto).unwrap();
        let target = &config.services[0].target;
        assert_eq!(
            (target.format, target.registry.scheme.as_str()),
            (Format::SkyDns, "etcd")
        );
        assert_eq!(target.registry.path, "/skydns");
    }

    #[test]
    fn without_an_address_auto_cannot_find_it_says_what_to_do() {
        let none = || Err("no default route".to_owned());
        let error = RegistrarConfig::from_args(flags(&["--service", "web", "--port", "80"]), &none)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--address") && error.contains("no default route"),
            "{error}"
        );
    }
}
