//! The UDP side: one thread per socket answering batches of queries from
//! the snapshot, and handing forwarded ones to the runtime (`dispatch`).

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::DnsServer;
use crate::dns::responder::{Outcome, Transport};
use crate::dns::udp_batch::{Peer, UdpBatch};

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
}
