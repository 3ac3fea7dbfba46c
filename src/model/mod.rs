//! The registry model: services and their instances, independent of any store
//! and of DNS. Backends turn store entries into [`Instance`]s; the DNS side
//! turns instances into records.

mod meta;
mod name;
mod native;
mod nerve;
mod ports;
mod shared;
mod skydns;
mod tags;

use std::net::IpAddr;

pub use meta::Meta;
pub use name::{InstanceId, NameError, ServiceName};
pub use native::{NativeError, native_value, parse_native};
pub use nerve::{NerveError, NerveName, nerve_json, nerve_name, parse_nerve};
pub use ports::Ports;
pub use skydns::{SkyEntry, SkyError, parse_skydns, skydns_key, skydns_name, skydns_value};
pub use tags::Tags;

/// Transport protocol an instance's ports speak, used in SRV owner names
/// (`_web._tcp`, `_web._udp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// `_tcp`
    #[default]
    Tcp,
    /// `_udp`
    Udp,
}

impl Protocol {
    /// The label used in SRV names, with its leading underscore.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "_tcp",
            Protocol::Udp => "_udp",
        }
    }
}

/// Default SRV priority of a native registration.
pub const DEFAULT_PRIORITY: u16 = 0;
/// Default SRV weight of a native registration.
pub const DEFAULT_WEIGHT: u16 = 100;

/// One registered instance of a service.
///
/// A server holds one per registration, a million of them or more, so the
/// metadata is one block sized to its contents, and its service name, tag
/// list and port map are copies shared by every instance with the same
/// ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service it belongs to.
    pub service: ServiceName,
    /// Its id, a DNS label unique within the service.
    pub id: InstanceId,
    /// Where it listens.
    pub address: IpAddr,
    /// Its primary port, used by the plain SRV answers.
    pub port: Option<u16>,
    /// Named ports, answered as `_name._proto.<service>` SRV records.
    pub ports: Ports,
    /// Protocol of its ports.
    pub protocol: Protocol,
    /// Tags, lowercased, each once; each is a filter label under the
    /// service name.
    pub tags: Tags,
    /// SRV priority.
    pub priority: u16,
    /// SRV weight.
    pub weight: u16,
    /// Answer TTL in seconds; `None` means the server's default.
    pub ttl: Option<u32>,
    /// Free-form metadata, answered as TXT `key=value` strings.
    pub meta: Meta,
}

impl Instance {
    /// A minimal instance: the given address, every optional field at its
    /// default.
    pub fn new(service: ServiceName, id: InstanceId, address: IpAddr) -> Self {
        Instance {
            service,
            id,
            address,
            port: None,
            ports: Ports::default(),
            protocol: Protocol::Tcp,
            tags: Tags::default(),
            priority: DEFAULT_PRIORITY,
            weight: DEFAULT_WEIGHT,
            ttl: None,
            meta: Meta::default(),
        }
    }

    /// Whether the instance carries `tag` (tags are stored lowercased).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| **t == *tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_with_its_reference_counts_fits_112_bytes() {
        // A million of them: past 112 bytes, mimalloc's next size classes
        // are 128 and 160 (bench/heap.rs).
        assert!(std::mem::size_of::<Instance>() + 2 * std::mem::size_of::<usize>() <= 112);
    }
}
