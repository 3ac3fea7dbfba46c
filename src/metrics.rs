//! Counters and a latency histogram, recorded with relaxed atomics on the
//! query path (no lock, no allocation) and rendered in the Prometheus text
//! format by `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use crate::registry::SourceStatus;

mod limits;
mod liveness;
mod tcp;
pub use limits::LimitMetrics;
pub use tcp::{TcpClose, TcpMetrics, TcpRefusal};

// Where the listeners and the Docker registrar's report still import it
// from; the text format's escaping itself is `crate::prometheus`'s.
pub use crate::prometheus::label_value;

/// Query types counted by name; everything else is `other`.
const QTYPES: [(u16, &str); 11] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (16, "TXT"),
    (12, "PTR"),
    (6, "SOA"),
    (2, "NS"),
    (5, "CNAME"),
    (15, "MX"),
    (255, "ANY"),
    (65, "HTTPS"),
];
const RCODES: [&str; 6] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
];
/// Upper bounds of the latency buckets, in microseconds.
const LATENCY_BUCKETS_US: [u64; 10] = [10, 25, 50, 100, 250, 500, 1_000, 5_000, 50_000, 500_000];

/// Query counters are split in shards, one per thread (modulo), each on its
/// own cache lines: worker threads counting into one shared counter would
/// bounce its cache line between cores on every query.
const SHARDS: usize = 8;

/// The query counters of some of the threads.
#[derive(Debug, Default)]
#[repr(align(128))]
struct QueryShard {
    /// `[qtype][rcode]`, with one extra row for other types and one extra
    /// column for other rcodes.
    queries: [[AtomicU64; RCODES.len() + 1]; QTYPES.len() + 1],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    shards: [QueryShard; SHARDS],
    dropped: AtomicU64,
    /// Panics caught answering a packet, over UDP then TCP.
    query_panics: [AtomicU64; 2],
    forwarded: AtomicU64,
    forward_cache_hits: AtomicU64,
    forward_failures: AtomicU64,
    forward_stale: AtomicU64,
    instances: AtomicU64,
    last_update_unix_ms: AtomicU64,
    updates: AtomicU64,
    tcp: TcpMetrics,
    limits: LimitMetrics,
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts one answered query.
    pub fn record_query(&self, qtype: u16, rcode: u8, elapsed: Duration) {
        let row = QTYPES
            .iter()
            .position(|&(t, _)| t == qtype)
            .unwrap_or(QTYPES.len());
        let column = (rcode as usize).min(RCODES.len());
        let shard = self.shard();
        shard.queries[row][column].fetch_add(1, Relaxed);
        let nanos = elapsed.as_nanos() as u64;
        if let Some(bucket) = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| nanos <= bound * 1000)
        {
            shard.latency_buckets[bucket].fetch_add(1, Relaxed);
        }
        shard.latency_count.fetch_add(1, Relaxed);
        shard.latency_sum_ns.fetch_add(nanos, Relaxed);
    }

    /// The DNS-over-TCP connection counters.
    pub fn tcp(&self) -> &TcpMetrics {
        &self.tcp
    }

    /// The response rate limiting and DNS cookie counters.
    pub fn limits(&self) -> &LimitMetrics {
        &self.limits
    }

    /// This thread's shard.
    fn shard(&self) -> &QueryShard {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
        }
        &self.shards[SHARD.with(|shard| *shard)]
    }

    /// A query counter summed over the shards.
    fn total(&self, counter: impl Fn(&QueryShard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Relaxed))
            .sum()
    }

    /// Counts a packet dropped unanswered.
    pub fn record_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Counts a panic caught while answering a packet that came over TCP
    /// (`tcp`) or UDP.
    pub fn record_query_panic(&self, tcp: bool) {
        self.query_panics[tcp as usize].fetch_add(1, Relaxed);
    }

    /// Panics caught answering packets, both transports.
    pub fn panics_total(&self) -> u64 {
        self.query_panics.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Counts one forwarded query and its upstream rcode (2 = failed).
    pub fn record_forwarded(&self, from_cache: bool, rcode: u8) {
        self.forwarded.fetch_add(1, Relaxed);
        if from_cache {
            self.forward_cache_hits.fetch_add(1, Relaxed);
        }
        if rcode == 2 {
            self.forward_failures.fetch_add(1, Relaxed);
        }
    }

    /// Counts one forwarded query answered from an expired cache entry
    /// because no upstream answered (RFC 8767).
    pub fn record_forward_stale(&self) {
        self.forward_stale.fetch_add(1, Relaxed);
    }

    /// Records that a new snapshot with `instances` instances is live.
    pub fn record_snapshot(&self, instances: usize) {
        self.instances.store(instances as u64, Relaxed);
        self.updates.fetch_add(1, Relaxed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_update_unix_ms
            .store(now.as_millis() as u64, Relaxed);
    }

    /// Total answered queries, for tests and logs.
    pub fn queries_total(&self) -> u64 {
        let rows = 0..QTYPES.len() + 1;
        rows.flat_map(|row| (0..RCODES.len() + 1).map(move |column| (row, column)))
            .map(|(row, column)| self.total(|s| &s.queries[row][column]))
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self, sources: &[SourceStatus]) -> String {
        let mut out = String::with_capacity(4096);
        let now = SystemTime::now();
        out.push_str(
            "# HELP disco_queries_total DNS queries answered, by query type and response code.\n",
        );
        out.push_str("# TYPE disco_queries_total counter\n");
        for row in 0..QTYPES.len() + 1 {
            let qtype = QTYPES.get(row).map_or("other", |(_, name)| name);
            for column in 0..RCODES.len() + 1 {
                let value = self.total(|s| &s.queries[row][column]);
                if value > 0 {
                    let rcode = RCODES.get(column).copied().unwrap_or("other");
                    let _ = writeln!(
                        out,
                        "disco_queries_total{{qtype=\"{qtype}\",rcode=\"{rcode}\"}} {value}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP disco_query_duration_seconds Time to answer a query from the snapshot.\n",
        );
        out.push_str("# TYPE disco_query_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bucket, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
            cumulative += self.total(|s| &s.latency_buckets[bucket]);
            let _ = writeln!(
                out,
                "disco_query_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let count = self.total(|s| &s.latency_count);
        let _ = writeln!(
            out,
            "disco_query_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "disco_query_duration_seconds_sum {}",
            self.total(|s| &s.latency_sum_ns) as f64 / 1e9
        );
        let _ = writeln!(out, "disco_query_duration_seconds_count {count}");
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "disco_dropped_packets_total",
            "Packets dropped unanswered (too short, or not a query).",
            "counter",
            self.dropped.load(Relaxed).to_string(),
        );
        out.push_str(
            "# HELP disco_query_panics_total Panics caught while answering a packet \
             (the packet got SERVFAIL or was dropped; the listener went on serving).\n\
             # TYPE disco_query_panics_total counter\n",
        );
        for (transport, count) in ["udp", "tcp"].iter().zip(&self.query_panics) {
            let count = count.load(Relaxed);
            let _ = writeln!(
                out,
                "disco_query_panics_total{{transport=\"{transport}\"}} {count}"
            );
        }
        gauge(
            &mut out,
            "disco_forwarded_total",
            "Queries forwarded upstream.",
            "counter",
            self.forwarded.load(Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "disco_forward_cache_hits_total",
            "Forwarded queries answered from the cache.",
            "counter",
            self.forward_cache_hits.load(Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "disco_forward_failures_total",
            "Forwarded queries no upstream answered (SERVFAIL).",
            "counter",
            self.forward_failures.load(Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "disco_forward_stale_total",
            "Forwarded queries answered from expired cache entries, no upstream answering (RFC 8767).",
            "counter",
            self.forward_stale.load(Relaxed).to_string(),
        );
        self.tcp.render(&mut out);
        self.limits.render(&mut out);
        gauge(
            &mut out,
            "disco_instances",
            "Instances in the live snapshot.",
            "gauge",
            self.instances.load(Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "disco_snapshot_updates_total",
            "Snapshots published.",
            "counter",
            self.updates.load(Relaxed).to_string(),
        );
        let last = self.last_update_unix_ms.load(Relaxed);
        let age = if last == 0 {
            0.0
        } else {
            let now_ms = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            now_ms.saturating_sub(last) as f64 / 1e3
        };
        gauge(
            &mut out,
            "disco_snapshot_age_seconds",
            "Seconds since the snapshot last changed.",
            "gauge",
            age.to_string(),
        );
        out.push_str("# HELP disco_registry_up Whether a registry source is connected and current (0: stale or not yet synced).\n");
        out.push_str("# TYPE disco_registry_up gauge\n");
        for source in sources {
            let _ = writeln!(
                out,
                "disco_registry_up{{registry=\"{}\"}} {}",
                label_value(&source.name),
                source.is_current() as u8
            );
        }
        out.push_str("# HELP disco_registry_stale_seconds Seconds a registry source has been unreachable (0 when current).\n");
        out.push_str("# TYPE disco_registry_stale_seconds gauge\n");
        for source in sources {
            let stale = source
                .stale_since
                .and_then(|since| now.duration_since(since).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(
                out,
                "disco_registry_stale_seconds{{registry=\"{}\"}} {stale}",
                label_value(&source.name)
            );
        }
        liveness::render(&mut out, sources, now);
        out.push_str("# HELP disco_registry_skipped_total Registrations skipped as malformed.\n");
        out.push_str("# TYPE disco_registry_skipped_total counter\n");
        for source in sources {
            let _ = writeln!(
                out,
                "disco_registry_skipped_total{{registry=\"{}\"}} {}",
                label_value(&source.name),
                source.skipped
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_counted_by_type_and_rcode() {
        let metrics = Metrics::new();
        metrics.record_query(1, 0, Duration::from_micros(20));
        metrics.record_query(33, 3, Duration::from_micros(2));
        metrics.record_query(999, 9, Duration::from_secs(2));
        let text = metrics.render(&[]);
        assert!(
            text.contains("disco_queries_total{qtype=\"A\",rcode=\"NOERROR\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("disco_queries_total{qtype=\"SRV\",rcode=\"NXDOMAIN\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("disco_queries_total{qtype=\"other\",rcode=\"other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("disco_query_duration_seconds_bucket{le=\"0.00001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("disco_query_duration_seconds_bucket{le=\"0.000025\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("disco_query_duration_seconds_count 3"),
            "{text}"
        );
        assert_eq!(metrics.queries_total(), 3);
    }
}
