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
/// are not below `in-addr.arpa.` or `ip6.arpa.`, or not in the canonical
/// form [`arpa_name`] writes: an `in-addr.arpa.` label is plain decimal
/// digits (no sign, no leading zero, at most 255), an `ip6.arpa.` label one
/// hex digit. Anything else (`+5`, `05`, `0x5`) is no address name: looking
/// it up as the address it resembles would answer a question other than
/// the one asked.
pub fn arpa_prefix(key: &[u8]) -> Option<IpNet> {
    const V4_SUFFIX: &[u8] = b"\x07in-addr\x04arpa\x00";
    const V6_SUFFIX: &[u8] = b"\x03ip6\x04arpa\x00";
    if let Some(prefix) = key.strip_suffix(V4_SUFFIX) {
        let mut octets = [0u8; 4];
        let mut count = 0;
        for label in wire_labels(prefix) {
            if count == 4 {
                return None;
            }
            octets[count] = decimal_octet(label?)?;
            count += 1;
        }
        if count == 0 {
            return None;
        }
        // The labels run from the last octet of the network to its first.
        octets[..count].reverse();
        return IpNet::new(IpAddr::from(octets), 8 * count as u8).ok();
    }
    if let Some(prefix) = key.strip_suffix(V6_SUFFIX) {
        let mut nibbles = [0u8; 32];
        let mut count = 0;
        for label in wire_labels(prefix) {
            if count == 32 {
                return None;
            }
            let [digit] = label? else {
                return None;
            };
            nibbles[count] = (*digit as char).to_digit(16)? as u8;
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let bits = (nibbles[..count].iter().rev()).fold(0u128, |bits, &n| (bits << 4) | n as u128);
        let len = 4 * count as u8;
        let bits = bits.checked_shl(128 - len as u32).unwrap_or(0);
        return IpNet::new(IpAddr::from(bits.to_be_bytes()), len).ok();
    }
    None
}

/// The labels of the wire-format name part `bytes` (no terminating root),
/// without allocating: `Some(label)` each, `None` once where a length runs
/// past the end.
fn wire_labels(bytes: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let len = bytes[at] as usize;
        let label = bytes.get(at + 1..at + 1 + len);
        at = if label.is_some() {
            at + 1 + len
        } else {
            bytes.len()
        };
        Some(label)
    })
}

/// An `in-addr.arpa.` label's octet, in the only spelling [`arpa_name`]
/// writes: `0`, or 1 to 3 decimal digits without a leading zero, at most
/// 255. `str::parse` would also take `+5`.
fn decimal_octet(label: &[u8]) -> Option<u8> {
    let canonical = matches!(label, [b'0'] | [b'1'..=b'9', ..])
        && label.len() <= 3
        && label.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    let value = (label.iter()).fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'));
    u8::try_from(value).ok()
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

    #[test]
    fn only_canonical_labels_make_an_address_name() {
        let net = |key: &[u8]| arpa_prefix(key).map(|net| net.to_string());
        // dig -q +5.0.0.10.in-addr.arpa: a sign is not an octet.
        assert_eq!(net(b"\x02+5\x010\x010\x0210\x07in-addr\x04arpa\x00"), None);
        for label in [
            &b"05"[..],
            b"256",
            b"1000",
            b"-1",
            b"5 ",
            b"",
            b"0x5",
            b"\xd9\xa5",
        ] {
            let mut key = vec![label.len() as u8];
            key.extend_from_slice(label);
            key.extend_from_slice(b"\x010\x010\x0210\x07in-addr\x04arpa\x00");
            assert_eq!(net(&key), None, "{label:?}");
        }
        assert_eq!(
            net(b"\x03255\x010\x010\x0210\x07in-addr\x04arpa\x00").as_deref(),
            Some("10.0.0.255/32")
        );
        // Five octets, a label running past the end, two-digit nibbles.
        assert_eq!(
            net(b"\x011\x011\x011\x011\x011\x07in-addr\x04arpa\x00"),
            None
        );
        assert_eq!(net(b"\x051\x07in-addr\x04arpa\x00"), None);
        assert_eq!(net(b"\x02dd\x03ip6\x04arpa\x00"), None);
        assert_eq!(net(b"\x01g\x03ip6\x04arpa\x00"), None);
        let too_long: Vec<u8> = (0..33)
            .flat_map(|_| *b"\x010")
            .chain(*b"\x03ip6\x04arpa\x00")
            .collect();
        assert_eq!(net(&too_long), None);
    }
}
