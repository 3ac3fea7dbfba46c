//! The open TCP connections, and the caps on them: in total, and per client
//! address (an IPv6 client counts by its /64, which one host can fill with
//! addresses at will).
//!
//! At the per-client cap a new connection is refused: one address holding
//! that many connections is no stub resolver (RFC 7766 §6.2.2 asks clients
//! for one), and refusing it is BIND's `tcp-clients` quota behaviour. At the
//! total cap the connection idle the longest (no query being answered) is
//! closed to make room, and a new one is refused only when every connection
//! is busy: refusing while idle connections sit would let a client that
//! opens connections and sends nothing lock everyone else out, and a server
//! may close an idle connection at any time (RFC 7766 §6.2.3), which clients
//! handle by reconnecting. Knot closes its most inactive connections the
//! same way when its TCP buffers run short.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::TcpRefusal;

/// Queries at most in flight on one connection (read, not yet answered):
/// enough for a resolver pipelining its retries; more wait unread in the
/// socket, which holds the client back through TCP's own flow control.
pub const MAX_PIPELINED: usize = 16;

/// The caps on TCP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, in all.
    pub total: usize,
    /// Connections open at once from one client address (IPv6: one /64).
    pub per_client: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            total: 1024,
            per_client: 64,
        }
    }
}

/// What one connection shares with the table: when it last read a query or
/// wrote an answer, its queries in flight, and the token that closes it.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    last_ms: AtomicU64,
    /// [`MAX_PIPELINED`] permits, one held by each query in flight.
    pub queries: Arc<Semaphore>,
    /// Cancelled to close the connection (eviction, or server shutdown).
    pub close: CancellationToken,
}

impl Activity {
    /// Records activity now.
    pub fn touch(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
    }

    /// When the connection last read a query or wrote an answer.
    pub fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Relaxed))
    }

    /// Whether a query is being answered.
    pub fn busy(&self) -> bool {
        self.queries.available_permits() < MAX_PIPELINED
    }
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, (IpAddr, Arc<Activity>)>,
    per_client: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<Activity>> {
        let (client, activity) = self.open.remove(&id)?;
        if let Some(count) = self.per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&client);
            }
        }
        Some(activity)
    }
}

/// The open connections of one server (every listener shares it).
#[derive(Debug)]
pub struct Connections {
    limits: TcpLimits,
    epoch: Instant,
    /// A std mutex: taken once when a connection opens and once when it
    /// closes, never across an await.
    table: Mutex<Table>,
}

/// A connection admitted into the table; leaves it when dropped.
#[derive(Debug)]
pub struct Admitted {
    id: u64,
    connections: Arc<Connections>,
    /// Shared with the table, for the idle-connection choice.
    pub activity: Arc<Activity>,
    /// Whether an idle connection was closed to make room for this one.
    pub evicted_one: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().remove(self.id);
    }
}

impl Connections {
    /// An empty table with these caps.
    pub fn new(limits: TcpLimits) -> Self {
        Connections {
            limits,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Nothing panics while holding it; if it did, the table is still
        // whole (every change is one insert or one remove).
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `client`, closing the idlest one if the
    /// total cap is reached, or says why not. `shutdown` is the server's:
    /// the connection's token is its child.
    pub fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        shutdown: &CancellationToken,
    ) -> Result<Admitted, TcpRefusal> {
        let client = client_key(client);
        let mut table = self.lock();
        if table.per_client.get(&client).copied().unwrap_or(0) >= self.limits.per_client {
            return Err(TcpRefusal::PerClient);
        }
        let mut evicted_one = false;
        if table.open.len() >= self.limits.total {
            let idlest = table
                .open
                .iter()
                .filter(|(_, (_, activity))| !activity.busy())
                // Idle for as long to the millisecond: the older goes (ids
                // grow), not whichever the map happens to yield first.
                .min_by_key(|(id, (_, activity))| (activity.last_ms.load(Relaxed), **id))
                .map(|(&id, _)| id);
            let Some(activity) = idlest.and_then(|id| table.remove(id)) else {
                return Err(TcpRefusal::Total);
            };
            activity.close.cancel();
            evicted_one = true;
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Arc::new(Activity {
            epoch: self.epoch,
            last_ms: AtomicU64::new(0),
            queries: Arc::new(Semaphore::new(MAX_PIPELINED)),
            close: shutdown.child_token(),
        });
        activity.touch();
        table.open.insert(id, (client, activity.clone()));
        *table.per_client.entry(client).or_default() += 1;
        Ok(Admitted {
            id,
            connections: self.clone(),
            activity,
            evicted_one,
        })
    }
}

/// The address a client's connections are counted under: an IPv4 address,
/// or an IPv6 address's /64.
fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(total: usize, per_client: usize) -> Arc<Connections> {
        Arc::new(Connections::new(TcpLimits { total, per_client }))
    }

    #[test]
    fn one_client_is_refused_past_its_cap_and_others_still_admitted() {
        let connections = table(10, 2);
        let shutdown = CancellationToken::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = connections.admit(a, &shutdown).unwrap();
        let _second = connections.admit(a, &shutdown).unwrap();
        assert_eq!(
            connections.admit(a, &shutdown).unwrap_err(),
            TcpRefusal::PerClient
        );
        let _other = connections.admit(b, &shutdown).unwrap();
        drop(first);
        let _again = connections.admit(a, &shutdown).unwrap();
    }

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        let connections = table(10, 1);
        let shutdown = CancellationToken::new();
        let _one = connections
            .admit("2001:db8::1".parse().unwrap(), &shutdown)
            .unwrap();
        assert!(
            connections
                .admit("2001:db8::ffff:2".parse().unwrap(), &shutdown)
                .is_err()
        );
        let _other = connections
            .admit("2001:db8:0:1::1".parse().unwrap(), &shutdown)
            .unwrap();
    }

    #[test]
    fn at_the_total_cap_the_idlest_is_closed_and_busy_ones_are_kept() {
        let connections = table(2, 10);
        let shutdown = CancellationToken::new();
        let old = connections
            .admit("192.0.2.1".parse().unwrap(), &shutdown)
            .unwrap();
        let busy = connections
            .admit("192.0.2.2".parse().unwrap(), &shutdown)
            .unwrap();
        let _query = busy.activity.queries.clone().try_acquire_owned().unwrap();
        let new = connections
            .admit("192.0.2.3".parse().unwrap(), &shutdown)
            .unwrap();
        assert!(new.evicted_one);
        assert!(old.activity.close.is_cancelled());
        assert!(!busy.activity.close.is_cancelled());
        // Now one is busy and the other just came: make it busy too.
        let _other = new.activity.queries.clone().try_acquire_owned().unwrap();
        assert_eq!(
            connections
                .admit("192.0.2.4".parse().unwrap(), &shutdown)
                .unwrap_err(),
            TcpRefusal::Total
        );
        // The evicted one leaving does not free a second place.
        drop(old);
        assert!(
            connections
                .admit("192.0.2.4".parse().unwrap(), &shutdown)
                .is_err()
        );
    }
}
