//! A loopback TCP proxy the tests can freeze or cut, shared by the store
//! test binaries (each includes this file with `#[path]`). While frozen it
//! moves no bytes, so the store's side of a connection backs up exactly as
//! it would behind a stalled network, without any connection closing. A
//! cut closes every connection at once, as a network blip or a restarted
//! load balancer does; new connections are proxied again.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(watch::Sender::new(false));
        let cuts = Arc::new(watch::Sender::new(0u64));
        let mut tasks = JoinSet::new();
        let (gate, cut) = (frozen.clone(), cuts.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (from, to) in [(client_read, server_write), (server_read, client_write)] {
                    let (frozen, mut cut) = (gate.subscribe(), cut.subscribe());
                    cut.borrow_and_update();
                    connections.spawn(async move {
                        tokio::select! {
                            () = pump(from, to, frozen) => {}
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

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
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
