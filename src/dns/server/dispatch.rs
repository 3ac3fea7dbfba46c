//! Forwarded queries: the forwarder's answer, or SERVFAIL when there is
//! none, counted either way (both transports), and the UDP side's hand-off:
//! a live cache entry answered on the UDP thread, a miss or a CNAME to
//! complete handed to a task on the runtime that sends its answer itself.
//! The TCP side spawns its forwards in `tcp`, where its writer is.

use std::net::UdpSocket;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::DnsServer;
use super::guard::Guarded;
use crate::dns::forward::{self, Source};
use crate::dns::responder::{Transport, servfail};
use crate::dns::udp_batch::{Peer, send_to_peer};

impl DnsServer {
    pub(super) async fn forward(&self, packet: &[u8], limit: usize) -> Vec<u8> {
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

    /// Answers a forwarded query from a live cache entry, on this thread
    /// and into this batch: no task, no allocation. Whether it did.
    pub(super) fn answer_cached(&self, query: &[u8], out: &mut Vec<u8>) -> bool {
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
    pub(super) fn spawn_complete(
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

    pub(super) fn spawn_forward(
        &self,
        packet: Vec<u8>,
        peer: Peer,
        socket: Arc<UdpSocket>,
        runtime: &Handle,
    ) {
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
