//! The native registration format (DESIGN §3): the JSON value stored under
//! `<prefix>/services/<service>/<instance>`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, de};

use super::name::checked_label;
use super::{Instance, InstanceId, NameError, Ports, Protocol, ServiceName};

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
///
/// Strings are borrowed from the value where they have no escapes: a cold
/// start parses a million of these, and every string this copied only to
/// check and copy again cost an allocation and a free.
#[derive(Deserialize)]
struct Registration<'a> {
    #[serde(borrow)]
    address: Text<'a>,
    port: Option<u16>,
    #[serde(default, borrow)]
    ports: Pairs<'a, u16>,
    #[serde(borrow)]
    protocol: Option<Text<'a>>,
    #[serde(default, borrow)]
    tags: Vec<Text<'a>>,
    priority: Option<u16>,
    weight: Option<u16>,
    ttl: Option<u32>,
    #[serde(default, borrow)]
    meta: Pairs<'a, Text<'a>>,
}

/// A JSON string, borrowed from the value unless it has escapes. (A
/// `Cow<str>` field borrows only directly in a struct, not inside a `Vec`,
/// an `Option` or a map.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;

            // As `String`'s, for the same error texts.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Visitor(PhantomData))
    }
}

/// A JSON object's members in the order written, where a `BTreeMap` would
/// allocate a node and a `String` a key.
struct Pairs<'a, V>(Vec<(Text<'a>, V)>);

impl<V> Default for Pairs<'_, V> {
    fn default() -> Self {
        Pairs(Vec::new())
    }
}

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Pairs<'a, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a, V>(PhantomData<Pairs<'a, V>>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> de::Visitor<'de> for Visitor<'a, V> {
            type Value = Pairs<'a, V>;

            // As `BTreeMap`'s, for the same error texts.
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Visitor(PhantomData))
    }
}

/// Parses a native registration value for `service`/`instance` (both taken
/// from the key).
pub fn parse_native(service: &str, instance: &str, value: &[u8]) -> Result<Instance, NativeError> {
    let service = ServiceName::new(service).map_err(NativeError::Service)?;
    let id = InstanceId::new(instance).map_err(NativeError::Instance)?;
    let reg: Registration = match std::str::from_utf8(value) {
        // Checked once here, serde_json need not check each string again.
        Ok(text) => serde_json::from_str(text)?,
        // serde_json says where the bytes that are not UTF-8 are.
        Err(_) => serde_json::from_slice(value)?,
    };
    let address: IpAddr = reg
        .address
        .0
        .trim()
        .parse()
        .map_err(|_| NativeError::Address(reg.address.0.clone().into_owned()))?;
    let protocol = match reg.protocol.as_ref().map(|p| &*p.0) {
        None => Protocol::Tcp,
        Some(p) if p.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
        Some(p) if p.eq_ignore_ascii_case("udp") => Protocol::Udp,
        Some(other) => return Err(NativeError::Protocol(other.to_ascii_lowercase())),
    };
    let tags = (reg.tags.iter())
        // A tag is a label under the service name, so it obeys the same rules
        // as an instance id.
        .map(|tag| checked_label(&tag.0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(NativeError::Tag)?;
    // In the order a map of the names as written would give, so that the
    // first bad name reported, and which of two names that lowercasing
    // makes one is kept (the later), stay what they were.
    let mut ports = reg.ports.0;
    ports.sort_by(|(a, _), (b, _)| a.0.cmp(&b.0));
    let ports = ports
        .iter()
        .map(|(name, port)| Ok((checked_label(&name.0)?, *port)))
        .collect::<Result<Ports, NameError>>()
        .map_err(NativeError::PortName)?;
    let mut instance = Instance::new(service, id, address);
    instance.port = reg.port.or_else(|| ports.values().next().copied());
    instance.ports = ports;
    instance.protocol = protocol;
    instance.tags = tags.into_iter().collect();
    instance.priority = reg.priority.unwrap_or(super::DEFAULT_PRIORITY);
    instance.weight = reg.weight.unwrap_or(super::DEFAULT_WEIGHT);
    instance.ttl = reg.ttl;
    instance.meta = (reg.meta.0.iter())
        .map(|(key, value)| (&*key.0, &*value.0))
        .collect();
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
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
        tags: instance.tags.iter().map(|t| &**t).collect(),
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
    fn escaped_strings_and_names_that_lowercasing_makes_one_read_as_before() {
        let i = parse_native(
            "web",
            "w",
            br#"{"address":"10.0.0.\u0031","tags":["V\u0032","v2"],
                "ports":{"http":2,"HTTP":1,"Metrics":9100},"meta":{"k\"":"\u00e9","k\"":"last"}}"#,
        )
        .unwrap();
        assert_eq!(i.address, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(*i.tags, ["v2".into()]);
        // As a map of the names as written gave them: "HTTP" sorts before
        // "http", so the later, "http", is the one kept.
        assert_eq!(
            i.ports.iter().collect::<Vec<_>>(),
            [("http", &2), ("metrics", &9100)]
        );
        assert_eq!(i.meta.iter().collect::<Vec<_>>(), [("k\"", "last")]);
        assert!(matches!(
            parse_native(
                "web",
                "w",
                br#"{"address":"10.0.0.1","ports":{"b.c":1,"A B":2}}"#
            ),
            Err(NativeError::PortName(NameError::InvalidCharacter(_, ' ')))
        ));
        assert!(matches!(
            parse_native("web", "w", b"{\"address\":\"10.0.0.1\xff\"}"),
            Err(NativeError::Json(_))
        ));
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
