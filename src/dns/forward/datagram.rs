//! Plain upstreams (`IP[:PORT]`) over UDP, asked directly: the common case
//! of a cold miss, without hickory's pool in the way.
//!
//! The pool binds a fresh socket for every query and decodes every answer
//! into a `Message`; `bench/forward.sh` put that at 0.69× unbound's rate
//! of cold misses. Here a query borrows a connected socket from a small
//! set kept per upstream, sends the question as the client asked it
//! (lowercased, RD, its CD and DO bits), and reads the datagram whose ID
//! and question match; the bytes go to [`Prepared`](super::wire::Prepared)
//! as they are. As CoreDNS's `forward` does, a socket is reused for at most
//! [`SOCKET_LIFETIME`] and then closed, so source ports keep changing; with
//! a random ID per query and the question checked, a spoofed answer must
//! guess the port among those open, the ID and the question.
//!
//! At most [`WINDOW`] queries are in flight to one upstream; more wait in
//! disco for their turn rather than overflowing the upstream's socket.
//!
//! A truncated answer is asked again over TCP at once (a pool of the plain
//! upstreams over TCP only). Whatever else this path cannot settle goes to
//! the pool, which keeps every other duty (SERVFAIL or REFUSED from one
//! upstream, DoT, DoH, failover): an error rcode, a timeout or an ICMP
//! error. How long to wait follows the upstream's smoothed round trip
//! (as unbound's retry timer does: four times it, at least [`MIN_WAIT`]),
//! so a lost datagram costs a short wait, not the whole timeout. An
//! upstream that refuses, sends an ICMP error, has never answered, or
//! stays silent through [`MAX_MISSES`] waits in a row is left to the pool
//! for [`DOWN_FOR`], so only the first queries after it fails pay the wait;
//! a SERVFAIL is one name's trouble and leaves it up. A wait during which
//! the upstream answered other queries is a lost datagram, not a silent
//! upstream: under load a busy upstream's receive queue drops a few
//! queries now and then (`bench/forward.sh` saw 150 of 170,000 dropped by
//! Knot's socket), and counting those as misses left a live upstream to
//! the slower pool for seconds at a time.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::wire::{ClientQuery, HEADER_LEN, same_question};
use crate::dns::packet::EDNS_UDP_PAYLOAD;

/// How long one socket is reused before it is closed (CoreDNS's `forward`
/// expires its connections after 10 s).
pub const SOCKET_LIFETIME: Duration = Duration::from_secs(10);
/// How long an upstream that timed out or refused is left to the pool.
pub const DOWN_FOR: Duration = Duration::from_secs(5);
/// The shortest wait for an answer before the pool asks instead.
pub const MIN_WAIT: Duration = Duration::from_millis(100);
/// Waits in a row during which an upstream answered nothing at all, before
/// it is left to the pool.
pub const MAX_MISSES: u32 = 3;
/// Queries in flight to one upstream at most; more wait their turn in
/// disco, in order. 500 at once from `bench/forward.sh` overflowed Knot's
/// socket (4% of queries dropped, each waiting out [`MIN_WAIT`]: p99
/// 116 ms); 256 dropped none (p99 26 ms) at the same rate. A queue in
/// disco loses nothing; one in the upstream's socket loses the overflow.
/// It bounds a remote upstream at 256 per round trip (5,000 misses/s at
/// 50 ms), and disco's sockets per upstream at as many.
pub const WINDOW: usize = 256;
/// Idle sockets kept per upstream: one per query of the window.
const MAX_IDLE: usize = WINDOW;
/// The largest datagram read; an answer longer than the 1232 bytes asked
/// for is not one disco asked for.
const RECEIVE_BUFFER: usize = 4096;

const FLAG_QR: u8 = 0x80;
const FLAG_TC: u8 = 0x02;
const FLAG_RD: u8 = 0x01;
const FLAG_CD: u8 = 0x10;
const RCODE_NOERROR: u8 = 0;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_REFUSED: u8 = 5;

/// What the direct path got.
#[derive(Debug, PartialEq, Eq)]
pub enum Direct {
    /// A usable answer: its bytes.
    Answer(Vec<u8>),
    /// A truncated answer: the question goes over TCP.
    Truncated,
    /// Nothing usable: the pool asks.
    Failed,
}

/// The plain upstreams, in the order given, each with its idle sockets.
#[derive(Debug)]
pub struct Datagram {
    targets: Vec<Target>,
    epoch: Instant,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    idle: Mutex<VecDeque<Idle>>,
    /// Milliseconds since `epoch` until which it is left to the pool.
    down_until: AtomicU64,
    /// Smoothed round trip, microseconds (0 until the first answer).
    srtt_us: AtomicU64,
    /// Microseconds since `epoch` of the last answer (0: none yet).
    heard_at: AtomicU64,
    /// Room for [`WINDOW`] queries in flight.
    window: Semaphore,
    /// Silent waits in a row.
    misses: std::sync::atomic::AtomicU32,
}

#[derive(Debug)]
struct Idle {
    socket: UdpSocket,
    born: Instant,
}

impl Datagram {
    /// The direct path to the plain upstreams at `addrs`, in that order,
    /// or None when there is none (DoT and DoH only go through the pool).
    pub fn new(addrs: impl IntoIterator<Item = SocketAddr>) -> Option<Self> {
        let targets: Vec<Target> = addrs
            .into_iter()
            .map(|addr| Target {
                addr,
                idle: Mutex::new(VecDeque::new()),
                down_until: AtomicU64::new(0),
                srtt_us: AtomicU64::new(0),
                heard_at: AtomicU64::new(0),
                window: Semaphore::new(WINDOW),
                misses: std::sync::atomic::AtomicU32::new(0),
            })
            .collect();
        (!targets.is_empty()).then(|| Datagram {
            targets,
            epoch: Instant::now(),
        })
    }

    /// Asks `client`'s question of the first upstream not left to the pool
    /// and waits for it, at most `max_wait`: a usable answer (NOERROR or
    /// NXDOMAIN, not truncated, ID and question matching), a truncated one
    /// (ask over TCP), or nothing (the pool must ask).
    pub async fn ask(&self, client: &ClientQuery<'_>, max_wait: Duration) -> Direct {
        let now = self.millis();
        let Some(target) = self
            .targets
            .iter()
            .find(|target| target.down_until.load(Ordering::Relaxed) <= now)
        else {
            return Direct::Failed;
        };
        // Closed only when the Datagram is dropped, which nothing awaits.
        let Ok(_sending) = target.window.acquire().await else {
            return Direct::Failed;
        };
        // Left to the pool while this query waited its turn: the queries
        // ahead of it found the upstream silent.
        if target.down_until.load(Ordering::Relaxed) > self.millis() {
            return Direct::Failed;
        }
        let idle = match target.take() {
            Some(idle) => idle,
            None => match connect(target.addr) {
                Ok(socket) => Idle {
                    socket,
                    born: Instant::now(),
                },
                Err(error) => {
                    tracing::debug!(%error, "forward: no UDP socket");
                    return Direct::Failed;
                }
            },
        };
        let id: u16 = rand::random();
        let question = client.lowercase_question();
        let query = query(id, question, client.dnssec_ok, client.checking_disabled);
        let sent = Instant::now();
        let sent_at = self.micros();
        let wait = target.wait(max_wait);
        match self
            .exchange(&idle.socket, id, question, &query, wait)
            .await
        {
            Ok(response) => {
                target.answered(sent.elapsed(), self.micros());
                target.give_back(idle);
                let rcode = response[3] & 0x0f;
                if rcode == RCODE_REFUSED {
                    // Refused for everyone: let the pool ask the others.
                    self.set_down(target);
                }
                if response[2] & FLAG_TC != 0 {
                    Direct::Truncated
                } else if matches!(rcode, RCODE_NOERROR | RCODE_NXDOMAIN) {
                    Direct::Answer(response)
                } else {
                    Direct::Failed
                }
            }
            Err(error) => {
                // The socket may hold a late answer: it is closed.
                tracing::debug!(%error, upstream = %target.addr, "forward: direct UDP failed");
                if error.kind() != io::ErrorKind::TimedOut {
                    self.set_down(target);
                    return Direct::Failed;
                }
                let heard_at = target.heard_at.load(Ordering::Relaxed);
                if heard_at == 0 {
                    // Never answered: nothing says it is there.
                    self.set_down(target);
                } else if heard_at < sent_at {
                    // Silent all along, not one datagram lost.
                    let misses = target.misses.fetch_add(1, Ordering::Relaxed) + 1;
                    if misses >= MAX_MISSES {
                        self.set_down(target);
                    }
                }
                Direct::Failed
            }
        }
    }

    /// Sends `query` and reads until the answer to it comes, or `wait`
    /// runs out. Datagrams with another ID or question (a late answer to
    /// an earlier query on this socket) are skipped.
    async fn exchange(
        &self,
        socket: &UdpSocket,
        id: u16,
        question: &[u8],
        query: &[u8],
        wait: Duration,
    ) -> io::Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        socket.send(query).await?;
        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        loop {
            let len = tokio::time::timeout_at(deadline, socket.recv(&mut buffer))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))??;
            let response = &buffer[..len];
            let question_end = HEADER_LEN + question.len();
            if len < question_end
                || len == RECEIVE_BUFFER
                || response[..2] != id.to_be_bytes()
                || response[2] & FLAG_QR == 0
                || !same_question(&response[HEADER_LEN..question_end], question)
            {
                continue;
            }
            buffer.truncate(len);
            return Ok(buffer);
        }
    }

    fn set_down(&self, target: &Target) {
        let until = self.millis() + DOWN_FOR.as_millis() as u64;
        target.down_until.store(until, Ordering::Relaxed);
        target.misses.store(0, Ordering::Relaxed);
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Microseconds since `epoch`, at least 1 (0 means never).
    fn micros(&self) -> u64 {
        (self.epoch.elapsed().as_micros() as u64).max(1)
    }
}

impl Target {
    /// How long to wait for an answer: four smoothed round trips, at least
    /// [`MIN_WAIT`], at most `max_wait` (and `max_wait` before any answer).
    fn wait(&self, max_wait: Duration) -> Duration {
        match self.srtt_us.load(Ordering::Relaxed) {
            0 => max_wait,
            srtt => Duration::from_micros(srtt * 4).clamp(MIN_WAIT.min(max_wait), max_wait),
        }
    }

    /// Records an answer after `rtt`, at `now` (microseconds since the
    /// epoch): the smoothed round trip moves an eighth of the way (RFC
    /// 6298's alpha), the misses are forgiven.
    fn answered(&self, rtt: Duration, now: u64) {
        self.heard_at.fetch_max(now, Ordering::Relaxed);
        let sample = (rtt.as_micros() as u64).max(1);
        let old = self.srtt_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        // Racing updates lose a sample now and then; no matter.
        self.srtt_us.store(new.max(1), Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// The oldest idle socket still young enough, closing expired ones.
    fn take(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(socket) = idle.pop_front() {
            if socket.born.elapsed() < SOCKET_LIFETIME {
                return Some(socket);
            }
        }
        None
    }

    fn give_back(&self, socket: Idle) {
        if socket.born.elapsed() >= SOCKET_LIFETIME {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push_back(socket);
        }
    }
}

/// A UDP socket on a kernel-chosen (random) port, connected to `addr`, so
/// that the kernel drops datagrams from anyone else.
fn connect(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind(SocketAddr::new(local, 0))?;
    socket.connect(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// A query for `question` (wire form, lowercase): RD set, CD as given, and
/// an OPT record with disco's UDP size and the DO bit as given.
fn query(id: u16, question: &[u8], dnssec_ok: bool, checking_disabled: bool) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_LEN + question.len() + 11);
    query.extend_from_slice(&id.to_be_bytes());
    query.push(FLAG_RD);
    query.push(if checking_disabled { FLAG_CD } else { 0 });
    query.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    query.extend_from_slice(question);
    let size = EDNS_UDP_PAYLOAD.to_be_bytes();
    let flags = if dnssec_ok { 0x80 } else { 0 };
    query.extend_from_slice(&[0, 0, 41, size[0], size[1], 0, 0, flags, 0, 0, 0]);
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_carries_rd_cd_and_do() {
        let question = b"\x01a\x07example\x00\x00\x01\x00\x01";
        let bytes = query(0x1234, question, true, true);
        assert_eq!(&bytes[..4], &[0x12, 0x34, FLAG_RD, FLAG_CD]);
        assert_eq!(&bytes[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        let opt = &bytes[HEADER_LEN + question.len()..];
        assert_eq!(opt, &[0, 0, 41, 4, 208, 0, 0, 0x80, 0, 0, 0]);
        let plain = query(1, question, false, false);
        assert_eq!(plain[3], 0);
        assert_eq!(plain[plain.len() - 4], 0);
    }

    #[tokio::test]
    async fn answers_with_another_id_are_skipped_and_a_silent_upstream_times_out() {
        let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = upstream.local_addr().unwrap();
        let direct = Datagram::new([addr]).unwrap();
        let packet =
            b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x07example\x00\x00\x01\x00\x01";
        let client = ClientQuery::parse(packet).unwrap();
        let answering = async {
            let mut buffer = [0u8; 512];
            let (len, from) = upstream.recv_from(&mut buffer).await.unwrap();
            let mut wrong = buffer[..len].to_vec();
            wrong[0] ^= 0xff;
            wrong[2] |= FLAG_QR;
            upstream.send_to(&wrong, from).await.unwrap();
            let mut right = buffer[..len].to_vec();
            right[2] |= FLAG_QR;
            right[3] = 0x80;
            upstream.send_to(&right, from).await.unwrap();
        };
        let (answer, ()) = tokio::join!(direct.ask(&client, Duration::from_secs(2)), answering);
        let Direct::Answer(answer) = answer else {
            panic!("the matching answer, not {answer:?}");
        };
        assert_eq!(answer[3], 0x80);
        // Nobody answers now: None each time, and after MAX_MISSES the
        // upstream is left to the pool (no wait at all).
        for _ in 0..MAX_MISSES {
            let missed = direct.ask(&client, Duration::from_millis(50)).await;
            assert_eq!(missed, Direct::Failed);
        }
        let started = Instant::now();
        let left = direct.ask(&client, Duration::from_secs(2)).await;
        assert_eq!(left, Direct::Failed);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A query for `label`.example. A, ID 0xabcd, RD set.
    fn packet(label: &str) -> Vec<u8> {
        let mut packet = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
        packet.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
        packet
    }

    #[tokio::test]
    async fn datagrams_lost_while_the_upstream_answers_others_leave_it_asked_directly() {
        let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = upstream.local_addr().unwrap();
        // Answers every question but those for "lost.example.".
        let answering = tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            loop {
                let (len, from) = upstream.recv_from(&mut buffer).await.unwrap();
                if buffer[HEADER_LEN + 1..].starts_with(b"lost") {
                    continue;
                }
                let mut answer = buffer[..len].to_vec();
                answer[2] |= FLAG_QR;
                upstream.send_to(&answer, from).await.unwrap();
            }
        });
        let direct = Datagram::new([addr]).unwrap();
        let (lost, kept) = (packet("lost"), packet("kept"));
        let lost = ClientQuery::parse(&lost).unwrap();
        let kept = ClientQuery::parse(&kept).unwrap();
        assert!(matches!(
            direct.ask(&kept, Duration::from_secs(2)).await,
            Direct::Answer(_)
        ));
        // A burst lost together: their waits run out back to back, with no
        // answer between them, but the upstream answered during them.
        let lost_together = (0..MAX_MISSES).map(|_| direct.ask(&lost, Duration::from_millis(100)));
        let answered_meanwhile = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            direct.ask(&kept, Duration::from_secs(2)).await
        };
        let (missed, answered) = tokio::join!(
            futures_util::future::join_all(lost_together),
            answered_meanwhile
        );
        assert!(missed.iter().all(|missed| *missed == Direct::Failed));
        assert!(matches!(answered, Direct::Answer(_)), "{answered:?}");
        // Still asked directly, not left to the pool.
        assert!(matches!(
            direct.ask(&kept, Duration::from_secs(2)).await,
            Direct::Answer(_)
        ));
        answering.abort();
    }

    #[tokio::test]
    async fn at_most_a_window_of_queries_is_in_flight_and_the_rest_wait_their_turn() {
        let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = upstream.local_addr().unwrap();
        let answer = |mut query: Vec<u8>| {
            query[2] |= FLAG_QR;
            query
        };
        let (in_flight, held_at_once) = tokio::sync::oneshot::channel();
        let answering = tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            // One slow answer first, so that the upstream is known to be
            // there and the wait for the next ones (four round trips) is long.
            let (len, from) = upstream.recv_from(&mut buffer).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            upstream
                .send_to(&answer(buffer[..len].to_vec()), from)
                .await
                .unwrap();
            // Then hold a window's worth of queries, and whatever else comes
            // in the next 200 ms.
            let mut held = Vec::new();
            while held.len() < WINDOW {
                let (len, from) = upstream.recv_from(&mut buffer).await.unwrap();
                held.push((buffer[..len].to_vec(), from));
            }
            while let Ok(received) =
                tokio::time::timeout(Duration::from_millis(200), upstream.recv_from(&mut buffer))
                    .await
            {
                let (len, from) = received.unwrap();
                held.push((buffer[..len].to_vec(), from));
            }
            let _ = in_flight.send(held.len());
            for (query, from) in held {
                upstream.send_to(&answer(query), from).await.unwrap();
            }
            loop {
                let (len, from) = upstream.recv_from(&mut buffer).await.unwrap();
                upstream
                    .send_to(&answer(buffer[..len].to_vec()), from)
                    .await
                    .unwrap();
            }
        });
        let direct = Datagram::new([addr]).unwrap();
        let packet = packet("a");
        let client = ClientQuery::parse(&packet).unwrap();
        let first = direct.ask(&client, Duration::from_secs(2)).await;
        assert!(matches!(first, Direct::Answer(_)));
        let asks = (0..=WINDOW).map(|_| direct.ask(&client, Duration::from_secs(2)));
        let answers = futures_util::future::join_all(asks).await;
        assert_eq!(held_at_once.await.unwrap(), WINDOW);
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, Direct::Answer(_)))
        );
        answering.abort();
    }

    #[tokio::test]
    async fn queries_waiting_their_turn_go_to_the_pool_once_the_upstream_is_found_silent() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let direct = Datagram::new([silent.local_addr().unwrap()]).unwrap();
        let packet = packet("a");
        let client = ClientQuery::parse(&packet).unwrap();
        let started = Instant::now();
        let asks = (0..=WINDOW).map(|_| direct.ask(&client, Duration::from_millis(500)));
        let outcomes = futures_util::future::join_all(asks).await;
        assert!(outcomes.iter().all(|outcome| *outcome == Direct::Failed));
        // One wait for the whole window, not a second one for the query
        // that waited behind it.
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }
}
