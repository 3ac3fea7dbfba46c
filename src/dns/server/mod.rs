//! The DNS transports: UDP sockets, one per core on the same port
//! (SO_REUSEPORT lets the kernel spread clients over them), and a TCP
//! listener. Both hand each query to the [`Responder`].
//!
//! `udp` and `tcp` hold each transport's loop, `dispatch` forwarded
//! queries: what both transports share, and UDP's hand-off to the runtime. Nothing a client sends stops a listener: `guard`
//! catches a panic while answering one packet, `supervise` restarts a
//! listener that ends anyway, `listeners` says which are serving, and
//! `faults` holds the fault points only tests can trigger.

mod connections;
mod dispatch;
mod faults;
pub mod framing;
mod guard;
mod listeners;
mod supervise;
mod tcp;
mod udp;

pub use connections::TcpLimits;
pub use faults::Faults;
pub use listeners::{ListenerBoard, ListenerStatus};

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::forward::Forwarder;
use super::responder::{Outcome, Responder, Transport};
use connections::Connections;

/// How long a TCP connection may sit idle between queries (RFC 7766 §6.2.3
/// suggests seconds, not minutes).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How often a UDP thread waiting for a query checks for shutdown.
const UDP_SHUTDOWN_POLL: Duration = Duration::from_millis(100);
/// At most this many forwarded queries are in flight; more get SERVFAIL.
const MAX_FORWARDS: usize = 2048;

/// Sockets bound for one `--listen` address, before any task runs.
#[derive(Debug)]
pub struct Bound {
    udp: Vec<std::net::UdpSocket>,
    tcp: std::net::TcpListener,
}

impl Bound {
    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Binds `udp_sockets` UDP sockets and one TCP listener on `addr`. With port
/// 0 the kernel picks one port, free for both protocols.
pub fn bind(addr: SocketAddr, udp_sockets: usize) -> io::Result<Bound> {
    let mut last_error = None;
    for _ in 0..16 {
        let first = udp_socket(addr)?;
        let port = first.local_addr()?.port();
        let actual = SocketAddr::new(addr.ip(), port);
        let tcp = match tcp_listener(actual) {
            Ok(tcp) => tcp,
            // The port is taken for TCP: with port 0, try another.
            Err(err) if addr.port() == 0 && err.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(err);
                continue;
            }
            Err(err) => return Err(err),
        };
        let mut udp = vec![first];
        for _ in 1..udp_sockets.max(1) {
            udp.push(udp_socket(actual)?);
        }
        return Ok(Bound { udp, tcp });
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free port")))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    // Bursts of queries queue in the kernel rather than being dropped.
    let _ = socket.set_recv_buffer_size(4 << 20);
    // A wildcard socket learns each query's destination, which its answer
    // leaves from; set before binding, so that no query comes without it.
    if addr.ip().is_unspecified() {
        super::udp_batch::receive_destinations(&socket, addr.is_ipv6())?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Serves queries on bound sockets until `shutdown` is cancelled. Every task
/// it starts is tracked by `tracker`, so the caller can wait for in-flight
/// queries to finish.
#[derive(Debug, Clone)]
pub struct DnsServer {
    responder: Arc<Responder>,
    forwarder: Option<Arc<Forwarder>>,
    forwards: Arc<Semaphore>,
    tcp: Arc<Connections>,
    panics: Arc<guard::PanicLog>,
    listeners: Arc<ListenerBoard>,
    faults: Arc<Faults>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl DnsServer {
    /// A server answering with `responder`, forwarding through `forwarder`.
    pub fn new(
        responder: Arc<Responder>,
        forwarder: Option<Arc<Forwarder>>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        DnsServer {
            responder,
            forwarder,
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
            tcp: Arc::new(Connections::new(TcpLimits::default())),
            panics: Arc::new(guard::PanicLog::new()),
            listeners: Arc::new(ListenerBoard::new()),
            faults: Arc::new(Faults::default()),
            shutdown,
            tracker,
        }
    }

    /// Caps TCP connections at `limits` rather than the defaults.
    pub fn with_tcp_limits(mut self, limits: TcpLimits) -> Self {
        self.tcp = Arc::new(Connections::new(limits));
        self
    }

    /// Which of its listeners are serving.
    pub fn listeners(&self) -> Arc<ListenerBoard> {
        self.listeners.clone()
    }

    /// Its fault points (which do something only in test builds).
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    /// Starts the tasks serving `bound`, each supervised: restarted when it
    /// ends.
    pub fn spawn(&self, bound: Bound) -> io::Result<()> {
        let runtime = tokio::runtime::Handle::current();
        let addr = bound.local_addr()?;
        for (n, socket) in bound.udp.into_iter().enumerate() {
            // Blocking reads with a timeout, so the thread sees shutdown.
            socket.set_nonblocking(false)?;
            socket.set_read_timeout(Some(UDP_SHUTDOWN_POLL))?;
            let socket = Arc::new(socket);
            let listener = self.listeners.add(format!("udp {addr} #{n}"));
            let (server, runtime) = (self.clone(), runtime.clone());
            let start = move || {
                let (server, socket, runtime) = (server.clone(), socket.clone(), runtime.clone());
                server
                    .tracker
                    .clone()
                    .spawn_blocking(move || server.serve_udp(socket, runtime))
            };
            let shutdown = self.shutdown.clone();
            self.tracker
                .spawn(supervise::supervise(listener, shutdown, start));
        }
        let tcp = Arc::new(TcpListener::from_std(bound.tcp)?);
        let listener = self.listeners.add(format!("tcp {addr}"));
        let server = self.clone();
        let start = move || {
            let (server, tcp) = (server.clone(), tcp.clone());
            let shutdown = server.shutdown.clone();
            server.tracker.clone().spawn(async move {
                shutdown.run_until_cancelled(server.accept_tcp(tcp)).await;
            })
        };
        self.tracker
            .spawn(supervise::supervise(listener, self.shutdown.clone(), start));
        Ok(())
    }

    /// Answers `packet` with the responder, catching a panic: see `guard`.
    fn respond_guarded(
        &self,
        packet: &[u8],
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.guarded(packet, transport, out, |out| {
            self.responder.respond(packet, client, transport, out)
        })
    }

    /// Runs `answer` for one packet, catching a panic: it is counted and
    /// logged, and the packet answered SERVFAIL ([`Outcome::Reply`] with
    /// `out`) or dropped. See `guard`.
    fn guarded(
        &self,
        packet: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
        answer: impl FnOnce(&mut Vec<u8>) -> Outcome,
    ) -> Outcome {
        let answered = guard::catch_panic(|| {
            self.faults.check_answer(packet);
            answer(out)
        });
        let Err(panic) = answered else {
            return answered.unwrap_or(Outcome::Drop);
        };
        let metrics = self.responder.metrics();
        match self.panics.caught(metrics, transport, packet, &panic, out) {
            true => Outcome::Reply,
            false => Outcome::Drop,
        }
    }
}
