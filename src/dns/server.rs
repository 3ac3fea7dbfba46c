//! The DNS transports: UDP sockets, one per core on the same port
//! (SO_REUSEPORT lets the kernel spread clients over them), and a TCP
//! listener. Both hand each query to the [`Responder`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use std::net::UdpSocket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::MAX_MESSAGE;
use super::forward::{self, Forwarder, Source};
use super::handler::{Outcome, Responder, Transport, servfail};
use super::udp_batch::UdpBatch;

/// How long a TCP connection may sit idle between queries (RFC 7766 §6.2.3
/// suggests seconds, not minutes).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// At most this many TCP connections are served at once; more wait.
const MAX_TCP_CONNECTIONS: usize = 1024;
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
    tcp_connections: Arc<Semaphore>,
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
            tcp_connections: Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS)),
            shutdown,
            tracker,
        }
    }

    /// Starts the tasks serving `bound`.
    pub fn spawn(&self, bound: Bound) -> io::Result<()> {
        let runtime = tokio::runtime::Handle::current();
        for socket in bound.udp {
            // Blocking reads with a timeout, so the thread sees shutdown.
            socket.set_nonblocking(false)?;
            socket.set_read_timeout(Some(UDP_SHUTDOWN_POLL))?;
            let server = self.clone();
            let runtime = runtime.clone();
            self.tracker
                .spawn_blocking(move || server.serve_udp(Arc::new(socket), runtime));
        }
        let listener = TcpListener::from_std(bound.tcp)?;
        let server = self.clone();
        self.tracker.spawn(async move {
            let shutdown = server.shutdown.clone();
            shutdown
                .run_until_cancelled(server.accept_tcp(listener))
                .await;
        });
        Ok(())
    }

    /// Answers UDP queries on a thread of its own: a blocking receive of
    /// every query queued (up to a batch), answers from the snapshot, one
    /// send of them all. No task is spawned and no future polled per query;
    /// only forwarded queries go to the runtime.
    fn serve_udp(self, socket: Arc<UdpSocket>, runtime: Handle) {
        let mut batch = UdpBatch::default();
        while !self.shutdown.is_cancelled() {
            match batch.receive(&socket) {
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(err) => {
                    // ICMP errors surface here on Linux; they concern one
                    // client, not the socket.
                    tracing::debug!(%err, "udp receive failed");
                    continue;
                }
            };
            let unreadable = batch.answer_each(|query, client, out| {
                match self
                    .responder
                    .respond(query, client.ip(), Transport::Udp, out)
                {
                    Outcome::Reply => true,
                    Outcome::Drop => false,
                    Outcome::Complete => {
                        let limit =
                            forward::wire::ClientQuery::parse(query).map_or(512, |q| q.udp_limit);
                        self.spawn_complete(out.clone(), limit, client, socket.clone(), &runtime);
                        false
                    }
                    Outcome::Forward if self.answer_cached(query, out) => true,
                    Outcome::Forward => {
                        self.spawn_forward(query.to_vec(), client, socket.clone(), &runtime);
                        false
                    }
                }
            });
            for _ in 0..unreadable {
                self.responder.metrics().record_dropped();
            }
            batch.send(&socket);
        }
    }

    /// Answers a forwarded query from a live cache entry, on this thread
    /// and into this batch: no task, no allocation. Whether it did.
    fn answer_cached(&self, query: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(forwarder) = &self.forwarder else {
            return false;
        };
        match forwarder.answer_from_cache(query, out) {
            Some(rcode) => {
                self.responder.metrics().record_forwarded(true, rcode);
                true
            }
            None => false,
        }
    }

    /// Completes a CNAME answer through the forwarder on the runtime, then
    /// sends it (see [`forward::cname`]).
    fn spawn_complete(
        &self,
        answer: Vec<u8>,
        limit: usize,
        peer: SocketAddr,
        socket: Arc<UdpSocket>,
        runtime: &Handle,
    ) {
        let Some(forwarder) = self.forwarder.clone() else {
            let _ = socket.send_to(&answer, peer);
            return;
        };
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            let _ = socket.send_to(&answer, peer);
            return;
        };
        self.tracker.spawn_on(
            async move {
                let out = forward::cname::complete(&forwarder, &answer, limit).await;
                drop(permit);
                let _ = socket.send_to(&out, peer);
            },
            runtime,
        );
    }

    fn spawn_forward(
        &self,
        packet: Vec<u8>,
        peer: SocketAddr,
        socket: Arc<UdpSocket>,
        runtime: &Handle,
    ) {
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            let mut out = Vec::new();
            servfail(&packet, &mut out);
            let _ = socket.send_to(&out, peer);
            return;
        };
        let server = self.clone();
        self.tracker.spawn_on(
            async move {
                let limit = forward::wire::ClientQuery::parse(&packet).map_or(512, |q| q.udp_limit);
                let out = server.forward(&packet, limit).await;
                drop(permit);
                // A UDP send does not wait for the peer; it is fine here.
                let _ = socket.send_to(&out, peer);
            },
            runtime,
        );
    }

    async fn forward(&self, packet: &[u8], limit: usize) -> Vec<u8> {
        let forwarded = match &self.forwarder {
            Some(forwarder) => forwarder.forward(packet, limit).await,
            None => None,
        };
        let metrics = self.responder.metrics();
        match forwarded {
            Some(forwarded) => {
                if forwarded.source == Source::Stale {
                    metrics.record_forward_stale();
                }
                metrics.record_forwarded(
                    forwarded.cached(),
                    forwarded.bytes.get(3).map_or(2, |b| b & 0x0f),
                );
                forwarded.bytes
            }
            None => {
                let mut out = Vec::new();
                servfail(packet, &mut out);
                metrics.record_forwarded(false, 2);
                out
            }
        }
    }

    async fn accept_tcp(self, listener: TcpListener) {
        loop {
            let permit = match self.tcp_connections.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => return,
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(%err, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let server = self.clone();
            self.tracker.spawn(async move {
                let _ = server.serve_tcp(stream, peer.ip()).await;
                drop(permit);
            });
        }
    }

    /// Answers length-prefixed queries on one connection until the client
    /// closes it, it idles, or the server shuts down (after the query in
    /// hand is answered).
    async fn serve_tcp(&self, mut stream: TcpStream, peer: IpAddr) -> io::Result<()> {
        let _ = stream.set_nodelay(true);
        let mut packet = vec![0u8; MAX_MESSAGE];
        let mut out = Vec::with_capacity(4096);
        loop {
            let mut prefix = [0u8; 2];
            let read = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                read = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut prefix)) => read,
            };
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Ok(()),
            }
            let len = u16::from_be_bytes(prefix) as usize;
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet[..len]))
                .await
                .map_err(io::Error::other)??;
            let query = &packet[..len];
            let response = match self
                .responder
                .respond(query, peer, Transport::Tcp, &mut out)
            {
                Outcome::Reply => &out[..],
                Outcome::Drop => return Ok(()),
                Outcome::Forward => {
                    out = self.forward(query, MAX_MESSAGE).await;
                    &out[..]
                }
                Outcome::Complete => match &self.forwarder {
                    Some(forwarder) => {
                        out = forward::cname::complete(forwarder, &out, MAX_MESSAGE).await;
                        &out[..]
                    }
                    None => &out[..],
                },
            };
            let mut framed = Vec::with_capacity(2 + response.len());
            framed.extend_from_slice(&(response.len() as u16).to_be_bytes());
            framed.extend_from_slice(response);
            stream.write_all(&framed).await?;
        }
    }
}
