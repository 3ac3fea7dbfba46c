//! `--address auto`: the address other containers reach this one at. The
//! address of the interface the default route leaves by (IPv4 first, then
//! IPv6, so an IPv6-only host works); with no default route, the first
//! address the host name resolves to that is not loopback. The choice is
//! pure ([`choose`]); [`auto`] reads the host's routes and interfaces.

use std::net::{IpAddr, ToSocketAddrs};

/// The interface of the IPv4 default route in `/proc/net/route`'s text.
fn default_v4_interface(routes: &str) -> Option<&str> {
    routes.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask …
        (fields.len() > 7 && fields[1] == "00000000" && fields[7] == "00000000").then(|| fields[0])
    })
}

/// The interface of the IPv6 default route in `/proc/net/ipv6_route`'s
/// text (`::/0`, not through `lo`, which holds unreachable routes).
fn default_v6_interface(routes: &str) -> Option<&str> {
    routes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.len() == 10
            && fields[0] == "00000000000000000000000000000000"
            && fields[1] == "00"
            && fields[9] != "lo")
            .then(|| fields[9])
    })
}

/// Whether `ip` can be reached from another host: not loopback,
/// unspecified or (for IPv6) link-local, which needs a zone.
fn routable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// The address to register, from the routing tables, the interfaces'
/// addresses and the host name's addresses.
pub fn choose(
    v4_routes: &str,
    v6_routes: &str,
    interfaces: &[(String, IpAddr)],
    host_addresses: &[IpAddr],
) -> Option<IpAddr> {
    let on = |interface: &str, v4: bool| {
        interfaces
            .iter()
            .filter(|(name, ip)| name == interface && ip.is_ipv4() == v4 && routable(ip))
            .map(|(_, ip)| *ip)
            .next()
    };
    default_v4_interface(v4_routes)
        .and_then(|interface| on(interface, true))
        .or_else(|| default_v6_interface(v6_routes).and_then(|interface| on(interface, false)))
        .or_else(|| host_addresses.iter().copied().find(routable))
}

/// `--address auto` found nothing to register: no default route with an
/// address, and no routable address for the host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no default route with an address, and the host name {host:?} has no routable address")]
pub struct NoAutoAddress {
    /// The host name looked up.
    pub host: String,
}

/// `--address auto` on this host.
pub fn auto() -> Result<IpAddr, NoAutoAddress> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let interfaces: Vec<(String, IpAddr)> = nix::ifaddrs::getifaddrs()
        .map(|addresses| {
            addresses
                .filter_map(|a| {
                    let address = a.address?;
                    let ip = if let Some(v4) = address.as_sockaddr_in() {
                        IpAddr::V4(v4.ip())
                    } else {
                        IpAddr::V6(address.as_sockaddr_in6()?.ip())
                    };
                    Some((a.interface_name, ip))
                })
                .collect()
        })
        .unwrap_or_default();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let host_addresses: Vec<IpAddr> = (host.as_str(), 0)
        .to_socket_addrs()
        .map(|addresses| addresses.map(|a| a.ip()).collect())
        .unwrap_or_default();
    choose(
        &read("/proc/net/route"),
        &read("/proc/net/ipv6_route"),
        &interfaces,
        &host_addresses,
    )
    .ok_or(NoAutoAddress { host })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
    const V6: &str = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n\
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";

    fn interfaces() -> Vec<(String, IpAddr)> {
        [
            ("lo", "127.0.0.1"),
            ("eth0", "172.17.0.5"),
            ("eth1", "fe80::5"),
            ("eth1", "fd00::5"),
        ]
        .iter()
        .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
        .collect()
    }

    #[test]
    fn the_default_routes_interface_wins_ipv4_first() {
        assert_eq!(
            choose(V4, V6, &interfaces(), &[]),
            Some("172.17.0.5".parse().unwrap())
        );
    }

    #[test]
    fn an_ipv6_only_host_gets_its_global_ipv6_address() {
        let header_only = V4.lines().next().unwrap();
        assert_eq!(
            choose(header_only, V6, &interfaces(), &[]),
            Some("fd00::5".parse().unwrap())
        );
    }

    #[test]
    fn without_a_default_route_the_host_name_decides() {
        let host = ["127.0.1.1".parse().unwrap(), "10.1.2.3".parse().unwrap()];
        assert_eq!(
            choose("", "", &interfaces(), &host),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            choose("", "", &interfaces(), &["::1".parse().unwrap()]),
            None
        );
    }
}
