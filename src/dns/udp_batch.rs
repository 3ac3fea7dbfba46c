//! Batched UDP I/O: up to [`BATCH`] queries read by one `recvmmsg(2)` and
//! their answers written by one `sendmmsg(2)`. A busy socket then costs two
//! system calls per batch rather than two per query; an idle one still
//! answers each query as it comes (the read returns as soon as one datagram
//! is there).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};

/// Datagrams read per system call.
pub const BATCH: usize = 32;

/// Bytes kept of each datagram. Queries are tens to a few hundred bytes
/// (RFC 8467 pads them to 128-byte blocks); a longer datagram is no query
/// disco can answer and is dropped.
const QUERY_ROOM: usize = 4096;

/// One datagram read by [`UdpBatch::receive`].
#[derive(Debug, Clone, Copy)]
struct Received {
    len: usize,
    from: Option<SockaddrStorage>,
    cut: bool,
}

/// Buffers for one UDP socket's batches, allocated once per socket thread.
///
/// Not `Send`: the kernel headers hold pointers into the buffers, so a batch
/// lives and dies on the thread that serves its socket.
pub struct UdpBatch {
    queries: [Vec<u8>; BATCH],
    received: Vec<Received>,
    answers: [Vec<u8>; BATCH],
    /// Which answers to send, in order, and to whom.
    outgoing: Vec<usize>,
    destinations: Vec<Option<SockaddrStorage>>,
    receive_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
}

impl std::fmt::Debug for UdpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpBatch")
            .field("received", &self.received.len())
            .field("outgoing", &self.outgoing.len())
            .finish()
    }
}

impl Default for UdpBatch {
    fn default() -> Self {
        UdpBatch {
            queries: std::array::from_fn(|_| vec![0; QUERY_ROOM]),
            received: Vec::with_capacity(BATCH),
            answers: std::array::from_fn(|_| Vec::with_capacity(1232)),
            outgoing: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            receive_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl UdpBatch {
    /// Waits for at least one datagram (or the socket's read timeout), then
    /// takes every datagram already queued, up to [`BATCH`]. Returns how
    /// many were read.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        let mut buffers = self
            .queries
            .each_mut()
            .map(|query| [IoSliceMut::new(query)]);
        // MSG_WAITFORONE: block for the first datagram only.
        let messages = recvmmsg(
            socket.as_raw_fd(),
            &mut self.receive_headers,
            buffers.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        for message in messages {
            self.received.push(Received {
                len: message.bytes,
                from: message.address,
                cut: message.flags.contains(MsgFlags::MSG_TRUNC),
            });
        }
        Ok(self.received.len())
    }

    /// Calls `answer(query, client, out)` for each datagram read; the ones
    /// for which it returns true have `out` sent back by [`UdpBatch::send`].
    /// Returns how many datagrams were dropped unread because they were too
    /// long to be a query or came from no address.
    pub fn answer_each(
        &mut self,
        mut answer: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
    ) -> usize {
        self.outgoing.clear();
        self.destinations.clear();
        let mut dropped = 0;
        for (slot, received) in self.received.iter().enumerate() {
            let client = received.from.as_ref().and_then(socket_addr);
            let (Some(client), false) = (client, received.cut) else {
                dropped += 1;
                continue;
            };
            let query = &self.queries[slot][..received.len];
            if answer(query, client, &mut self.answers[slot]) {
                self.outgoing.push(slot);
                self.destinations.push(received.from);
            }
        }
        dropped
    }

    /// Sends the answers [`UdpBatch::answer_each`] kept. A datagram the
    /// kernel refuses concerns one client: it is logged and skipped, and the
    /// rest of the batch still goes out.
    pub fn send(&mut self, socket: &UdpSocket) {
        let mut first = 0;
        while first < self.outgoing.len() {
            let pending = &self.outgoing[first..];
            let mut slices = [[IoSlice::new(&[])]; BATCH];
            for (slice, &slot) in slices.iter_mut().zip(pending) {
                *slice = [IoSlice::new(&self.answers[slot])];
            }
            let no_control: [ControlMessage<'_>; 0] = [];
            // sendmmsg stops at the first datagram it cannot send, reports
            // the ones before it, and fails only when the first one fails.
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.send_headers,
                slices[..pending.len()].iter(),
                &self.destinations[first..],
                no_control,
                MsgFlags::empty(),
            );
            match sent.map(Iterator::count) {
                Ok(sent) if sent > 0 => first += sent,
                failed => {
                    let client = self.destinations[first].as_ref().and_then(socket_addr);
                    tracing::debug!(error = ?failed.err(), ?client, "udp send failed");
                    first += 1;
                }
            }
        }
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        (server, client)
    }

    #[test]
    fn queued_datagrams_are_read_in_batches_and_each_answered_to_its_sender() {
        let (server, client) = pair();
        let mut batch = UdpBatch::default();
        for n in 0..BATCH + 8 {
            client.send(format!("query {n}").as_bytes()).unwrap();
        }
        let mut answered = 0;
        while answered < BATCH + 8 {
            let read = batch.receive(&server).unwrap();
            assert!((1..=BATCH).contains(&read));
            batch.answer_each(|query, from, out| {
                assert_eq!(from, client.local_addr().unwrap());
                out.clear();
                out.extend_from_slice(b"answer to ");
                out.extend_from_slice(query);
                true
            });
            batch.send(&server);
            answered += read;
        }
        let mut reply = [0; 64];
        for n in 0..BATCH + 8 {
            let len = client.recv(&mut reply).unwrap();
            assert_eq!(&reply[..len], format!("answer to query {n}").as_bytes());
        }
    }

    #[test]
    fn a_datagram_too_long_to_be_a_query_is_dropped_and_counted() {
        let (server, client) = pair();
        let mut batch = UdpBatch::default();
        client.send(&vec![0; QUERY_ROOM + 1]).unwrap();
        client.send(b"short").unwrap();
        let mut seen = Vec::new();
        let mut dropped = 0;
        while seen.len() + dropped < 2 {
            batch.receive(&server).unwrap();
            dropped += batch.answer_each(|query, _, _| {
                seen.push(query.to_vec());
                false
            });
        }
        assert_eq!((dropped, seen), (1, vec![b"short".to_vec()]));
    }

    #[test]
    fn only_answers_kept_are_sent() {
        let (server, client) = pair();
        let mut batch = UdpBatch::default();
        client.send(b"drop me").unwrap();
        client.send(b"answer me").unwrap();
        let mut read = 0;
        while read < 2 {
            read += batch.receive(&server).unwrap();
            batch.answer_each(|query, _, out| {
                out.clear();
                out.extend_from_slice(query);
                query == b"answer me"
            });
            batch.send(&server);
        }
        let mut reply = [0; 64];
        let len = client.recv(&mut reply).unwrap();
        assert_eq!(&reply[..len], b"answer me");
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(
            client.recv(&mut reply).is_err(),
            "a dropped query was answered"
        );
    }
}
