//! The command line: raw flags as clap reads them, each also read from a
//! `DISCO_<FLAG>` environment variable. [`crate::config`] turns them into a
//! validated configuration.

// Clap reads the doc comments below as the `--help` text. Where Markdown
// would garble one (brackets, `<domain>`), an explicit `help` gives the
// terminal its text and the doc comment is written for rustdoc.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secret::Secret;

/// DNS-based service discovery backed by etcd or ZooKeeper.
#[derive(Debug, Parser)]
#[command(name = "disco", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at startup: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve DNS for registered services and static zones.
    Serve(ServeArgs),
    /// Health-check services and publish them to etcd or ZooKeeper while
    /// they pass.
    Registrar(RegistrarArgs),
    /// Wait until names answer in DNS (at least N addresses, or exactly one
    /// primary), for container entrypoints.
    Wait(WaitArgs),
}

/// Flags of `disco serve`. Unset flags fall back to the config file, then to
/// the defaults documented in the README.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to answer DNS on, UDP and TCP (repeatable) [default: 127.0.0.1:5353].
    #[arg(long, env = "DISCO_LISTEN", value_delimiter = ',', value_name = "ADDR")]
    pub listen: Vec<String>,

    /// The zone registered services are served under [default: disco.internal].
    #[arg(long, env = "DISCO_DOMAIN", value_name = "NAME")]
    pub domain: Option<String>,

    /// Address of the synthesised name server `ns.<domain>` (repeatable);
    /// by default the `--listen` addresses.
    #[arg(
        long,
        help = "Address of the synthesised name server ns.<domain> (repeatable) [default: the --listen addresses]",
        env = "DISCO_NS_ADDRESS",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub ns_address: Vec<String>,

    /// Directory of `*.zone` master files served as static records [default: zones].
    #[arg(long, env = "DISCO_ZONES_DIR", value_name = "DIR")]
    pub zones_dir: Option<PathBuf>,

    /// Registry to watch, e.g. etcd://h1:2379,h2:2379/disco (repeatable).
    #[arg(
        long,
        env = "DISCO_REGISTRY",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub registry: Vec<String>,

    /// Upstream resolver for other names (repeatable): `IP[:PORT]`,
    /// `tls://IP[:PORT]#NAME`, `https://IP[:PORT][/PATH]#NAME`, or `off`; by
    /// default /etc/resolv.conf's, minus disco.
    #[arg(
        long,
        help = "Upstream resolver for other names (repeatable): IP[:PORT], tls://IP[:PORT]#NAME, https://IP[:PORT][/PATH]#NAME, or \"off\" [default: /etc/resolv.conf's, minus disco]",
        env = "DISCO_UPSTREAM",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub upstream: Vec<String>,

    /// Extra CA certificates (PEM) for tls:// and https:// upstreams, besides Mozilla's roots.
    #[arg(long, env = "DISCO_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// How long past their TTL forwarded answers may be served while no upstream answers (RFC 8767), 0 for never [default: 1d].
    #[arg(long, env = "DISCO_SERVE_STALE", value_name = "DURATION")]
    pub serve_stale: Option<String>,

    /// Clients allowed to resolve other names through disco (repeatable) [default: loopback and private ranges].
    #[arg(
        long,
        env = "DISCO_ALLOW_RECURSION",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub allow_recursion: Vec<String>,

    /// Answer TTL for registrations that set none, e.g. 5s [default: 5s].
    #[arg(long, env = "DISCO_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,

    /// Address for /health, /ready and /metrics, or "off" [default: 127.0.0.1:9153].
    #[arg(long, env = "DISCO_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,

    /// How often each registry's watch is proved current (etcd progress request, ZooKeeper sync and stat); a proof not answered within it resyncs; 0 for never [default: 10s].
    #[arg(long, env = "DISCO_WATCH_PROOF_INTERVAL", value_name = "DURATION")]
    pub watch_proof_interval: Option<String>,

    /// At most N answer records per UDP response, without TC, for clients that never retry over TCP [default: as many as fit].
    #[arg(long, env = "DISCO_UDP_ANSWER_LIMIT", value_name = "N")]
    pub udp_answer_limit: Option<usize>,

    /// DNS-over-TCP connections open at once; at the cap the idlest is closed [default: 1024].
    #[arg(long, env = "DISCO_TCP_CONNECTIONS", value_name = "N")]
    pub tcp_connections: Option<usize>,

    /// DNS-over-TCP connections open at once from one client address (IPv6: one /64) [default: 64].
    #[arg(long, env = "DISCO_TCP_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub tcp_connections_per_client: Option<usize>,

    /// UDP answers a second to one client network (IPv4 /24, IPv6 /56) for one name and type, past which they are dropped or slipped; 0 for no limit [default: 1000].
    #[arg(long, env = "DISCO_RRL_RESPONSES", value_name = "N")]
    pub rrl_responses: Option<u32>,

    /// UDP NXDOMAIN answers a second to one client network, whatever the name; 0 for no limit [default: 1000].
    #[arg(long, env = "DISCO_RRL_NXDOMAINS", value_name = "N")]
    pub rrl_nxdomains: Option<u32>,

    /// UDP error answers (REFUSED, FORMERR, SERVFAIL...) a second to one client network; 0 for no limit [default: 100].
    #[arg(long, env = "DISCO_RRL_ERRORS", value_name = "N")]
    pub rrl_errors: Option<u32>,

    /// Every Nth answer over a rate limit is sent truncated (TC=1) rather than dropped, 0 to drop all, at most 10 [default: 2].
    #[arg(long, env = "DISCO_RRL_SLIP", value_name = "N")]
    pub rrl_slip: Option<u8>,

    /// Client networks never rate limited (repeatable), or "none" [default: the --allow-recursion networks].
    #[arg(
        long,
        env = "DISCO_RRL_EXEMPT",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub rrl_exempt: Vec<String>,

    /// File holding the DNS cookie secret, 32 hex digits (a second line: the previous secret, still accepted); the same on every replica [default: random at start].
    #[arg(long, env = "DISCO_COOKIE_SECRET_FILE", value_name = "FILE")]
    pub cookie_secret_file: Option<PathBuf>,

    /// UDP sockets per listen address, each served by its own task [default: one per core].
    #[arg(long, env = "DISCO_UDP_SOCKETS", value_name = "N")]
    pub udp_sockets: Option<usize>,

    /// `--log-format`, `--log-level`.
    #[command(flatten)]
    pub log: LogArgs,

    /// `--etcd-ca`, `--etcd-cert`, `--etcd-key`, `--etcd-password-file`.
    #[command(flatten)]
    pub etcd: EtcdArgs,

    /// `--zk-password-file`.
    #[command(flatten)]
    pub zk: ZkArgs,

    /// TOML file with the same settings (under `[serve]`); flags and env win.
    #[arg(
        long,
        env = "DISCO_CONFIG",
        value_name = "FILE",
        help = "TOML file with the same settings (under [serve]); flags and env win"
    )]
    pub config: Option<PathBuf>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The log flags, the same for both subcommands.
#[derive(Debug, Args, Default)]
pub struct LogArgs {
    /// Log format [default: text].
    #[arg(long, env = "DISCO_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. info or disco=debug [default: info].
    #[arg(long, env = "DISCO_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// How etcd registries are reached, the same for both subcommands: TLS
/// files and the password file as flags, the user and password from the
/// environment only.
#[derive(Debug, Args, Default)]
pub struct EtcdArgs {
    /// CA certificate (PEM) that signed the etcd servers' certificates; needed by etcds:// registries.
    #[arg(long, env = "DISCO_ETCD_CA", value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,

    /// Client certificate (PEM) for etcds:// registries that require one; with --etcd-key.
    #[arg(long, env = "DISCO_ETCD_CERT", value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,

    /// Private key (PEM) of --etcd-cert.
    #[arg(long, env = "DISCO_ETCD_KEY", value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,

    /// File holding the etcd password (user from DISCO_ETCD_USER); or set DISCO_ETCD_PASSWORD.
    #[arg(long, env = "DISCO_ETCD_PASSWORD_FILE", value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,

    /// The etcd user. Never a flag (argv is visible to `ps`): read from
    /// DISCO_ETCD_USER when left unset here.
    #[arg(skip)]
    pub etcd_user: Option<String>,

    /// The etcd password. Never a flag: read from DISCO_ETCD_PASSWORD (or
    /// --etcd-password-file) when left unset here.
    #[arg(skip)]
    pub etcd_password: Option<Secret>,
}

/// How ZooKeeper registries are reached, the same for both subcommands:
/// the password file as a flag, the user and password from the environment
/// only.
#[derive(Debug, Args, Default)]
pub struct ZkArgs {
    /// File holding the ZooKeeper digest password (user from DISCO_ZK_USER); or set DISCO_ZK_PASSWORD.
    #[arg(long, env = "DISCO_ZK_PASSWORD_FILE", value_name = "FILE")]
    pub zk_password_file: Option<PathBuf>,

    /// The ZooKeeper user. Never a flag: read from DISCO_ZK_USER when left
    /// unset here.
    #[arg(skip)]
    pub zk_user: Option<String>,

    /// The ZooKeeper password. Never a flag: read from DISCO_ZK_PASSWORD
    /// (or --zk-password-file) when left unset here.
    #[arg(skip)]
    pub zk_password: Option<Secret>,
}

/// Flags of `disco registrar`. Unset flags fall back to the config file's
/// `[registrar]` table, then to the defaults documented in the README.
/// Values are strings here and checked in [`crate::registrar::config`], so
/// that every bad value, from a flag or the file, gets the same message.
#[derive(Debug, Args, Default)]
pub struct RegistrarArgs {
    /// Registry to publish to, e.g. etcd://127.0.0.1:2379/disco or zk://h1:2181/disco (-d in the DockStack form).
    #[arg(long, short = 'd', env = "DISCO_REGISTRY", value_name = "URL")]
    pub registry: Option<String>,

    /// The service's name (one or more DNS labels).
    #[arg(long, env = "DISCO_SERVICE", value_name = "NAME")]
    pub service: Option<String>,

    /// The service's port (1 to 65535).
    #[arg(long, env = "DISCO_PORT", value_name = "N")]
    pub port: Option<String>,

    /// The instance id, a DNS label unique within the service [default: HOSTNAME-PORT].
    #[arg(long, env = "DISCO_INSTANCE", value_name = "ID")]
    pub instance: Option<String>,

    /// The address registered: "auto" (the default route's interface, else the host name's) or an IP [default: auto].
    #[arg(long, env = "DISCO_ADDRESS", value_name = "auto|IP")]
    pub address: Option<String>,

    /// A name for the port (answered as _NAME._tcp.SERVICE SRV).
    #[arg(long, env = "DISCO_PORT_NAME", value_name = "NAME")]
    pub port_name: Option<String>,

    /// A tag, a DNS label other than the instance id (repeatable).
    #[arg(long, env = "DISCO_TAG", value_delimiter = ',', value_name = "T")]
    pub tag: Vec<String>,

    /// Metadata answered as TXT key=value (repeatable).
    #[arg(long, env = "DISCO_META", value_delimiter = ',', value_name = "K=V")]
    pub meta: Vec<String>,

    /// A check: tcp, tcp://HOST:PORT, http://…, https://…, exec:CMD (repeatable; all must pass) [default: tcp].
    #[arg(long, env = "DISCO_CHECK", value_name = "CHECK")]
    pub check: Vec<String>,

    /// Text the body of every http(s) check must contain.
    #[arg(long, env = "DISCO_HTTP_BODY", value_name = "TEXT")]
    pub http_body: Option<String>,

    /// Host header sent by every http(s) check.
    #[arg(long, env = "DISCO_HTTP_HOST", value_name = "NAME")]
    pub http_host: Option<String>,

    /// Time between checks, e.g. 2s or 500ms [default: 2s].
    #[arg(long, env = "DISCO_INTERVAL", value_name = "DURATION")]
    pub interval: Option<String>,

    /// Time a check may take, at most the interval [default: 1s].
    #[arg(long, env = "DISCO_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Consecutive passing checks to become healthy [default: 2].
    #[arg(long, env = "DISCO_RISE", value_name = "N")]
    pub rise: Option<String>,

    /// Consecutive failing checks to become unhealthy [default: 3].
    #[arg(long, env = "DISCO_FALL", value_name = "N")]
    pub fall: Option<String>,

    /// Lease TTL (etcd) or session timeout (ZooKeeper): how long a killed registrar's registration lives [default: 10s].
    #[arg(long, env = "DISCO_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,

    /// What to write: native, skydns (CoreDNS etcd keys) or nerve (Nerve znodes) [default: native].
    #[arg(long, env = "DISCO_FORMAT", value_name = "FORMAT")]
    pub format: Option<String>,

    /// The DNS zone SkyDNS keys spell [default: disco.internal].
    #[arg(long, env = "DISCO_DOMAIN", value_name = "NAME")]
    pub domain: Option<String>,

    /// While this file exists every registration is withdrawn (checks keep running).
    #[arg(long, env = "DISCO_MAINTENANCE_FILE", value_name = "PATH")]
    pub maintenance_file: Option<PathBuf>,

    /// After SIGTERM, time between withdrawing and exiting [default: 0s].
    #[arg(long, env = "DISCO_DRAIN", value_name = "DURATION")]
    pub drain: Option<String>,

    /// Address for /health, /ready and /metrics, or "off" [default: off].
    #[arg(long, env = "DISCO_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,

    /// Campaign for leadership while healthy: the leader is published with TAG, the others with "replica" [default TAG: primary].
    #[arg(
        long,
        env = "DISCO_ELECT",
        value_name = "TAG",
        num_args = 0..=1,
        default_missing_value = "primary"
    )]
    pub elect: Option<String>,

    /// With --elect: file kept holding the role (primary, replica or none), written atomically.
    #[arg(long, env = "DISCO_ROLE_FILE", value_name = "PATH")]
    pub role_file: Option<PathBuf>,

    /// With --elect: command run (sh -c) on every change of role, with DISCO_ROLE, DISCO_SERVICE, DISCO_PRIMARY_ADDRESS.
    #[arg(long, env = "DISCO_ON_ROLE_CHANGE", value_name = "CMD")]
    pub on_role_change: Option<String>,

    /// DockStack service spec name:type:container:port:/path (repeatable; with -d).
    #[arg(
        long = "dockstack",
        short = 's',
        env = "DISCO_DOCKSTACK",
        value_delimiter = ',',
        value_name = "SPEC"
    )]
    pub dockstack: Vec<String>,

    /// Register the Docker engine's containers from their labels (engine at DOCKER_HOST, else /var/run/docker.sock).
    #[arg(long, env = "DISCO_DOCKER")]
    pub docker: bool,

    /// With --docker: also containers without labels, every published port, named after the image (as registrator did).
    #[arg(long, env = "DISCO_ALL")]
    pub all: bool,

    /// With --docker: register the container's own address on its network and its container port, not --address and the published port.
    #[arg(long, env = "DISCO_INTERNAL")]
    pub internal: bool,

    /// With --docker: the network whose address is registered for a container on several.
    #[arg(long, env = "DISCO_NETWORK", value_name = "NAME")]
    pub network: Option<String>,

    /// With --docker: time between full reconciles of the engine's containers with the store [default: 30s].
    #[arg(long, env = "DISCO_RESYNC", value_name = "DURATION")]
    pub resync: Option<String>,

    /// With --docker: register this node's swarm tasks under their service's labels, at the task's address on the service's network.
    #[arg(long, env = "DISCO_SWARM")]
    pub swarm: bool,

    /// `--log-format`, `--log-level`.
    #[command(flatten)]
    pub log: LogArgs,

    /// `--etcd-ca`, `--etcd-cert`, `--etcd-key`, `--etcd-password-file`.
    #[command(flatten)]
    pub etcd: EtcdArgs,

    /// `--zk-password-file`.
    #[command(flatten)]
    pub zk: ZkArgs,

    /// TOML file with the same settings under `[registrar]` and services
    /// under `[[registrar.service]]`; flags and env win.
    #[arg(
        long,
        env = "DISCO_CONFIG",
        value_name = "FILE",
        help = "TOML file with the same settings under [registrar] and services under [[registrar.service]]; flags and env win"
    )]
    pub config: Option<PathBuf>,
}

/// Flags of `disco wait`. Checked in [`crate::config::WaitConfig`].
#[derive(Debug, Args, Default)]
pub struct WaitArgs {
    /// Names to wait for, as the container's resolver completes them (e.g. db, or db.disco.internal.).
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,

    /// Addresses each name must answer with, at least [default: 1].
    #[arg(long, env = "DISCO_WAIT_MIN", value_name = "N")]
    pub min: Option<String>,

    /// Wait until primary.NAME answers exactly one address (the elected leader).
    #[arg(long, env = "DISCO_WAIT_PRIMARY")]
    pub primary: bool,

    /// How long to wait before exiting 1, e.g. 60s or 2m [default: 60s].
    #[arg(long, env = "DISCO_WAIT_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// DNS server to ask (repeatable) [default: the nameservers of /etc/resolv.conf].
    #[arg(
        long,
        env = "DISCO_WAIT_SERVER",
        value_delimiter = ',',
        value_name = "IP[:PORT]"
    )]
    pub server: Vec<String>,
}
