//! Forwarded queries, for both transports: the forwarder's answer, or
//! SERVFAIL when there is none, counted either way.

use super::DnsServer;
use crate::dns::forward::Source;
use crate::dns::handler::servfail;

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
}
