//! Record building: pure functions from the registry model to DNS names and
//! records. No sockets, no snapshot: everything here is unit-tested alone.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};
use ipnet::IpNet;

use crate::model::{Instance, Protocol, ServiceName};

/// `web.disco.internal.` for service `web` in zone `disco.internal.`.
pub fn service_name(service: &ServiceName, zone: &Name) -> Name {
    append(service.as_str(), zone)
}

/// `web-1.web.disco.internal.`: the SRV target and the instance's own name.
pub fn instance_name(instance: &Instance, zone: &Name) -> Name {
    append(&format!("{}.{}", instance.id, instance.service), zone)
}

/// `_web._tcp.disco.internal.`: the RFC 2782 name of a one-label service.
pub fn rfc2782_name(service: &ServiceName, protocol: Protocol, zone: &Name) -> Name {
    append(&format!("_{}.{}", service, protocol.label()), zone)
}

/// `_http._tcp.web.disco.internal.`: the Kubernetes-style named-port name.
pub fn named_port_name(port_name: &str, protocol: Protocol, service_name: &Name) -> Name {
    append(
        &format!("_{}.{}", port_name, protocol.label()),
        service_name,
    )
}

/// `primary.web.disco.internal.`: the tag filter name.
pub fn tag_name(tags: &[&str], service_name: &Name) -> Name {
    append(&tags.join("."), service_name)
}

fn append(relative: &str, zone: &Name) -> Name {
    Name::from_ascii(relative)
        .and_then(|name| name.append_domain(zone))
        .expect("service names and ids are validated DNS labels")
}

/// The A or AAAA record of an instance.
pub fn address_record(owner: &Name, address: IpAddr, ttl: u32) -> Record {
    let rdata = match address {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner.clone(), ttl, rdata)
}

/// The SRV record pointing at an instance's `port`.
pub fn srv_record(owner: &Name, instance: &Instance, port: u16, target: &Name, ttl: u32) -> Record {
    let srv = SRV::new(instance.priority, instance.weight, port, target.clone());
    Record::from_rdata(owner.clone(), ttl, RData::SRV(srv))
}

/// The TXT record carrying an instance's metadata as `key=value` strings
/// (RFC 1464 style), or `None` when it has none.
pub fn meta_record(owner: &Name, instance: &Instance, ttl: u32) -> Option<Record> {
    if instance.meta.is_empty() {
        return None;
    }
    let strings = instance
        .meta
        .texts()
        .map(|text| truncate_character_string(text.to_owned()))
        .collect();
    Some(Record::from_rdata(
        owner.clone(),
        ttl,
        RData::TXT(TXT::new(strings)),
    ))
}

/// A DNS character-string holds at most 255 bytes.
fn truncate_character_string(mut s: String) -> String {
    if s.len() > 255 {
        let mut end = 255;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The PTR record from an address name to an instance name.
pub fn ptr_record(owner: &Name, target: &Name, ttl: u32) -> Record {
    Record::from_rdata(owner.clone(), ttl, RData::PTR(PTR(target.clone())))
}

/// The reverse-lookup name of an address (`5.0.0.10.in-addr.arpa.`).
pub fn arpa_name(address: IpAddr) -> Name {
    Name::from(address)
}

/// Reads the address out of a lowercase wire-format `in-addr.arpa.` or
/// `ip6.arpa.` name; `None` for anything that is not one complete address.
pub fn arpa_address(key: &[u8]) -> Option<IpAddr> {
    arpa_prefix(key)
        .filter(|net| net.prefix_len() == net.max_prefix_len())
        .map(|net| net.addr())
}

/// The addresses a lowercase wire-format reverse name covers: one address
/// for a complete one (`5.0.0.10.in-addr.arpa.`), a network for a name
/// above it (`0.10.in-addr.arpa.` is 10.0.0.0/16). `None` for names that
/// are not below `in-addr.arpa.` or `ip6.arpa.`, or not whole octets or
/// nibbles.
pub fn arpa_prefix(key: &[u8]) -> Option<IpNet> {
    const V4_SUFFIX: &[u8] = b"\x07in-addr\x04arpa\x00";
    const V6_SUFFIX: &[u8] = b"\x03ip6\x04arpa\x00";
    let labels = |bytes: &[u8]| -> Option<Vec<Vec<u8>>> {
        let mut labels = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = bytes[at] as usize;
            labels.push(bytes.get(at + 1..at + 1 + len)?.to_vec());
            at += 1 + len;
        }
        Some(labels)
    };
    if let Some(prefix) = key.strip_suffix(V4_SUFFIX) {
        let labels = labels(prefix)?;
        if labels.is_empty() || labels.len() > 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (i, label) in labels.iter().rev().enumerate() {
            let text = std::str::from_utf8(label).ok()?;
            if text.len() > 1 && text.starts_with('0') {
                return None;
            }
            octets[i] = text.parse().ok()?;
        }
        let len = 8 * labels.len() as u8;
        return IpNet::new(IpAddr::from(octets), len).ok();
    }
    if let Some(prefix) = key.strip_suffix(V6_SUFFIX) {
        let labels = labels(prefix)?;
        if labels.is_empty() || labels.len() > 32 {
            return None;
        }
        let mut bits: u128 = 0;
        for label in labels.iter().rev() {
            let [digit] = label.as_slice() else {
                return None;
            };
            bits = (bits << 4) | (*digit as char).to_digit(16)? as u128;
        }
        let len = 4 * labels.len() as u8;
        let bits = bits.checked_shl(128 - len as u32).unwrap_or(0);
        return IpNet::new(IpAddr::from(bits.to_be_bytes()), len).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceId;

    fn web_1() -> Instance {
        let mut i = Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new("web-1").unwrap(),
            "10.0.0.5".parse().unwrap(),
        );
        i.port = Some(8080);
        i.meta = [("version", "1.4.2")].into_iter().collect();
        i
    }

    fn zone() -> Name {
        Name::from_ascii("disco.internal.").unwrap()
    }

    #[test]
    fn names_follow_the_design_table() {
        let i = web_1();
        let service = service_name(&i.service, &zone());
        assert_eq!(service.to_ascii(), "web.disco.internal.");
        assert_eq!(
            instance_name(&i, &zone()).to_ascii(),
            "web-1.web.disco.internal."
        );
        assert_eq!(
            rfc2782_name(&i.service, Protocol::Tcp, &zone()).to_ascii(),
            "_web._tcp.disco.internal."
        );
        assert_eq!(
            named_port_name("http", Protocol::Tcp, &service).to_ascii(),
            "_http._tcp.web.disco.internal."
        );
        assert_eq!(
            tag_name(&["v2", "primary"], &service).to_ascii(),
            "v2.primary.web.disco.internal."
        );
        assert_eq!(arpa_name(i.address).to_ascii(), "5.0.0.10.in-addr.arpa.");
    }

    #[test]
    fn srv_carries_priority_weight_port_and_target() {
        let i = web_1();
        let target = instance_name(&i, &zone());
        let record = srv_record(&service_name(&i.service, &zone()), &i, 8080, &target, 5);
        let RData::SRV(srv) = &record.data else {
            panic!("not SRV")
        };
        assert_eq!((srv.priority, srv.weight, srv.port), (0, 100, 8080));
        assert_eq!(srv.target, target);
        assert_eq!(record.ttl, 5);
    }

    #[test]
    fn meta_becomes_key_value_strings() {
        let i = web_1();
        let record = meta_record(&zone(), &i, 5).unwrap();
        assert_eq!(record.data.to_string(), "version=1.4.2");
        let mut bare = i.clone();
        bare.meta = Default::default();
        assert!(meta_record(&zone(), &bare, 5).is_none());
    }

    #[test]
    fn arpa_names_read_back_into_addresses() {
        for address in ["10.0.0.5", "fd00::1:2", "255.255.255.255"] {
            let address: IpAddr = address.parse().unwrap();
            let mut wire = Vec::new();
            for label in arpa_name(address).iter() {
                wire.push(label.len() as u8);
                wire.extend_from_slice(label);
            }
            wire.push(0);
            assert_eq!(arpa_address(&wire), Some(address));
        }
        assert_eq!(arpa_address(b"\x010\x07in-addr\x04arpa\x00"), None);
        assert_eq!(
            arpa_address(b"\x03256\x010\x010\x010\x07in-addr\x04arpa\x00"),
            None
        );
    }

    #[test]
    fn names_above_a_reverse_name_cover_networks() {
        let net = |key: &[u8]| arpa_prefix(key).map(|net| net.to_string());
        assert_eq!(
            net(b"\x010\x0210\x07in-addr\x04arpa\x00").as_deref(),
            Some("10.0.0.0/16")
        );
        assert_eq!(
            net(b"\x01d\x01f\x03ip6\x04arpa\x00").as_deref(),
            Some("fd00::/8")
        );
        assert_eq!(
            net(b"\x015\x010\x010\x0210\x07in-addr\x04arpa\x00").as_deref(),
            Some("10.0.0.5/32")
        );
        // Not below the reverse trees, or not octets.
        assert_eq!(net(b"\x07in-addr\x04arpa\x00"), None);
        assert_eq!(net(b"\x03web\x07in-addr\x04arpa\x00"), None);
        assert_eq!(net(b"\x0200\x07in-addr\x04arpa\x00"), None);
    }
}
