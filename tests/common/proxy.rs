//! A loopback TCP proxy the tests can freeze or cut, shared by the store
//! test binaries (each includes this file with `#[path]`). While frozen it
//! moves no bytes, so the store's side of a connection backs up exactly as
//! it would behind a stalled network, without any connection closing. A
//! cut closes every connection at once, as a network blip or a restarted
//! load balancer does; new connections are proxied again.

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
    _tasks: JoinSet<()>,
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
        let mut tasks = JoinSet::new();
        let (gate, cut) = (frozen.clone(), cuts.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let (client_read, client_write) = client.into_split();
                let mut both =
                    |one: Box<dyn AsyncRead + Send + Unpin>,
                     other: Box<dyn AsyncWrite + Send + Unpin>| {
                        let (frozen, mut cut) = (gate.subscribe(), cut.subscribe());
                        cut.borrow_and_update();
                        connections.spawn(async move {
                            tokio::select! {
                                () = pump(one, other, frozen) => {}
                                _ = cut.changed() => {}
                            }
                        });
                    };
                match &upstream {
                    Upstream::Tcp(addr) => {
                        let Ok(server) = TcpStream::connect(addr).await else {
                            continue;
                        };
                        let (server_read, server_write) = server.into_split();
                        both(Box::new(client_read), Box::new(server_write));
                        both(Box::new(server_read), Box::new(client_write));
                    }
                    Upstream::Unix(path) => {
                        let Ok(server) = UnixStream::connect(path).await else {
                            continue;
                        };
                        let (server_read, server_write) = server.into_split();
                        both(Box::new(client_read), Box::new(server_write));
                        both(Box::new(server_read), Box::new(client_write));
                    }
                }
            }
        });
        Proxy {
            addr,
            frozen,
            cuts,
            _tasks: tasks,
        }
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

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
