//! The DockStack form: `-s name:type:container:port:/path`, as DockStack's
//! Nerve wrapper took it. Parsing is pure and table-tested; the Docker
//! lookup of the published port is in [`super::docker`].

use std::net::IpAddr;

use crate::model::InstanceId;

/// What a DockStack spec's `type` field checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockStackCheck {
    /// TCP connect.
    Tcp,
    /// `GET http://HOST:PORT/` answered 2xx or 3xx.
    Http,
}

/// One `-s` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockStackSpec {
    /// The service (field 1).
    pub name: String,
    /// The check (field 2).
    pub check: DockStackCheck,
    /// The container whose published port is looked up, or failing that
    /// the host to check and register (field 3).
    pub container: String,
    /// The container's port, `port/tcp` (field 4).
    pub port: u16,
    /// Where the node goes, below the registry's path (field 5), `/test`.
    pub path: String,
}

/// A spec that cannot be used; says which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "field {field} ({name}) {value:?}: {reason}; expected name:type:container:port:/path, e.g. mysql:tcp:mysql:3306:/test"
)]
pub struct DockStackError {
    /// 1 to 5.
    pub field: usize,
    /// `name`, `type`, `container`, `port`, `path`.
    pub name: &'static str,
    /// The field as given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

const FIELDS: [&str; 5] = ["name", "type", "container", "port", "path"];

fn error(field: usize, value: &str, reason: &str) -> DockStackError {
    DockStackError {
        field,
        name: FIELDS[field - 1],
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

impl DockStackSpec {
    /// Parses `name:type:container:port:/path`. The container field may be
    /// an IPv6 address in brackets (`[fd00::5]`), so the port and path are
    /// taken from the right.
    pub fn parse(spec: &str) -> Result<Self, DockStackError> {
        let given = spec.split(':').count();
        let missing = || {
            error(
                (given + 1).min(5),
                "",
                &format!("missing: {given} of 5 fields given"),
            )
        };
        let mut left = spec.splitn(3, ':');
        let name = left.next().unwrap_or_default();
        let kind = left.next().ok_or_else(missing)?;
        let rest = left.next().ok_or_else(missing)?;
        let mut right = rest.rsplitn(3, ':');
        let path = right.next().unwrap_or_default();
        let port = right.next().ok_or_else(missing)?;
        let container = right.next().ok_or_else(missing)?;
        if name.is_empty() {
            return Err(error(1, name, "empty"));
        }
        let check = match kind {
            "tcp" => DockStackCheck::Tcp,
            "http" => DockStackCheck::Http,
            "" => return Err(error(2, kind, "empty")),
            _ => return Err(error(2, kind, "expected tcp or http")),
        };
        if container.is_empty() {
            return Err(error(3, container, "empty"));
        }
        let port = match port.parse::<u32>() {
            Ok(p @ 1..=65535) => p as u16,
            _ => return Err(error(4, port, "expected a port from 1 to 65535")),
        };
        if !path.starts_with('/') || path.contains("//") || path.ends_with('/') && path != "/" {
            return Err(error(
                5,
                path,
                "expected a path starting with /, e.g. /test",
            ));
        }
        Ok(DockStackSpec {
            name: name.to_owned(),
            check,
            container: container.to_owned(),
            port,
            path: if path == "/" {
                String::new()
            } else {
                path.to_owned()
            },
        })
    }

    /// The container field as an address, when it is one (the fallback
    /// needs no name lookup then).
    pub fn fallback_address(&self) -> Option<IpAddr> {
        self.container.trim_matches(['[', ']']).parse().ok()
    }
}

/// The instance id of a DockStack registration: the address and port it
/// registers, as one DNS label (`10.0.0.5` and `32768` are
/// `10-0-0-5-32768`, `fd00::5` and `3306` are `fd00--5-3306`). The form has
/// no `--instance`, and every host runs the same `-s`: an id from the
/// registrar's host name collides wherever host names do (the same
/// `hostname:` in every host's compose file), and two registrations of one
/// id are one instance to disco, whose newest node hides the other. Two
/// registrations with the same address and port are the same backend.
pub fn instance_id(address: IpAddr, port: u16) -> InstanceId {
    // An IPv4-mapped IPv6 address is the IPv4 address it maps.
    let mut address = address.to_canonical().to_string();
    if address.starts_with(':') {
        // `::1` is `0::1`: a label that starts with a hyphen is legal DNS
        // but read as an option by `dig`, `host` and `getent`.
        address.insert(0, '0');
    }
    let address: String = address
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // Hex digits and '-', at most 39 + 6 bytes: always one DNS label.
    InstanceId::new(&format!("{address}-{port}")).expect("an address and a port make a label")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_field_by_field() {
        let cases = [
            (
                "mysql:tcp:mysql:3306:/test",
                "mysql",
                DockStackCheck::Tcp,
                "mysql",
                3306,
                "/test",
            ),
            (
                "web:http:web-1:8080:/a/b",
                "web",
                DockStackCheck::Http,
                "web-1",
                8080,
                "/a/b",
            ),
            (
                "db:tcp:10.0.0.5:5432:/db",
                "db",
                DockStackCheck::Tcp,
                "10.0.0.5",
                5432,
                "/db",
            ),
            (
                "db:tcp:[fd00::5]:5432:/db",
                "db",
                DockStackCheck::Tcp,
                "[fd00::5]",
                5432,
                "/db",
            ),
            (
                "db:tcp:db:5432:/",
                "db",
                DockStackCheck::Tcp,
                "db",
                5432,
                "",
            ),
        ];
        for (spec, name, check, container, port, path) in cases {
            let parsed = DockStackSpec::parse(spec).unwrap();
            assert_eq!(
                (
                    parsed.name.as_str(),
                    parsed.check,
                    parsed.container.as_str(),
                    parsed.port,
                    parsed.path.as_str()
                ),
                (name, check, container, port, path),
                "{spec}"
            );
        }
        assert_eq!(
            DockStackSpec::parse("db:tcp:[fd00::5]:5432:/db")
                .unwrap()
                .fallback_address(),
            Some("fd00::5".parse().unwrap())
        );
    }

    #[test]
    fn the_instance_is_the_address_and_port_registered() {
        for (address, port, id) in [
            ("10.0.0.5", 32768, "10-0-0-5-32768"),
            ("172.31.55.1", 3306, "172-31-55-1-3306"),
            ("fd00::5", 3306, "fd00--5-3306"),
            ("FD00::5", 1, "fd00--5-1"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                65535,
                "ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff-65535",
            ),
            ("::ffff:10.0.0.5", 80, "10-0-0-5-80"),
            ("::1", 3306, "0--1-3306"),
        ] {
            let address: IpAddr = address.parse().unwrap();
            assert_eq!(instance_id(address, port).as_str(), id);
        }
    }

    #[test]
    fn a_bad_spec_names_its_field() {
        let cases = [
            ("", 2),
            ("mysql", 2),
            ("mysql:tcp", 3),
            ("mysql:tcp:mysql", 4),
            ("mysql:tcp:3306:/test", 5),
            (":tcp:mysql:3306:/test", 1),
            ("mysql:udp:mysql:3306:/test", 2),
            ("mysql::mysql:3306:/test", 2),
            ("mysql:tcp::3306:/test", 3),
            ("mysql:tcp:mysql:0:/test", 4),
            ("mysql:tcp:mysql:70000:/test", 4),
            ("mysql:tcp:mysql:port:/test", 4),
            ("mysql:tcp:mysql:3306:test", 5),
            ("mysql:tcp:mysql:3306:/test/", 5),
        ];
        for (spec, field) in cases {
            let error = DockStackSpec::parse(spec).unwrap_err();
            assert_eq!(error.field, field, "{spec}: {error}");
            assert!(error.to_string().contains(FIELDS[field - 1]), "{error}");
        }
    }
}
