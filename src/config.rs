//! The validated runtime configuration of `disco serve`: flags, environment
//! and config file merged, every value checked and the zone files parsed
//! before any port is bound. Any error here exits 64.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::cli::{EtcdArgs, LogFormat, ServeArgs, ZkArgs};
use crate::dns::forward::Upstream;
use crate::dns::{self, ZoneFile, ZoneFileError};

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
/// How long in-flight queries get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag (or its env variable, or config key) has a bad value.
    #[error("invalid --{flag} {value:?}: {reason}")]
    Invalid {
        /// The flag's name.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A zone file cannot be used.
    #[error(transparent)]
    Zone(#[from] ZoneFileError),
    /// A setting read only from the environment (a credential) is bad.
    #[error("invalid {variable}: {reason}")]
    Environment {
        /// The variable's name.
        variable: &'static str,
        /// What is wrong, and what to do.
        reason: String,
    },
}

fn invalid(flag: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// `host:port`, with the scheme's port when none is given; `None` for an
/// empty host or a port that is not 1 to 65535. IPv6 hosts go in brackets.
fn endpoint(host: &str, default_port: u16) -> Option<String> {
    let port_at = host.rfind(':').filter(|&at| !host[at..].contains(']'));
    let (name, port) = match port_at {
        Some(at) => (
            &host[..at],
            host[at + 1..].parse::<u16>().ok().filter(|&p| p > 0)?,
        ),
        None => (host, default_port),
    };
    if name.is_empty() || name == "[]" || (name.contains(':') && !name.starts_with('[')) {
        return None;
    }
    Some(format!("{name}:{port}"))
}

/// Checks a ZooKeeper chroot (the URL's path after its first `/`): names
/// separated by single slashes, none `.` or `..`, no control characters,
/// as ZooKeeper requires of a path.
fn zookeeper_path(path: &str) -> Result<(), String> {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Ok(());
    }
    for name in path.split('/') {
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!(
                "the chroot /{path} is not a ZooKeeper path (empty, . or .. name); expected e.g. /disco"
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!(
                "the chroot /{path} has a control character; expected e.g. /disco"
            ));
        }
    }
    Ok(())
}

/// A registry URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `etcd`, `etcds`, `zk`, `skydns+etcd`, `skydns+etcds`, `nerve+zk`.
    pub scheme: String,
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
    /// The key prefix or chroot path.
    pub path: String,
}

impl RegistryUrl {
    /// Parses `scheme://h1:p1,h2:p2/path`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        const SCHEMES: [&str; 6] = [
            "etcd",
            "etcds",
            "zk",
            "skydns+etcd",
            "skydns+etcds",
            "nerve+zk",
        ];
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            invalid(
                "registry",
                url,
                "expected scheme://host:port/path, e.g. etcd://127.0.0.1:2379/disco",
            )
        })?;
        if !SCHEMES.contains(&scheme) {
            return Err(invalid(
                "registry",
                url,
                format!(
                    "unknown scheme {scheme:?}; expected one of {}",
                    SCHEMES.join(", ")
                ),
            ));
        }
        let (hosts, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        if let Some((_, after)) = hosts.rsplit_once('@') {
            // Never repeat the credentials, not even in the error.
            let redacted = format!("{scheme}://***@{after}/{path}");
            return Err(invalid(
                "registry",
                &redacted,
                "credentials do not belong in a URL that ps shows; use the environment",
            ));
        }
        let default_port = if scheme.ends_with("zk") { 2181 } else { 2379 };
        let endpoints = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|host| {
                endpoint(host, default_port).ok_or_else(|| {
                    invalid(
                        "registry",
                        url,
                        format!("{host:?} is not HOST or HOST:PORT (port 1 to 65535)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(invalid("registry", url, "no host given"));
        }
        if scheme.ends_with("zk")
            && let Err(reason) = zookeeper_path(path)
        {
            return Err(invalid("registry", url, reason));
        }
        Ok(RegistryUrl {
            scheme: scheme.to_owned(),
            endpoints,
            path: format!("/{}", path.trim_end_matches('/')),
        })
    }

    /// Whether the registry is an etcd cluster (either format).
    pub fn is_etcd(&self) -> bool {
        matches!(
            self.scheme.as_str(),
            "etcd" | "etcds" | "skydns+etcd" | "skydns+etcds"
        )
    }

    /// Whether the registry is a ZooKeeper ensemble (either format).
    pub fn is_zookeeper(&self) -> bool {
        matches!(self.scheme.as_str(), "zk" | "nerve+zk")
    }

    /// Whether the registry is reached over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme.as_str(), "etcds" | "skydns+etcds")
    }
}

/// The URL as given, minus nothing: credentials never appear in one.
impl std::fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme,
            self.endpoints.join(","),
            self.path
        )
    }
}

/// A value kept out of `Debug` output and so out of logs: a password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How every etcd registry is reached: TLS material and credentials, read
/// and checked at startup so a missing file exits 64 instead of failing at
/// the first connection.
#[derive(Clone, Default)]
pub struct EtcdSettings {
    /// PEM certificate(s) of the CA that signed the servers' certificates.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and its PEM private key.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// User name and password.
    pub credentials: Option<(String, Secret)>,
}

/// Says what is configured, never the key or the password.
impl std::fmt::Debug for EtcdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSettings")
            .field("ca", &self.ca_pem.is_some())
            .field("client_identity", &self.client_identity.is_some())
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// How every ZooKeeper registry is reached: digest credentials, read at
/// startup.
#[derive(Clone, Default)]
pub struct ZkSettings {
    /// User name and password for the `digest` scheme.
    pub credentials: Option<(String, Secret)>,
}

/// Says whether credentials are set, never the password.
impl std::fmt::Debug for ZkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkSettings")
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

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
    /// UDP sockets per listen address.
    pub udp_sockets: usize,
    /// At most this many answer records per UDP response.
    pub udp_answer_limit: Option<usize>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
}

/// The `[serve]` table of the config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    #[serde(default)]
    listen: Vec<String>,
    domain: Option<String>,
    #[serde(default)]
    ns_address: Vec<String>,
    zones_dir: Option<PathBuf>,
    #[serde(default)]
    registry: Vec<String>,
    #[serde(default)]
    upstream: Vec<String>,
    upstream_ca: Option<PathBuf>,
    /// `"1d"`, or plain seconds as a TOML integer.
    serve_stale: Option<toml::Value>,
    #[serde(default)]
    allow_recursion: Vec<String>,
    /// `"5s"`, or plain seconds as a TOML integer.
    ttl: Option<toml::Value>,
    http_listen: Option<String>,
    udp_sockets: Option<usize>,
    udp_answer_limit: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    etcd_ca: Option<PathBuf>,
    etcd_cert: Option<PathBuf>,
    etcd_key: Option<PathBuf>,
    etcd_password_file: Option<PathBuf>,
    zk_password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    serve: FileSettings,
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
    Ok(file.serve)
}

/// Flags win over the file; an empty list means "not given".
fn pick<T>(flag: Vec<T>, file: Vec<T>) -> Vec<T> {
    if flag.is_empty() { file } else { flag }
}

/// `--registry` and `DISCO_REGISTRY` split their values at commas, which also
/// separate the hosts of one URL (`etcd://h1:2379,h2:2379/disco`): a piece
/// without a scheme continues the URL before it.
fn rejoin_registry_urls(pieces: Vec<String>) -> Vec<String> {
    let mut urls: Vec<String> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match urls.last_mut() {
            Some(url) if !piece.contains("://") => {
                url.push(',');
                url.push_str(&piece);
            }
            _ => urls.push(piece),
        }
    }
    urls
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
        let allow_recursion = if acl_values.is_empty() {
            DEFAULT_ALLOW_RECURSION
                .iter()
                .map(|n| n.parse().expect("valid default"))
                .collect()
        } else {
            acl_values
                .iter()
                .map(|v| parse_net(v))
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
        let log_level = args
            .log
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| invalid("log-level", &log_level, e))?;
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
            udp_sockets,
            udp_answer_limit,
            log_format: args.log.log_format.or(file.log_format).unwrap_or_default(),
            log_level,
        })
    }
}

/// A duration from the config file: `"5s"`, or plain seconds.
fn toml_text(value: toml::Value) -> String {
    match value {
        toml::Value::String(text) => text,
        other => other.to_string(),
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

/// Where the etcd user is read from (never a flag: `ps` shows argv).
pub const ETCD_USER_VAR: &str = "DISCO_ETCD_USER";
/// Where the etcd password is read from, unless `--etcd-password-file`.
pub const ETCD_PASSWORD_VAR: &str = "DISCO_ETCD_PASSWORD";

/// Where the ZooKeeper user is read from.
pub const ZK_USER_VAR: &str = "DISCO_ZK_USER";
/// Where the ZooKeeper password is read from, unless `--zk-password-file`.
pub const ZK_PASSWORD_VAR: &str = "DISCO_ZK_PASSWORD";

impl ZkSettings {
    /// Reads the digest credentials for the ZooKeeper registries, the same
    /// for `disco serve` and `disco registrar`: the user and password from
    /// `args`, else from the environment, or the password from
    /// `--zk-password-file`.
    pub fn from_args(args: ZkArgs, registries: &[RegistryUrl]) -> Result<Self, ConfigError> {
        let credentials = credentials(
            Credentials {
                user_var: ZK_USER_VAR,
                password_var: ZK_PASSWORD_VAR,
                password_file_flag: "zk-password-file",
            },
            args.zk_user.or_else(|| env_value(ZK_USER_VAR)),
            args.zk_password
                .or_else(|| env_value(ZK_PASSWORD_VAR).map(Secret::new)),
            args.zk_password_file.as_deref(),
        )?;
        if credentials.is_some() && !registries.iter().any(RegistryUrl::is_zookeeper) {
            return Err(ConfigError::Environment {
                variable: ZK_USER_VAR,
                reason:
                    "ZooKeeper credentials are set but no zk:// or nerve+zk:// registry is configured"
                        .to_owned(),
            });
        }
        Ok(ZkSettings { credentials })
    }
}

fn env_value(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|v| !v.is_empty())
}

/// Reads the files a flag names; the error names the flag and the file.
fn read_flag_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let shown = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| invalid(flag, &shown, format!("cannot read it: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(flag, &shown, "the file is empty"));
    }
    Ok(bytes)
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

fn read_pem(flag: &'static str, path: &Path, kind: Pem) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bytes = read_flag_file(flag, path)?;
    let shown = path.display().to_string();
    match kind {
        Pem::Certificates => {
            let mut count = 0;
            for certificate in CertificateDer::pem_slice_iter(&bytes) {
                certificate
                    .map_err(|e| invalid(flag, &shown, format!("not a PEM certificate: {e}")))?;
                count += 1;
            }
            if count == 0 {
                return Err(invalid(
                    flag,
                    &shown,
                    "expected a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
        Pem::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                invalid(
                    flag,
                    &shown,
                    format!("expected a PEM private key (-----BEGIN PRIVATE KEY-----): {e}"),
                )
            })?;
        }
    }
    Ok(bytes)
}

/// Where one store's credentials are read from.
struct Credentials {
    user_var: &'static str,
    password_var: &'static str,
    password_file_flag: &'static str,
}

/// A user and password from the environment or a password file: both or
/// neither, the password from one place only.
fn credentials(
    from: Credentials,
    user: Option<String>,
    password: Option<Secret>,
    password_file: Option<&Path>,
) -> Result<Option<(String, Secret)>, ConfigError> {
    let password = match (password, password_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Environment {
                variable: from.password_var,
                reason: format!("set it or --{}, not both", from.password_file_flag),
            });
        }
        (Some(password), None) => Some(password),
        (None, Some(path)) => {
            let bytes = read_flag_file(from.password_file_flag, path)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                invalid(
                    from.password_file_flag,
                    &path.display().to_string(),
                    "the password is not UTF-8",
                )
            })?;
            // Editors and `echo` end the file with a newline; it is not part
            // of the password.
            Some(Secret::new(text.trim_end_matches(['\n', '\r'])))
        }
        (None, None) => None,
    };
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some((user, password))),
        (Some(_), None) => Err(ConfigError::Environment {
            variable: from.user_var,
            reason: format!(
                "a user needs a password: set {} or --{}",
                from.password_var, from.password_file_flag
            ),
        }),
        (None, Some(_)) => Err(ConfigError::Environment {
            variable: from.user_var,
            reason: "a password is set but no user; set the user here".to_owned(),
        }),
        (None, None) => Ok(None),
    }
}

impl EtcdSettings {
    /// Reads and checks the TLS files and credentials for the etcd
    /// registries, the same for `disco serve` and `disco registrar`: the
    /// files the flags name, the user and password from `args`, else from
    /// the environment.
    pub fn from_args(args: EtcdArgs, registries: &[RegistryUrl]) -> Result<Self, ConfigError> {
        let any_etcd = registries.iter().any(RegistryUrl::is_etcd);
        let tls_registry = registries.iter().find(|r| r.is_tls());
        let tls_flags = [
            ("etcd-ca", &args.etcd_ca),
            ("etcd-cert", &args.etcd_cert),
            ("etcd-key", &args.etcd_key),
        ];
        if tls_registry.is_none()
            && let Some((flag, Some(path))) = tls_flags.iter().find(|(_, p)| p.is_some())
        {
            return Err(invalid(
                flag,
                &path.display().to_string(),
                "only etcds:// and skydns+etcds:// registries use it, and none is configured \
                 (for TLS, write etcds:// instead of etcd://)",
            ));
        }
        let ca_pem = args
            .etcd_ca
            .as_deref()
            .map(|p| read_pem("etcd-ca", p, Pem::Certificates))
            .transpose()?;
        if let Some(registry) = tls_registry
            && ca_pem.is_none()
        {
            return Err(invalid(
                "registry",
                &registry.to_string(),
                "a TLS registry needs --etcd-ca (the CA that signed the etcd servers' certificates)",
            ));
        }
        let client_identity = match (&args.etcd_cert, &args.etcd_key) {
            (Some(cert), Some(key)) => Some((
                read_pem("etcd-cert", cert, Pem::Certificates)?,
                read_pem("etcd-key", key, Pem::PrivateKey)?,
            )),
            (Some(cert), None) => {
                return Err(invalid(
                    "etcd-cert",
                    &cert.display().to_string(),
                    "needs --etcd-key, the certificate's private key",
                ));
            }
            (None, Some(key)) => {
                return Err(invalid(
                    "etcd-key",
                    &key.display().to_string(),
                    "needs --etcd-cert, the certificate it is the key of",
                ));
            }
            (None, None) => None,
        };
        let credentials = credentials(
            Credentials {
                user_var: ETCD_USER_VAR,
                password_var: ETCD_PASSWORD_VAR,
                password_file_flag: "etcd-password-file",
            },
            args.etcd_user.or_else(|| env_value(ETCD_USER_VAR)),
            args.etcd_password
                .or_else(|| env_value(ETCD_PASSWORD_VAR).map(Secret::new)),
            args.etcd_password_file.as_deref(),
        )?;
        if credentials.is_some() && !any_etcd {
            return Err(ConfigError::Environment {
                variable: ETCD_USER_VAR,
                reason: "etcd credentials are set but no etcd registry is configured".to_owned(),
            });
        }
        Ok(EtcdSettings {
            ca_pem,
            client_identity,
            credentials,
        })
    }
}

fn parse_socket_addr(
    flag: &'static str,
    value: &str,
    default_port: Option<u16>,
) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match (value.parse::<IpAddr>(), default_port) {
        (Ok(ip), Some(port)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(invalid(
            flag,
            value,
            match default_port {
                Some(port) => format!(
                    "expected IP or IP:PORT (port defaults to {port}), e.g. 127.0.0.1:{port} or [::1]:{port}"
                ),
                None => "expected IP:PORT, e.g. 127.0.0.1:5353 or [::1]:5353".to_owned(),
            },
        )),
    }
}

fn parse_net(value: &str) -> Result<IpNet, ConfigError> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            invalid(
                "allow-recursion",
                value,
                "expected a CIDR such as 10.0.0.0/8 or an address",
            )
        })
}

/// Parses a TTL such as `5s`, `1m` or plain seconds `30`.
pub fn parse_ttl(flag: &'static str, value: &str) -> Result<u32, ConfigError> {
    let duration = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(value)
            .map_err(|e| invalid(flag, value, format!("{e}; expected e.g. 5s or 1m")))?,
    };
    if duration.subsec_nanos() != 0 || duration.as_secs() > i32::MAX as u64 {
        return Err(invalid(
            flag,
            value,
            "expected whole seconds, at most 68 years",
        ));
    }
    Ok(duration.as_secs() as u32)
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
    fn registry_urls_parse_and_refuse_credentials() {
        let url = RegistryUrl::parse("etcd://h1:2379,h2:2379/disco").unwrap();
        assert_eq!(url.endpoints, ["h1:2379", "h2:2379"]);
        assert_eq!(url.path, "/disco");
        assert!(RegistryUrl::parse("redis://h1/x").is_err());
        assert_eq!(
            RegistryUrl::parse("etcd://h1,[::1]:2380/d")
                .unwrap()
                .endpoints,
            ["h1:2379", "[::1]:2380"]
        );
        assert_eq!(
            RegistryUrl::parse("zk://zk1/d").unwrap().endpoints,
            ["zk1:2181"]
        );
        for bad in [
            "etcd://127.0.0.1:/d",
            "etcd://h1:0/d",
            "etcd://h1:99999/d",
            "etcd://:2379/d",
            "etcd://::1/d",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad} accepted");
        }
        for bad in [
            "zk:///disco",
            "zk://h1:/disco",
            "zk://h1:2181/a//b",
            "zk://h1:2181/a/../b",
            "nerve+zk://h1:2181/nerve/./services",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            RegistryUrl::parse("nerve+zk://h1:2181,h2/nerve/services/")
                .unwrap()
                .path,
            "/nerve/services"
        );
        let refused = RegistryUrl::parse("zk://digest:s3cret@h1:2181/x")
            .unwrap_err()
            .to_string();
        assert!(!refused.contains("s3cret"), "{refused}");
        let refused = RegistryUrl::parse("etcd://user:s3cret@h1:2379/x")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("credentials"), "{refused}");
        assert!(
            !refused.contains("s3cret"),
            "the password is repeated: {refused}"
        );
    }

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

    #[test]
    fn etcd_credentials_never_show_in_debug_output() {
        let settings = EtcdSettings {
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            client_identity: Some((b"cert".to_vec(), b"very-private-key".to_vec())),
            credentials: Some(("root".to_owned(), Secret::new("hunter2"))),
        };
        let shown = format!("{settings:?}");
        assert!(shown.contains("root"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("very-private-key"),
            "{shown}"
        );
        let args = ServeArgs {
            etcd: EtcdArgs {
                etcd_password: Some(Secret::new("hunter2")),
                ..EtcdArgs::default()
            },
            ..ServeArgs::default()
        };
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn a_password_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let config = ServeConfig::from_args(ServeArgs {
            registry: vec!["etcd://127.0.0.1:2379/disco".into()],
            zones_dir: Some(dir.path().to_owned()),
            etcd: EtcdArgs {
                etcd_user: Some("root".into()),
                etcd_password_file: Some(file),
                ..EtcdArgs::default()
            },
            ..ServeArgs::default()
        })
        .unwrap();
        let (user, password) = config.etcd.credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("root", "s3cret"));
    }

    #[test]
    fn ttls_read_durations_and_seconds() {
        assert_eq!(parse_ttl("ttl", "5s").unwrap(), 5);
        assert_eq!(parse_ttl("ttl", "2m").unwrap(), 120);
        assert_eq!(parse_ttl("ttl", "30").unwrap(), 30);
        assert!(parse_ttl("ttl", "5ms").is_err());
        assert!(
            parse_ttl("ttl", "soon")
                .unwrap_err()
                .to_string()
                .contains("--ttl")
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

    #[test]
    fn registry_values_split_at_commas_are_joined_again() {
        let pieces = "etcd://h1:2379,h2:2379/disco,skydns+etcd://h3/skydns,zk://z1,z2/d"
            .split(',')
            .map(String::from)
            .collect();
        assert_eq!(
            rejoin_registry_urls(pieces),
            [
                "etcd://h1:2379,h2:2379/disco",
                "skydns+etcd://h3/skydns",
                "zk://z1,z2/d"
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
