//! [`ServeConfig`], the settings of `disco serve`: the flags, the
//! environment and the config file merged, every value checked and the
//! zone files parsed, with the defaults the README documents.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::access::{EtcdSettings, Pem, ZkSettings, read_pem};
use super::error::{ConfigError, invalid};
use super::file::{FileSettings, pick, read_file, toml_text};
use super::registry_url::{RegistryUrl, rejoin_registry_urls};
use super::values::{log_filter, parse_net, parse_socket_addr, parse_ttl};
use crate::catalog::MAX_REGISTRIES;
use crate::cli::{EtcdArgs, LogFormat, ServeArgs, ZkArgs};
use crate::dns::cookie::CookieSecret;
use crate::dns::forward::Upstream;
use crate::dns::rrl::{MAX_RATE, MAX_SLIP, RrlConfig};
use crate::dns::server::TcpLimits;
use crate::dns::{self, ZoneFile};

/// Default `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default `--domain`.
pub const DEFAULT_DOMAIN: &str = "disco.internal";
/// Default `--http-listen`.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9153";
/// Default `--ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Default `--allow-recursion`: loopback, RFC 1918, CGNAT, link-local and
/// unique-local ranges, where containers live.
pub const DEFAULT_ALLOW_RECURSION: [&str; 9] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];
/// Default `--serve-stale`: a day, as RFC 8767 §5 suggests at most.
pub const DEFAULT_SERVE_STALE: Duration = Duration::from_secs(86_400);
/// Default `--watch-proof-interval`.
pub const DEFAULT_WATCH_PROOF_INTERVAL: Duration = Duration::from_secs(10);
/// How long in-flight queries get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The settings of `disco serve`, validated.
#[derive(Debug)]
pub struct ServeConfig {
    /// DNS listen addresses.
    pub listen: Vec<SocketAddr>,
    /// The served domain, without trailing dot.
    pub domain: String,
    /// The A and AAAA records of the synthesised NS, `ns.<domain>`: the
    /// `--ns-address` values, else the specific `--listen` addresses.
    pub ns_addresses: Vec<IpAddr>,
    /// The parsed zone files.
    pub zones: Vec<ZoneFile>,
    /// Registries to watch.
    pub registries: Vec<RegistryUrl>,
    /// TLS and credentials for the etcd registries.
    pub etcd: EtcdSettings,
    /// Credentials for the ZooKeeper registries.
    pub zk: ZkSettings,
    /// Upstream resolvers (empty: forwarding off, other names REFUSED).
    pub upstreams: Vec<Upstream>,
    /// Extra CA certificates (PEM, checked) for TLS and HTTPS upstreams.
    pub upstream_ca: Option<Vec<u8>>,
    /// How long past its TTL a forwarded answer may be served stale.
    pub serve_stale: Duration,
    /// Clients that may recurse.
    pub allow_recursion: Vec<IpNet>,
    /// Default answer TTL, seconds.
    pub ttl: u32,
    /// Where `/health`, `/ready`, `/metrics` are served.
    pub http_listen: Option<SocketAddr>,
    /// How often each registry's watch is proved current (zero: never).
    pub watch_proof_interval: Duration,
    /// Changes kept in the timeline.
    pub change_history: usize,
    /// UDP sockets per listen address.
    pub udp_sockets: usize,
    /// At most this many answer records per UDP response.
    pub udp_answer_limit: Option<usize>,
    /// The caps on DNS-over-TCP connections.
    pub tcp_limits: TcpLimits,
    /// Response rate limiting of UDP answers.
    pub rrl: RrlConfig,
    /// The DNS cookie secret from `--cookie-secret-file` (`None`: random).
    pub cookie_secret: Option<CookieSecret>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
}

impl ServeConfig {
    /// Merges and validates everything; parses the zone files.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let listen_values = pick(args.listen, file.listen);
        let listen = if listen_values.is_empty() {
            vec![DEFAULT_LISTEN.parse().expect("valid default")]
        } else {
            listen_values
                .iter()
                .map(|v| parse_socket_addr("listen", v, None))
                .collect::<Result<_, _>>()?
        };
        let domain = args
            .domain
            .or(file.domain)
            .unwrap_or_else(|| DEFAULT_DOMAIN.to_owned());
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        dns::validate_domain(&domain).map_err(|reason| invalid("domain", &domain, reason))?;
        let ns_addresses = ns_addresses(pick(args.ns_address, file.ns_address), &listen)?;

        let zones_dir_given = args.zones_dir.as_ref().or(file.zones_dir.as_ref()).cloned();
        let zones = match zones_dir_given {
            // A directory the user named must exist; the default may not.
            Some(dir) => dns::zonefile::load_dir(&dir, true)?,
            None => dns::zonefile::load_dir(Path::new("zones"), false)?,
        };

        let registries: Vec<RegistryUrl> = pick(rejoin_registry_urls(args.registry), file.registry)
            .iter()
            .map(|u| RegistryUrl::parse(u))
            .collect::<Result<_, _>>()?;
        if registries.len() > MAX_REGISTRIES {
            let given = format!("({} of them)", registries.len());
            return Err(invalid(
                "registry",
                &given,
                format!("at most {MAX_REGISTRIES}"),
            ));
        }
        let etcd = EtcdSettings::from_args(
            EtcdArgs {
                etcd_ca: args.etcd.etcd_ca.or(file.etcd_ca),
                etcd_cert: args.etcd.etcd_cert.or(file.etcd_cert),
                etcd_key: args.etcd.etcd_key.or(file.etcd_key),
                etcd_password_file: args.etcd.etcd_password_file.or(file.etcd_password_file),
                ..args.etcd
            },
            &registries,
        )?;
        let zk = ZkSettings::from_args(
            ZkArgs {
                zk_password_file: args.zk.zk_password_file.or(file.zk_password_file),
                ..args.zk
            },
            &registries,
        )?;
        let upstream_values = pick(args.upstream, file.upstream);
        let upstreams = if upstream_values.is_empty() {
            upstreams_from_resolv_conf(Path::new("/etc/resolv.conf"), &listen)
                .into_iter()
                .map(Upstream::Plain)
                .collect()
        } else if upstream_values == ["off"] {
            Vec::new()
        } else {
            upstream_values
                .iter()
                .map(|v| Upstream::parse(v).map_err(|reason| invalid("upstream", v, reason)))
                .collect::<Result<Vec<_>, _>>()?
        };
        let upstream_ca = args
            .upstream_ca
            .or(file.upstream_ca)
            .map(|path| read_pem("upstream-ca", &path, Pem::Certificates))
            .transpose()?;
        let serve_stale = match args.serve_stale.or(file.serve_stale.map(toml_text)) {
            Some(text) => Duration::from_secs(parse_ttl("serve-stale", &text)?.into()),
            None => DEFAULT_SERVE_STALE,
        };
        let acl_values = pick(args.allow_recursion, file.allow_recursion);
        let allow_recursion: Vec<IpNet> = if acl_values.is_empty() {
            DEFAULT_ALLOW_RECURSION
                .iter()
                .map(|n| n.parse().expect("valid default"))
                .collect()
        } else {
            acl_values
                .iter()
                .map(|v| parse_net("allow-recursion", v))
                .collect::<Result<_, _>>()?
        };
        let file_ttl = file.ttl.map(toml_text);
        let ttl = match args.ttl.or(file_ttl) {
            Some(text) => parse_ttl("ttl", &text)?,
            None => DEFAULT_TTL.as_secs() as u32,
        };
        let http_listen = match args.http_listen.or(file.http_listen).as_deref() {
            Some("off") => None,
            Some(value) => Some(parse_socket_addr("http-listen", value, None)?),
            None => Some(DEFAULT_HTTP_LISTEN.parse().expect("valid default")),
        };
        let watch_proof_interval = match args
            .watch_proof_interval
            .or(file.watch_proof_interval.map(toml_text))
        {
            Some(text) => Duration::from_secs(parse_ttl("watch-proof-interval", &text)?.into()),
            None => DEFAULT_WATCH_PROOF_INTERVAL,
        };
        let change_history = match args.change_history.or(file.change_history) {
            Some(n) if n > 1_000_000 => {
                return Err(invalid("change-history", &n.to_string(), "at most 1000000"));
            }
            Some(n) => n,
            None => crate::catalog::DEFAULT_HISTORY,
        };
        let udp_sockets = match args.udp_sockets.or(file.udp_sockets) {
            Some(0) => return Err(invalid("udp-sockets", "0", "must be at least 1")),
            Some(n) if n > 256 => {
                return Err(invalid("udp-sockets", &n.to_string(), "at most 256"));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let udp_answer_limit = args.udp_answer_limit.or(file.udp_answer_limit);
        if udp_answer_limit == Some(0) {
            return Err(invalid("udp-answer-limit", "0", "must be at least 1"));
        }
        let defaults = TcpLimits::default();
        let tcp_limits = TcpLimits {
            total: at_least_one(
                "tcp-connections",
                args.tcp_connections.or(file.tcp_connections),
            )?
            .unwrap_or(defaults.total),
            per_client: at_least_one(
                "tcp-connections-per-client",
                args.tcp_connections_per_client
                    .or(file.tcp_connections_per_client),
            )?
            .unwrap_or(defaults.per_client),
        };
        let rrl = RrlConfig {
            responses: rate(
                "rrl-responses",
                args.rrl_responses.or(file.rrl_responses),
                RrlConfig::DEFAULT_RESPONSES,
            )?,
            nxdomains: rate(
                "rrl-nxdomains",
                args.rrl_nxdomains.or(file.rrl_nxdomains),
                RrlConfig::DEFAULT_NXDOMAINS,
            )?,
            errors: rate(
                "rrl-errors",
                args.rrl_errors.or(file.rrl_errors),
                RrlConfig::DEFAULT_ERRORS,
            )?,
            slip: match args.rrl_slip.or(file.rrl_slip) {
                Some(slip) if slip > MAX_SLIP => {
                    let reason =
                        format!("at most {MAX_SLIP} (0 drops every response over the rate)");
                    return Err(invalid("rrl-slip", &slip.to_string(), reason));
                }
                Some(slip) => slip,
                None => RrlConfig::DEFAULT_SLIP,
            },
            exempt: match pick(args.rrl_exempt, file.rrl_exempt).as_slice() {
                [] => allow_recursion.clone(),
                [none] if none == "none" => Vec::new(),
                values => values
                    .iter()
                    .map(|v| parse_net("rrl-exempt", v))
                    .collect::<Result<_, _>>()?,
            },
        };
        let cookie_secret = match args.cookie_secret_file.or(file.cookie_secret_file) {
            Some(path) => Some(CookieSecret::from_file(&path).map_err(|reason| {
                invalid("cookie-secret-file", &path.display().to_string(), reason)
            })?),
            None => None,
        };
        let log_level = log_filter(args.log.log_level.or(file.log_level))?;
        Ok(ServeConfig {
            listen,
            domain,
            ns_addresses,
            zones,
            registries,
            etcd,
            zk,
            upstreams,
            upstream_ca,
            serve_stale,
            allow_recursion,
            ttl,
            http_listen,
            watch_proof_interval,
            change_history,
            udp_sockets,
            udp_answer_limit,
            tcp_limits,
            rrl,
            cookie_secret,
            log_format: args.log.log_format.or(file.log_format).unwrap_or_default(),
            log_level,
        })
    }
}

/// A rate limit, per second: `default` when not given, 0 for none.
fn rate(flag: &'static str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
    match value {
        Some(rate) if rate > MAX_RATE => Err(invalid(
            flag,
            &rate.to_string(),
            format!("at most {MAX_RATE} a second (0 for no limit)"),
        )),
        value => Ok(value.unwrap_or(default)),
    }
}

/// A count that must be at least 1 when given.
fn at_least_one(flag: &'static str, value: Option<usize>) -> Result<Option<usize>, ConfigError> {
    match value {
        Some(0) => Err(invalid(flag, "0", "must be at least 1")),
        value => Ok(value),
    }
}

/// The synthesised NS's addresses: `--ns-address`, else every `--listen`
/// address but the wildcards (`0.0.0.0`, `::`), which no resolver can
/// send to.
fn ns_addresses(values: Vec<String>, listen: &[SocketAddr]) -> Result<Vec<IpAddr>, ConfigError> {
    let mut addresses: Vec<IpAddr> = if values.is_empty() {
        listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect()
    } else {
        values
            .iter()
            .map(|value| match value.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => {
                    let reason = "a wildcard address cannot be reached; \
                                  give the address resolvers reach disco at";
                    Err(invalid("ns-address", value, reason))
                }
                Ok(ip) => Ok(ip),
                Err(_) => {
                    let reason = "not an IP address (e.g. 192.0.2.53 or 2001:db8::53)";
                    Err(invalid("ns-address", value, reason))
                }
            })
            .collect::<Result<_, _>>()?
    };
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|ip| seen.insert(*ip));
    Ok(addresses)
}

/// Docker's embedded resolver, the one nameserver of a container on a
/// user-defined network. Docker's own NAT rules send its port 53 to dockerd,
/// so it is never disco, even when disco listens on `0.0.0.0:53`.
const DOCKER_RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

/// The host's resolvers, minus any that is disco itself (same port on an
/// address disco listens on), which would make every forward a loop.
pub fn upstreams_from_resolv_conf(path: &Path, listen: &[SocketAddr]) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|ip| ip.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|upstream| {
            !listen.iter().any(|own| {
                own.port() == upstream.port()
                    && (own.ip() == upstream.ip()
                        || (own.ip().is_unspecified()
                            && upstream.ip().is_loopback()
                            && upstream.ip() != DOCKER_RESOLVER))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_registries_than_the_catalog_tells_apart_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let args = |count: usize| ServeArgs {
            zones_dir: Some(dir.path().to_owned()),
            upstream: vec!["off".into()],
            registry: (0..count)
                .map(|n| format!("etcd://127.0.0.1:2379/r{n}"))
                .collect(),
            ..ServeArgs::default()
        };
        let config = ServeConfig::from_args(args(MAX_REGISTRIES)).unwrap();
        assert_eq!(config.registries.len(), MAX_REGISTRIES);
        let err = ServeConfig::from_args(args(MAX_REGISTRIES + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --registry \"(65537 of them)\": at most 65536"
        );
    }

    #[test]
    fn resolv_conf_upstreams_skip_disco_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "# comment\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch x\n").unwrap();
        let own: SocketAddr = "0.0.0.0:53".parse().unwrap();
        let upstreams = upstreams_from_resolv_conf(&path, &[own]);
        assert_eq!(
            upstreams,
            [
                "192.0.2.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    /// Inside a container on a user-defined network the one nameserver is
    /// Docker's 127.0.0.11, which disco on 0.0.0.0:53 must forward to.
    #[test]
    fn resolv_conf_upstreams_keep_dockers_resolver() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "search disco.internal\nnameserver 127.0.0.11\noptions ndots:0\n",
        )
        .unwrap();
        let own: SocketAddr = "0.0.0.0:53".parse().unwrap();
        assert_eq!(
            upstreams_from_resolv_conf(&path, &[own]),
            ["127.0.0.11:53".parse::<SocketAddr>().unwrap()]
        );
    }
}
