//! The config file (`--config`): the TOML `[serve]` table, the same
//! settings as the flags, read and checked for unknown keys. The flags and
//! the environment win over it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;
use crate::cli::LogFormat;

/// The `[serve]` table of the config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileSettings {
    #[serde(default)]
    pub(super) listen: Vec<String>,
    pub(super) domain: Option<String>,
    #[serde(default)]
    pub(super) ns_address: Vec<String>,
    pub(super) zones_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) registry: Vec<String>,
    #[serde(default)]
    pub(super) upstream: Vec<String>,
    pub(super) upstream_ca: Option<PathBuf>,
    /// `"1d"`, or plain seconds as a TOML integer.
    pub(super) serve_stale: Option<toml::Value>,
    #[serde(default)]
    pub(super) allow_recursion: Vec<String>,
    /// `"5s"`, or plain seconds as a TOML integer.
    pub(super) ttl: Option<toml::Value>,
    pub(super) http_listen: Option<String>,
    /// `"10s"`, or plain seconds as a TOML integer.
    pub(super) watch_proof_interval: Option<toml::Value>,
    pub(super) udp_sockets: Option<usize>,
    pub(super) udp_answer_limit: Option<usize>,
    pub(super) tcp_connections: Option<usize>,
    pub(super) tcp_connections_per_client: Option<usize>,
    pub(super) rrl_responses: Option<u32>,
    pub(super) rrl_nxdomains: Option<u32>,
    pub(super) rrl_errors: Option<u32>,
    pub(super) rrl_slip: Option<u8>,
    pub(super) cookie_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) rrl_exempt: Vec<String>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) log_level: Option<String>,
    pub(super) etcd_ca: Option<PathBuf>,
    pub(super) etcd_cert: Option<PathBuf>,
    pub(super) etcd_key: Option<PathBuf>,
    pub(super) etcd_password_file: Option<PathBuf>,
    pub(super) zk_password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    serve: FileSettings,
}

pub(super) fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
    Ok(file.serve)
}

/// Flags win over the file; an empty list means "not given".
pub(super) fn pick<T>(flag: Vec<T>, file: Vec<T>) -> Vec<T> {
    if flag.is_empty() { file } else { flag }
}

/// A duration from the config file: `"5s"`, or plain seconds.
pub(super) fn toml_text(value: toml::Value) -> String {
    match value {
        toml::Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::ServeArgs;
    use crate::config::ServeConfig;

    #[test]
    fn a_config_file_ttl_may_be_plain_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disco.toml");
        std::fs::write(
            &path,
            "[serve]\nttl = 30\nupstream = [\"off\"]\nzones-dir = \"/nonexistent/zones\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            zones_dir: Some(dir.path().to_owned()),
            ..ServeArgs::default()
        };
        assert_eq!(ServeConfig::from_args(args).unwrap().ttl, 30);
    }
}
