//! The SkyDNS / CoreDNS `etcd` plugin format: records stored under reversed
//! DNS labels (`/skydns/internal/disco/web/x1` is `x1.web.disco.internal.`),
//! each a JSON object `host, port, priority, weight, text, ttl, targetstrip,
//! group`. Unlike native registrations these are records at names, answered
//! with CoreDNS's subtree semantics (see `crate::dns::skydns`).

/// One SkyDNS entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkyEntry {
    /// The full store key: the entry's identity.
    pub key: String,
    /// The DNS name the key stands for, lowercase, dotted, no trailing dot.
    pub name: String,
    /// An IPv4 or IPv6 address, or a host name (answered as CNAME or SRV target).
    pub host: String,
    /// SRV port; 0 when absent.
    pub port: u16,
    /// SRV priority as stored; `None` when absent (CoreDNS's default is 10).
    pub priority: Option<u16>,
    /// SRV weight as stored; `None` when absent (CoreDNS's default is 100).
    pub weight: Option<u16>,
    /// TXT text; empty when absent.
    pub text: String,
    /// TTL in seconds; `None` when absent.
    pub ttl: Option<u32>,
    /// Labels to strip from the left of the SRV target name.
    pub target_strip: u32,
    /// Answer group (CoreDNS `group`); empty when absent.
    pub group: String,
    /// The TTL the entry's lease was granted with, if it is on one.
    pub lease_ttl: Option<u32>,
}
