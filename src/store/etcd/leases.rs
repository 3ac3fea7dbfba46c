//! The granted TTL of the leases SkyDNS keys are attached to, fetched once
//! per lease (a lease's granted TTL does not change) and forgotten when no
//! key uses the lease any more.

use std::collections::HashMap;
use std::time::Duration;

use etcd_client::LeaseClient;
use tokio::task::JoinSet;

/// TimeToLive requests in flight at once while a listing is read.
const CONCURRENT_FETCHES: usize = 64;
/// How long one TimeToLive request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Lease {
    /// The granted TTL; `None` for a lease that has expired, or whose TTL
    /// could not be read.
    ttl: Option<u32>,
    /// Whether `ttl` has been fetched.
    known: bool,
    /// Keys attached to it.
    keys: usize,
}

/// Lease TTLs, and which key is on which lease.
#[derive(Debug, Default)]
pub(super) struct LeaseTtls {
    leases: HashMap<i64, Lease>,
    keys: HashMap<String, i64>,
}

impl LeaseTtls {
    /// The granted TTL of `lease`, if known.
    pub fn ttl(&self, lease: i64) -> Option<u32> {
        self.leases.get(&lease).and_then(|l| l.ttl)
    }

    /// Forgets which key is on which lease (a listing follows) but keeps the
    /// TTLs until [`LeaseTtls::prune`], so a resync fetches only new leases
    /// (and those that could not be read last time).
    pub fn forget_keys(&mut self) {
        self.keys.clear();
        self.leases.retain(|_, lease| lease.ttl.is_some());
        for lease in self.leases.values_mut() {
            lease.keys = 0;
        }
    }

    /// Drops leases no key uses.
    pub fn prune(&mut self) {
        self.leases.retain(|_, lease| lease.keys > 0);
    }

    /// Records that `key` is on `lease` (0: on none).
    pub fn attach(&mut self, key: &str, lease: i64) {
        self.detach(key);
        if lease == 0 {
            return;
        }
        self.keys.insert(key.to_owned(), lease);
        self.leases
            .entry(lease)
            .or_insert(Lease {
                ttl: None,
                known: false,
                keys: 0,
            })
            .keys += 1;
    }

    /// Records that `key` is gone.
    pub fn detach(&mut self, key: &str) {
        let Some(lease) = self.keys.remove(key) else {
            return;
        };
        if let Some(entry) = self.leases.get_mut(&lease) {
            entry.keys -= 1;
            if entry.keys == 0 {
                self.leases.remove(&lease);
            }
        }
    }

    /// Fetches the TTL of every attached lease not yet known, a few at a
    /// time.
    pub async fn fetch_unknown(&mut self, client: &LeaseClient) {
        let mut unknown: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, l)| !l.known)
            .map(|(&id, _)| id)
            .collect();
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < CONCURRENT_FETCHES
                && let Some(id) = unknown.pop()
            {
                let mut client = client.clone();
                tasks.spawn(async move {
                    let result =
                        tokio::time::timeout(FETCH_TIMEOUT, client.time_to_live(id, None)).await;
                    (id, result)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let Ok((id, result)) = joined else { continue };
            // A lease whose TTL cannot be read counts as known without one,
            // so a denied or failing request is not repeated for every
            // change; the next resync tries again.
            let ttl = match result {
                // -1: the lease has expired; its keys are about to go.
                Ok(Ok(response)) if response.ttl() == -1 => None,
                Ok(Ok(response)) => u32::try_from(response.granted_ttl()).ok(),
                Ok(Err(e)) => {
                    tracing::debug!(lease = id, error = %e, "cannot read an etcd lease's TTL");
                    None
                }
                Err(_) => {
                    tracing::debug!(lease = id, "reading an etcd lease's TTL timed out");
                    None
                }
            };
            if let Some(lease) = self.leases.get_mut(&id) {
                lease.ttl = ttl;
                lease.known = true;
            }
        }
    }

    /// Whether some attached lease's TTL is not yet known.
    pub fn any_unknown(&self) -> bool {
        self.leases.values().any(|l| !l.known)
    }

    /// How many leases are tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.leases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_kept_while_a_key_uses_them() {
        let mut ttls = LeaseTtls::default();
        ttls.attach("/a", 7);
        ttls.attach("/b", 7);
        ttls.attach("/c", 0);
        assert_eq!(ttls.len(), 1);
        assert!(ttls.any_unknown());
        ttls.detach("/a");
        assert_eq!(ttls.len(), 1);
        ttls.attach("/b", 8);
        assert_eq!(ttls.len(), 1);
        ttls.detach("/b");
        assert_eq!(ttls.len(), 0);
    }

    #[test]
    fn a_listing_keeps_only_the_leases_it_uses() {
        let mut ttls = LeaseTtls::default();
        ttls.attach("/a", 1);
        ttls.attach("/b", 2);
        ttls.forget_keys();
        ttls.attach("/a", 1);
        ttls.prune();
        assert_eq!(ttls.len(), 1);
        ttls.detach("/a");
        assert_eq!(ttls.len(), 0);
    }
}
