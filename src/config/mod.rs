//! The validated runtime configuration of `disco serve`: flags, environment
//! and config file merged, every value checked and the zone files parsed
//! before any port is bound. Any error here exits 64.
//!
//! The layers run one way: [`crate::cli`] holds the raw flags as clap reads
//! them and knows nothing of this module; this module reads them (and the
//! config file) and turns them into the runtime structs the rest of disco
//! uses. The registrar's own configuration ([`crate::registrar::config`])
//! builds on the same parts.
//!
//! - `serve`: [`ServeConfig`] and its defaults, merged and checked.
//! - `file`: the config file's `[serve]` table (TOML).
//! - `registry_url`: `--registry` URLs parsed ([`RegistryUrl`]).
//! - `access`: how the stores are reached, etcd's TLS files and both
//!   stores' credentials ([`EtcdSettings`], [`ZkSettings`]).
//! - `values`: single values checked: addresses, CIDRs, TTLs, the log
//!   filter.
//! - `wait`: [`WaitConfig`], `disco wait`'s flags checked.
//! - `error`: [`ConfigError`], what can be wrong.

mod access;
mod error;
mod file;
mod registry_url;
mod serve;
mod values;
mod wait;

pub use access::{
    ETCD_PASSWORD_VAR, ETCD_USER_VAR, EtcdSettings, ZK_PASSWORD_VAR, ZK_USER_VAR, ZkSettings,
};
pub use error::ConfigError;
pub use registry_url::RegistryUrl;
pub use serve::{
    DEFAULT_ALLOW_RECURSION, DEFAULT_DOMAIN, DEFAULT_HTTP_LISTEN, DEFAULT_LISTEN,
    DEFAULT_SERVE_STALE, DEFAULT_TTL, SHUTDOWN_GRACE, ServeConfig, upstreams_from_resolv_conf,
};
pub use values::{log_filter, parse_ttl};
pub use wait::{DEFAULT_WAIT_TIMEOUT, WaitConfig, Want};
