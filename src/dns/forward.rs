//! Forwarding of queries for names outside disco's zones to upstream
//! resolvers, so that a container can use disco as its only nameserver.
//!
//! Each upstream attempt uses a fresh ephemeral UDP socket and a fresh random
//! ID, and accepts only a datagram that carries that ID and the client's
//! question: the client's own ID is never trusted upstream, and a spoofer has
//! to guess both the source port and the ID. A truncated UDP answer is asked
//! again over TCP.
//!
//! Answers are cached by question (lowercased name, type, class) for at most
//! [`MAX_CACHE_TTL`] seconds. Cached answers are parsed hickory messages,
//! re-encoded for each client with aged TTLs, the client's ID and the
//! client's question bytes. Live answers are relayed as the upstream's bytes
//! with the ID and question patched back.
//!
//! Nothing read from an upstream can panic here: every wire access is
//! bounds-checked, and failures are logged at debug level only (one bad
//! upstream must not flood the log with one warning per query).

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::debug;

/// Most entries the cache holds; see [`Cache::make_room`] for the policy.
const CACHE_CAPACITY: usize = 10_000;
/// Longest time, in seconds, an answer is served from the cache.
const MAX_CACHE_TTL: u32 = 300;
/// DNS header length.
const HEADER_LEN: usize = 12;
/// Largest DNS name on the wire (RFC 1035 §3.1).
const MAX_NAME_LEN: usize = 255;
/// Largest DNS message; also the UDP receive buffer, so nothing is cut off.
const MAX_MESSAGE_LEN: usize = 65_535;
const TYPE_OPT: u16 = 41;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_REFUSED: u8 = 5;
/// Header byte 2: QR (response) and TC (truncated) bits, RD bit.
const FLAG_QR: u8 = 0x80;
const FLAG_TC: u8 = 0x02;
const FLAG_RD: u8 = 0x01;

/// Forwards queries to upstream resolvers, with a cache.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    // A std mutex, not tokio's: it is held only for map operations (get,
    // insert, evict) and never across an await, so it can neither block the
    // runtime for long nor make the `forward` future non-Send.
    cache: Mutex<Cache>,
}

/// A response ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Wire bytes, with the client's original ID and question echoed as asked.
    pub bytes: Vec<u8>,
    /// Whether it came from the cache.
    pub cached: bool,
}

impl Forwarder {
    /// `upstreams` are tried in order; `timeout` is per upstream attempt.
    ///
    /// A UDP attempt that comes back truncated is retried over TCP with its
    /// own `timeout`, so one upstream costs at most twice `timeout`, and a
    /// whole [`Forwarder::forward`] at most `2 * timeout * upstreams.len()`.
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration) -> Self {
        Forwarder {
            upstreams,
            timeout,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The upstreams, for logging.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Forwards `packet` (a complete DNS query from a client: exactly one
    /// question, already validated by the caller) and returns the response to
    /// send back to that client, or None when no upstream answered in time
    /// (the caller then answers SERVFAIL). `max_len` is the size the client
    /// accepts (512, its EDNS size, or 65535 for TCP).
    ///
    /// Upstreams are tried in order until one answers with anything but
    /// SERVFAIL or REFUSED; if every one that answered said that, the last
    /// such answer is returned (not cached). A response longer than `max_len`
    /// comes back truncated, with TC set.
    pub async fn forward(&self, packet: &[u8], max_len: usize) -> Option<Forwarded> {
        let Some(client) = ClientQuery::parse(packet) else {
            debug!("forward: query has no readable question");
            return None;
        };
        if let Some(bytes) = self.answer_from_cache(&client, max_len) {
            return Some(Forwarded {
                bytes,
                cached: true,
            });
        }
        let response = self.ask_upstreams(packet, &client.key).await?;
        self.store(&client.key, &response);
        Some(Forwarded {
            bytes: relay(response, &client, max_len),
            cached: false,
        })
    }

    /// Tries each upstream in turn; see [`Forwarder::forward`].
    async fn ask_upstreams(&self, packet: &[u8], key: &Key) -> Option<Vec<u8>> {
        let mut last_failure = None;
        for &upstream in &self.upstreams {
            match exchange(upstream, packet, key, self.timeout).await {
                Some(response) if is_failure(&response) => {
                    debug!(%upstream, "forward: upstream answered SERVFAIL or REFUSED");
                    last_failure = Some(response);
                }
                Some(response) => return Some(response),
                None => debug!(%upstream, "forward: no answer from upstream"),
            }
        }
        last_failure
    }

    /// The cached answer for `client`, ready to send, if there is a live one.
    fn answer_from_cache(&self, client: &ClientQuery<'_>, max_len: usize) -> Option<Vec<u8>> {
        // The guard is a temporary of this statement: it is released before
        // any encoding work.
        let (message, age) = self.lock_cache().get(&client.key, Instant::now())?;
        let bytes = cached_response(&message, age, client)?;
        Some(fit(bytes, client.question, max_len))
    }

    /// Caches an upstream response if it may be (see [`cacheable`]).
    fn store(&self, key: &Key, response: &[u8]) {
        let Some((message, lifetime)) = cacheable(response) else {
            return;
        };
        let entry = Entry {
            message: Arc::new(message),
            stored: Instant::now(),
            lifetime,
        };
        self.lock_cache().insert(key.clone(), entry);
    }

    /// The cache, even if a panic elsewhere poisoned the lock: the map is
    /// never left half-updated by the operations done under it.
    fn lock_cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Shows the configuration and the cache's size, not its contents.
impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("upstreams", &self.upstreams)
            .field("timeout", &self.timeout)
            .field("cached_answers", &self.lock_cache().entries.len())
            .finish()
    }
}

/// What the cache is keyed by: the question, name lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The name in wire format, ASCII-lowercased.
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
}

/// The parts of the client's query the forwarder needs.
struct ClientQuery<'a> {
    id: u16,
    /// Name, type and class exactly as the client sent them (case kept).
    question: &'a [u8],
    key: Key,
    /// None without an OPT record; otherwise its DNSSEC OK bit.
    edns_dnssec_ok: Option<bool>,
    recursion_desired: bool,
}

impl<'a> ClientQuery<'a> {
    fn parse(packet: &'a [u8]) -> Option<Self> {
        let (end, key) = read_question(packet)?;
        Some(ClientQuery {
            id: u16::from_be_bytes([packet[0], packet[1]]),
            question: packet.get(HEADER_LEN..end)?,
            key,
            edns_dnssec_ok: read_opt_dnssec_ok(packet, end),
            recursion_desired: packet[2] & FLAG_RD != 0,
        })
    }
}

// ---------------------------------------------------------------------------
// Talking to upstreams

/// One attempt at `upstream`: UDP, then TCP if the UDP answer was truncated.
async fn exchange(
    upstream: SocketAddr,
    packet: &[u8],
    key: &Key,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let response = udp_exchange(upstream, packet, key, timeout).await?;
    if response[2] & FLAG_TC == 0 {
        return Some(response);
    }
    match tcp_exchange(upstream, packet, key, timeout).await {
        Some(full) => Some(full),
        None => {
            // Relaying the truncated answer still lets the client retry over
            // TCP itself, which beats a SERVFAIL.
            debug!(%upstream, "forward: TCP retry failed, relaying truncated answer");
            Some(response)
        }
    }
}

/// Sends `packet` under a fresh ID from a fresh socket and waits, until
/// `timeout`, for a datagram that answers it; anything else is ignored.
async fn udp_exchange(
    upstream: SocketAddr,
    packet: &[u8],
    key: &Key,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let id = rand::random::<u16>();
    let query = with_id(packet, id);
    let deadline = tokio::time::Instant::now() + timeout;
    let socket = UdpSocket::bind(unspecified(upstream))
        .await
        .inspect_err(|error| debug!(%upstream, %error, "forward: cannot bind UDP socket"))
        .ok()?;
    // connect() makes the kernel drop datagrams from any other source.
    socket
        .connect(upstream)
        .await
        .inspect_err(|error| debug!(%upstream, %error, "forward: cannot connect UDP socket"))
        .ok()?;
    socket
        .send(&query)
        .await
        .inspect_err(|error| debug!(%upstream, %error, "forward: UDP send failed"))
        .ok()?;
    let mut buf = vec![0; MAX_MESSAGE_LEN];
    loop {
        let len = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_elapsed) => return None,
            Ok(Err(error)) => {
                // Typically ICMP port unreachable: nobody listens there, so
                // waiting out the timeout would gain nothing.
                debug!(%upstream, %error, "forward: UDP receive failed");
                return None;
            }
            Ok(Ok(len)) => len,
        };
        let datagram = &buf[..len];
        if answers(datagram, id, key) {
            return Some(datagram.to_vec());
        }
        debug!(%upstream, len, "forward: ignoring datagram that does not answer the query");
    }
}

/// Asks `upstream` over TCP (2-byte length prefix), within `timeout`.
async fn tcp_exchange(
    upstream: SocketAddr,
    packet: &[u8],
    key: &Key,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let id = rand::random::<u16>();
    let query = with_id(packet, id);
    let len = u16::try_from(query.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + query.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&query);
    let attempt = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream.write_all(&framed).await?;
        let mut len = [0; 2];
        stream.read_exact(&mut len).await?;
        let mut response = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = match tokio::time::timeout(timeout, attempt).await {
        Err(_elapsed) => {
            debug!(%upstream, "forward: TCP attempt timed out");
            return None;
        }
        Ok(Err(error)) => {
            debug!(%upstream, %error, "forward: TCP attempt failed");
            return None;
        }
        Ok(Ok(response)) => response,
    };
    if answers(&response, id, key) {
        Some(response)
    } else {
        debug!(%upstream, "forward: TCP response does not answer the query");
        None
    }
}

/// The wildcard address of `upstream`'s family, port 0: an ephemeral socket
/// that can reach it.
fn unspecified(upstream: SocketAddr) -> SocketAddr {
    match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// A copy of `packet` with its ID replaced.
fn with_id(packet: &[u8], id: u16) -> Vec<u8> {
    let mut copy = packet.to_vec();
    if let Some(field) = copy.get_mut(..2) {
        field.copy_from_slice(&id.to_be_bytes());
    }
    copy
}

/// Whether `response` is a response with this ID to exactly this question
/// (name compared case-insensitively). Upstreams that answer without echoing
/// the question are not accepted: the ID alone is too easy to guess.
fn answers(response: &[u8], id: u16, key: &Key) -> bool {
    response.len() >= HEADER_LEN
        && u16::from_be_bytes([response[0], response[1]]) == id
        && response[2] & FLAG_QR != 0
        && read_question(response).is_some_and(|(_, theirs)| theirs == *key)
}

/// Whether a (validated) response says SERVFAIL or REFUSED.
fn is_failure(response: &[u8]) -> bool {
    let rcode = response.get(3).map_or(0, |flags| flags & 0x0f);
    rcode == RCODE_SERVFAIL || rcode == RCODE_REFUSED
}

// ---------------------------------------------------------------------------
// Building what the client gets

/// An upstream response (already checked by [`answers`]) made the client's:
/// its ID, its question bytes, its size limit.
fn relay(mut response: Vec<u8>, client: &ClientQuery<'_>, max_len: usize) -> Vec<u8> {
    if let Some(field) = response.get_mut(..2) {
        field.copy_from_slice(&client.id.to_be_bytes());
    }
    // Same name up to case, so same length: the upstream's question is
    // overwritten in place and compression pointers into it stay valid.
    echo_question(&mut response, client.question);
    fit(response, client.question, max_len)
}

/// A cached message re-encoded for `client`: TTLs aged, client's ID and RD
/// bit, OPT only if the client sent one, DNSSEC records only if it set DO.
fn cached_response(message: &Message, age: Duration, client: &ClientQuery<'_>) -> Option<Vec<u8>> {
    let mut message = message.clone();
    let age = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
    for record in message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
        .chain(message.additionals.iter_mut())
    {
        record.decrement_ttl(age);
    }
    message.metadata.id = client.id;
    message.metadata.recursion_desired = client.recursion_desired;
    let dnssec_ok = client.edns_dnssec_ok == Some(true);
    match &mut message.edns {
        // RFC 6891 §7: no OPT in a response to a query without one.
        Some(_) if client.edns_dnssec_ok.is_none() => message.edns = None,
        Some(edns) => edns.flags_mut().dnssec_ok = dnssec_ok,
        None => {}
    }
    let message = message.maybe_strip_dnssec_records(dnssec_ok);
    let mut bytes = message
        .to_vec()
        .inspect_err(|error| debug!(%error, "forward: cannot encode cached answer"))
        .ok()?;
    echo_question(&mut bytes, client.question).then_some(bytes)
}

/// Overwrites the question of `message` with the client's `question` bytes
/// if they are the same question (name up to case). Returns whether it did.
fn echo_question(message: &mut [u8], question: &[u8]) -> bool {
    let Some(theirs) = message.get_mut(HEADER_LEN..HEADER_LEN + question.len()) else {
        return false;
    };
    if !same_question(theirs, question) {
        return false;
    }
    theirs.copy_from_slice(question);
    true
}

/// Whether two wire questions (name, type, class) are equal, the name
/// compared without regard to ASCII case. Type and class are compared
/// exactly: their bytes may happen to look like letters.
fn same_question(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.len() < 4 {
        return false;
    }
    let split = a.len() - 4;
    // Label length bytes are at most 63, never letters, so a case-blind
    // comparison of the name bytes still compares the lengths exactly.
    a[..split].eq_ignore_ascii_case(&b[..split]) && a[split..] == b[split..]
}

/// `response` if it fits in `max_len`; otherwise a truncated form with TC set
/// (hickory's: header, question and OPT kept; or, if that cannot be had, a
/// bare header and the client's question).
fn fit(response: Vec<u8>, question: &[u8], max_len: usize) -> Vec<u8> {
    if response.len() <= max_len {
        return response;
    }
    let truncated = Message::from_vec(&response)
        .ok()
        .and_then(|message| message.truncate().to_vec().ok())
        .filter(|bytes| bytes.len() <= max_len);
    match truncated {
        Some(mut bytes) => {
            echo_question(&mut bytes, question);
            bytes
        }
        None => bare_truncated(&response, question),
    }
}

/// The header of `response` with TC set and only the question left.
fn bare_truncated(response: &[u8], question: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + question.len());
    bytes.extend_from_slice(response.get(..HEADER_LEN).unwrap_or(&[0; HEADER_LEN]));
    bytes[2] |= FLAG_TC;
    // Counts: one question, nothing else.
    bytes[4..HEADER_LEN].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(question);
    bytes
}

// ---------------------------------------------------------------------------
// Reading the wire by hand (only what is needed, bounds-checked throughout)

/// Reads the single question of `packet`: where it ends and its key. The name
/// must be plain labels: a compression pointer in the first name of a
/// message could only point into the header.
fn read_question(packet: &[u8]) -> Option<(usize, Key)> {
    let qdcount = u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]);
    if qdcount != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*packet.get(at)?);
        if len & 0xc0 != 0 || at + 1 + len - HEADER_LEN > MAX_NAME_LEN {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let mut name = packet.get(HEADER_LEN..at)?.to_vec();
    name.make_ascii_lowercase();
    let fixed = packet.get(at..at + 4)?;
    let key = Key {
        name,
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
    };
    Some((at + 4, key))
}

/// The DNSSEC OK bit of the query's OPT record, or None when it has none (or
/// its records cannot be read). `at` is where the question ends.
fn read_opt_dnssec_ok(packet: &[u8], mut at: usize) -> Option<bool> {
    let count = |offset: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *packet.get(offset)?,
            *packet.get(offset + 1)?,
        ])))
    };
    let (ancount, nscount, arcount) = (count(6)?, count(8)?, count(10)?);
    for _ in 0..ancount + nscount {
        at = skip_record(packet, at)?.0;
    }
    for _ in 0..arcount {
        let (next, rtype, ttl) = skip_record(packet, at)?;
        if rtype == TYPE_OPT {
            // The OPT "TTL" is extended RCODE, version, then DO and Z bits.
            return Some(ttl & 0x8000 != 0);
        }
        at = next;
    }
    None
}

/// Skips the record starting at `at`: returns where the next one starts, its
/// type and its TTL field.
fn skip_record(packet: &[u8], mut at: usize) -> Option<(usize, u16, u32)> {
    loop {
        let len = usize::from(*packet.get(at)?);
        match len & 0xc0 {
            0x00 if len == 0 => {
                at += 1;
                break;
            }
            0x00 => at += 1 + len,
            0xc0 => {
                at += 2;
                break;
            }
            _ => return None,
        }
    }
    let fixed = packet.get(at..at + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let next = at + 10 + rdlength;
    (next <= packet.len()).then_some((next, rtype, ttl))
}

// ---------------------------------------------------------------------------
// The cache

/// Whether and for how long an upstream response may be cached: NOERROR or
/// NXDOMAIN, not truncated, with answers or (for a negative answer) an SOA.
/// The lifetime is the least TTL over answers and authorities, an SOA
/// counting as min(TTL, MINIMUM) (RFC 2308 §5), capped at [`MAX_CACHE_TTL`];
/// zero means not cached. The SOA TTLs are lowered to that value in the
/// stored message, so clients count down the same negative lifetime.
fn cacheable(response: &[u8]) -> Option<(Message, Duration)> {
    let mut message = Message::from_vec(response).ok()?;
    if message.metadata.truncation
        || !matches!(
            message.metadata.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        )
    {
        return None;
    }
    let mut has_soa = false;
    for record in &mut message.authorities {
        if let RData::SOA(soa) = &record.data {
            record.ttl = record.ttl.min(soa.minimum);
            has_soa = true;
        }
    }
    if message.answers.is_empty() && !has_soa {
        // RFC 2308 §5: negative answers without an SOA are not cached.
        return None;
    }
    let ttl = message
        .answers
        .iter()
        .chain(&message.authorities)
        .map(|record| record.ttl)
        .min()?
        .min(MAX_CACHE_TTL);
    (ttl > 0).then(|| (message, Duration::from_secs(u64::from(ttl))))
}

/// One cached answer.
struct Entry {
    /// Shared so that a hit clones a pointer, not a message, under the lock.
    message: Arc<Message>,
    stored: Instant,
    lifetime: Duration,
}

impl Entry {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }

    fn expired(&self, now: Instant) -> bool {
        self.age(now) >= self.lifetime
    }
}

/// A bounded map from question to answer.
#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Entry>,
}

impl Cache {
    /// The live answer for `key` and its age; an expired one is dropped.
    fn get(&mut self, key: &Key, now: Instant) -> Option<(Arc<Message>, Duration)> {
        let entry = self.entries.get(key)?;
        if entry.expired(now) {
            self.entries.remove(key);
            return None;
        }
        Some((Arc::clone(&entry.message), entry.age(now)))
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        if self.entries.len() >= CACHE_CAPACITY && !self.entries.contains_key(&key) {
            self.make_room(entry.stored);
        }
        self.entries.insert(key, entry);
    }

    /// Eviction policy: drop every expired entry; if the cache is still full,
    /// drop an arbitrary half (every other entry in map order). Crude, but
    /// bounded, O(n) only once per many inserts, and free of bookkeeping; the
    /// entries lost are re-fetched on their next query.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, entry| !entry.expired(now));
        if self.entries.len() >= CACHE_CAPACITY {
            let mut keep = false;
            self.entries.retain(|_, _| {
                keep = !keep;
                keep
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hickory_proto::op::{Edns, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, Record, RecordType};
    use tokio::net::TcpListener;

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);
    const CLIENT_ID: u16 = 0xbeef;

    /// How a fake upstream treats the queries it gets.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// `n` A records, 192.0.2.1, TTL 60.
        Answer(usize),
        /// Never answers.
        Silent,
        /// Sends junk and near-misses before the real answer.
        NoiseThenAnswer,
        /// Answers with this rcode and nothing else.
        Rcode(ResponseCode),
        /// UDP answers carry TC and no records; TCP answers in full.
        Truncating,
    }

    /// A fake upstream on loopback, counting the queries it got.
    struct Upstream {
        addr: SocketAddr,
        udp_queries: Arc<AtomicUsize>,
        tcp_queries: Arc<AtomicUsize>,
    }

    impl Upstream {
        fn udp(&self) -> usize {
            self.udp_queries.load(Ordering::SeqCst)
        }
        fn tcp(&self) -> usize {
            self.tcp_queries.load(Ordering::SeqCst)
        }
    }

    async fn upstream(behaviour: Behaviour) -> Upstream {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        if let Behaviour::Truncating = behaviour {
            let listener = TcpListener::bind(addr).await.unwrap();
            tokio::spawn(serve_tcp(listener, Arc::clone(&tcp_queries)));
        }
        tokio::spawn(serve_udp(socket, behaviour, Arc::clone(&udp_queries)));
        Upstream {
            addr,
            udp_queries,
            tcp_queries,
        }
    }

    async fn serve_udp(socket: UdpSocket, behaviour: Behaviour, count: Arc<AtomicUsize>) {
        let mut buf = vec![0; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            count.fetch_add(1, Ordering::SeqCst);
            let query = Message::from_vec(&buf[..len]).unwrap();
            let replies = match behaviour {
                Behaviour::Silent => vec![],
                Behaviour::Answer(n) => vec![reply(&query, n, ResponseCode::NoError)],
                Behaviour::Rcode(rcode) => vec![reply(&query, 0, rcode)],
                Behaviour::Truncating => {
                    let mut message =
                        Message::from_vec(&reply(&query, 0, ResponseCode::NoError)).unwrap();
                    message.metadata.truncation = true;
                    vec![message.to_vec().unwrap()]
                }
                Behaviour::NoiseThenAnswer => noise_then_answer(&query),
            };
            for bytes in replies {
                socket.send_to(&bytes, from).await.unwrap();
            }
        }
    }

    async fn serve_tcp(listener: TcpListener, count: Arc<AtomicUsize>) {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut len = [0; 2];
            stream.read_exact(&mut len).await.unwrap();
            let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut query).await.unwrap();
            let response = reply(
                &Message::from_vec(&query).unwrap(),
                1,
                ResponseCode::NoError,
            );
            let mut framed = (response.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&response);
            stream.write_all(&framed).await.unwrap();
        }
    }

    /// A response to `query` with `n` A records 192.0.2.1, TTL 60, and the
    /// question name lowercased.
    fn reply(query: &Message, n: usize, rcode: ResponseCode) -> Vec<u8> {
        reply_with(query, n, rcode, Ipv4Addr::new(192, 0, 2, 1))
    }

    fn reply_with(query: &Message, n: usize, rcode: ResponseCode, address: Ipv4Addr) -> Vec<u8> {
        let mut message = Message::response(query.metadata.id, OpCode::Query);
        message.metadata.recursion_desired = query.metadata.recursion_desired;
        message.metadata.recursion_available = true;
        message.metadata.response_code = rcode;
        // Lowercased, as some upstreams do: the forwarder must restore the
        // client's case.
        let name = query.queries[0].name().to_lowercase();
        let mut question = query.queries[0].clone();
        question.set_name(name.clone());
        message.add_query(question);
        for _ in 0..n {
            let record = Record::from_rdata(name.clone(), 60, RData::A(A(address)));
            message.add_answer(record);
        }
        message.to_vec().unwrap()
    }

    /// Garbage, a short packet, a wrong ID, a different question, a
    /// different type, the query echoed back (QR clear), then the real
    /// answer. The near-misses carry another address, so that taking one of
    /// them shows.
    fn noise_then_answer(query: &Message) -> Vec<Vec<u8>> {
        let good = reply(query, 1, ResponseCode::NoError);
        let bogus = reply_with(
            query,
            1,
            ResponseCode::NoError,
            Ipv4Addr::new(198, 51, 100, 66),
        );
        let mut wrong_id = bogus.clone();
        wrong_id[..2].copy_from_slice(&query.metadata.id.wrapping_add(1).to_be_bytes());
        let mut other = query.clone();
        other.queries[0].set_name(Name::from_ascii("other.example.org.").unwrap());
        let other_question = reply(&other, 1, ResponseCode::NoError);
        let mut other = query.clone();
        other.queries[0].set_query_type(RecordType::AAAA);
        let other_type = reply_with(
            &other,
            1,
            ResponseCode::NoError,
            Ipv4Addr::new(198, 51, 100, 66),
        );
        let mut not_response = bogus;
        not_response[2] &= !FLAG_QR;
        let garbage: Vec<u8> = (0..200u16).map(|i| (i * 7 + 3) as u8).collect();
        vec![
            garbage,
            good[..5].to_vec(),
            good[..HEADER_LEN + 3].to_vec(),
            wrong_id,
            other_question,
            other_type,
            not_response,
            good,
        ]
    }

    /// A client query for `name`/A with `id`, optionally with EDNS.
    fn client_query(name: &str, id: u16, edns: Option<bool>) -> Vec<u8> {
        let mut message = Message::new(id, hickory_proto::op::MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if let Some(dnssec_ok) = edns {
            let mut opt = Edns::new();
            opt.set_max_payload(1232);
            opt.flags_mut().dnssec_ok = dnssec_ok;
            message.set_edns(opt);
        }
        message.to_vec().unwrap()
    }

    /// The question section's bytes of a message whose question is
    /// `question_len` long.
    fn question_of(bytes: &[u8], question_len: usize) -> &[u8] {
        &bytes[HEADER_LEN..HEADER_LEN + question_len]
    }

    fn question_len(query: &[u8]) -> usize {
        read_question(query).unwrap().0 - HEADER_LEN
    }

    fn addresses(message: &Message) -> Vec<Ipv4Addr> {
        message
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn answer_comes_back_with_client_id_and_question_case() {
        let up = upstream(Behaviour::Answer(1)).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        let query = client_query("WwW.ExAmple.COM.", CLIENT_ID, None);

        let got = forwarder.forward(&query, 512).await.unwrap();

        assert!(!got.cached);
        assert_eq!(u16::from_be_bytes([got.bytes[0], got.bytes[1]]), CLIENT_ID);
        let qlen = question_len(&query);
        assert_eq!(question_of(&got.bytes, qlen), question_of(&query, qlen));
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&message), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(message.answers[0].ttl, 60);
        assert_eq!(up.udp(), 1);
    }

    #[tokio::test]
    async fn second_query_is_served_from_cache() {
        let up = upstream(Behaviour::Answer(1)).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        let first = client_query("www.example.com.", 1, None);
        assert!(!forwarder.forward(&first, 512).await.unwrap().cached);

        // Same question in another case, another ID, with EDNS this time.
        let second = client_query("WWW.example.COM.", 0x1234, Some(false));
        let got = forwarder.forward(&second, 1232).await.unwrap();

        assert!(got.cached);
        assert_eq!(up.udp(), 1);
        assert_eq!(u16::from_be_bytes([got.bytes[0], got.bytes[1]]), 0x1234);
        let qlen = question_len(&second);
        assert_eq!(question_of(&got.bytes, qlen), question_of(&second, qlen));
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(addresses(&message), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        let ttl = message.answers[0].ttl;
        assert!((59..=60).contains(&ttl), "ttl {ttl}");
        assert_eq!(message.queries[0].name().to_ascii(), "WWW.example.COM.");
    }

    #[tokio::test]
    async fn silent_upstream_is_skipped_for_the_next() {
        let silent = upstream(Behaviour::Silent).await;
        let working = upstream(Behaviour::Answer(1)).await;
        let forwarder = Forwarder::new(vec![silent.addr, working.addr], TIMEOUT);
        let query = client_query("example.net.", CLIENT_ID, None);

        let started = Instant::now();
        let got = forwarder.forward(&query, 512).await.unwrap();

        assert!(started.elapsed() >= TIMEOUT);
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(addresses(&message), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!((silent.udp(), working.udp()), (1, 1));
    }

    #[tokio::test]
    async fn all_silent_gives_none_after_the_timeouts() {
        let a = upstream(Behaviour::Silent).await;
        let b = upstream(Behaviour::Silent).await;
        let forwarder = Forwarder::new(vec![a.addr, b.addr], TIMEOUT);
        let query = client_query("example.net.", CLIENT_ID, None);

        let started = Instant::now();
        assert_eq!(forwarder.forward(&query, 512).await, None);
        let elapsed = started.elapsed();

        assert!(elapsed >= 2 * TIMEOUT, "{elapsed:?}");
        assert!(
            elapsed < 2 * TIMEOUT + Duration::from_millis(500),
            "{elapsed:?}"
        );
        assert_eq!((a.udp(), b.udp()), (1, 1));
    }

    #[tokio::test]
    async fn junk_and_near_misses_from_upstream_are_ignored() {
        let up = upstream(Behaviour::NoiseThenAnswer).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        let query = client_query("www.example.com.", CLIENT_ID, None);

        let started = Instant::now();
        let got = forwarder.forward(&query, 512).await.unwrap();

        assert!(started.elapsed() < TIMEOUT, "the good answer was not taken");
        assert_eq!(u16::from_be_bytes([got.bytes[0], got.bytes[1]]), CLIENT_ID);
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(message.queries[0].name().to_ascii(), "www.example.com.");
        assert_eq!(addresses(&message), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(up.udp(), 1);
    }

    #[tokio::test]
    async fn truncated_udp_answer_is_retried_over_tcp() {
        let up = upstream(Behaviour::Truncating).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        let query = client_query("big.example.com.", CLIENT_ID, None);

        let got = forwarder.forward(&query, 65_535).await.unwrap();

        let message = Message::from_vec(&got.bytes).unwrap();
        assert!(!message.metadata.truncation);
        assert_eq!(addresses(&message), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(message.metadata.id, CLIENT_ID);
        assert_eq!((up.udp(), up.tcp()), (1, 1));
        // The full TCP answer was cached.
        assert!(forwarder.forward(&query, 65_535).await.unwrap().cached);
    }

    #[tokio::test]
    async fn servfail_moves_on_and_is_returned_only_as_a_last_resort() {
        let failing = upstream(Behaviour::Rcode(ResponseCode::ServFail)).await;
        let refusing = upstream(Behaviour::Rcode(ResponseCode::Refused)).await;
        let working = upstream(Behaviour::Answer(1)).await;
        let query = client_query("example.org.", CLIENT_ID, None);

        let forwarder = Forwarder::new(vec![failing.addr, working.addr], TIMEOUT);
        let got = forwarder.forward(&query, 512).await.unwrap();
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&message).len(), 1);

        let forwarder = Forwarder::new(vec![failing.addr, refusing.addr], TIMEOUT);
        let got = forwarder.forward(&query, 512).await.unwrap();
        let message = Message::from_vec(&got.bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::Refused);
        assert_eq!(message.metadata.id, CLIENT_ID);
        // Failures are not cached: the upstreams are asked again.
        let again = forwarder.forward(&query, 512).await.unwrap();
        assert!(!again.cached);
        assert_eq!((failing.udp(), refusing.udp()), (3, 2));
    }

    #[tokio::test]
    async fn long_answers_are_truncated_to_max_len_live_and_cached() {
        let up = upstream(Behaviour::Answer(40)).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        let query = client_query("many.example.com.", CLIENT_ID, None);
        let qlen = question_len(&query);

        for expect_cached in [false, true] {
            let got = forwarder.forward(&query, 512).await.unwrap();
            assert_eq!(got.cached, expect_cached);
            assert!(got.bytes.len() <= 512, "{} bytes", got.bytes.len());
            let message = Message::from_vec(&got.bytes).unwrap();
            assert!(message.metadata.truncation);
            assert_eq!(message.metadata.id, CLIENT_ID);
            assert_eq!(question_of(&got.bytes, qlen), question_of(&query, qlen));
        }
        let full = forwarder.forward(&query, 65_535).await.unwrap();
        assert!(full.cached);
        let message = Message::from_vec(&full.bytes).unwrap();
        assert!(!message.metadata.truncation);
        assert_eq!(addresses(&message).len(), 40);
        assert_eq!(up.udp(), 1);
    }

    #[tokio::test]
    async fn cached_answer_carries_opt_only_for_edns_clients() {
        let up = upstream(Behaviour::Answer(1)).await;
        let forwarder = Forwarder::new(vec![up.addr], TIMEOUT);
        // The fake upstream never sends OPT, so the cache entry is made by
        // hand from an answer that has one.
        let query = client_query("edns.example.com.", 1, Some(true));
        let mut response = Message::from_vec(&reply(
            &Message::from_vec(&query).unwrap(),
            1,
            ResponseCode::NoError,
        ))
        .unwrap();
        response.set_edns(Edns::new());
        forwarder.store(
            &read_question(&query).unwrap().1,
            &response.to_vec().unwrap(),
        );

        let plain = forwarder
            .forward(&client_query("edns.example.com.", 2, None), 512)
            .await
            .unwrap();
        assert!(plain.cached);
        assert!(Message::from_vec(&plain.bytes).unwrap().edns.is_none());
        let with_opt = forwarder.forward(&query, 1232).await.unwrap();
        assert!(with_opt.cached);
        let edns = Message::from_vec(&with_opt.bytes).unwrap().edns.unwrap();
        assert!(edns.flags().dnssec_ok);
        assert_eq!(up.udp(), 0);
    }

    #[test]
    fn forward_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let forwarder = Forwarder::new(vec![], TIMEOUT);
        assert_send(&forwarder.forward(&[], 512));
    }

    #[test]
    fn debug_shows_configuration() {
        let upstream: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let forwarder = Forwarder::new(vec![upstream], TIMEOUT);
        assert_eq!(forwarder.upstreams(), &[upstream]);
        let shown = format!("{forwarder:?}");
        assert!(shown.contains("127.0.0.1:53"), "{shown}");
        assert!(shown.contains("cached_answers: 0"), "{shown}");
    }

    fn soa_record(ttl: u32, minimum: u32) -> Record {
        let soa = SOA::new(
            Name::from_ascii("ns.example.").unwrap(),
            Name::from_ascii("admin.example.").unwrap(),
            1,
            3600,
            600,
            86400,
            minimum,
        );
        Record::from_rdata(Name::from_ascii("example.").unwrap(), ttl, RData::SOA(soa))
    }

    fn response(rcode: ResponseCode) -> Message {
        let mut message = Message::response(7, OpCode::Query);
        message.metadata.response_code = rcode;
        message.add_query(Query::query(
            Name::from_ascii("x.example.").unwrap(),
            RecordType::A,
        ));
        message
    }

    fn lifetime(message: &Message) -> Option<u64> {
        cacheable(&message.to_vec().unwrap()).map(|(_, lifetime)| lifetime.as_secs())
    }

    #[test]
    fn cache_lifetimes() {
        let a = |ttl| {
            Record::from_rdata(
                Name::from_ascii("x.example.").unwrap(),
                ttl,
                RData::A(A::new(192, 0, 2, 1)),
            )
        };
        let mut positive = response(ResponseCode::NoError);
        positive.add_answer(a(120)).add_answer(a(90));
        assert_eq!(lifetime(&positive), Some(90));

        let mut long = response(ResponseCode::NoError);
        long.add_answer(a(86_400));
        assert_eq!(lifetime(&long), Some(u64::from(MAX_CACHE_TTL)));

        let mut nxdomain = response(ResponseCode::NXDomain);
        nxdomain.add_authority(soa_record(3600, 30));
        assert_eq!(lifetime(&nxdomain), Some(30));
        let (stored, _) = cacheable(&nxdomain.to_vec().unwrap()).unwrap();
        assert_eq!(stored.authorities[0].ttl, 30);

        let mut nodata = response(ResponseCode::NoError);
        nodata.add_authority(soa_record(20, 600));
        assert_eq!(lifetime(&nodata), Some(20));

        // Not cached: negative without SOA, zero TTL, failures, truncated.
        assert_eq!(lifetime(&response(ResponseCode::NXDomain)), None);
        let mut zero = response(ResponseCode::NoError);
        zero.add_answer(a(0));
        assert_eq!(lifetime(&zero), None);
        let mut servfail = response(ResponseCode::ServFail);
        servfail.add_authority(soa_record(3600, 30));
        assert_eq!(lifetime(&servfail), None);
        let mut truncated = positive.clone();
        truncated.metadata.truncation = true;
        assert_eq!(lifetime(&truncated), None);
    }

    #[test]
    fn cache_stays_bounded_and_expires() {
        let message = Arc::new(response(ResponseCode::NoError));
        let now = Instant::now();
        let key = |i: usize| Key {
            name: i.to_string().into_bytes(),
            qtype: 1,
            qclass: 1,
        };
        let mut cache = Cache::default();
        for i in 0..CACHE_CAPACITY + 5_000 {
            let entry = Entry {
                message: Arc::clone(&message),
                stored: now,
                lifetime: Duration::from_secs(60),
            };
            cache.insert(key(i), entry);
            assert!(cache.entries.len() <= CACHE_CAPACITY);
        }
        let newest = key(CACHE_CAPACITY + 4_999);
        assert!(cache.get(&newest, now).is_some());
        assert!(cache.get(&newest, now + Duration::from_secs(60)).is_none());
        assert!(!cache.entries.contains_key(&newest));
    }

    #[test]
    fn wire_readers_survive_arbitrary_bytes() {
        let key = read_question(&client_query("a.example.", 1, None))
            .unwrap()
            .1;
        let good = client_query("a.example.", 1, Some(true));
        // Every prefix of a real packet, and pseudo-random packets.
        let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        let mut state: u32 = 0x1234_5678;
        for len in 0..600 {
            let bytes = (0..len % 80)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            inputs.push(bytes);
        }
        for input in &inputs {
            let _ = ClientQuery::parse(input);
            let _ = answers(input, 1, &key);
            let _ = is_failure(input);
            let _ = cacheable(input);
            let _ = read_opt_dnssec_ok(input, HEADER_LEN);
            let _ = fit(input.clone(), &good[HEADER_LEN..HEADER_LEN + 4], 8);
            let mut copy = input.clone();
            let _ = echo_question(&mut copy, &good[HEADER_LEN..]);
        }
        assert_eq!(
            read_opt_dnssec_ok(&good, read_question(&good).unwrap().0),
            Some(true)
        );
    }

    #[test]
    fn same_question_ignores_name_case_only() {
        // Type 0x0041 vs 0x0061 look like 'A' and 'a': must differ.
        let a = b"\x01x\x00\x00\x41\x00\x01";
        let b = b"\x01X\x00\x00\x41\x00\x01";
        let c = b"\x01x\x00\x00\x61\x00\x01";
        assert!(same_question(a, b));
        assert!(!same_question(a, c));
        assert!(!same_question(a, &a[..6]));
    }
}
