//! The TCP side (RFC 7766): accepting connections and answering the
//! length-prefixed queries on each.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{DnsServer, TCP_IDLE};
use crate::dns::answer::MAX_MESSAGE;
use crate::dns::forward;
use crate::dns::handler::{Outcome, Transport};

impl DnsServer {
    /// Accepts connections and serves each on a task of its own.
    pub(super) async fn accept_tcp(self, tcp: Arc<TcpListener>) {
        self.faults.check_listener(Transport::Tcp);
        loop {
            let permit = match self.tcp_connections.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => return,
            };
            let (stream, peer) = match tcp.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(%err, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            self.faults.check_listener(Transport::Tcp);
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
            let response = match self.respond_guarded(query, peer, Transport::Tcp, &mut out) {
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
