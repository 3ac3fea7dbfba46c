//! The DNS-over-TCP connection counters: open, accepted, refused at a cap,
//! and closed, each by why.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why a connection was refused as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpRefusal {
    /// The client's address already had the most connections allowed.
    PerClient,
    /// The server had the most connections allowed, none of them idle.
    Total,
}

impl TcpRefusal {
    const ALL: [TcpRefusal; 2] = [TcpRefusal::PerClient, TcpRefusal::Total];

    fn label(self) -> &'static str {
        match self {
            TcpRefusal::PerClient => "per_client",
            TcpRefusal::Total => "total",
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpClose {
    /// The client closed it (or reset it).
    Client,
    /// No query came for the idle timeout, none being answered.
    Idle,
    /// A message, once begun, did not arrive whole in time (a slow writer).
    SlowRead,
    /// An answer could not be written in time (a client that does not read).
    SlowWrite,
    /// Closed, idle, to make room for a new connection at the total cap.
    Evicted,
    /// Bytes that are no DNS query (a length shorter than a header, or a
    /// message that is not a query).
    Malformed,
    /// The server is shutting down.
    Shutdown,
}

impl TcpClose {
    const ALL: [TcpClose; 7] = [
        TcpClose::Client,
        TcpClose::Idle,
        TcpClose::SlowRead,
        TcpClose::SlowWrite,
        TcpClose::Evicted,
        TcpClose::Malformed,
        TcpClose::Shutdown,
    ];

    fn label(self) -> &'static str {
        match self {
            TcpClose::Client => "client",
            TcpClose::Idle => "idle",
            TcpClose::SlowRead => "slow_read",
            TcpClose::SlowWrite => "slow_write",
            TcpClose::Evicted => "evicted",
            TcpClose::Malformed => "malformed",
            TcpClose::Shutdown => "shutdown",
        }
    }
}

/// TCP connection counters. Touched once per connection, not per query.
#[derive(Debug, Default)]
pub struct TcpMetrics {
    open: AtomicI64,
    accepted: AtomicU64,
    refused: [AtomicU64; TcpRefusal::ALL.len()],
    closed: [AtomicU64; TcpClose::ALL.len()],
}

impl TcpMetrics {
    /// Counts a connection accepted and now open.
    pub fn record_accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
        self.open.fetch_add(1, Relaxed);
    }

    /// Counts a connection refused as it came (closed at once, unread).
    pub fn record_refused(&self, why: TcpRefusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    /// Counts an accepted connection closed.
    pub fn record_closed(&self, why: TcpClose) {
        self.closed[why as usize].fetch_add(1, Relaxed);
        self.open.fetch_sub(1, Relaxed);
    }

    /// Connections closed for `why` so far, for tests and logs.
    pub fn closed(&self, why: TcpClose) -> u64 {
        self.closed[why as usize].load(Relaxed)
    }

    /// Appends the Prometheus text of these counters to `out`.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP disco_tcp_connections_open DNS-over-TCP connections open.\n\
             # TYPE disco_tcp_connections_open gauge\n\
             disco_tcp_connections_open {}",
            self.open.load(Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP disco_tcp_connections_accepted_total DNS-over-TCP connections accepted.\n\
             # TYPE disco_tcp_connections_accepted_total counter\n\
             disco_tcp_connections_accepted_total {}",
            self.accepted.load(Relaxed)
        );
        out.push_str(
            "# HELP disco_tcp_connections_refused_total DNS-over-TCP connections closed as they came, at a cap: per client address, or in total with none idle.\n\
             # TYPE disco_tcp_connections_refused_total counter\n",
        );
        for why in TcpRefusal::ALL {
            let _ = writeln!(
                out,
                "disco_tcp_connections_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                self.refused[why as usize].load(Relaxed)
            );
        }
        out.push_str(
            "# HELP disco_tcp_connections_closed_total DNS-over-TCP connections closed, by reason.\n\
             # TYPE disco_tcp_connections_closed_total counter\n",
        );
        for why in TcpClose::ALL {
            let _ = writeln!(
                out,
                "disco_tcp_connections_closed_total{{reason=\"{}\"}} {}",
                why.label(),
                self.closed(why)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_rendered_with_its_count() {
        let tcp = TcpMetrics::default();
        tcp.record_accepted();
        tcp.record_accepted();
        tcp.record_closed(TcpClose::SlowWrite);
        tcp.record_refused(TcpRefusal::PerClient);
        let mut text = String::new();
        tcp.render(&mut text);
        for line in [
            "disco_tcp_connections_open 1",
            "disco_tcp_connections_accepted_total 2",
            "disco_tcp_connections_refused_total{reason=\"per_client\"} 1",
            "disco_tcp_connections_refused_total{reason=\"total\"} 0",
            "disco_tcp_connections_closed_total{reason=\"slow_write\"} 1",
            "disco_tcp_connections_closed_total{reason=\"idle\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
