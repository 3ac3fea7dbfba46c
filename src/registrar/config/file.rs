//! The config file's shape: the `[registrar]` table and its
//! `[[registrar.service]]` entries, read and checked for unknown keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RegistrarConfigError;
use crate::cli::LogFormat;
use crate::config::ConfigError;

/// A check in the config file: the `--check` text, or a table for an HTTP
/// check with a body or a Host header.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum FileCheck {
    Text(String),
    Table(HttpCheckTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpCheckTable {
    pub(super) url: String,
    pub(super) body: Option<String>,
    pub(super) host: Option<String>,
}

/// The settings one service may set, as written: from the flags or one
/// `[[registrar.service]]` entry. The shared ones (`registry` to
/// `http-host`) fall back to the flags, then to the `[registrar]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Settings {
    pub(super) service: Option<String>,
    /// A number in the file, a string from a flag.
    pub(super) port: Option<toml::Value>,
    pub(super) instance: Option<String>,
    pub(super) address: Option<String>,
    pub(super) port_name: Option<String>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    #[serde(default)]
    pub(super) meta: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) checks: Vec<FileCheck>,
    /// `elect = true` or `elect = "TAG"`.
    pub(super) elect: Option<toml::Value>,
    pub(super) role_file: Option<PathBuf>,
    pub(super) on_role_change: Option<String>,
    #[serde(flatten)]
    pub(super) shared: Shared,
}

/// Settings that apply to every service unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Shared {
    pub(super) registry: Option<String>,
    pub(super) interval: Option<toml::Value>,
    pub(super) timeout: Option<toml::Value>,
    pub(super) rise: Option<toml::Value>,
    pub(super) fall: Option<toml::Value>,
    pub(super) ttl: Option<toml::Value>,
    pub(super) format: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) http_body: Option<String>,
    pub(super) http_host: Option<String>,
}

impl Shared {
    /// Each setting from `self`, else from `fallback`.
    pub(super) fn or(self, fallback: &Shared) -> Shared {
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
/// also flattens, so unknown keys are refused by hand (`REGISTRAR_KEYS`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct FileRegistrar {
    #[serde(default)]
    pub(super) service: Vec<toml::Value>,
    pub(super) maintenance_file: Option<PathBuf>,
    pub(super) drain: Option<toml::Value>,
    pub(super) http_listen: Option<String>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) log_level: Option<String>,
    #[serde(flatten)]
    pub(super) shared: Shared,
}

/// The keys of [`Shared`], which both tables take. serde cannot refuse
/// unknown keys beside a flattened struct, so they are checked by hand.
const SHARED_KEYS: [&str; 10] = [
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

/// The other keys of a `[[registrar.service]]` entry.
const SERVICE_KEYS: [&str; 11] = [
    "service",
    "port",
    "instance",
    "address",
    "port-name",
    "tags",
    "meta",
    "checks",
    "elect",
    "role-file",
    "on-role-change",
];

/// The other keys of the `[registrar]` table.
const REGISTRAR_KEYS: [&str; 6] = [
    "service",
    "maintenance-file",
    "drain",
    "http-listen",
    "log-format",
    "log-level",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) registrar: toml::Table,
}

pub(super) fn file_error(path: &Path, reason: impl ToString) -> RegistrarConfigError {
    ConfigError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
    .into()
}

/// Reads the file: the `[registrar]` table and its services.
pub(super) fn read_file(
    path: &Path,
) -> Result<(FileRegistrar, Vec<Settings>), RegistrarConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| file_error(path, e))?;
    refuse_unknown_keys(path, "[registrar]", &file.registrar, &REGISTRAR_KEYS)?;
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

pub(super) fn refuse_unknown_keys(
    path: &Path,
    table_name: &str,
    table: &toml::Table,
    known: &[&str],
) -> Result<(), RegistrarConfigError> {
    let known: Vec<&str> = known.iter().chain(&SHARED_KEYS).copied().collect();
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
