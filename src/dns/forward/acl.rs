//! The admission rule: who may use disco as a recursive resolver. Everyone
//! gets disco's own names; only these clients get other names forwarded,
//! so that disco is never an open resolver.

use std::net::IpAddr;

use ipnet::IpNet;

/// Who may use disco as a recursive resolver.
#[derive(Debug, Clone)]
pub struct RecursionAcl {
    allowed: Vec<IpNet>,
}

impl RecursionAcl {
    /// Clients inside `allowed` may have names forwarded.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        RecursionAcl { allowed }
    }

    /// Whether `client` may recurse. An IPv4-mapped IPv6 address counts as
    /// the IPv4 address it carries.
    pub fn allows(&self, client: IpAddr) -> bool {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|net| net.contains(&client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recursion_acl_matches_networks_and_mapped_addresses() {
        let acl = RecursionAcl::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        assert!(acl.allows("127.0.0.1".parse().unwrap()));
        assert!(acl.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!acl.allows("192.0.2.1".parse().unwrap()));
    }
}
