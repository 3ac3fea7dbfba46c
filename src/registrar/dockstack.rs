//! The DockStack form: `-s name:type:container:port:/path`, as DockStack's
//! Nerve wrapper took it. Parsing, the check a spec makes and when to ask
//! Docker again ([`PortFollow`]) are pure and table-tested; the Docker
//! lookup of the published port is in [`super::docker`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::check::CheckSpec;
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

/// The check a spec's type makes of `target`.
pub fn check_spec(check: DockStackCheck, target: SocketAddr) -> CheckSpec {
    match check {
        DockStackCheck::Tcp => CheckSpec::Tcp {
            target: target.to_string(),
        },
        DockStackCheck::Http => CheckSpec::Http {
            url: format!("http://{target}/"),
            body: None,
            host: None,
        },
    }
}

/// When a registration whose port Docker gave is asked of Docker again,
/// and what the answer means: a container recreated or restarted with a
/// random mapping (`-P`, `ports: ["3306"]`) publishes another host port,
/// and a registrar that kept checking the old one would keep a healthy
/// service withdrawn. Pure: the caller gives the time and the answer.
#[derive(Debug)]
pub struct PortFollow {
    port: u16,
    every: Duration,
    asked_at: Instant,
    outage: bool,
}

/// What one answer of Docker means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// The known port. `back`: the first answer after an outage.
    Unchanged {
        /// Docker answers again.
        back: bool,
    },
    /// Docker publishes another port now.
    Moved {
        /// The port checked and registered until now.
        from: u16,
        /// The port from now on.
        to: u16,
        /// Docker answers again.
        back: bool,
    },
    /// No answer (no engine, the container gone while it is recreated, the
    /// port not published yet): the known port stays. `first`: the first
    /// of this outage, the one to log.
    NoAnswer {
        /// The first failure since the last answer.
        first: bool,
    },
}

impl PortFollow {
    /// Follows `port`, found at `asked_at`, asking again at most once
    /// every `every` (the check interval).
    pub fn new(port: u16, every: Duration, asked_at: Instant) -> Self {
        PortFollow {
            port,
            every,
            asked_at,
            outage: false,
        }
    }

    /// The port checked and registered.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether to ask Docker now, after a round that `failing` says
    /// failed; if so, counts it as asked. Only while failing: a service
    /// that passes its checks answers on the port it has, and asking the
    /// engine every interval for every healthy service would load it for
    /// nothing; a container that moved fails them (nothing listens on the
    /// old port any more).
    pub fn ask(&mut self, now: Instant, failing: bool) -> bool {
        if !failing || now < self.asked_at + self.every {
            return false;
        }
        self.asked_at = now;
        true
    }

    /// Takes Docker's answer: the published port, or why there is none.
    pub fn answer<E>(&mut self, answer: Result<u16, E>) -> Followed {
        let Ok(port) = answer else {
            let first = !self.outage;
            self.outage = true;
            return Followed::NoAnswer { first };
        };
        let back = std::mem::replace(&mut self.outage, false);
        if port == self.port {
            return Followed::Unchanged { back };
        }
        let from = std::mem::replace(&mut self.port, port);
        Followed::Moved {
            from,
            to: port,
            back,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_is_asked_again_only_while_failing_and_once_an_interval() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut follow = PortFollow::new(32768, second, start);
        let at = |ms| start + Duration::from_millis(ms);
        let cases = [
            // (time, failing, asked)
            (500, true, false),
            (1000, false, false),
            (1000, true, true),
            (1900, true, false),
            (2000, false, false),
            (2100, true, true),
            (2900, true, false),
            (5000, true, true),
        ];
        for (ms, failing, asked) in cases {
            assert_eq!(
                follow.ask(at(ms), failing),
                asked,
                "{ms} ms, failing {failing}"
            );
        }
    }

    #[test]
    fn an_answer_moves_the_port_and_an_outage_is_told_once() {
        let mut follow = PortFollow::new(32768, Duration::from_secs(1), Instant::now());
        let cases: [(Result<u16, ()>, Followed, u16); 7] = [
            (Ok(32768), Followed::Unchanged { back: false }, 32768),
            (Err(()), Followed::NoAnswer { first: true }, 32768),
            (Err(()), Followed::NoAnswer { first: false }, 32768),
            (Ok(32768), Followed::Unchanged { back: true }, 32768),
            (
                Ok(32770),
                Followed::Moved {
                    from: 32768,
                    to: 32770,
                    back: false,
                },
                32770,
            ),
            (Err(()), Followed::NoAnswer { first: true }, 32770),
            (
                Ok(32771),
                Followed::Moved {
                    from: 32770,
                    to: 32771,
                    back: true,
                },
                32771,
            ),
        ];
        for (i, (answer, followed, port)) in cases.into_iter().enumerate() {
            assert_eq!(follow.answer(answer), followed, "answer {i}");
            assert_eq!(follow.port(), port, "answer {i}");
        }
    }

    #[test]
    fn a_spec_checks_the_address_and_port_registered() {
        let target: SocketAddr = "[fd00::5]:32768".parse().unwrap();
        assert_eq!(
            check_spec(DockStackCheck::Tcp, target),
            CheckSpec::Tcp {
                target: "[fd00::5]:32768".into()
            }
        );
        assert_eq!(
            check_spec(DockStackCheck::Http, target),
            CheckSpec::Http {
                url: "http://[fd00::5]:32768/".into(),
                body: None,
                host: None
            }
        );
    }

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
