//! Forwarding: names outside disco's zones, for clients allowed recursion,
//! answered through upstream resolvers so that a container can use disco
//! as its only nameserver.
//!
//! - [`acl`]: who may recurse (everyone else gets REFUSED).
//! - [`wire`]: the client's question, and upstream answers taken apart once
//!   and written per client by patching bytes.
//! - [`cache`]: the wire cache, with negative caching and serve-stale.
//! - [`inflight`]: identical questions in flight go upstream once.
//! - [`upstream`]: the upstreams (`IP[:PORT]`, `tls://`, `https://`) and
//!   hickory-resolver's name-server pool that talks to them.
//! - [`datagram`]: plain upstreams asked directly over UDP first, the pool
//!   taking over whatever that cannot settle.
//! - [`cname`]: completing zone CNAMEs whose target lies outside disco.
//!
//! The order of things for one query: a live cache entry is answered at
//! once (on the UDP thread, without a task); otherwise the question goes
//! upstream (coalesced with identical ones in flight) and the answer is
//! cached; if no upstream answers, an expired entry within the stale window
//! is answered with TTL 30 s (RFC 8767); failing that, SERVFAIL.

pub mod acl;
pub mod cache;
pub mod cname;
pub mod datagram;
pub mod inflight;
pub mod upstream;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use acl::RecursionAcl;
pub use cache::{CacheLimits, Hit};
pub use upstream::{Upstream, UpstreamError};

use cache::WireCache;
use inflight::InFlight;
use upstream::Upstreams;
use wire::{ClientQuery, Prepared};

/// How the forwarder is set up, beyond its upstreams.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// How long one question may take upstream, all upstreams together.
    pub timeout: Duration,
    /// Cache bounds, TTL cap and stale window.
    pub limits: CacheLimits,
    /// Extra PEM CA certificates for `tls://` and `https://` upstreams.
    pub extra_roots: Option<Vec<u8>>,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        ForwardSettings {
            timeout: Duration::from_secs(2),
            limits: CacheLimits::default(),
            extra_roots: None,
        }
    }
}

/// Forwards queries to upstream resolvers, with a wire cache in front.
#[derive(Debug)]
pub struct Forwarder {
    upstreams: Upstreams,
    cache: WireCache,
    in_flight: InFlight,
}

/// Where a forwarded answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A live cache entry.
    Cache,
    /// An upstream, just now (or a query in flight that this one joined).
    Upstream,
    /// An expired cache entry, because no upstream answered (RFC 8767).
    Stale,
}

/// A response ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Wire bytes, with the client's ID and question as asked.
    pub bytes: Vec<u8>,
    /// Where it came from.
    pub source: Source,
}

impl Forwarded {
    /// Whether it came from the cache, live or stale.
    pub fn cached(&self) -> bool {
        self.source != Source::Upstream
    }
}

impl Forwarder {
    /// A forwarder over `upstreams`, with an empty cache.
    pub fn new(upstreams: Vec<Upstream>, settings: ForwardSettings) -> Self {
        Forwarder {
            upstreams: Upstreams::new(upstreams, settings.timeout, settings.extra_roots.as_deref()),
            cache: WireCache::new(settings.limits),
            in_flight: InFlight::default(),
        }
    }

    /// The upstreams, for logging.
    pub fn upstreams(&self) -> &[Upstream] {
        self.upstreams.list()
    }

    /// Answers `packet`, a query that came over UDP, from a live cache
    /// entry into `out`, if there is one: synchronous, and without
    /// allocating once `out` has grown to the answer's size. The client's
    /// EDNS size (or 512) bounds the answer. Returns the rcode written.
    pub fn answer_from_cache(&self, packet: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        let client = ClientQuery::parse(packet)?;
        let limit = client.udp_limit;
        match self
            .cache
            .write_fresh(&client, Instant::now(), limit, out)?
        {
            Hit::Fresh(rcode) | Hit::Stale(rcode) => Some(rcode),
        }
    }

    /// Forwards `packet` (a query from a client allowed recursion, with one
    /// question) and returns the response for that client, or None when no
    /// upstream answered and nothing stale is held (the caller answers
    /// SERVFAIL). `limit` is the size the client accepts (512, its EDNS
    /// size, or 65535 over TCP); a longer answer comes back shortened, TC
    /// set if even its answer section does not fit.
    pub async fn forward(&self, packet: &[u8], limit: usize) -> Option<Forwarded> {
        let client = ClientQuery::parse(packet)?;
        let mut bytes = Vec::new();
        if self
            .cache
            .write_fresh(&client, Instant::now(), limit, &mut bytes)
            .is_some()
        {
            return Some(Forwarded {
                bytes,
                source: Source::Cache,
            });
        }
        if let Some(answer) = self.resolve(&client).await {
            answer.write(&client, 0, false, limit, &mut bytes);
            return Some(Forwarded {
                bytes,
                source: Source::Upstream,
            });
        }
        self.cache
            .write_stale(&client, Instant::now(), limit, &mut bytes)
            .map(|_| Forwarded {
                bytes,
                source: Source::Stale,
            })
    }

    /// The upstream answer to `client`'s question, asked once however many
    /// ask at the same time, and cached.
    async fn resolve(&self, client: &ClientQuery<'_>) -> Option<Arc<Prepared>> {
        let key = client.key();
        self.in_flight
            .coalesce(key, async {
                let max_ttl = self.cache.limits().max_ttl;
                let answer = self.upstreams.ask(client, max_ttl).await.map(Arc::new)?;
                self.cache.insert(key, answer.clone(), Instant::now());
                Some(answer)
            })
            .await
    }

    /// Entries in the cache: positive, negative.
    pub fn cached_entries(&self) -> (usize, usize) {
        self.cache.entries()
    }
}
