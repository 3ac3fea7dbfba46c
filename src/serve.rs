//! `disco serve`: wires the configuration, the backends, the snapshot writer, the
//! DNS server and the HTTP endpoints together, and stops them in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::config::{ConfigError, ServeConfig};
use crate::dns::cookie::CookieSecret;
use crate::dns::forward::{CacheLimits, ForwardSettings, Forwarder};
use crate::dns::server::{self, DnsServer, Faults, ListenerBoard};
use crate::dns::{RecursionAcl, Responder, SnapshotBuilder};
use crate::http::{self, Endpoints};
use crate::metrics::Metrics;
use crate::registry::{Backend, Registry, Sink, StatusBoard};

/// How long one upstream gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration (exit 64).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket could not be bound (exit 1).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The DNS addresses actually bound, in `--listen` order.
    pub dns_addrs: Vec<SocketAddr>,
    /// The HTTP address actually bound.
    pub http_addr: Option<SocketAddr>,
    /// Query and snapshot metrics.
    pub metrics: Arc<Metrics>,
    /// Registry source states.
    pub status: Arc<StatusBoard>,
    /// Which DNS listeners are serving.
    pub listeners: Arc<ListenerBoard>,
    /// The DNS server's fault points, which do something only in test
    /// builds (the `failpoints` feature).
    pub faults: Arc<Faults>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    /// Stops accepting queries, lets in-flight ones finish for at most
    /// `grace`, and returns whether everything finished in time.
    pub async fn stop(self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// A server dropped without [`Running::stop`] still stops: its UDP threads
/// would otherwise keep the runtime from shutting down.
impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The backends for the configured registry URLs, one per URL, in flag
/// order (which decides who wins when two hold the same instance).
fn backends_for(config: &ServeConfig) -> Result<Vec<Arc<dyn Backend>>, ConfigError> {
    config
        .registries
        .iter()
        .map(|url| {
            crate::store::for_url(url, &config.etcd, &config.zk, config.watch_proof_interval)
        })
        .collect()
}

/// Starts serving. `extra` backends (in-process ones, for tests and
/// embedding) are watched after the configured registries. Every socket is
/// bound before any task starts.
pub async fn start(
    config: ServeConfig,
    extra: Vec<Arc<dyn Backend>>,
) -> Result<Running, ServeError> {
    let mut backends = backends_for(&config)?;
    backends.extend(extra);

    let mut bound = Vec::new();
    for &addr in &config.listen {
        let sockets = server::bind(addr, config.udp_sockets)
            .map_err(|source| ServeError::Bind { addr, source })?;
        bound.push(sockets);
    }
    let http_listener = match config.http_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };
    let dns_addrs = bound
        .iter()
        .map(|b| b.local_addr())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::Bind {
            addr: config.listen[0],
            source,
        })?;
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());

    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(StatusBoard::new(
        backends.iter().map(|b| b.name()).collect(),
    ));
    let builder = SnapshotBuilder::new(
        &config.domain,
        config.zones,
        config.ttl,
        &config.ns_addresses,
    );
    for (zone, name_server) in builder.name_servers_without_address() {
        tracing::warn!(
            %zone,
            %name_server,
            "the zone's name server has no A or AAAA record: a resolver delegating to the zone \
             cannot reach it (add its address to the zone file, or for the synthesised NS, \
             pass --ns-address when disco listens on a wildcard address)"
        );
    }
    let live = Arc::new(ArcSwap::from_pointee(builder.snapshot()));
    metrics.record_snapshot(0);
    let catalog = Arc::new(Catalog::new(
        backends.iter().map(|b| b.name()).collect(),
        &config.domain,
        config.change_history,
    ));

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();

    // Backends and the snapshot writer stop when `shutdown` fires.
    let (events, receiver) = mpsc::unbounded_channel();
    for (source, backend) in backends.iter().enumerate() {
        let sink = Sink::new(source, events.clone());
        tracker.spawn(backend.clone().run(sink, shutdown.clone()));
    }
    drop(events);
    let registry = Registry::new(backends.len());
    let snapshot_writer = crate::snapshot_writer::run(
        receiver,
        builder,
        registry,
        live.clone(),
        status.clone(),
        metrics.clone(),
        catalog.clone(),
    );
    tracker.spawn(shutdown.clone().run_until_cancelled_owned(snapshot_writer));

    let settings = ForwardSettings {
        timeout: UPSTREAM_TIMEOUT,
        limits: CacheLimits {
            stale_window: config.serve_stale,
            ..CacheLimits::default()
        },
        extra_roots: config.upstream_ca.clone(),
    };
    let forwarder = (!config.upstreams.is_empty())
        .then(|| Arc::new(Forwarder::new(config.upstreams.clone(), settings)));
    let cookie_secret = config
        .cookie_secret
        .clone()
        .unwrap_or_else(CookieSecret::random);
    let responder = Arc::new(
        Responder::new(
            live,
            RecursionAcl::new(config.allow_recursion.clone()),
            forwarder.is_some(),
            metrics.clone(),
        )
        .with_udp_answer_limit(config.udp_answer_limit)
        .with_rate_limit(&config.rrl)
        .with_cookie_secret(cookie_secret),
    );
    let dns = DnsServer::new(responder, forwarder, shutdown.clone(), tracker.clone())
        .with_tcp_limits(config.tcp_limits);
    for (sockets, &addr) in bound.into_iter().zip(&config.listen) {
        dns.spawn(sockets)
            .map_err(|source| ServeError::Bind { addr, source })?;
    }
    if let Some(listener) = http_listener {
        let endpoints = Endpoints {
            metrics: metrics.clone(),
            status: status.clone(),
            listeners: dns.listeners(),
            catalog,
            domain: config.domain.clone(),
            dns: dns_addrs.first().copied(),
        };
        tracker.spawn(http::serve(
            listener,
            endpoints,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    tracing::info!(
        dns = ?dns_addrs,
        http = ?http_addr,
        domain = %config.domain,
        upstreams = ?config.upstreams.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "disco serving"
    );
    Ok(Running {
        dns_addrs,
        http_addr,
        metrics,
        status,
        listeners: dns.listeners(),
        faults: dns.faults(),
        shutdown,
        tracker,
    })
}
