//! Any bytes as an upstream's answer: taken apart by the forwarder's wire
//! code, cached, and written for clients of every kind (plain UDP, EDNS,
//! DNSSEC OK, TCP), live and stale; and relayed for real by a `Forwarder`
//! from a fake upstream on loopback that answers with those bytes (under
//! the query's ID, so that they get past hickory's ID check to disco's
//! code). disco must never panic, and whatever it writes must carry the
//! client's ID and question and fit the client's limit.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::dns::forward::cache::{CacheLimits, WireCache};
use crate::dns::forward::wire::{ClientQuery, Prepared};
use crate::dns::forward::{ForwardSettings, Forwarder, Upstream};

/// Queries for `x.example.` A: plain, EDNS 1232, EDNS with DO.
const QUERIES: [&[u8]; 3] = [
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x07example\x00\x00\x01\x00\x01",
    b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x01X\x07example\x00\x00\x01\x00\x01\
      \x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00",
    b"\x12\x36\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x01x\x07EXAMPLE\x00\x00\x01\x00\x01\
      \x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00",
];

/// A runtime, a fake upstream replying with the current input, and a
/// forwarder asking it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    reply: Arc<Mutex<Vec<u8>>>,
    upstream: SocketAddr,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reply = Arc::new(Mutex::new(Vec::new()));
        let socket = runtime
            .block_on(tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap();
        let upstream = socket.local_addr().unwrap();
        let bytes = reply.clone();
        runtime.spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let mut answer = bytes.lock().unwrap().clone();
                if answer.len() >= 2 && len >= 2 {
                    answer[..2].copy_from_slice(&buf[..2]);
                }
                let _ = socket.send_to(&answer, from).await;
            }
        });
        Harness {
            runtime,
            reply,
            upstream,
        }
    })
}

/// What every written response must be: the client's ID, QR set, the
/// client's question as asked, within the limit.
fn check(out: &[u8], query: &[u8], question: &[u8], limit: usize) {
    assert!(
        out.len() <= limit,
        "{} bytes over a {limit}-byte limit",
        out.len()
    );
    assert_eq!(out[..2], query[..2]);
    assert!(out[2] & 0x80 != 0, "QR set");
    assert_eq!(&out[12..12 + question.len()], question);
}

/// Takes `data` apart as an upstream's answer to each of [`QUERIES`], and
/// relays it from a fake upstream.
pub fn run(data: &[u8]) {
    let cache = WireCache::new(CacheLimits::default());
    let now = Instant::now();
    for query in QUERIES {
        let client = ClientQuery::parse(query).unwrap();
        let Some(prepared) = Prepared::new(data, client.lowercase_question(), 300) else {
            continue;
        };
        let prepared = Arc::new(prepared);
        cache.insert(client.key(), prepared.clone(), now);
        for limit in [12 + client.question().len(), 512, client.udp_limit, 65_535] {
            let mut out = Vec::new();
            for stale in [false, true] {
                prepared.write(&client, 7, stale, limit.max(512), &mut out);
                check(&out, query, client.question(), limit.max(512));
            }
            if cache
                .write_fresh(&client, now, limit.max(512), &mut out)
                .is_some()
            {
                check(&out, query, client.question(), limit.max(512));
            }
            let later = now + Duration::from_secs(86_000);
            if cache
                .write_stale(&client, later, limit.max(512), &mut out)
                .is_some()
            {
                check(&out, query, client.question(), limit.max(512));
            }
        }
    }

    // The whole path: hickory's pool reads the bytes, disco prepares them.
    // Only for bytes hickory would hand on: a message whose question is
    // the one asked. hickory discards anything else and waits out the
    // timeout (as it should: a spoofed reply must not end the wait), which
    // would slow the fuzzer to a crawl and test nothing of disco's.
    let query = QUERIES[1];
    if !asks_the_same(data, query) {
        return;
    }
    let harness = harness();
    *harness.reply.lock().unwrap() = data.to_vec();
    let forwarder = Forwarder::new(
        vec![Upstream::Plain(harness.upstream)],
        ForwardSettings {
            // Loopback answers in microseconds; a missed one only skips
            // the check.
            timeout: Duration::from_millis(20),
            ..ForwardSettings::default()
        },
    );
    let forwarded = harness
        .runtime
        .block_on(async { forwarder.forward(query, 1232).await });
    if let Some(forwarded) = forwarded {
        let client = ClientQuery::parse(query).unwrap();
        check(&forwarded.bytes, query, client.question(), 1232);
    }
}

/// Whether `data` reads as a message whose question section is `query`'s,
/// as hickory's UDP client checks it before handing a reply on (names
/// compared without regard to case).
fn asks_the_same(data: &[u8], query: &[u8]) -> bool {
    use hickory_proto::op::Message;
    match (Message::from_vec(data), Message::from_vec(query)) {
        (Ok(reply), Ok(query)) => reply.queries == query.queries,
        _ => false,
    }
}
