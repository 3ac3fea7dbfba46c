//! Airbnb Nerve's format (SmartStack, DESIGN §3), as Nerve's ZooKeeper
//! reporter writes it and Synapse reads it: one ephemeral sequential node
//! per instance, named `<instance_id>_<10 digits>`, or with path encoding
//! `base64_<len>_<urlsafe base64 of the JSON>_<10 digits>`, holding JSON
//! `host`, `port` (a number or a string), `name`, `weight`, `labels` and
//! `haproxy_server_options`. Pure: no store, no I/O.
//!
//! The mapping to an [`Instance`]: its service is the JSON's `service`
//! when it has one (disco's one extension, written by `disco registrar`:
//! Nerve never writes it, and Synapse ignores keys it does not know), else
//! the directory the node sits in, as for Synapse. `host` is its address
//! (an IP; Nerve allows host names, disco does not), `port` its primary
//! port, `name` (or the node name's prefix when the JSON has none) its id,
//! made a DNS label (lowercased, characters other than letters, digits, `-`
//! and `_` become `-`), `weight` its SRV weight (capped at 65535). Each
//! label `k: v` becomes metadata `k=v` (TXT) and the tag `k-v` when that is
//! a DNS label (`az: us-east-1a` is the tag `az-us-east-1a`).
//! `haproxy_server_options` means nothing to DNS and is ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use serde::Deserialize;

use super::{Instance, InstanceId, NameError, ServiceName};

/// Why a Nerve node was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NerveError {
    /// The node name is neither `<id>_<seq>` nor Nerve's path encoding.
    #[error(
        "the node name {0:?} is not <instance_id>_<sequence> or base64_<len>_<data>_<sequence>"
    )]
    Name(String),
    /// The JSON (in the node or its path-encoded name) does not parse.
    #[error("not a valid Nerve registration: {0}")]
    Json(#[from] serde_json::Error),
    /// `host` is not an IPv4 or IPv6 address.
    #[error("invalid host {0:?}: expected an IPv4 or IPv6 address")]
    Host(String),
    /// `port` is not a number from 0 to 65535.
    #[error("invalid port {0}: expected a number from 0 to 65535")]
    Port(String),
    /// The directory, naming the service of a node without `service`, is
    /// not usable in DNS.
    #[error("invalid service name: {0}")]
    Service(NameError),
    /// The JSON's `service` is not usable in DNS.
    #[error("invalid \"service\" field: {0}")]
    ServiceField(NameError),
    /// The instance id is not usable in DNS, even made a label.
    #[error("invalid instance id: {0}")]
    Instance(NameError),
}

/// What a node's name says.
#[derive(Debug, PartialEq, Eq)]
pub enum NerveName {
    /// `<instance_id>_<seq>`: the instance id; the JSON is in the node.
    Plain(String),
    /// Path encoding: the JSON itself, decoded from the name.
    Encoded(Vec<u8>),
}

/// Reads a node's name. The sequence suffix (ten digits, or none for
/// Nerve's non-sequential node types) and its `_` are dropped.
pub fn nerve_name(name: &str) -> Result<NerveName, NerveError> {
    let bad = || NerveError::Name(name.to_owned());
    let unsequenced = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let prefix = unsequenced.strip_suffix('_').ok_or_else(bad)?;
    if let Some(encoded) = prefix.strip_prefix("base64_") {
        let (len, rest) = encoded.split_once('_').ok_or_else(bad)?;
        let len: usize = len.parse().map_err(|_| bad())?;
        let data = rest
            .get(..len)
            .filter(|d| d.len() == rest.len())
            .ok_or_else(bad)?;
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(data)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
            .map_err(|_| bad())?;
        return Ok(NerveName::Encoded(json));
    }
    if prefix.is_empty() {
        return Err(bad());
    }
    Ok(NerveName::Plain(prefix.to_owned()))
}

/// A port as Nerve writes it: a JSON number or a string of digits.
#[derive(Deserialize)]
#[serde(untagged)]
enum Port {
    Number(serde_json::Number),
    Text(String),
}

impl Port {
    fn get(&self) -> Result<u16, NerveError> {
        let text = match self {
            Port::Number(n) => n.to_string(),
            Port::Text(t) => t.trim().to_owned(),
        };
        text.parse().map_err(|_| NerveError::Port(text))
    }
}

/// The JSON shape; unknown fields (`haproxy_server_options`) are ignored.
#[derive(Deserialize)]
struct Registration {
    host: String,
    port: Option<Port>,
    name: Option<String>,
    weight: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, serde_json::Value>,
    /// disco's extension; `null` is as absent, any other non-string is a
    /// malformed registration.
    service: Option<String>,
}

/// Parses the Nerve node `node_name` found in the directory `directory`
/// (the service's name unless the JSON has a `service`), whose data is
/// `value` (unused when the name carries the JSON).
pub fn parse_nerve(directory: &str, node_name: &str, value: &[u8]) -> Result<Instance, NerveError> {
    let (json, name_id) = match nerve_name(node_name)? {
        NerveName::Plain(id) => (value.to_vec(), Some(id)),
        NerveName::Encoded(json) => (json, None),
    };
    let reg: Registration = serde_json::from_slice(&json)?;
    let service = match &reg.service {
        Some(field) => ServiceName::new(field).map_err(NerveError::ServiceField)?,
        None => ServiceName::new(directory).map_err(NerveError::Service)?,
    };
    let id = reg
        .name
        .as_deref()
        .or(name_id.as_deref())
        .ok_or_else(|| NerveError::Name(node_name.to_owned()))?;
    let id = InstanceId::new(&as_label(id)).map_err(NerveError::Instance)?;
    let address: IpAddr = reg
        .host
        .trim()
        .parse()
        .map_err(|_| NerveError::Host(reg.host.clone()))?;
    let mut instance = Instance::new(service, id, address);
    instance.port = reg.port.as_ref().map(Port::get).transpose()?;
    if let Some(weight) = reg.weight {
        instance.weight = u16::try_from(weight).unwrap_or(u16::MAX);
    }
    let labels: Vec<(String, String)> = reg
        .labels
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (key, value)
        })
        .collect();
    instance.tags = (labels.iter())
        .filter_map(|(key, value)| InstanceId::new(&format!("{key}-{value}")).ok())
        .map(|tag| tag.as_str().to_owned())
        .collect();
    instance.meta = labels.into_iter().collect();
    Ok(instance)
}

/// Nerve's instance ids are often host names (`web1.prod.example.com`);
/// as one DNS label their dots and other characters become `-`.
fn as_label(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The JSON Nerve writes for `instance` (what Synapse reads): `host`,
/// `port`, `name`, `weight`, and its metadata as `labels`; and `service`,
/// so that disco names the service whatever directory the node is in (the
/// DockStack form puts `mysql`'s node in `/nerve/test`).
pub fn nerve_json(instance: &Instance) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = instance
        .meta
        .iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    let mut json = serde_json::json!({
        "host": instance.address.to_string(),
        "port": instance.port.unwrap_or(0),
        "name": instance.id.as_str(),
        "weight": instance.weight,
        "service": instance.service.as_str(),
    });
    if !labels.is_empty() {
        json["labels"] = serde_json::Value::Object(labels);
    }
    json.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_name(json: &str, seq: &str) -> String {
        let data = base64::engine::general_purpose::URL_SAFE.encode(json);
        format!("base64_{}_{data}_{seq}", data.len())
    }

    #[test]
    fn sequential_names_give_the_instance_id() {
        assert_eq!(
            nerve_name("i-0abc_0000000042").unwrap(),
            NerveName::Plain("i-0abc".into())
        );
        // Non-sequential node types have no suffix after the underscore.
        assert_eq!(
            nerve_name("web_1_").unwrap(),
            NerveName::Plain("web_1".into())
        );
        for bad in ["services", "_0000000001", "noseq", ""] {
            assert!(nerve_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_encoded_names_carry_the_json() {
        // '?' and '>' make base64 use its URL-safe characters.
        let json = r#"{"host":"10.0.0.7","port":8080,"name":"w1","labels":{"q":"??>>"}}"#;
        let name = encoded_name(json, "0000000007");
        assert!(name.contains('-') || name.contains('_'));
        assert_eq!(
            nerve_name(&name).unwrap(),
            NerveName::Encoded(json.as_bytes().to_vec())
        );
        let instance = parse_nerve("web", &name, b"ignored: the name has it").unwrap();
        assert_eq!(instance.id.as_str(), "w1");
        assert_eq!(instance.port, Some(8080));
        // A length that does not match the data is not Nerve's encoding.
        let wrong = name.replacen("base64_", "base64_9", 1);
        assert!(nerve_name(&wrong).is_err());
    }

    #[test]
    fn nerve_json_maps_to_an_instance() {
        let value = br#"{"host":"10.0.0.5","port":"8080","name":"web1.prod.example.com",
            "weight":7,"labels":{"az":"us-east-1a","canary":true,"note":"not a label!"},
            "haproxy_server_options":"backup"}"#;
        let i = parse_nerve("Web", "web1.prod.example.com_0000000001", value).unwrap();
        assert_eq!(i.service.as_str(), "web");
        assert_eq!(i.id.as_str(), "web1-prod-example-com");
        assert_eq!(i.address, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(i.port, Some(8080));
        assert_eq!(i.weight, 7);
        assert_eq!(*i.tags, ["az-us-east-1a".into(), "canary-true".into()]);
        assert_eq!(i.meta.get("az"), Some("us-east-1a"));
        assert_eq!(i.meta.get("note"), Some("not a label!"));
        assert_eq!(i.meta.get("canary"), Some("true"));
    }

    #[test]
    fn the_name_prefix_is_the_id_when_the_json_has_none() {
        let i = parse_nerve("web", "i-1_0000000003", br#"{"host":"fd00::1","port":80}"#).unwrap();
        assert_eq!(i.id.as_str(), "i-1");
        assert_eq!(i.weight, crate::model::DEFAULT_WEIGHT);
        let heavy = br#"{"host":"10.0.0.1","port":1,"weight":100000}"#;
        assert_eq!(parse_nerve("web", "a_1", heavy).unwrap().weight, u16::MAX);
    }

    #[test]
    fn malformed_nodes_are_refused() {
        for (value, reason) in [
            (&b"not json"[..], "not a valid Nerve"),
            (br#"{"host":"web.example.com","port":80}"#, "invalid host"),
            (br#"{"host":"10.0.0.1","port":"80x"}"#, "invalid port"),
            (br#"{"host":"10.0.0.1","port":70000}"#, "invalid port"),
            (br#"{"port":80}"#, "not a valid Nerve"),
        ] {
            let error = parse_nerve("web", "a_0000000001", value).unwrap_err();
            assert!(error.to_string().contains(reason), "{error}");
        }
        assert!(matches!(
            parse_nerve("we b", "a_1", br#"{"host":"10.0.0.1"}"#),
            Err(NerveError::Service(_))
        ));
    }

    #[test]
    fn the_service_is_the_json_field_else_the_directory() {
        // (directory, JSON after "host" and "port", the service or how the
        // error begins)
        let cases: [(&str, &str, Result<&str, &str>); 11] = [
            // Real Nerve writes no `service`: the directory names it.
            ("test", "", Ok("test")),
            ("test", r#","service":"mysql""#, Ok("mysql")),
            ("test", r#","service":"MySQL""#, Ok("mysql")),
            ("test", r#","service":"api.billing""#, Ok("api.billing")),
            ("test", r#","service":null"#, Ok("test")),
            // The field names it, so the directory need not be a name.
            ("my dir", r#","service":"mysql""#, Ok("mysql")),
            ("my dir", "", Err("invalid service name")),
            (
                "test",
                r#","service":"my sql""#,
                Err(r#"invalid "service" field"#),
            ),
            (
                "test",
                r#","service":"""#,
                Err(r#"invalid "service" field"#),
            ),
            (
                "test",
                r#","service":"_mysql""#,
                Err(r#"invalid "service" field"#),
            ),
            ("test", r#","service":42"#, Err("not a valid Nerve")),
        ];
        for (directory, extra, expected) in cases {
            let json = format!(r#"{{"host":"10.0.0.5","port":3306{extra}}}"#);
            match (
                parse_nerve(directory, "i-1_0000000001", json.as_bytes()),
                expected,
            ) {
                (Ok(i), Ok(service)) => assert_eq!(i.service.as_str(), service, "{json}"),
                (Err(e), Err(start)) => assert!(e.to_string().starts_with(start), "{json}: {e}"),
                (got, _) => panic!("{directory} {json}: {got:?}, expected {expected:?}"),
            }
        }
        // In a path-encoded name the field is read from the name's JSON.
        let json = r#"{"host":"10.0.0.5","name":"db1","service":"mysql"}"#;
        let name = encoded_name(json, "0000000001");
        let instance = parse_nerve("test", &name, b"").unwrap();
        assert_eq!(instance.service.as_str(), "mysql");
    }

    #[test]
    fn what_nerve_json_writes_reads_back() {
        let mut instance = parse_nerve(
            "web",
            "w1_0000000001",
            br#"{"host":"10.0.0.5","port":8080,"weight":3,"labels":{"az":"a1"}}"#,
        )
        .unwrap();
        instance.ttl = None;
        let json = nerve_json(&instance);
        let again = parse_nerve("web", "w1_0000000002", json.as_bytes()).unwrap();
        assert_eq!(again, instance);
        // The service travels in the JSON: the DockStack form's directory
        // (`/nerve/test`) does not rename it.
        assert!(json.contains(r#""service":"web""#), "{json}");
        let moved = parse_nerve("test", "w1_0000000003", json.as_bytes()).unwrap();
        assert_eq!(moved, instance);
    }
}
