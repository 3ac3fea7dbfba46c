//! A loopback TCP proxy the tests can freeze: while frozen it moves no
//! bytes, so etcd's side of a connection backs up exactly as it would
//! behind a stalled network, without any connection closing.

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
    _tasks: JoinSet<()>,
}

impl Proxy {
    /// Proxies a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(watch::Sender::new(false));
        let mut tasks = JoinSet::new();
        let gate = frozen.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(pump(client_read, server_write, gate.subscribe()));
                connections.spawn(pump(server_read, client_write, gate.subscribe()));
            }
        });
        Proxy {
            addr,
            frozen,
            _tasks: tasks,
        }
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
