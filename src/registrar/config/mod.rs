//! The validated configuration of `disco registrar`: flags, environment,
//! the config file's `[registrar]` table and its `[[registrar.service]]`
//! entries, and the DockStack `-s` specs, merged into one list of services,
//! every value checked before anything is published. Any error exits 64 and
//! names the flag or the file's field.
//!
//! - `file`: the config file's shape, read and checked for unknown keys.
//! - `service`: one service's settings checked and turned into a
//!   [`ServiceConfig`].

mod file;
mod service;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::address::NoAutoAddress;
use super::check::CheckSpec;
use super::dockstack::DockStackSpec;
use super::health::Thresholds;
use super::role::ElectConfig;
use crate::cli::{LogFormat, RegistrarArgs};
use crate::config::{ConfigError, EtcdSettings, RegistryUrl, ZkSettings, log_filter};
use crate::model::Instance;
use crate::store::publish::Target;

use file::{FileCheck, FileRegistrar, Settings, Shared, read_file};
use service::{common, dockstack_service, duration_or, service};

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
/// Default `--resync`: time between full reconciles with Docker.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(30);
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
    /// to be looked up, the address, port and id are the fallback's.
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
    /// `--elect`: campaign for the primary tag, and how the role is told.
    pub elect: Option<ElectConfig>,
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
    /// Credentials for ZooKeeper registries.
    pub zk: ZkSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// `--docker`: containers are registered from their labels.
    pub docker: Option<crate::registrar::containers::DockerConfig>,
}

impl RegistrarConfig {
    /// Merges and validates everything. `address_auto` answers
    /// `--address auto` (the real one reads the host's routes; tests pass
    /// their own).
    pub fn from_args(
        args: RegistrarArgs,
        address_auto: &dyn Fn() -> Result<IpAddr, NoAutoAddress>,
    ) -> Result<Self, RegistrarConfigError> {
        let docker_args = args.docker_args();
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
        let role_flag = [
            ("elect", args.elect.is_some()),
            ("role-file", args.role_file.is_some()),
            ("on-role-change", args.on_role_change.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given);
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
                    elect: args.elect.map(toml::Value::String),
                    role_file: args.role_file,
                    on_role_change: args.on_role_change,
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
        let docker = docker_config(&docker_args, &shared, args.address.as_deref(), address_auto)?;
        if let (Some(_), Some((flag, _))) = (&docker, role_flag)
            && !flag_service_given
        {
            return Err(Origin::Flags.invalid(
                flag,
                "",
                "a --docker registrar elects per container: label it disco.elect \
                 (the role is told through DNS, /ready and /metrics)",
            ));
        }
        if docker.is_some() && !services.is_empty() {
            return Err(RegistrarConfigError::Invalid {
                setting: "--docker".to_owned(),
                value: "true".to_owned(),
                reason: "registers containers from their labels; give no --service, -s or \
                         [[registrar.service]] with it (run another registrar for those)"
                    .to_owned(),
            });
        }
        if services.is_empty() && docker.is_none() {
            return Err(RegistrarConfigError::Missing(
                "nothing to register: give --service and --port, -s specs, or a --config file \
                 with [[registrar.service]] entries"
                    .to_owned(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        // A DockStack service's id is known once Docker has answered:
        // `start` checks those.
        for service in services.iter().filter(|s| s.dockstack.is_none()) {
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
        let log_level = log_filter(args.log.log_level.or(file.log_level))?;
        let registries: Vec<RegistryUrl> = services
            .iter()
            .map(|s| s.target.registry.clone())
            .chain(docker.iter().map(|d| d.target.registry.clone()))
            .collect();
        let etcd = EtcdSettings::from_args(args.etcd, &registries)?;
        let zk = ZkSettings::from_args(args.zk, &registries)?;
        Ok(RegistrarConfig {
            zk,
            services,
            maintenance_file: args.maintenance_file.or(file.maintenance_file),
            drain,
            http_listen,
            etcd,
            log_format: args.log.log_format.or(file.log_format).unwrap_or_default(),
            log_level,
            docker,
        })
    }
}

/// The `--docker` flags, taken before the rest of the arguments are
/// consumed.
pub(crate) struct DockerArgs {
    docker: bool,
    all: bool,
    internal: bool,
    network: Option<String>,
    resync: Option<String>,
    swarm: bool,
}

impl RegistrarArgs {
    fn docker_args(&self) -> DockerArgs {
        DockerArgs {
            docker: self.docker,
            all: self.all,
            internal: self.internal,
            network: self.network.clone(),
            resync: self.resync.clone(),
            swarm: self.swarm,
        }
    }
}

/// The Docker source's settings, when `--docker` is given; its flags
/// without it are a usage error.
fn docker_config(
    args: &DockerArgs,
    shared: &Shared,
    address: Option<&str>,
    address_auto: &dyn Fn() -> Result<IpAddr, NoAutoAddress>,
) -> Result<Option<crate::registrar::containers::DockerConfig>, RegistrarConfigError> {
    let origin = Origin::Flags;
    if !args.docker {
        let given = [
            ("all", args.all),
            ("internal", args.internal),
            ("network", args.network.is_some()),
            ("resync", args.resync.is_some()),
            ("swarm", args.swarm),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
            return Err(origin.invalid(flag, "", "only with --docker"));
        }
        return Ok(None);
    }
    let common = common(&origin, shared)?;
    let resync_value = args.resync.clone().map(toml::Value::String);
    let resync = duration_or(&origin, "resync", &resync_value, DEFAULT_RESYNC)?;
    if resync < Duration::from_secs(1) {
        return Err(origin.invalid(
            "resync",
            args.resync.as_deref().unwrap_or_default(),
            "at least 1s",
        ));
    }
    let address = match address {
        None | Some("auto") => address_auto().map_err(|reason| {
            origin.invalid(
                "address",
                "auto",
                format!("{reason}; give the host's address, e.g. --address 10.0.0.5"),
            )
        })?,
        Some(text) => text
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map_err(|_| origin.invalid("address", text, "expected auto or an IP address"))?,
    };
    if let Some(network) = &args.network
        && network.trim().is_empty()
    {
        return Err(origin.invalid("network", network, "name a Docker network"));
    }
    Ok(Some(crate::registrar::containers::DockerConfig {
        options: crate::registrar::containers::select::Options {
            address,
            internal: args.internal,
            network: args.network.clone(),
            all: args.all,
            host: String::new(),
            swarm: args.swarm,
            interval: common.interval,
            timeout: common.timeout,
            thresholds: common.thresholds,
            format: common.target.format,
        },
        resync,
        target: common.target,
    }))
}
