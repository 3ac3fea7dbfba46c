//! The rules of CoreDNS's `etcd` plugin, as small pure functions: what an
//! entry's host makes it, which entries a wildcard name matches, which group
//! answers, how SRV weights split, how targets are stripped, what TTL an
//! entry gets, how text becomes TXT strings. Each names the CoreDNS code it
//! follows (coredns/coredns, `plugin/etcd/` and `plugin/backend_lookup.go`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use crate::model::SkyEntry;

/// SRV priority of an entry without one, or with 0 (`defaultPriority`,
/// `plugin/etcd/etcd.go`: `if serv.Priority == 0 { serv.Priority = ... }`).
pub(crate) const DEFAULT_PRIORITY: u16 = 10;

/// SRV weight of an entry without one, or with 0 (`backend_lookup.go`).
const DEFAULT_WEIGHT: u16 = 100;

/// One indexed entry and the source holding it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) source: usize,
    pub(crate) entry: Arc<SkyEntry>,
}

/// What an entry's host makes it (`msg.Service.HostType`): an address, a
/// name (answered as a CNAME), or, for a name or no host with `text`, a TXT
/// record only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostType {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname,
    Txt,
}

impl Item {
    pub(crate) fn host_type(&self) -> HostType {
        match parse_ip(&self.entry.host) {
            Some(IpAddr::V4(v4)) => HostType::A(v4),
            Some(IpAddr::V6(v6)) => HostType::Aaaa(v6),
            None if self.entry.text.is_empty() => HostType::Cname,
            None => HostType::Txt,
        }
    }

    /// The host as a fully qualified name, when it is not an address: the
    /// CNAME, SRV, NS or PTR target.
    pub(crate) fn host_name(&self) -> Option<Name> {
        let host = &self.entry.host;
        if host.is_empty() || parse_ip(host).is_some() {
            return None;
        }
        let mut name = Name::from_ascii(host).ok()?;
        name.set_fqdn(true);
        (!name.is_root()).then_some(name)
    }

    /// The entry's own name (`msg.Domain(key)`), the SRV and NS target of an
    /// entry whose host is an address.
    pub(crate) fn own_name(&self) -> Option<Name> {
        Name::from_labels(self.entry.name.split('.').map(str::as_bytes)).ok()
    }

    pub(crate) fn priority(&self) -> u16 {
        match self.entry.priority {
            None | Some(0) => DEFAULT_PRIORITY,
            Some(priority) => priority,
        }
    }

    /// The entry's `ttl`, else `default_ttl`, and never longer than the
    /// lease it is on. CoreDNS (`Etcd.TTL`) uses the lease's TTL in the same
    /// way (older releases used the lease *ID*, the documented bug);
    /// disco's default is `--ttl` where CoreDNS's is a fixed 300 s.
    pub(crate) fn ttl(&self, default_ttl: u32) -> u32 {
        let ttl = self.entry.ttl.filter(|&t| t > 0).unwrap_or(default_ttl);
        match self.entry.lease_ttl.filter(|&t| t > 0) {
            Some(lease) => ttl.min(lease),
            None => ttl,
        }
    }

    /// `shouldInclude` (`plugin/etcd/etcd.go`): an entry without a host only
    /// ever answers TXT.
    pub(crate) fn answers(&self, qtype: RecordType) -> bool {
        (qtype == RecordType::TXT && !self.entry.text.is_empty()) || !self.entry.host.is_empty()
    }

    fn depth(&self) -> usize {
        self.entry.key.matches('/').count()
    }
}

/// Go's `net.ParseIP` followed by `To4`: an IPv4-mapped IPv6 address is an
/// IPv4 address.
fn parse_ip(host: &str) -> Option<IpAddr> {
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Whether a query label is a wildcard (`msg.PathWithWildcard`).
pub(crate) fn is_wildcard(label: &str) -> bool {
    label == "*" || label == "any"
}

/// Whether the entry at `key_parts` (its reversed labels) answers a query
/// whose reversed labels are `name_parts`: every query label must be there,
/// equal or matched by a wildcard (`Etcd.loopNodes`). Deeper keys match: a
/// name answers for its subtree.
pub(crate) fn wildcard_matches(key_parts: &[&str], name_parts: &[&str]) -> bool {
    name_parts.len() <= key_parts.len()
        && name_parts
            .iter()
            .zip(key_parts)
            .all(|(name, key)| is_wildcard(name) || name == key)
}

/// `msg.Group`: the group of the shallowest entries wins, and only entries
/// of that group, or of none, answer; when entries at that depth disagree,
/// nothing is filtered. `items` are in key order, as etcd lists them (the
/// first entry seeds the choice, and an entry without a group above it stops
/// the search, exactly as in CoreDNS).
pub(crate) fn group(items: Vec<&Item>) -> Vec<&Item> {
    let Some(&first) = items.first() else {
        return items;
    };
    let mut group = first.entry.group.as_str();
    let mut depth = first.depth();
    // As in CoreDNS, depths past a `break` stay 0.
    let mut depths = vec![0; items.len()];
    for (i, &item) in items.iter().enumerate() {
        let d = item.depth();
        depths[i] = d;
        if d < depth {
            if item.entry.group.is_empty() {
                break;
            }
            depth = d;
            group = item.entry.group.as_str();
        }
    }
    if group.is_empty() {
        return items;
    }
    let mut kept = Vec::with_capacity(items.len());
    for (i, &item) in items.iter().enumerate() {
        let own = item.entry.group.as_str();
        if own.is_empty() {
            kept.push(item);
        } else if depths[i] == depth && own != group {
            return items;
        } else if own == group {
            kept.push(item);
        }
    }
    kept
}

/// SRV weights as `backend_lookup.go`'s `SRV` splits them: within one
/// priority, each entry gets `floor(100 / sum * weight)`, at least 1, where
/// a missing or zero weight counts as 100. Takes (priority, weight) pairs.
pub(crate) fn srv_weights(entries: &[(u16, Option<u16>)]) -> Vec<u16> {
    let weight = |w: Option<u16>| match w {
        None | Some(0) => f64::from(DEFAULT_WEIGHT),
        Some(w) => f64::from(w),
    };
    let mut totals: HashMap<u16, f64> = HashMap::new();
    for &(priority, w) in entries {
        *totals.entry(priority).or_default() += weight(w);
    }
    entries
        .iter()
        .map(|&(priority, w)| {
            // Same operations in the same order as CoreDNS, so the same
            // rounding.
            let share = 100.0 / totals[&priority] * weight(w);
            (share.floor() as u16).max(1)
        })
        .collect()
}

/// `targetStrip` (`msg/service.go`): drops `strip` labels from the left of
/// `name`; stripping every label (or more) leaves the name whole.
pub(crate) fn strip_labels(name: &Name, strip: u32) -> Name {
    let count = name.iter().count();
    if strip == 0 || strip as usize >= count {
        return name.clone();
    }
    Name::from_labels(name.iter().skip(strip as usize)).unwrap_or_else(|_| name.clone())
}

/// `split255` (`msg/service.go`): text in 255-byte character-strings. As
/// in CoreDNS, text of exactly a multiple of 255 bytes ends with an empty
/// string.
pub(crate) fn split255(text: &str) -> Vec<&[u8]> {
    let bytes = text.as_bytes();
    if bytes.len() < 255 {
        return vec![bytes];
    }
    let mut strings: Vec<&[u8]> = bytes.chunks(255).collect();
    if bytes.len().is_multiple_of(255) {
        strings.push(&[]);
    }
    strings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, json: &str) -> Item {
        Item {
            source: 0,
            entry: Arc::new(
                crate::model::parse_skydns("/skydns", key, json.as_bytes(), None).unwrap(),
            ),
        }
    }

    fn grouped(items: &[Item]) -> Vec<&str> {
        group(items.iter().collect())
            .into_iter()
            .map(|i| i.entry.host.as_str())
            .collect()
    }

    // The cases of CoreDNS's msg/service_test.go `TestGroup`.
    #[test]
    fn the_shallowest_group_wins() {
        let items = [
            item(
                "/skydns/test/skydns/dom1/sub/b",
                r#"{"host":"127.0.0.1","group":"g1"}"#,
            ),
            item(
                "/skydns/test/skydns/dom1/a",
                r#"{"host":"127.0.0.2","group":"g2"}"#,
            ),
        ];
        assert_eq!(grouped(&items), ["127.0.0.2"]);
    }

    #[test]
    fn disagreeing_groups_at_one_depth_filter_nothing() {
        let items = [
            item(
                "/skydns/test/skydns/region1/a",
                r#"{"host":"server1","group":"g1"}"#,
            ),
            item(
                "/skydns/test/skydns/region1/b",
                r#"{"host":"server2","group":"g2"}"#,
            ),
        ];
        assert_eq!(grouped(&items), ["server1", "server2"]);
    }

    #[test]
    fn groupless_entries_always_answer() {
        let items = [
            item(
                "/skydns/test/skydns/region1/dom/a",
                r#"{"host":"server1","group":"g1"}"#,
            ),
            item("/skydns/test/skydns/region1/dom/b", r#"{"host":"server2"}"#),
            item(
                "/skydns/test/skydns/region1/dom/subdom/a",
                r#"{"host":"server3","group":"g2"}"#,
            ),
        ];
        assert_eq!(grouped(&items), ["server1", "server2"]);
        let same = [
            item(
                "/skydns/test/skydns/region1/dom/a",
                r#"{"host":"server1","group":"g5"}"#,
            ),
            item("/skydns/test/skydns/region1/dom/b", r#"{"host":"server2"}"#),
            item(
                "/skydns/test/skydns/region1/dom/subdom/a",
                r#"{"host":"server3","group":"g5"}"#,
            ),
        ];
        assert_eq!(grouped(&same), ["server1", "server2", "server3"]);
        let none = [item("/skydns/test/skydns/a", r#"{"host":"server1"}"#)];
        assert_eq!(grouped(&none), ["server1"]);
    }

    #[test]
    fn a_groupless_shallower_entry_stops_the_search() {
        // The first entry seeds g1; the shallower groupless one stops the
        // scan (CoreDNS's `break`), so g1 stays and g2 goes.
        let items = [
            item("/skydns/t/x/deep/a", r#"{"host":"server1","group":"g1"}"#),
            item("/skydns/t/x/b", r#"{"host":"server2"}"#),
            item("/skydns/t/c", r#"{"host":"server3","group":"g2"}"#),
        ];
        assert_eq!(grouped(&items), ["server1", "server2"]);
    }

    #[test]
    fn weights_split_within_a_priority_as_coredns_does() {
        // lookup_test.go: 3 entries -> 33 each, 8 -> 12, 4 -> 25.
        assert_eq!(srv_weights(&[(10, None); 3]), [33, 33, 33]);
        assert_eq!(srv_weights(&[(10, None); 8]), [12; 8]);
        assert_eq!(srv_weights(&[(10, None); 4]), [25; 4]);
        assert_eq!(srv_weights(&[(333, None)]), [100]);
        // Priorities are separate pools; a weight of 0 counts as 100.
        assert_eq!(
            srv_weights(&[(10, Some(1)), (10, Some(3)), (20, Some(0)), (20, Some(100))]),
            [25, 75, 50, 50]
        );
        // Never 0.
        assert_eq!(srv_weights(&[(10, Some(1)), (10, Some(60000))]), [1, 99]);
    }

    #[test]
    fn target_strip_drops_left_labels_unless_it_would_drop_them_all() {
        let name = Name::from_ascii("x1.web.disco.internal.").unwrap();
        assert_eq!(strip_labels(&name, 0), name);
        assert_eq!(strip_labels(&name, 1).to_ascii(), "web.disco.internal.");
        assert_eq!(strip_labels(&name, 3).to_ascii(), "internal.");
        assert_eq!(strip_labels(&name, 4), name);
        assert_eq!(strip_labels(&name, 9), name);
    }

    #[test]
    fn wildcards_match_one_label_and_names_match_their_subtree() {
        let key = ["internal", "disco", "region1", "prod", "a"];
        assert!(wildcard_matches(&key, &["internal", "disco", "*", "prod"]));
        assert!(wildcard_matches(
            &key,
            &["internal", "disco", "any", "prod", "a"]
        ));
        assert!(!wildcard_matches(&key, &["internal", "disco", "*", "dev"]));
        assert!(!wildcard_matches(
            &key,
            &["internal", "disco", "*", "prod", "a", "*"]
        ));
        // A directory key (`…/region1/`) has an empty last part: `*` takes it.
        assert!(wildcard_matches(
            &["internal", "disco", "region1", ""],
            &["internal", "disco", "region1", "*"]
        ));
    }

    #[test]
    fn host_types_follow_coredns() {
        let of = |json: &str| item("/skydns/x", json).host_type();
        assert_eq!(
            of(r#"{"host":"10.0.0.1"}"#),
            HostType::A("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            of(r#"{"host":"::ffff:10.0.0.1"}"#),
            HostType::A("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            of(r#"{"host":"fd00::1"}"#),
            HostType::Aaaa("fd00::1".parse().unwrap())
        );
        assert_eq!(of(r#"{"host":"a.example."}"#), HostType::Cname);
        assert_eq!(of(r#"{"host":"a.example","text":"t"}"#), HostType::Txt);
        assert_eq!(of(r#"{"text":"t"}"#), HostType::Txt);
        let named = item("/skydns/x", r#"{"host":"A.Example"}"#);
        assert_eq!(named.host_name().unwrap().to_ascii(), "A.Example.");
        assert!(
            item("/skydns/x", r#"{"host":"10.0.0.1"}"#)
                .host_name()
                .is_none()
        );
    }

    #[test]
    fn priority_and_ttl_defaults() {
        let mut entry = item("/skydns/x", r#"{"host":"10.0.0.1","priority":0}"#);
        assert_eq!(entry.priority(), DEFAULT_PRIORITY);
        assert_eq!(entry.ttl(5), 5);
        let e = Arc::make_mut(&mut entry.entry);
        e.ttl = Some(60);
        assert_eq!(entry.ttl(5), 60);
        Arc::make_mut(&mut entry.entry).lease_ttl = Some(30);
        assert_eq!(entry.ttl(5), 30);
        Arc::make_mut(&mut entry.entry).ttl = None;
        assert_eq!(entry.ttl(5), 5);
        assert_eq!(entry.ttl(300), 30);
    }

    #[test]
    fn text_splits_into_255_byte_strings() {
        assert_eq!(split255("abc"), [b"abc".as_slice()]);
        let long = "0".repeat(400);
        assert_eq!(
            split255(&long).iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 145]
        );
        let exact = "0".repeat(510);
        assert_eq!(
            split255(&exact).iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 255, 0]
        );
    }
}
