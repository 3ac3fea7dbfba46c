//! The UDP side: one thread per socket answering batches of queries from
//! the snapshot, and handing forwarded ones to the runtime.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::DnsServer;
use super::guard::Guarded;
use crate::dns::forward;
use crate::dns::handler::{Outcome, Transport, servfail};
use crate::dns::udp_batch::{Peer, UdpBatch, send_to_peer};

impl DnsServer {
    /// Answers UDP queries on a thread of its own: a blocking receive of
    /// every query queued (up to a batch), answers from the snapshot, one
    /// send of them all. No task is spawned and no future polled per query;
    /// only forwarded queries go to the runtime. Each query is answered
    /// under `guard`: a panic costs that one answer.
    pub(super) fn serve_udp(self, socket: Arc<UdpSocket>, runtime: Handle) {
        let mut batch = UdpBatch::for_socket(&socket);
        while !self.shutdown.is_cancelled() {
            self.faults.check_listener(Transport::Udp);
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
                let outcome = self.guarded(query, Transport::Udp, out, |out| {
                    self.answer_udp(query, client, out, &socket, &runtime)
                });
                outcome == Outcome::Reply
            });
            for _ in 0..unreadable {
                self.responder.metrics().record_dropped();
            }
            batch.send(&socket);
        }
    }

    /// Answers one query into `out` ([`Outcome::Reply`]: send it), or
    /// hands it to the runtime to answer later ([`Outcome::Drop`] here).
    fn answer_udp(
        &self,
        query: &[u8],
        client: Peer,
        out: &mut Vec<u8>,
        socket: &Arc<UdpSocket>,
        runtime: &Handle,
    ) -> Outcome {
        match self
            .responder
            .respond(query, client.addr.ip(), Transport::Udp, out)
        {
            Outcome::Reply => Outcome::Reply,
            Outcome::Drop => Outcome::Drop,
            Outcome::Complete => {
                self.spawn_complete(query, out.clone(), client, socket.clone(), runtime);
                Outcome::Drop
            }
            Outcome::Forward if self.answer_cached(query, out) => Outcome::Reply,
            Outcome::Forward => {
                self.spawn_forward(query.to_vec(), client, socket.clone(), runtime);
                Outcome::Drop
            }
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
        query: &[u8],
        answer: Vec<u8>,
        peer: Peer,
        socket: Arc<UdpSocket>,
        runtime: &Handle,
    ) {
        let Some(forwarder) = self.forwarder.clone() else {
            let _ = send_to_peer(&socket, &answer, &peer);
            return;
        };
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            let _ = send_to_peer(&socket, &answer, &peer);
            return;
        };
        let limit = forward::wire::ClientQuery::parse(query).map_or(512, |q| q.udp_limit);
        let completion = async move {
            let out = forward::cname::complete(&forwarder, &answer, limit).await;
            drop(permit);
            out
        };
        self.spawn_guarded(query.to_vec(), completion, peer, socket, runtime);
    }

    fn spawn_forward(&self, packet: Vec<u8>, peer: Peer, socket: Arc<UdpSocket>, runtime: &Handle) {
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            let mut out = Vec::new();
            servfail(&packet, &mut out);
            let _ = send_to_peer(&socket, &out, &peer);
            return;
        };
        let (server, query) = (self.clone(), packet.clone());
        let forward = async move {
            let limit = forward::wire::ClientQuery::parse(&packet).map_or(512, |q| q.udp_limit);
            let out = server.forward(&packet, limit).await;
            drop(permit);
            out
        };
        self.spawn_guarded(query, forward, peer, socket, runtime);
    }

    /// Runs `answering` (the answer to `query`, which takes the runtime)
    /// under `guard`, then sends what it gives, or SERVFAIL if it panicked.
    fn spawn_guarded(
        &self,
        query: Vec<u8>,
        answering: impl Future<Output = Vec<u8>> + Send + 'static,
        peer: Peer,
        socket: Arc<UdpSocket>,
        runtime: &Handle,
    ) {
        let server = self.clone();
        self.tracker.spawn_on(
            async move {
                let out = match Guarded::new(answering).await {
                    Ok(out) => out,
                    Err(panic) => {
                        let mut out = Vec::new();
                        let metrics = server.responder.metrics();
                        if !(server.panics).caught(
                            metrics,
                            Transport::Udp,
                            &query,
                            &panic,
                            &mut out,
                        ) {
                            return;
                        }
                        out
                    }
                };
                // A UDP send does not wait for the peer; it is fine here.
                let _ = send_to_peer(&socket, &out, &peer);
            },
            runtime,
        );
    }
}
