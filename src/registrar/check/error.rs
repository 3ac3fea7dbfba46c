//! What goes wrong with checks: [`CheckSpecError`], a `--check` that cannot
//! be used (found at startup, so the registrar exits 64), and
//! [`CheckFailure`], why one run of a check failed (a line in the log and
//! on `/health`, never fatal).

use std::process::ExitStatus;
use std::time::Duration;

/// A check as written that cannot be used. The message names the part at
/// fault and what is expected; the caller adds the setting it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckSpecError {
    /// `exec:` with nothing after it.
    #[error("exec: names no command to run, e.g. exec:/bin/check-db")]
    NoCommand,
    /// `tcp://` followed by something other than `HOST:PORT`.
    #[error("{0:?} is not HOST:PORT (a port 1-65535), e.g. tcp://db:5432")]
    NotHostPort(String),
    /// An `http://` or `https://` value that does not parse as a URL.
    #[error("not a URL: {0}")]
    NotUrl(String),
    /// A URL without a host (`http://`).
    #[error("the URL has no host, e.g. http://10.0.0.5:8080/health")]
    NoHost,
    /// None of the check kinds.
    #[error("unknown check; expected tcp, tcp://HOST:PORT, http://…, https://… or exec:CMD")]
    Unknown,
    /// A Host header (`--http-host`, a table's `host`) that HTTP cannot carry.
    #[error("{0:?} is not a valid Host header: give a host name, with :PORT if needed")]
    HostHeader(String),
    /// The HTTP client could not be built (the system's TLS setup).
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(String),
}

/// Why one run of a check failed, as one short line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckFailure {
    /// No answer within the check's timeout (`--timeout`).
    #[error("no connection within {0:?}")]
    NoConnection(Duration),
    /// The TCP connection failed: refused, unreachable, a name that does
    /// not resolve.
    #[error("{0}")]
    Connect(String),
    /// The HTTP request failed before a status came (the error and its
    /// causes, shortened).
    #[error("{0}")]
    Request(String),
    /// The service answered with neither 2xx nor 3xx.
    #[error("answered {0}")]
    Status(String),
    /// The body did not contain the expected text (`--http-body`).
    #[error("answered {status} without {expected:?} in the body: {body}")]
    Body {
        /// The status line's code and reason.
        status: String,
        /// The text looked for.
        expected: String,
        /// The start of the body, shortened.
        body: String,
    },
    /// `sh` could not be started or waited for.
    #[error("cannot {0}")]
    Shell(String),
    /// The command exited non-zero; its output, shortened.
    #[error("{status}: {output}")]
    Exit {
        /// How it exited.
        status: ExitStatus,
        /// Its stdout and stderr, shortened.
        output: String,
    },
    /// The command was still running at the timeout, and was killed with
    /// everything it started.
    #[error("killed after {0:?}")]
    Killed(Duration),
}
