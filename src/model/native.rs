//! The native registration format (DESIGN §3): the JSON value stored under
//! `<prefix>/services/<service>/<instance>`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Instance, InstanceId, NameError, Protocol, ServiceName, SmallMap};

/// Why a native registration was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NativeError {
    /// The value is not UTF-8 JSON of the expected shape.
    #[error("not a valid registration: {0}")]
    Json(#[from] serde_json::Error),
    /// `address` is not an IPv4 or IPv6 address.
    #[error("invalid address {0:?}: expected an IPv4 or IPv6 address")]
    Address(String),
    /// The service name from the key is not usable in DNS.
    #[error("invalid service name: {0}")]
    Service(NameError),
    /// The instance id from the key is not usable in DNS.
    #[error("invalid instance id: {0}")]
    Instance(NameError),
    /// `protocol` is neither `tcp` nor `udp`.
    #[error("invalid protocol {0:?}: expected \"tcp\" or \"udp\"")]
    Protocol(String),
    /// A tag is not usable as a DNS label.
    #[error("invalid tag: {0}")]
    Tag(NameError),
    /// A named port is not usable as a DNS label.
    #[error("invalid port name: {0}")]
    PortName(NameError),
}

/// The JSON shape. Unknown fields are ignored for forward compatibility.
#[derive(Deserialize)]
struct Registration {
    address: String,
    port: Option<u16>,
    #[serde(default)]
    ports: BTreeMap<String, u16>,
    protocol: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    priority: Option<u16>,
    weight: Option<u16>,
    ttl: Option<u32>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
}

/// Parses a native registration value for `service`/`instance` (both taken
/// from the key).
pub fn parse_native(service: &str, instance: &str, value: &[u8]) -> Result<Instance, NativeError> {
    let service = ServiceName::new(service).map_err(NativeError::Service)?;
    let id = InstanceId::new(instance).map_err(NativeError::Instance)?;
    let reg: Registration = serde_json::from_slice(value)?;
    let address: IpAddr = reg
        .address
        .trim()
        .parse()
        .map_err(|_| NativeError::Address(reg.address.clone()))?;
    let protocol = match reg
        .protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some(other) => return Err(NativeError::Protocol(other.to_owned())),
    };
    let mut tags: Vec<Box<str>> = Vec::with_capacity(reg.tags.len());
    for tag in &reg.tags {
        // A tag is a label under the service name, so it obeys the same rules
        // as an instance id.
        let tag = InstanceId::new(tag).map_err(NativeError::Tag)?;
        if !tags.iter().any(|t| **t == *tag.as_str()) {
            tags.push(tag.as_str().into());
        }
    }
    let mut ports = Vec::with_capacity(reg.ports.len());
    for (name, port) in reg.ports {
        let name = InstanceId::new(&name).map_err(NativeError::PortName)?;
        ports.push((name.as_str().to_owned(), port));
    }
    // Lowercasing may make two names one; the map keeps the later, as
    // inserting them in turn would.
    let ports: SmallMap<u16> = ports.into_iter().collect();
    let mut instance = Instance::new(service, id, address);
    instance.port = reg.port.or_else(|| ports.values().next().copied());
    instance.ports = ports;
    instance.protocol = protocol;
    instance.tags = tags.into_boxed_slice();
    instance.priority = reg.priority.unwrap_or(super::DEFAULT_PRIORITY);
    instance.weight = reg.weight.unwrap_or(super::DEFAULT_WEIGHT);
    instance.ttl = reg.ttl;
    instance.meta = reg.meta.into_iter().collect();
    Ok(instance)
}

/// What `disco registrar` writes: the same shape, defaults left out.
#[derive(Serialize)]
struct Written<'a> {
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ports: BTreeMap<&'a str, u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [Box<str>],
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meta: BTreeMap<&'a str, &'a str>,
}

/// The native value of `instance`, as [`parse_native`] reads it back (the
/// key carries its service and id).
pub fn native_value(instance: &Instance) -> Vec<u8> {
    let written = Written {
        address: instance.address.to_string(),
        port: instance.port,
        ports: instance
            .ports
            .iter()
            .map(|(name, port)| (name, *port))
            .collect(),
        protocol: (instance.protocol == Protocol::Udp).then_some("udp"),
        tags: &instance.tags,
        priority: (instance.priority != super::DEFAULT_PRIORITY).then_some(instance.priority),
        weight: (instance.weight != super::DEFAULT_WEIGHT).then_some(instance.weight),
        ttl: instance.ttl,
        meta: instance.meta.iter().collect(),
    };
    serde_json::to_vec(&written).expect("a map of strings always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_parses_field_by_field() {
        let value = br#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080,"metrics":9100},
            "protocol":"tcp","tags":["v2","primary"],"priority":0,"weight":100,"ttl":5,
            "meta":{"version":"1.4.2"},"future_field":true}"#;
        let i = parse_native("web", "web-1", value).unwrap();
        assert_eq!(i.address, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(i.port, Some(8080));
        assert_eq!(i.ports["metrics"], 9100);
        assert_eq!(*i.tags, ["v2".into(), "primary".into()]);
        assert_eq!(i.ttl, Some(5));
        assert_eq!(&i.meta["version"], "1.4.2");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let value = br#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080,"metrics":9100},
            "protocol":"udp","tags":["v2","primary"],"priority":3,"weight":7,"ttl":5,
            "meta":{"version":"1.4.2"}}"#;
        let instance = parse_native("web", "web-1", value).unwrap();
        let written = native_value(&instance);
        assert_eq!(parse_native("web", "web-1", &written).unwrap(), instance);
        let minimal = parse_native("web", "w", br#"{"address":"fd00::1"}"#).unwrap();
        assert_eq!(native_value(&minimal), br#"{"address":"fd00::1"}"#);
    }

    #[test]
    fn only_the_address_is_required() {
        let i = parse_native("web", "w", br#"{"address":"fd00::1"}"#).unwrap();
        assert_eq!(i.port, None);
        assert_eq!((i.priority, i.weight), (0, 100));
        assert_eq!(i.protocol, Protocol::Tcp);
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(matches!(
            parse_native("web", "w", b"not json"),
            Err(NativeError::Json(_))
        ));
        assert!(matches!(
            parse_native("web", "w", br#"{"port":1}"#),
            Err(NativeError::Json(_))
        ));
        assert!(matches!(
            parse_native("web", "w", br#"{"address":"10.0.0.300"}"#),
            Err(NativeError::Address(_))
        ));
        assert!(matches!(
            parse_native("web", "w", br#"{"address":"10.0.0.1","protocol":"sctp"}"#),
            Err(NativeError::Protocol(_))
        ));
        assert!(matches!(
            parse_native("web", "w", br#"{"address":"10.0.0.1","tags":["a b"]}"#),
            Err(NativeError::Tag(_))
        ));
        assert!(matches!(
            parse_native("we b", "w", br#"{"address":"10.0.0.1"}"#),
            Err(NativeError::Service(_))
        ));
    }
}
