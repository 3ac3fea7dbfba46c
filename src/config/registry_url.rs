//! `--registry` URLs: `scheme://h1:p1,h2:p2/path` parsed into a
//! [`RegistryUrl`], and the values that `--registry`'s comma splitting cut
//! apart joined again.

use super::error::{ConfigError, invalid};

/// `host:port`, with the scheme's port when none is given; `None` for an
/// empty host or a port that is not 1 to 65535. IPv6 hosts go in brackets.
fn endpoint(host: &str, default_port: u16) -> Option<String> {
    let port_at = host.rfind(':').filter(|&at| !host[at..].contains(']'));
    let (name, port) = match port_at {
        Some(at) => (
            &host[..at],
            host[at + 1..].parse::<u16>().ok().filter(|&p| p > 0)?,
        ),
        None => (host, default_port),
    };
    if name.is_empty() || name == "[]" || (name.contains(':') && !name.starts_with('[')) {
        return None;
    }
    Some(format!("{name}:{port}"))
}

/// Checks a ZooKeeper chroot (the URL's path after its first `/`): names
/// separated by single slashes, none `.` or `..`, no control characters,
/// as ZooKeeper requires of a path.
fn zookeeper_path(path: &str) -> Result<(), String> {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Ok(());
    }
    for name in path.split('/') {
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!(
                "the chroot /{path} is not a ZooKeeper path (empty, . or .. name); expected e.g. /disco"
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!(
                "the chroot /{path} has a control character; expected e.g. /disco"
            ));
        }
    }
    Ok(())
}

/// A registry URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `etcd`, `etcds`, `zk`, `skydns+etcd`, `skydns+etcds`, `nerve+zk`.
    pub scheme: String,
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
    /// The key prefix or chroot path.
    pub path: String,
}

impl RegistryUrl {
    /// Parses `scheme://h1:p1,h2:p2/path`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        const SCHEMES: [&str; 6] = [
            "etcd",
            "etcds",
            "zk",
            "skydns+etcd",
            "skydns+etcds",
            "nerve+zk",
        ];
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            invalid(
                "registry",
                url,
                "expected scheme://host:port/path, e.g. etcd://127.0.0.1:2379/disco",
            )
        })?;
        if !SCHEMES.contains(&scheme) {
            return Err(invalid(
                "registry",
                url,
                format!(
                    "unknown scheme {scheme:?}; expected one of {}",
                    SCHEMES.join(", ")
                ),
            ));
        }
        let (hosts, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        if let Some((_, after)) = hosts.rsplit_once('@') {
            // Never repeat the credentials, not even in the error.
            let redacted = format!("{scheme}://***@{after}/{path}");
            return Err(invalid(
                "registry",
                &redacted,
                "credentials do not belong in a URL that ps shows; use the environment",
            ));
        }
        let default_port = if scheme.ends_with("zk") { 2181 } else { 2379 };
        let endpoints = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|host| {
                endpoint(host, default_port).ok_or_else(|| {
                    invalid(
                        "registry",
                        url,
                        format!("{host:?} is not HOST or HOST:PORT (port 1 to 65535)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(invalid("registry", url, "no host given"));
        }
        if scheme.ends_with("zk")
            && let Err(reason) = zookeeper_path(path)
        {
            return Err(invalid("registry", url, reason));
        }
        Ok(RegistryUrl {
            scheme: scheme.to_owned(),
            endpoints,
            path: format!("/{}", path.trim_end_matches('/')),
        })
    }

    /// Whether the registry is an etcd cluster (either format).
    pub fn is_etcd(&self) -> bool {
        matches!(
            self.scheme.as_str(),
            "etcd" | "etcds" | "skydns+etcd" | "skydns+etcds"
        )
    }

    /// Whether the registry is a ZooKeeper ensemble (either format).
    pub fn is_zookeeper(&self) -> bool {
        matches!(self.scheme.as_str(), "zk" | "nerve+zk")
    }

    /// Whether the registry is reached over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme.as_str(), "etcds" | "skydns+etcds")
    }
}

/// The URL as given, minus nothing: credentials never appear in one.
impl std::fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme,
            self.endpoints.join(","),
            self.path
        )
    }
}

/// `--registry` and `DISCO_REGISTRY` split their values at commas, which also
/// separate the hosts of one URL (`etcd://h1:2379,h2:2379/disco`): a piece
/// without a scheme continues the URL before it.
pub(super) fn rejoin_registry_urls(pieces: Vec<String>) -> Vec<String> {
    let mut urls: Vec<String> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match urls.last_mut() {
            Some(url) if !piece.contains("://") => {
                url.push(',');
                url.push_str(&piece);
            }
            _ => urls.push(piece),
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_parse_and_refuse_credentials() {
        let url = RegistryUrl::parse("etcd://h1:2379,h2:2379/disco").unwrap();
        assert_eq!(url.endpoints, ["h1:2379", "h2:2379"]);
        assert_eq!(url.path, "/disco");
        assert!(RegistryUrl::parse("redis://h1/x").is_err());
        assert_eq!(
            RegistryUrl::parse("etcd://h1,[::1]:2380/d")
                .unwrap()
                .endpoints,
            ["h1:2379", "[::1]:2380"]
        );
        assert_eq!(
            RegistryUrl::parse("zk://zk1/d").unwrap().endpoints,
            ["zk1:2181"]
        );
        for bad in [
            "etcd://127.0.0.1:/d",
            "etcd://h1:0/d",
            "etcd://h1:99999/d",
            "etcd://:2379/d",
            "etcd://::1/d",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad} accepted");
        }
        for bad in [
            "zk:///disco",
            "zk://h1:/disco",
            "zk://h1:2181/a//b",
            "zk://h1:2181/a/../b",
            "nerve+zk://h1:2181/nerve/./services",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            RegistryUrl::parse("nerve+zk://h1:2181,h2/nerve/services/")
                .unwrap()
                .path,
            "/nerve/services"
        );
        let refused = RegistryUrl::parse("zk://digest:s3cret@h1:2181/x")
            .unwrap_err()
            .to_string();
        assert!(!refused.contains("s3cret"), "{refused}");
        let refused = RegistryUrl::parse("etcd://user:s3cret@h1:2379/x")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("credentials"), "{refused}");
        assert!(
            !refused.contains("s3cret"),
            "the password is repeated: {refused}"
        );
    }

    #[test]
    fn registry_values_split_at_commas_are_joined_again() {
        let pieces = "etcd://h1:2379,h2:2379/disco,skydns+etcd://h3/skydns,zk://z1,z2/d"
            .split(',')
            .map(String::from)
            .collect();
        assert_eq!(
            rejoin_registry_urls(pieces),
            [
                "etcd://h1:2379,h2:2379/disco",
                "skydns+etcd://h3/skydns",
                "zk://z1,z2/d"
            ]
        );
    }
}
