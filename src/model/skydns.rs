//! The SkyDNS / CoreDNS `etcd` plugin format: records stored under reversed
//! DNS labels (`/skydns/internal/disco/web/x1` is `x1.web.disco.internal.`),
//! each a JSON object `host, port, priority, weight, text, ttl, targetstrip,
//! group`. Unlike native registrations these are records at names, answered
//! with CoreDNS's subtree semantics (see the SkyDNS index in
//! `crate::dns::snapshot`).

/// One SkyDNS entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkyEntry {
    /// The full store key: the entry's identity. A key ending in `/`
    /// (`/skydns/internal/disco/`) stands for the name itself, as in CoreDNS.
    pub key: String,
    /// The DNS name the key stands for, lowercase, dotted, no trailing dot.
    pub name: String,
    /// An IPv4 or IPv6 address, or a host name (answered as CNAME or SRV
    /// target); empty for a text-only (TXT) entry.
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

use serde::{Deserialize, Serialize};

use super::Instance;

/// Why a SkyDNS entry was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkyError {
    /// The key is not below the prefix, or names no DNS name.
    #[error("key {0:?} is not a DNS name below the prefix")]
    Key(String),
    /// The value is not the expected JSON.
    #[error("not a valid SkyDNS entry: {0}")]
    Json(#[from] serde_json::Error),
    /// Neither `host` nor `text` is set: the entry could answer nothing.
    #[error("entry has neither host nor text")]
    NoHost,
}

#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: u16,
    priority: Option<u16>,
    weight: Option<u16>,
    #[serde(default)]
    text: String,
    ttl: Option<u32>,
    #[serde(default, rename = "targetstrip")]
    target_strip: u32,
    #[serde(default)]
    group: String,
}

/// The DNS name a key below `prefix` stands for: `/skydns/internal/disco/web/x1`
/// under `/skydns` is `x1.web.disco.internal`. One trailing `/` is allowed:
/// `/skydns/internal/disco/` is `disco.internal` itself (CoreDNS's "zone name
/// as A record" form).
pub fn skydns_name(prefix: &str, key: &str) -> Option<String> {
    let rest = key
        .strip_prefix(prefix.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let labels: Vec<&str> = rest.split('/').collect();
    if labels
        .iter()
        .any(|label| label.is_empty() || label.len() > 63 || label.contains('.'))
    {
        return None;
    }
    Some(
        labels
            .iter()
            .rev()
            .map(|l| l.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The key `disco registrar --format skydns` writes `instance` at:
/// `<instance>.<service>.<domain>` in reversed labels below `prefix`
/// (`/skydns/internal/disco/web/web-1`), the inverse of [`skydns_name`].
pub fn skydns_key(prefix: &str, domain: &str, instance: &Instance) -> String {
    let name = format!("{}.{}.{}", instance.id, instance.service, domain);
    let mut key = prefix.trim_end_matches('/').to_owned();
    for label in name.trim_end_matches('.').rsplit('.') {
        key.push('/');
        key.push_str(label);
    }
    key
}

/// What the registrar writes: only the fields CoreDNS reads that the
/// registration sets.
#[derive(Serialize)]
struct WrittenEntry {
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
}

/// The SkyDNS value of `instance`: its address as `host`, its primary port,
/// and priority, weight and TTL when they differ from the native defaults
/// (CoreDNS reads a priority of 0 as its own default, 10, so 0 is left
/// out). Tags, named ports and metadata have no place in the format.
pub fn skydns_value(instance: &Instance) -> Vec<u8> {
    let entry = WrittenEntry {
        host: instance.address.to_string(),
        port: instance.port,
        priority: (instance.priority != super::DEFAULT_PRIORITY).then_some(instance.priority),
        weight: (instance.weight != super::DEFAULT_WEIGHT).then_some(instance.weight),
        ttl: instance.ttl,
    };
    serde_json::to_vec(&entry).expect("plain fields always serialise")
}

/// Parses the entry stored at `key` below `prefix`.
pub fn parse_skydns(
    prefix: &str,
    key: &str,
    value: &[u8],
    lease_ttl: Option<u32>,
) -> Result<SkyEntry, SkyError> {
    let name = skydns_name(prefix, key).ok_or_else(|| SkyError::Key(key.to_owned()))?;
    let stored: Stored = serde_json::from_slice(value)?;
    // CoreDNS answers a host-less entry with its text (TXT) and nothing else.
    if stored.host.trim().is_empty() && stored.text.is_empty() {
        return Err(SkyError::NoHost);
    }
    Ok(SkyEntry {
        key: key.to_owned(),
        name,
        host: stored.host.trim().to_owned(),
        port: stored.port,
        priority: stored.priority,
        weight: stored.weight,
        text: stored.text,
        ttl: stored.ttl,
        target_strip: stored.target_strip,
        group: stored.group,
        lease_ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reversed_labels() {
        assert_eq!(
            skydns_name("/skydns", "/skydns/internal/disco/web/x1").as_deref(),
            Some("x1.web.disco.internal")
        );
        assert_eq!(
            skydns_name("/skydns/", "/skydns/Internal/disco").as_deref(),
            Some("disco.internal")
        );
        assert_eq!(
            skydns_name("/skydns", "/skydns/internal/disco/").as_deref(),
            Some("disco.internal")
        );
        assert_eq!(skydns_name("/skydns", "/other/internal"), None);
        assert_eq!(skydns_name("/skydns", "/skydns/internal//x"), None);
        assert_eq!(skydns_name("/skydns", "/skydns/"), None);
        assert_eq!(skydns_name("/skydns", "/skydns/internal//"), None);
    }

    #[test]
    fn written_entries_read_back_at_their_name() {
        use crate::model::{InstanceId, ServiceName};
        let mut instance = Instance::new(
            ServiceName::new("web").unwrap(),
            InstanceId::new("web-1").unwrap(),
            "10.0.0.5".parse().unwrap(),
        );
        instance.port = Some(8080);
        instance.weight = 5;
        let key = skydns_key("/skydns/", "disco.internal", &instance);
        assert_eq!(key, "/skydns/internal/disco/web/web-1");
        let entry = parse_skydns("/skydns", &key, &skydns_value(&instance), None).unwrap();
        assert_eq!(entry.name, "web-1.web.disco.internal");
        assert_eq!(
            (
                entry.host.as_str(),
                entry.port,
                entry.priority,
                entry.weight
            ),
            ("10.0.0.5", 8080, None, Some(5))
        );
    }

    #[test]
    fn entries_parse_with_coredns_field_names() {
        let entry = parse_skydns(
            "/skydns",
            "/skydns/internal/disco/web/x1",
            br#"{"host":"10.0.0.1","port":8080,"priority":20,"text":"hi","ttl":60,"targetstrip":1,"group":"g"}"#,
            Some(30),
        )
        .unwrap();
        assert_eq!(
            (
                entry.host.as_str(),
                entry.port,
                entry.priority,
                entry.weight
            ),
            ("10.0.0.1", 8080, Some(20), None)
        );
        assert_eq!(
            (
                entry.ttl,
                entry.target_strip,
                entry.group.as_str(),
                entry.lease_ttl
            ),
            (Some(60), 1, "g", Some(30))
        );
        assert!(matches!(
            parse_skydns("/skydns", "/skydns/x", b"{}", None),
            Err(SkyError::NoHost)
        ));
        let text_only = parse_skydns("/skydns", "/skydns/x", br#"{"text":"hi"}"#, None).unwrap();
        assert_eq!(
            (text_only.host.as_str(), text_only.text.as_str()),
            ("", "hi")
        );
        assert!(matches!(
            parse_skydns("/skydns", "/skydns/x", b"[", None),
            Err(SkyError::Json(_))
        ));
    }
}
