//! The reverse index: the instances at each registered address, answered
//! as PTR at its reverse name.
//!
//! IPv4 and IPv6 addresses sit in maps of their own. One map keyed by
//! `IpAddr` (17 bytes, beside a 16-byte entry) spent 40 bytes on each
//! entry; IPv4's own spends 24, 15 MiB less at a million IPv4 instances.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::nodes::ReverseEntry;
use super::sharded::ShardedMap;

/// Every registered address and its instances, cloned in O(1).
#[derive(Clone)]
pub(crate) struct ReverseIndex {
    v4: ShardedMap<Ipv4Addr, ReverseEntry>,
    v6: ShardedMap<Ipv6Addr, ReverseEntry>,
}

impl ReverseIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        ReverseIndex {
            v4: ShardedMap::new(),
            v6: ShardedMap::new(),
        }
    }

    /// The instances at `address`.
    pub(crate) fn get(&self, address: &IpAddr) -> Option<&ReverseEntry> {
        match address {
            IpAddr::V4(address) => self.v4.get(address),
            IpAddr::V6(address) => self.v6.get(address),
        }
    }

    /// Every address and its entry, in no particular order.
    #[cfg(feature = "fuzzing")] // for the RRset listing only
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpAddr, &ReverseEntry)> {
        let v4 = (self.v4.iter()).map(|(address, entry)| (IpAddr::V4(*address), entry));
        let v6 = (self.v6.iter()).map(|(address, entry)| (IpAddr::V6(*address), entry));
        v4.chain(v6)
    }

    /// Updates the addresses `items` are about, as
    /// [`ShardedMap::update`] does: `entry` gets an address, the items at
    /// it and its entry now, and returns its entry from now on.
    pub(crate) fn update<T>(
        &mut self,
        items: Vec<T>,
        address: impl Fn(&T) -> IpAddr,
        mut entry: impl FnMut(IpAddr, &[T], Option<&ReverseEntry>) -> Option<ReverseEntry>,
    ) {
        let (v4, v6): (Vec<T>, Vec<T>) = (items.into_iter()).partition(|t| address(t).is_ipv4());
        // Each map is given only its own family's items, so the other
        // arm of each match below is never taken.
        (self.v4).update(
            v4,
            |t| match address(t) {
                IpAddr::V4(address) => address,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            },
            |&address, items, now| entry(IpAddr::V4(address), items, now),
        );
        (self.v6).update(
            v6,
            |t| match address(t) {
                IpAddr::V6(address) => address,
                IpAddr::V4(address) => address.to_ipv6_mapped(),
            },
            |&address, items, now| entry(IpAddr::V6(address), items, now),
        );
    }
}

impl fmt::Debug for ReverseIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReverseIndex")
            .field("v4", &self.v4)
            .field("v6", &self.v6)
            .finish()
    }
}
