//! Health checks: one file per kind, behind one [`Check`] trait.
//!
//! - `tcp`: a TCP connect to the service (or `tcp://HOST:PORT`).
//! - `http://…`, `https://…`: a GET answered 2xx or 3xx (redirects are not
//!   followed), optionally with a body containing a text and a Host header.
//! - `exec:CMD`: `sh -c CMD` exits 0; killed, with everything it started, at
//!   the timeout.
//!
//! A check is parsed once, at startup ([`CheckSpec::parse`], so a bad one
//! exits 64), and built into a [`Check`] run every interval.

mod error;
mod exec;
mod http;
mod tcp;

pub use error::{CheckFailure, CheckSpecError};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a check run returns: `Err` says why it failed, in one short line.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CheckFailure>> + Send + 'a>>;

/// One health check of a service.
pub trait Check: Send + Sync {
    /// What is checked, for logs and `/metrics` (`tcp 127.0.0.1:8080`).
    fn describe(&self) -> &str;

    /// Runs the check once. Finishes within the timeout it was built with:
    /// a check that has not passed by then has failed.
    fn run(&self) -> CheckFuture<'_>;
}

/// A check as configured, validated but not yet built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSpec {
    /// Connect to `host:port`.
    Tcp {
        /// `host:port` (IPv6 in brackets).
        target: String,
    },
    /// GET `url`.
    Http {
        /// `http://…` or `https://…`.
        url: String,
        /// Text the body must contain.
        body: Option<String>,
        /// Host header to send instead of the URL's.
        host: Option<String>,
    },
    /// `sh -c command`.
    Exec {
        /// The shell command.
        command: String,
    },
}

impl CheckSpec {
    /// Parses a `--check` value. `address` and `port` are the service's own
    /// (what `tcp`, `http` and `https` alone check); `address` is an IP or a
    /// host name, IPv6 without brackets.
    pub fn parse(text: &str, address: &str, port: u16) -> Result<CheckSpec, CheckSpecError> {
        let text = text.trim();
        let own = if address.contains(':') {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        };
        if let Some(command) = text.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(CheckSpecError::NoCommand);
            }
            return Ok(CheckSpec::Exec {
                command: command.to_owned(),
            });
        }
        match text {
            "tcp" => return Ok(CheckSpec::Tcp { target: own }),
            "http" | "https" => {
                return Ok(CheckSpec::Http {
                    url: format!("{text}://{own}/"),
                    body: None,
                    host: None,
                });
            }
            _ => {}
        }
        if let Some(target) = text.strip_prefix("tcp://") {
            let target = target.trim_end_matches('/');
            let valid = target.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                return Err(CheckSpecError::NotHostPort(target.to_owned()));
            }
            return Ok(CheckSpec::Tcp {
                target: target.to_owned(),
            });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            let url =
                reqwest::Url::parse(text).map_err(|e| CheckSpecError::NotUrl(e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(CheckSpecError::NoHost);
            }
            return Ok(CheckSpec::Http {
                url: text.to_owned(),
                body: None,
                host: None,
            });
        }
        Err(CheckSpecError::Unknown)
    }

    /// Builds the check, to finish within `timeout`.
    pub fn build(&self, timeout: Duration) -> Result<Box<dyn Check>, CheckSpecError> {
        Ok(match self {
            CheckSpec::Tcp { target } => Box::new(tcp::TcpCheck::new(target, timeout)),
            CheckSpec::Http { url, body, host } => Box::new(http::HttpCheck::new(
                url,
                body.clone(),
                host.clone(),
                timeout,
            )?),
            CheckSpec::Exec { command } => Box::new(exec::ExecCheck::new(command, timeout)),
        })
    }
}

/// A message cut to `max` characters, on one line: check output and error
/// chains stay readable in the log.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_by_scheme() {
        let tcp = |target: &str| CheckSpec::Tcp {
            target: target.to_owned(),
        };
        assert_eq!(
            CheckSpec::parse("tcp", "10.0.0.5", 80),
            Ok(tcp("10.0.0.5:80"))
        );
        assert_eq!(
            CheckSpec::parse("tcp", "fd00::5", 80),
            Ok(tcp("[fd00::5]:80"))
        );
        assert_eq!(
            CheckSpec::parse("tcp://db:5432", "10.0.0.5", 80),
            Ok(tcp("db:5432"))
        );
        assert_eq!(
            CheckSpec::parse("http", "10.0.0.5", 80),
            Ok(CheckSpec::Http {
                url: "http://10.0.0.5:80/".into(),
                body: None,
                host: None
            })
        );
        assert!(matches!(
            CheckSpec::parse("https://web.internal/health", "10.0.0.5", 80),
            Ok(CheckSpec::Http { .. })
        ));
        assert_eq!(
            CheckSpec::parse("exec:pg_isready -q", "h", 1),
            Ok(CheckSpec::Exec {
                command: "pg_isready -q".into()
            })
        );
    }

    #[test]
    fn bad_checks_say_what_is_wrong() {
        for (text, says) in [
            ("exec:", "no command"),
            ("exec:   ", "no command"),
            ("ftp://x/", "unknown check"),
            ("ping", "unknown check"),
            ("tcp://db", "HOST:PORT"),
            ("tcp://db:0", "HOST:PORT"),
            ("http://", "URL"),
        ] {
            let error = CheckSpec::parse(text, "10.0.0.5", 80).unwrap_err();
            assert!(error.to_string().contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn output_is_kept_short_and_on_one_line() {
        assert_eq!(shorten("a\n  b\tc", 10), "a b c");
        assert_eq!(shorten(&"x".repeat(50), 5), "xxxxx…");
    }
}
