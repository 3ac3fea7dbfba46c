//! Batched UDP I/O: up to [`BATCH`] queries read by one `recvmmsg(2)` and
//! their answers written by one `sendmmsg(2)`. A busy socket then costs two
//! system calls per batch rather than two per query; an idle one still
//! answers each query as it comes (the read returns as soon as one datagram
//! is there).
//!
//! On a wildcard socket (`0.0.0.0`, `::`) each datagram also brings the
//! address it was sent to (`IP_PKTINFO`, `IPV6_RECVPKTINFO`, turned on by
//! [`receive_destinations`]), and its answer leaves from that address: a
//! host with several addresses would otherwise answer from whichever the
//! route prefers, and a client's connected socket (glibc's, dig's) drops an
//! answer from an address it did not ask. Other sockets pay nothing.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    sendmmsg, sendmsg, setsockopt, sockopt,
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
    to: Option<Local>,
    cut: bool,
}

/// The local address a datagram was sent to, which its answer leaves from
/// (on a wildcard socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    V4(Ipv4Addr),
    /// The address, and the interface the datagram came in on (a
    /// link-local address means something only with its interface).
    V6(Ipv6Addr, u32),
}

/// Where a query came from, and the local address it was sent to when the
/// socket is a wildcard one: where and from where its answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address and port.
    pub addr: SocketAddr,
    to: Option<Local>,
}

impl Peer {
    /// A client whose answers leave from whatever address the kernel picks
    /// (sockets bound to one address).
    pub fn new(addr: SocketAddr) -> Self {
        Peer { addr, to: None }
    }

    /// The local address the query was sent to, when the socket told.
    pub fn local_ip(&self) -> Option<IpAddr> {
        self.to.map(|to| match to {
            Local::V4(ip) => IpAddr::V4(ip),
            Local::V6(ip, _) => IpAddr::V6(ip),
        })
    }
}

/// Asks the kernel to tell, with each datagram `socket` receives, the
/// address it was sent to. For wildcard sockets, before they are bound, so
/// that no datagram comes without it.
pub fn receive_destinations(socket: &impl AsFd, ipv6: bool) -> io::Result<()> {
    let set = match ipv6 {
        true => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
        false => setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
    };
    set.map_err(io::Error::from)
}

/// Room for the one control message a datagram brings on a wildcard
/// socket (the IPv6 one, the larger).
fn packet_info_room() -> Vec<u8> {
    nix::cmsg_space!(libc::in6_pktinfo)
}

/// The control message that makes a datagram leave from `local`. For IPv4
/// the interface is left to the routing table (index 0), as Unbound does.
fn packet_info(local: Local) -> PacketInfo {
    match local {
        Local::V4(ip) => PacketInfo::V4(libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        }),
        Local::V6(ip, interface) => PacketInfo::V6(libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: ip.octets(),
            },
            ipi6_ifindex: interface,
        }),
    }
}

/// A packet-info structure, kept alive while a send borrows it.
enum PacketInfo {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

impl PacketInfo {
    fn message(&self) -> ControlMessage<'_> {
        match self {
            PacketInfo::V4(info) => ControlMessage::Ipv4PacketInfo(info),
            PacketInfo::V6(info) => ControlMessage::Ipv6PacketInfo(info),
        }
    }

    /// Room for exactly this message: `sendmmsg` sends every byte of its
    /// headers' control room, so it must hold this message and no more.
    fn room(&self) -> Vec<u8> {
        match self {
            PacketInfo::V4(_) => nix::cmsg_space!(libc::in_pktinfo),
            PacketInfo::V6(_) => nix::cmsg_space!(libc::in6_pktinfo),
        }
    }
}

/// Where a datagram was sent, from its control messages.
fn destination(cmsgs: impl Iterator<Item = ControlMessageOwned>) -> Option<Local> {
    for cmsg in cmsgs {
        match cmsg {
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                let ip = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
                return (!ip.is_unspecified()).then_some(Local::V4(ip));
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                // An answer cannot leave from a multicast address.
                let usable = !ip.is_unspecified() && !ip.is_multicast();
                return usable.then_some(Local::V6(ip, info.ipi6_ifindex));
            }
            _ => {}
        }
    }
    None
}

/// Sends one answer to `peer` from the address its query was sent to: for
/// answers written later, off the batch (forwarded ones).
pub fn send_to_peer(socket: &UdpSocket, bytes: &[u8], peer: &Peer) -> io::Result<usize> {
    let Some(to) = peer.to else {
        return socket.send_to(bytes, peer.addr);
    };
    let info = packet_info(to);
    let address = SockaddrStorage::from(peer.addr);
    sendmsg(
        socket.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &[info.message()],
        MsgFlags::empty(),
        Some(&address),
    )
    .map_err(io::Error::from)
}

/// Buffers for one UDP socket's batches, allocated once per socket thread.
///
/// Not `Send`: the kernel headers hold pointers into the buffers, so a batch
/// lives and dies on the thread that serves its socket.
pub struct UdpBatch {
    queries: [Vec<u8>; BATCH],
    received: Vec<Received>,
    answers: [Vec<u8>; BATCH],
    /// Which answers to send, in order, to whom, and from where.
    outgoing: Vec<usize>,
    destinations: Vec<Option<SockaddrStorage>>,
    sources: Vec<Option<Local>>,
    /// Whether datagrams come with the address they were sent to.
    wildcard: bool,
    receive_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    /// Headers with room for one packet-info message, made on first use.
    send_from_headers: Option<MultiHeaders<SockaddrStorage>>,
}

impl std::fmt::Debug for UdpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpBatch")
            .field("received", &self.received.len())
            .field("outgoing", &self.outgoing.len())
            .finish()
    }
}

impl UdpBatch {
    /// Buffers for `socket`, with room for each datagram's destination
    /// when it is a wildcard socket (see [`receive_destinations`]).
    pub fn for_socket(socket: &UdpSocket) -> Self {
        let wildcard = socket.local_addr().is_ok_and(|a| a.ip().is_unspecified());
        UdpBatch {
            queries: std::array::from_fn(|_| vec![0; QUERY_ROOM]),
            received: Vec::with_capacity(BATCH),
            answers: std::array::from_fn(|_| Vec::with_capacity(1232)),
            outgoing: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            sources: Vec::with_capacity(BATCH),
            wildcard,
            receive_headers: Self::receive_headers(wildcard),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            send_from_headers: None,
        }
    }

    fn receive_headers(wildcard: bool) -> MultiHeaders<SockaddrStorage> {
        MultiHeaders::preallocate(BATCH, wildcard.then(packet_info_room))
    }

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
        let mut lost_room = false;
        for message in messages {
            let to = match self.wildcard {
                true => message.cmsgs().ok().and_then(destination),
                false => None,
            };
            lost_room |= self.wildcard && to.is_none();
            self.received.push(Received {
                len: message.bytes,
                from: message.address,
                to,
                cut: message.flags.contains(MsgFlags::MSG_TRUNC),
            });
        }
        if lost_room {
            // The kernel shrinks a header's control room to what the last
            // datagram in it brought, and nix reuses headers as they are:
            // after a datagram without its destination, that header would
            // take none again. Rare (a datagram queued before the option
            // was set); the headers are made anew.
            self.receive_headers = Self::receive_headers(true);
        }
        Ok(self.received.len())
    }

    /// Calls `answer(query, client, out)` for each datagram read; the ones
    /// for which it returns true have `out` sent back by [`UdpBatch::send`].
    /// Returns how many datagrams were dropped unread because they were too
    /// long to be a query or came from no address.
    pub fn answer_each(
        &mut self,
        mut answer: impl FnMut(&[u8], Peer, &mut Vec<u8>) -> bool,
    ) -> usize {
        self.outgoing.clear();
        self.destinations.clear();
        self.sources.clear();
        let mut dropped = 0;
        for (slot, received) in self.received.iter().enumerate() {
            let client = received.from.as_ref().and_then(socket_addr);
            let (Some(client), false) = (client, received.cut) else {
                dropped += 1;
                continue;
            };
            let query = &self.queries[slot][..received.len];
            let peer = Peer {
                addr: client,
                to: received.to,
            };
            if answer(query, peer, &mut self.answers[slot]) {
                self.outgoing.push(slot);
                self.destinations.push(received.from);
                self.sources.push(received.to);
            }
        }
        dropped
    }

    /// Sends the answers [`UdpBatch::answer_each`] kept. A datagram the
    /// kernel refuses concerns one client: it is logged and skipped, and the
    /// rest of the batch still goes out.
    ///
    /// One `sendmmsg` takes one set of control messages for all its
    /// datagrams, so answers go out in runs that leave from one address:
    /// on a wildcard socket, one run per local address asked in a row.
    pub fn send(&mut self, socket: &UdpSocket) {
        let mut first = 0;
        while first < self.outgoing.len() {
            let from = self.sources[first];
            let run = self.sources[first..]
                .iter()
                .take_while(|&&source| source == from)
                .count();
            let pending = &self.outgoing[first..first + run];
            let mut slices = [[IoSlice::new(&[])]; BATCH];
            for (slice, &slot) in slices.iter_mut().zip(pending) {
                *slice = [IoSlice::new(&self.answers[slot])];
            }
            let info = from.map(packet_info);
            let (headers, control) = match &info {
                None => (&mut self.send_headers, None),
                Some(info) => {
                    let headers = self
                        .send_from_headers
                        .get_or_insert_with(|| MultiHeaders::preallocate(BATCH, Some(info.room())));
                    (headers, Some(info.message()))
                }
            };
            // sendmmsg stops at the first datagram it cannot send, reports
            // the ones before it, and fails only when the first one fails.
            let sent = sendmmsg(
                socket.as_raw_fd(),
                headers,
                slices[..pending.len()].iter(),
                &self.destinations[first..first + run],
                control.as_slice(),
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
        let mut batch = UdpBatch::for_socket(&server);
        for n in 0..BATCH + 8 {
            client.send(format!("query {n}").as_bytes()).unwrap();
        }
        let mut answered = 0;
        while answered < BATCH + 8 {
            let read = batch.receive(&server).unwrap();
            assert!((1..=BATCH).contains(&read));
            batch.answer_each(|query, from, out| {
                assert_eq!(from, Peer::new(client.local_addr().unwrap()));
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
        let mut batch = UdpBatch::for_socket(&server);
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
        let mut batch = UdpBatch::for_socket(&server);
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

    #[test]
    fn on_a_wildcard_socket_answers_leave_from_the_address_asked() {
        // Every 127/8 address is this host's: a client asking 127.0.0.2
        // from 127.0.0.1 would get an answer from 127.0.0.1 (the route's
        // choice), which its connected socket drops.
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        receive_destinations(&socket, false).unwrap();
        socket
            .bind(&"0.0.0.0:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let server: UdpSocket = socket.into();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let port = server.local_addr().unwrap().port();
        let mut batch = UdpBatch::for_socket(&server);
        let mut clients = Vec::new();
        for asked in ["127.0.0.2", "127.0.0.3"] {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            client.connect((asked, port)).unwrap();
            client.send(asked.as_bytes()).unwrap();
            clients.push((asked, client));
        }
        let mut read = 0;
        let mut later = Vec::new();
        while read < clients.len() {
            read += batch.receive(&server).unwrap();
            batch.answer_each(|query, peer, out| {
                let asked: IpAddr = std::str::from_utf8(query).unwrap().parse().unwrap();
                assert_eq!(peer.local_ip(), Some(asked));
                out.clear();
                out.extend_from_slice(b"batch ");
                out.extend_from_slice(query);
                later.push(peer);
                true
            });
            batch.send(&server);
        }
        // And an answer written later, off the batch (a forwarded one).
        for peer in later {
            send_to_peer(&server, b"later", &peer).unwrap();
        }
        let mut reply = [0; 64];
        for (asked, client) in &clients {
            let len = client.recv(&mut reply).unwrap();
            assert_eq!(&reply[..len], format!("batch {asked}").as_bytes());
            let len = client.recv(&mut reply).unwrap();
            assert_eq!(&reply[..len], b"later");
        }
    }
}
