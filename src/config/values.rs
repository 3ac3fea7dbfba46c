//! Single values checked and parsed: socket addresses, CIDRs, TTLs, the
//! log filter. The error names the flag the value came from.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::error::{ConfigError, invalid};

pub(super) fn parse_socket_addr(
    flag: &'static str,
    value: &str,
    default_port: Option<u16>,
) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match (value.parse::<IpAddr>(), default_port) {
        (Ok(ip), Some(port)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(invalid(
            flag,
            value,
            match default_port {
                Some(port) => format!(
                    "expected IP or IP:PORT (port defaults to {port}), e.g. 127.0.0.1:{port} or [::1]:{port}"
                ),
                None => "expected IP:PORT, e.g. 127.0.0.1:5353 or [::1]:5353".to_owned(),
            },
        )),
    }
}

pub(super) fn parse_net(flag: &'static str, value: &str) -> Result<IpNet, ConfigError> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            invalid(
                flag,
                value,
                "expected a CIDR such as 10.0.0.0/8 or an address",
            )
        })
}

/// Parses a TTL such as `5s`, `1m` or plain seconds `30`.
pub fn parse_ttl(flag: &'static str, value: &str) -> Result<u32, ConfigError> {
    let duration = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(value)
            .map_err(|e| invalid(flag, value, format!("{e}; expected e.g. 5s or 1m")))?,
    };
    if duration.subsec_nanos() != 0 || duration.as_secs() > i32::MAX as u64 {
        return Err(invalid(
            flag,
            value,
            "expected whole seconds, at most 68 years",
        ));
    }
    Ok(duration.as_secs() as u32)
}

/// The `--log-level` filter, checked as `tracing` reads it; `info` when
/// none is given.
pub fn log_filter(value: Option<String>) -> Result<String, ConfigError> {
    let filter = value.unwrap_or_else(|| "info".to_owned());
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| invalid("log-level", &filter, e))?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_durations_and_seconds() {
        assert_eq!(parse_ttl("ttl", "5s").unwrap(), 5);
        assert_eq!(parse_ttl("ttl", "2m").unwrap(), 120);
        assert_eq!(parse_ttl("ttl", "30").unwrap(), 30);
        assert!(parse_ttl("ttl", "5ms").is_err());
        assert!(
            parse_ttl("ttl", "soon")
                .unwrap_err()
                .to_string()
                .contains("--ttl")
        );
    }
}
