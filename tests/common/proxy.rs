//! A loopback TCP proxy the tests can freeze or cut, shared by the store
//! test binaries (each includes this file with `#[path]`). While frozen it
//! moves no bytes, so the store's side of a connection backs up exactly as
//! it would behind a stalled network, without any connection closing. A
//! cut closes every connection at once, as a network blip or a restarted
//! load balancer does; new connections are proxied again. Swallowing
//! makes the connections open so far drop what the store sends (all of
//! it, or only ZooKeeper's watch notifications) while staying open and
//! passing what the client sends: a watch that stops delivering without
//! any connection closing. It proxies to a TCP address or to a Unix socket
//! (the Docker engine's API).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    frozen: Arc<watch::Sender<bool>>,
    /// Bumped by [`Proxy::cut`]: connections made before it close.
    cuts: Arc<watch::Sender<u64>>,
    /// What the connections numbered below `.0` drop of what the store sends.
    swallow: Arc<watch::Sender<(u64, Swallow)>>,
    /// Connections accepted so far.
    accepted: Arc<std::sync::atomic::AtomicU64>,
    _tasks: JoinSet<()>,
}

/// What a swallowing connection drops of what the store sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swallow {
    /// Nothing.
    Nothing,
    /// Every byte.
    Everything,
    /// ZooKeeper frames whose reply header has xid -1 (watch
    /// notifications); replies and pings still pass.
    ZkNotifications,
}

impl Proxy {
    /// Proxies a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        Proxy::start_to(Upstream::Tcp(upstream)).await
    }

    /// Proxies a fresh loopback port to the Unix socket at `path` (the
    /// Docker engine's API, reached by `DOCKER_HOST=tcp://ADDR`).
    pub async fn start_unix(path: PathBuf) -> Proxy {
        Proxy::start_to(Upstream::Unix(path)).await
    }

    async fn start_to(upstream: Upstream) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(watch::Sender::new(false));
        let cuts = Arc::new(watch::Sender::new(0u64));
        let swallow = Arc::new(watch::Sender::new((0u64, Swallow::Nothing)));
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let (gate, cut, filter, count) = (
            frozen.clone(),
            cuts.clone(),
            swallow.clone(),
            accepted.clone(),
        );
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Some((server_read, server_write)) = upstream.connect().await else {
                    continue;
                };
                let number = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (client_read, client_write): (ReadHalf, WriteHalf) =
                    (Box::new(client_read), Box::new(client_write));
                for (from, to, from_store) in [
                    (client_read, server_write, false),
                    (server_read, client_write, true),
                ] {
                    let (frozen, mut cut) = (gate.subscribe(), cut.subscribe());
                    let filter = filter.subscribe();
                    cut.borrow_and_update();
                    connections.spawn(async move {
                        let filter = from_store.then_some((number, filter));
                        tokio::select! {
                            () = pump(from, to, frozen, filter) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        Proxy {
            addr,
            frozen,
            cuts,
            swallow,
            accepted,
            _tasks: tasks,
        }
    }

    /// Makes every connection made so far drop `what` the store sends
    /// from now on, while staying open; later connections pass all.
    pub fn swallow(&self, what: Swallow) {
        let upto = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
        self.swallow.send_replace((upto, what));
    }

    /// Closes every connection made so far, both ways.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Stops moving bytes, both ways, on every connection.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Moves bytes again.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

/// Where a proxy's connections go.
enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

impl Upstream {
    /// A new connection's two halves, or `None` if it cannot be made.
    async fn connect(&self) -> Option<(ReadHalf, WriteHalf)> {
        match self {
            Upstream::Tcp(addr) => {
                let (read, write) = TcpStream::connect(addr).await.ok()?.into_split();
                Some((Box::new(read), Box::new(write)))
            }
            Upstream::Unix(path) => {
                let (read, write) = UnixStream::connect(path).await.ok()?.into_split();
                Some((Box::new(read), Box::new(write)))
            }
        }
    }
}

/// Copies `from` to `to`; `filter` (the store's side only: this
/// connection's number and the swallow setting) drops what it says.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
    filter: Option<(u64, watch::Receiver<(u64, Swallow)>)>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut frames = ZkFrames::default();
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mode = match &filter {
            Some((number, setting)) => {
                let (upto, mode) = *setting.borrow();
                if *number < upto {
                    mode
                } else {
                    Swallow::Nothing
                }
            }
            None => Swallow::Nothing,
        };
        // Frames are followed from the first byte, whatever the mode, so
        // that notifications can be told apart once asked for.
        let kept = frames.push(&buf[..n], mode == Swallow::ZkNotifications);
        let out: &[u8] = match mode {
            Swallow::Nothing => &buf[..n],
            Swallow::Everything => &[],
            Swallow::ZkNotifications => &kept,
        };
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(out).await.is_err() {
            return;
        }
    }
}

/// ZooKeeper's server-to-client framing: a 4-byte length, then the frame.
/// The first frame answers the connect request; every later one starts
/// with a reply header whose xid is -1 for a watch notification.
#[derive(Default)]
struct ZkFrames {
    pending: Vec<u8>,
    frames_seen: u64,
}

impl ZkFrames {
    /// Takes bytes from the server; returns the whole frames among what is
    /// buffered, without notifications when `drop_notifications`.
    fn push(&mut self, bytes: &[u8], drop_notifications: bool) -> Vec<u8> {
        if self.pending.len() > 4 << 20 {
            // Not ZooKeeper (an etcd connection's HTTP/2): stop following.
            self.pending = Vec::new();
            self.frames_seen = u64::MAX;
            return bytes.to_vec();
        }
        if self.frames_seen == u64::MAX {
            return bytes.to_vec();
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.pending.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes(self.pending[..4].try_into().unwrap()) as usize;
            if self.pending.len() < 4 + len {
                break;
            }
            let frame: Vec<u8> = self.pending.drain(..4 + len).collect();
            let notification = self.frames_seen > 0
                && len >= 4
                && i32::from_be_bytes(frame[4..8].try_into().unwrap()) == -1;
            self.frames_seen = self.frames_seen.saturating_add(1).min(u64::MAX - 1);
            if !(drop_notifications && notification) {
                out.extend_from_slice(&frame);
            }
        }
        out
    }
}
