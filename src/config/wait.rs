//! `disco wait`'s flags checked: the names, what each must answer, how
//! long to wait and which servers to ask.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, invalid};
use super::values::parse_socket_addr;
use crate::cli::WaitArgs;
use crate::dns::ask::{self, ResolvConf};

/// How long `disco wait` waits when `--timeout` is not given.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one name must answer before `disco wait` is satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// At least this many addresses.
    AtLeast(usize),
    /// Exactly one address for `primary.<name>`.
    OnePrimary,
}

/// `disco wait`, validated.
#[derive(Debug, Clone)]
pub struct WaitConfig {
    /// The names as given.
    pub names: Vec<String>,
    /// What each must answer.
    pub want: Want,
    /// When to give up.
    pub timeout: Duration,
    /// The servers asked, in order: `--server`, else resolv.conf's.
    pub servers: Vec<SocketAddr>,
    /// How names are completed (resolv.conf's search list and ndots).
    pub resolv: ResolvConf,
}

impl WaitConfig {
    /// Checks `args`, reading the resolver settings from `resolv_conf`.
    pub fn from_args(args: WaitArgs, resolv_conf: &Path) -> Result<WaitConfig, ConfigError> {
        for name in &args.names {
            ask::valid_name(name).map_err(|reason| invalid("name", name, reason))?;
        }
        let want = match (args.primary, args.min.as_deref()) {
            (true, Some(min)) => {
                return Err(invalid(
                    "min",
                    min,
                    "--primary waits for exactly one primary; give one or the other",
                ));
            }
            (true, None) => Want::OnePrimary,
            (false, None) => Want::AtLeast(1),
            (false, Some(min)) => match min.parse::<usize>() {
                Ok(n) if n >= 1 => Want::AtLeast(n),
                _ => return Err(invalid("min", min, "expected a whole number, at least 1")),
            },
        };
        let timeout = match args.timeout.as_deref() {
            None => DEFAULT_WAIT_TIMEOUT,
            Some(value) => match humantime::parse_duration(value) {
                Ok(timeout) if !timeout.is_zero() => timeout,
                Ok(_) => return Err(invalid("timeout", value, "expected more than zero")),
                Err(e) => return Err(invalid("timeout", value, format!("{e}; expected e.g. 60s"))),
            },
        };
        let resolv = std::fs::read_to_string(resolv_conf)
            .map(|text| ResolvConf::parse(&text))
            .unwrap_or(ResolvConf {
                ndots: 1,
                ..ResolvConf::default()
            });
        let servers = if args.server.is_empty() {
            resolv.nameservers.clone()
        } else {
            args.server
                .iter()
                .map(|s| parse_socket_addr("server", s, Some(53)))
                .collect::<Result<_, _>>()?
        };
        if servers.is_empty() {
            return Err(invalid(
                "server",
                "",
                format!(
                    "{} names no nameserver; give --server IP[:PORT]",
                    resolv_conf.display()
                ),
            ));
        }
        Ok(WaitConfig {
            names: args.names,
            want,
            timeout,
            servers,
            resolv,
        })
    }
}
